"""What changes whenever a file or folder changes: its inode, size, mtime and ctime.

Compared, not read: a build that must tell whether anything it read has changed since
(see `builder.index.noop`) needs no more than this of each file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

Stat = tuple[int, int, int, int]  # inode, size, mtime and ctime (ns)


def stat_of(path: str | Path) -> Stat | None:
    """Return what changes whenever a file or folder changes, or None if it is gone."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def tree_stats(root: Path, skip: Iterable[str] = (), suffix: str = "") -> list[tuple[str, Stat]]:
    """Return the stats under `root`, sorted, but the top-level `skip` and `__pycache__`.

    With `suffix`, only the files whose names end with it; else every file and folder.
    """
    found: list[tuple[str, Stat]] = []
    top, left_out = str(root), set(skip)
    for folder, folders, files in os.walk(root):
        at_top = folder == top
        folders[:] = [f for f in folders if f != "__pycache__" and not (at_top and f in left_out)]
        names = [f for f in files if not (at_top and f in left_out)]
        names = [f for f in names if f.endswith(suffix)] if suffix else [*folders, *names]
        for name in names:
            path = os.path.join(folder, name)  # noqa: PTH118 - str paths, one per entry
            stat = stat_of(path)
            if stat is not None:
                found.append((os.path.relpath(path, top), stat))
    return sorted(found)
