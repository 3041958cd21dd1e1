"""Build: turn a valid index into the static sparse index, incrementally and atomically.

This module is the entry and the check that there is anything to do (`noop`); the
build itself is `work`, imported only when there is work: a no-op then loads none of
the models, the analysis or the renderers (about half a second of its start-up).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.common.build_folder import STATE_DIR
from builder.index import noop
from builder.index.finds import told_listing
from builder.index.held import HeldBack
from builder.index.mirror import warn_unmirrored
from builder.index.output import WriteReport, check_output
from builder.index.source import source_info
from builder.index.stages import OutputStage

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
    changed: Iterable[str] | None = None,
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
    index) to the same write. `workers` is how many worker processes check the
    plugins (default: one per core, on more than one; 0: none); the bytes are the same.

    `changed` are the paths in the index that changed since the last build into `out`
    (as `git diff --name-only` lists them, from the current folder), if the caller
    knows them: the build then looks at no other plugin folder's files (see
    `finds.told_changes`). A change left out is not built until a build not told.
    """
    options = BuildOptions(
        fetch=fetch,
        live=live,
        live_read=live_read,
        stages=stages,
        strict=strict,
        workers=workers,
        told=None if changed is None else told_listing(index, changed),
    )
    with _collector_paused():
        return _build(index, out, before_commit, environ, options)


@dataclass(frozen=True)
class BuildOptions:
    fetch: bool
    live: Mapping[str, str] | None
    live_read: Callable[[str], bytes | None] | None
    stages: Sequence[OutputStage]
    strict: bool
    workers: int | None
    # What the caller says changed under plugins/ since the last build, as the finds
    # print it (`finds.told_listing`); None: the finds look.
    told: bytes | None = None

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
    options: BuildOptions,
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
    check = None
    if inputs is not None and not first:
        check = noop.Check.start(index, out, inputs, told=options.told)
    if check is not None and check.nothing_changed():
        log.info("nothing changed since the last build")
        totals = check.record.totals
        if totals.unmirrored:
            warn_unmirrored(totals.unmirrored)
        report = WriteReport(unchanged=totals.files)
        return BuildResult(totals.plugins, totals.versions, (), report)  # never live: 0 borrowed
    # Imported only now: a no-op needs none of the models, analysis or rendering.
    from builder.index import work

    try:
        return work.build_in_full(
            index, out, ahead, check, source, inputs, looked, before_commit, options
        )
    except BaseException:
        if first:  # a first build that fails leaves no folder behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(ahead, ignore_errors=True)
