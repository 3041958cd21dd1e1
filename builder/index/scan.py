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
import select
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
ARTIFACTS_DIR = "artifacts"  # where a plugin folder keeps its artifacts, by convention


def scan_started() -> int:
    """Return the time (ns since 1970) to record as this scan's start, margin included."""
    return time.time_ns() - MARGIN_NS


class Finding:
    """`find` processes started now and read later, so they run while the build loads.

    Several commands run side by side (each on its part of the folder): a find is
    mostly the kernel answering stat calls, which two cores answer twice as fast.
    """

    def __init__(self, commands: list[list[str]], cwd: Path | None = None) -> None:
        self.commands = commands
        self.launched = time.time_ns()  # nothing after this can be missed by these finds
        # Changes after this are seen by the next build (recorded as its scan's start).
        self.started = scan_started()
        self.listed = 0  # entries the finds printed (known once read)
        self._processes: list[subprocess.Popen[bytes]] = []
        self._printed: bytes | None = None  # what they printed, once read
        self._early: list[bytes] = []  # read by `prints_anything`, by process
        try:
            for command in commands:
                self._processes.append(
                    subprocess.Popen(
                        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd
                    )
                )
        except OSError as e:
            log.debug("%s: %s (everything is walked)", commands[0][0], e)
            self.stop()

    def output(self) -> bytes | None:
        """Return what the finds printed, or None when one failed (walk everything then).

        Read once; later calls return the same (a build takes over a no-op check's finds).
        """
        if self._printed is not None:
            return self._printed
        processes, self._processes = self._processes, []
        printed = []
        try:
            early = self._early or [b""] * len(processes)
            for process, already in zip(processes, early, strict=True):
                stdout, stderr = process.communicate(timeout=_FIND_SECONDS)
                if process.returncode != 0:
                    log.debug("%s said %r (everything is walked)", process.args, stderr[:200])
                    return None
                printed.append(already + stdout)
        except subprocess.TimeoutExpired:
            return None
        finally:
            for process in processes:
                if process.returncode is None:
                    process.kill()
                    process.communicate()
        if not processes:
            return None
        listed = b"".join(printed)
        self.listed = listed.count(b"\0")
        self._printed = listed
        return listed

    def prints_anything(self) -> bool:
        """Wait until a find prints something, or all end; return whether one printed.

        A no-op check needs no more than that of the index, and a build that has work
        to do goes on as soon as it is known, while the finds run on (what is read
        here is kept for `output`). A find that failed or hangs counts as printing:
        its silence proves nothing.
        """
        if not self._processes:
            return True
        streams = {}
        for number, process in enumerate(self._processes):
            assert process.stdout is not None
            streams[process.stdout.fileno()] = number
        self._early = [b""] * len(self._processes)
        running = set(streams)
        while running:
            ready, _, _ = select.select(list(running), [], [], _FIND_SECONDS)
            if not ready:
                return True
            for stream in ready:
                data = os.read(stream, 1 << 16)
                if data:
                    self._early[streams[stream]] += data
                    return True
                running.discard(stream)
        return any(process.wait() != 0 for process in self._processes)

    def stop(self) -> None:
        """Stop the finds if they were never read (a build that failed before)."""
        processes, self._processes = self._processes, []
        for process in processes:
            process.kill()
            process.communicate()


def newer_than(since_ns: int) -> str:
    """Return `since_ns` as find's `-newerct` takes it."""
    seconds, nanoseconds = divmod(max(since_ns, 0), 1_000_000_000)
    return f"@{seconds}.{nanoseconds:09d}"


# The two halves of plugins/ that two finds list side by side, by the folder's first
# character (names are lower case; anything else falls in the second half).
_HALVES = ("[a-l]", "[!a-l]")


def find_changed_folders(index: Path, since_ns: int) -> Finding:
    """Start listing the entries under plugins/ whose ctime is after `since_ns`.

    The repository-local artifacts (`plugins/<name>/artifacts/`) are content
    addressed by their version files: their folder is listed when an artifact comes
    or goes, and nothing inside it is looked at one by one.
    """
    newer = newer_than(since_ns)
    commands = []
    for other in _HALVES:  # each find leaves out one half
        command = ["find", PLUGINS_DIR, "-mindepth", "1", "(", "-path", f"{PLUGINS_DIR}/{other}*"]
        command += [")", "-prune", "-o", "(", "-regex", f"{PLUGINS_DIR}/[^/]*/{ARTIFACTS_DIR}"]
        command += ["-prune", "-newerct", newer, "-print0", ")", "-o"]
        command += ["-newerct", newer, "-print0"]
        commands.append(command)
    return Finding(commands, cwd=index)


def changed_folders(finding: Finding) -> set[str] | None:
    """Return the plugin folders holding an entry the finding listed, or None (unknown)."""
    listed = finding.output()
    if listed is None:
        return None
    prefix = os.fsencode(PLUGINS_DIR) + b"/"  # the finds ran in the index folder
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
    changed = changed_folders(finding)
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
