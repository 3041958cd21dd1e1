"""The plugin user's options: where the registry and plugins are, and NAME[@REQUIREMENT].

Shared by the commands of `builder.cli.user`; parsing only, no output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from builder.common.errors import PlugindexError

F = TypeVar("F", bound=Callable[..., None])


def options(*added: Callable[[F], F]) -> Callable[[F], F]:
    """Return one decorator that adds several Click options, in the order listed."""

    def add(command: F) -> F:
        for option in reversed(added):
            command = option(command)
        return command

    return add


# How a registry is trusted: its TUF root, or (said on every run) not at all.
tuf_options = options(
    click.option(
        "--root",
        envvar="PLUGINDEX_ROOT",
        metavar="FILE_OR_SHA256",
        help="The registry's TUF root: a root.json file, or the sha256 of its first root; "
        "pinned on first use [env: PLUGINDEX_ROOT].",
    ),
    click.option(
        "--insecure-no-tuf",
        "insecure_no_tuf",
        is_flag=True,
        envvar="PLUGINDEX_INSECURE_NO_TUF",
        help="Read the registry without checking its signed metadata (TUF): stale, "
        "rolled-back or mixed files go unnoticed. Said on every run.",
    ),
)
registry_options = options(
    click.option(
        "--registry",
        envvar="PLUGINDEX_REGISTRY",
        help="Registry name (see `plugindex registry add`), URL (http, https, file) or "
        "folder [env: PLUGINDEX_REGISTRY].",
    ),
    tuf_options,
    click.option(
        "--cache-dir",
        envvar="PLUGINDEX_CACHE_DIR",
        type=click.Path(path_type=Path, file_okay=False),
        help="HTTP cache folder [env: PLUGINDEX_CACHE_DIR].",
    ),
    click.option(
        "--offline",
        is_flag=True,
        envvar="PLUGINDEX_OFFLINE",
        help="Use only the cache: no network.",
    ),
    click.option(
        "--plugins-dir",
        envvar="PLUGINDEX_PLUGINS_DIR",
        type=click.Path(path_type=Path, file_okay=False),
        help="Where plugins are installed [env: PLUGINDEX_PLUGINS_DIR].",
    ),
)
plugins_dir_option = click.option(
    "--plugins-dir",
    envvar="PLUGINDEX_PLUGINS_DIR",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where plugins are installed [env: PLUGINDEX_PLUGINS_DIR].",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
dry_run_option = click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")


def _check_host_version(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """Refuse a host version that is not a semantic version, as a usage error."""
    from builder.format.requirements import RequirementError, key_of

    if value:
        try:
            key_of(value)
        except RequirementError as e:
            raise click.BadParameter(str(e)) from None
    return value


resolve_options = options(
    click.option(
        "--host-version",
        envvar="PLUGINDEX_HOST_VERSION",
        callback=_check_host_version,
        help="The host application's version: skip plugins not compatible with it.",
    ),
    click.option("--pre", is_flag=True, help="Accept prereleases for every requirement."),
)
# The options of a command that changes plugins (install, upgrade).
change_options = options(
    registry_options,
    resolve_options,
    click.option("--with-optional", is_flag=True, help="Install optional dependencies too."),
    dry_run_option,
    json_option,
)


def open_fetcher(found: Any, *, root: str | None, insecure_no_tuf: bool, offline: bool) -> Any:
    """Return the fetcher of the settings' registry, trusted through its TUF root.

    With --insecure-no-tuf, the registry is read as it is, and a warning says so.
    """
    from builder.cli.user_output import print_warnings
    from builder.client.connect import Where, connect

    source = connect(
        Where(
            registry=found.registry,
            registries=found.registries,
            data_dir=found.data_dir,
            cache_dir=found.cache_dir,
            root=root,
            insecure=insecure_no_tuf,
            offline=offline,
            timeout=found.timeout,
        )
    )
    print_warnings(source.warnings)
    return source.fetcher


def open_registry(
    registry: str | None,
    cache_dir: Path | None,
    offline: bool,
    plugins_dir: Path | None = None,
    host_version: str | None = None,
    *,
    root: str | None = None,
    insecure_no_tuf: bool = False,
    required: bool = True,
    from_lockfile: bool = False,
) -> tuple[Any, Any]:
    """Return (settings, Registry or None) from options, environment and the config file.

    With `from_lockfile`, a registry given nowhere is the one the lockfile was made from.
    Without `required`, a registry that cannot be trusted is left out, with a warning.
    """
    from builder.cli.user_output import warn
    from builder.client.config import settings
    from builder.client.lockfile import read_lockfile
    from builder.client.registry import Registry

    found = settings(
        registry=registry, plugins_dir=plugins_dir, cache_dir=cache_dir, host_version=host_version
    )
    if not found.registry and from_lockfile:
        source = read_lockfile(found.plugins_dir).source
        found = dataclasses.replace(found, registry=source)
    if not found.registry:
        if not required:
            return found, None
        raise no_registry_error()
    try:
        fetcher = open_fetcher(found, root=root, insecure_no_tuf=insecure_no_tuf, offline=offline)
    except PlugindexError as e:
        if required:
            raise
        warn(f"cannot check the registry: {e}")
        return found, None
    return found, Registry(fetcher)


def no_registry_error() -> PlugindexError:
    """Return the error for a command that needs a registry and was given none."""
    from builder.client.config import config_path

    return PlugindexError(
        f"no registry given (expected --registry NAME_OR_URL, $PLUGINDEX_REGISTRY, or "
        f"`registry = ...` in {config_path()})"
    )


def parse_request(text: str) -> Any:
    """Return a Request from NAME[@REQUIREMENT], suggesting the spelling meant."""
    from builder.client.install import Request
    from builder.client.suggest import request_suggestion
    from builder.format.names import name_problem
    from builder.format.requirements import RequirementError, parse_requirement

    name, at, requirement = text.partition("@")
    hint = request_suggestion(text)
    did_you_mean = f"; did you mean {hint!r}?" if hint else ""
    if problem := name_problem(name):
        if hint and "@" in hint and not at:
            problem = "a requirement follows '@' (NAME@REQUIREMENT)"
        raise click.BadParameter(f"{text!r}: {problem}{did_you_mean}", param_hint="NAME")
    if at:
        try:
            parse_requirement(requirement)
        except RequirementError as e:
            raise click.BadParameter(
                f"{text!r}: {e}{did_you_mean}", param_hint="NAME@REQUIREMENT"
            ) from None
    return Request(name, requirement if at else None)


def plugin_name(text: str) -> str:
    """Return the plugin name of NAME[@REQUIREMENT], as a usage error when it is not one."""
    return str(parse_request(text).name)


def plugins_dir_of(plugins_dir: Path | None) -> Path:
    """Return the plugins folder: the option or environment, else the config file's."""
    from builder.client.config import settings

    return settings(registry=None, plugins_dir=plugins_dir, cache_dir=None).plugins_dir
