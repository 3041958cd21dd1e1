"""Whoosh, the build's side: the search schema, the words of each field, and writing the
index. Every Whoosh call is in this module or `whoosh_reader` (the client's side).

Shared by the build (`builder.search`, which writes the index) and, through
`whoosh_reader`, the client (`builder.client`), so it imports nothing of either:
records come in as plain dicts. The schema's field classes live here for good:
Whoosh pickles the schema into each table of contents, naming this module.

The build imports the writing side of Whoosh only when it writes (`update_index`):
`plugindex search` starts a process per query, and every import counts there.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whoosh import columns, fields
from whoosh.analysis import LowercaseFilter, RegexTokenizer
from whoosh.codec.whoosh3 import W3Codec, W3Segment
from whoosh.filedb.filestore import FileStorage
from whoosh.index import FileIndex, Index, LockError
from whoosh.system import pack_uint as _pack_uint

INDEX_NAME = "MAIN"
# The Whoosh file name patterns a manifest may list (a TOC and compound segments).
TOC_NAME = re.compile(rf"_{INDEX_NAME}_([0-9]+)\.toc")
SEGMENT_NAME = re.compile(rf"{INDEX_NAME}_[0-9a-z]{{1,32}}\.seg")

# Words: letters, digits and underscores, with inner dots kept ("v1.2", "node.js").
WORD = re.compile(r"\w+(?:\.\w+)*")
STOP_WORDS = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "by", "can", "for", "from", "has"),
        *("have", "in", "is", "it", "of", "on", "or", "that", "the", "this", "to", "was"),
        *("will", "with", "your", "you", "its", "not", "all", "any", "into", "than"),
        *("then", "there", "these", "they", "when", "which", "without"),
    }
)

# A deprecated plugin's scores are multiplied by this, in the CLI's ranking and in the
# browser shards' postings: it comes below plugins that match as well. A query naming it
# exactly still finds it first (the CLI leaves that match as it is; the browser adds
# the same bonus to any exact name).
DEPRECATED_FACTOR = 0.25


def _frequencies(words: Iterable[str], boost: float) -> Iterator[tuple[bytes, int, float, bytes]]:
    """Yield what Whoosh's Frequency format makes of a field's words: (term, frequency,
    weight, encoded frequency) per distinct word, in order of first appearance."""
    counts: dict[str, int] = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    for word, freq in counts.items():
        yield word.encode("utf-8"), freq, freq * boost, _pack_uint(freq)


class _Words(fields.TEXT):  # type: ignore[misc]
    """A text field that splits its words itself (`WORD`, then lower case): the same terms
    as its analyzer makes, several times faster when a cold build indexes every plugin.
    Only the build indexes: queries are built from terms, never analyzed."""

    def index(self, value: str, **kwargs: Any) -> Iterator[tuple[bytes, int, float, bytes]]:
        return _frequencies(tokens(value), self.format.field_boost)


class _Keywords(fields.KEYWORD):  # type: ignore[misc]
    """A keyword field (words between spaces, lower case) that splits them itself."""

    def index(self, value: str, **kwargs: Any) -> Iterator[tuple[bytes, int, float, bytes]]:
        return _frequencies(value.lower().split(), self.format.field_boost)


def make_schema() -> fields.Schema:
    """Return the schema of the search index (downloads and rating wait for their data).

    No stop filter: stop words are dropped from the text before it reaches Whoosh
    (`field_texts`), because Whoosh pickles the schema into the table of contents and a
    stop filter's frozenset pickles in string-hash order (the bytes would change with
    PYTHONHASHSEED). Sort-only values are columns, not indexed numbers (a NUMERIC field
    indexes 16 terms per 64-bit value, for range queries we never run).
    """
    words = RegexTokenizer(WORD.pattern) | LowercaseFilter()
    return fields.Schema(
        name=fields.ID(unique=True, sortable=True),
        name_words=_Words(analyzer=words, phrase=False),
        display_name=_Words(analyzer=words, phrase=False),
        description=_Words(analyzer=words, phrase=False),
        keywords=_Words(analyzer=words, phrase=False),
        category_words=_Words(analyzer=words, phrase=False),
        formats=_Keywords(lowercase=True, scorable=True),
        owners=_Words(analyzer=words, phrase=False),
        categories=_Keywords(lowercase=True),  # exact slugs, for the filter
        licenses=_Keywords(lowercase=True),
        engines=_Keywords(lowercase=True),
        released=fields.COLUMN(columns.VarBytesColumn()),  # ISO date, for sorting
        downloads=fields.COLUMN(columns.NumericColumn("q")),
        rating=fields.COLUMN(columns.NumericColumn("i")),  # hundredths of a star
        yanked_only=fields.COLUMN(columns.NumericColumn("B")),  # 1: every version yanked
        deprecated=fields.COLUMN(columns.NumericColumn("B")),  # 1: its owners deprecated it
        record=fields.STORED(),
    )


def tokens(text: str) -> list[str]:
    """Return the words of `text` as the index's analyzer makes them (match, then lower)."""
    return [w.lower() for w in WORD.findall(text)]


