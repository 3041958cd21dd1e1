"""A build that would change nothing, recognised in the time of its finds.

A no-op build of 10,000 plugins spent most of its second loading the cache and
planning 110,000 files again, only to find each one in place. A build whose output
is complete and which held nothing back also leaves a small record: a digest of
what it was built from besides the plugins (the builder's code, the stages'
inputs, the environment, the index's other files, the source commit), the cache it
left, and when it started looking. The next build starts the usual finds (`scan`,
`on_disk`) from those times. When the index lists nothing, the output lists only
the files the last build itself wrote (each exactly as it left it) and every input
is the same, the build is done: it writes nothing and reads nothing else (it says
again what the last build left unmirrored).

Otherwise the build runs as always and takes over the finds already running
(`Changes`): they list what changed since the last build looked, which is all its
cache needs. Why this holds:

- A change made after the last build started looking has a later ctime (the kernel
  sets it, from a clock at most a tick behind; `TICK_NS` leaves room), so the finds
  list it, or the record's stats of the index's other files differ.
- The record is removed when a build starts to change the output, so a build
  stopped half-way leaves none; it names the cache file it belongs to.
- File systems whose timestamps have whole seconds (FAT) get no record at all.
- As everywhere in the build, nothing else writes into the output while a build runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import marshal
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import builder
from builder import FORMAT_VERSION, __version__
from builder.common.build_folder import STATE_DIR
from builder.common.file_stats import Stat, stat_of, tree_stats
from builder.format.paths import PLUGINS_DIR
from builder.index.cache import CACHE_FILE
from builder.index.finds import Finding, find_changed_folders, told_changes
from builder.index.on_disk import changed_paths, find_changed_paths
from builder.index.stages import OutputStage

log = logging.getLogger(__name__)

RECORD_FILE = "noop.bin"
_RECORD_KEY = f"plugindex {__version__} format {FORMAT_VERSION} no-op 3"
# How far a file's ctime may lag behind a clock read before the change that set it:
# the kernel's clock for timestamps advances once a tick (1-10 ms).
TICK_NS = 50_000_000
# Environment variables a build reads: its time, and the signing keys (by digest only).
_ENVIRONMENT = ("SOURCE_DATE_EPOCH", "PLUGINDEX_")


def inputs_key(
    index: Path,
    source: object,
    environ: Mapping[str, str] | None,
    stages: Sequence[OutputStage],
    choices: object,
) -> str | None:
    """Return the digest of what a build reads besides its plugins and output folders.

    `source` is the commit and time, `choices` the build's options that change its
    files. None when a stage cannot tell what it reads (see `OutputStage.fingerprint`).
    """
    stage_inputs = []
    for stage in stages:
        fingerprint = stage.fingerprint()
        if fingerprint is None:
            return None
        stage_inputs.append((stage.name, fingerprint))
    variables = os.environ if environ is None else environ
    environment = sorted((k, v) for k, v in variables.items() if k.startswith(_ENVIRONMENT))
    code = Path(builder.__file__).resolve().parent
    parts = (
        _RECORD_KEY,
        str(index.resolve()),
        repr(source),
        hashlib.sha256(repr(environment).encode()).hexdigest(),  # no key kept in clear
        repr(choices),
        stage_inputs,
        tree_stats(code, suffix=".py"),
        tree_stats(index, (PLUGINS_DIR, ".git")),
        stat_of(index / PLUGINS_DIR),  # a plugin folder added or removed
    )
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


class Totals(NamedTuple):
    """What the build the record belongs to reported."""

    plugins: int
    versions: int
    files: int
    unmirrored: int  # remote artifacts left out (fetching disabled): said again each time


@dataclass(frozen=True)
class Record:
    inputs: str  # `inputs_key` of the build
    cache: Stat  # the cache file it left
    index_since: int  # ns since 1970: the finds list what changed after these
    output_since: int
    expected: dict[str, Stat]  # output paths changed since then by the build itself
    totals: Totals


def _record_path(out: Path) -> Path:
    return out / STATE_DIR / RECORD_FILE


def load(out: Path) -> Record | None:
    """Return the record the last build left in `out`, or None."""
    try:
        # Our own state file, never fetched from elsewhere; marshal builds no code.
        data = marshal.loads(_record_path(out).read_bytes())  # noqa: S302
        key, inputs, cache, index_since, output_since, expected, totals = data
        if key != _RECORD_KEY:
            return None
        return Record(inputs, cache, index_since, output_since, expected, Totals(*totals))
    except (OSError, ValueError, EOFError, TypeError):
        return None


def forget(out: Path) -> None:
    """Remove the record: called before a build changes the output."""
    _record_path(out).unlink(missing_ok=True)


def _fine_grained(*stats: Stat | None) -> bool:
    """Return whether these timestamps have sub-second parts (not a FAT-like clock)."""
    return any(s is not None and s[3] % 1_000_000_000 != 0 for s in stats)


def save(index: Path, out: Path, inputs: str, since: tuple[int, int], totals: Totals) -> None:
    """Leave the record of a build that just finished (or none, if it cannot be written).

    `since` is when it started looking at the index, and when the output last held
    what it planned (its commit, or when it started looking if it wrote nothing).
    The build is done either way: the record only spares the next one its work.
    """
    try:
        _save(index, out, inputs, since, totals)
    except OSError as e:
        log.debug("%s: no no-op record (%s)", out, e)
        with contextlib.suppress(OSError):
            forget(out)


def _save(index: Path, out: Path, inputs: str, since: tuple[int, int], totals: Totals) -> None:
    index_since, output_since = (moment - TICK_NS for moment in since)
    finding = find_changed_paths(out, output_since, margin_ns=0)
    listed = changed_paths(finding)
    cache = stat_of(out / STATE_DIR / CACHE_FILE)
    if listed is None or cache is None:
        forget(out)
        return
    expected = {}
    for listed_path in listed:
        stat = stat_of(out / listed_path)
        if stat is not None:
            expected[listed_path] = stat
    record = _record_path(out)
    temporary = record.with_suffix(".tmp")
    temporary.write_bytes(
        marshal.dumps(
            (_RECORD_KEY, inputs, cache, index_since, output_since, expected, tuple(totals))
        )
    )
    if not _fine_grained(stat_of(temporary), stat_of(index / PLUGINS_DIR), cache):
        log.debug("%s: timestamps of whole seconds: no no-op record", out)
        temporary.unlink()
        forget(out)
        return
    temporary.replace(record)


class Check:
    """The finds since the last build's record, and what they say."""

    def __init__(self, out: Path, record: Record, index: Finding, output: Finding) -> None:
        self.out = out
        self.record = record
        self.index = index
        self.output = output

    @classmethod
    def start(cls, index: Path, out: Path, inputs: str, told: bytes | None = None) -> Check | None:
        """Start the finds if the last build left a record of the same inputs, else None.

        `told` is what the caller says changed in the index (`finds.told_listing`),
        which stands for its finds.
        """
        record = load(out)
        if record is None or record.inputs != inputs:
            return None
        if stat_of(out / STATE_DIR / CACHE_FILE) != record.cache:
            return None  # the cache was removed or replaced since
        in_index = (
            find_changed_folders(index, record.index_since)
            if told is None
            else told_changes(told, record.index_since)
        )
        return cls(out, record, in_index, find_changed_paths(out, record.output_since, margin_ns=0))

    def nothing_changed(self) -> bool:
        """Wait for the finds; return whether the last build's output stands as it was.

        The first entry the index's finds print settles it (everything they print is
        under plugins/): a build with work to do need not wait for the rest.
        """
        if self.index.prints_anything():
            return False
        listed = changed_paths(self.output)
        if listed is None:
            return False
        expected = self.record.expected
        return all(
            path in expected and stat_of(self.out / path) == expected[path] for path in listed
        )

    def stop(self) -> None:
        """Stop the finds (a build that did not use them)."""
        self.index.stop()
        self.output.stop()
