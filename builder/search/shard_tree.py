"""The tree of shard keys, kept between builds with the postings behind it
(`builder.search.postings`, in the same SQLite state): a build that changes a few
plugins settles only the keys on the way to their words.

Which keys exist is a function of the postings alone, so incremental and cold builds
agree byte for byte:

- the roots are the first characters of every word;
- a key is split when some word under it is longer than it, it is shorter than
  `max_depth`, and a shard of every word under it would pass `max_bytes` (the sum of
  `term_cost` over those words and `doc_cost` over the plugins their best postings
  name); its children are the key plus each next character.

That estimate only grows from a key to its parent, so a key above a split key is
split too, and a split key whose children are all leaves can be tested for merging
back from what the leaves keep (their plugins and word costs) without reading their
words again. A split key's `more` list is the best of its own word's postings and of
its children's `more` lists (a plugin scores its best word).

Changes happen in one SQLite transaction that `commit` ends once the build's files are
in place; a build that fails leaves the previous state as it was.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from builder.search.postings import SCHEMA, STATE_FORMAT, Doc, Postings, flat, parse_entries
from builder.search.shards import (
    Entry,
    ShardLimits,
    best_of,
    doc_cost,
    dumps,
    encode_shard,
    term_cost,
)

__all__ = ["STATE_FORMAT", "Doc", "Node", "ShardTree"]  # the build's stage imports them here


@dataclass
class Node:
    split: bool
    best: list[Entry]  # the `more` list: the best plugins of every word under the key
    # A leaf's plugins -> doc_cost (None: still in the state, read when needed).
    docs: dict[str, int] | None = field(default_factory=dict)
    term_bytes: int = 0  # a leaf's words: the sum of their term_cost


class ShardTree(Postings):
    """The shard keys of a build and the postings they are made from."""

    def __init__(self, db: sqlite3.Connection, limits: ShardLimits) -> None:
        super().__init__(db, limits)
        self.nodes: dict[str, Node] = {}
        self.out: dict[str, bytes | None] = {}  # key -> new shard JSON, None: removed
        self._dirty: set[str] = set()  # nodes to write back

    # --- opening ------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, limits: ShardLimits) -> ShardTree:
        """Start an empty state at `path` (replacing any), inside an open transaction."""
        for leftover in (path, path.with_name(path.name + "-journal")):
            leftover.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        db.executescript(SCHEMA)
        # Everything else happens in one transaction: a build that fails leaves a state
        # without a generation, which the next build does not trust.
        db.execute("BEGIN")
        db.execute("INSERT INTO meta VALUES ('format', ?)", (str(STATE_FORMAT),))
        return cls(db, limits)

    @classmethod
    def open(cls, path: Path, limits: ShardLimits, generation: int) -> ShardTree | None:
        """Open the state a previous build committed for `generation`; None if it cannot."""
        if not path.is_file():
            return None
        db = sqlite3.connect(path, isolation_level=None)
        try:
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("format") != str(STATE_FORMAT) or meta.get("generation") != str(generation):
                db.close()
                return None
            db.execute("BEGIN")
            tree = cls(db, limits)
            for key, split, term_bytes, best in db.execute(
                "SELECT key, split, term_bytes, best FROM nodes"
            ):
                tree.nodes[key] = Node(bool(split), parse_entries(best), None, term_bytes)
        except (sqlite3.Error, ValueError):  # unreadable: the build starts it again
            db.close()
            return None
        return tree

    def commit(self, generation: int) -> None:
        """Write the changed keys and end the transaction (the state is now this build's)."""
        self.db.executemany(
            "INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?)",
            [
                (key, int(n.split), dumps(n.docs or {}), n.term_bytes, flat(n.best))
                for key in sorted(self._dirty)
                if (n := self.nodes.get(key)) is not None
            ],
        )
        self.db.executemany(
            "DELETE FROM nodes WHERE key = ?",
            [(key,) for key in sorted(self._dirty) if key not in self.nodes],
        )
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('generation', ?)", (str(generation),))
        self.db.execute("COMMIT")
        self.db.close()

    # --- the tree -------------------------------------------------------------------

    def settle(self, touched: Iterable[str]) -> dict[str, bytes | None]:
        """Bring the keys over the `touched` words up to date; return the shards that
        changed (key -> JSON) and the keys that are gone (key -> None)."""
        by_root: dict[str, list[str]] = {}
        for term in sorted(touched):
            by_root.setdefault(term[0], []).append(term)
        for root, terms in by_root.items():
            self._settle(root, terms)
        return self.out

    def _settle(self, key: str, touched: list[str]) -> None:
        node = self.nodes.get(key)
        if node is None or not node.split:
            self._regrow(key)
            return
        children = self._child_keys(key)
        if not children:  # only the word equal to the key is left
            self._regrow(key)
            return
        for old in [k for k in self.nodes if len(k) == len(key) + 1 and k.startswith(key)]:
            if old not in children:
                self._drop(old)
        below: dict[str, list[str]] = {}
        for term in touched:
            if len(term) > len(key):
                below.setdefault(term[: len(key) + 1], []).append(term)
        for child in children:
            if child in below or child not in self.nodes:
                self._settle(child, below.get(child, []))
        own = [key] if self._df_of(key) else []
        if not any(self.nodes[c].split for c in children) and not self._over_merged(
            key, own, children
        ):
            self._regrow(key)  # small enough again: one shard instead of its children
            return
        self._set_split(key, own, [self.nodes[c].best for c in children])

    def _regrow(self, key: str) -> None:
        """Make `key` and everything under it again from its words."""
        self._drop(key)
        terms = self.terms_under(key)
        if terms:
            self._grow(key, terms)

    def _grow(self, key: str, terms: list[str]) -> None:
        """Make `key` from its words (all of them start with it): a leaf, or split."""
        longer = [t for t in terms if len(t) > len(key)]
        if longer and len(key) < self.limits.max_depth and self._over(terms):
            groups: dict[str, list[str]] = {}
            for term in longer:
                groups.setdefault(term[: len(key) + 1], []).append(term)
            for child, child_terms in groups.items():
                self._grow(child, child_terms)
            own = [key] if len(longer) < len(terms) else []
            self._set_split(key, own, [self.nodes[c].best for c in groups])
            return
        self._top_of(terms)
        docs: dict[str, int] = {}
        names = sorted({n for t in terms for _, n in self._top[t]})
        self._shorts_of(names)
        for name in names:
            docs[name] = doc_cost(self._shorts[name])
        node = Node(
            split=False,
            best=best_of((self._top[t] for t in terms), self.limits.more),
            docs=docs,
            term_bytes=sum(term_cost(t, len(self._top[t])) for t in terms),
        )
        self._set(key, node)
        self.out[key] = encode_shard(
            key, {t: (self._df[t], self._top[t]) for t in terms}, self._shorts, None
        )

    def _set_split(self, key: str, own: list[str], children: Iterable[list[Entry]]) -> None:
        self._top_of(own)
        best = best_of([*(self._top[t] for t in own), *children], self.limits.more)
        self._set(key, Node(split=True, best=best))
        terms = {t: (self._df[t], self._top[t]) for t in own}
        self._shorts_of([n for _, top in terms.values() for _, n in top] + [n for _, n in best])
        self.out[key] = encode_shard(key, terms, self._shorts, best)

    def _set(self, key: str, node: Node) -> None:
        self.nodes[key] = node
        self._dirty.add(key)

    def _drop(self, key: str) -> None:
        """Remove `key` and every key under it (their shards are gone unless made again)."""
        for gone in [k for k in self.nodes if k.startswith(key)]:
            del self.nodes[gone]
            self._dirty.add(gone)
            self.out[gone] = None

    def _over(self, terms: list[str]) -> bool:
        """Return whether one shard of `terms` would pass the size limit."""
        limit = self.limits.max_bytes
        self._top_of(terms)
        total = 0
        seen: set[str] = set()
        for term in terms:
            top = self._top[term]
            total += term_cost(term, len(top))
            fresh = [n for _, n in top if n not in seen]
            if fresh:
                self._shorts_of(fresh)
                seen.update(fresh)
                total += sum(doc_cost(self._shorts[n]) for n in fresh)
            if total > limit:
                return True
        return False

    def _over_merged(self, key: str, own: list[str], children: list[str]) -> bool:
        """`_over` of every word under `key`, from its leaf children's kept costs."""
        limit = self.limits.max_bytes
        self._top_of(own)
        docs: dict[str, int] = {}
        total = 0
        for term in own:
            total += term_cost(term, len(self._top[term]))
            names = [n for _, n in self._top[term]]
            self._shorts_of(names)
            docs.update((n, doc_cost(self._shorts[n])) for n in names)
        total += sum(docs.values())
        for child in children:
            node = self.nodes[child]
            total += node.term_bytes
            for name, cost in self._docs_of(child, node).items():
                if name not in docs:
                    docs[name] = cost
                    total += cost
            if total > limit:
                return True
        return total > limit

    def _docs_of(self, key: str, node: Node) -> dict[str, int]:
        if node.docs is None:
            row = self.db.execute("SELECT docs FROM nodes WHERE key = ?", (key,)).fetchone()
            node.docs = json.loads(row[0])
        return node.docs

    def encode(self, key: str) -> bytes:
        """Return the shard of an existing key again (its file went missing)."""
        node = self.nodes[key]
        if node.split:
            own = [key] if self._df_of(key) else []
            self._top_of(own)
            terms = {t: (self._df[t], self._top[t]) for t in own}
            self._shorts_of([n for _, top in terms.values() for _, n in top])
            self._shorts_of(n for _, n in node.best)
            return encode_shard(key, terms, self._shorts, node.best)
        terms_list = self.terms_under(key)
        self._top_of(terms_list)
        self._shorts_of(n for t in terms_list for _, n in self._top[t])
        return encode_shard(
            key, {t: (self._df[t], self._top[t]) for t in terms_list}, self._shorts, None
        )
