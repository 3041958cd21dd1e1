"""What an install, upgrade, uninstall or repair asks for and what it changed.

Plain values shared by the commands that change a plugins folder (`install`, `repair`)
and read by the CLI, for people and for `--json`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from builder.client.lockfile import LockedDeprecation
from builder.client.plan import Kept
from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode
from builder.format.requirements import key_of


class InstallError(PlugindexError):
    """The request cannot be carried out with what is installed (not installed, needed)."""

    exit_code = ExitCode.UNSATISFIABLE


@dataclass(frozen=True)
class Request:
    """One NAME[@REQUIREMENT] from the command line."""

    name: str
    requirement: str | None = None


@dataclass(frozen=True)
class Change:
    """One plugin's version before and after a command."""

    name: str
    old: str | None  # the version before (None: newly installed)
    new: str | None  # the version after (None: removed)
    note: str | None = None  # why it is not the version a person would expect
    deprecated: LockedDeprecation | None = None  # the plugin's, when its owners deprecated it

    @property
    def action(self) -> str:
        """Return what happens: install, uninstall, upgrade, downgrade or reinstall."""
        if self.old is None:
            return "install"
        if self.new is None:
            return "uninstall"
        if self.old == self.new:
            return "reinstall"
        return "downgrade" if key_of(self.new) < key_of(self.old) else "upgrade"


@dataclass
class Outcome:
    """What a command changed (or, in a dry run, would change), for people and for --json."""

    changes: list[Change] = field(default_factory=list)
    unchanged: list[Kept] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False


# Called with the plan (changes, notes, warnings) before anything is downloaded.
OnPlan = Callable[[Outcome], None]
