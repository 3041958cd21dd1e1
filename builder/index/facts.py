"""Facts: the small, cacheable summary of a plugin that whole-index work needs.

Cross-plugin checks (dependencies, cycles) and listings (names.json, pages,
categories) read facts, never manifests, so an incremental build re-parses only the
plugins that changed and takes the rest from the cache. Facts are named tuples,
which convert to and from the plain tuples of the cache cheaply: a 10,000-plugin
cache then loads in well under a second.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import posixpath
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import urlsplit

from builder.format.names import name_problem
from builder.format.requirements import RELEASE, VersionKey, key_of
from builder.index.encoding import compact

if TYPE_CHECKING:  # a no-op build reads facts from the cache without loading YAML
    from builder.format.load import LoadedPlugin


class DependencyFacts(NamedTuple):
    name: str
    req: str
    kind: str


class ArtifactFacts(NamedTuple):
    sha256: str
    size: int
    filename: str
    url: str  # as the author wrote it
    local: str | None  # index-relative path of a repo-local artifact


class VersionFacts(NamedTuple):
    version: str
    file: str  # index-relative path of the version file
    released: str
    yanked: bool
    engine: str
    dependencies: tuple[DependencyFacts, ...]
    artifact: ArtifactFacts


class PackedRowsSource(Protocol):
    """Where cached facts read their packed version rows from when asked (the cache)."""

    def packed_rows(self, folder: str) -> bytes: ...


class PluginFacts(NamedTuple):
    """A plugin's summary: plain values only, so it is its own cache record.

    Whole-index work of every build (listings, cycles, the list of outputs) reads
    only the plugin-level fields; `versions()` unpacks the per-version rows for the
    few plugins a build checks again.
    """

    name: str
    folder: str
    display_name: str
    description: str
    categories: tuple[str, ...]
    keywords: tuple[str, ...]
    # `version_rows` packed (see `pack_rows`): a build reads them for the few plugins
    # it checks again, so the many small values stay one bytes object until then.
    # Facts taken from the cache hold where to read them instead: most of the cache's
    # bytes, they are read from disk only for those few (see `builder.index.cache`).
    versions_blob: bytes | PackedRowsSource
    doc_sha256: str  # hash of the per-plugin document written for these facts
    doc_size: int  # its size in bytes
    latest: tuple[str, str, str] | None  # (version, released, engine) users get by default
    requires: tuple[str, ...]  # plugins some version needs to install (runtime/build/optional)
    depends_on: tuple[str, ...]  # plugins named by any dependency, of any kind
    yanked: int  # number of yanked versions
    # Remote artifacts: (sha256, size, filename), one per version, in version order.
    remote_artifacts: tuple[tuple[str, int, str], ...]
    version_count: int
    # Release dates: (the first, the newest, the newest non-yanked); "" when none.
    released: tuple[str, str, str]
    # Versions released in each month, oldest month first, as "YYYY-MM count" joined
    # by commas (see `months_released`): the site's stats count them without unpacking
    # every plugin's rows. One string, not a tuple of pairs: a tenth of the memory.
    release_months: str
    summary: bytes  # the plugin's entry in the listing pages, encoded (`listing_entry`)

    @property
    def version_rows(self) -> tuple[tuple[Any, ...], ...]:
        """Per version, oldest first: (version, file, released, yanked, engine,
        ((dep name, req, kind), ...), (sha256, size, filename, url, local))."""
        blob = self.versions_blob
        if not isinstance(blob, bytes):
            blob = blob.packed_rows(self.folder)
        rows: tuple[tuple[Any, ...], ...] = marshal.loads(zlib.decompress(blob))  # noqa: S302
        return rows

    @property
    def local_artifacts(self) -> tuple[tuple[str, int, str, str], ...]:
        """Repo-local artifacts, in version order: (sha256, size, filename, index path).

        Read from the packed rows, for the few plugins a rebuild plans the artifacts
        of: kept apart, they were a third of the cache and of a cold build's facts.
        """
        if self.version_count == len(self.remote_artifacts):
            return ()  # every artifact is remote: nothing to unpack
        return tuple((a[0], a[1], a[2], a[4]) for *_, a in self.version_rows if a[4])

    def months_released(self) -> tuple[tuple[str, int], ...]:
        """Return how many versions were released in each month ("YYYY-MM"), oldest first."""
        if not self.release_months:
            return ()
        pairs = (entry.split(" ") for entry in self.release_months.split(","))
        return tuple((month, int(count)) for month, count in pairs)

    def versions(self) -> tuple[VersionFacts, ...]:
        """Return the versions, oldest first."""
        return tuple(
            VersionFacts(
                v[0],
                v[1],
                v[2],
                v[3],
                v[4],
                tuple(DependencyFacts(*d) for d in v[5]),
                ArtifactFacts(*v[6]),
            )
            for v in self.version_rows
        )


# Dependency kinds that make a plugin need another at install time; `dev` ones don't,
# so they may form cycles (as in Cargo).
INSTALL_KINDS = frozenset({"runtime", "build", "optional"})


def latest_index(plugin: LoadedPlugin) -> int:
    """Return the index of the newest non-yanked release, else of the newest non-yanked
    prerelease, else -1. Versions are sorted oldest first."""
    return _latest_position([(v.key, v.manifest.yanked is not None) for v in plugin.versions])


def _latest_position(versions: Sequence[tuple[VersionKey, bool]]) -> int:
    """Return `latest_index` of (key, yanked) pairs sorted oldest first."""
    fallback = -1
    for position in range(len(versions) - 1, -1, -1):
        key, yanked = versions[position]
        if yanked:
            continue
        if key[3] == RELEASE:
            return position
        if fallback < 0:
            fallback = position
    return fallback


def local_artifact_path(folder_rel: str, url: str) -> str | None:
    """Return the index-relative path of a repo-local artifact URL, or None if remote.

    A URL without a scheme is a path relative to the plugin's folder; one that
    escapes the folder returns "" so the caller can refuse it.
    """
    if "://" in url or urlsplit(url).scheme:
        return None
    joined = posixpath.normpath(posixpath.join(folder_rel, url))
    if url.startswith("/") or not joined.startswith(folder_rel + "/"):
        return ""
    return joined


def facts_of(plugin: LoadedPlugin, doc_sha256: str, doc_size: int) -> PluginFacts:
    """Summarise a loaded plugin."""
    folder_rel = f"plugins/{plugin.folder}"
    manifest = plugin.manifest
    rows = []
    for loaded in plugin.versions:
        v = loaded.manifest
        artifact = v.artifact
        local = local_artifact_path(folder_rel, artifact.url)
        rows.append(
            (
                v.version,
                loaded.file,
                v.released,
                v.yanked is not None,
                v.engine,
                tuple(
                    (name, dep.version, dep.kind) for name, dep in sorted(v.dependencies.items())
                ),
                (artifact.sha256, artifact.size, artifact.filename, artifact.url, local),
            )
        )
    position = latest_index(plugin)
    chosen = plugin.versions[position].manifest if position >= 0 else None
    latest = (chosen.version, chosen.released, chosen.engine) if chosen else None
    deps = [
        (name, dep.kind) for v in plugin.versions for name, dep in v.manifest.dependencies.items()
    ]
    described = (
        manifest.name,
        manifest.display_name,
        manifest.description,
        tuple(manifest.categories),
        tuple(manifest.keywords),
    )
    return PluginFacts(
        manifest.name,
        plugin.folder,
        *described[1:],
        pack_rows(rows),
        doc_sha256,
        doc_size,
        latest,
        tuple(sorted({name for name, kind in deps if kind in INSTALL_KINDS})),
        tuple(sorted({name for name, _ in deps})),
        sum(1 for v in plugin.versions if v.manifest.yanked is not None),
        *_derived(rows),
        listing_entry(*described, latest),
    )


def listing_entry(  # noqa: PLR0917 - the fields of the entry, as the facts hold them
    name: str,
    display_name: str,
    description: str,
    categories: tuple[str, ...],
    keywords: tuple[str, ...],
    latest: tuple[str, str, str] | None,
) -> bytes:
    """Return a plugin's entry in the listing pages, encoded as it stands in them."""
    return compact(
        {
            "name": name,
            "display_name": display_name,
            "description": description,
            "latest": latest[0] if latest else None,
            "released": latest[1] if latest else None,
            "categories": list(categories),
            "keywords": list(keywords),
            "engine": latest[2] if latest else None,
        }
    )


