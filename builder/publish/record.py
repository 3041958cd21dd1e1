"""The live record: what a store holds, kept by the publisher in the store itself.

The record (`.plugindex/live.json.gz` under the registry root) lists every published
key with its sha256, the build it came from, a generation number, and the keys no
longer referenced with the time they stopped being referenced. It is only ever
replaced with a conditional write, so two publishers can never both win; while a
publish runs it is in state "publishing" and holds that publisher's lease.
"""

from __future__ import annotations

import datetime
import gzip
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from builder.common.errors import PlugindexError
from builder.publish.storage import ConflictError, Storage

log = logging.getLogger(__name__)

RECORD = ".plugindex/live.json.gz"
RECORD_FORMAT = 1
PRIVATE = "no-store"  # the record is the publisher's, not a client's


class PublishError(PlugindexError):
    """The build cannot be published as asked (bad build, newer build live, lost race)."""


@dataclass(frozen=True)
class BuildStamp:
    """What a build says about its source: orders builds, oldest first."""

    built_at: str | None
    commit: str | None

    def describe(self) -> str:
        """Return `built at T from commit C` for messages."""
        commit = f" from commit {self.commit[:12]}" if self.commit else ""
        return f"built at {self.built_at or 'an unknown time'}{commit}"

    def is_older_than(self, other: BuildStamp) -> bool:
        """Return whether this build is older than `other` (an undated build is oldest)."""
        if other.built_at is None:
            return False
        if self.built_at is None:
            return True
        return self.built_at < other.built_at


class Retired(NamedTuple):
    """A key no longer referenced: its last sha256 and since when (UTC, ISO 8601)."""

    sha256: str
    since: str


@dataclass
class LiveRecord:
    """The publisher's record of what is live under a registry root."""

    generation: int = 0
    state: str = "published"  # or "publishing": a publisher holds the lease
    build: BuildStamp = field(default_factory=lambda: BuildStamp(None, None))
    objects: dict[str, str] = field(default_factory=dict)  # key → sha256, referenced now
    retired: dict[str, Retired] = field(default_factory=dict)  # key → no longer referenced
    pending: list[str] = field(default_factory=list)  # keys a lease holder may be writing
    holder: str | None = None  # random id of the publisher that wrote the record last
    lease_started: float | None = None  # unix seconds

    def encode(self) -> bytes:
        """Serialise the record (gzip: it lists every object of the registry)."""
        document = {
            "format": RECORD_FORMAT,
            "generation": self.generation,
            "state": self.state,
            "build": {"built_at": self.build.built_at, "source_commit": self.build.commit},
            "holder": self.holder,
            "lease_started": self.lease_started,
            "pending": sorted(self.pending),
            "objects": self.objects,
            "retired": {k: list(v) for k, v in self.retired.items()},
        }
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)

    @classmethod
    def decode(cls, data: bytes, where: str) -> LiveRecord:
        """Parse a record, refusing one this publisher does not understand."""
        try:
            document = json.loads(gzip.decompress(data))
            if document["format"] != RECORD_FORMAT:
                raise PublishError(
                    f"{where}: live record format {document['format']} (expected "
                    f"{RECORD_FORMAT}); publish with a newer plugindex"
                )
            build = document["build"]
            return cls(
                generation=int(document["generation"]),
                state=str(document["state"]),
                build=BuildStamp(build["built_at"], build["source_commit"]),
                objects=dict(document["objects"]),
                retired={
                    k: Retired(sha256=v[0], since=v[1]) for k, v in document["retired"].items()
                },
                pending=list(document["pending"]),
                holder=document["holder"],
                lease_started=document["lease_started"],
            )
        except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError) as e:
            raise PublishError(
                f"{where}: live record is unreadable ({type(e).__name__}: {e}); "
                f"expected a gzip'd JSON record written by plugindex publish"
            ) from e


class Live(NamedTuple):
    """The live record as read, with the store's tag to make the next write conditional."""

    record: LiveRecord
    tag: str | None  # None: no record yet, so the first write must find none


def read_live(store: Storage) -> Live:
    """Return the live record of a store and its tag (an empty record when there is none)."""
    found = store.get(RECORD)
    if found is None:
        return Live(LiveRecord(), None)
    return Live(LiveRecord.decode(found.data, store.where(RECORD)), found.tag)


def record_of(store: Storage) -> LiveRecord | None:
    """Return the live record of a store, or None when nothing was published there."""
    found = store.get(RECORD)
    return LiveRecord.decode(found.data, store.where(RECORD)) if found else None


def write_record(store: Storage, record: LiveRecord, tag: str | None) -> str:
    """Replace the record if its tag is still `tag` (absent when None); return the new tag."""
    data = record.encode()
    try:
        return store.put(
            RECORD,
            data,
            content_type="application/gzip",
            cache_control=PRIVATE,
            if_tag=tag,
            if_absent=tag is None,
        )
    except ConflictError:
        # A retried conditional PUT whose first attempt did succeed fails its
        # condition: a record holding exactly what we wrote (our holder id is in
        # it) is our own write, not someone else's.
        found = store.get(RECORD)
        if found is None or found.data != data:
            raise
        log.info("the live record already holds this write (a retried request)")
        return found.tag


def timestamp(moment: datetime.datetime) -> str:
    """Return a UTC moment as the record writes it (`2024-05-01T12:00:00Z`)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> datetime.datetime:
    """Return the current time in UTC."""
    return datetime.datetime.now(tz=datetime.UTC)


def retired_after(
    record: LiveRecord, objects: Mapping[str, str], pruned: Iterable[str]
) -> dict[str, Retired]:
    """Return the keys no longer referenced once `objects` is live and `pruned` deleted."""
    now = timestamp(utc_now())
    gone = set(pruned)
    retired = {k: v for k, v in record.retired.items() if k not in objects and k not in gone}
    for key, sha256 in record.objects.items():
        if key not in objects and key not in gone:
            retired[key] = Retired(sha256, now)
    return retired
