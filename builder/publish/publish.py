"""Publish a build to a store: only what changed, in a safe order, never backwards.

A publish makes the tree of its build's objects and reads the live record's root
(`record.py`, `live.py`): when the root names the same tree, the store holds this
build already and the publish ends there, after one request. Otherwise it reads
the live nodes that differ from the build's, plans the uploads of objects whose
hash differs and re-verifies the documents among them (`plan.py`, `verify.py`),
checks that the store still holds a sample of what the record says is live, or
all of it with `repair` (`audit.py`: what is missing joins the plan), takes the
lease (`lease.py`), and uploads in batches (`upload.py`): artifacts, per-plugin
documents, listings, `config.json` / `status.json`, then the TUF metadata with the
timestamp last, each batch complete before the next starts. Then it prunes what
was retired long enough ago, writes the record's changed nodes and switches the
root back to "published" (or, after a failure, releases the lease with the keys it
may have written marked uncertain). A reader therefore never sees a document
pointing at an object not yet uploaded. A build older than the one live is
refused, so racing publishers cannot roll the registry back; so is a build without
TUF metadata over a registry that serves some. What a publish did is a
`report.PublishReport`.
"""

from __future__ import annotations

import datetime
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from builder.common import layout
from builder.publish.audit import SAMPLE, Damage, check_store, keys_to_check, repairs
from builder.publish.lease import WAIT_STEP, Lease, must_wait, take_lease
from builder.publish.live import (
    Completion,
    LiveState,
    complete,
    read_state,
    sweep,
    unchanged,
)
from builder.publish.plan import (
    BuildFiles,
    UploadPlan,
    build_objects,
    plan_publish,
    read_build,
)
from builder.publish.record import (
    BuildStamp,
    NodeStore,
    PublishError,
    RecordRoot,
    read_live,
)
from builder.publish.report import (
    PublishReport,
    damage_lines,
    describe_plan,
    report_of,
    summary_of,
)
from builder.publish.storage import Storage
from builder.publish.tree import Read, Whole, make_tree
from builder.publish.upload import prune, upload_in_order
from builder.publish.verify import DocumentVerifier

