"""Download artifacts, each checked against the signed index while it streams in.

The size is capped by what the index declares and the sha256 is computed on the way
to disk, so nothing unverified is ever unpacked. A verified artifact is kept in the
cache folder under its sha256 and re-hashed on every later use. Through a registry's
signed metadata (TUF), each artifact is first looked up in its targets: the sha256
and size the registry signed must be the ones the author signed, cached or not.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from builder.client.documents import Version
from builder.client.parallel import Cancel, run_parallel
from builder.client.signatures import TrustError
from builder.common.fetch import Fetcher, TooLargeError
from builder.common.files import CHUNK, HashingWriter, write_atomic
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
) -> None:
    """Download each plugin's artifact to `folder/<name>`, in parallel, all verified.

    The first failure, or Ctrl-C, cancels the downloads still queued or running.
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
    cached = cache_dir / ARTIFACT_CACHE / artifact.sha256 if cache_dir else None
    if cached is not None and cached.is_file():
        if _copy_verified(cached, dest, artifact.sha256):
            if progress is not None:
                progress(artifact.size)
            return
        cached.unlink(missing_ok=True)  # a damaged cache entry: fetch again
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
    if cached is not None:
        try:
            write_atomic(cached, dest.read_bytes())
        except OSError as e:
            log.warning("cannot cache %s: %s", cached, e)


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


def _copy_verified(source: Path, dest: Path, sha256: str) -> bool:
    """Copy a cached artifact, hashing it; False (and no copy) if it changed."""
    with source.open("rb") as stream, dest.open("wb") as sink:
        writer = HashingWriter(sink)
        shutil.copyfileobj(stream, writer, CHUNK)
    if writer.hexdigest() == sha256:
        return True
    dest.unlink()
    return False
