"""Search on the user's side: sync the registry's Whoosh index into the cache, verify
every file, open it read-only and answer queries locally.

The cache keeps files by content (`<cache>/search/<registry>/blobs/<sha256>`) and the
manifest they were last synced from (`manifest.json`, written only once every file it
lists is present and verified). A sync downloads only the files it lacks; one that
fails (network, a file that does not match the manifest) changes nothing the last
good manifest needs, so the cache stays usable (`--offline`).

Whoosh unpickles its table of contents: every file's sha256 and size are checked
against the manifest when it is downloaded and again, from the bytes Whoosh then
reads (`whoosh_adapter.VerifiedIndex` takes bytes, not a folder), at every open.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from builder.common import whoosh_adapter as engine
from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode
from builder.common.fetch import Fetcher, NotFoundError, TooLargeError
from builder.common.files import HashingWriter, write_atomic

if TYPE_CHECKING:
    from builder.format.requirements import VersionKey

log = logging.getLogger(__name__)

MANIFEST = "search/whoosh/manifest.json"
MANIFEST_FORMAT = 1
MAX_MANIFEST_SIZE = 1 << 20  # bytes: a few hundred files at most
MAX_FILE_SIZE = 2 << 30  # bytes: far above a 100k-plugin index
_SHA256 = re.compile(r"[0-9a-f]{64}")
SORTS = ("relevance", "name", "recent", "downloads", "rating")


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
            engine.TOC_NAME.fullmatch(name) or engine.SEGMENT_NAME.fullmatch(name)
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
    tocs = [n for n in names if engine.TOC_NAME.fullmatch(n)]
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


# --- queries --------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    engine: str | None = None
    format: str | None = None  # an extension, with or without the dot
    license: str | None = None
    host: str | None = None  # the host application's version


@dataclass
class Results:
    total: int
    page: int
    pages: int
    results: list[dict[str, Any]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # the words searched for
    # What was answered: "search" (the words), "listing" (no query: every plugin under
    # the filters, in the chosen order) or "no-words" (a query with no word to search
    # for, such as `*` or `OR`: nothing, rather than every plugin as if it matched).
    mode: str = "search"
    sort: str = "relevance"  # the order actually used (a listing has no relevance)


def _fits(version: Mapping[str, Any], filters: Filters, host: VersionKey | None) -> bool:
    if filters.engine and version["engine"] != filters.engine.lower():
        return False
    if filters.format:
        wanted = "." + filters.format.lower().lstrip(".")
        if wanted not in version["formats"]:
            return False
    if host is not None:
        from builder.format.requirements import RequirementError, parse_requirement

        try:
            return bool(parse_requirement(version["host"]).matches(host, allow_prerelease=True))
        except RequirementError:
            return False
    return True


def chosen_version(
    record: Mapping[str, Any], filters: Filters, host: VersionKey | None
) -> dict[str, Any] | None:
    """Return the version a user would get under the filters: newest fitting release,
    else newest fitting prerelease; yanked ones only for a plugin with nothing else."""
    versions: list[dict[str, Any]] = list(record["versions"])  # newest first
    usable = [v for v in versions if not v["yanked"]] or versions
    fitting = [v for v in usable if _fits(v, filters, host)]
    releases = [v for v in fitting if "-" not in v["version"].split("+")[0]]
    chosen = releases or fitting
    return chosen[0] if chosen else None


def query(
    index: engine.VerifiedIndex,
    text: str,
    filters: Filters,
    *,
    sort: str = "relevance",
    limit: int = 20,
    page: int = 1,
) -> Results:
    """Answer a query: matching plugins under the filters, sorted, one page of them.

    A query without any word to search for lists nothing if it has other text (`*`,
    `OR`, punctuation) and every plugin under the filters if it is empty (a listing,
    by name unless another order is asked for).
    """
    words = engine.query_words(text)
    if not words and text.strip():
        return Results(0, page, 1, mode="no-words", sort=sort)
    host = None
    if filters.host:
        from builder.format.requirements import key_of  # only a host filter needs it

        host = key_of(filters.host)
    wanted = {
        "categories": filters.category or "",
        "engines": filters.engine or "",
        "formats": (filters.format or "").lstrip("."),
        "licenses": filters.license or "",
    }
    if words:
        hits = index.search(text, wanted)
        mode = "search"
    else:
        hits = index.listing(wanted)
        mode = "listing"
        sort = "name" if sort == "relevance" else sort
    # Records are loaded only where needed (a version filter, or the page shown): a broad
    # query matches thousands of plugins, and sorting reads columns instead.
    needs_version = bool(host is not None or filters.engine or filters.format)
    rows: list[tuple[engine.Hit, dict[str, Any] | None, dict[str, Any] | None]] = []
    for hit in hits:
        if not needs_version:
            rows.append((hit, None, None))
            continue
        record = index.record(hit.docnum)
        version = chosen_version(record, filters, host)
        if version is not None:
            rows.append((hit, record, version))
    if sort == "name":
        rows.sort(key=lambda r: index.value("name", r[0].docnum))
    elif sort == "recent":
        rows.sort(
            key=lambda r: (r[2] or {}).get("released") or index.value("released", r[0].docnum),
            reverse=True,
        )
    elif sort in {"downloads", "rating"}:
        rows.sort(key=lambda r: -(index.value(sort, r[0].docnum) or 0))
    # Plugins whose every version is yanked go last whatever the order (the sort is stable).
    rows.sort(key=lambda r: index.value("yanked_only", r[0].docnum))
    total = len(rows)
    pages = max(1, -(-total // limit))
    shown = []
    for hit, loaded, chosen in rows[(page - 1) * limit : page * limit]:
        record = loaded if loaded is not None else index.record(hit.docnum)
        version = chosen if loaded is not None else chosen_version(record, filters, host)
        shown.append(_result(hit.score, record, version or {}))
    return Results(total, page, pages, shown, words, mode, sort)


def _result(score: float, record: Mapping[str, Any], version: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": record["name"],
        "display_name": record["display_name"],
        "description": record["description"],
        "version": version.get("version") or record["latest"],
        "released": version.get("released") or record["released"],
        "engine": version.get("engine"),
        "formats": list(version.get("formats") or []),
        "yanked": bool(version.get("yanked")) or record["yanked_only"],
        "yanked_only": record["yanked_only"],
        "categories": record["categories"],
        "keywords": record["keywords"],
        "license": record["license"],
        "owners": record["owners"],
        "downloads": record.get("downloads"),
        "rating": record.get("rating"),
        "score": round(score, 3),
    }


def index_age(built_at: str | None, now: datetime.datetime | None = None) -> str:
    """Return how old an index is, for the offline note ("built 3 days ago")."""
    if not built_at:
        return "of unknown age"
    try:
        when = datetime.datetime.strptime(built_at, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        return f"built at {built_at}"
    now = now or datetime.datetime.now(datetime.UTC)
    hours = max(0, int((now - when).total_seconds() // 3600))
    if hours < 48:
        return f"built {hours} hour{'s' if hours != 1 else ''} ago ({built_at})"
    return f"built {hours // 24} days ago ({built_at})"
