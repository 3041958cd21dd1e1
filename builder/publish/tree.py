"""The live record's maps, stored as trees of small content-addressed nodes.

A map (published key → sha256, retired key → [sha256, since], …) is cut by key
prefix: a node holds the keys that start with its prefix, which is the longest
prefix they share. A node of at most `LEAF_MAX` keys is a leaf and lists them; a
larger one is an inner node with one child per next character after its prefix.
The shape depends only on the keys, never on the order of changes, so a publisher
can make the tree of a build's map on its own and compare node ids with the
stored tree: an equal id means the same keys and values beneath it, so only the
nodes that differ are fetched, and only the nodes that changed are written.

A node is stored at `.plugindex/live/<id>.json.gz`; its id is the first
`ID_DIGITS` hex digits of the sha256 of its (uncompressed) canonical JSON, checked
whenever it is read. This module does no I/O: stored nodes come in through a
`Loader`, which fetches a batch of them (in parallel, where the store allows).
"""

from __future__ import annotations

import gzip
import hashlib
import json
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from builder.common.errors import PlugindexError

LEAF_MAX = 256  # keys in a leaf at most: fewer, larger nodes (about 3 KB gzip'd on average)
ID_DIGITS = 32  # hex digits of a node's sha256 that name it (128 bits)
NODES = ".plugindex/live/"  # where nodes are stored, under the registry root

Value = Any  # JSON: a sha256 string, a [sha256, since] pair, 1


class TreeError(PlugindexError):
    """A node of the live record is missing, damaged or not what plugindex writes."""


class Ref(NamedTuple):
    """A stored subtree: the prefix its keys share, how many keys, its node's id."""

    prefix: str
    size: int  # keys beneath it
    id: str

    def as_json(self) -> list[Any]:
        """Return the ref as the root record writes it."""
        return [self.prefix, self.size, self.id]

    @classmethod
    def of_json(cls, data: Any) -> Ref:
        """Read a ref written by `as_json`."""
        prefix, size, node_id = data
        if not (isinstance(prefix, str) and isinstance(size, int) and isinstance(node_id, str)):
            raise TypeError(f"expected [prefix, size, id], got {data!r}")
        return cls(prefix, size, node_id)


def node_key(node_id: str) -> str:
    """Return the store key of a node."""
    return f"{NODES}{node_id}.json.gz"


@dataclass(frozen=True)
class Node:
    """One node: a leaf's sorted (key, value) entries, or an inner node's children."""

    prefix: str
    entries: tuple[tuple[str, Value], ...] = ()
    children: tuple[Ref, ...] = ()

    def canonical(self) -> bytes:
        """Return the bytes whose sha256 names the node (keys relative to its prefix)."""
        cut = len(self.prefix)
        document: dict[str, Any] = {"p": self.prefix}
        if self.children:
            document["c"] = [[r.prefix[cut:], r.size, r.id] for r in self.children]
        else:
            document["e"] = [[k[cut:], v] for k, v in self.entries]
        return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("ascii")

    def encode(self) -> bytes:
        """Return the node as stored: its canonical bytes, gzip'd."""
        return self.stored()[1]

    def stored(self) -> tuple[str, bytes]:
        """Return the node's id and its bytes as stored."""
        canonical = self.canonical()
        return node_id_of(canonical), gzip.compress(canonical, compresslevel=6, mtime=0)

    @classmethod
    def parse(cls, data: bytes, node_id: str, where: str) -> Node:
        """Read a stored node, checking its bytes against its id."""
        try:
            text = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise TreeError(f"{where}: not gzip ({e}); expected a live record node") from e
        if node_id_of(text) != node_id:
            raise TreeError(
                f"{where}: bytes do not match the sha256 in its name (expected {node_id}…, "
                f"got {node_id_of(text)}…); the live record is damaged"
            )
        try:
            document = json.loads(text)
            prefix = document["p"]
            if "c" in document:
                children = tuple(Ref(prefix + s, int(n), str(i)) for s, n, i in document["c"])
                return cls(prefix, children=children)
            return cls(prefix, entries=tuple((prefix + k, v) for k, v in document["e"]))
        except (ValueError, KeyError, TypeError) as e:
            raise TreeError(
                f"{where}: unreadable ({type(e).__name__}: {e}); expected a live record node"
            ) from e


