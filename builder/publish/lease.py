"""The publisher's lease: one publish at a time per registry, through the live record.

A publisher takes the lease by switching the live record to "publishing" with a
conditional write, renews it while it uploads (each renewal a conditional write
that fails if someone else took it over), checks it before each chunk of uploads,
and ends it by writing the completed record, or, after a failure, by releasing it.
Another publisher waits for a lease to end, takes over one that went stale, and
takes over at once one held for the same build (a CI re-run).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from builder.publish.record import (
    RECORD,
    BuildStamp,
    NodeStore,
    PublishError,
    RecordRoot,
    write_record,
)
from builder.publish.storage import ConflictError, Storage, StorageError
from builder.publish.tree import make_tree

log = logging.getLogger(__name__)

WAIT_STEP = 1.0  # seconds between looks at another publisher's lease


def must_wait(
    store: Storage,
    record: RecordRoot,
    build: BuildStamp,
    *,
    since: float,
    lease_timeout: float,
    wait_timeout: float,
) -> bool:
    """Return whether to wait for another publisher's lease; give up after wait_timeout.

    `since` is when this publisher started waiting (time.monotonic()); a lease
    unrenewed for `lease_timeout` seconds is stale and taken over.
    """
    if record.state != "publishing":
        return False
    assert record.lease_started is not None
    age = time.time() - record.lease_started
    if record.build == build and build.built_at is not None:
        # The same build (a CI re-run): its uploads are ours byte for byte.
        log.info("taking over a publish of the same build (%s)", build.describe())
        return False
    if age >= lease_timeout:
        log.warning(
            "taking over a publish that stopped %.0f s ago (%s)", age, record.build.describe()
        )
        return False
    if time.monotonic() - since > wait_timeout:
        raise PublishError(
            f"{store.where('')}: another publish ({record.build.describe()}) has held the "
            f"lease for {age:.0f} s; gave up waiting after {wait_timeout:.0f} s"
        )
    log.info("waiting for another publish (%s) to finish", record.build.describe())
    return True


def take_lease(
    store: Storage,
    before: RecordRoot,
    tag: str | None,
    *,
    build: BuildStamp,
    pending: Mapping[str, Any],
    holder: str,
    renew_every: float,
    nodes: NodeStore | None = None,
) -> Lease | None:
    """Switch the live record to "publishing" for `holder`; None if it changed since read.

    `pending` are the keys this publish may write (→ the sha256 it will write): they
    stay marked in the record (a tree of their own, written first) until the publish
    completes, whatever happens to this publisher. A first publish writes every key
    with the hash the completed record gives it, so its pending tree is the objects
    tree to come, node for node.
    """
    tree = make_tree(pending)
    (nodes if nodes is not None else NodeStore(store)).write(tree.nodes.values())
    held = replace(
        before,
        state="publishing",
        build=build,
        pending=tree.root,
        holder=holder,
        lease_started=time.time(),
    )
    try:
        new_tag = write_record(store, held, tag)
    except ConflictError:
        return None
    return Lease(store, before, held, new_tag, renew_every, pending_nodes=set(tree.nodes))


class Lease:
    """This publisher's hold on the live record, from the lease to the final write."""

    def __init__(
        self,
        store: Storage,
        before: RecordRoot,
        held: RecordRoot,
        tag: str,
        renew_every: float,
        *,
        pending_nodes: set[str] | None = None,
    ) -> None:
        self.store = store
        self.before = before  # the record as this publisher found it
        self.held = held
        # The nodes of the held record's pending tree: no longer named once it completes.
        self.pending_nodes = pending_nodes if pending_nodes is not None else set()
        self.tag = tag
        # Seconds between renewals (well under the lease timeout): a long publish
        # keeps its lease, and each renewal proves the lease is still ours.
        self.renew_every = renew_every
        self.renewed = time.monotonic()
        self.lock = threading.Lock()  # upload threads renew the lease

    def _lost(self, doing: str) -> PublishError:
        return PublishError(
            f"{self.store.where(RECORD)}: another publisher took over this "
            f"publish's lease (it went unrenewed for longer than the lease lasts, or "
            f"--break-lease); {doing}. Run publish again to check."
        )

    def check(self) -> None:
        """Make sure the lease is still ours: renew it when due, else one GET."""
        with self.lock:
            if self._due():
                self._renew()
                return
            tag = self.tag
        found = self.store.get(RECORD)
        if found is None or found.tag != tag:
            raise self._lost("stopped before writing more")

    def renew_if_due(self) -> None:
        """Renew the lease when `renew_every` has passed since it was last written."""
        with self.lock:
            if self._due():
                self._renew()

    def renew(self) -> None:
        """Renew the lease now, with a conditional write that fails if it is not ours."""
        with self.lock:
            self._renew()

    def _due(self) -> bool:
        return time.monotonic() - self.renewed >= self.renew_every

    def _renew(self) -> None:
        renewed = replace(self.held, lease_started=time.time())
        try:
            self.tag = write_record(self.store, renewed, self.tag)
        except ConflictError as e:
            raise self._lost("stopped before writing more") from e
        self.held = renewed
        self.renewed = time.monotonic()
        log.debug("renewed the lease")

    def finish(self, done: RecordRoot) -> None:
        """Write the completed record in place of the lease."""
        try:
            self.tag = write_record(self.store, done, self.tag)
        except ConflictError as e:
            raise self._lost("the other publish decides what is live") from e

    def release(self) -> None:
        """Give the lease back after a failed publish, so a re-run need not wait for it.

        The record is put back as it was, except that the keys this publish may have
        written stay in `pending`: the next publisher uploads them again whatever
        their recorded hash. A lease already taken over (or a publish that did
        complete) is left alone.
        """
        released = replace(
            self.before,
            state="published",
            pending=self.held.pending,
            holder=self.held.holder,
            lease_started=None,
        )
        try:
            self.tag = write_record(self.store, released, self.tag)
        except ConflictError:
            log.info("the lease was taken over or the publish completed; not releasing it")
        except StorageError as e:
            log.warning("could not release the lease after a failed publish: %s", e)
        else:
            log.info("released the lease after a failed publish")
