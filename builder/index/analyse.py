"""Analyse an index: load every source, run every local rule, and summarise.

Shared by `validate` and `build`. With a cache, plugins whose content hash is
unchanged are taken from it instead of being read and parsed again.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import deque
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.common.errors import Problem, SourceError
from builder.common.files import sha256_of_file
from builder.format.load import (
    PLUGIN_FILE,
    VERSIONS_DIR,
    LoadedPlugin,
    PluginFolder,
    Scan,
    load_plugin,
    load_registry,
    read_file,
    scan_index,
)
from builder.format.models import RegistryConfig
from builder.format.shapes import version_entry
from builder.format.strict_yaml import Path_
from builder.index.cache import BuildCache, PluginRecord
from builder.index.facts import PluginFacts, facts_of
from builder.index.render import encode, plugin_document
from builder.index.rules import DependencyFinding, check_plugin, dependency_findings, problem_at
from builder.index.signatures import (
    SIGNATURE_RULE,
    SignatureJob,
    judge_signatures,
    plan_signatures,
)
from builder.index.verifier import Ticket, Verifier
from builder.trust.signing import owner_keys

# Plugins parsed ahead of the one whose signatures are judged next.
_VERIFY_WINDOW = 64


@dataclass
class Analysis:
    """Everything known about an index after the local rules ran."""

    index: Path
    registry: RegistryConfig | None
    facts: dict[str, PluginFacts] = field(default_factory=dict)  # by plugin name
    # Documents of the plugins parsed this time (not taken from the cache), by name.
    documents: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # folders that failed to load or check
    cache: BuildCache = field(default_factory=BuildCache)
    # The cross-plugin problems (also in `problems`), with the plugins each is between.
    findings: list[DependencyFinding] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)  # folders the cache had and the index lacks


def _is_manifest(rel: str) -> bool:
    """Return whether `rel` is a plugin's plugin.yaml or one of its version files."""
    parts = rel.split("/")  # plugins/<folder>/plugin.yaml or plugins/<folder>/versions/<v>.yaml
    if len(parts) == 3:
        return parts[2] == PLUGIN_FILE
    return len(parts) == 4 and parts[2] == VERSIONS_DIR and parts[3].endswith(".yaml")


def analyse(
    index: Path,
    cache: BuildCache | None = None,
    *,
    dirty: frozenset[str] = frozenset(),
    folders: AbstractSet[str] | None = None,
    focus: AbstractSet[str] | None = None,
    exclude: AbstractSet[str] = frozenset(),
    dependencies: bool = True,
) -> Analysis:
    """Load and check the whole index; `dirty` names folders to re-parse regardless.

    With `folders`, only those plugin folders are loaded (the rest of the index is
    treated as absent, so their dependencies must be among them to be checked).
    With `focus`, cross-plugin rules judge only those plugins' dependencies, and a
    dependency cycle is reported in one of their files. Files in `exclude`
    (index-relative) are treated as absent: a build leaves out what it holds back.
    `dependencies=False` skips the cross-plugin rules (the caller runs them).
    """
    previous = cache if cache is not None else BuildCache()
    fresh = BuildCache(index=previous.index, outputs=previous.outputs)
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
    # Signatures are checked by the verifier (in a worker process for a large build)
    # while this process parses the next plugins; a bounded window keeps few in memory.
    verifier = Verifier()
    window: deque[_Pending] = deque()
    try:
        for folder in scan.plugins.values():
            files = _read_folder(index, folder, previous, fresh, analysis.problems)
            if files is None:
                analysis.broken.add(folder.folder)
                continue
            record = previous.plugins.get(folder.folder)
            input_key = _input_key_of(folder, files, record, previous, registry_digest)
            if record is not None and record.input == input_key and folder.folder not in dirty:
                cached = record.facts()
                if cached is not None:
                    fresh.plugins[folder.folder] = record
                    analysis.facts[cached.name] = cached
                    continue
            pending = _start_check(
                analysis,
                registry,
                folder,
                files,
                input_key=input_key,
                verifier=verifier,
                left_out=_versions_left_out(folder, exclude),
            )
            if pending is None:
                analysis.broken.add(folder.folder)
                continue
            window.append(pending)
            if len(window) > _VERIFY_WINDOW:
                _finish_check(analysis, window.popleft(), verifier)
        while window:
            _finish_check(analysis, window.popleft(), verifier)
    finally:
        verifier.close()
    # A plugin's name is its folder's (a mismatch is an error), so folders name plugins.
    analysis.removed = {folder for folder in previous.plugins if folder not in scan.plugins}
    if dependencies:
        _check_across(analysis, bool(previous.plugins), focus)
    return analysis


def _check_across(analysis: Analysis, incremental: bool, focus: AbstractSet[str] | None) -> None:
    """Run the cross-plugin rules on what changed (everything on a first build)."""
    changed = set(analysis.documents) | analysis.removed
    only = affected(analysis.facts, changed) if incremental else None
    if focus is not None:
        only = {name for name in focus if name in analysis.facts}
    analysis.findings = dependency_findings(
        analysis.index, analysis.facts, only, unknown_ok=analysis.broken
    )
    analysis.problems.extend(f.problem for f in analysis.findings)


def _versions_left_out(folder: PluginFolder, exclude: AbstractSet[str]) -> frozenset[str]:
    """Return the excluded version files of a plugin folder."""
    prefix = f"plugins/{folder.folder}/{VERSIONS_DIR}/"
    return frozenset(rel for rel in exclude if rel.startswith(prefix))


