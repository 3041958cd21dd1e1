"""A build with work to do: load the cache, analyse, hold back, plan, write, record.

`build` runs this once its no-op check (`noop`) found something changed, handing
over the finds that check started.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
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
from builder.index.build import BuildOptions, BuildResult
from builder.index.cache import BuildCache, forget_cache, load_cache, save_if_changed
from builder.index.carry import CarriedArtifacts, carried_plugins, carry_artifacts
from builder.index.changes import Changes
from builder.index.finds import Finding
from builder.index.held import HeldBack, entry_of
from builder.index.holdback import Settler, latest_release_date
from builder.index.mirror import forget_downloads, mirror_remote
from builder.index.on_disk import files_of_build
from builder.index.output import Planned, Prestaged, prestage, record_files, write_output
from builder.index.plan import listing_key, plan_build, planned_bytes, unchanged_listings
from builder.index.previous import PreviousStates, read_from
from builder.index.render import listing_files
from builder.index.source import SourceInfo
from builder.index.stages import BuildView, FinalStage

log = logging.getLogger(__name__)


def build_in_full(  # noqa: PLR0917 - the build's own state, in the order it is made
    index: Path,
    out: Path,
    ahead: Path,
    check: noop.Check | None,
    source: SourceInfo,
    inputs: str | None,
    looked: int,
    before_commit: Callable[[], None] | None,
    options: BuildOptions,
) -> BuildResult:
    """Load the cache, take over the no-op check's finds (`check`), and build."""
    # Only a build that can carry the last build's artifacts over looks up but a few.
    cache = load_cache(out, index, artifacts_later=options.live is None)
    running = (check.index, check.output) if check is not None else None
    findings = Changes.start(index, out, cache, running=running, told=options.told)
    started = Started(cache, findings, source, inputs, looked)
    try:
        return _build_with(index, out, ahead, started, before_commit, options)
    finally:
        findings.stop()


