"""Search on the user's side, its index: sync the registry's Whoosh index into the cache,
verify every file and open it read-only (`builder.client.search` answers queries).

The cache keeps files by content (`<cache>/search/<registry>/blobs/<sha256>`) and the
manifest they were last synced from (`manifest.json`, written only once every file it
lists is present and verified). A sync downloads only the files it lacks; one that
fails (network, a file that does not match the manifest) changes nothing the last
good manifest needs, so the cache stays usable (`--offline`).

Whoosh unpickles its table of contents: every file's sha256 and size are checked
against the manifest when it is downloaded and again, from the bytes Whoosh then
reads (`whoosh_reader.VerifiedIndex` takes bytes, not a folder), at every open.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from builder.common import whoosh_reader as engine
from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode
from builder.common.fetch import Fetcher, NotFoundError, TooLargeError
from builder.common.files import HashingWriter, write_atomic
from builder.common.whoosh_adapter import SEGMENT_NAME, TOC_NAME

log = logging.getLogger(__name__)

MANIFEST = "search/whoosh/manifest.json"
MANIFEST_FORMAT = 1
MAX_MANIFEST_SIZE = 1 << 20  # bytes: a few hundred files at most
MAX_FILE_SIZE = 2 << 30  # bytes: far above a 100k-plugin index
_SHA256 = re.compile(r"[0-9a-f]{64}")


class SearchIndexError(PlugindexError):
    """The registry's search index is missing or malformed."""


class SearchVerificationError(SearchIndexError):
    """A search index file does not match its manifest: refused, nothing opened."""

    exit_code = ExitCode.REFUSED


@dataclass(frozen=True)
class IndexFile:
    name: str  # the Whoosh file name
    sha256: str
    size: int

    @property
    def path(self) -> str:
        """Return the file's published, content-addressed path."""
        return f"search/whoosh/{self.sha256}.{self.name.rsplit('.', 1)[1]}"


@dataclass(frozen=True)
class Manifest:
    files: tuple[IndexFile, ...]
    built_at: str | None
    plugins: int
    raw: bytes


@dataclass(frozen=True)
class SyncReport:
    downloaded: int = 0  # files
    downloaded_bytes: int = 0
    kept: int = 0  # files already in the cache
    offline: bool = False


