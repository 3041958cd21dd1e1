"""Browser shards: one small immutable file per word prefix, fetched on demand.

Every word of the searched fields (the whole name too) belongs to the shard whose key
is the longest key that starts it. A key whose words would make a shard larger than
`ShardLimits.max_bytes` (an estimate of its JSON, see `term_cost` and `doc_cost`) is
split one character deeper, its longer words moving to the children; the split shard
keeps the word equal to its key and a `more` list: the best plugins of every word
under it, for a query still one or two letters long. Each word keeps its `top` best
postings, scored by the weights of the fields it occurs in (plus popularity once it
exists); each shard carries the short records of the plugins it mentions, so a query
needs no other file. Which keys exist is a function of the words alone (see
`builder.search.shard_tree`), so an incremental build writes the same shards as a cold
build of the same input.

Shards are gzip files (`search/v1/t/<key>.<hash>.json.gz`, immutable); the browser
inflates them itself (`DecompressionStream`), so the bytes on the wire do not depend
on the server compressing. Which keys exist, and the hash in each shard's name, is
listed per first character in a key list (`search/v1/k/<character>.<hash>.json.gz`,
immutable): a query fetches the key lists of its words' first characters only, so
the bytes per query stay small when 100,000 plugins make thousands of keys.
`search/v1/manifest.json` (short cache) names each key list and lists the categories
the shards refer to by number.
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

from builder.common import whoosh_adapter as engine

SHARD_FORMAT = 2  # 2: keys listed per first character (search/v1/k/)
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

# A posting (-score, plugin name): sorting puts the best first, ties by name.
Entry = tuple[int, str]


@dataclass(frozen=True)
class ShardLimits:
    # Estimated JSON bytes past which a key is split deeper (about 10 KB gzipped).
    max_bytes: int = 40 * 1024
    top: int = 48  # postings kept per word
    more: int = 16  # postings kept in a split shard's `more` list
    max_depth: int = 12  # characters: never split keys longer than this


def popularity(record: Mapping[str, Any]) -> int:
    """Return a plugin's popularity bonus (0 until download counts are published)."""
    downloads = int(record.get("downloads") or 0)
    return min(20, int(2 * math.log10(1 + downloads)))


