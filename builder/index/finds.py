"""Find what changed in a folder since a time, with `find -newerct`, while the build goes on.

A file's status change time (ctime) moves on every write, rename, permission or time
change, and the file system sets it (no tool can set it back), so the entries whose
ctime is later than the start of the last look are exactly what changed since.
`find` lists them in C, started early so it runs while the build loads its cache:
the index's plugin folders (`scan`) and the output (`on_disk`) are both looked at
this way, and a no-op build's check (`noop`) needs nothing else.
"""

from __future__ import annotations

import functools
import logging
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from builder.format.paths import PLUGINS_DIR

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

    def __init__(
        self,
        commands: list[list[str]],
        cwd: Path | None = None,
        *,
        inputs: list[bytes] | None = None,
        launched: int | None = None,
    ) -> None:
        """Start `commands`, each given its item of `inputs` (if any) on its stdin.

        `launched` is when the finds count as started, if earlier than now (before
        their start points were listed).
        """
        self.commands = commands
        # Nothing after this can be missed by these finds.
        self.launched = time.time_ns() if launched is None else launched
        # Changes after this are seen by the next build (recorded as its scan's start).
        self.started = self.launched - MARGIN_NS
        self.listed = 0  # entries the finds printed (known once read)
        self._processes: list[subprocess.Popen[bytes]] = []
        self._printed: bytes | None = None  # what they printed, once read
        self._early: list[bytes] = []  # read by `prints_anything`, by process
        try:
            for number, command in enumerate(commands):
                stdin = None if inputs is None else _readable(inputs[number])
                try:
                    self._processes.append(
                        subprocess.Popen(
                            command,
                            stdin=stdin,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            cwd=cwd,
                        )
                    )
                finally:
                    if stdin is not None:
                        stdin.close()
        except OSError as e:
            log.debug("%s: %s (everything is walked)", commands[0][0], e)
            self.stop()

    @classmethod
    def given(cls, listed: bytes, *, launched: int) -> Finding:
        """Return a finding that starts no find and lists `listed` (NUL-terminated)."""
        finding = cls([], launched=launched)
        finding._printed = listed
        finding.listed = listed.count(b"\0")
        return finding

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
        if self._printed is not None:  # read already, or told (`told_changes`)
            return bool(self._printed)
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


# Without `-files0-from` (findutils before 4.9), two finds split plugins/ by the
# first character of a folder's name (names are lower case; anything else falls in
# the second half).
_HALVES = ("[a-l]", "[!a-l]")


def find_changed_folders(index: Path, since_ns: int) -> Finding:
    """Start listing the entries under plugins/ whose ctime is after `since_ns`.

    The repository-local artifacts (`plugins/<name>/artifacts/`) are content
    addressed by their version files: their folder is listed when an artifact comes
    or goes, and nothing inside it is looked at one by one.
    """
    launched = time.time_ns()  # before the plugin folders are listed
    newer = newer_than(since_ns)
    # `-name` first: the paths are compared only for the entries so named. A pattern's
    # `*` takes slashes too, so the second `-path` keeps a folder of that name deeper
    # in a plugin folder (a README's images) looked at like any other.
    at_top = ["-name", ARTIFACTS_DIR, "-path", f"{PLUGINS_DIR}/*/{ARTIFACTS_DIR}"]
    at_top += ["!", "-path", f"{PLUGINS_DIR}/*/*/{ARTIFACTS_DIR}"]
    expression = ["(", *at_top, "-prune", "-newerct", newer, "-print0", ")"]
    expression += ["-o", "-newerct", newer, "-print0"]
    halves = _plugin_folders_halved(index) if _takes_start_points() else None
    if halves is not None:
        command = ["find", "-files0-from", "-", *expression]
        return Finding([command, command], cwd=index, inputs=halves, launched=launched)
    commands = []
    for other in _HALVES:  # each find leaves out one half
        command = ["find", PLUGINS_DIR, "-mindepth", "1", "(", "-path", f"{PLUGINS_DIR}/{other}*"]
        commands.append([*command, ")", "-prune", "-o", *expression])
    return Finding(commands, cwd=index, launched=launched)


