"""Browser shards: one small immutable file per word prefix, fetched on demand.

Every word of the indexed fields (the whole name too) belongs to the shard whose key
is the longest key that starts it. Keys start as single characters; a shard whose
gzipped size passes `ShardLimits.max_gzip` is split one character deeper, its longer
words moving to the children (a word equal to the key stays, and the split shard
keeps its `more` list: the best plugins of every word under it, for a query still
one or two letters long). Each word keeps its `top` best postings, scored by the
weights of the fields it occurs in (plus popularity once it exists); each shard
carries the short records of the plugins it mentions, so a query needs no other file.

Shards are gzip files (`search/v1/t/<key>.<hash>.json.gz`, immutable); the browser
inflates them itself (`DecompressionStream`), so the bytes on the wire do not depend
on the server compressing. `search/v1/manifest.json` (short cache) maps each key to
its file and lists the categories and engines the shards refer to by number.

Incremental: a build that changes a few plugins rebuilds only the shards whose key
starts a word those plugins had or have; the tree of keys is kept between builds
(splits are kept; a shard that shrinks is not merged back until a cold build).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from whoosh.reading import IndexReader

from builder.common import whoosh_adapter as engine

SHARD_FORMAT = 1
ROOT = "search/v1/"
MANIFEST = ROOT + "manifest.json"
DESCRIPTION_CHARS = 140  # a result shows one line of description
_SAFE_KEY = re.compile(r"[a-z0-9_-]+")

# Weight of a word found in each field (the whole name counts far above the rest).
FIELD_WEIGHTS = {
    "name": 60,
    "name_words": 10,
    "display_name": 5,
    "keywords": 4,
    "category_words": 3,
    "formats": 3,
    "owners": 2,
    "description": 1,
}


@dataclass(frozen=True)
class ShardLimits:
    max_gzip: int = 12 * 1024  # bytes: split a shard deeper past this (gzipped)
    top: int = 48  # postings kept per word
    more: int = 16  # postings kept in a split shard's `more` list
    max_depth: int = 12  # characters: never split keys longer than this


@dataclass(frozen=True)
class Shard:
    key: str
    path: str  # published path
    content: bytes  # gzipped JSON


def popularity(record: Mapping[str, Any]) -> int:
    """Return a plugin's popularity bonus (0 until download counts are published)."""
    downloads = int(record.get("downloads") or 0)
    return min(20, int(2 * math.log10(1 + downloads)))


def short_record(
    record: Mapping[str, Any], categories: Mapping[str, int], engines: Mapping[str, int]
) -> list[Any]:
    """Return what a result shows and the filters need, as a compact list."""
    usable = [v for v in record["versions"] if not v["yanked"]] or record["versions"]
    description = str(record["description"])
    if len(description) > DESCRIPTION_CHARS:
        description = description[: DESCRIPTION_CHARS - 1].rstrip() + "…"
    version = record["latest"] or (usable[0]["version"] if usable else "")
    return [
        record["name"],
        version,
        description,
        sorted(categories[c] for c in record["categories"] if c in categories),
        sorted({engines[v["engine"]] for v in usable if v["engine"] in engines}),
        1 if record["yanked_only"] else 0,
    ]


