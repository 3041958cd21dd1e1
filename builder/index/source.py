"""Where a build's source came from: its git commit and the time the build may show.

Never the clock: the same source must give the same bytes.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from builder.common.errors import BuildError


@dataclass(frozen=True)
class SourceInfo:
    """Where the index came from: the commit and the timestamp a build may show."""

    commit: str | None
    timestamp: str | None  # ISO 8601, UTC
    # When the commit was made (ISO 8601, UTC), from git only: SOURCE_DATE_EPOCH may
    # say anything, but a version released after its own merge is a lie.
    committed: str | None = None


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
    committed = _iso(epoch) if epoch is not None else None
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
    return SourceInfo(commit, moment.strftime("%Y-%m-%dT%H:%M:%SZ"), committed)


def _iso(epoch: int) -> str | None:
    """Return seconds since 1970 as ISO 8601 UTC, or None when out of range."""
    try:
        return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    except (ValueError, OverflowError, OSError):
        return None