def node_id_of(canonical: bytes) -> str:
    """Return the id of a node's canonical bytes."""
    return hashlib.sha256(canonical).hexdigest()[:ID_DIGITS]


# Fetches stored nodes, in the order asked; raises TreeError for a missing one.
Loader = Callable[[Sequence[Ref]], list[Node]]
# The same, giving None for a missing node (to read what is left of a damaged tree).
LenientLoader = Callable[[Sequence[Ref]], list[Node | None]]
_Item = tuple[str, Value] | Ref  # an entry, or a stored subtree kept whole


@dataclass
class Made:
    """A tree made here: its root, and the nodes made for it (id → node).

    A subtree kept from the store (by `update_tree`) is referenced, not in `nodes`.
    """

    root: Ref | None
    nodes: dict[str, Node] = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)  # ids of stored nodes read to make it

    def to_write(self, stored: Callable[[str], bool]) -> list[Node]:
        """Return the nodes made here that the store lacks (`stored` says which it has).

        A node the store holds holds its subtree too, so its children are not looked at.
        """
        found: list[Node] = []
        stack = [self.root.id] if self.root is not None else []
        while stack:
            node_id = stack.pop()
            node = self.nodes.get(node_id)
            if node is None or stored(node_id):
                continue
            found.append(node)
            stack.extend(r.id for r in node.children)
        return found


@dataclass
class Whole(Made):
    """A tree made from a whole map, which it keeps sorted to answer for any subtree."""

    keys: list[str] = field(default_factory=list)
    values: list[Value] = field(default_factory=list)

    def entries_under(self, ref: Ref) -> Iterable[tuple[str, Value]]:
        """Return the entries beneath one of this tree's nodes."""
        start = bisect_left(self.keys, ref.prefix)
        return zip(
            self.keys[start : start + ref.size],
            self.values[start : start + ref.size],
            strict=True,
        )


def _lcp(first: str, last: str) -> str:
    """Return the longest common prefix of two strings."""
    end = min(len(first), len(last))
    at = 0
    while at < end and first[at] == last[at]:
        at += 1
    return first[:at]


def _text(item: _Item) -> str:
    return item.prefix if isinstance(item, Ref) else item[0]


def _count(items: Iterable[_Item]) -> int:
    return sum(i.size if isinstance(i, Ref) else 1 for i in items)


class _Maker:
    """Makes canonical nodes, recording each one it makes and each stored one it reads."""

    def __init__(self, load: Loader | None) -> None:
        self.nodes: dict[str, Node] = {}
        self.loaded: list[str] = []
        self.load = load

    def keep(self, node: Node, count: int) -> Ref:
        node_id = node_id_of(node.canonical())
        self.nodes[node_id] = node
        return Ref(node.prefix, count, node_id)

    def from_entries(self, keys: Sequence[str], values: Sequence[Value], lo: int, hi: int) -> Ref:
        """Make the node of the sorted entries keys[lo:hi]."""
        prefix = _lcp(keys[lo], keys[hi - 1])
        if hi - lo <= LEAF_MAX:
            entries = tuple(zip(keys[lo:hi], values[lo:hi], strict=True))
            return self.keep(Node(prefix, entries=entries), hi - lo)
        cut = len(prefix)
        children = []
        at = lo
        while at < hi:
            key = keys[at]
            if len(key) == cut:  # the key equal to the prefix sorts first: its own child
                end = at + 1
            else:
                end = bisect_left(keys, prefix + chr(ord(key[cut]) + 1), at, hi)
            children.append(self.from_entries(keys, values, at, end))
            at = end
        return self.keep(Node(prefix, children=tuple(children)), hi - lo)

    def from_items(self, items: list[_Item]) -> Ref | None:
        """Make the node of sorted items, keeping stored subtrees whole where the shape allows."""
        if not items:
            return None
        refs = [i for i in items if isinstance(i, Ref)]
        if not refs:
            keys = [i[0] for i in items if not isinstance(i, Ref)]
            values = [i[1] for i in items if not isinstance(i, Ref)]
            return self.from_entries(keys, values, 0, len(keys))
        if len(items) == 1:
            return refs[0]
        total = _count(items)
        prefix = _lcp(_text(items[0]), _text(items[-1]))
        cut = len(prefix)
        if total <= LEAF_MAX:  # everything fits in one leaf: open every subtree
            return self.from_items(self.opened(items, set(refs)))
        # A kept subtree never spreads over several children: every other item lies
        # outside its prefix (a changed key inside it has it opened), so the prefix
        # they share is shorter than its own.
        children: list[Ref] = []
        group: list[_Item] = []
        char = ""
        for item in items:
            text = _text(item)
            this = text[cut] if len(text) > cut else ""
            if group and this != char:
                children.append(self._made(group))
                group = []
            char = this
            group.append(item)
        children.append(self._made(group))
        return self.keep(Node(prefix, children=tuple(children)), total)

    def _made(self, group: list[_Item]) -> Ref:
        made = self.from_items(group)
        if made is None:  # pragma: no cover - a group is never empty
            raise TreeError("empty group (internal error)")
        return made

    def opened(self, items: list[_Item], which: set[Ref]) -> list[_Item]:
        """Replace the stored subtrees `which` by what their nodes hold; keep the order."""
        if self.load is None:
            raise TreeError("a stored subtree is needed without a store (internal error)")
        asked = sorted(which)
        nodes = self.load(asked)
        self.loaded.extend(r.id for r in asked)
        out: list[_Item] = [i for i in items if not (isinstance(i, Ref) and i in which)]
        for node in nodes:
            out.extend(node.children or node.entries)
        out.sort(key=_text)
        return out


