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
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from builder.common.errors import BuildError
from builder.common.files import write_atomic

PARTS = 256  # parts of a record: at 1.6 million entries, about 6,000 each
_PARTS_SUFFIX = ".parts"  # the folder of a record's parts, beside its root


class Sharded:
    """A record as loaded (or saved): its header and its parts, with their files.

    A part is read when first asked for (`part`): a build that looks up a few of a
    million entries reads the few parts that hold them. `load` reads every part but
    those it is told to leave for later.
    """

    def __init__(
        self,
        header: Any,
        parts: Sequence[dict[str, Any] | None],
        names: Sequence[str],
        folder: Path | None = None,
    ) -> None:
        self.header = header
        self.names = tuple(names)
        self._parts = list(parts)  # None: not read yet (from `folder`)
        self._folder = folder

    def part(self, i: int) -> dict[str, Any]:
        """Return part `i`, reading it now if it was left for later."""
        part = self._parts[i]
        if part is None:
            assert self._folder is not None, "a part left unread needs the record's folder"
            path = self._folder / self.names[i]
            part = _read_part(path)
            if part is None:  # present when the record was loaded: changed under the build
                raise BuildError(
                    f"{path}: a part of builder state is missing or damaged (expected "
                    f"the part its record names); remove {self._folder.parent} and build again"
                )
            self._parts[i] = part
        return part

    def read(self, i: int) -> dict[str, Any] | None:
        """Return part `i` if it has been read (None: left for later, unread)."""
        return self._parts[i]

    @property
    def parts(self) -> tuple[dict[str, Any], ...]:
        """Return every part, reading those left for later."""
        return tuple(self.part(i) for i in range(len(self._parts)))

    def entries(self) -> dict[str, Any]:
        """Return every entry of the record in one mapping."""
        merged: dict[str, Any] = {}
        for part in self.parts:
            merged.update(part)
        return merged

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sharded):
            return NotImplemented
        return (self.header, self.names, self.parts) == (other.header, other.names, other.parts)

    __hash__ = None  # type: ignore[assignment]  # mutable: parts are read in place


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
) -> tuple[dict[str, Any] | None, ...]:
    """Return the parts of `loaded` with `changes` made (a value of None: no entry).

    The parts no change falls in are those of `loaded` (the same objects, so `save`
    knows them without comparing; None for a part `loaded` left unread): this costs
    what the changes do, not the record. `part_of` is the rule the record was split by.
    """
    parts = [loaded.read(i) for i in range(len(loaded.names))]
    copies: dict[int, dict[str, Any]] = {}
    for key, value in changes.items():
        i = part_of(key)
        part = copies.get(i)
        if part is None:  # copied once, before its first change
            part = parts[i] = copies[i] = dict(loaded.part(i))
        if value is None:
            part.pop(key, None)
        else:
            part[key] = value
    return tuple(parts)


def parts_folder(root: Path) -> Path:
    return root.with_name(root.name + _PARTS_SUFFIX)


def load(root: Path, key: str, *, later: Container[int] = ()) -> Sharded | None:
    """Return the record whose root is `root`, or None if there is none of this `key`.

    Raises OSError only when the root exists and cannot be read; a part that is
    missing or damaged makes the record count as none. The parts `later` are read
    when asked for: here, only their files are looked for.
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
    if later:
        try:
            present = set(os.listdir(folder))  # noqa: PTH208 - names only
        except OSError:
            return None
        if not all(name in present for i, name in enumerate(names) if i in later):
            return None
    parts: list[dict[str, Any] | None] = []
    for i, name in enumerate(names):
        part = None if i in later else _read_part(folder / name)
        if part is None and i not in later:
            return None
        parts.append(part)
    return Sharded(header, parts, names, folder)


def _read_part(path: Path) -> dict[str, Any] | None:
    """Return a part as stored, or None when it is missing or not a part."""
    try:
        part = marshal.loads(path.read_bytes())  # noqa: S302 - our own state file
    except (OSError, ValueError, EOFError, TypeError):
        return None
    return part if type(part) is dict else None


def save(
    root: Path,
    key: str,
    header: Any,
    parts: Sequence[dict[str, Any] | None],
    loaded: Sharded | None,
) -> Sharded:
    """Save a record (see `split`), writing only what differs from `loaded`; return it.

    `loaded` is the record as this process last loaded or saved it (None: write
    every part); a part None is that part of `loaded`, unread (see `changed`).
    Nothing is written when header and parts are those of `loaded` and its root is
    still there.
    """
    folder = parts_folder(root)
    names: list[str] = []
    wrote = False
    for i, part in enumerate(parts):
        same = loaded is not None and (
            part is None or part is loaded.read(i) or part == loaded.part(i)
        )
        if same and loaded is not None and (folder / loaded.names[i]).is_file():
            names.append(loaded.names[i])
            continue
        # A part None is that of `loaded`, unread: its file is gone if we get here,
        # and reading it says so.
        whole = part if part is not None else cast("Sharded", loaded).part(i)
        data = marshal.dumps(whole)
        name = hashlib.blake2b(data, digest_size=16).hexdigest() + ".bin"
        if not (folder / name).is_file():  # named by its bytes: one there is this one
            write_atomic(folder / name, data)
        names.append(name)
        wrote = True
    as_loaded = [loaded.read(i) if p is None and loaded else p for i, p in enumerate(parts)]
    record = Sharded(header, as_loaded, names, folder)
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