def _without_stop_words(text: str) -> str:
    return " ".join(w for w in WORD.findall(text) if w.lower() not in STOP_WORDS)


def license_ids(expression: str) -> list[str]:
    """Return the licence identifiers of an SPDX expression (`MIT OR Apache-2.0`)."""
    return [
        part.lower()
        for part in re.split(r"[\s()]+", expression)
        if part and part not in {"AND", "OR", "WITH"}
    ]


def field_texts(record: Mapping[str, Any]) -> dict[str, str]:
    """Return the text of each searched field of a plugin's search record."""
    usable = [v for v in record["versions"] if not v["yanked"]] or record["versions"]
    formats = sorted({f.lstrip(".") for v in usable for f in v["formats"]})
    return {
        "name": record["name"],
        "name_words": record["name"].replace("-", " "),
        "display_name": _without_stop_words(record["display_name"]),
        "keywords": " ".join(record["keywords"]),
        "category_words": " ".join(record["categories"]),
        "formats": " ".join(formats),
        "owners": " ".join(record["owners"]),
        "description": _without_stop_words(record["description"]),
    }


def field_terms(texts: Mapping[str, str]) -> dict[str, list[str]]:
    """Return the terms the index holds for each searched field (`field_texts`), in order.

    The same words as Whoosh's analyzers make: the whole name as one term, formats
    split on spaces, every other field by `WORD`, all lower case.
    """
    return {
        field: (
            [text]
            if field == "name"
            else text.lower().split()
            if field == "formats"
            else tokens(text)
        )
        for field, text in texts.items()
    }