def pack_rows(rows: Sequence[tuple[Any, ...]]) -> bytes:
    """Return the bytes `PluginFacts.version_rows` reads back as `rows`.

    marshal version 2 writes values only (no back-references, which would depend on
    reference counts), so the same rows always give the same bytes. They are
    compressed (zlib's fastest level, about a quarter of the size): a cold build holds
    every plugin's rows until it saves the cache (a third of its memory at 150,000
    plugins), and a rebuild reads the cache's rows from disk; each plugin's are
    unpacked a few times per build at most.
    """
    return zlib.compress(marshal.dumps(tuple(rows), 2), 1)


def _derived(
    rows: Sequence[tuple[Any, ...]],
) -> tuple[tuple[tuple[str, int, str], ...], int, tuple[str, str, str], str]:
    """Return what whole-index work needs of the rows without unpacking them:
    the remote artifacts, the number of versions, the release dates and months."""
    remote = tuple((a[0], a[1], a[2]) for a in (row[6] for row in rows) if a[4] is None)
    dates = [row[2] for row in rows]
    kept = [row[2] for row in rows if not row[3]]
    released = (min(dates, default=""), max(dates, default=""), max(kept, default=""))
    months = ",".join(f"{m} {n}" for m, n in sorted(Counter(d[:7] for d in dates).items()))
    return remote, len(rows), released, months


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def facts_of_document(data: bytes, folder: str) -> PluginFacts | None:
    """Summarise a per-plugin document as a build published it; None if it is not one.

    This is how a plugin that cannot be built now keeps its last published state: its
    facts come from the document itself (from the last build's folder or the live
    registry), and must agree with what `facts_of` gave when it was built. Version
    strings become paths here, so each must be a valid version.
    """
    try:
        document = json.loads(data)
        rows, keyed = _rows_of_document(document, folder)
        deps = [(d[0], d[2]) for row in rows for d in row[5]]
        position = _latest_position(keyed)
        chosen = rows[position] if position >= 0 else None
        latest = (chosen[0], chosen[2], chosen[4]) if chosen else None
        described = (
            folder,
            str(document["display_name"]),
            str(document["description"]),
            tuple(str(c) for c in document["categories"]),
            tuple(str(k) for k in document["keywords"]),
        )
        return PluginFacts(
            folder,
            folder,
            *described[1:],
            pack_rows(rows),
            hashlib.sha256(data).hexdigest(),
            len(data),
            latest,
            tuple(sorted({name for name, kind in deps if kind in INSTALL_KINDS})),
            tuple(sorted({name for name, _ in deps})),
            sum(1 for row in rows if row[3]),
            *_derived(rows),
            listing_entry(*described, latest),
        )
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        return None  # RequirementError is a ValueError


