"""The build folder: what `build` leaves for `publish` to read, besides the published files.

Builder state lives under `STATE_DIR` inside the build folder and is never published
or served. `borrowed.json` there lists the artifacts a `build --live` took as already
published (and so did not write): `publish` checks that the store holds them.
`outputs.bin` lists every file the build wrote with its sha256 and size, so that
`publish` neither walks the folder (a mirrored registry holds one folder per
artifact) nor hashes a file it will not upload; it is a sharded record (see
`builder.common.sharded`), so a build that changed a few files rewrites a few parts.
The build removes it before it starts changing the folder and writes it once the
folder is complete, so a build stopped half-way leaves none.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from builder.common import sharded
from builder.common.errors import InvalidIndexError, Problem
from builder.common.sharded import Sharded

log = logging.getLogger(__name__)

STATE_DIR = ".plugindex"  # builder state inside the output; never published or served
BORROWED = "borrowed.json"
OUTPUTS = "outputs.bin"
_OUTPUTS_KEY = "plugindex build outputs 4"  # bump when the layout of the record changes


def files_on_disk(out: Path) -> dict[str, int]:
    """List every published file under `out` with its size (builder state excluded)."""
    found: dict[str, int] = {}
    for directory, dirs, files in os.walk(out):
        if directory == str(out):
            dirs[:] = [d for d in dirs if d != STATE_DIR]
        rel_dir = os.path.relpath(directory, out)
        for name in files:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}".replace(os.sep, "/")
            found[rel] = os.stat(os.path.join(directory, name)).st_size  # noqa: PTH116, PTH118
    return found


def write_borrowed(out: Path, paths: Iterable[str]) -> None:
    """Record which artifacts the build took as already published (none: no file)."""
    target = out / STATE_DIR / BORROWED
    listed = sorted(set(paths))
    if not listed:
        target.unlink(missing_ok=True)
        return
    partial = target.with_suffix(".part")
    partial.write_text(json.dumps(listed, indent=0) + "\n", encoding="utf-8")
    partial.replace(target)


def read_borrowed(build_dir: Path) -> list[str]:
    """Return the artifacts a build took as already published, or [] if none."""
    path = build_dir / STATE_DIR / BORROWED
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as e:
        raise InvalidIndexError(
            [Problem(path, None, "", f"unreadable ({e}); run the build again")]
        ) from e
    if not isinstance(listed, list) or not all(
        isinstance(p, str) and p.startswith("artifacts/") for p in listed
    ):
        raise InvalidIndexError(
            [Problem(path, None, "", "expected a list of artifacts/… paths; run the build again")]
        )
    return listed


# The record keeps the artifacts in the first half of its parts and every other file
# in the second: a build takes the artifacts' sizes (about nine in ten entries) apart
# from the rest a part at a time, without looking at each path.
_HALF = sharded.PARTS // 2
ARTIFACT_PARTS = range(_HALF)
OTHER_PARTS = range(_HALF, sharded.PARTS)
_ARTIFACT_PREFIX = "artifacts/"


def _record_part(path: str) -> int:
    first = ARTIFACT_PARTS.start if path.startswith(_ARTIFACT_PREFIX) else OTHER_PARTS.start
    return first + zlib.crc32(path.encode()) % _HALF


def write_outputs(out: Path, outputs: Iterable[tuple[str, tuple[str, int]]]) -> Sharded:
    """Record every file the build wrote, given as (path, (sha256, size)); return the record.

    An iterable, not a mapping: a cold build's record is made from its plan of 1.6
    million files at 150,000 plugins, without a whole dict of them made first.
    """
    parts = sharded.split(outputs, _record_part)
    counts = tuple(len(part) for part in parts)
    return sharded.save(out / STATE_DIR / OUTPUTS, _OUTPUTS_KEY, counts, parts, None)


def update_outputs(
    out: Path, loaded: Sharded, changes: Mapping[str, tuple[str, int] | None]
) -> Sharded:
    """Record the build's files as `loaded` with `changes` made (None: no longer there).

    Only the parts the changes fall in are written (see `builder.common.sharded`).
    """
    parts = sharded.changed(loaded, changes, _record_part)
    # The record's header counts the entries of each part: how many files it holds
    # is known without reading the parts a build leaves unread.
    counts = tuple(loaded.header[i] if part is None else len(part) for i, part in enumerate(parts))
    return sharded.save(out / STATE_DIR / OUTPUTS, _OUTPUTS_KEY, counts, parts, loaded)


def forget_outputs(out: Path) -> None:
    """Remove the record of the build's files: the folder is about to change."""
    sharded.forget(out / STATE_DIR / OUTPUTS)


