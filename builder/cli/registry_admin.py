"""`plugindex registry`: set up a registry's signed metadata (TUF), keep it fresh, trust one.

Operators: `init` (root 1 and every role's keys), `rotate-root` (root N+1),
`refresh-timestamp` (re-sign the live timestamp on a schedule, no rebuild). Users:
`add` (trust a registry through its root). docs/tuf.md is the operator's guide.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from builder.cli.report import reports_errors

if TYPE_CHECKING:
    from securesystemslib.signer import Signer

    from builder.format.models import Tuf
    from builder.publish.storage import Storage
    from builder.tuf.metadata import Expiry

DEFAULT_INDEX = "registry-index"
# As publish serves them: versioned metadata never changes, the timestamp often does.
_IMMUTABLE = "public, max-age=31536000, immutable"
_MUTABLE = "public, max-age=60"


@dataclass(frozen=True)
class StorePrevious:
    """A published registry as the signing stage's `Previous`: its store and live record."""

    store: Storage
    objects: Mapping[str, str]  # key -> sha256, from the live record

    def read(self, path: str) -> bytes | None:
        """Return a published file, or None."""
        found = self.store.get(path)
        return None if found is None else found.data

    def sha256(self, path: str) -> str | None:
        """Return the sha256 the live record holds for a published file."""
        return self.objects.get(path)


@dataclass(frozen=True)
class StoreWriter:
    """A store as `admin.MetadataStore`: metadata read and written whole."""

    store: Storage

    def read(self, path: str) -> bytes | None:
        """Return a published file, or None."""
        found = self.store.get(path)
        return None if found is None else found.data

    def write(self, path: str, data: bytes) -> None:
        """Upload a metadata file (the timestamp revalidated often, the rest immutable)."""
        from builder.common import layout

        cache = _MUTABLE if path == layout.TIMESTAMP else _IMMUTABLE
        self.store.put(path, data, content_type="application/json", cache_control=cache)


def _settings(index: Path) -> Tuf:
    """Return registry.yaml's `tuf:` settings, or raise every problem of the file."""
    from builder.common.errors import InvalidIndexError
    from builder.format.load import load_registry

    registry, _, problems = load_registry(index)
    if registry is None or problems:
        raise InvalidIndexError(problems)
    return registry.tuf


def _expiry(index: Path) -> Expiry:
    from builder.tuf.metadata import Expiry

    return Expiry(**_settings(index).expiry.model_dump())


@click.group()
def registry() -> None:
    """Set up and keep a registry's signed metadata (TUF); trust a registry."""


@registry.command()
@click.argument("index", default=DEFAULT_INDEX, type=click.Path(path_type=Path))
@click.option(
    "--keys-out",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for the new private keys (move the root keys offline at once).",
)
@click.option("--root-keys", default=3, show_default=True, type=click.IntRange(1, 15))
@click.option(
    "--threshold",
    default=2,
    show_default=True,
    type=click.IntRange(1, 15),
    help="Root keys needed to sign a new root.",
)
@click.option(
    "--bins", type=click.IntRange(2, 65536), help="Hashed bins (default: sized to INDEX)."
)
@reports_errors
def init(index: Path, keys_out: Path, root_keys: int, threshold: int, bins: int | None) -> None:
    """Create INDEX's TUF root and every role's key (root offline; the others for CI)."""
    from builder.tuf.admin import describe_root, init_registry
    from builder.tuf.metadata import TufError
    from builder.tuf.metadata import parse as parse_metadata

    if bins is not None and bins & (bins - 1):
        raise click.BadParameter(f"expected a power of two, got {bins}", param_hint="--bins")
    if keys_out.exists() and any(keys_out.iterdir()):
        raise TufError(f"{keys_out}: not empty (expected a new folder for the private keys)")
    result = init_registry(
        index, keys_out, root_keys=root_keys, threshold=threshold, bins=bins, expiry=_expiry(index)
    )
    root = parse_metadata(result.root.read_bytes(), "root", str(result.root)).signed
    for line in describe_root(root):
        click.echo(line)
    click.echo(f"wrote {result.root} (commit it) and {result.bins} bins to {index}/registry.yaml")
    for role, paths in result.keys.items():
        for path in paths:
            where = (
                "move OFFLINE now"
                if role == "root"
                else f"CI secret PLUGINDEX_TUF_{role.upper()}_KEY = base64 of it"
            )
            click.echo(f"  {path}: {role} key ({where})")


def _key_option(values: tuple[str, ...], option: str) -> dict[str, list[Path]]:
    parsed: dict[str, list[Path]] = {}
    for value in values:
        role, sep, files = value.partition("=")
        if not sep or not files:
            raise click.BadParameter(
                f"expected ROLE=FILE[,FILE…], got {value!r}", param_hint=option
            )
        parsed[role] = [Path(f) for f in files.split(",")]
    return parsed


