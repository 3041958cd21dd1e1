"""Check one plugin folder: read, parse, check, verify, render, and write it ahead.

A check depends only on its setup and its job, so it runs in this process or in a
worker (`builder.index.verifier`) with the same result; `builder.index.analyse`
hands the folders out and merges what comes back.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from builder.common import layout
from builder.common.errors import Problem, SourceError
from builder.common.files import sha256_of_stream
from builder.format.load import load_plugin, read_file
from builder.format.models import RegistryConfig
from builder.format.paths import PLUGIN_FILE, VERSIONS_DIR
from builder.format.shapes import version_entry
from builder.format.strict_yaml import Path_
from builder.index.encoding import encode
from builder.index.facts import PluginFacts, facts_of
from builder.index.output import prestage
from builder.index.render import plugin_document
from builder.index.rules import check_plugin, problem_at
from builder.index.signatures import SIGNATURE_RULE, judge_signatures, plan_signatures
from builder.index.verifier import verify_signatures
from builder.trust.signing import owner_keys

# Files of a plugin folder besides its manifests are kept in memory while it is checked
# up to this size (bytes), so that a local artifact is read once.
_KEPT_BYTES = 1 << 20


def _is_manifest(rel: str) -> bool:
    """Return whether `rel` is a plugin's plugin.yaml or one of its version files."""
    parts = rel.split("/")  # plugins/<folder>/plugin.yaml or plugins/<folder>/versions/<v>.yaml
    if len(parts) == 3:
        return parts[2] == PLUGIN_FILE
    return len(parts) == 4 and parts[2] == VERSIONS_DIR and parts[3].endswith(".yaml")


@dataclass(frozen=True)
class CheckSetup:
    """What every process needs to check a plugin exactly as every other process does."""

    index: Path
    registry: RegistryConfig
    registry_digest: str  # sha256 of registry.yaml: part of every plugin's input key
    # Where a valid plugin's document and local artifacts are written ahead (a build's
    # state folder, see `builder.index.output.prestage`); None: nowhere.
    stage: str | None = None


class FolderJob(NamedTuple):
    """One plugin folder to read and, unless its content is as cached, to check."""

    folder: str
    # The folder's files (index-relative) and their sizes: no more of the scan, whose
    # stats (a tuple of four numbers per file) are let go before the checks run.
    sizes: dict[str, int]
    reuse: str | None  # the cached input key: files that still hash to it are not parsed
    left_out: frozenset[str]  # version files the build leaves out


class FolderResult(NamedTuple):
    """What checking one plugin folder gave."""

    folder: str  # the job's folder, to be sure results are merged with their own jobs
    input_key: str | None  # None when a file could not be read
    problems: list[Problem]
    # The per-plugin document, when the plugin was checked and valid, unless it was
    # written ahead (then read from the stage: bytes are not handed over twice).
    document: bytes | None
    facts: PluginFacts | None
    # `input_key` is the job's `reuse`: the folder was read, not parsed; its cache stands.
    unchanged: bool = False
    staged: tuple[tuple[str, str], ...] = ()  # files written ahead: (published path, sha256)


def _read_folder(
    index: Path, files: dict[str, int]
) -> tuple[dict[str, str], dict[str, int], dict[str, bytes], list[Problem]]:
    """Read and hash a folder's files; return digests, sizes, bytes and problems.

    The bytes are those of the manifests, and of the other files up to
    `_KEPT_BYTES` (a local artifact written ahead is then not read and hashed again).
    """
    digests: dict[str, str] = {}
    sizes: dict[str, int] = {}
    contents: dict[str, bytes] = {}
    problems: list[Problem] = []
    for rel, size in files.items():
        sizes[rel] = size
        try:
            if _is_manifest(rel):
                contents[rel] = read_file(index, rel)
                digests[rel] = hashlib.sha256(contents[rel]).hexdigest()
            elif size <= _KEPT_BYTES:
                with open(f"{index}/{rel}", "rb") as stream:  # noqa: PTH123 - one per file
                    contents[rel] = stream.read()
                digests[rel] = hashlib.sha256(contents[rel]).hexdigest()
            else:
                with open(f"{index}/{rel}", "rb") as stream:  # noqa: PTH123
                    digests[rel] = sha256_of_stream(stream)[0]
        except SourceError as e:
            problems.append(e.problem)
        except OSError as e:
            problems.append(Problem(index / rel, None, "", f"cannot read file ({e.strerror})"))
    return digests, sizes, contents, problems


def _input_key(registry_digest: str, digests: dict[str, str]) -> str:
    digest = hashlib.sha256(registry_digest.encode())
    for rel in sorted(digests):
        digest.update(f"\n{rel}\0{digests[rel]}".encode())
    return digest.hexdigest()


def check_folder(setup: CheckSetup, job: FolderJob) -> FolderResult:
    """Read one plugin folder; parse, check and verify it, and render its document.

    Runs in this process or in a worker: it depends only on `setup` and `job`.
    """
    index, registry, folder = setup.index, setup.registry, job.folder
    digests, sizes, contents, problems = _read_folder(index, job.sizes)
    if problems:
        return FolderResult(folder, None, problems, None, None)
    input_key = _input_key(setup.registry_digest, digests)
    if input_key == job.reuse:
        return FolderResult(folder, input_key, [], None, None, unchanged=True)
    loaded, problems = load_plugin(index, folder, job.sizes, contents)
    if loaded is None:
        return FolderResult(folder, input_key, problems, None, None)
    problems.extend(check_plugin(index, registry, loaded, digests, sizes, left_out=job.left_out))
    # One published shape per version serves both the signature check and the document.
    entries = [version_entry(v.manifest) for v in loaded.versions]
    versions = [(v.file, v.manifest) for v in loaded.versions]
    jobs = plan_signatures(registry.name, loaded.manifest, versions, entries)
    checks = verify_signatures(jobs, owner_keys(loaded.manifest.owners, retired=True))

    def report(rel: str, loc: Path_, message: str) -> None:
        problem = problem_at(index, rel, loc, message)
        problems.append(dataclasses.replace(problem, rule=SIGNATURE_RULE))

    signers = judge_signatures(loaded.manifest, jobs, checks, report)
    if problems:
        return FolderResult(folder, input_key, problems, None, None)
    document = encode(plugin_document(loaded, signers, entries))
    facts = facts_of(loaded, hashlib.sha256(document).hexdigest(), len(document))
    staged: tuple[tuple[str, str], ...] = ()
    if setup.stage is not None:
        staged = _write_ahead(setup.stage, index, facts, document, contents)
    kept = None if (layout.index_path(facts.name), facts.doc_sha256) in staged else document
    return FolderResult(folder, input_key, [], kept, facts, staged=staged)


def _write_ahead(
    stage: str, index: Path, facts: PluginFacts, document: bytes, read: Mapping[str, bytes]
) -> tuple[tuple[str, str], ...]:
    """Write a valid plugin's document and local artifacts ahead; return what was written.

    `read` holds the bytes of files already read (and hashed: the rules checked each
    local artifact's hash against its manifest); the others are copied and hashed.
    """
    files: list[tuple[str, str, bytes | Path]] = [
        (layout.index_path(facts.name), facts.doc_sha256, document)
    ]
    for sha256, _, filename, local in facts.local_artifacts:
        content = read.get(local, index / local)
        files.append((layout.artifact_path(sha256, filename), sha256, content))
    return tuple(
        (path, sha256) for path, sha256, content in files if prestage(stage, path, sha256, content)
    )
