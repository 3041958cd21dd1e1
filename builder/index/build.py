"""Build: turn a valid index into the static sparse index, incrementally and atomically."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from builder.common import layout
from builder.common.build_folder import (
    BORROWED,
    STATE_DIR,
    forget_outputs,
    write_borrowed,
)
from builder.common.errors import BuildError, InvalidIndexError, Problem
from builder.index import noop
from builder.index.analyse import Analysis, affected, analyse
from builder.index.cache import BuildCache, forget_cache, load_cache, save_if_changed
from builder.index.changes import Changes
from builder.index.held import HeldBack, entry_of
from builder.index.holdback import Settler, latest_release_date
from builder.index.mirror import forget_downloads, mirror_remote, warn_unmirrored
from builder.index.on_disk import files_of_build
from builder.index.output import (
    Planned,
    Prestaged,
    WriteReport,
    check_output,
    record_files,
    write_output,
)
from builder.index.plan import listing_key, plan_build, planned_bytes, unchanged_listings
from builder.index.previous import PreviousStates, read_from
from builder.index.render import encode, listing_documents
from builder.index.scan import Finding
from builder.index.source import SourceInfo, source_info
from builder.index.stages import BuildView, FinalStage, OutputStage

log = logging.getLogger(__name__)

_AHEAD = "ahead"  # under the state folder: documents and artifacts the checks wrote ahead


@dataclass(frozen=True)
class BuildResult:
    plugins: int
    versions: int
    reparsed: tuple[str, ...]  # plugins read and parsed again (not from the cache)
    report: WriteReport
    borrowed: int = 0  # remote artifacts left out because the live registry holds them
    held_back: tuple[HeldBack, ...] = ()  # what could not be built (see `holdback`)


def build(
    index: Path,
    out: Path,
    *,
    before_commit: Callable[[], None] | None = None,
    environ: dict[str, str] | None = None,
    fetch: bool = True,
    live: Mapping[str, str] | None = None,
    live_read: Callable[[str], bytes | None] | None = None,
    stages: Sequence[OutputStage] = (),
    strict: bool = False,
    workers: int | None = None,
) -> BuildResult:
    """Build `index` into `out`, holding back what cannot be built (see `holdback`).

    Problems outside plugins/ (registry.yaml, the index root) raise
    InvalidIndexError and leave `out` untouched; with `strict`, so does every
    problem (nothing is held back). `fetch=False` skips downloading remote artifacts
    the output lacks (an incomplete build that `publish` refuses; for checks and
    benchmarks). `live` is what the registry this build will be published to holds
    (path → sha256): remote artifacts it already has are not fetched again (see
    `builder.index.mirror`), and `live_read` (which reads one of its files) gives a
    held-back plugin its last published document; without them, that comes from
    the previous build in `out`. `stages` add their files (the site, the search
    index) to the same write. `workers` is how many worker processes may share the
    plugins' checks (default: one per other core; 0: none); the bytes are the same.
    """
    options = _Options(
        fetch=fetch, live=live, live_read=live_read, stages=stages, strict=strict, workers=workers
    )
    with _collector_paused():
        return _build(index, out, before_commit, environ, options)


@dataclass(frozen=True)
class _Options:
    fetch: bool
    live: Mapping[str, str] | None
    live_read: Callable[[str], bytes | None] | None
    stages: Sequence[OutputStage]
    strict: bool
    workers: int | None

    def choices(self) -> tuple[bool, bool]:
        """Return the options that change the build's files besides its stages."""
        return (self.fetch, self.strict)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector for the build.

    A build allocates millions of small objects and frees them by reference count
    (it makes no cycles worth collecting); without this, full collections rescan the
    growing heap over and over and cost about a sixth of a cold build.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build(
    index: Path,
    out: Path,
    before_commit: Callable[[], None] | None,
    environ: dict[str, str] | None,
    options: _Options,
) -> BuildResult:
    check_output(out)
    first = not out.exists()
    ahead = out / STATE_DIR / _AHEAD
    shutil.rmtree(ahead, ignore_errors=True)  # left by a build that stopped
    looked = time.time_ns()  # anything changed after this is seen by the next build
    source = source_info(index, environ)
    inputs = None
    if options.live is None and options.live_read is None:  # what is live can change
        inputs = noop.inputs_key(index, source, environ, options.stages, options.choices())
    check = noop.Check.start(index, out, inputs) if inputs is not None and not first else None
    if check is not None and check.nothing_changed():
        log.info("nothing changed since the last build")
        totals = check.record.totals
        if totals.unmirrored:
            warn_unmirrored(totals.unmirrored)
        report = WriteReport(unchanged=totals.files)
        return BuildResult(totals.plugins, totals.versions, (), report)  # never live: 0 borrowed
    cache = load_cache(out, index)
    running = (check.index, check.output) if check is not None else None
    findings = Changes.start(index, out, cache, running=running)
    started = _Started(cache, findings, source, inputs, looked)
    try:
        return _build_with(index, out, ahead, started, before_commit, options)
    except BaseException:
        if first:  # a first build that fails leaves no folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        findings.stop()
        shutil.rmtree(ahead, ignore_errors=True)


