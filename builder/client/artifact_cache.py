"""The artifact cache: verified artifacts by sha256, bounded in size and age.

One folder (`<cache>/artifacts/`) holds each artifact under its sha256. A file's
modification time is when it was last used: a read bumps it, so pruning drops the
least recently used first. Pruning keeps every artifact the installed plugins
reference (a reinstall or a repair needs no network), drops the others unused for
longer than the age bound, then the least recently used until the rest fits the
size bound.

Other processes share the folder. Each removal is one unlink, so the cache is never
half-pruned, and a file used in the last few minutes is never removed: another
install may have just picked it. A reader that loses the race anyway is not hurt:
opening the file, not a prior existence check, decides a hit, an open file
survives its unlink (POSIX), and a miss just downloads again.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from builder.common.files import write_atomic

log = logging.getLogger(__name__)

GIB = 1 << 30
DAY = 24 * 60 * 60  # seconds
_ENTRY = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX = "."  # write_atomic's temp files: `.<sha256>.<random>`


@dataclass(frozen=True)
class CacheBounds:
    """How much the artifact cache keeps of what no installed plugin references."""

    max_bytes: int = 2 * GIB  # the whole cache, referenced artifacts included
    max_age: float = 30 * DAY  # seconds unused after which an artifact is dropped
    grace: float = 10 * 60  # seconds: an artifact used this recently is never dropped


DEFAULT_BOUNDS = CacheBounds()


@dataclass(frozen=True)
class Pruned:
    """What one pruning did."""

    removed: int  # artifacts (and stale temp files) removed
    freed: int  # bytes
    kept: int  # bytes left in the cache


def open_cached(folder: Path, sha256: str) -> BinaryIO | None:
    """Open a cached artifact and mark it used; None when the cache has none."""
    try:
        stream = (folder / sha256).open("rb")
    except FileNotFoundError:
        return None
    except OSError as e:  # not a folder, unreadable: the cache is no use, the download is
        log.info("cannot read the cache %s: %s", folder / sha256, e)
        return None
    try:
        os.utime(stream.fileno())  # used now: the last to be pruned
    except OSError as e:  # a read-only cache still serves
        log.debug("cannot mark %s used: %s", folder / sha256, e)
    return stream


def store(folder: Path, sha256: str, source: Path) -> None:
    """Keep a verified artifact in the cache (atomically; a failure is only logged)."""
    try:
        with source.open("rb") as stream:
            write_atomic(folder / sha256, stream)
    except OSError as e:
        log.warning("cannot cache %s: %s", folder / sha256, e)


def discard(folder: Path, sha256: str) -> None:
    """Remove a cached artifact that no longer matches its name."""
    (folder / sha256).unlink(missing_ok=True)


def prune(
    folder: Path,
    keep: Collection[str],
    bounds: CacheBounds = DEFAULT_BOUNDS,
    *,
    now: float | None = None,
) -> Pruned:
    """Drop unkept artifacts unused past the age bound, then the oldest past the size bound."""
    now = time.time() if now is None else now
    entries: list[tuple[float, int, Path]] = []  # (last used, size, path) not to keep
    total = removed = freed = 0
    try:
        listing = list(os.scandir(folder))
    except FileNotFoundError:
        return Pruned(0, 0, 0)
    except OSError as e:
        log.info("cannot prune %s: %s", folder, e)
        return Pruned(0, 0, 0)
    for entry in listing:
        try:
            stat = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # removed by another process meanwhile
            continue
        if entry.name.startswith(_TEMP_PREFIX):
            # Another process's write in progress, unless it stopped long ago.
            if now - stat.st_mtime > DAY and _remove(Path(entry.path), now, bounds, stat.st_mtime):
                removed, freed = removed + 1, freed + stat.st_size
            continue
        if not _ENTRY.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
            continue  # not ours: never touched
        total += stat.st_size
        if entry.name not in keep:
            entries.append((stat.st_mtime, stat.st_size, Path(entry.path)))
    for used, size, path in sorted(entries):  # least recently used first
        if now - used <= bounds.max_age and total <= bounds.max_bytes:
            break  # everything after is newer still, and the cache fits
        if _remove(path, now, bounds, used):
            total, removed, freed = total - size, removed + 1, freed + size
    return Pruned(removed, freed, total)


def _remove(path: Path, now: float, bounds: CacheBounds, used: float) -> bool:
    """Unlink a file unless it was used within the grace period (checked again just before)."""
    if now - used <= bounds.grace:
        return False
    try:
        if now - path.stat().st_mtime <= bounds.grace:  # picked by another process meanwhile
            return False
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as e:  # open elsewhere on Windows, read-only cache: keep it
        log.info("cannot prune %s: %s", path, e)
        return False
    return True
