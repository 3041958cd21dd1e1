"""The postings behind the browser shards, kept between builds in SQLite.

The state (`.plugindex/search/shards.sqlite`, never published) holds each plugin's
short record and word scores, each word's postings (best first) and each key of the
tree (`builder.search.shard_tree`), so a build that changes a few plugins touches only
their words: it updates those postings and reads only what the keys on the way to them
need. A cold build computes the same in memory and writes it in one go. Rows read are
kept in memory for the rest of the build.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from builder.search.shards import Entry, ShardLimits, dumps

STATE_FORMAT = 1
_END = "\U0010ffff"  # sorts after every character a word can hold
SCHEMA = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE docs(name TEXT PRIMARY KEY, short TEXT NOT NULL, terms TEXT NOT NULL);
CREATE TABLE terms(term TEXT PRIMARY KEY, df INTEGER NOT NULL, top TEXT NOT NULL,
                   rest TEXT NOT NULL);
CREATE TABLE nodes(key TEXT PRIMARY KEY, split INTEGER NOT NULL, docs TEXT NOT NULL,
                   term_bytes INTEGER NOT NULL, best TEXT NOT NULL);
"""


@dataclass(frozen=True)
class Doc:
    """A plugin as the shards see it: its short record (JSON) and its words' scores."""

    name: str
    short: str
    terms: Mapping[str, int]


def flat(entries: Iterable[Entry]) -> str:
    """Return postings as the state keeps them: one flat JSON list [score, name, ...]."""
    return dumps([x for entry in entries for x in entry])


def parse_entries(text: str) -> list[Entry]:
    """Return the postings of a flat JSON list (`flat`)."""
    values = json.loads(text)
    return list(zip(values[::2], values[1::2], strict=True))


class Postings:
    """The words' postings and the plugins' short records, read from the state on demand."""

    def __init__(self, db: sqlite3.Connection, limits: ShardLimits) -> None:
        self.db = db
        self.limits = limits
        self._top: dict[str, list[Entry]] = {}
        self._df: dict[str, int] = {}
        self._shorts: dict[str, str] = {}
        self._all_terms: list[str] | None = None  # every word, when all are in memory

    def close(self) -> None:
        """Drop the connection; an uncommitted transaction is rolled back."""
        self.db.close()

    # --- changing the postings ------------------------------------------------------

    def load_all(self, docs: Iterable[Doc]) -> set[str]:
        """Fill an empty state with every plugin (a cold build); return every word."""
        postings: dict[str, list[Entry]] = {}
        rows = []
        for doc in docs:
            self._shorts[doc.name] = doc.short
            rows.append((doc.name, doc.short, dumps(doc.terms)))
            for term, score in doc.terms.items():
                postings.setdefault(term, []).append((-score, doc.name))
        self.db.executemany("INSERT INTO docs VALUES (?, ?, ?)", sorted(rows))
        top = self.limits.top
        term_rows = []
        for term in sorted(postings):
            entries = sorted(postings[term])
            self._top[term] = entries[:top]
            self._df[term] = len(entries)
            term_rows.append((term, len(entries), flat(entries[:top]), flat(entries[top:])))
        self.db.executemany("INSERT INTO terms VALUES (?, ?, ?, ?)", term_rows)
        self._all_terms = sorted(postings)
        return set(postings)

    def update(self, docs: Iterable[Doc], removed: Iterable[str]) -> set[str]:
        """Replace the changed plugins' postings and drop removed ones; return the words
        whose postings changed (every word those plugins had or have)."""
        new = {doc.name: doc for doc in docs}
        gone = set(removed) | set(new)
        old_terms: dict[str, dict[str, int]] = {}
        for name in sorted(gone):
            row = self.db.execute("SELECT terms FROM docs WHERE name = ?", (name,)).fetchone()
            if row is not None:
                old_terms[name] = json.loads(row[0])
        touched = {t for terms in old_terms.values() for t in terms}
        touched |= {t for doc in new.values() for t in doc.terms}
        postings = {term: self._postings(term) for term in sorted(touched)}
        for name, terms in old_terms.items():
            for term, score in terms.items():
                entries = postings[term]
                at = bisect.bisect_left(entries, (-score, name))
                if at < len(entries) and entries[at] == (-score, name):
                    del entries[at]
        for doc in new.values():
            for term, score in doc.terms.items():
                bisect.insort(postings[term], (-score, doc.name))
            self._shorts[doc.name] = doc.short
        self.db.executemany("DELETE FROM docs WHERE name = ?", [(n,) for n in sorted(gone)])
        self.db.executemany(
            "INSERT INTO docs VALUES (?, ?, ?)",
            [(d.name, d.short, dumps(d.terms)) for _, d in sorted(new.items())],
        )
        top = self.limits.top
        for term, entries in postings.items():
            self._top[term] = entries[:top]
            self._df[term] = len(entries)
        self.db.executemany(
            "INSERT OR REPLACE INTO terms VALUES (?, ?, ?, ?)",
            [
                (term, len(entries), flat(entries[:top]), flat(entries[top:]))
                for term, entries in postings.items()
                if entries
            ],
        )
        self.db.executemany(
            "DELETE FROM terms WHERE term = ?",
            [(term,) for term, entries in postings.items() if not entries],
        )
        return touched

    def _postings(self, term: str) -> list[Entry]:
        row = self.db.execute("SELECT top, rest FROM terms WHERE term = ?", (term,)).fetchone()
        if row is None:
            return []
        return parse_entries(row[0]) + parse_entries(row[1])

    # --- reading the postings -------------------------------------------------------

    def terms_under(self, key: str) -> list[str]:
        """Return every word that starts with `key`, sorted."""
        if self._all_terms is not None:
            start = bisect.bisect_left(self._all_terms, key)
            end = bisect.bisect_left(self._all_terms, key + _END, lo=start)
            return self._all_terms[start:end]
        rows = self.db.execute(
            "SELECT term FROM terms WHERE term >= ? AND term < ? ORDER BY term",
            (key, key + _END),
        )
        return [term for (term,) in rows]

    def _child_keys(self, key: str) -> list[str]:
        """Return the key plus each next character of the words longer than `key`."""
        if self._all_terms is not None:
            found = {t[: len(key) + 1] for t in self.terms_under(key) if len(t) > len(key)}
            return sorted(found)
        rows = self.db.execute(
            "SELECT DISTINCT substr(term, 1, ?) FROM terms WHERE term > ? AND term < ?",
            (len(key) + 1, key, key + _END),
        )
        return sorted(child for (child,) in rows)

    def _top_of(self, terms: list[str]) -> None:
        """Load the best postings and frequency of the words not in memory yet."""
        missing = [t for t in terms if t not in self._top]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for term, df, top in self.db.execute(
                f"SELECT term, df, top FROM terms WHERE term IN ({marks})",  # noqa: S608 - marks only
                chunk,
            ):
                self._top[term] = parse_entries(top)
                self._df[term] = df
        for term in missing:
            self._top.setdefault(term, [])
            self._df.setdefault(term, 0)

    def _shorts_of(self, names: Iterable[str]) -> None:
        """Load the short records not in memory yet."""
        missing = sorted({n for n in names if n not in self._shorts})
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            self._shorts.update(
                self.db.execute(
                    f"SELECT name, short FROM docs WHERE name IN ({marks})",  # noqa: S608
                    chunk,
                ).fetchall()
            )

    def _df_of(self, term: str) -> int:
        self._top_of([term])
        return self._df[term]
