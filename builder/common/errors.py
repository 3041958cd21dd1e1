"""Errors and problems: everything a person can act on, with file and line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.common.exits import ExitCode


class PlugindexError(Exception):
    """Base of every error the CLI prints without a traceback."""

    exit_code: int = ExitCode.ERROR


class SourceError(PlugindexError):
    """A source file cannot be read as a whole (bad YAML, too large, not UTF-8)."""

    exit_code = ExitCode.PROBLEMS

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.render())
        self.problem = problem


class InvalidIndexError(PlugindexError):
    """One or more problems were found; all of them are attached."""

    exit_code = ExitCode.PROBLEMS

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) found")
        self.problems = problems


class BuildError(PlugindexError):
    """The build could not complete for a reason other than invalid input."""


class FetchError(PlugindexError):
    """A URL could not be fetched (network, status, size cap, timeout)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the index, located as precisely as we can."""

    file: Path
    line: int | None
    field: str
    message: str
    rule: str = ""  # a stable id such as PX101 (docs/rules.md), for rules that have one

    def sort_key(self) -> tuple[str, int, str, str]:
        """Order problems by file, then line (problems without a line first)."""
        return (str(self.file), self.line or 0, self.field, self.message)

    def location(self) -> str:
        """Return `file:line` (or just `file` when no line is known)."""
        return f"{self.file}:{self.line}" if self.line else str(self.file)

    def _text(self) -> str:
        rule = f"{self.rule} " if self.rule else ""
        field = f"{self.field}: " if self.field else ""
        return f"{rule}{field}{self.message}"

    def render(self) -> str:
        """Return the problem as `path:line: [RULE ]field: message`."""
        return f"{self.location()}: {self._text()}"

    def render_github(self) -> str:
        """Return the problem as a GitHub Actions error annotation."""
        where = f"file={_escape(str(self.file), property_value=True)}"
        if self.line:
            where += f",line={self.line}"
        return f"::error {where}::{_escape(self._text())}"


def _escape(text: str, *, property_value: bool = False) -> str:
    """Escape text for a GitHub Actions workflow command (its data or a property)."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text
