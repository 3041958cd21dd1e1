"""Analyse an index: load every source, run every local rule, and summarise.

Shared by `validate` and `build`. With a cache, plugin folders whose files the file
system lists as before are taken from it without being read; the others are read,
and parsed again only when their content hash changed. Each plugin is checked on
its own (`check_folder`), so a large analysis shares the plugins with worker
processes (`builder.index.verifier`) and gives the same result as a serial one.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from pathlib import Path

from builder.common import layout
from builder.common.errors import Problem
from builder.format.load import (
    PluginFolder,
    Scan,
    load_registry,
    scan_index,
)
from builder.format.models import RegistryConfig
from builder.format.paths import VERSIONS_DIR
from builder.index.cache import BuildCache, PluginRecord, stats_key
from builder.index.check import CheckSetup, FolderJob, FolderResult, check_folder
from builder.index.dependencies import DependencyFinding, dependency_findings
from builder.index.facts import PluginFacts
from builder.index.finds import Finding, scan_started
from builder.index.held import rel_of
from builder.index.scan import scan_for_build, walk_again
from builder.index.verifier import check_all


@dataclass
class Analysis:
    """Everything known about an index after the local rules ran."""

    index: Path
    registry: RegistryConfig | None
    facts: dict[str, PluginFacts] = field(default_factory=dict)  # by plugin name
    # Documents of the plugins parsed this time (not taken from the cache), by name:
    # the bytes, or the file a check wrote them ahead to (which a build moves into
    # place). At 150,000 plugins they are 1.6 GB: a large build keeps them on disk.
    # The file's path is a str: a Path is 450 bytes more, per plugin of a cold build.
    documents: dict[str, bytes | str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # folders that failed to load or check
    cache: BuildCache = field(default_factory=BuildCache)
    # The cross-plugin problems (also in `problems`), with the plugins each is between.
    findings: list[DependencyFinding] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)  # folders the cache had and the index lacks
    # Files the checks wrote ahead under `analyse`'s `stage`: published path -> sha256.
    staged: dict[str, str] = field(default_factory=dict)
    # By plugin name, the paths of the artifacts its check wrote ahead, in the order of
    # its artifacts: the strings `staged` holds, which the plan takes as its own keys
    # (see `own_paths`), so a cold build holds one string per artifact path, not two.
    staged_artifacts: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def own_paths(self, name: str, paths: Iterable[str]) -> Iterator[str]:
        """Yield `paths`, plugin `name`'s artifact paths in the order of its artifacts,
        each written ahead as the string `staged_artifacts` holds (a path equal to it)."""
        written = iter(self.staged_artifacts.get(name, ()))
        next_written = next(written, None)
        for path in paths:
            if path == next_written:
                yield next_written
                next_written = next(written, None)
            else:
                yield path


def analyse(
    index: Path,
    cache: BuildCache | None = None,
    *,
    dirty: frozenset[str] = frozenset(),
    folders: AbstractSet[str] | None = None,
    focus: AbstractSet[str] | None = None,
    exclude: AbstractSet[str] = frozenset(),
    dependencies: bool = True,
    workers: int | None = None,
    stage: Path | None = None,
    finding: Finding | None = None,
) -> Analysis:
    """Load and check the whole index; `dirty` names folders to re-parse regardless.

    With `folders`, only those plugin folders are loaded (the rest of the index is
    treated as absent, so their dependencies must be among them to be checked).
    With `focus`, cross-plugin rules judge only those plugins' dependencies, and a
    dependency cycle is reported in one of their files. Files in `exclude`
    (index-relative) are treated as absent: a build leaves out what it holds back.
    `dependencies=False` skips the cross-plugin rules (the caller runs them).
    `workers` is how many worker processes check the plugins (default: one per
    core, on more than one; 0: none). With `stage`, the checks write each valid plugin's
    document and local artifacts ahead there (`Analysis.staged` lists them).
    `finding` lists what changed in the index since the cache's scan, started by
    the caller (see `builder.index.finds`).
    """
    previous = cache if cache is not None else BuildCache()
    fresh = BuildCache(index=previous.index, outputs=previous.outputs, sizes=previous.sizes)
    started = scan_started() if finding is None else finding.started
    trusted: frozenset[str] = frozenset()
    if folders is None and cache is not None:
        scan, trusted = scan_for_build(index, previous, dirty, finding)
    else:
        scan = scan_index(index, folders)
    if exclude:
        _leave_out(index, scan, exclude)
    analysis = Analysis(index, None, problems=list(scan.problems), cache=fresh)
    if scan.registry is None:
        return analysis
    registry, registry_bytes, problems = load_registry(index)
    analysis.registry = registry
    analysis.problems.extend(problems)
    if registry is None:
        return analysis
    registry_digest = hashlib.sha256(registry_bytes).hexdigest()
    fresh.registry = registry_digest
    same_registry = previous.registry == registry_digest
    if not same_registry:  # every folder is read again: each needs its listing
        walk_again(index, scan, trusted)
        trusted = frozenset()
    if folders is None:  # a whole index was scanned: the next build can trust it
        fresh.scanned = started
    found: dict[str, PluginFacts] = {}  # by folder, merged in the index's order below
    jobs: deque[FolderJob] = deque()  # let go as they are checked (see `check_all`)
    stats: dict[str, str] = {}
    made, trusted = _trusted_facts(index, scan, previous, trusted)
    # The scan's stats are a third of what a cold build holds while it checks (about
    # 300 bytes per file, a gigabyte at 150,000 plugins): each folder's are let go as
    # its job is made, which keeps only the sizes.
    order, listing = list(scan.plugins), scan.plugins
    del scan
    for name in order:
        folder = listing.pop(name)
        record = previous.plugins.get(name)
        stats[name] = (
            record.stats if record is not None and name in trusted else stats_key(folder.files)
        )
        cached = None if record is None or name in dirty else made.get(name) or record.facts()
        listed_as_before = record is not None and record.stats == stats[name]
        if record is not None and cached is not None and same_registry and listed_as_before:
            found[name] = cached  # not even read
            fresh.plugins[name] = record
            continue
        reuse = record.input if record is not None and cached is not None else None
        sizes = {rel: info[1] for rel, info in folder.files.items()}
        jobs.append(FolderJob(name, sizes, reuse, _versions_left_out(folder, exclude)))
    setup = CheckSetup(index, registry, registry_digest, None if stage is None else str(stage))
    # The folders are listed before `check_all` empties `jobs` (arguments go in order).
    for name, result in zip(
        [job.folder for job in jobs],
        check_all(check_folder, setup, jobs, workers=workers),
        strict=True,
    ):
        _merge(analysis, previous, name, result, stats[name], found, setup.stage)
    # A plugin's name is its folder's (a mismatch is an error), so folders name plugins.
    analysis.facts = {found[n].name: found[n] for n in order if n in found}
    listed = frozenset(order)
    analysis.removed = {folder for folder in previous.plugins if folder not in listed}
    if dependencies:
        _check_across(analysis, bool(previous.plugins), focus)
    return analysis


def _trusted_facts(
    index: Path, scan: Scan, previous: BuildCache, trusted: frozenset[str]
) -> tuple[dict[str, PluginFacts], frozenset[str]]:
    """Return the facts of the records trusted unwalked, each made once, and the
    folders still trusted: a record of another shape makes none, and its folder is
    walked again."""
    made: dict[str, PluginFacts] = {}
    unusable: list[str] = []
    for name in trusted:
        facts = previous.plugins[name].facts()
        if facts is None:
            unusable.append(name)
        else:
            made[name] = facts
    if not unusable:
        return made, trusted
    walk_again(index, scan, unusable)
    return made, trusted.difference(unusable)


def _merge(  # noqa: PLR0917 - the analysis being made, and one result for it
    analysis: Analysis,
    previous: BuildCache,
    name: str,
    result: FolderResult,
    stats: str,
    found: dict[str, PluginFacts],
    stage: str | None,
) -> None:
    """Take the check of plugin folder `name` into the analysis (facts into `found`).

    `stage` is where the checks wrote documents ahead (see `CheckSetup`).
    """
    if result.folder != name:
        raise AssertionError(f"{name}: merged with the check of {result.folder}")
    if result.unchanged:
        record = previous.plugins[name]
        analysis.cache.plugins[name] = replace(record, stats=stats)
        facts = record.facts()
        assert facts is not None, "only a usable record is checked as unchanged"
        found[name] = facts
    elif result.facts is not None:
        assert result.input_key is not None
        facts = result.facts
        document = layout.index_path(facts.name)
        if result.document is not None:
            analysis.documents[facts.name] = result.document
        else:  # written ahead (see `check_folder`)
            assert stage is not None
            analysis.documents[facts.name] = f"{stage}/{document}"
        analysis.staged.update(result.staged)
        if artifacts := tuple(path for path, _ in result.staged if path != document):
            analysis.staged_artifacts[facts.name] = artifacts
        analysis.cache.plugins[name] = PluginRecord.of(result.input_key, facts, stats)
        found[name] = facts
    else:
        analysis.problems.extend(result.problems)
        analysis.broken.add(name)


def _check_across(analysis: Analysis, incremental: bool, focus: AbstractSet[str] | None) -> None:
    """Run the cross-plugin rules on what changed (everything on a first build)."""
    changed = set(analysis.documents) | analysis.removed
    only = affected(analysis.facts, changed) if incremental else None
    if focus is not None:
        only = {name for name in focus if name in analysis.facts}
    # An incremental build's cached facts are those the last build settled on, which
    # had no cycle; a check of a few plugins (`focus`) knows nothing of the others.
    analysis.findings = dependency_findings(
        analysis.index,
        analysis.facts,
        only,
        unknown_ok=analysis.broken,
        acyclic_before=incremental and focus is None,
    )
    analysis.problems.extend(f.problem for f in analysis.findings)


_NONE_LEFT_OUT: frozenset[str] = frozenset()


def _versions_left_out(folder: PluginFolder, exclude: AbstractSet[str]) -> frozenset[str]:
    """Return the excluded version files of a plugin folder."""
    if not exclude:
        return _NONE_LEFT_OUT  # one for all: an empty frozenset per plugin is 200 bytes
    prefix = f"plugins/{folder.folder}/{VERSIONS_DIR}/"
    return frozenset(rel for rel in exclude if rel.startswith(prefix))


def _leave_out(index: Path, scan: Scan, exclude: AbstractSet[str]) -> None:
    """Drop excluded files from a scan, and the scan's problems about them."""
    for folder in scan.plugins.values():
        for rel in exclude & folder.files.keys():
            del folder.files[rel]
    # Per problem, not per file left out: a build holding back thousands of versions
    # re-checks a plugin per version, and each made a Path of every file left out.
    scan.problems[:] = [p for p in scan.problems if rel_of(index, p) not in exclude]


def affected(facts: dict[str, PluginFacts], changed: set[str]) -> set[str]:
    """Return the changed plugins plus every plugin that depends on one of them."""
    affected = {name for name in changed if name in facts}
    if not changed:
        return affected
    for name, plugin in facts.items():
        if not changed.isdisjoint(plugin.depends_on):
            affected.add(name)
    return affected
