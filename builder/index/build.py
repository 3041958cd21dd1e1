"""Build: turn a valid index into the static sparse index, incrementally and atomically."""

from __future__ import annotations

import contextlib
import datetime
import gc
import hashlib
import logging
import os
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from builder.common import layout
from builder.common.build_folder import files_on_disk, write_borrowed
from builder.common.errors import BuildError, InvalidIndexError, Problem
from builder.index.analyse import Analysis, analyse
from builder.index.cache import BuildCache, forget_cache, load_cache, save_cache
from builder.index.mirror import forget_downloads, mirror_remote
from builder.index.output import Planned, WriteReport, check_output, write_output
from builder.index.render import (
    config_document,
    encode,
    listing_documents,
    status_document,
)
from builder.index.stages import BuildView, FinalStage, OutputStage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildResult:
    plugins: int
    versions: int
    reparsed: tuple[str, ...]  # plugins read and parsed again (not from the cache)
    report: WriteReport
    borrowed: int = 0  # remote artifacts left out because the live registry holds them


@dataclass(frozen=True)
class SourceInfo:
    """Where the index came from: the commit and the timestamp a build may show."""

    commit: str | None
    timestamp: str | None  # ISO 8601, UTC


def source_info(index: Path, environ: dict[str, str] | None = None) -> SourceInfo:
    """Read the commit of `index` from git, and the build time from it or SOURCE_DATE_EPOCH.

    Never the clock: the same source must give the same bytes.
    """
    env = os.environ if environ is None else environ
    commit: str | None = None
    epoch: int | None = None
    # No git, or not a repository: the build simply names no commit.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(
            ["git", "-C", str(index), "log", "-1", "--format=%H %ct"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            sha, _, seconds = result.stdout.strip().partition(" ")
            commit, epoch = sha, int(seconds)
    raw_epoch = env.get("SOURCE_DATE_EPOCH", "").strip()
    if raw_epoch:
        epoch = int(raw_epoch) if raw_epoch.isdigit() else -1
    if epoch is None:
        return SourceInfo(commit, None)
    try:
        if epoch < 0:
            raise ValueError(epoch)
        moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    except (ValueError, OverflowError, OSError) as e:
        raise BuildError(
            f"SOURCE_DATE_EPOCH: expected whole seconds since 1970 (up to year "
            f"9999), got {raw_epoch!r}"
        ) from e
    return SourceInfo(commit, moment.strftime("%Y-%m-%dT%H:%M:%SZ"))


def _planned(content: bytes) -> Planned:
    return Planned(hashlib.sha256(content).hexdigest(), len(content), content)


def plan_build(
    analysis: Analysis, source: SourceInfo, remote: dict[str, Planned] | None = None
) -> dict[str, Planned]:
    """Return every file of the build by path (documents of unchanged plugins unrendered).

    `remote` holds the mirrored remote artifacts (see `builder.index.mirror`).
    """
    assert analysis.registry is not None
    plan: dict[str, Planned] = dict(remote or {})
    artifacts: set[str] = set(plan)
    for name, facts in sorted(analysis.facts.items()):
        plan[layout.index_path(name)] = Planned(
            facts.doc_sha256, facts.doc_size, analysis.documents.get(name)
        )
        for sha256, size, filename, local in facts.local_artifacts:
            path = layout.artifact_path(sha256, filename)
            plan[path] = Planned(sha256, size, analysis.index / local)
            artifacts.add(path)
    for path, document in listing_documents(analysis.registry, analysis.facts).items():
        plan[path] = _planned(encode(document))
    plan[layout.CONFIG] = _planned(encode(config_document(analysis.registry)))
    plan[layout.STATUS] = _planned(
        encode(status_document(analysis.facts, len(artifacts), source.timestamp, source.commit))
    )
    return plan


def build(
    index: Path,
    out: Path,
    *,
    before_commit: Callable[[], None] | None = None,
    environ: dict[str, str] | None = None,
    fetch: bool = True,
    live: Mapping[str, str] | None = None,
    stages: Sequence[OutputStage] = (),
) -> BuildResult:
    """Build `index` into `out`; raise InvalidIndexError (out untouched) if it is invalid.

    `fetch=False` skips downloading remote artifacts the output lacks (an
    incomplete build that `publish` refuses; for checks and benchmarks). `live` is
    what the registry this build will be published to holds (path → sha256): remote
    artifacts it already has are not fetched again (see `builder.index.mirror`).
    `stages` add their files (the site, the search index) to the same write.
    """
    with _collector_paused():
        return _build(index, out, before_commit, environ, fetch=fetch, live=live, stages=stages)


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
    *,
    fetch: bool = True,
    live: Mapping[str, str] | None = None,
    stages: Sequence[OutputStage] = (),
) -> BuildResult:
    check_output(out)
    cache = load_cache(out, index)
    source = source_info(index, environ)
    analysis = analyse(index, cache)
    if analysis.problems:
        raise InvalidIndexError(sorted(analysis.problems, key=Problem.sort_key))
    on_disk = files_on_disk(out)
    # A document whose file went missing (or was edited) is rendered again.
    damaged = frozenset(
        f.folder
        for name, f in analysis.facts.items()
        if name not in analysis.documents and on_disk.get(layout.index_path(name)) != f.doc_size
    )
    if damaged:
        log.info("re-rendering %d plugin(s) whose documents changed on disk", len(damaged))
        analysis = analyse(index, cache, dirty=damaged)
        if analysis.problems:
            raise InvalidIndexError(sorted(analysis.problems, key=Problem.sort_key))
    assert analysis.registry is not None
    borrowed: list[str] = []
    remote = mirror_remote(
        index,
        out,
        analysis.facts.values(),
        analysis.registry.policy,
        known=cache.outputs,
        on_disk=on_disk,
        fetch=fetch,
        live=live,
        borrowed=borrowed,
    )
    plan = plan_build(analysis, source, remote)
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
    )
    for stage in stages:
        _add_stage_files(plan, stage.name, stage.plan(view))
    for stage in stages:  # a stage that signs the build sees every other stage's files
        if isinstance(stage, FinalStage):
            _add_stage_files(plan, stage.name, stage.plan_after(view, MappingProxyType(plan)))

    def commit_starts() -> None:
        forget_cache(out)
        if before_commit is not None:
            before_commit()

    try:
        report = write_output(
            out, plan, cache.outputs, on_disk=on_disk, before_commit=commit_starts
        )
        _save_if_changed(out, analysis, cache, plan, report)
        write_borrowed(out, borrowed)
        forget_downloads(out)
        for stage in stages:
            stage.committed(view)
    except OSError as e:
        raise BuildError(f"{e.filename or out}: cannot write the build ({e.strerror})") from e
    return BuildResult(
        plugins=len(analysis.facts),
        versions=sum(len(f.version_rows) for f in analysis.facts.values()),
        reparsed=tuple(sorted(analysis.documents)),
        report=report,
        borrowed=len(set(borrowed)),
    )


def _add_stage_files(plan: dict[str, Planned], stage: str, files: Mapping[str, Planned]) -> None:
    """Add a stage's files to the plan; a stage never replaces another stage's file."""
    clash = sorted(set(plan) & set(files))
    if clash:
        raise BuildError(f"the {stage} stage would overwrite {clash[0]} (internal error)")
    plan.update(files)


def _save_if_changed(
    out: Path,
    analysis: Analysis,
    cache: BuildCache,
    plan: dict[str, Planned],
    report: WriteReport,
) -> None:
    """Save the cache unless the build changed nothing it records."""
    outputs = {path: planned.sha256 for path, planned in plan.items()}
    unchanged = (
        not report.written
        and not report.removed
        and not analysis.documents
        and outputs == cache.outputs
        and analysis.cache.sources == cache.sources
        and analysis.cache.plugins.keys() == cache.plugins.keys()
    )
    if not unchanged:
        analysis.cache.outputs = outputs
        save_cache(out, analysis.cache)
