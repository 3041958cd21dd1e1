"""What a publish did, or would do: the report, and the lines the CLI prints from it."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.publish.audit import Damage
from builder.publish.live import LiveState, newly_retired, retired_entries
from builder.publish.plan import Upload, UploadPlan, order_batches
from builder.publish.record import NodeStore, timestamp, utc_now


@dataclass
class PublishReport:
    """What a publish did, or with `dry_run` would do."""

    uploaded: list[str] = field(default_factory=list)
    unchanged: int = 0
    bytes_uploaded: int = 0
    retired: list[str] = field(default_factory=list)  # no longer referenced; kept
    pruned: list[str] = field(default_factory=list)  # deleted after the grace period
    generation: int = 0
    dry_run: bool = False
    planned: list[Upload] = field(default_factory=list)  # what would be uploaded
    checked: int = 0  # live objects the store was asked about (HEAD)
    repaired: list[Damage] = field(default_factory=list)  # found damaged; uploaded again
    full_check: bool = False  # every live object was checked (--repair), not a sample


def report_of(
    nodes: NodeStore,
    state: LiveState,
    live: Mapping[str, str],
    plan: UploadPlan,
    *,
    dry_run: bool,
    prune_older_than: datetime.timedelta | None,
) -> PublishReport:
    """Return the report of a planned publish, before anything is uploaded."""
    uploads, objects = plan.uploads, plan.objects
    report = PublishReport(dry_run=dry_run, planned=uploads, generation=state.root.generation)
    report.uploaded = [u.key for u in uploads]
    if dry_run:
        report.bytes_uploaded = sum(u.size for u in uploads)
    report.unchanged = len(objects) - len(uploads)
    report.retired = newly_retired(live, objects)
    if prune_older_than is not None:
        # The whole retired tree: pruning looks at every retired key's age.
        now = timestamp(utc_now())
        cutoff = timestamp(utc_now() - prune_older_than)
        retired = {k: v.since for k, v in retired_entries(nodes, state.root).items()}
        retired.update(dict.fromkeys(report.retired, now))
        report.pruned = sorted(
            k for k, since in retired.items() if since <= cutoff and k not in objects
        )
    return report


def describe_plan(report: PublishReport) -> list[str]:
    """Return the lines `--dry-run` prints: what would be uploaded, retired, pruned."""
    ordered = [u for batch in order_batches(report.planned, {}) for u in batch]
    lines = [f"upload {u.key} ({u.size} bytes)" for u in ordered]
    lines += [f"retire {key} (kept; no longer referenced)" for key in report.retired]
    lines += [f"prune {key}" for key in report.pruned]
    return lines


def damage_lines(report: PublishReport, directory: Path, target: str) -> list[str]:
    """Return what to say about damaged live objects: each one, and what to run next."""
    verb = "would repair" if report.dry_run else "repaired"
    lines = [f"{verb} {d.key} ({d.why} in the store)" for d in report.repaired]
    if report.repaired and not report.full_check:
        lines.append(
            f"warning: {target}: {len(report.repaired)} of {report.checked} live objects "
            f"checked were missing or changed, so others may be too: run `plugindex publish "
            f"{directory} {target} --repair` to check every object"
        )
    return lines


def summary_of(
    report: PublishReport, target: str, requests: Mapping[str, int] | None = None
) -> str:
    """Return the one-line summary printed at the end."""
    verb = "would upload" if report.dry_run else "uploaded"
    text = (
        f"{target}: {verb} {len(report.uploaded)} objects ({report.bytes_uploaded} bytes), "
        f"{report.unchanged} unchanged, {len(report.retired)} retired, "
        f"{len(report.pruned)} pruned; generation {report.generation}"
    )
    if report.checked or report.full_check:
        every = "all " if report.full_check else ""
        text += f"; checked {every}{report.checked} live objects, {len(report.repaired)} damaged"
    if requests:
        text += f"; {sum(requests.values())} requests"
    return text