class _Started(NamedTuple):
    """What a build knows before it analyses the index."""

    cache: BuildCache
    findings: Changes
    source: SourceInfo
    inputs: str | None  # see `noop.inputs_key`; None: leave no no-op record
    looked: int  # when the build started looking (ns since 1970)


def _build_with(  # noqa: PLR0917 - the build's own state, in the order it is made
    index: Path,
    out: Path,
    ahead: Path,
    started: _Started,
    before_commit: Callable[[], None] | None,
    options: _Options,
) -> BuildResult:
    """Build, with the checks writing documents and local artifacts ahead into `ahead`."""
    cache, findings, source = started.cache, started.findings, started.source
    on_disk = files_of_build(out, cache, findings.output)
    analysis = _analysed(
        index,
        cache,
        on_disk,
        strict=options.strict,
        workers=options.workers,
        stage=ahead,
        finding=findings.index,
    )
    assert analysis.registry is not None
    unmirrored: set[str] = set()
    remote, local, borrowed, held = _settle(
        index, out, analysis, cache, on_disk, options, source, unmirrored=unmirrored
    )
    if options.strict and held:
        raise InvalidIndexError(sorted((h.problem for h in held), key=Problem.sort_key))
    for item in held:
        log.info("held back: %s", item.shown().render())
    key = listing_key(analysis)
    listings = unchanged_listings(key, cache, on_disk)
    if listings is None:
        listings = {
            path: planned_bytes(encode(document))
            for path, document in listing_documents(analysis.registry, analysis.facts).items()
        }
    analysis.cache.listings = (key, tuple(listings))
    plan = plan_build(analysis, source, remote, local, held, listings)
    view = BuildView(
        index=index,
        out=out,
        registry=analysis.registry,
        facts=analysis.facts,
        changed_documents=analysis.documents,
        previous=cache.outputs or {},
        on_disk=on_disk,
        timestamp=source.timestamp,
        commit=source.commit,
        sizes=cache.files,
        ahead=ahead,
        written_ahead=analysis.staged,
    )
    for stage in options.stages:
        _add_stage_files(plan, stage.name, stage.plan(view))
    for stage in options.stages:  # a stage that signs the build sees every other stage's files
        if isinstance(stage, FinalStage):
            _add_stage_files(plan, stage.name, stage.plan_after(view, MappingProxyType(plan)))

    def commit_starts() -> None:
        noop.forget(out)
        forget_cache(out)
        forget_outputs(out)  # publish must not trust a record of a half-written folder
        if before_commit is not None:
            before_commit()

    try:
        report = write_output(
            out,
            plan,
            cache.outputs,
            on_disk=on_disk,
            before_commit=commit_starts,
            prestaged=Prestaged(ahead, analysis.staged),
        )
        committed = time.time_ns()  # the output holds the plan; a later change, a later ctime
        # The borrowed list holds every live artifact (~500,000 at 50,000 plugins): it
        # is written again only when it changed, as the cache records.
        analysis.cache.borrowed = hashlib.sha256("\n".join(borrowed).encode()).hexdigest()
        if analysis.cache.borrowed != cache.borrowed or not (out / STATE_DIR / BORROWED).exists():
            write_borrowed(out, borrowed)
        save_if_changed(
            out, analysis, cache, plan, report, committed=committed, looked_again=findings.output
        )
        record_files(out, plan, report, cache.outputs_record, cache.outputs)
        forget_downloads(out)
        for stage in options.stages:
            stage.committed(view)
        result = BuildResult(
            plugins=len(analysis.facts),
            versions=sum(len(f.version_rows) for f in analysis.facts.values()),
            reparsed=tuple(sorted(analysis.documents)),
            report=report,
            borrowed=len(set(borrowed)),
            held_back=tuple(held),
        )
        if started.inputs is None or result.held_back:
            # Another build may build more with nothing changed (a download that works).
            noop.forget(out)
        else:
            wrote = bool(report.written or report.removed)
            totals = noop.Totals(result.plugins, result.versions, len(plan), len(unmirrored))
            since = (started.looked, committed if wrote else started.looked)
            noop.save(index, out, started.inputs, since, totals)
    except OSError as e:
        raise BuildError(f"{e.filename or out}: cannot write the build ({e.strerror})") from e
    return result