# The CLI's one import: the publish, its options, and how its report is told.
__all__ = [
    "PublishOptions",
    "PublishReport",
    "damage_lines",
    "describe_plan",
    "parse_duration",
    "publish",
    "summary_of",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PublishOptions:
    """How to publish: dry run, pruning, rollbacks, and the lease's timing."""

    dry_run: bool = False
    prune_older_than: datetime.timedelta | None = None
    allow_older: bool = False  # publish a build older than the live one (a rollback)
    # Publish a build without TUF metadata over a registry that serves some: its
    # clients keep the old signed state until it expires, then refuse the registry.
    allow_unsigned: bool = False
    lease_timeout: float = 900.0  # seconds before another publisher's lease is stale
    # Seconds to wait for another publish to end: longer than lease_timeout, so a
    # publisher that died without releasing its lease is outwaited, not given up on.
    wait_timeout: float = 960.0
    # Seconds between renewals of this publisher's own lease (well under lease_timeout):
    # a long publish keeps its lease, and each renewal proves the lease is still ours.
    renew_every: float = 60.0
    # Called after each upload with (key, bytes); the progress bar, and tests.
    on_upload: Callable[[str, int], None] | None = None
    on_plan: Callable[[int], None] | None = None  # called with the number of uploads
    # Checks each changed per-plugin document's shape and author signatures (the CLI
    # passes the client's checks); None checks paths, artifacts and sizes only.
    verifier: DocumentVerifier | None = None
    repair: bool = False  # check every live object, not a sample; upload what is damaged
    # Live objects checked at random on every publish that uploads (0: none).
    sample: int = SAMPLE
    sample_seed: int | None = None  # None: a fresh one each run (logged)


@dataclass(frozen=True)
class _Planned:
    """A publish planned against the live record, and the lease taken to carry it out."""

    state: LiveState  # the live record the plan was made against
    plan: UploadPlan
    report: PublishReport
    lease: Lease | None  # None: a dry run, or nothing to change
    objects: Whole | None = None  # the build's objects tree


def publish(
    build_dir: Path, store: Storage, options: PublishOptions | None = None
) -> PublishReport:
    """Publish the build in `build_dir` to `store`."""
    opts = options if options is not None else PublishOptions()
    build = read_build(build_dir)
    nodes = NodeStore(store)
    planned = _plan_and_take_lease(build_dir, build, store, nodes, opts)
    lease, report = planned.lease, planned.report
    if lease is None:
        return report
    assert planned.objects is not None
    if opts.on_plan is not None:
        opts.on_plan(len(planned.plan.uploads))
    try:
        swept = sweep(nodes, planned.state, set(planned.objects.nodes) | lease.pending_nodes)
        report.bytes_uploaded = upload_in_order(
            store, planned.plan.uploads, planned.state.objects.entries, lease, opts.on_upload
        )
        prune(store, report.pruned, lease)
        done = Completion(
            objects=planned.objects,
            pruned=report.pruned,
            stamp=build.stamp,
            holder=lease.held.holder,
            pending_nodes=lease.pending_nodes,
        )
        root = complete(nodes, planned.state, done, swept)
        lease.finish(root)
    except BaseException:
        lease.release()
        raise
    report.generation = root.generation
    return report


def _plan_and_take_lease(
    build_dir: Path, build: BuildFiles, store: Storage, nodes: NodeStore, opts: PublishOptions
) -> _Planned:
    """Plan against the live record and take the lease; plan again if the record moved.

    Waits while another publisher holds the lease. Returns without a lease for a
    dry run, and when nothing changed (then after one request: the root's read).
    """
    holder = uuid.uuid4().hex
    waiting_since = time.monotonic()
    seed = opts.sample_seed if opts.sample_seed is not None else random.getrandbits(32)
    objects = build_objects(build_dir, build)
    local = make_tree(objects)
    while True:
        live = read_live(store)
        root = live.root
        _refuse_rollback(build_dir, build.stamp, store, root, opts)
        if must_wait(
            store,
            root,
            build.stamp,
            since=waiting_since,
            lease_timeout=opts.lease_timeout,
            wait_timeout=opts.wait_timeout,
        ):
            time.sleep(WAIT_STEP)
            continue
        pruning = opts.prune_older_than is not None  # looks at every retired key's age
        if unchanged(root, local, build.stamp) and not opts.repair and not pruning:
            log.info(
                "the live record names this build's objects tree (%s): nothing to upload, "
                "and no live object sampled (the sample runs with every publish that uploads; "
                "--repair checks them all)",
                root.objects.id if root.objects else "empty",
            )
            report = PublishReport(dry_run=opts.dry_run, unchanged=len(objects))
            report.generation = root.generation
            return _Planned(LiveState(root, Read(), Read()), UploadPlan([], objects), report, None)
        state = read_state(nodes, root, local, repair=opts.repair)
        live_objects = {k: str(v) for k, v in state.objects.entries.items()}
        _refuse_unsigned(build_dir, build, store, live_objects, opts)
        plan = plan_publish(
            build_dir,
            build,
            objects,
            live_objects,
            pending=state.pending.entries,
            where=store.where(""),
            verifier=opts.verifier,
        )
        plan, checked, damaged = _check_live(
            store,
            build_dir=build_dir,
            build=build,
            live=live_objects,
            plan=plan,
            opts=opts,
            seed=seed,
        )
        report = report_of(
            nodes,
            state,
            live_objects,
            plan,
            dry_run=opts.dry_run,
            prune_older_than=opts.prune_older_than,
        )
        report.checked, report.repaired, report.full_check = checked, damaged, opts.repair
        if opts.dry_run or _nothing_changed(state, live_objects, plan, report):
            return _Planned(state, plan, report, None)
        tree = local if plan.objects == objects else make_tree(plan.objects)
        nodes.write(state.unwritten)  # a format 1 record's trees, before a root names them
        lease = take_lease(
            store,
            state.root,
            live.tag,
            build=build.stamp,
            pending={**state.pending.entries, **{u.key: u.sha256 for u in plan.uploads}},
            holder=holder,
            renew_every=opts.renew_every,
            nodes=nodes,
        )
        if lease is not None:
            return _Planned(state, plan, report, lease, tree)
        log.info("the live record changed while planning; reading it again")


def _check_live(
    store: Storage,
    *,
    build_dir: Path,
    build: BuildFiles,
    live: Mapping[str, str],
    plan: UploadPlan,
    opts: PublishOptions,
    seed: int,
) -> tuple[UploadPlan, int, list[Damage]]:
    """HEAD a sample of the live objects (all with `repair`); add the damaged to the plan.

    Only when the plan uploads something (or with `repair`): a publish with nothing
    to upload stays at the few requests it needs.
    """
    if not plan.uploads and not opts.repair:
        log.info("nothing to upload: no live object sampled (--repair checks them all)")
        return plan, 0, []
    keys = keys_to_check(plan, live, plan.relied, repair=opts.repair, sample=opts.sample, seed=seed)
    damaged = check_store(store, keys, plan.objects, build_dir, build.files)
    log.info("checked %d live objects (sample seed %d): %d damaged", len(keys), seed, len(damaged))
    for damage in damaged:
        log.info("%s: %s; uploading it again from the build", store.where(damage.key), damage.why)
    if not damaged:
        return plan, len(keys), damaged
    extra = repairs(damaged, build_dir, build.files, plan.objects, store.where)
    return UploadPlan([*plan.uploads, *extra], plan.objects, plan.relied), len(keys), damaged


def _refuse_rollback(
    build_dir: Path, stamp: BuildStamp, store: Storage, root: RecordRoot, opts: PublishOptions
) -> None:
    """Refuse to publish a build older than the live one, unless asked to."""
    if stamp.is_older_than(root.build) and not opts.allow_older:
        raise PublishError(
            f"{store.where('')}: holds a newer build ({root.build.describe()}) than "
            f"{build_dir} ({stamp.describe()}); not publishing, so the registry is "
            f"not rolled back (--allow-older publishes it anyway)"
        )


def _refuse_unsigned(
    build_dir: Path,
    build: BuildFiles,
    store: Storage,
    live: Mapping[str, str],
    opts: PublishOptions,
) -> None:
    """Refuse a build without TUF metadata over a registry that serves some, unless asked.

    The live record says whether the registry is signed; only a store without one
    (published by other means, or its record lost) is asked for the timestamp, so
    a publish over a recorded store costs no request more. Clients that trust the
    registry's root would keep reading the old signed state, blind to this build,
    until it expires, then refuse the registry.
    """
    if layout.TIMESTAMP in build.files or opts.allow_unsigned:
        return
    if layout.TIMESTAMP in live:
        found = f"its live record lists {layout.TIMESTAMP}"
    elif not live and store.head(layout.TIMESTAMP) is not None:
        found = f"{store.where(layout.TIMESTAMP)} exists"
    else:
        return
    raise PublishError(
        f"{store.where('')}: a signed registry ({found}), but {build_dir} is unsigned "
        f"(expected {build_dir / layout.TIMESTAMP}: build with the registry's online TUF "
        f"keys, see docs/tuf.md); not publishing, since clients that trust its root would "
        f"keep the old signed state until it expires and then refuse the registry "
        f"(--allow-unsigned publishes it anyway)"
    )


def _nothing_changed(
    state: LiveState, live: Mapping[str, str], plan: UploadPlan, report: PublishReport
) -> bool:
    """Return whether the store already holds this build exactly, with nothing uncertain."""
    return (
        not plan.uploads
        and plan.objects == live
        and not report.pruned
        and not state.pending.entries
        and not state.migrating
    )


def parse_duration(text: str) -> datetime.timedelta:
    """Parse a grace period such as `30d`, `12h`, `90m` or `45s`."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise PublishError(
            f"--prune-older-than: expected a number and a unit (d, h, m or s), e.g. 30d; "
            f"got {text!r}"
        )
    return datetime.timedelta(seconds=int(number) * units[unit])