def make_tree(entries: Mapping[str, Value]) -> Whole:
    """Make the tree of a whole map."""
    maker = _Maker(None)
    keys = sorted(entries)
    values = [entries[k] for k in keys]
    root = maker.from_entries(keys, values, 0, len(keys)) if keys else None
    return Whole(root, maker.nodes, [], keys, values)


def update_tree(
    root: Ref | None, upserts: Mapping[str, Value], deletes: Iterable[str], load: Loader
) -> Made:
    """Return the stored tree `root` with keys set and removed.

    Only the nodes on the way to a changed key are read (and those of a subtree that
    shrinks into one leaf); the rest is kept by reference. `loaded` lists the
    stored nodes read, which the new tree no longer needs unless it made them again.
    """
    changed = sorted(set(upserts) | set(deletes))
    maker = _Maker(load)
    items: list[_Item] = [root] if root is not None else []
    while True:
        inside = {i for i in items if isinstance(i, Ref) and _holds_any(i.prefix, changed)}
        if not inside:
            break
        items = maker.opened(items, inside)
    gone = set(deletes) - set(upserts)
    merged = {i[0]: i[1] for i in items if not isinstance(i, Ref) and i[0] not in gone}
    merged.update(upserts)
    ordered: list[_Item] = [*merged.items(), *(i for i in items if isinstance(i, Ref))]
    ordered.sort(key=_text)
    made = maker.from_items(ordered)
    return Made(made, maker.nodes, maker.loaded)


def _holds_any(prefix: str, sorted_keys: Sequence[str]) -> bool:
    """Return whether any of the sorted keys starts with `prefix`."""
    at = bisect_left(sorted_keys, prefix)
    return at < len(sorted_keys) and sorted_keys[at].startswith(prefix)


@dataclass
class Read:
    """A stored tree as read: its entries, and the stored nodes known to exist."""

    entries: dict[str, Value] = field(default_factory=dict)
    fetched: set[str] = field(default_factory=set)  # nodes read from the store
    matched: set[str] = field(default_factory=set)  # nodes equal to one made here (not read)
    missing: list[Ref] = field(default_factory=list)  # nodes the store lacks (lenient reads)

    def stored(self, node_id: str) -> bool:
        """Return whether the store holds a node (and so its subtree), as far as read."""
        return node_id in self.fetched or node_id in self.matched


def read_tree(root: Ref | None, load: Loader | LenientLoader, local: Whole | None = None) -> Read:
    """Read a stored tree whole, taking from `local` every subtree it has the same.

    One batch of reads per level of the tree. A node the loader gives as None is
    listed in `missing`, and its keys are not known.
    """
    read = Read()
    frontier = [root] if root is not None else []
    while frontier:
        wanted = []
        for ref in frontier:
            if local is not None and ref.id in local.nodes:
                read.matched.add(ref.id)
                read.entries.update(local.entries_under(ref))
            else:
                wanted.append(ref)
        frontier = []
        for ref, node in zip(wanted, load(wanted) if wanted else [], strict=True):
            if node is None:
                read.missing.append(ref)
                continue
            read.fetched.add(ref.id)
            read.entries.update(node.entries)
            frontier.extend(node.children)
    return read
