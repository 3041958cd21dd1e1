"""One publish's dealings with the live record's trees: read what differs, write what changed.

The publisher makes the tree of its build's objects here (`tree.make_tree`) and
compares it with the live root: the same root id means the store already holds
this build, and the publish is over after that one read. Otherwise only the
live nodes that differ from the build's are fetched (`read_state`), and once the
uploads are done only the nodes that changed are written (`complete`): the new
objects tree, the retired tree with the keys that left or came back, and the list
of nodes this publish stopped using, which the next publish deletes (a reader of
the record this publish replaced can still finish reading it meanwhile).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from builder.publish.record import (
    BuildStamp,
    NodeStore,
    RecordRoot,
    Retired,
    timestamp,
    utc_now,
)
from builder.publish.tree import (
    Node,
    Read,
    TreeError,
    Whole,
    make_tree,
    read_tree,
    update_tree,
)

log = logging.getLogger(__name__)


@dataclass
class LiveState:
    """What a publish knows of the live record, read against its build."""

    root: RecordRoot  # the live root (a format 1 record comes with its trees made here)
    objects: Read  # the live objects, and which of their nodes the store holds
    pending: Read  # the keys an earlier publisher may have written (→ the sha256 it wrote)
    unwritten: list[Node] = field(default_factory=list)  # a format 1 record's new nodes
    migrating: bool = False  # read from a format 1 record: written anew even if unchanged
    repair: bool = False  # missing nodes are tolerated (publish --repair)


def unchanged(root: RecordRoot, local: Whole, stamp: BuildStamp) -> bool:
    """Return whether the store holds exactly this build, with nothing uncertain.

    Needs nothing but the root: its objects tree has the id of the build's own.
    """
    return (
        root.single is None
        and root.state == "published"
        and root.pending is None
        and root.build == stamp
        and local.root is not None
        and root.objects == local.root
    )


def read_state(nodes: NodeStore, root: RecordRoot, local: Whole, *, repair: bool) -> LiveState:
    """Read the live objects and pending keys, fetching only the nodes the build lacks.

    With `repair` every node is fetched (none is taken as equal to the build's), and
    a missing one is tolerated: the keys beneath it are treated as pending, so the
    build uploads them again, and the record is written anew.
    """
    unwritten: list[Node] = []
    migrating = root.single is not None
    if root.single is not None:
        root, unwritten = _converted(nodes, root)
    if repair:
        objects = read_tree(root.objects, nodes.try_load)
        pending = read_tree(root.pending, nodes.try_load)
        for ref in [*objects.missing, *pending.missing]:
            log.warning(
                "the live record lacks its node for keys under %r: uploading the build's "
                "keys there again",
                ref.prefix,
            )
        lost = tuple(r.prefix for r in objects.missing)
        if lost:
            pending.entries.update(
                (k, v) for k, v in zip(local.keys, local.values, strict=True) if k.startswith(lost)
            )
    else:
        objects = read_tree(root.objects, nodes.load, local)
        pending = read_tree(root.pending, nodes.load)
    return LiveState(root, objects, pending, unwritten, migrating, repair)


def _converted(nodes: NodeStore, root: RecordRoot) -> tuple[RecordRoot, list[Node]]:
    """Make the trees of a format 1 record; serve their nodes from memory until written."""
    assert root.single is not None
    single = root.single
    trees = {
        "objects": make_tree(single.objects),
        "retired": make_tree({k: [v.sha256, v.since] for k, v in single.retired.items()}),
        "pending": make_tree(dict.fromkeys(single.pending, 1)),
    }
    made: list[Node] = []
    for tree in trees.values():
        nodes.cache.update(tree.nodes)
        made.extend(tree.nodes.values())
    log.info("the live record is of format 1 (one object): this publish writes it as trees")
    converted = replace(
        root,
        objects=trees["objects"].root,
        retired=trees["retired"].root,
        pending=trees["pending"].root,
        single=None,
    )
    return converted, made


def retired_entries(nodes: NodeStore, root: RecordRoot) -> dict[str, Retired]:
    """Return every retired key (the whole retired tree: for pruning)."""
    entries = nodes.read_whole(root.retired).entries
    return {k: Retired(str(v[0]), str(v[1])) for k, v in entries.items()}


@dataclass(frozen=True)
class Completion:
    """What the completed record needs besides the live state."""

    objects: Whole  # the build's objects tree, as uploaded
    pruned: list[str]  # retired keys deleted by this publish
    stamp: BuildStamp
    holder: str | None
    pending_nodes: set[str]  # the nodes of the lease's pending tree


def sweep(nodes: NodeStore, state: LiveState, keep: set[str]) -> Read:
    """Delete the nodes the live record's publish stopped using; return their list as read.

    Called right after the lease is taken (which proves it ours), before this
    publish writes any node: one it makes again is written afresh. `keep` are
    nodes this publish will name (never deleted, whatever the list says).
    """
    # Read leniently: a list some earlier sweep half deleted is no reason to stop.
    listed = read_tree(state.root.obsolete, nodes.try_load)
    named = state.objects.fetched | state.objects.matched | state.pending.fetched
    deleted = nodes.delete(i for i in listed.entries if i not in keep and i not in named)
    log.info("deleted %d live record nodes the last publish stopped using", deleted)
    return listed


def complete(nodes: NodeStore, state: LiveState, done: Completion, swept: Read) -> RecordRoot:
    """Write the nodes of the completed record; return its root, to write last.

    `swept` is the list of unused nodes `sweep` read: its own nodes are unused now.
    """
    before = state.root
    new_objects = done.objects
    live = state.objects.entries
    now = timestamp(utc_now())
    gone = set(done.pruned)
    keys = set(new_objects.keys)
    left = {k: [v, now] for k, v in live.items() if k not in keys and k not in gone}
    back = [k for k in new_objects.keys if k not in live]
    try:
        retired = update_tree(before.retired, left, [*back, *gone], nodes.load)
    except TreeError:
        if not state.repair:
            raise
        log.warning(
            "the live record's retired tree lacks a node: it starts afresh with the keys "
            "retired now (keys retired before are no longer listed, so never pruned)"
        )
        retired = update_tree(None, left, [], nodes.load)
    loaded = set(retired.loaded)
    in_use = set(new_objects.nodes) | set(retired.nodes)
    unused = (
        state.objects.fetched | loaded | state.pending.fetched | done.pending_nodes | swept.fetched
    ) - in_use
    obsolete = make_tree(dict.fromkeys(sorted(unused), 1))
    # The lease's pending tree may hold nodes of the new objects tree (all of them for
    # a first publish): written already.
    nodes.write(
        [
            *new_objects.to_write(lambda i: state.objects.stored(i) or i in done.pending_nodes),
            *retired.to_write(lambda i: i in loaded),
            *obsolete.nodes.values(),
        ]
    )
    log.info(
        "live record: %d nodes read, %d written (%d bytes)",
        nodes.reads,
        nodes.written,
        nodes.written_bytes,
    )
    return RecordRoot(
        generation=before.generation + 1,
        state="published",
        build=done.stamp,
        objects=new_objects.root,
        retired=retired.root,
        pending=None,
        obsolete=obsolete.root,
        holder=done.holder,
    )


def newly_retired(live: Mapping[str, str], objects: Iterable[str]) -> list[str]:
    """Return the live keys the build no longer references, sorted."""
    keep = set(objects)
    return sorted(k for k in live if k not in keep)
