"""Whoosh, the client's side: open an index from verified bytes and answer queries.

Rules that keep queries fast and safe (see DESIGN.md): no query parser (a query is
split into words and each word becomes term queries we build ourselves, so `*`, `?`,
`OR`, quotes and `field:value` are plain text); prefix queries only on the name
fields; fuzzy terms only for words of 4+ letters, with a fixed first letter.

Whoosh unpickles the table of contents (and segment metadata) of every index it
opens, so a reader only ever sees bytes the caller has checked against a manifest:
`VerifiedIndex` takes the files as bytes, never a folder. (Unpickling the schema
imports `whoosh_adapter`, where its field classes are.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from whoosh import query
from whoosh.filedb.filestore import RamStorage
from whoosh.index import FileIndex
from whoosh.searching import Searcher

from builder.common.whoosh_adapter import (
    DEPRECATED_FACTOR,
    INDEX_NAME,
    SEGMENT_NAME,
    STOP_WORDS,
    TOC_NAME,
    tokens,
)

MAX_QUERY_CHARS = 256  # longer queries are cut: no one types more, and time stays bounded
MAX_QUERY_WORDS = 8

# Query-time weights of each field (the browser shards use the same order of fields).
WEIGHTS = {
    "name": 60.0,  # the whole name, exactly
    "name_prefix": 12.0,  # the whole name starts with the query
    "name_words": 10.0,
    "display_name": 5.0,
    "keywords": 4.0,
    "category_words": 3.0,
    "formats": 3.0,
    "owners": 2.0,
    "description": 1.0,
}
FUZZY_FIELDS = ("name_words", "display_name", "keywords", "description")
FUZZY_FACTOR = 0.4  # a typo match counts for less than an exact one


@dataclass(frozen=True)
class Hit:
    """A matching plugin: its score and its document number in the index."""

    score: float
    docnum: int


class VerifiedIndex:
    """An index opened from bytes the caller verified; answers queries, read-only."""

    def __init__(self, files: Mapping[str, bytes]) -> None:
        storage = RamStorage()
        for name, data in files.items():
            if not (TOC_NAME.fullmatch(name) or SEGMENT_NAME.fullmatch(name)):
                raise ValueError(f"{name}: not a search index file name")
            storage.files[name] = data
        generations = [int(m[1]) for n in files if (m := TOC_NAME.fullmatch(n))]
        if len(generations) != 1:
            raise ValueError(f"expected one table of contents, got {len(generations)}")
        self._index = FileIndex(storage, indexname=INDEX_NAME)
        self._searcher: Searcher = self._index.searcher()
        self._columns: dict[str, Any] = {}

    def close(self) -> None:
        """Release the searcher."""
        self._searcher.close()

    def doc_count(self) -> int:
        """Return the number of plugins in the index."""
        return int(self._searcher.doc_count())

    def record(self, docnum: int) -> dict[str, Any]:
        """Return the stored search record of a hit (loaded only when needed: it costs)."""
        record: dict[str, Any] = json.loads(self._searcher.stored_fields(docnum)["record"])
        return record

    def value(self, field: str, docnum: int) -> Any:
        """Return a sortable field's value for a hit (name, released, downloads, rating,
        yanked_only, deprecated), read from its column without loading the record; None
        from an index built before the column existed."""
        if field not in self._columns:
            reader = self._searcher.reader()
            has = field in reader.schema and reader.has_column(field)
            self._columns[field] = reader.column_reader(field) if has else None
        if self._columns[field] is None:
            return None
        value = self._columns[field][docnum]
        return value.decode("utf-8") if isinstance(value, bytes) else value

    def search(self, text: str, filters: Mapping[str, str]) -> list[Hit]:
        """Return every plugin matching the words of `text` and `filters`, best first.

        `filters` maps an indexed field (categories, engines, formats, licenses) to a
        value that must be among that field's words. A text without words (`*`, `OR`)
        matches nothing: it is not a request for every plugin (see `listing`).
        """
        words = query_words(text)
        if not words:
            return []
        wanted = _restriction(filters)
        name = "-".join(words)
        whole = [query.Term("name", name, boost=WEIGHTS["name"])]
        if len(name) >= 2:
            whole.append(query.Prefix("name", name, boost=WEIGHTS["name_prefix"]))
        per_word = [_word_query(t) for t in words]
        found = self._run(query.Or([*whole, query.And(per_word)]), wanted)
        if not found and len(per_word) > 1:  # no plugin has every word: any word will do
            found = self._run(query.Or([*whole, query.Or(per_word)]), wanted)
        return self._deprecated_lower(found, name)

    def _deprecated_lower(self, hits: list[Hit], name: str) -> list[Hit]:
        """Scale deprecated plugins' scores by DEPRECATED_FACTOR, except the plugin the
        query names exactly (the user asked for it: it stays first, saying it is
        deprecated); sort again (stable)."""
        ranked = [
            Hit(h.score * DEPRECATED_FACTOR, h.docnum)
            if self.value("deprecated", h.docnum) and self.value("name", h.docnum) != name
            else h
            for h in hits
        ]
        ranked.sort(key=lambda h: -h.score)
        return ranked

    def listing(self, filters: Mapping[str, str]) -> list[Hit]:
        """Return every plugin under `filters` (no words to match), in index order."""
        return self._run(query.Every(), _restriction(filters))

    def _run(self, q: query.Query, wanted: query.Query | None) -> list[Hit]:
        hits = self._searcher.search(q, limit=None, filter=wanted)
        return [Hit(float(h.score or 0.0), int(h.docnum)) for h in hits]


def _restriction(filters: Mapping[str, str]) -> query.Query | None:
    restrict = [
        query.Term(field, value.lower()) for field, value in sorted(filters.items()) if value
    ]
    return query.And(restrict) if restrict else None


def query_words(text: str) -> list[str]:
    """Return the words of a query: cut to size, lower case, control characters dropped."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text[:MAX_QUERY_CHARS])
    words = [w for w in tokens(cleaned) if w not in STOP_WORDS]
    return list(dict.fromkeys(words))[:MAX_QUERY_WORDS]


def _word_query(word: str) -> query.Query:
    parts: list[query.Query] = [
        query.Term(field, word, boost=WEIGHTS[field])
        for field in (
            "name_words",
            "display_name",
            "keywords",
            "category_words",
            "formats",
            "owners",
            "description",
        )
    ]
    if len(word) >= 2:
        parts.append(query.Prefix("name_words", word, boost=WEIGHTS["name_words"] / 4))
    if len(word) >= 4:
        # Whoosh's edit distance counts a swap of two letters as two edits: try swaps as terms.
        swaps = {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(1, len(word) - 1)}
        parts.extend(
            query.Term(field, swapped, boost=WEIGHTS[field] * FUZZY_FACTOR)
            for swapped in sorted(swaps - {word})
            for field in FUZZY_FIELDS
        )
        distance = 2 if len(word) >= 8 else 1
        parts.extend(
            query.FuzzyTerm(
                field,
                word,
                boost=WEIGHTS[field] * FUZZY_FACTOR,
                maxdist=distance,
                prefixlength=1,
            )
            for field in FUZZY_FIELDS
        )
    return query.Or(parts)