def parse_manifest(data: bytes, where: str) -> Manifest:
    """Parse search/whoosh/manifest.json, refusing anything but the exact expected shape."""

    def bad(why: str) -> SearchIndexError:
        return SearchIndexError(f"{where}: not a search index manifest ({why})")

    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad(f"expected JSON, got {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise bad(f"expected an object with format {MANIFEST_FORMAT}")
    listed = doc.get("files")
    if not isinstance(listed, list) or not listed:
        raise bad("expected a non-empty list of files")
    files: list[IndexFile] = []
    for position, item in enumerate(listed):
        if not isinstance(item, dict):
            raise bad(f"files[{position}]: expected an object")
        name, sha256, size = item.get("name"), item.get("sha256"), item.get("size")
        if not isinstance(name, str) or not (
            TOC_NAME.fullmatch(name) or SEGMENT_NAME.fullmatch(name)
        ):
            raise bad(f"files[{position}].name: expected a Whoosh file name, got {name!r}")
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise bad(f"files[{position}].sha256: expected 64 lower-case hex digits")
        if type(size) is not int or not 0 < size <= MAX_FILE_SIZE:
            raise bad(f"files[{position}].size: expected a size in bytes, got {size!r}")
        files.append(IndexFile(name, sha256, size))
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        raise bad("a file is listed twice")
    tocs = [n for n in names if TOC_NAME.fullmatch(n)]
    if len(tocs) != 1:
        raise bad(f"expected one table of contents (_MAIN_<n>.toc), got {len(tocs)}")
    built_at = doc.get("built_at")
    plugins = doc.get("plugins")
    return Manifest(
        tuple(files),
        built_at if isinstance(built_at, str) else None,
        plugins if type(plugins) is int else 0,
        data,
    )


def cache_folder(cache_dir: Path, location: str) -> Path:
    """Return the cache folder of one registry's search index."""
    return cache_dir / "search" / hashlib.sha256(location.encode("utf-8")).hexdigest()[:24]


class SearchCache:
    """One registry's synced search index in the user's cache."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.blobs = folder / "blobs"

    def manifest(self) -> Manifest | None:
        """Return the manifest of the last good sync, or None."""
        path = self.folder / "manifest.json"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise SearchIndexError(f"{path}: cannot read ({e.strerror})") from e
        return parse_manifest(data, str(path))

    def has(self, item: IndexFile) -> bool:
        """Return whether the cache holds a file of that content (checked again at open)."""
        try:
            return (self.blobs / item.sha256).stat().st_size == item.size
        except OSError:
            return False

    def read_verified(self, item: IndexFile) -> bytes:
        """Return a cached file's bytes once they match the manifest, else refuse."""
        path = self.blobs / item.sha256
        try:
            data = path.read_bytes()
        except OSError as e:
            raise SearchIndexError(
                f"{path}: search index file missing from the cache ({e.strerror}); "
                f"search again online to sync it"
            ) from e
        _check(data, item, str(path))
        return data

    def prune(self, keep: Iterable[IndexFile]) -> None:
        """Delete cached files no manifest needs any more."""
        wanted = {f.sha256 for f in keep}
        for path in self.blobs.glob("*"):
            if path.name not in wanted:
                path.unlink(missing_ok=True)


def _check(data: bytes, item: IndexFile, where: str) -> None:
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != item.size or digest != item.sha256:
        raise SearchVerificationError(
            f"{where}: search index file {item.name} does not match its manifest "
            f"(expected sha256 {item.sha256} and {item.size} bytes, got {digest} and "
            f"{len(data)} bytes); refused, not opened"
        )


def sync(fetcher: Fetcher, cache: SearchCache, *, offline: bool = False) -> SyncReport:
    """Bring the cached index up to the registry's manifest, downloading only what is new."""
    if offline:
        if cache.manifest() is None:
            raise SearchIndexError(
                f"{cache.folder}: no search index in the cache (search once without --offline)"
            )
        return SyncReport(offline=True)
    try:
        data = fetcher.document(MANIFEST, max_size=MAX_MANIFEST_SIZE)
    except NotFoundError:
        raise SearchIndexError(
            f"{fetcher.url_of(MANIFEST)}: this registry publishes no search index "
            f"(expected a build with search/whoosh/)"
        ) from None
    try:
        manifest = parse_manifest(data, fetcher.url_of(MANIFEST))
    except SearchIndexError:
        fetcher.discard(MANIFEST)  # never reuse a copy that failed
        raise
    cache.blobs.mkdir(parents=True, exist_ok=True)
    downloaded = downloaded_bytes = kept = 0
    for item in manifest.files:
        if cache.has(item):
            kept += 1
            continue
        try:
            _download(fetcher, cache, item)
        except SearchVerificationError:
            fetcher.discard(MANIFEST)
            raise
        downloaded += 1
        downloaded_bytes += item.size
    # The manifest last: until it is replaced, the previous one (and its files) stays good.
    write_atomic(cache.folder / "manifest.json", manifest.raw)
    cache.prune(manifest.files)
    return SyncReport(downloaded, downloaded_bytes, kept)


def _download(fetcher: Fetcher, cache: SearchCache, item: IndexFile) -> None:
    partial = cache.blobs / f".part-{item.sha256}"
    try:
        with partial.open("wb") as sink:
            writer = HashingWriter(sink)
            fetcher.download(item.path, writer, max_size=item.size)
        if writer.size != item.size or writer.hexdigest() != item.sha256:
            raise SearchVerificationError(
                f"{fetcher.url_of(item.path)}: search index file {item.name} does not match "
                f"its manifest (expected sha256 {item.sha256} and {item.size} bytes, got "
                f"{writer.hexdigest()} and {writer.size} bytes); refused, the cache keeps "
                f"the last good index"
            )
        partial.replace(cache.blobs / item.sha256)
    except TooLargeError as e:
        raise SearchVerificationError(
            f"{fetcher.url_of(item.path)}: search index file {item.name} is larger than "
            f"its manifest says ({item.size} bytes); refused"
        ) from e
    finally:
        partial.unlink(missing_ok=True)


def open_index(cache: SearchCache) -> tuple[engine.VerifiedIndex, Manifest]:
    """Open the cached index read-only, after checking every file against its manifest."""
    manifest = cache.manifest()
    if manifest is None:
        raise SearchIndexError(f"{cache.folder}: no search index in the cache")
    files = {item.name: cache.read_verified(item) for item in manifest.files}
    try:
        return engine.VerifiedIndex(files), manifest
    except Exception as e:  # verified bytes that Whoosh still cannot read
        raise SearchIndexError(
            f"{cache.folder}: the search index does not open ({type(e).__name__}: {e}); "
            f"it matches its manifest, so the registry published a broken index"
        ) from e
