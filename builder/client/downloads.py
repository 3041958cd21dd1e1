"""Download artifacts, each checked against the signed index while it streams in.

The size is capped by what the index declares and the sha256 is computed on the way
to disk, so nothing unverified is ever unpacked. A verified artifact is kept in the
cache folder under its sha256 and re-hashed on every later use; after each download
the cache is pruned to its bounds, keeping what the installed plugins reference
(`artifact_cache`). Through a registry's signed metadata (TUF), each artifact is first
looked up in its targets: the sha256 and size the registry signed must be the ones
the author signed, cached or not.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Collection, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO

from builder.client import artifact_cache
from builder.client.artifact_cache import DEFAULT_BOUNDS, CacheBounds
from builder.client.documents import Version
from builder.client.parallel import Cancel, run_parallel
from builder.client.signatures import TrustError
from builder.common.fetch import Fetcher, TooLargeError
from builder.common.files import CHUNK, HashingWriter
from builder.common.limits import Limits

log = logging.getLogger(__name__)

ARTIFACT_CACHE = "artifacts"  # inside the cache folder: verified artifacts by sha256
PARALLEL_DOWNLOADS = 4

# A progress display: given the total bytes, a context yielding "n more bytes arrived".
ProgressFactory = Callable[[int], AbstractContextManager[Callable[[int], None]]]


def check_artifact_size(name: str, version: Version, limits: Limits) -> None:
    """Refuse a version whose signed index declares an artifact larger than the limit."""
    size = version.entry.artifact.size
    if size > limits.artifact_bytes:
        raise TrustError(
            f"{name} {version.number}: artifact too large (expected at most "
            f"{limits.artifact_bytes} bytes, the index says {size})"
        )


class _Checked:
    """A sink that stops a transfer once its command is cancelled (checked per chunk)."""

    def __init__(self, sink: HashingWriter, cancel: Cancel) -> None:
        self.sink = sink
        self.cancel = cancel

    def write(self, data: bytes, /) -> int:
        """Take the next chunk, unless the work was cancelled."""
        self.cancel.check()
        return self.sink.write(data)


def download_all(
    fetcher: Fetcher,
    versions: Mapping[str, Version],
    folder: Path,
    *,
    cache_dir: Path | None,
    progress: ProgressFactory | None,
    cancel: Cancel | None = None,
    keep: Collection[str] = (),
    bounds: CacheBounds = DEFAULT_BOUNDS,
) -> None:
    """Download each plugin's artifact to `folder/<name>`, in parallel, all verified.

    The first failure, or Ctrl-C, cancels the downloads still queued or running. Once
    all arrived, the cache is pruned to `bounds`, keeping the artifacts whose sha256
    is in `keep` (what the installed plugins reference) and the ones just downloaded.
    """
    cancel = cancel or Cancel()
    total = sum(version.entry.artifact.size for version in versions.values())
    display = progress(total) if progress else contextlib.nullcontext(None)
    with display as advance:

        def one(item: tuple[str, Version]) -> None:
            name, version = item
            fetch_artifact(
                fetcher,
                name,
                version,
                folder / name,
                cache_dir=cache_dir,
                progress=advance,
                cancel=cancel,
            )

        run_parallel(one, list(versions.items()), workers=PARALLEL_DOWNLOADS, cancel=cancel)
    if cache_dir is not None:
        wanted = {*keep, *(v.entry.artifact.sha256 for v in versions.values())}
        pruned = artifact_cache.prune(cache_dir / ARTIFACT_CACHE, wanted, bounds)
        if pruned.removed:
            log.info(
                "artifact cache: %d file(s) pruned, %d bytes freed, %d bytes kept",
                pruned.removed,
                pruned.freed,
                pruned.kept,
            )


def fetch_artifact(
    fetcher: Fetcher,
    name: str,
    version: Version,
    dest: Path,
    *,
    cache_dir: Path | None,
    progress: Callable[[int], None] | None,
    cancel: Cancel | None = None,
) -> None:
    """Download a version's artifact into `dest`, verified against the signed index."""
    cancel = cancel or Cancel()
    cancel.check()  # queued behind a failure or Ctrl-C: never start
    artifact = version.entry.artifact
    _check_registry_signed(fetcher, name, version)
    cache = cache_dir / ARTIFACT_CACHE if cache_dir else None
    if cache is not None and (hit := artifact_cache.open_cached(cache, artifact.sha256)):
        with hit:
            copied = _copy_verified(hit, dest, artifact.sha256)
        if copied:
            if progress is not None:
                progress(artifact.size)
            return
        artifact_cache.discard(cache, artifact.sha256)  # a damaged cache entry: fetch again
    url = fetcher.url_of(artifact.download)
    with dest.open("xb") as sink:
        writer = HashingWriter(sink)
        try:
            fetcher.download(
                artifact.download,
                _Checked(writer, cancel),
                max_size=artifact.size,
                progress=progress,
                cancel=cancel.event,
            )
        except TooLargeError:
            raise TrustError(
                f"{url}: {name} {version.number}: larger than the signed index says "
                f"(expected {artifact.size} bytes, got more); nothing was installed"
            ) from None
    if writer.size != artifact.size:
        raise TrustError(
            f"{url}: {name} {version.number}: size does not match the signed index "
            f"(expected {artifact.size} bytes, got {writer.size}); nothing was installed"
        )
    got = writer.hexdigest()
    if got != artifact.sha256:
        raise TrustError(
            f"{url}: {name} {version.number}: sha256 does not match the signed index "
            f"(expected {artifact.sha256}, got {got}); nothing was installed"
        )
    if cache is not None:
        artifact_cache.store(cache, artifact.sha256, dest)


def _check_registry_signed(fetcher: Fetcher, name: str, version: Version) -> None:
    """Refuse an artifact the registry's signed metadata gives another sha256 or size."""
    artifact = version.entry.artifact
    signed = fetcher.signed(artifact.download)
    if signed is not None and signed != (artifact.sha256, artifact.size):
        raise TrustError(
            f"{fetcher.url_of(artifact.download)}: {name} {version.number}: the registry "
            f"signed another file than its author (registry: sha256 {signed[0]}, "
            f"{signed[1]} bytes; author: sha256 {artifact.sha256}, {artifact.size} bytes); "
            f"nothing was installed"
        )


def _copy_verified(source: BinaryIO, dest: Path, sha256: str) -> bool:
    """Copy a cached artifact, hashing it; False (and no copy) if it changed."""
    with dest.open("wb") as sink:
        writer = HashingWriter(sink)
        shutil.copyfileobj(source, writer, CHUNK)
    if writer.hexdigest() == sha256:
        return True
    dest.unlink()
    return False