@registry.command("rotate-root")
@click.argument("index", default=DEFAULT_INDEX, type=click.Path(path_type=Path))
@click.option(
    "--sign",
    "sign_with",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A root private key to sign with (repeat: old and new thresholds must be met).",
)
@click.option(
    "--set",
    "set_keys",
    multiple=True,
    metavar="ROLE=FILE[,FILE…]",
    help="Replace a role's keys with these (public or private key files).",
)
@click.option(
    "--threshold", "thresholds", multiple=True, metavar="ROLE=N", help="Set a role's threshold."
)
@reports_errors
def rotate_root(
    index: Path, sign_with: tuple[Path, ...], set_keys: tuple[str, ...], thresholds: tuple[str, ...]
) -> None:
    """Write INDEX's next root, signed by the current and the new root thresholds."""
    from builder.tuf.admin import describe_root
    from builder.tuf.admin import rotate_root as run_rotate
    from builder.tuf.keys import read_private, read_public
    from builder.tuf.metadata import parse as parse_metadata

    keys = {
        role: [read_public(p) for p in paths]
        for role, paths in _key_option(set_keys, "--set").items()
    }
    levels: dict[str, int] = {}
    for value in thresholds:
        role, _, number = value.partition("=")
        if not number.isdigit():
            raise click.BadParameter(f"expected ROLE=N, got {value!r}", param_hint="--threshold")
        levels[role] = int(number)
    signers = [read_private(p) for p in sign_with]
    target = run_rotate(index, signers, keys=keys, thresholds=levels, expiry=_expiry(index))
    root = parse_metadata(target.read_bytes(), "root", str(target)).signed
    for line in describe_root(root):
        click.echo(line)
    click.echo(f"wrote {target}: commit it; the next build publishes it")


@registry.command("refresh-timestamp")
@click.argument("target")
@click.option(
    "--index",
    default=DEFAULT_INDEX,
    show_default=True,
    type=click.Path(path_type=Path),
    help="The index whose registry.yaml names the signers and the expiry.",
)
@reports_errors
def refresh_timestamp(target: str, index: Path) -> None:
    """Re-sign TARGET's timestamp (and roles near expiry) with the clock; no rebuild."""
    from builder.format.paths import REGISTRY_FILE
    from builder.publish.target import open_target
    from builder.tuf.admin import refresh_timestamp as run_refresh
    from builder.tuf.metadata import check_root_chain
    from builder.tuf.signers import SignerContext, load_signer, signer_uri
    from builder.tuf.stage import root_files

    settings = _settings(index)
    files = root_files(index)
    root = check_root_chain([f.read_bytes() for f in files], lambda n: str(files[n - 1]), None)

    def signer_for(role: str) -> Signer:
        uri, origin = signer_uri(role, settings.signers, os.environ, index / REGISTRY_FILE)
        keys = [root.get_key(k) for k in root.roles[role].keyids]
        return load_signer(uri, origin, SignerContext(role, index, os.environ, keys))

    done = run_refresh(StoreWriter(open_target(target)), root, signer_for, expiry=_expiry(index))
    for path in done.written:
        click.echo(f"uploaded {path}")
    for role, when in done.expires.items():
        click.echo(f"{role} now expires {when:%Y-%m-%d %H:%M} UTC")


@registry.command()
@click.argument("name")
@click.argument("url")
@click.option(
    "--root",
    "root",
    required=True,
    envvar="PLUGINDEX_ROOT",
    help="The registry's root.json, or the sha256 of its first root [env: PLUGINDEX_ROOT].",
)
@click.option("--cache-dir", type=click.Path(path_type=Path), envvar="PLUGINDEX_CACHE_DIR")
@reports_errors
def add(name: str, url: str, root: str, cache_dir: Path | None) -> None:
    """Trust the registry at URL, as NAME, through its TUF root."""
    import platformdirs

    from builder.client.config import add_registry, config_path, user_data_dir
    from builder.client.tuf_updater import trust_registry
    from builder.common.fetch import open_registry
    from builder.format.names import name_problem

    if (problem := name_problem(name)) is not None:
        raise click.BadParameter(problem, param_hint="NAME")
    cache = cache_dir or platformdirs.user_cache_path("plugindex")
    client = trust_registry(open_registry(url, cache), user_data_dir(), name, root, cache)
    default = add_registry(config_path(), name, url)
    click.echo(f"trusting {url} as {name} (root pinned in {client.state})")
    click.echo(f"{config_path()}: registries.{name}{' (the default registry)' if default else ''}")


COMMANDS = (registry,)
