"""The plugin authors' commands for keys and releases: keygen, sign, new, release, yank,
resign (the plugin.yaml changes, owner, key and deprecate, are in `author_owners`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from builder.cli.maintainer import DEFAULT_INDEX
from builder.cli.report import reports_errors
from builder.common.errors import PlugindexError

PASSPHRASE_ENV = "PLUGINDEX_KEY_PASSPHRASE"  # noqa: S105 - a variable name, not a secret


def _passphrase(env_var: str, *, confirm: bool) -> bytes | None:
    """Return the key passphrase from `env_var`, else ask on a terminal, else none."""
    value = os.environ.get(env_var)
    if value is not None:
        return value.encode("utf-8") or None
    if not sys.stdin.isatty():
        return None
    typed: str = click.prompt(
        "Passphrase (empty for none)",
        hide_input=True,
        default="",
        show_default=False,
        confirmation_prompt=confirm,
    )
    return typed.encode("utf-8") or None


@click.command()
@click.argument("key_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--encrypt/--no-encrypt",
    default=None,
    help="Protect the key with a passphrase ($PLUGINDEX_KEY_PASSPHRASE, else asked).",
)
@reports_errors
def keygen(key_file: Path, encrypt: bool | None) -> None:
    """Create an Ed25519 signing key in KEY_FILE (mode 0600) and print its public key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from builder.authoring.keys import write_private_key
    from builder.trust.signing import key_id, public_key_text

    passphrase = _passphrase(PASSPHRASE_ENV, confirm=True) if encrypt is not False else None
    if encrypt and not passphrase:
        raise PlugindexError(f"--encrypt: no passphrase given (set ${PASSPHRASE_ENV})")
    key = Ed25519PrivateKey.generate()
    write_private_key(key_file, key, passphrase)
    public = public_key_text(key)
    click.echo(f"wrote {key_file} ({'encrypted' if passphrase else 'not encrypted'})")
    click.echo(f"public key: {public}")
    click.echo(f"key id:     {key_id(public)}")
    click.echo("List the public key under your owner entry's `keys:` in plugin.yaml.")


def read_key(key_file: Path) -> Any:
    """Return the private key in `key_file`, asking its passphrase if it has one."""
    from builder.authoring.keys import is_encrypted, read_private_key

    passphrase = _passphrase(PASSPHRASE_ENV, confirm=False) if is_encrypted(key_file) else None
    return read_private_key(key_file, passphrase)


@click.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Your private key (from `plugindex keygen`).",
)
@click.option(
    "--yank",
    is_flag=True,
    help="Sign the file's `yanked:` (or `unyanked:`) statement instead of the release.",
)
@reports_errors
def sign(file: Path, key_file: Path, yank: bool) -> None:
    """Sign FILE (a version file, or plugin.yaml) in place with an owner's key."""
    from builder.authoring.sign import sign_file

    signed = sign_file(file, read_key(key_file), yank=yank)
    click.echo(f"signed the {signed.kind} statement of {file} with key {signed.key_id}")


@click.command()
@click.argument("name")
@click.option("--index", type=click.Path(path_type=Path), default=DEFAULT_INDEX, show_default=True)
@click.option("--version", "version", default="0.1.0", show_default=True)
@click.option(
    "--artifact",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The package file users will download.",
)
@click.option("--url", required=True, help="Where users will download the artifact from (https).")
@click.option("--owner", required=True, help="Your GitHub handle.")
@click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="Your private key: its public half is listed as yours, and the version is signed with it.",
)
@click.option("--description", default="", help="One or two sentences on what it does.")
@click.option("--license", "license_", default="MIT", show_default=True, help="An SPDX expression.")
@click.option("--category", required=True, help="One of the registry's category slugs.")
@click.option("--engine", default="python", show_default=True)
@click.option("--host", default="*", show_default=True, help="Requirement on the host's version.")
@click.option(
    "--plugin-api", default="^1", show_default=True, help="Requirement on the plugin API."
)
@reports_errors
def new(  # Click passes every option by keyword
    *,
    name: str,
    index: Path,
    version: str,
    artifact: Path,
    url: str,
    owner: str,
    key_file: Path,
    description: str,
    license_: str,
    category: str,
    engine: str,
    host: str,
    plugin_api: str,
) -> None:
    """Start plugin NAME: write its plugin.yaml and a signed first version file."""
    import datetime

    from builder.authoring.scaffold import NewPlugin, write_new_plugin
    from builder.authoring.sign import sign_file
    from builder.trust.signing import public_key_text

    key = read_key(key_file)
    spec = NewPlugin(
        name=name,
        version=version,
        owner=owner,
        public_key=public_key_text(key),
        artifact=artifact,
        url=url,
        description=description or f"The {name} plugin.",
        license=license_,
        category=category,
        engine=engine,
        host=host,
        plugin_api=plugin_api,
    )
    written = write_new_plugin(index, spec, datetime.datetime.now(tz=datetime.UTC).date())
    sign_file(written[1], key)
    for path in written:
        click.echo(f"wrote {path}")
    click.echo(
        f"next: edit them, `plugindex sign {written[1]} --key {key_file}` after any edit, "
        f"then `plugindex validate {index}`"
    )


