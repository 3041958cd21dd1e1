"""The plugin authors' commands that change plugin.yaml, each a signed change with the
revision raised: owner add/remove, key retire/revoke, deprecate."""

from __future__ import annotations

from pathlib import Path

import click

from builder.cli.author import index_option, key_option, next_step, read_key
from builder.cli.report import reports_errors


@click.group()
def owner() -> None:
    """Add or remove an owner of a plugin (a signed plugin.yaml change)."""


@owner.command("add")
@click.argument("name")
@click.argument("handle")
@click.option(
    "--public-key",
    metavar="ed25519:...",
    help="The new owner's public key (from their `plugindex keygen`); for an existing "
    "owner, a key to add to theirs.",
)
@key_option
@index_option
@reports_errors
def owner_add(
    *, name: str, handle: str, public_key: str | None, key_file: Path, index: Path
) -> None:
    """Add GitHub user HANDLE as an owner of plugin NAME (or add a key of theirs)."""
    from builder.authoring.manifest import add_owner

    done = add_owner(index, name, handle, public_key=public_key, key=read_key(key_file))
    click.echo(
        f"added {handle} to the owners of {name} (revision {done.revision}), signed by "
        f"{done.owner} with key {done.key_id}: {done.file}"
    )
    next_step(index)


@owner.command("remove")
@click.argument("name")
@click.argument("handle")
@key_option
@index_option
@reports_errors
def owner_remove(*, name: str, handle: str, key_file: Path, index: Path) -> None:
    """Remove GitHub user HANDLE from the owners of plugin NAME (never the last one)."""
    from builder.authoring.manifest import remove_owner

    done = remove_owner(index, name, handle, key=read_key(key_file))
    click.echo(
        f"removed {handle} from the owners of {name} (revision {done.revision}), signed by "
        f"{done.owner} with key {done.key_id}: {done.file}"
    )
    next_step(index)


@click.command()
@click.argument("name")
@click.option("--message", help="What users should know (shown when they use the plugin).")
@click.option("--replacement", metavar="PLUGIN", help="The plugin to use instead.")
@click.option("--undo", is_flag=True, help="Take the deprecation back.")
@key_option
@index_option
@reports_errors
def deprecate(  # Click passes every option by keyword
    *,
    name: str,
    message: str | None,
    replacement: str | None,
    undo: bool,
    key_file: Path,
    index: Path,
) -> None:
    """Deprecate plugin NAME (or take it back): a signed plugin.yaml change."""
    from builder.authoring.manifest import deprecate as deprecate_plugin
    from builder.authoring.manifest import undeprecate

    if undo and (message is not None or replacement is not None):
        raise click.UsageError("--undo takes no --message or --replacement")
    if not undo and message is None:
        raise click.UsageError("Missing option '--message' (say why, and what to do instead)")
    key = read_key(key_file)
    if undo:
        done = undeprecate(index, name, key=key)
        what = f"took back the deprecation of {name}"
    else:
        assert message is not None
        done = deprecate_plugin(index, name, message=message, replacement=replacement, key=key)
        what = f"deprecated {name}" + (f" in favour of {replacement}" if replacement else "")
    click.echo(
        f"{what} (revision {done.revision}), signed by {done.owner} with key {done.key_id}: "
        f"{done.file}"
    )
    next_step(index)


_new_key_option = click.option(
    "--new-key",
    metavar="ed25519:...",
    help="A new active key for the same owner, added in the same change (a rotation).",
)


@click.group("key")
def key_group() -> None:
    """Retire or revoke an owner's key (a signed plugin.yaml change)."""


@key_group.command("retire")
@click.argument("name")
@click.option(
    "--old-key",
    required=True,
    metavar="ed25519:...",
    help="The key to retire: it keeps vouching for the versions it signed, nothing else.",
)
@_new_key_option
@key_option
@index_option
@reports_errors
def key_retire(
    *, name: str, old_key: str, new_key: str | None, key_file: Path, index: Path
) -> None:
    """Retire a key of plugin NAME, bound to the versions it signed."""
    from builder.authoring.key_changes import retire_key

    done = retire_key(index, name, old_key, new_key=new_key, key=read_key(key_file))
    change = done.change
    bound = ", ".join(done.versions) or "no version"
    click.echo(
        f"retired a key of {done.owner}, bound to {bound} (revision {change.revision}), "
        f"signed by {change.owner} with key {change.key_id}: {change.file}"
    )
    next_step(index)


@key_group.command("revoke")
@click.argument("name")
@click.argument("public_key", metavar="PUBKEY")
@click.option("--reason", required=True, help="Why (lost, leaked…): shown to users.")
@_new_key_option
@key_option
@index_option
@reports_errors
def key_revoke(
    *, name: str, public_key: str, reason: str, new_key: str | None, key_file: Path, index: Path
) -> None:
    """Revoke a key of plugin NAME: it vouches for nothing, old or new."""
    from builder.authoring.key_changes import revoke_key

    done = revoke_key(
        index, name, public_key, reason=reason, new_key=new_key, key=read_key(key_file)
    )
    change = done.change
    click.echo(
        f"revoked a key of {done.owner} (revision {change.revision}), signed by "
        f"{change.owner} with key {change.key_id}: {change.file}"
    )
    if done.versions:
        folder = change.file.parent / "versions"
        click.echo(
            f"it signed {', '.join(done.versions)}: until an owner signs them again, users "
            "are not offered them; run, with an active key:"
        )
        for version in done.versions:
            click.echo(f"  plugindex resign {folder / f'{version}.yaml'} --key KEY_FILE")
    next_step(index)


COMMANDS = (owner, key_group, deprecate)
