"""The build cache: what the last successful build read and wrote, keyed by content.

A plugin folder is recognised by a fingerprint of its files' stats (names, sizes,
mtimes, ctimes, inodes): while that is unchanged, its facts are taken as they are.
When it changes, the folder is read again, but the plugin is parsed again only when
the hash of its files (or of registry.yaml) changed: everything downstream is keyed
by sha256 of content.

What the build wrote is taken from its record of its files (path → sha256 and size,
`builder.common.build_folder`): artifacts are named by their content and never
change, so a build trusts that record instead of walking their ~100,000 folders
(see `builder.index.build`).

The cache is builder state inside the output folder, written and read only by
plugindex, so it is stored with `marshal` (plain tuples and dicts, no code):
loading 10,000 plugins' facts takes a fraction of what JSON parsing would. It is a
sharded record (`builder.common.sharded`): a build that read a few plugins again
rewrites the few parts that hold them. The plugins' packed version rows, three
quarters of its bytes, are kept in parts of their own, read only for the plugins a
build checks again. Anything unexpected in it is treated as no cache at all.
"""

from __future__ import annotations

import hashlib
import logging
import marshal
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from builder import FORMAT_VERSION, __version__
from builder.common import sharded
from builder.common.build_folder import ARTIFACT_PARTS, STATE_DIR, RecordColumn, load_outputs
from builder.common.errors import BuildError
from builder.common.sharded import Sharded
from builder.format.paths import FileStat
from builder.index.facts import PackedRowsSource, PluginFacts

if TYPE_CHECKING:  # the build's types: they import this module
    from builder.index.analyse import Analysis
    from builder.index.finds import Finding
    from builder.index.output import WriteReport

log = logging.getLogger(__name__)

CACHE_FILE = "cache.bin"
# Paths of the output looked at again beyond which a no-op build records a new time.
LOOKED_AGAIN = 1000
_FACT_FIELDS = len(PluginFacts._fields)
_first, _second = itemgetter(0), itemgetter(1)  # of a record's (sha256, size)
# Bump when anything cached would now be computed differently.
_CACHE_KEY = f"plugindex {__version__} format {FORMAT_VERSION} cache 18"
# The cache's parts: the plugins' records in one half, their packed version rows
# (`PluginFacts.versions_blob`) in the other, each plugin's in the part of the same
# number in its half. A record's row holds None where its packed rows would be.
_HALF = sharded.PARTS // 2
_RECORD_PARTS = range(_HALF)
_ROWS_PARTS = range(_HALF, sharded.PARTS)
_PACKED = PluginFacts._fields.index("versions_blob")


def stats_key(files: Mapping[str, FileStat]) -> str:
    """Return the fingerprint of a plugin folder's files as the file system lists them."""
    # marshal version 2 writes values only (no back-references, which would depend on
    # reference counts), so the same listing always gives the same bytes.
    listing = marshal.dumps(sorted(files.items()), 2)
    return hashlib.blake2b(listing, digest_size=16).hexdigest()


def _part_of(folder: str) -> int:
    """Return the part of a plugin's record (its packed rows: this plus `_HALF`)."""
    return zlib.crc32(folder.encode()) % _HALF


@dataclass
class PluginRecord:
    input: str  # sha256 over registry.yaml and every file of the plugin folder
    # The fields of PluginFacts, as a plain tuple; as loaded, None for the packed
    # version rows, which `stored` reads when they are asked for.
    row: tuple[Any, ...]
    stats: str  # `stats_key` of the folder when it was last read
    stored: PackedRowsSource | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, input_key: str, facts: PluginFacts, stats: str) -> PluginRecord:
        return cls(input_key, tuple(facts), stats)

    def facts(self) -> PluginFacts | None:
        """Return the cached facts, or None when the record is not what we wrote."""
        if not self.usable():
            return None
        row = self.row
        if row[_PACKED] is None:
            row = (*row[:_PACKED], self.stored, *row[_PACKED + 1 :])
        return PluginFacts._make(row)

    def usable(self) -> bool:
        """Return whether the row has the shape of facts (without making them)."""
        row = self.row
        return (
            type(row) is tuple
            and len(row) == _FACT_FIELDS
            and (type(row[_PACKED]) is bytes or (row[_PACKED] is None and self.stored is not None))
        )


class _StoredRows:
    """The packed version rows of the cached plugins, read a part at a time as asked.

    The record stays readable after a save: a save writes only parts it has read
    (kept in memory here), and keeps the files of those it has not.
    """

    def __init__(self, path: Path, record: Sharded) -> None:
        self._path = path
        self._record = record

    def packed_rows(self, folder: str) -> bytes:
        blob = self._record.part(_HALF + _part_of(folder)).get(folder)
        if type(blob) is not bytes:
            raise BuildError(
                f"{self._path}: the build cache has no version rows for {folder} (expected "
                f"them beside its record); remove {self._path.parent} and build again"
            )
        return blob