def fields_of(record: Mapping[str, Any], texts: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Return the indexed fields of a plugin's search record (`texts`: its `field_texts`,
    when the caller has them already)."""
    usable = [v for v in record["versions"] if not v["yanked"]] or record["versions"]
    return {
        **(field_texts(record) if texts is None else texts),
        "categories": " ".join(record["categories"]),
        "licenses": " ".join(license_ids(record["license"])),
        "engines": " ".join(sorted({v["engine"] for v in usable})),
        "released": (record["released"] or "").encode("utf-8"),
        "downloads": int(record.get("downloads") or 0),
        "rating": round(float(record.get("rating") or 0.0) * 100),
        "yanked_only": 1 if record["yanked_only"] else 0,
        "deprecated": 1 if record.get("deprecated") else 0,
        "record": json.dumps(record, sort_keys=True, separators=(",", ":")),
    }


# --- writing (the build) ------------------------------------------------------------


class _StableStorage(FileStorage):  # type: ignore[misc]
    """A folder whose listing is sorted and whose times are zero.

    Whoosh assembles a segment's files into one compound file in listing order and
    records their modification times in it: both must not vary for a build to give
    the same bytes twice.
    """

    def list(self) -> list[str]:
        return sorted(super().list())

    def file_modified(self, name: str) -> float:
        return 0.0


class _NamedCodec(W3Codec):  # type: ignore[misc]
    """Whoosh's codec, naming the new segment after the commit's generation, not at random.

    Without length statistics: Whoosh would read every posting's field length back to
    record each term's shortest and longest document, which serve only to skip blocks
    when a search asks for the top N; ours ask for every match (`limit=None`).
    Scores still use each document's field lengths, which are written as before.
    """

    length_stats = False

    def __init__(self, segid: str) -> None:
        super().__init__()
        self._segid = segid

    def new_segment(self, storage: Any, indexname: str) -> W3Segment:
        # The segment records a plain codec: readers never need this class.
        return W3Segment(W3Codec(), indexname, segid=self._segid)


@dataclass(frozen=True)
class Compaction:
    """When small segments are merged (so they never pile up).

    After each update: if more than `max_segments` segments remain, every segment
    smaller than `small_fraction` of the largest is merged into the new one; if
    deleted documents are more than `max_deleted` of all documents, everything is
    merged into one segment.
    """

    max_segments: int = 8
    small_fraction: float = 0.1
    max_deleted: float = 0.2


def _merge_policy(compaction: Compaction) -> Callable[[Any, list[Any]], list[Any]]:
    from whoosh.reading import SegmentReader

    def policy(writer: Any, segments: list[Any]) -> list[Any]:
        total = sum(s.doc_count_all() for s in segments) or 1
        deleted = sum(s.deleted_count() for s in segments)
        if deleted > compaction.max_deleted * total:
            merge = list(segments)
        elif len(segments) + 1 > compaction.max_segments:
            largest = max(s.doc_count_all() for s in segments)
            merge = [s for s in segments if s.doc_count_all() < compaction.small_fraction * largest]
            if len(segments) - len(merge) + 1 > compaction.max_segments:
                merge = list(segments)  # no small ones to spare: merge everything
        else:
            merge = []
        for segment in merge:
            reader = SegmentReader(writer.storage, writer.schema, segment)
            writer.add_reader(reader)
            reader.close()
        return [s for s in segments if s not in merge]

    return policy


def _open_writable(folder: Path) -> Index:
    folder.mkdir(parents=True, exist_ok=True)
    storage = _StableStorage(str(folder))
    try:
        return FileIndex(storage, indexname=INDEX_NAME)
    except Exception:  # any unreadable state: start the index again
        return storage.create_index(make_schema(), indexname=INDEX_NAME)


def update_index(
    folder: Path,
    upserts: Iterable[Mapping[str, Any]],
    removals: Iterable[str],
    *,
    fresh: bool = False,
    compaction: Compaction = Compaction(),
    texts: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Bring the Whoosh index in `folder` up to date: add or replace records, remove names.

    `fresh` starts from an empty index (a cold build); the result then depends only
    on the records. Records are added in name order, so the same records give the
    same bytes. `texts` are the records' `field_texts` by name, if already made.
    """
    from whoosh.writing import SegmentWriter  # the client never writes: not at import

    if fresh:
        for leftover in folder.glob("*") if folder.is_dir() else ():
            leftover.unlink()
    ix = _open_writable(folder)
    generation = ix.latest_generation() + 1
    try:
        writer = SegmentWriter(ix, codec=_NamedCodec(f"g{generation:08d}"), limitmb=256)
    except LockError:
        # A build killed while writing leaves the lock: builds of one folder never overlap.
        (folder / f"{INDEX_NAME}_WRITELOCK").unlink(missing_ok=True)
        writer = SegmentWriter(ix, codec=_NamedCodec(f"g{generation:08d}"), limitmb=256)
    # A fresh index holds no document to replace: adding skips the look-up per record.
    add = writer.add_document if fresh else writer.update_document
    try:
        for name in sorted(set(removals)):
            writer.delete_by_term("name", name)
        for record in sorted(upserts, key=lambda r: str(r["name"])):
            add(**fields_of(record, (texts or {}).get(record["name"])))
        writer.commit(mergetype=_merge_policy(compaction))
    except BaseException:
        writer.cancel()
        raise
    finally:
        ix.close()


def index_files(folder: Path) -> list[str]:
    """Return the Whoosh files the current index in `folder` consists of (TOC last)."""
    ix = _open_writable(folder)
    try:
        generation = ix.latest_generation()
        segments = ix._segments()  # Whoosh has no public listing of them
        names = sorted(s.make_filename(W3Segment.COMPOUND_EXT) for s in segments)
    finally:
        ix.close()
    return [*names, f"_{INDEX_NAME}_{generation}.toc"]


def prune_folder(folder: Path, keep: Iterable[str]) -> None:
    """Delete files of older generations from a writable index folder."""
    wanted = set(keep)
    for path in folder.glob("*"):
        if path.name not in wanted and not path.name.endswith("WRITELOCK"):
            with contextlib.suppress(OSError):
                path.unlink()


def generation(folder: Path) -> int:
    """Return the generation of the index in `folder` (-1: none)."""
    if not folder.is_dir():
        return -1
    found = [int(m[1]) for p in folder.iterdir() if (m := TOC_NAME.fullmatch(p.name))]
    return max(found, default=-1)
