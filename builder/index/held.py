"""What a build held back, and where: one record per decision (see `holdback`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.common.errors import Problem
from builder.format.paths import PLUGINS_DIR, VERSIONS_DIR

# What happened to what was held back (status.json's `outcome`).
KEPT = "previous state kept"
LEFT_OUT = "left out"
VERSION_LEFT_OUT = "version left out"
FILE_LEFT_OUT = "file left out"


@dataclass(frozen=True)
class HeldBack:
    """One thing the build held back, and why (a problem with its file and line)."""

    plugin: str  # the folder under plugins/
    outcome: str  # KEPT, LEFT_OUT, VERSION_LEFT_OUT or FILE_LEFT_OUT
    rel: str  # the index-relative file the reason is in
    problem: Problem

    def record(self) -> dict[str, Any]:
        """Return the entry status.json publishes (index-relative paths only)."""
        problem = self.problem
        return {
            "plugin": self.plugin,
            "outcome": self.outcome,
            "file": self.rel,
            "line": problem.line,
            "rule": problem.rule or None,
            "reason": f"{problem.field}: {problem.message}" if problem.field else problem.message,
        }

    def shown(self) -> Problem:
        """Return the reason as a problem to print, saying what was held back."""
        return dataclasses.replace(
            self.problem,
            message=f"{self.problem.message} [held back: {self.plugin}, {self.outcome}]",
        )


def entry_of(index: Path, problem: Problem) -> str | None:
    """Return the plugins/ entry a problem is in, or None when it is outside plugins/."""
    rel = rel_of(index, problem)
    parts = rel.split("/") if rel else []
    return parts[1] if len(parts) >= 2 and parts[0] == PLUGINS_DIR else None


def rel_of(index: Path, problem: Problem) -> str | None:
    """Return the index-relative path of a problem's file, or None outside the index."""
    try:
        return Path(problem.file).relative_to(index).as_posix()
    except ValueError:
        return None


def is_version_file(rel: str) -> bool:
    """Tell whether an index-relative path is a version file of a plugin."""
    parts = rel.split("/")
    return len(parts) == 4 and parts[2] == VERSIONS_DIR
