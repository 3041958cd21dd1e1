"""What every gate rule shares: one plugin under the gate (its files in the base and
in the pull request, and the problems found so far), and the error for a gate that
cannot run at all.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from builder.common.errors import PlugindexError, Problem, SourceError
from builder.format.load import SchemaProblemsError, parse_model
from builder.format.models import PluginManifest, RegistryConfig, VersionManifest
from builder.format.paths import PLUGIN_FILE, PLUGINS_DIR, VERSIONS_DIR
from builder.format.strict_yaml import Path_
from builder.gate.git import Change, Git
from builder.index.rules import problem_at

log = logging.getLogger(__name__)
M = TypeVar("M", PluginManifest, VersionManifest)


class GateError(PlugindexError):
    """The gate cannot run (not a git repository, unknown base ref, unreadable registry)."""


@dataclass
class PluginContext:
    """A plugin touched by the pull request, as the rules see it.

    Paths are index-relative (`plugins/<name>/…`) unless a name says `repo_path`;
    `base_files` maps the plugin's index-relative paths in the base to their git blobs.
    """

    index: Path
    registry: RegistryConfig
    git: Git
    base: str  # commit id
    index_rel: str  # the index folder, relative to the repository root ("." at the root)
    name: str
    changes: list[Change]
    base_files: Mapping[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    added_versions: list[str] = field(default_factory=list)  # version files added or changed

    @classmethod
    def open(  # noqa: PLR0917 - mirrors the fields, in order
        cls,
        index: Path,
        registry: RegistryConfig,
        git: Git,
        base: str,
        index_rel: str,
        name: str,
        changes: list[Change],
    ) -> PluginContext:
        """Return the context of plugin `name`, with its files in the base listed."""
        context = cls(index, registry, git, base, index_rel, name, changes)
        listed = git.list_files(base, context.repo_path(context.folder))
        context.base_files = {context.rel(path): blob for path, blob in listed.items()}
        return context

    @property
    def folder(self) -> str:
        """Return the plugin's folder, index-relative."""
        return f"{PLUGINS_DIR}/{self.name}"

    @property
    def manifest_rel(self) -> str:
        """Return the plugin's plugin.yaml, index-relative."""
        return f"{self.folder}/{PLUGIN_FILE}"

    @property
    def versions_prefix(self) -> str:
        """Return the prefix of the plugin's version files, index-relative."""
        return f"{self.folder}/{VERSIONS_DIR}/"

    def rel(self, repo_path: str) -> str:
        """Return the index-relative form of a repository path."""
        return repo_path if self.index_rel == "." else repo_path[len(self.index_rel) + 1 :]

    def repo_path(self, rel: str) -> str:
        """Return the repository path of an index-relative path."""
        return rel if self.index_rel == "." else f"{self.index_rel}/{rel}"

    def add(self, rel: str, loc: Path_, message: str, rule: str) -> None:
        """Record a problem at field `loc` of the working-tree file `rel`."""
        problem = problem_at(self.index, rel, loc, message) if loc else None
        if problem is None:
            problem = Problem(self.index / rel, None, "", message)
        self.problems.append(dataclasses.replace(problem, rule=rule))

    def base_model(self, model: type[M], rel: str) -> M | None:
        """Return a file as it is in the base, or None if absent or unreadable there."""
        blob = self.base_files.get(rel)
        if blob is None:
            return None
        data = self.git.read_blob(blob)
        try:
            return parse_model(model, data, Path(f"{self.base[:12]}:{self.index_rel}"), rel)
        except (SourceError, SchemaProblemsError):
            log.warning("%s in the base does not parse; treating it as absent", rel)
            return None

    def current_model(self, model: type[M], rel: str) -> M | None:
        """Return a file as the pull request has it, or None if absent or invalid."""
        try:
            return parse_model(model, (self.index / rel).read_bytes(), self.index, rel)
        except (OSError, SourceError, SchemaProblemsError):
            return None  # the foundation rules report why
