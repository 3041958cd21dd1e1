"""Open a registry the way the user named it, trusted through its pinned TUF root.

A registry is named by a name (from `config.toml`'s `[registries]`, or pinned by
`plugindex registry add`) or by its URL or folder. Its files are read through its
signed metadata (`signed.SignedFetcher`) from the root pinned for it: the one
`registry add` pinned, or a `--root` (a root file, or the sha256 of the first root
the registry serves) pinned on first use. No pin and no `--root`: refused, unless
the user says `--insecure-no-tuf`, which reads the registry as it is (author
signatures are still checked) and says so on every run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.client.signed import SignedFetcher
from builder.client.target_cache import targets_cache
from builder.client.tuf_pin import pin_registry, pinned_root, registry_slug, trust_dir
from builder.client.tuf_refusals import TufRefusedError
from builder.client.tuf_updater import TufClient
from builder.common.fetch import READ_TIMEOUT, Fetcher, HttpFetcher, open_registry
from builder.format.names import name_problem

INSECURE = (
    "--insecure-no-tuf: {where} is read without checking its signed metadata (TUF): a "
    "stale, rolled-back or mixed registry goes unnoticed; only author signatures are checked"
)


@dataclass(frozen=True)
class Source:
    """An opened registry: how to fetch its files, and what the user should be told."""

    fetcher: Fetcher
    name: str | None  # the name its trust is kept under; None when read without TUF
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Where:
    """Where the user's registry is, and how it is to be trusted."""

    registry: str  # a registry name, URL or folder
    registries: Mapping[str, str]  # config.toml's [registries]: name -> URL
    data_dir: Path  # the user data folder (trust in tuf/NAME/)
    cache_dir: Path | None
    root: str | None = None  # --root: a root file, or the sha256 of root 1
    insecure: bool = False  # --insecure-no-tuf
    offline: bool = False
    timeout: float = READ_TIMEOUT  # seconds of silence allowed per request


def _normalised(location: str) -> str:
    return location.rstrip("/")


def locate(where: Where) -> tuple[str | None, str]:
    """Return (registry name or None, URL or folder) for what the user named."""
    spec = where.registry
    if spec in where.registries:
        return spec, where.registries[spec]
    if name_problem(spec) is None:
        found = pinned_root(trust_dir(where.data_dir, spec))
        if found is not None and found[0]:
            return spec, found[0]  # added with `registry add`, not (or no longer) in config.toml
    for name, url in sorted(where.registries.items()):
        if _normalised(url) == _normalised(spec):
            return name, url
    return None, spec


def connect(where: Where, opener: Callable[[str], Fetcher] | None = None) -> Source:
    """Return the registry's fetcher: through its signed metadata, or as it is when insecure.

    `opener` makes the plain fetcher of a URL or folder (default: `open_registry` with
    the settings' timeout); nothing is fetched until a file is asked for.
    """
    name, location = locate(where)
    if opener is not None:
        raw = opener(location)
    else:
        raw = open_registry(
            location, where.cache_dir, offline=where.offline, read_timeout=where.timeout
        )
    if where.insecure:
        return Source(raw, None, (INSECURE.format(where=raw.location),))
    key = name or registry_slug(raw.location)
    folder = trust_dir(where.data_dir, key)
    if where.root is not None:
        folder = pin_registry(raw, where.data_dir, key, where.root)
    found = pinned_root(folder)
    if found is None:
        raise TufRefusedError(
            f"{raw.location}: no trusted root for this registry (expected --root "
            f"FILE_OR_SHA256, $PLUGINDEX_ROOT, or a registry added with `plugindex registry "
            f"add NAME URL --root FILE_OR_SHA256`; --insecure-no-tuf reads it unverified)"
        )
    # --offline means no network: a registry in a folder is read as usual.
    offline = where.offline and isinstance(raw, HttpFetcher)
    client = TufClient(raw, folder, found[1], targets_cache(where.cache_dir, key), offline)
    return Source(SignedFetcher(client), key)
