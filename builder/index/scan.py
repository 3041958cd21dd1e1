"""Scan an index for a build: walk only the plugin folders that changed since the last.

Walking every file of the index (each one a stat call, and a Python object or four)
was most of a no-op build: about 200,000 files at 10,000 plugins. A file's status
change time (ctime) moves on every write, rename, permission or time change, and the
file system sets it (no tool can set it back), so the entries whose ctime is later
than the start of the last scan are exactly what changed since. `find -newerct`
lists them in C; only the plugin folders holding one are walked again, the others
keep the listing the cache recorded.

Without `find`, a cache or a time of the last scan, everything is walked, as before.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from builder.format.load import PLUGINS_DIR, PluginFolder, Scan, scan_index
from builder.index.cache import BuildCache

log = logging.getLogger(__name__)

# How long before its start a scan counts as made: a write racing with the scan (or
# timestamps as coarse as 2 s on some file systems) is then seen by the next build.
MARGIN_NS = 2_000_000_000
_FIND_SECONDS = 600  # a find of 1.5 million files takes a few seconds


def scan_started() -> int:
    """Return the time (ns since 1970) to record as this scan's start, margin included."""
    return time.time_ns() - MARGIN_NS


class Finding:
    """A `find` started now and read later, so that it runs while the build loads its cache."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        # Changes after this are seen by the next build (recorded as its scan's start).
        self.started = scan_started()
        self._process: subprocess.Popen[bytes] | None = None
        try:
            self._process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as e:
            log.debug("%s: %s (everything is walked)", command[0], e)

    def output(self) -> bytes | None:
        """Return what find printed, or None when it failed (walk everything then)."""
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            stdout, stderr = process.communicate(timeout=_FIND_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return None
        if process.returncode != 0:
            log.debug("%s said %r (everything is walked)", self.command, stderr[:200])
            return None
        return stdout

    def stop(self) -> None:
        """Stop the find if it was never read (a build that failed before)."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.communicate()


def newer_than(since_ns: int) -> str:
    """Return `since_ns` as find's `-newerct` takes it."""
    seconds, nanoseconds = divmod(max(since_ns, 0), 1_000_000_000)
    return f"@{seconds}.{nanoseconds:09d}"


def find_changed_folders(index: Path, since_ns: int) -> Finding:
    """Start listing the entries under plugins/ whose ctime is after `since_ns`."""
    plugins = str(index / PLUGINS_DIR)
    return Finding(["find", plugins, "-mindepth", "1", "-newerct", newer_than(since_ns), "-print0"])


def changed_folders(plugins: Path, finding: Finding) -> set[str] | None:
    """Return the plugin folders holding an entry the finding listed, or None (unknown)."""
    listed = finding.output()
    if listed is None:
        return None
    prefix = os.fsencode(plugins) + b"/"
    folders = set()
    for path in listed.split(b"\0"):
        if path.startswith(prefix):
            folders.add(os.fsdecode(path[len(prefix) :].split(b"/", 1)[0]))
    return folders


def scan_for_build(
    index: Path, previous: BuildCache, dirty: Iterable[str] = (), finding: Finding | None = None
) -> tuple[Scan, frozenset[str]]:
    """Scan the index; return the scan and the folders taken from the cache unwalked.

    A folder taken from the cache is listed in the scan with no files: its record's
    listing stands (see `BuildCache.scanned`). `dirty` folders are always walked.
    `finding` is `find_changed_folders` since the cache's scan, started earlier.
    """
    if previous.scanned <= 0 or not previous.plugins:
        if finding is not None:
            finding.stop()
        return scan_index(index), frozenset()
    plugins = index / PLUGINS_DIR
    if finding is None:
        finding = find_changed_folders(index, previous.scanned)
    changed = changed_folders(plugins, finding)
    if changed is None:
        return scan_index(index), frozenset()
    try:
        names = os.listdir(plugins)  # noqa: PTH208 - names only, ten thousand and more
    except OSError:
        return scan_index(index), frozenset()
    skip = changed.union(dirty)
    # Cached folders were plugin folders when last walked, and nothing in their place
    # changed since; anything else (new, changed, hidden, not a folder) is scanned.
    trusted = frozenset(n for n in names if n in previous.plugins and n not in skip)
    scan = scan_index(index, set(names) - trusted)
    for name in trusted:
        scan.plugins[name] = PluginFolder(name)
    scan.plugins = dict(sorted(scan.plugins.items()))
    log.debug("walked %d plugin folders, %d unchanged", len(names) - len(trusted), len(trusted))
    return scan, trusted


def walk_again(index: Path, scan: Scan, folders: Iterable[str]) -> None:
    """Walk folders taken from the cache after all (their records could not be used)."""
    wanted = set(folders)
    if not wanted:
        return
    again = scan_index(index, wanted)
    # The index root's problems were reported by the first scan already.
    scan.problems.extend(p for p in again.problems if p not in scan.problems)
    for name in wanted:
        if name in again.plugins:
            scan.plugins[name] = again.plugins[name]
        else:
            del scan.plugins[name]