def _plugin_folders_halved(index: Path) -> list[bytes] | None:
    """Return the index's plugin folders in two halves, as `find -files0-from` reads
    them (None: plugins/ cannot be listed; the finds then fail, as they would).

    Given as start points, they need no pattern to split plugins/ between two finds,
    which would be matched against every entry. The halves are as the folder lists
    them, unsorted: any split of as many folders does.
    """
    try:
        names = os.listdir(os.fsencode(index / PLUGINS_DIR))  # noqa: PTH208 - 150,000 names
    except OSError:
        return None
    prefix = os.fsencode(PLUGINS_DIR) + b"/"
    middle = len(names) // 2
    return [
        b"".join(prefix + name + b"\0" for name in half)
        for half in (names[:middle], names[middle:])
    ]


def _takes_start_points() -> bool:
    """Return whether this system's `find` reads its start points from a file."""
    return _reads_start_points(shutil.which("find"))


@functools.cache
def _reads_start_points(program: str | None) -> bool:
    """Return whether `program` takes `-files0-from` (findutils 4.9 and later)."""
    if program is None:
        return False
    try:
        probe = subprocess.run(
            [program, "-files0-from", os.devnull, "-prune"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_FIND_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _readable(data: bytes) -> IO[bytes]:
    """Return a file holding `data`, read from its start (a pipe would block the
    writer until the reader had taken nearly all of it)."""
    file = tempfile.TemporaryFile()  # noqa: SIM115 - closed once the process has it
    file.write(data)
    file.seek(0)
    return file


def told_listing(index: Path, paths: Iterable[str]) -> bytes:
    """Return the `paths` under the index's plugins/ as its finds print them.

    Each path is taken from the current folder (as `git diff --name-only` prints them
    in the repository's top folder) or is absolute; a path outside plugins/ is left
    out: the index's other files are looked at by every build anyway.
    """
    plugins = index / PLUGINS_DIR
    roots = {os.path.abspath(plugins), os.path.realpath(plugins)}  # noqa: PTH100 - a symlinked index
    listed = []
    for path in paths:
        if not path.strip():
            continue
        inside = _inside(path, roots)
        if inside is not None:
            listed.append(os.fsencode(f"{PLUGINS_DIR}/{inside}") + b"\0")
        elif not Path(path).parent.exists():
            # Outside plugins/, in no folder here: most likely named from another folder.
            log.warning(
                "%s: a changed path outside %s, in no folder here (run from the folder "
                "the paths are named from: git's top folder for `git diff`)",
                path,
                plugins,
            )
    return b"".join(listed)


def _inside(path: str, roots: set[str]) -> str | None:
    """Return `path` relative to the one of `roots` it is in, or None.

    The path is taken as given, then with its folder's links resolved (not its own: a
    link in plugins/ is the change, and it may be gone).
    """
    given = os.path.abspath(path)  # noqa: PTH100 - strings, as given
    inside = _relative_inside(given, roots)
    if inside is None:
        folder, name = os.path.split(given)
        inside = _relative_inside(os.path.join(os.path.realpath(folder), name), roots)  # noqa: PTH118
    return inside


def _relative_inside(path: str, roots: set[str]) -> str | None:
    for root in roots:
        inside = os.path.relpath(path, root)
        if inside != os.curdir and inside.split(os.sep, 1)[0] != os.pardir:
            return inside
    return None


def told_changes(listed: bytes, since_ns: int) -> Finding:
    """Return a finding that lists `listed` (see `told_listing`) and starts no find.

    The caller says what changed since the last build, and the build believes it, so
    it counts as having looked no later than `since_ns`, the last look that saw
    everything: a build that looks again (one not told) still lists every change
    since then, any the caller left out among them.
    """
    return Finding.given(listed, launched=since_ns + MARGIN_NS)


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
