"""The live record: what a store holds, kept by the publisher in the store itself.

The record is a small root object (`.plugindex/live.json.gz` under the registry
root) that names four trees of content-addressed nodes (`tree.py`): `objects`
(every published key → its sha256), `retired` (keys no longer referenced → their
last sha256 and since when), `pending` (keys a lease holder may be writing) and
`obsolete` (nodes the last publish stopped using, deleted by the next one). The
root also holds the build it came from, a generation number, the state and the
lease. It is only ever replaced with a conditional write, so two publishers can
never both win; while a publish runs it is in state "publishing" and holds that
publisher's lease. Nodes are written before the root that names them.

A record of format 1 (the whole record in one object) is still read; the next
publish writes it anew as a root and trees.
"""

from __future__ import annotations

import datetime
import gzip
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, TypeVar

from builder.common.errors import PlugindexError
from builder.publish.storage import ConflictError, Storage
from builder.publish.tree import Node, Read, Ref, TreeError, node_key, read_tree

log = logging.getLogger(__name__)

RECORD = ".plugindex/live.json.gz"
RECORD_FORMAT = 2
_SINGLE_OBJECT_FORMAT = 1  # the whole record in one object: read, then written anew
PRIVATE = "no-store"  # the record is the publisher's, not a client's
_PARALLEL_NODES = 16  # node reads or writes in flight
_T = TypeVar("_T")
_R = TypeVar("_R")


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


@dataclass(frozen=True)
class Maps:
    """A record of format 1, read whole: its maps (written anew as trees by the next publish)."""

    objects: dict[str, str]
    retired: dict[str, Retired]
    pending: list[str]


@dataclass(frozen=True)
class RecordRoot:
    """The root of the live record: the state, the lease, and the trees it names."""

    generation: int = 0
    state: str = "published"  # or "publishing": a publisher holds the lease
    build: BuildStamp = field(default_factory=lambda: BuildStamp(None, None))
    objects: Ref | None = None  # key → sha256, referenced now
    retired: Ref | None = None  # key → [sha256, since], no longer referenced
    pending: Ref | None = None  # key → 1, keys a lease holder may be writing
    obsolete: Ref | None = None  # node id → 1, nodes the next publish deletes
    holder: str | None = None  # random id of the publisher that wrote the record last
    lease_started: float | None = None  # unix seconds
    # Set only when read from a format 1 record: its maps, in place of the trees.
    single: Maps | None = None

    def encode(self) -> bytes:
        """Serialise the root (gzip'd compact JSON, a few hundred bytes)."""
        if self.single is not None:  # its trees must be made (live.read_state) first
            raise PublishError("a format 1 record cannot be written as it is (internal error)")
        trees = {
            "objects": self.objects,
            "retired": self.retired,
            "pending": self.pending,
            "obsolete": self.obsolete,
        }
        document = {
            "format": RECORD_FORMAT,
            "generation": self.generation,
            "state": self.state,
            "build": {"built_at": self.build.built_at, "source_commit": self.build.commit},
            "holder": self.holder,
            "lease_started": self.lease_started,
            **{name: ref.as_json() if ref else None for name, ref in trees.items()},
        }
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)

    @classmethod
    def decode(cls, data: bytes, where: str) -> RecordRoot:
        """Parse a root (or a format 1 record), refusing one this publisher does not know."""
        try:
            document = json.loads(gzip.decompress(data))
            found = document["format"]
            if found not in {RECORD_FORMAT, _SINGLE_OBJECT_FORMAT}:
                raise PublishError(
                    f"{where}: live record format {found} (expected {RECORD_FORMAT}); "
                    f"publish with a newer plugindex"
                )
            build = document["build"]
            root = cls(
                generation=int(document["generation"]),
                state=str(document["state"]),
                build=BuildStamp(build["built_at"], build["source_commit"]),
                holder=document["holder"],
                lease_started=document["lease_started"],
            )
            if found == _SINGLE_OBJECT_FORMAT:
                return replace(root, single=_maps_of(document))
            return replace(
                root,
                objects=_ref(document["objects"]),
                retired=_ref(document["retired"]),
                pending=_ref(document["pending"]),
                obsolete=_ref(document["obsolete"]),
            )
        except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError) as e:
            raise PublishError(
                f"{where}: live record is unreadable ({type(e).__name__}: {e}); "
                f"expected a gzip'd JSON record written by plugindex publish"
            ) from e


def _ref(data: Any) -> Ref | None:
    return Ref.of_json(data) if data is not None else None


def _maps_of(document: Mapping[str, Any]) -> Maps:
    """Return the maps of a format 1 record."""
    return Maps(
        objects=dict(document["objects"]),
        retired={k: Retired(sha256=v[0], since=v[1]) for k, v in document["retired"].items()},
        pending=list(document["pending"]),
    )


class Live(NamedTuple):
    """The live root as read, with the store's tag to make the next write conditional."""

    root: RecordRoot
    tag: str | None  # None: no record yet, so the first write must find none