def has_outputs(out: Path) -> bool:
    """Return whether the build folder holds a record of its files."""
    return (out / STATE_DIR / OUTPUTS).is_file()


def load_outputs(build_dir: Path, *, artifacts_later: bool = False) -> Sharded | None:
    """Return the build's record of its files as stored (see `read_outputs`).

    With `artifacts_later`, the parts that hold the artifacts are read when first
    asked for (see `RecordColumn`).
    """
    path = build_dir / STATE_DIR / OUTPUTS
    later = ARTIFACT_PARTS if artifacts_later else range(0)
    try:
        record = sharded.load(path, _OUTPUTS_KEY, later=later)
    except OSError as e:
        log.warning("ignoring the unreadable record of the build's files %s: %s", path, e)
        return None
    if record is None:
        return None
    counts = record.header
    if not (type(counts) is tuple and len(counts) == sharded.PARTS):
        return None
    if not all(type(n) is int and n >= 0 for n in counts):
        return None
    return record


def recorded_artifacts(record: Sharded) -> int:
    """Return how many artifacts the record holds (read or not)."""
    return sum(record.header[i] for i in ARTIFACT_PARTS)


class RecordColumn(Mapping[str, Any]):
    """One column of the record (0: sha256, 1: size) by path, read a part at a time.

    The artifacts are nine in ten of a registry's files, and a rebuild looks up a
    few of them: the part holding an artifact is read the first time one of its
    paths is looked up. Every other file is in `others`, taken apart at once (None:
    only artifacts are in this column). Iterating reads every part.
    """

    def __init__(self, record: Sharded, column: int, others: dict[str, Any] | None) -> None:
        self._record = record
        self._column = column
        self._others = others if others is not None else {}
        self._count = recorded_artifacts(record) + (len(others) if others is not None else 0)

    def get(self, path: str, default: Any = None) -> Any:
        if not path.startswith(_ARTIFACT_PREFIX):
            return self._others.get(path, default)
        entry = self._record.part(_record_part(path)).get(path)
        return default if entry is None else entry[self._column]

    def __getitem__(self, path: str) -> Any:
        value = self.get(path, _MISSING)
        if value is _MISSING:
            raise KeyError(path)
        return value

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.get(path, _MISSING) is not _MISSING

    def __iter__(self) -> Iterator[str]:
        for i in ARTIFACT_PARTS:
            yield from self._record.part(i)
        yield from self._others

    def __len__(self) -> int:
        return self._count


_MISSING = object()


class OutputFiles(Mapping[str, int]):
    """What a build folder holds, path → size: the files looked at, and the artifacts.

    `files` holds what was looked at; `artifacts` the artifacts as recorded (a
    `RecordColumn`, read a part at a time: a build that carries them over looks up
    a few). Iterating reads every part. A build that looks up every artifact has
    them in a plain dict with the rest instead.
    """

    def __init__(self, files: dict[str, int], artifacts: Mapping[str, int]) -> None:
        self.files = files
        self.artifacts = artifacts

    def get(self, path: str, default: Any = None) -> Any:
        size = self.files.get(path)
        if size is None and path.startswith(_ARTIFACT_PREFIX):
            size = self.artifacts.get(path)
        return default if size is None else size

    def __getitem__(self, path: str) -> int:
        size = self.get(path)
        if size is None:
            raise KeyError(path)
        return int(size)

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and self.get(path) is not None

    def __iter__(self) -> Iterator[str]:
        yield from self.files
        yield from (path for path in self.artifacts if path not in self.files)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def read_outputs(build_dir: Path) -> dict[str, tuple[str, int]] | None:
    """Return the build's record of its files (path → (sha256, size)), or None if none.

    A record another plugindex version wrote, or one that cannot be read, counts as
    none: the caller then lists and hashes the files itself.
    """
    record = load_outputs(build_dir)
    return None if record is None else record.entries()
