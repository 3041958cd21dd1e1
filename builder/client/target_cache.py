"""The verified documents of one registry, kept on disk by target path.

A document the signed targets name is kept at `<cache>/signed/<registry>/<path>`
once its length and sha256 verified, and used again while the targets still sign
that sha256 (no request). Keeping it by path, not by hash, is what bounds the
cache: a new version of a document replaces the old one in place (`os.replace`,
atomic: a reader sees one version or the other, and checks its hash anyway), and a
path the signed targets no longer list is dropped when it is next asked for. So
the cache holds at most one copy of each document this user has read, and only of
the ones the registry still signed when last asked. (A cache by hash, as before,
kept every version of every document ever read.)
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

from builder.common.files import write_atomic

log = logging.getLogger(__name__)

FOLDER = "signed"  # under the user cache folder, one folder per registry
_LEGACY = "tuf-targets"  # the cache by sha256 of earlier versions: every version ever read


class TargetCache:
    """Verified targets of one registry by path (see the module)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, path: str) -> Path | None:
        """Return where a target is kept; None for a path that cannot be a file name here."""
        parts = path.split("/")
        if any(part in ("", ".", "..") or "\\" in part for part in parts):
            return None  # never outside the cache folder, whatever the registry signs
        return self.folder.joinpath(*parts)

    def get(self, path: str, sha256: str) -> bytes | None:
        """Return the kept bytes of `path` if their sha256 is the one signed, else None."""
        file = self._file(path)
        try:
            data = file.read_bytes() if file is not None else None
        except OSError:
            return None
        if data is None or hashlib.sha256(data).hexdigest() != sha256:
            return None  # an older version (replaced when the new one is kept), or damaged
        return data

    def keep(self, path: str, data: bytes) -> None:
        """Keep verified bytes for `path`, replacing any older version atomically."""
        file = self._file(path)
        if file is None:
            return
        try:
            write_atomic(file, data)
        except OSError as e:
            log.warning("cannot write the cache (%s): %s", file, e)

    def drop(self, path: str) -> None:
        """Forget `path`: refused after it verified, or no longer signed."""
        file = self._file(path)
        if file is None:
            return
        try:
            file.unlink(missing_ok=True)
        except OSError as e:
            log.warning("cannot remove %s from the cache: %s", file, e)


def targets_cache(cache_dir: Path | None, registry: str) -> TargetCache | None:
    """Return the cache of a registry's verified targets (None: no cache folder).

    The cache by sha256 of earlier versions, which only grew, is removed.
    """
    if cache_dir is None:
        return None
    legacy = cache_dir / _LEGACY
    if legacy.is_dir():
        shutil.rmtree(legacy, ignore_errors=True)
    return TargetCache(cache_dir / FOLDER / registry)