def _analysed(
    index: Path,
    cache: BuildCache,
    on_disk: Mapping[str, int],
    *,
    strict: bool,
    workers: int | None,
    stage: Path,
    finding: Finding | None,
) -> Analysis:
    """Analyse the index; raise when it has problems the build cannot hold back."""
    analysis = analyse(
        index, cache, dependencies=strict, workers=workers, stage=stage, finding=finding
    )
    # A document whose file went missing (or was edited) is rendered again.
    damaged = frozenset(
        f.folder
        for name, f in analysis.facts.items()
        if name not in analysis.documents and on_disk.get(layout.index_path(name)) != f.doc_size
    )
    if damaged:
        log.info("re-rendering %d plugin(s) whose documents changed on disk", len(damaged))
        analysis = analyse(
            index, cache, dirty=damaged, dependencies=strict, workers=workers, stage=stage
        )
    outside = [p for p in analysis.problems if entry_of(index, p) is None]
    if analysis.registry is None or outside or (strict and analysis.problems):
        raise InvalidIndexError(sorted(analysis.problems, key=Problem.sort_key))
    return analysis


def _settle(  # noqa: PLR0917 - the build's own state, in the order it is made
    index: Path,
    out: Path,
    analysis: Analysis,
    cache: BuildCache,
    on_disk: Mapping[str, int],
    options: _Options,
    source: SourceInfo,
    *,
    unmirrored: set[str],
) -> tuple[dict[str, Planned], dict[str, Planned], list[str], list[HeldBack]]:
    """Hold back what cannot be built; return the artifacts' plan, the borrowed, the held.

    The remote artifacts left unmirrored (fetching disabled) are added to `unmirrored`.
    """
    registry = analysis.registry
    assert registry is not None
    if options.live is not None and options.live_read is not None:
        previous = PreviousStates(options.live, options.live_read)
    else:
        previous = PreviousStates(cache.outputs, read_from(out))
    settler = Settler(analysis, previous, cache)
    settler.settle_own(analysis.problems)
    analysis.problems = []
    latest = latest_release_date(source.committed)
    incremental = bool(cache.plugins)
    names_checked = False
    first = True
    while True:
        failures: dict[str, list[Problem]] = {}
        borrowed: list[str] = []
        remote = mirror_remote(
            index,
            out,
            analysis.facts.values(),
            registry.policy,
            known=cache.outputs,
            on_disk=on_disk,
            fetch=options.fetch,
            live=options.live,
            borrowed=borrowed,
            failures=failures,
            unmirrored=unmirrored,
        )
        if settler.settle_downloads(failures):
            continue
        local, kept_borrowed = settler.kept_artifacts(cache.outputs or {}, on_disk, options.live)
        if not names_checked:
            names_checked = True
            if settler.settle_names(registry.policy.approved_similar_names):
                continue
        changed = settler.touched | (set(analysis.documents) | analysis.removed if first else set())
        only = None if first and not incremental else affected(analysis.facts, changed)
        first = False
        settler.touched = set()
        if not settler.settle_across(only, latest):
            break
    return remote, local, borrowed + kept_borrowed, settler.held


def _add_stage_files(plan: dict[str, Planned], stage: str, files: Mapping[str, Planned]) -> None:
    """Add a stage's files to the plan; a stage never replaces another stage's file."""
    clash = sorted(set(plan) & set(files))
    if clash:
        raise BuildError(f"the {stage} stage would overwrite {clash[0]} (internal error)")
    plan.update(files)
