"""Write a build into its output folder: only what changed, and all-or-nothing.

New content is staged under `<out>/.plugindex/staging/` first; only when every file
is staged are they moved into place (each move an atomic rename), artifacts first
and the top-level pointers last. A failure while staging leaves the previous
output exactly as it was.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.common import layout
from builder.common.build_folder import STATE_DIR, files_on_disk
from builder.common.errors import BuildError
from builder.common.files import CHUNK, HashingWriter

log = logging.getLogger(__name__)

_STAGING = "staging"


@dataclass(frozen=True)
class Planned:
    """One file of the build: its hash and size, and how to produce it if needed."""

    sha256: str
    size: int
    # The bytes, a source file to copy (whose sha256 must match), or None when the
    # caller knows the file on disk is already right.
    content: bytes | Path | None


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0


def check_output(out: Path) -> None:
    """Make sure `out` is ours to write: new, empty, or an earlier build (changes nothing)."""
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: not a folder (expected a build output folder)")
    if out.is_dir() and not (out / STATE_DIR).is_dir() and any(out.iterdir()):
        raise BuildError(
            f"{out}: folder is not empty and holds no earlier plugindex build "
            f"(expected an empty or earlier output folder)"
        )


def _stage(target: Path, planned: Planned) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(planned.content, bytes):
        target.write_bytes(planned.content)
        return
    if planned.content is None:
        raise BuildError(f"{target.name}: no content to write (internal error)")
    with planned.content.open("rb") as source, target.open("wb") as sink:
        writer = HashingWriter(sink)
        shutil.copyfileobj(source, writer, CHUNK)
    if writer.hexdigest() != planned.sha256:
        raise BuildError(
            f"{planned.content}: changed while building (expected sha256 "
            f"{planned.sha256}, got {writer.hexdigest()})"
        )


def write_output(
    out: Path,
    plan: Mapping[str, Planned],
    previous: Mapping[str, str] | None,
    *,
    on_disk: Mapping[str, int] | None = None,
    before_commit: Callable[[], None] | None = None,
) -> WriteReport:
    """Bring `out` to exactly `plan`; `previous` is the last build's path → sha256.

    `on_disk` is `files_on_disk(out)` when the caller already has it. A file is
    rewritten when its hash differs from `previous` or its size from the disk.
    `before_commit` runs once everything is staged, only if anything will change.
    """
    report = WriteReport()
    (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
    if on_disk is None:
        on_disk = files_on_disk(out)
    known = previous if previous is not None else {}
    changed = [
        path
        for path, planned in plan.items()
        if known.get(path) != planned.sha256 or on_disk.get(path) != planned.size
    ]
    report.unchanged = len(plan) - len(changed)
    staging = out / STATE_DIR / _STAGING
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for path in changed:
            _stage(staging / path, plan[path])
        stale = set(on_disk) - set(plan)
        if before_commit is not None and (changed or stale):
            before_commit()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for path in sorted(changed, key=lambda p: (layout.write_rank(p), p)):
        final = out / path
        final.parent.mkdir(parents=True, exist_ok=True)
        (staging / path).replace(final)
        report.written.append(path)
    shutil.rmtree(staging, ignore_errors=True)
    for path in sorted(stale):
        (out / path).unlink()
        report.removed.append(path)
        _prune_empty_parents(out, Path(path).parent)
    return report


def _prune_empty_parents(out: Path, directory: Path) -> None:
    while directory != Path():
        target = out / directory
        try:
            target.rmdir()
        except OSError:
            return
        directory = directory.parent