def read_live(store: Storage) -> Live:
    """Return the live root of a store and its tag (an empty root when there is none)."""
    found = store.get(RECORD)
    if found is None:
        return Live(RecordRoot(), None)
    return Live(RecordRoot.decode(found.data, store.where(RECORD)), found.tag)


def write_record(store: Storage, root: RecordRoot, tag: str | None) -> str:
    """Replace the root if its tag is still `tag` (absent when None); return the new tag.

    The nodes it names must be written first (`NodeStore.write`).
    """
    data = root.encode()
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


class NodeStore:
    """The live record's nodes in one store: read in parallel and checked, written, deleted."""

    def __init__(self, store: Storage) -> None:
        self.store = store
        self.cache: dict[str, Node] = {}  # nodes read (or made for a format 1 record)
        self.reads = 0  # nodes fetched from the store
        self.written = 0  # nodes written to it
        self.written_bytes = 0

    def load(self, refs: Sequence[Ref]) -> list[Node]:
        """Return the nodes `refs` name, reading those not read before (a tree.Loader)."""
        found = self.try_load(refs)
        nodes = []
        for ref, node in zip(refs, found, strict=True):
            if node is None:
                raise TreeError(
                    f"{self.store.where(node_key(ref.id))}: missing, though the live record "
                    f"names it (for keys under {ref.prefix!r}); the record is damaged: "
                    f"publish with --repair to write it anew from the build"
                )
            nodes.append(node)
        return nodes

    def try_load(self, refs: Sequence[Ref]) -> list[Node | None]:
        """Return the nodes `refs` name, None for one the store lacks."""
        wanted = sorted({r.id for r in refs if r.id not in self.cache})
        missing: set[str] = set()

        def fetch(node_id: str) -> Node | None:
            key = node_key(node_id)
            stored = self.store.get(key)
            return (
                None if stored is None else Node.parse(stored.data, node_id, self.store.where(key))
            )

        for node_id, node in zip(wanted, _in_parallel(fetch, wanted), strict=True):
            self.reads += 1
            if node is None:
                missing.add(node_id)
            else:
                self.cache[node_id] = node
        return [None if r.id in missing else self.cache[r.id] for r in refs]

    def write(self, nodes: Iterable[Node]) -> None:
        """Write nodes (content-addressed: never conditionally, and again harmlessly)."""

        def put(node: Node) -> int:
            node_id, data = node.stored()
            self.store.put(
                node_key(node_id), data, content_type="application/gzip", cache_control=PRIVATE
            )
            return len(data)

        for size in _in_parallel(put, list(nodes)):
            self.written += 1
            self.written_bytes += size

    def delete(self, ids: Iterable[str]) -> int:
        """Delete nodes no record names any more; return how many."""
        keys = [node_key(i) for i in ids]
        if keys:  # one request per 1,000 nodes on S3, not one per node
            self.store.delete_many(keys)
        return len(keys)

    def read_whole(self, root: Ref | None) -> Read:
        """Read a tree whole."""
        return read_tree(root, self.load)


def _in_parallel(work: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """Run `work` over items on a few threads (store requests); return the results in order."""
    if len(items) <= 1:
        return [work(i) for i in items]
    with ThreadPoolExecutor(min(_PARALLEL_NODES, len(items))) as pool:
        return list(pool.map(work, items))


@dataclass
class LiveRecord:
    """The whole live record, every tree read: for `build --live`, tests and messages."""

    generation: int = 0
    state: str = "published"
    build: BuildStamp = field(default_factory=lambda: BuildStamp(None, None))
    objects: dict[str, str] = field(default_factory=dict)
    retired: dict[str, Retired] = field(default_factory=dict)
    pending: list[str] = field(default_factory=list)
    holder: str | None = None
    lease_started: float | None = None


def record_of(store: Storage) -> LiveRecord | None:
    """Return the whole live record of a store, or None when nothing was published there."""
    found = store.get(RECORD)
    if found is None:
        return None
    root = RecordRoot.decode(found.data, store.where(RECORD))
    record = LiveRecord(
        generation=root.generation,
        state=root.state,
        build=root.build,
        holder=root.holder,
        lease_started=root.lease_started,
    )
    if root.single is not None:
        record.objects = dict(root.single.objects)
        record.retired = dict(root.single.retired)
        record.pending = list(root.single.pending)
        return record
    nodes = NodeStore(store)
    objects = nodes.read_whole(root.objects).entries
    record.objects = {k: str(objects[k]) for k in sorted(objects)}
    retired = nodes.read_whole(root.retired).entries
    record.retired = {k: Retired(str(v[0]), str(v[1])) for k, v in sorted(retired.items())}
    record.pending = sorted(nodes.read_whole(root.pending).entries)
    return record


def timestamp(moment: datetime.datetime) -> str:
    """Return a UTC moment as the record writes it (`2024-05-01T12:00:00Z`)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now() -> datetime.datetime:
    """Return the current time in UTC."""
    return datetime.datetime.now(tz=datetime.UTC)
