"""Write a build into its output folder: only what changed, and all-or-nothing.

New content is staged under `<out>/.plugindex/staging/` first; only when every file
is staged are they moved into place (each move an atomic rename), artifacts first
and the top-level pointers last. A failure while staging leaves the previous
output exactly as it was. Staged files sit side by side, numbered, not in a copy of
the output's folders: a cold build stages ~100,000 artifacts, each in its own
folder, and making and removing as many empty folders again cost a sixth of it.

Files can also be written ahead (`prestage`), at their published paths under a
folder of the build's state, by the processes that check plugins: a plugin's
document and its repository-local artifacts, written in parallel while the index
is still being read. Committing moves them into place, a whole folder at a time
where the output has none yet (a cold build moves `artifacts/` in one rename).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from builder.common import layout
from builder.common.build_folder import (
    STATE_DIR,
    OutputFiles,
    files_on_disk,
    has_outputs,
    update_outputs,
    write_outputs,
)
from builder.common.errors import BuildError
from builder.common.files import CHUNK, HashingWriter
from builder.common.sharded import Sharded

if TYPE_CHECKING:  # made from this module's plans
    from builder.index.carry import CarriedArtifacts

log = logging.getLogger(__name__)

_STAGING = "staging"
_PARTS = ".parts"  # under a folder of files written ahead: files being written
_PART_NUMBERS = itertools.count()


class Planned(NamedTuple):
    """One file of the build: its hash and size, and how to produce it if needed.

    A named tuple: a build plans one per published file, ~110,000 at 10,000 plugins.
    """

    sha256: str
    size: int
    # The bytes, a source file to copy (whose sha256 must match), or None when the
    # caller knows the file on disk is already right.
    content: bytes | Path | None


class Prestaged(NamedTuple):
    """Files written ahead under `root`, at their published paths, with their sha256."""

    root: Path
    files: Mapping[str, str]  # published path -> sha256 of the file written ahead


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0


def files_outside(out: Path, skip: Collection[str]) -> dict[str, int]:
    """List the published files under `out` with their sizes, except in the folders `skip`."""
    found: dict[str, int] = {}
    try:
        entries = list(os.scandir(out))
    except FileNotFoundError:
        return found
    for entry in entries:
        if entry.name == STATE_DIR or entry.name in skip:
            continue
        if entry.is_dir(follow_symlinks=False):
            inside = files_on_disk(Path(entry.path))
            found.update({f"{entry.name}/{rel}": size for rel, size in inside.items()})
        else:
            found[entry.name] = entry.stat().st_size
    return found


def check_output(out: Path) -> None:
    """Make sure `out` is ours to write: new, empty, or an earlier build (changes nothing)."""
    if out.exists() and not out.is_dir():
        raise BuildError(f"{out}: not a folder (expected a build output folder)")
    if out.is_dir() and not (out / STATE_DIR).is_dir() and any(out.iterdir()):
        raise BuildError(
            f"{out}: folder is not empty and holds no earlier plugindex build "
            f"(expected an empty or earlier output folder)"
        )


def _stage(target: str, path: str, planned: Planned) -> None:
    """Write the file planned for `path` at `target` (a staging path), checking a copy."""
    if isinstance(planned.content, bytes):
        with open(target, "wb") as sink:  # noqa: PTH123 - a str path: one per file staged
            sink.write(planned.content)
        return
    if planned.content is None:
        raise BuildError(f"{path.rsplit('/', 1)[-1]}: no content to write (internal error)")
    with planned.content.open("rb") as source, open(target, "wb") as sink:  # noqa: PTH123
        writer = HashingWriter(sink)
        shutil.copyfileobj(source, writer, CHUNK)
    if writer.hexdigest() != planned.sha256:
        raise BuildError(
            f"{planned.content}: changed while building (expected sha256 "
            f"{planned.sha256}, got {writer.hexdigest()})"
        )


def prestage(root: str, path: str, sha256: str, content: bytes | Path) -> bool:
    """Write a file of the build ahead, at `root`/`path`; return whether it holds `sha256`.

    `content` is the bytes (hashed by the caller) or a source file, copied and hashed
    on the way. Each process writes a temporary file and renames it, so two
    processes writing the same artifact leave one whole copy; temporary files sit
    in their own folder, so one left by a process that died is never moved along
    with a folder of the build.
    """
    target = f"{root}/{path}"
    partial = f"{root}/{_PARTS}/{os.getpid()}.{next(_PART_NUMBERS)}"
    try:
        # Folders are made when a write finds them missing: one call per file, not three.
        sink = _open_making_folders(partial)
        with sink:
            if isinstance(content, bytes):
                sink.write(content)
                same = True
            else:
                with content.open("rb") as source:
                    writer = HashingWriter(sink)
                    shutil.copyfileobj(source, writer, CHUNK)
                same = writer.hexdigest() == sha256
        if same:
            try:
                os.replace(partial, target)  # noqa: PTH105
            except FileNotFoundError:
                os.makedirs(os.path.dirname(target), exist_ok=True)  # noqa: PTH103, PTH120
                os.replace(partial, target)  # noqa: PTH105
            return True
    except OSError:
        pass  # not written ahead: the commit stages it, and reports what goes wrong
    with contextlib.suppress(OSError):
        os.unlink(partial)  # noqa: PTH108
    return False


def _open_making_folders(path: str) -> BinaryIO:
    """Open a file for writing, making its folders if they are missing."""
    try:
        return open(path, "wb")  # noqa: PTH123 - the caller closes it
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)  # noqa: PTH103, PTH120
        return open(path, "wb")  # noqa: PTH123


def write_output(
    out: Path,
    plan: Mapping[str, Planned],
    previous: Mapping[str, str] | None,
    *,
    on_disk: Mapping[str, int] | None = None,
    before_commit: Callable[[], None] | None = None,
    prestaged: Prestaged | None = None,
    carried: CarriedArtifacts | None = None,
) -> WriteReport:
    """Bring `out` to exactly `plan`; `previous` is the last build's path → sha256.

    `on_disk` is what `out` holds (path → size) when the caller knows it (default:
    `files_on_disk(out)`). A file is rewritten when its hash differs from `previous`
    or its size from `on_disk`; a file in `on_disk` and not in `plan` is removed,
    but for the artifacts `carried` over as recorded (`builder.index.carry`: on disk
    as recorded, and kept). A changed file found in `prestaged` with its planned
    sha256 is moved from there instead of staged. `before_commit` runs once
    everything is staged, only if anything will change.
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
    if carried is not None:
        report.unchanged += carried.unlisted
    staging = out / STATE_DIR / _STAGING
    shutil.rmtree(staging, ignore_errors=True)
    ahead = prestaged.files if prestaged is not None else {}
    # A changed file not staged now is written ahead as planned, ready to move into
    # place (no set of those: in a cold build, every file).
    staged = {
        path: f"{staging}/{number}"
        for number, path in enumerate(p for p in changed if ahead.get(p) != plan[p].sha256)
    }
    try:
        if staged:
            staging.mkdir()
        for path, target in staged.items():
            _stage(target, path, plan[path])
        stale = _unplanned(on_disk, plan, carried)
        if before_commit is not None and (changed or stale):
            before_commit()
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    folders: set[str] = set()  # output folders known to exist

    def make_parent(path: str) -> None:
        folder = path.rpartition("/")[0]
        if folder and folder not in folders:
            (out / folder).mkdir(parents=True, exist_ok=True)
            folders.add(folder)

    stale = _clear_the_way(out, stale, changed, report)
    whole = _WholeFolders(out, ahead, lambda: (p for p in changed if p not in staged))
    for path in sorted(changed, key=lambda p: (layout.write_rank(p), p)):
        report.written.append(path)
        ready = path not in staged
        moved = whole.top(path) if ready else None
        if moved is not None:
            if moved not in whole.moved:
                assert prestaged is not None
                make_parent(moved)
                os.replace(prestaged.root / moved, out / moved)  # noqa: PTH105
                whole.moved.add(moved)
            continue
        make_parent(path)
        source = f"{prestaged.root}/{path}" if ready and prestaged else staged[path]
        os.replace(source, f"{out}/{path}")  # noqa: PTH105 - str paths, one per file
    shutil.rmtree(staging, ignore_errors=True)
    for path in stale:
        _remove(out, path, report)
    return report


