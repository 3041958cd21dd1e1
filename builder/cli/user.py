"""The plugin user's commands: info, install, list, upgrade, uninstall, verify, trust.

Exit codes: 0 success; 1 `verify` found changed files; 2 bad usage; 3 an error we can
explain (network, I/O, a malformed registry); 4 the request cannot be met (no such
plugin, no version satisfies every requirement, not installed, needed by another);
5 refused: a verification failed (checksum, signature, owner keys, unsafe archive),
and nothing was changed; 70 an internal bug; 130 interrupted.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from builder.cli.report import reports_errors
from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode

F = TypeVar("F", bound=Callable[..., None])


def _options(*options: Callable[[F], F]) -> Callable[[F], F]:
    """Return one decorator that adds several Click options, in the order listed."""

    def add(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return add


_registry_options = _options(
    click.option(
        "--registry",
        envvar="PLUGINDEX_REGISTRY",
        help="Registry URL (http, https, file) or folder [env: PLUGINDEX_REGISTRY].",
    ),
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
)
_plugins_dir_option = click.option(
    "--plugins-dir",
    envvar="PLUGINDEX_PLUGINS_DIR",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where plugins are installed [env: PLUGINDEX_PLUGINS_DIR].",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


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


# The options of a command that changes plugins (install, upgrade): see _change_plugins.
_change_options = _options(
    _registry_options,
    _plugins_dir_option,
    click.option(
        "--host-version",
        envvar="PLUGINDEX_HOST_VERSION",
        callback=_check_host_version,
        help="The host application's version: skip plugins not compatible with it.",
    ),
    click.option("--with-optional", is_flag=True, help="Install optional dependencies too."),
    click.option("--pre", is_flag=True, help="Accept prereleases for every requirement."),
    _json_option,
)


def _emit(as_json: bool, data: Any, text: Callable[[], None]) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        text()


def _open(
    registry: str | None,
    cache_dir: Path | None,
    offline: bool,
    plugins_dir: Path | None = None,
    host_version: str | None = None,
) -> tuple[Any, Any]:
    """Return (settings, Registry) from options, environment and the config file."""
    from builder.client.config import config_path, settings
    from builder.client.registry import Registry
    from builder.common.fetch import open_registry

    found = settings(
        registry=registry, plugins_dir=plugins_dir, cache_dir=cache_dir, host_version=host_version
    )
    if not found.registry:
        raise PlugindexError(
            f"no registry given (expected --registry URL, $PLUGINDEX_REGISTRY, or "
            f"`registry = ...` in {config_path()})"
        )
    return found, Registry(open_registry(found.registry, found.cache_dir, offline=offline))


def _parse_request(text: str) -> Any:
    from builder.client.install import Request
    from builder.format.names import name_problem
    from builder.format.requirements import RequirementError, parse_requirement

    name, at, requirement = text.partition("@")
    problem = name_problem(name)
    if problem:
        raise click.BadParameter(f"{text!r}: {problem}", param_hint="NAME")
    if at:
        try:
            parse_requirement(requirement)
        except RequirementError as e:
            raise click.BadParameter(f"{text!r}: {e}", param_hint="NAME@REQUIREMENT") from None
    return Request(name, requirement if at else None)


def _progress(as_json: bool) -> Any:
    """Return a progress display for downloads on a terminal; None when piped or --json."""
    if as_json or not sys.stderr.isatty():
        return None

    @contextlib.contextmanager
    def show(total: int) -> Iterator[Callable[[int], None]]:
        lock = threading.Lock()
        with click.progressbar(length=total, label="downloading", file=sys.stderr) as bar:

            def advance(count: int) -> None:
                with lock:
                    bar.update(count)

            yield advance

    return show


def _outcome_data(outcome: Any) -> dict[str, Any]:
    return {
        "changes": [{"name": c.name, "from": c.old, "to": c.new} for c in outcome.changes],
        "unchanged": [{"name": k.name, "version": k.version} for k in outcome.unchanged],
        "warnings": outcome.warnings,
    }


def _print_outcome(outcome: Any, nothing: str) -> None:
    for warning in outcome.warnings:
        click.echo(f"warning: {warning}", err=True)
    for change in outcome.changes:
        if change.old is None:
            click.echo(f"installed {change.name} {change.new}")
        elif change.new is None:
            click.echo(f"uninstalled {change.name} {change.old}")
        else:
            click.echo(f"changed {change.name} {change.old} -> {change.new}")
    if not outcome.changes:
        click.echo(nothing)


@click.command()
@click.argument("spec", metavar="NAME[@VERSION]")
@_registry_options
@_json_option
@reports_errors
def info(
    spec: str, registry: str | None, cache_dir: Path | None, offline: bool, as_json: bool
) -> None:
    """Show a plugin: facts, versions (yanked marked), dependencies, signatures."""
    from builder.client.registry import info_lines, plugin_info
    from builder.format.names import name_problem

    name, _, version = spec.partition("@")
    if problem := name_problem(name):
        raise click.BadParameter(f"{spec!r}: {problem}", param_hint="NAME")
    _, reg = _open(registry, cache_dir, offline)
    data = plugin_info(reg, name, version or None)

    _emit(as_json, data, lambda: click.echo("\n".join(info_lines(data))))


def _change_plugins(
    run: Callable[..., Any],
    targets: Callable[[], list[Any]],
    *,
    registry: str | None,
    cache_dir: Path | None,
    offline: bool,
    plugins_dir: Path | None,
    host_version: str | None,
    with_optional: bool,
    pre: bool,
    as_json: bool,
) -> Any:
    """Open the registry, then install or upgrade `targets()` with the resolve options given."""
    from builder.client.resolve import Options

    found, reg = _open(registry, cache_dir, offline, plugins_dir, host_version)
    return run(
        reg,
        found.plugins_dir,
        targets(),
        options=Options(host=found.host_version, optional=with_optional, prerelease=pre),
        cache_dir=found.cache_dir,
        progress=_progress(as_json),
    )


@click.command()
@click.argument("specs", nargs=-1, required=True, metavar="NAME[@REQUIREMENT]...")
@_change_options
@reports_errors
def install(*, specs: tuple[str, ...], as_json: bool, **options: Any) -> None:
    """Install plugins and their dependencies: newest versions that fit, verified."""
    from builder.client.install import install as run_install

    requests = [_parse_request(s) for s in specs]
    outcome = _change_plugins(run_install, lambda: requests, as_json=as_json, **options)
    asked = {r.name for r in requests}
    kept = ", ".join(f"{k.name} {k.version}" for k in outcome.unchanged if k.name in asked)
    _emit(
        as_json,
        _outcome_data(outcome),
        lambda: _print_outcome(outcome, f"already installed: {kept}"),
    )


@click.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@_change_options
@reports_errors
def upgrade(*, names: tuple[str, ...], as_json: bool, **options: Any) -> None:
    """Upgrade installed plugins (all, or the NAMEs) within their requirements."""
    from builder.client.install import upgrade as run_upgrade

    # The names are checked once the registry is open: a missing registry is reported first.
    outcome = _change_plugins(
        run_upgrade, lambda: [_parse_request(n).name for n in names], as_json=as_json, **options
    )
    _emit(
        as_json, _outcome_data(outcome), lambda: _print_outcome(outcome, "everything is up to date")
    )


def _plugins_dir(plugins_dir: Path | None) -> Path:
    from builder.client.config import settings

    return settings(registry=None, plugins_dir=plugins_dir, cache_dir=None).plugins_dir


@click.command()
@click.argument("name")
@_plugins_dir_option
@click.option("--force", is_flag=True, help="Uninstall even if installed plugins need it.")
@_json_option
@reports_errors
def uninstall(name: str, plugins_dir: Path | None, force: bool, as_json: bool) -> None:
    """Uninstall plugin NAME (refused while an installed plugin needs it)."""
    from builder.client.install import uninstall as run_uninstall

    outcome = run_uninstall(_plugins_dir(plugins_dir), _parse_request(name).name, force=force)
    _emit(as_json, _outcome_data(outcome), lambda: _print_outcome(outcome, ""))


@click.command(name="list")
@_plugins_dir_option
@_json_option
@reports_errors
def list_(plugins_dir: Path | None, as_json: bool) -> None:
    """List installed plugins."""
    from builder.client.lockfile import read_lockfile

    folder = _plugins_dir(plugins_dir)
    lock = read_lockfile(folder)
    rows = [
        {
            "name": name,
            "version": p.version,
            "requested": p.requested,
            "explicit": p.explicit,
            "yanked": p.yanked,
            "signed_by": p.signed_by,
        }
        for name, p in sorted(lock.plugins.items())
    ]

    def text() -> None:
        if not rows:
            click.echo(f"no plugins installed in {folder}")
        for row in rows:
            why = f"you asked for {row['requested'] or 'it'}" if row["explicit"] else "dependency"
            yanked = f"; YANKED: {row['yanked']}" if row["yanked"] else ""
            click.echo(f"{row['name']} {row['version']} ({why}{yanked})")

    _emit(as_json, {"plugins_dir": str(folder), "plugins": rows}, text)


@click.command()
@_plugins_dir_option
@_json_option
@reports_errors
def verify(plugins_dir: Path | None, as_json: bool) -> None:
    """Re-hash every installed file against the lockfile."""
    from builder.client.install import verify_installed

    report = verify_installed(_plugins_dir(plugins_dir))

    def text() -> None:
        for problem in report.problems:
            click.echo(problem, err=True)
        if report.problems:
            click.echo(
                f"{len(report.problems)} problem(s) in {report.checked} installed files", err=True
            )
        else:
            click.echo(f"ok: {report.checked} installed files match the lockfile")

    _emit(as_json, {"checked": report.checked, "problems": report.problems}, text)
    if report.problems:
        sys.exit(ExitCode.PROBLEMS)


@click.command()
@click.argument("name")
@_registry_options
@_plugins_dir_option
@_json_option
@reports_errors
def trust(  # Click passes every option by keyword
    *,
    name: str,
    registry: str | None,
    cache_dir: Path | None,
    offline: bool,
    plugins_dir: Path | None,
    as_json: bool,
) -> None:
    """Pin plugin NAME's current owner keys, accepting a key change deliberately."""
    from builder.client.install import repin
    from builder.trust.signing import key_id

    found, reg = _open(registry, cache_dir, offline, plugins_dir)
    pinned = repin(reg, found.plugins_dir, _parse_request(name).name)
    before = [key_id(k) for k in pinned.old.keys] if pinned.old else []
    after = [key_id(k) for k in pinned.new.keys]

    def text() -> None:
        click.echo(
            f"pinned {name}'s owner keys: {', '.join(after)} (revision {pinned.new.revision}); "
            f"before: {', '.join(before) or 'none'}"
        )

    revision = pinned.new.revision
    _emit(as_json, {"name": name, "before": before, "after": after, "revision": revision}, text)


COMMANDS = (info, install, list_, upgrade, uninstall, verify, trust)