def _rows_of_document(
    document: dict[str, Any], folder: str
) -> tuple[list[tuple[Any, ...]], list[tuple[VersionKey, bool]]]:
    """Return a document's version rows (as `facts_of` makes them) and (key, yanked) pairs."""
    if document["name"] != folder or name_problem(folder) is not None:
        raise ValueError(f"not the document of {folder!r}")
    folder_rel = f"plugins/{folder}"
    rows: list[tuple[Any, ...]] = []
    keyed: list[tuple[VersionKey, bool]] = []
    for entry in document["versions"]:
        version = entry["version"]
        if not isinstance(version, str) or "/" in version:
            raise ValueError(f"not a version: {version!r}")
        key = key_of(version)  # raises RequirementError for anything else
        released = entry["released"]
        if not isinstance(released, str) or not _DATE.fullmatch(released):
            raise ValueError(f"not a date: {released!r}")
        artifact = entry["artifact"]
        url = str(artifact["url"])
        local = local_artifact_path(folder_rel, url)
        rows.append(
            (
                version,
                f"{folder_rel}/versions/{version}.yaml",
                released,
                entry["yanked"] is not None,
                str(entry["engine"]),
                tuple(
                    (str(d["name"]), str(d["req"]), str(d["kind"])) for d in entry["dependencies"]
                ),
                (
                    str(artifact["sha256"]),
                    int(artifact["size"]),
                    str(artifact["filename"]),
                    url,
                    local,
                ),
            )
        )
        keyed.append((key, entry["yanked"] is not None))
    if [k for k, _ in keyed] != sorted(k for k, _ in keyed):
        raise ValueError("versions out of order")
    return rows, keyed