def _unplanned(
    on_disk: Mapping[str, int], plan: Mapping[str, Planned], carried: CarriedArtifacts | None
) -> list[str]:
    """Return the files on disk the build does not publish (a list of few, no sets of all).

    The output holds a million files and more: they are passed through filters in C.
    """
    if carried is None:
        return list(itertools.filterfalse(plan.__contains__, on_disk))
    # Every artifact on disk is then one the record lists (artifacts are never walked:
    # `OutputFiles.artifacts`), kept or stale: only the files looked at are gone through.
    looked_at = on_disk.files if isinstance(on_disk, OutputFiles) else on_disk
    unplanned = itertools.filterfalse(plan.__contains__, looked_at)
    # The stale artifacts are recorded (so on disk, as the record says) and planned by
    # none (`carry_artifacts`): all of them go, besides the unplanned files not kept.
    kept = carried.sizes
    return [*itertools.filterfalse(kept.__contains__, unplanned), *carried.stale]


def _clear_the_way(
    out: Path, stale: list[str], changed: list[str], report: WriteReport
) -> list[str]:
    """Remove the stale files that stand where a changed file or its folders go (a
    file where a folder is written, or a file inside a folder where a file is);
    return the other stale files, sorted.

    Only these go before the writes (the rest after, so that a reader never finds a
    published file missing). A cold build has no stale file: nothing to look at.
    """
    if not stale:
        return []
    targets = set(changed)
    folders = {parent for path in changed for parent in _parents(path)}
    rest = []
    for path in sorted(stale):
        if path in folders or not targets.isdisjoint(_parents(path)):
            _remove(out, path, report)
        else:
            rest.append(path)
    return rest