def _leave_out(index: Path, scan: Scan, exclude: AbstractSet[str]) -> None:
    """Drop excluded files from a scan, and the scan's problems about them."""
    for folder in scan.plugins.values():
        for rel in exclude & folder.files.keys():
            del folder.files[rel]
    shown_excluded = {str(index / rel) for rel in exclude}
    scan.problems[:] = [p for p in scan.problems if str(p.file) not in shown_excluded]


@dataclass
class _FolderFiles:
    """A plugin folder's file hashes and sizes, and the manifests read so far."""

    digests: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    contents: dict[str, bytes] = field(default_factory=dict)
    all_known: bool = True  # every file's stat matched the cache


def _read_folder(
    index: Path,
    folder: PluginFolder,
    previous: BuildCache,
    fresh: BuildCache,
    problems: list[Problem],
) -> _FolderFiles | None:
    """Hash a folder's files, reading only those whose stat changed since the cache.

    Records every file's stat and hash in `fresh.sources`.
    """
    files = _FolderFiles()
    readable = True
    for rel, info in folder.files.items():
        files.sizes[rel] = info[1]
        known = previous.sources.get(rel)
        if known is not None and known[:4] == info:
            files.digests[rel] = known[4]
            fresh.sources[rel] = known
            continue
        files.all_known = False
        try:
            if _is_manifest(rel):
                files.contents[rel] = read_file(index, rel)
                files.digests[rel] = hashlib.sha256(files.contents[rel]).hexdigest()
            else:
                files.digests[rel] = sha256_of_file(index / rel)[0]
            fresh.sources[rel] = (*info, files.digests[rel])
        except SourceError as e:
            problems.append(e.problem)
            readable = False
        except OSError as e:
            problems.append(Problem(index / rel, None, "", f"cannot read file ({e.strerror})"))
            readable = False
    return files if readable else None


def _input_key_of(
    folder: PluginFolder,
    files: _FolderFiles,
    record: PluginRecord | None,
    previous: BuildCache,
    registry_digest: str,
) -> str:
    """Return the content key of a plugin's inputs, reusing the cached one when it must match."""
    if (
        files.all_known
        and record is not None
        and record.files == len(folder.files)
        and previous.registry == registry_digest
    ):
        # Same files (all known, same count), same bytes: the same input key.
        return record.input
    return _input_key(registry_digest, files.digests)


def _input_key(registry_digest: str, digests: dict[str, str]) -> str:
    digest = hashlib.sha256(registry_digest.encode())
    for rel in sorted(digests):
        digest.update(f"\n{rel}\0{digests[rel]}".encode())
    return digest.hexdigest()


@dataclass
class _Pending:
    """A parsed, checked plugin whose signatures a worker thread is verifying."""

    folder: PluginFolder
    input_key: str
    loaded: LoadedPlugin
    problems: list[Problem]
    entries: list[dict[str, Any]]
    jobs: list[SignatureJob]
    checks: Ticket


def _start_check(
    analysis: Analysis,
    registry: RegistryConfig,
    folder: PluginFolder,
    files: _FolderFiles,
    *,
    input_key: str,
    verifier: Verifier,
    left_out: AbstractSet[str] = frozenset(),
) -> _Pending | None:
    """Parse and check a plugin, and hand its signatures to the verifier."""
    index = analysis.index
    try:
        for rel in folder.files:
            if _is_manifest(rel) and rel not in files.contents:
                files.contents[rel] = read_file(index, rel)
    except SourceError as e:
        analysis.problems.append(e.problem)
        return None
    loaded, problems = load_plugin(index, folder, files.contents)
    if loaded is None:
        analysis.problems.extend(problems)
        return None
    problems.extend(
        check_plugin(index, registry, loaded, files.digests, files.sizes, left_out=left_out)
    )
    # One published shape per version serves both the signature check and the document.
    entries = [version_entry(v.manifest) for v in loaded.versions]
    versions = [(v.file, v.manifest) for v in loaded.versions]
    jobs = plan_signatures(registry.name, loaded.manifest, versions, entries)
    checks = verifier.submit(jobs, tuple(owner_keys(loaded.manifest.owners, retired=True)))
    return _Pending(folder, input_key, loaded, problems, entries, jobs, checks)


def _finish_check(analysis: Analysis, pending: _Pending, verifier: Verifier) -> None:
    """Judge a plugin's signatures, then render its document when it is valid."""
    index, loaded, problems = analysis.index, pending.loaded, pending.problems

    def report(rel: str, loc: Path_, message: str) -> None:
        problem = problem_at(index, rel, loc, message)
        problems.append(dataclasses.replace(problem, rule=SIGNATURE_RULE))

    signers = judge_signatures(
        loaded.manifest, pending.jobs, verifier.result(pending.checks), report
    )
    folder = pending.folder
    if problems:
        analysis.problems.extend(problems)
        analysis.broken.add(folder.folder)
        return
    document = encode(plugin_document(loaded, signers, pending.entries))
    name = loaded.manifest.name
    analysis.documents[name] = document
    facts = facts_of(loaded, hashlib.sha256(document).hexdigest(), len(document))
    analysis.cache.plugins[folder.folder] = PluginRecord.of(
        pending.input_key, facts, len(folder.files)
    )
    analysis.facts[facts.name] = facts


def affected(facts: dict[str, PluginFacts], changed: set[str]) -> set[str]:
    """Return the changed plugins plus every plugin that depends on one of them."""
    affected = {name for name in changed if name in facts}
    if not changed:
        return affected
    for name, plugin in facts.items():
        if not changed.isdisjoint(plugin.depends_on):
            affected.add(name)
    return affected