def shard_terms(
    record: Mapping[str, Any], texts: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Return each word of a plugin's searched fields with its score in the shards
    (`texts`: the record's `field_texts`, when the caller has them already)."""
    scores: dict[str, int] = {}
    texts = engine.field_texts(record) if texts is None else texts
    for field, terms in engine.field_terms(texts).items():
        weight = FIELD_WEIGHTS[field]
        for term in set(terms):
            scores[term] = scores.get(term, 0) + weight
    bonus = popularity(record)
    if record.get("deprecated"):  # lower in every posting, as in the CLI's ranking
        factor = engine.DEPRECATED_FACTOR
        return {t: max(1, round((v + bonus) * factor)) for t, v in sorted(scores.items())}
    return {term: score + bonus for term, score in sorted(scores.items())}


def short_record(record: Mapping[str, Any], categories: Mapping[str, int]) -> list[Any]:
    """Return what a result shows and the filters need, as a compact list: name, version,
    description, category numbers (in the manifest's list), engine names, yanked-only,
    and for a deprecated plugin only, a seventh item: its replacement's name, or ""."""
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
        # Names, not numbers: any set of engines numbers them differently, and a shard
        # must not change when another plugin brings a new engine.
        sorted({v["engine"] for v in usable}),
        1 if record["yanked_only"] else 0,
        # Only when deprecated: every other plugin's record (and shard) keeps its bytes.
        *([record["deprecated"].get("replacement") or ""] if record.get("deprecated") else []),
    ]


# One encoder for every call: json.dumps with options builds a new one each time.
_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def dumps(value: Any) -> str:
    """Return the compact, key-sorted JSON every shard and state row is written in."""
    return _JSON.encode(value)


def term_cost(term: str, postings: int) -> int:
    """Return the estimated JSON bytes of one word and its postings in a shard."""
    return len(term) + 10 + 7 * postings


def doc_cost(short: str) -> int:
    """Return the JSON bytes of one plugin's short record in a shard."""
    return len(short) + 1


def best_of(lists: Iterable[Iterable[Entry]], count: int) -> list[Entry]:
    """Return the `count` best plugins of several postings lists, each at its best score."""
    best: dict[str, int] = {}
    for entries in lists:
        for rank, name in entries:
            if rank < best.get(name, 1):
                best[name] = rank
    return sorted((rank, name) for name, rank in best.items())[:count]


def encode_shard(
    key: str,
    terms: Mapping[str, tuple[int, list[Entry]]],
    shorts: Mapping[str, str],
    more: list[Entry] | None,
) -> bytes:
    """Return a shard's JSON: its words (document frequency, best postings), the `more`
    list of a split key, and the short records they refer to (`shorts`: name -> JSON)."""
    names = sorted({n for _, top in terms.values() for _, n in top} | {n for _, n in more or ()})
    ref = {name: i for i, name in enumerate(names)}
    words = ",".join(
        f"{json.dumps(term, ensure_ascii=False)}:[{df},"
        f"[{','.join(f'{ref[n]},{-r}' for r, n in top)}]]"
        for term, (df, top) in sorted(terms.items())
    )
    parts = [
        f'"docs":[{",".join(shorts[n] for n in names)}]',
        f'"format":{SHARD_FORMAT}',
        f'"key":{json.dumps(key, ensure_ascii=False)}',
    ]
    if more is not None:
        parts.append(f'"more":[{",".join(f"{ref[n]},{-r}" for r, n in more)}]')
    parts.append(f'"terms":{{{words}}}')
    return ("{" + ",".join(parts) + "}").encode("utf-8")


def _safe(key: str) -> str:
    return key if _SAFE_KEY.fullmatch(key) else "x" + key.encode("utf-8").hex()


def _packed(content: bytes) -> tuple[bytes, str]:
    packed = gzip.compress(content, compresslevel=9, mtime=0)
    return packed, hashlib.sha256(packed).hexdigest()[:10]


def shard_path(key: str, content: bytes) -> tuple[str, bytes]:
    """Return the published path of a shard and its gzipped bytes."""
    packed, digest = _packed(content)
    return f"{ROOT}t/{_safe(key)}.{digest}.json.gz", packed


def key_lists(shards: Mapping[str, str]) -> dict[str, tuple[str, bytes]]:
    """Return, per first character, the path and gzipped bytes of its key list: each
    key starting with that character -> the hash in its shard's file name."""
    by_root: dict[str, dict[str, str]] = {}
    for key, path in sorted(shards.items()):
        by_root.setdefault(key[0], {})[key] = path.rsplit(".", 3)[1]
    lists = {}
    for root, keys in by_root.items():
        packed, digest = _packed(dumps(keys).encode("utf-8"))
        lists[root] = (f"{ROOT}k/{_safe(root)}.{digest}.json.gz", packed)
    return lists


def manifest_document(
    lists: Mapping[str, str],
    categories: list[str],
    plugins: int,
    built_at: str | None,
) -> bytes:
    """Return search/v1/manifest.json: each first character's key list, the categories."""
    document = {
        "format": SHARD_FORMAT,
        "built_at": built_at,
        "plugins": plugins,
        "categories": categories,
        "min_typo_length": 4,
        # First character -> the hash in its key list's name, k/<character>.<hash>.json.gz;
        # a key list maps each key to the hash in its shard's name, t/<key>.<hash>.json.gz
        # (a key or character outside [a-z0-9_-] is written "x" + the hex of its UTF-8).
        # A word's shard is that of the longest key that starts it.
        "roots": {root: path.rsplit(".", 3)[1] for root, path in sorted(lists.items())},
    }
    return (dumps(document) + "\n").encode("utf-8")
