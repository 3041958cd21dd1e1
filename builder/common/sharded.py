"""Sharded state: a large mapping kept as a small root naming the files of its parts.

A build changes a handful of entries of records that hold one entry per plugin or
per published file (a million and more at 150,000 plugins). Dumping and writing
such a record whole after every build cost more than the build's own work. Here a
record is a root file (a key, a small header, and the name of each part) and parts
in a folder beside it. Each part holds the entries whose keys hash to it and is
named by the digest of its bytes, so a save writes only the parts whose entries
differ from those it loaded, then replaces the root atomically, then removes the
parts no root names any more.

A reader that finds a root finds every part it names: a save stopped half-way
leaves the old root and its parts. Removing the root forgets the record at once
(the parts left are removed by the next save). Anything unexpected counts as no
record at all. Records are builder state, written and read only by plugindex, so
they are stored with `marshal` (plain values, no code).
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from builder.common.files import write_atomic

PARTS = 256  # parts of a record: at 1.6 million entries, about 6,000 each
_PARTS_SUFFIX = ".parts"  # the folder of a record's parts, beside its root


@dataclass(frozen=True)
class Sharded:
    """A record as loaded (or saved): its header and its parts, with their files."""

    header: Any
    parts: tuple[dict[str, Any], ...]  # entries by the part their key hashes to
    names: tuple[str, ...]  # the file of each part

    def entries(self) -> dict[str, Any]:
        """Return every entry of the record in one mapping."""
        merged: dict[str, Any] = {}
        for part in self.parts:
            merged.update(part)
        return merged


def by_hash(key: str) -> int:
    """Return the part of a key: a hash of it, the same in every process."""
    return zlib.crc32(key.encode()) % PARTS


def split(
    entries: Iterable[tuple[str, Any]], part_of: Callable[[str], int] = by_hash
) -> tuple[dict[str, Any], ...]:
    """Split entries into parts by `part_of` their keys (a record keeps to one rule)."""
    parts: tuple[dict[str, Any], ...] = tuple({} for _ in range(PARTS))
    for key, value in entries:
        parts[part_of(key)][key] = value
    return parts


def changed(
    loaded: Sharded, changes: Mapping[str, Any], part_of: Callable[[str], int] = by_hash
) -> tuple[dict[str, Any], ...]:
    """Return the parts of `loaded` with `changes` made (a value of None: no entry).

    The parts no change falls in are those of `loaded` (the same objects, so `save`
    knows them without comparing): this costs what the changes do, not the record.
    `part_of` is the rule the record was split by.
    """
    parts = list(loaded.parts)
    for key, value in changes.items():
        i = part_of(key)
        if parts[i] is loaded.parts[i]:
            parts[i] = dict(parts[i])  # copied once, before its first change
        if value is None:
            parts[i].pop(key, None)
        else:
            parts[i][key] = value
    return tuple(parts)


def parts_folder(root: Path) -> Path:
    return root.with_name(root.name + _PARTS_SUFFIX)


def load(root: Path, key: str) -> Sharded | None:
    """Return the record whose root is `root`, or None if there is none of this `key`.

    Raises OSError only when the root exists and cannot be read; a part that is
    missing or damaged makes the record count as none.
    """
    try:
        data = marshal.loads(root.read_bytes())  # noqa: S302 - our own state file
    except FileNotFoundError:
        return None
    except (ValueError, EOFError, TypeError):
        return None
    if not (type(data) is tuple and len(data) == 3 and data[0] == key):
        return None
    _, header, names = data
    if not (type(names) is tuple and len(names) == PARTS and all(type(n) is str for n in names)):
        return None
    folder = parts_folder(root)
    parts: list[dict[str, Any]] = []
    for name in names:
        try:
            part = marshal.loads((folder / name).read_bytes())  # noqa: S302
        except (OSError, ValueError, EOFError, TypeError):
            return None
        if type(part) is not dict:
            return None
        parts.append(part)
    return Sharded(header, tuple(parts), names)


def save(
    root: Path,
    key: str,
    header: Any,
    parts: tuple[dict[str, Any], ...],
    loaded: Sharded | None,
) -> Sharded:
    """Save a record (see `split`), writing only what differs from `loaded`; return it.

    `loaded` is the record as this process last loaded or saved it (None: write
    every part). Nothing is written when header and parts are those of `loaded` and
    its root is still there.
    """
    folder = parts_folder(root)
    names: list[str] = []
    wrote = False
    for i, part in enumerate(parts):
        same = loaded is not None and (part is loaded.parts[i] or part == loaded.parts[i])
        if same and loaded is not None and (folder / loaded.names[i]).is_file():
            names.append(loaded.names[i])
            continue
        data = marshal.dumps(part)
        name = hashlib.blake2b(data, digest_size=16).hexdigest() + ".bin"
        if not (folder / name).is_file():  # named by its bytes: one there is this one
            write_atomic(folder / name, data)
        names.append(name)
        wrote = True
    record = Sharded(header, parts, tuple(names))
    if not wrote and loaded is not None and loaded.header == header and root.is_file():
        return record
    write_atomic(root, marshal.dumps((key, header, record.names)))
    _remove_unnamed(folder, set(record.names))
    return record


def forget(root: Path) -> None:
    """Remove a record's root: the record is gone (its parts go with the next save)."""
    root.unlink(missing_ok=True)


def _remove_unnamed(folder: Path, named: set[str]) -> None:
    """Remove the parts (and temp files of stopped saves) the root does not name."""
    with os.scandir(folder) as entries:
        stale = [entry.path for entry in entries if entry.name not in named]
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # noqa: PTH108 - a path from scandir