@dataclass
class BuildCache:
    index: str = ""  # absolute path of the index this cache describes
    registry: str = ""  # sha256 of registry.yaml
    plugins: dict[str, PluginRecord] = field(default_factory=dict)  # by folder name
    # Published path → sha256 (None: unknown); the artifacts' paths → size. Both read
    # the artifacts' parts of the record as they are looked up (`RecordColumn`).
    outputs: Mapping[str, str] | None = None
    sizes: Mapping[str, int] = field(default_factory=dict)
    files: dict[str, int] = field(default_factory=dict)  # every other published path → size
    # What the listings (names.json, categories, pages) were made of, and their paths.
    listings: tuple[str, tuple[str, ...]] = ("", ())
    borrowed: str = ""  # sha256 of the artifacts the build took as live, in their order
    # When the scan of the index these records come from started (ns since 1970, less
    # a margin): a folder with no entry changed since keeps its record unwalked
    # (see `builder.index.finds`). 0: unknown, walk everything.
    scanned: int = 0
    # When the output last held exactly `outputs` with these sizes (ns since 1970): the
    # next build looks again only at what changed since (see `builder.index.on_disk`).
    written: int = 0
    # The records as loaded: a save writes only the parts that differ from them.
    loaded: Sharded | None = field(default=None, compare=False, repr=False)
    outputs_record: Sharded | None = field(default=None, compare=False, repr=False)


def load_cache(out: Path, index: Path, *, artifacts_later: bool = False) -> BuildCache:
    """Return the cache of the last build into `out`, or an empty one.

    With `artifacts_later`, the record's artifacts are read a part at a time as they
    are looked up (`RecordColumn`): for a build that carries them over and looks up
    a few. Without, they are all read at once into plain maps: for a build that
    looks up every one (a build against a live registry plans every artifact).
    """
    path = out / STATE_DIR / CACHE_FILE
    here = str(index.resolve())
    try:
        record = sharded.load(path, _CACHE_KEY, later=_ROWS_PARTS)
    except OSError as e:
        log.warning("ignoring unreadable build cache %s: %s", path, e)
        return BuildCache(here)
    if record is None:  # none, or another builder version's: start afresh
        return BuildCache(here)
    try:
        cached_index, registry, listings, borrowed, scanned, written = record.header
        stored = _StoredRows(path, record)
        plugins = {
            folder: _stored_record(entry, stored)
            for i in _RECORD_PARTS
            for folder, entry in record.part(i).items()
        }
    except (ValueError, TypeError) as e:
        log.warning("ignoring unreadable build cache %s: %s", path, e)
        return BuildCache(here)
    files = _Files.of(load_outputs(out, artifacts_later=artifacts_later), lazy=artifacts_later)
    if files.record is None:
        # Which documents the output holds is unknown (the record is gone, damaged or
        # of another layout): the cached ones cannot be taken as written, so the
        # build starts afresh, as a first build into this folder would.
        log.info("no usable record of the build's files in %s: building afresh", out)
        return BuildCache(here)
    if cached_index != here:
        return BuildCache(here, written=written, **files.fields())
    return BuildCache(
        here,
        registry,
        plugins,
        listings=listings,
        borrowed=borrowed,
        scanned=scanned,
        written=written,
        loaded=record,
        **files.fields(),
    )


def _stored_record(entry: Any, stored: _StoredRows) -> PluginRecord:
    """Return the record of a cache entry (raises ValueError if it has another shape)."""
    input_key, row, stats = entry
    return PluginRecord(input_key, row, stats, stored)


class _Files(NamedTuple):
    """The output's files as the build recorded them, in the shapes the cache holds."""

    record: Sharded | None
    outputs: Mapping[str, str] | None
    sizes: Mapping[str, int]
    files: dict[str, int]

    @classmethod
    def of(cls, record: Sharded | None, *, lazy: bool) -> _Files:
        if record is None:
            return cls(None, None, {}, {})
        hashes: dict[str, str] = {}
        sizes: dict[str, int] = {}
        files: dict[str, int] = {}
        # A million entries and more: taken apart a part at a time, in C (the record
        # keeps artifacts and other files in parts of their own). `lazy` leaves the
        # artifacts' parts to be read as they are looked up.
        for i in range(len(record.names)):
            if lazy and i in ARTIFACT_PARTS:
                continue
            part = record.part(i)
            hashes.update(zip(part, map(_first, part.values()), strict=True))
            kept = sizes if i in ARTIFACT_PARTS else files
            kept.update(zip(part, map(_second, part.values()), strict=True))
        if lazy:
            return cls(
                record, RecordColumn(record, 0, hashes), RecordColumn(record, 1, None), files
            )
        return cls(record, hashes, sizes, files)

    def fields(self) -> dict[str, Any]:
        return {
            "outputs": self.outputs,
            "sizes": self.sizes,
            "files": self.files,
            "outputs_record": self.record,
        }