def _remove(out: Path, path: str, report: WriteReport) -> None:
    """Remove a stale file, and the folders it leaves empty."""
    (out / path).unlink()
    report.removed.append(path)
    _prune_empty_parents(out, Path(path).parent)


def _parents(path: str) -> list[str]:
    """Return the folders `path` lies in, innermost first ("a/b/c" gives "a/b", "a")."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[:end]) for end in range(len(parts), 0, -1)]


class _WholeFolders:
    """Which folders written ahead can move into the output whole, in one rename.

    A folder can when the output has no such folder yet and every file written
    ahead in it is to be committed (none is a file the build left out). Files are
    counted by folder one depth at a time, as asked: a cold build moves `artifacts/`
    whole and never counts the hundreds of thousands of folders inside it.
    """

    def __init__(
        self, out: Path, ahead: Mapping[str, str], ready: Callable[[], Iterable[str]]
    ) -> None:
        self.out = out
        self.moved: set[str] = set()
        self._ahead = ahead
        self._ready = ready  # the files written ahead to commit (a subset of `ahead`)
        self._left: dict[int, dict[str, int]] = {}  # depth -> folder -> files not committed
        self._absent: dict[str, bool] = {}

    def top(self, path: str) -> str | None:
        """Return the outermost folder of `path` (written ahead) that moves whole, or None."""
        parts = path.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            folder = "/".join(parts[:depth])
            if folder in self.moved:
                return folder
            if self._left_out(depth).get(folder) == 0 and self._is_absent(folder):
                return folder
        return None

    def _left_out(self, depth: int) -> dict[str, int]:
        """Return by folder `depth` deep its files written ahead but not to commit."""
        counts = self._left.get(depth)
        if counts is None:
            counts = {}
            for paths, step in ((self._ahead, 1), (self._ready(), -1)):
                for path in paths:
                    parts = path.split("/", depth)
                    if len(parts) > depth:  # inside a folder this deep
                        folder = "/".join(parts[:depth])
                        counts[folder] = counts.get(folder, 0) + step
            self._left[depth] = counts
        return counts

    def _is_absent(self, folder: str) -> bool:
        absent = self._absent.get(folder)
        if absent is None:
            absent = self._absent[folder] = not (self.out / folder).exists()
        return absent


def _prune_empty_parents(out: Path, directory: Path) -> None:
    while directory != Path():
        target = out / directory
        try:
            target.rmdir()
        except OSError:
            return
        directory = directory.parent


def record_files(
    out: Path,
    plan: Mapping[str, Planned],
    report: WriteReport,
    loaded: Sharded | None,
    recorded: Mapping[str, str] | None,
    *,
    carried: CarriedArtifacts | None = None,
) -> None:
    """Leave the record of the output's files (`builder.common.build_folder`) as `plan`.

    `loaded` is the record this build started from, and `recorded` its hashes. With
    it, only what changed is recorded again: the files written, and the paths
    recorded then that the plan no longer holds (removed now, or already gone). A
    file left alone is as recorded: `write_output` compared its sha256 with the
    record, and its size with the record or the disk. The artifacts `carried` over
    (recorded, not planned: there is a record) stay recorded but the stale ones.
    """
    if loaded is None or recorded is None:
        write_outputs(out, ((path, (p.sha256, p.size)) for path, p in plan.items()))
        return
    changes: dict[str, tuple[str, int] | None] = {
        path: (plan[path].sha256, plan[path].size) for path in report.written
    }
    if carried is None:
        changes.update(dict.fromkeys(recorded.keys() - plan.keys()))
    else:
        changes.update(dict.fromkeys(carried.unrecorded(plan)))
    if changes or not has_outputs(out):
        update_outputs(out, loaded, changes)