class Started(NamedTuple):
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
    started: Started,
    before_commit: Callable[[], None] | None,
    options: BuildOptions,
) -> BuildResult:
    """Build, with the checks writing documents and local artifacts ahead into `ahead`."""
    cache, findings, source = started.cache, started.findings, started.source
    on_disk, looked_again = files_of_build(out, cache, findings.output)
    analysis = _analysed(
        index,
        cache,
        on_disk,
        looked_again,
        strict=options.strict,
        workers=options.workers,
        stage=ahead,
        finding=findings.index,
    )
    assert analysis.registry is not None
    unmirrored: set[str] = set()
    settled = _settle(index, out, analysis, cache, on_disk, options, source, unmirrored=unmirrored)
    borrowed, held, carried = settled.borrowed, settled.held, settled.carried
    if options.strict and held:
        raise InvalidIndexError(sorted((h.problem for h in held), key=Problem.sort_key))
    for item in held:
        log.info("held back: %s", item.shown().render())
    listings = _listings(analysis, cache, on_disk, ahead)
    plan = plan_build(analysis, source, settled.remote, settled.local, held, listings, carried)
    del settled  # its artifacts are planned: their dicts go (a slot per artifact)
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
            whole = plan if carried is None else carried.planned(plan)
            _add_stage_files(plan, stage.name, stage.plan_after(view, MappingProxyType(whole)))

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
            carried=carried,
        )
        files = len(plan) + (carried.unlisted if carried is not None else 0)
        committed = time.time_ns()  # the output holds the plan; a later change, a later ctime
        # The borrowed list holds every live artifact (~500,000 at 50,000 plugins): it
        # is written again only when it changed, as the cache records.
        analysis.cache.borrowed = hashlib.sha256("\n".join(borrowed).encode()).hexdigest()
        if analysis.cache.borrowed != cache.borrowed or not (out / STATE_DIR / BORROWED).exists():
            write_borrowed(out, borrowed)
        save_if_changed(
            out, analysis, cache, files, report, committed=committed, looked_again=findings.output
        )
        record_files(out, plan, report, cache.outputs_record, cache.outputs, carried=carried)
        forget_downloads(out)
        for stage in options.stages:
            stage.committed(view)
        result = BuildResult(
            plugins=len(analysis.facts),
            versions=sum(f.version_count for f in analysis.facts.values()),
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
            totals = noop.Totals(result.plugins, result.versions, files, len(unmirrored))
            # A build told what changed looked no later than its cache's scan.
            looked = started.looked if options.told is None else analysis.cache.scanned
            since = (looked, committed if wrote else started.looked)
            noop.save(index, out, started.inputs, since, totals)
    except OSError as e:
        raise BuildError(f"{e.filename or out}: cannot write the build ({e.strerror})") from e
    return result


def _analysed(
    index: Path,
    cache: BuildCache,
    on_disk: Mapping[str, int],
    looked_again: AbstractSet[str] | None,
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
    # A document whose file went missing (or was edited) is rendered again. Every
    # other file is as recorded, and the record's documents are those of the facts
    # the cache holds: only those found changed are looked at.
    suspects = _documents_among(looked_again, analysis.facts)
    damaged = frozenset(
        f.folder
        for name in suspects
        if name not in analysis.documents
        and on_disk.get(layout.index_path(name)) != (f := analysis.facts[name]).doc_size
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


def _documents_among(paths: AbstractSet[str] | None, facts: Mapping[str, object]) -> Iterable[str]:
    """Return the plugins whose documents are among `paths` (None: every plugin)."""
    if paths is None:
        return facts.keys()
    names = (path.rpartition("/")[2].removesuffix(".json") for path in paths)
    return {name for name in names if name in facts and layout.index_path(name) in paths}


def _listings(
    analysis: Analysis, cache: BuildCache, on_disk: Mapping[str, int], ahead: Path
) -> dict[str, Planned]:
    """Plan names.json, categories.json and the listing pages: as last built if made of
    the same plugins, else made now and written ahead."""
    assert analysis.registry is not None
    key = listing_key(analysis)
    listings = unchanged_listings(key, cache, on_disk)
    if listings is None:
        made = listing_files(analysis.registry, analysis.facts)
        published = cache.outputs or {}

        def in_place(path: str, file: Planned) -> bool:  # as `write_output` tells it
            return published.get(path) == file.sha256 and on_disk.get(path) == file.size

        listings = _written_ahead(ahead, made, analysis.staged, in_place)
    analysis.cache.listings = (key, tuple(listings))
    return listings


def _written_ahead(
    ahead: Path,
    files: Iterable[tuple[str, bytes]],
    staged: dict[str, str],
    in_place: Callable[[str, Planned], bool],
) -> dict[str, Planned]:
    """Plan files made now, each written ahead as it comes and recorded in `staged`.

    The listing pages are 110 MB at 150,000 plugins: held until the commit, they
    were on top of its peak. The commit moves each into place (`write_output`); a
    file that could not be written ahead keeps its bytes, and the commit writes it.
    A file `in_place` in the output already is neither written nor kept: a release
    changes a page or two of the listings, and writing all of them ahead was a fifth
    of a one-plugin rebuild at 150,000 plugins.
    """
    planned: dict[str, Planned] = {}
    for path, data in files:
        file = planned_bytes(data)
        if in_place(path, file):
            planned[path] = Planned(file.sha256, file.size, None)
            continue
        if prestage(str(ahead), path, file.sha256, data):
            staged[path] = file.sha256
            file = Planned(file.sha256, file.size, None)  # moved in by the commit
        planned[path] = file
    return planned


class Settled(NamedTuple):
    """What can be built: the artifacts' plans, what is borrowed, what is held back."""

    remote: dict[str, Planned]  # mirrored remote artifacts
    local: dict[str, Planned]  # repository-local artifacts, but those carried over
    borrowed: list[str]  # artifacts left to the live registry
    held: list[HeldBack]
    carried: CarriedArtifacts | None  # the last build's artifacts kept unplanned


def _settle(  # noqa: PLR0917 - the build's own state, in the order it is made
    index: Path,
    out: Path,
    analysis: Analysis,
    cache: BuildCache,
    on_disk: Mapping[str, int],
    options: BuildOptions,
    source: SourceInfo,
    *,
    unmirrored: set[str],
) -> Settled:
    """Hold back what cannot be built; return the artifacts' plans, the borrowed, the held.

    The remote artifacts left unmirrored (fetching disabled) are added to `unmirrored`.
    """
    registry = analysis.registry
    assert registry is not None
    from_live = False
    if options.live is not None and options.live_read is not None:
        from_live = True
        previous = PreviousStates(options.live, options.live_read)
    else:
        previous = PreviousStates(cache.outputs, read_from(out))
    settler = Settler(analysis, previous, cache)
    settler.settle_own(analysis.problems)
    analysis.problems = []
    latest = latest_release_date(source.committed)
    incremental = bool(cache.plugins)
    carry = cache.outputs is not None and options.live is None
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
        # With a record of the output and nothing borrowed, the plugins taken as last
        # published keep their artifacts unplanned (see `builder.index.carry`).
        carried = carried_plugins(cache, analysis.cache) if carry else frozenset()
        local, kept_borrowed = settler.kept_artifacts(
            cache.outputs or {}, on_disk, options.live, carried
        )
        if not names_checked:
            names_checked = True
            # The last build's plugins are in its output, which `previous` then is.
            published = frozenset() if from_live else cache.plugins.keys()
            if settler.settle_names(registry.policy.approved_similar_names, published=published):
                continue
        changed = settler.touched | (set(analysis.documents) | analysis.removed if first else set())
        only = None if first and not incremental else affected(analysis.facts, changed)
        first = False
        settler.touched = set()
        if not settler.settle_across(only, latest):
            break
    carried_over = None
    if carried:
        planned = ChainMap(local, remote)
        carried_over = carry_artifacts(cache, analysis.facts, carried, planned, previous)
        if carried_over is None:  # a plugin's last published artifacts are unknown
            local, _ = settler.kept_artifacts(cache.outputs or {}, on_disk, None)  # none borrowed
    return Settled(remote, local, borrowed + kept_borrowed, settler.held, carried_over)


def _add_stage_files(plan: dict[str, Planned], stage: str, files: Mapping[str, Planned]) -> None:
    """Add a stage's files to the plan; a stage never replaces another stage's file."""
    clash = sorted(set(plan) & set(files))
    if clash:
        raise BuildError(f"the {stage} stage would overwrite {clash[0]} (internal error)")
    plan.update(files)