def forget_cache(out: Path) -> None:
    """Remove the cache: called before an output changes, so that a build stopped
    half-way leaves no cache claiming files it did not finish writing."""
    sharded.forget(out / STATE_DIR / CACHE_FILE)


def save_cache(out: Path, cache: BuildCache) -> None:
    """Write the cache atomically, rewriting only the parts that changed."""
    header = (
        cache.index,
        cache.registry,
        cache.listings,
        cache.borrowed,
        cache.scanned,
        cache.written,
    )
    records: list[dict[str, Any]] = [{} for _ in _RECORD_PARTS]
    packed: dict[str, bytes] = {}  # the rows of the plugins this build made facts of
    for folder, r in cache.plugins.items():
        row, blob = r.row, None  # a record of another shape is kept as it is: read again
        if r.usable():
            blob = row[_PACKED]
            if blob is None and cache.loaded is None:  # loaded apart from this cache
                blob = cast("PackedRowsSource", r.stored).packed_rows(folder)
        if blob is not None:
            packed[folder] = blob
            row = (*row[:_PACKED], None, *row[_PACKED + 1 :])
        records[_part_of(folder)][folder] = (r.input, row, r.stats)
    parts = [*records, *_rows_parts(cache, packed)]
    cache.loaded = sharded.save(
        out / STATE_DIR / CACHE_FILE, _CACHE_KEY, header, parts, cache.loaded
    )


def _rows_parts(cache: BuildCache, packed: Mapping[str, bytes]) -> list[dict[str, Any] | None]:
    """Return the parts of packed rows: those of `cache.loaded` with `packed` put in
    and the rows of plugins gone taken out (None: a part unread and unchanged)."""
    loaded = cache.loaded
    if loaded is None:
        return list(sharded.split(packed.items(), _part_of)[:_HALF])
    changes: dict[str, bytes | None] = dict(packed)
    for i in _RECORD_PARTS:
        # Not `keys() - keys()`: that walks the other operand, every plugin, per part.
        changes.update(dict.fromkeys(f for f in loaded.part(i) if f not in cache.plugins))
    return list(sharded.changed(loaded, changes, _rows_part_of)[_HALF:])


def _rows_part_of(folder: str) -> int:
    return _HALF + _part_of(folder)


def save_if_changed(
    out: Path,
    analysis: Analysis,
    cache: BuildCache,
    files: int,
    report: WriteReport,
    *,
    committed: int,
    looked_again: Finding | None,
) -> None:
    """Save the cache unless the build changed nothing it records.

    `files` is how many files the build publishes; `committed` is when the output
    came to hold them (ns since 1970);
    `looked_again` the find of what changed in the output since the last build.
    """
    fresh = analysis.cache
    # Nothing written: every planned file is recorded with its hash (and the artifacts
    # with their sizes), so the same number of files means the same record.
    same_files = (
        not report.written
        and not report.removed
        and cache.outputs is not None
        and files == len(cache.outputs)
    )
    unchanged = (
        same_files
        and not analysis.documents
        and fresh.registry == cache.registry
        and fresh.listings == cache.listings
        and fresh.borrowed == cache.borrowed
        # An older scan time is still true (it only makes the next scan look further
        # back), but none at all makes every build walk everything.
        and (cache.scanned > 0 or fresh.scanned == 0)
        and cache.written > 0
        # Paths found changed and then found as recorded (files rewritten with the
        # same bytes, a build's own last writes) are looked at by every build until
        # the record's time moves past them.
        and (looked_again is None or looked_again.listed <= LOOKED_AGAIN)
        and fresh.plugins.keys() == cache.plugins.keys()
        and all(r.stats == cache.plugins[name].stats for name, r in fresh.plugins.items())
    )
    if not unchanged:
        wrote = report.written or report.removed
        # With nothing written, the output has held the plan since before it was
        # looked at; otherwise since the commit (nothing else writes into it meanwhile).
        fresh.written = committed if wrote or looked_again is None else looked_again.launched
        fresh.loaded = cache.loaded
        save_cache(out, fresh)