index_option = click.option(
    "--index",
    type=click.Path(path_type=Path, file_okay=False),
    default=DEFAULT_INDEX,
    show_default=True,
    help="The index folder (holding registry.yaml).",
)
key_option = click.option(
    "--key",
    "key_file",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="An owner's private key (from `plugindex keygen`).",
)


def next_step(index: Path) -> None:
    """Say what an author does after changing the index."""
    click.echo(f"next: `plugindex validate {index}`, commit, and open a pull request")


@click.command()
@click.argument("name")
@click.argument("version")
@click.option("--reason", help="Why users should not install it (shown to them).")
@click.option("--undo", is_flag=True, help="Take back an earlier yank of VERSION.")
@key_option
@index_option
@reports_errors
def yank(  # Click passes every option by keyword
    *, name: str, version: str, reason: str | None, undo: bool, key_file: Path, index: Path
) -> None:
    """Yank VERSION of plugin NAME (or take the yank back): write it and sign it."""
    from builder.authoring.yank import unyank_version, yank_version

    if undo and reason is not None:
        raise click.UsageError("--undo takes no --reason")
    if not undo and reason is None:
        raise click.UsageError("Missing option '--reason' (say why users should not install it)")
    key = read_key(key_file)
    if undo:
        done = unyank_version(index, name, version, key=key)
        what = "took back the yank of"
    else:
        assert reason is not None
        done = yank_version(index, name, version, reason=reason, key=key)
        what = "yanked"
    click.echo(
        f"{what} {name} {version} (serial {done.serial}), signed by {done.owner} "
        f"with key {done.key_id}: {done.file}"
    )
    next_step(index)


@click.command()
@click.argument("name")
@click.argument("version")
@click.option(
    "--artifact",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The package file users will download (hashed here).",
)
@click.option("--url", required=True, help="Where users will download it from.")
@key_option
@index_option
@click.option(
    "--from",
    "previous",
    metavar="VERSION",
    help="The version file to start from (default: the newest version below VERSION).",
)
@click.option("--released", metavar="YYYY-MM-DD", help="The release date (default: today, UTC).")
@click.option("--filename", help="The file name it is published under (default: the artifact's).")
@click.option("--host", help="A new requirement on the host's version.")
@click.option("--plugin-api", help="A new requirement on the plugin API.")
@click.option("--engine", help="A new engine.")
@click.option(
    "--dependency",
    "dependencies",
    multiple=True,
    metavar="NAME@REQ",
    help="Add a dependency or change its requirement (repeatable).",
)
@click.option(
    "--drop-dependency",
    "drop_dependencies",
    multiple=True,
    metavar="NAME",
    help="Drop a dependency the previous version had (repeatable).",
)
@reports_errors
def release(
    *,
    name: str,
    version: str,
    artifact: Path,
    url: str,
    key_file: Path,
    index: Path,
    previous: str | None,
    released: str | None,
    filename: str | None,
    host: str | None,
    plugin_api: str | None,
    engine: str | None,
    dependencies: tuple[str, ...],
    drop_dependencies: tuple[str, ...],
) -> None:
    """Release VERSION of plugin NAME: a signed version file made from the previous one."""
    import datetime

    from builder.authoring.release import NewRelease, write_release

    try:
        day = (
            datetime.date.fromisoformat(released)
            if released
            else datetime.datetime.now(tz=datetime.UTC).date()
        )
    except ValueError:
        raise click.BadParameter(
            f"expected YYYY-MM-DD, got {released!r}", param_hint="--released"
        ) from None
    requirements: dict[str, str] = {}
    for text in dependencies:
        dep, at, requirement = text.partition("@")
        if not at or not dep or not requirement:
            raise click.BadParameter(
                f"expected NAME@REQUIREMENT such as auth-jwt@^1.2, got {text!r}",
                param_hint="--dependency",
            )
        requirements[dep] = requirement
    spec = NewRelease(
        name=name,
        version=version,
        artifact=artifact,
        url=url,
        released=day,
        previous=previous,
        filename=filename,
        host=host,
        plugin_api=plugin_api,
        engine=engine,
        dependencies=requirements,
        drop_dependencies=drop_dependencies,
    )
    done = write_release(index, spec, read_key(key_file))
    click.echo(
        f"wrote {done.file} (from {done.previous}), signed by {done.owner} with key {done.key_id}"
    )
    next_step(index)


@click.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True, dir_okay=False)
)
@key_option
@reports_errors
def resign(files: tuple[Path, ...], key_file: Path) -> None:
    """Sign again what a revoked key signed in version FILES, with an active owner key."""
    from builder.authoring.key_changes import resign_file

    key = read_key(key_file)
    for file in files:
        done = resign_file(file, key)
        click.echo(
            f"signed the {' and '.join(done.statements)} statement(s) of {file} again with "
            f"key {done.key_id} (replacing revoked key {', '.join(done.revoked)})"
        )


COMMANDS = (keygen, sign, new, release, yank, resign)