class ShardBuilder:
    """Builds shards from the build's Whoosh index (terms, postings, stored records)."""

    def __init__(
        self,
        reader: IndexReader,
        categories: list[str],
        engines: list[str],
        limits: ShardLimits = ShardLimits(),
    ) -> None:
        self.reader = reader
        self.limits = limits
        self.categories = {c: i for i, c in enumerate(categories)}
        self.engines = {e: i for i, e in enumerate(engines)}
        self._records: dict[int, dict[str, Any]] = {}
        self._ranked: dict[str, tuple[int, list[tuple[int, int]]]] = {}

    def _record(self, docnum: int) -> dict[str, Any]:
        if docnum not in self._records:
            self._records[docnum] = engine.stored_record(self.reader, docnum)
        return self._records[docnum]

    def _postings(
        self, term: str, fields: Mapping[str, list[int]]
    ) -> tuple[int, list[tuple[int, int]]]:
        """Return (document frequency, best (score, docnum) postings) of one word."""
        if term in self._ranked:
            return self._ranked[term]
        scores: dict[int, int] = {}
        for field, docs in fields.items():
            for doc in docs:
                scores[doc] = scores.get(doc, 0) + FIELD_WEIGHTS[field]
        ranked = sorted(
            ((score + popularity(self._record(doc)), doc) for doc, score in scores.items()),
            key=lambda p: (-p[0], self._record(p[1])["name"]),
        )
        self._ranked[term] = (len(scores), ranked[: self.limits.top])
        return self._ranked[term]

    def build(
        self, keys: Iterable[str] | None, existing: Iterable[str] = ()
    ) -> dict[str, bytes | None]:
        """Return the JSON of the shards `keys` (None: every shard, from scratch).

        `existing` are the keys of the previous build; the result may hold new, deeper
        keys (splits), and None for a key left with no words (to remove).
        """
        out: dict[str, bytes | None] = {}
        if keys is None:
            roots: dict[str, dict[str, dict[str, list[int]]]] = {}
            for term, fields in engine.field_terms(self.reader, "").items():
                roots.setdefault(term[0], {})[term] = fields
            for key in sorted(roots):
                self._node(key, roots[key], set(), out)
            return out
        known = set(existing)
        for key in sorted(keys):
            self._node(key, engine.field_terms(self.reader, key), known, out)
        return out

    def _node(
        self,
        key: str,
        under: Mapping[str, Mapping[str, list[int]]],
        existing: set[str],
        out: dict[str, bytes | None],
    ) -> None:
        """Encode shard `key` from the words under it, splitting it if it is too large."""
        deeper = [k for k in existing if len(k) > len(key) and k.startswith(key)]
        own = {t: f for t, f in under.items() if not any(t.startswith(k) for k in deeper)}
        if not own and not deeper:
            out[key] = None
            return
        content = self._encode(key, own, under if deeper else None)
        longer = [t for t in own if len(t) > len(key)]
        if (
            len(gzip.compress(content, mtime=0)) <= self.limits.max_gzip
            or not longer
            or len(key) >= self.limits.max_depth
        ):
            out[key] = content
            return
        exact = {t: f for t, f in own.items() if t == key}
        out[key] = self._encode(key, exact, under)
        for char in sorted({t[len(key)] for t in longer}):
            child = key + char
            self._node(child, {t: f for t, f in own.items() if t.startswith(child)}, set(), out)

    def _encode(
        self,
        key: str,
        terms: Mapping[str, Mapping[str, list[int]]],
        under: Mapping[str, Mapping[str, list[int]]] | None,
    ) -> bytes:
        """Encode a shard; `under` (every word under a split key) fills its `more` list."""
        postings = {term: self._postings(term, fields) for term, fields in sorted(terms.items())}
        best: list[tuple[int, int]] = []
        if under is not None:
            scores: dict[int, int] = {}
            for term, fields in under.items():
                for score, doc in self._postings(term, fields)[1]:
                    scores[doc] = max(scores.get(doc, 0), score)
            best = sorted(
                ((s, d) for d, s in scores.items()),
                key=lambda p: (-p[0], self._record(p[1])["name"]),
            )[: self.limits.more]
        docs = sorted(
            {d for _, ranked in postings.values() for _, d in ranked} | {d for _, d in best},
            key=lambda d: self._record(d)["name"],
        )
        ref = {d: i for i, d in enumerate(docs)}
        shard: dict[str, Any] = {
            "format": SHARD_FORMAT,
            "key": key,
            "terms": {
                term: [df, [x for s, d in ranked for x in (ref[d], s)]]
                for term, (df, ranked) in postings.items()
            },
            "docs": [short_record(self._record(d), self.categories, self.engines) for d in docs],
        }
        if under is not None:
            shard["more"] = [x for s, d in best for x in (ref[d], s)]
        return json.dumps(shard, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode(
            "utf-8"
        )


def shard_path(key: str, content: bytes) -> tuple[str, bytes]:
    """Return the published path of a shard and its gzipped bytes."""
    packed = gzip.compress(content, compresslevel=9, mtime=0)
    safe = key if _SAFE_KEY.fullmatch(key) else "x" + key.encode("utf-8").hex()
    digest = hashlib.sha256(packed).hexdigest()[:10]
    return f"{ROOT}t/{safe}.{digest}.json.gz", packed


def manifest_document(
    shards: Mapping[str, str],
    categories: list[str],
    engines: list[str],
    plugins: int,
    built_at: str | None,
) -> bytes:
    """Return search/v1/manifest.json: each key's shard file, and the value lists."""
    document = {
        "format": SHARD_FORMAT,
        "built_at": built_at,
        "plugins": plugins,
        "categories": categories,
        "engines": engines,
        "min_typo_length": 4,
        # key -> the hash in its file name, t/<key>.<hash>.json.gz (a key outside
        # [a-z0-9_-] is written "x" + the hex of its UTF-8); the longest key matching
        # the start of a word is its shard.
        "shards": {key: path.rsplit(".", 3)[1] for key, path in sorted(shards.items())},
    }
    return (
        json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"
    ).encode("utf-8")


def affected_keys(keys: Iterable[str], words: Iterable[str]) -> set[str]:
    """Return every key that starts one of `words` (their shards and `more` lists change)."""
    known = set(keys)
    found: set[str] = set()
    for word in words:
        for end in range(1, len(word) + 1):
            if word[:end] in known:
                found.add(word[:end])
    return found


def missing_roots(keys: Iterable[str], words: Iterable[str]) -> set[str]:
    """Return the first characters of words that no key covers yet (new shards)."""
    known = set(keys)
    return {w[0] for w in words if w and w[0] not in known}
