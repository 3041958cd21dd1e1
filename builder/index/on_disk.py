"""What the output folder holds, from the last build's record and what changed since.

After a build, the output holds exactly what it planned (path and size, recorded in
the cache). Anything done to the folder since (a file edited, removed or added, a
folder removed) moves the status change time (ctime) of the file or of its folder,
so `find -newerct` lists exactly the places to look at again; the rest is taken from
the record. Walking the whole output instead (50,000 files with the site, one stat
each) was the largest cost of a no-op build after the index's own walk.

Artifacts are never walked at all (they are named by their content; see
`builder.index.build`), and the builder's state folder is not published.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from builder.common.build_folder import STATE_DIR, files_on_disk
from builder.index import scan
from builder.index.output import files_outside

log = logging.getLogger(__name__)

ARTIFACTS = "artifacts"  # the top-level folder of content-addressed artifacts
_FIND_SECONDS = 600


def output_on_disk(
    out: Path, record: Mapping[str, int] | None, artifacts: Mapping[str, int], since_ns: int
) -> dict[str, int]:
    """Return what the output holds (path → size), looking only at what changed.

    `record` is every published path of the last build with its size, true of the
    folder at `since_ns` (0: unknown); `artifacts` the artifacts' sizes, trusted as
    they are. Without a record, the folder is walked (all but the artifacts).
    """
    changed = None if record is None or since_ns <= 0 else _changed_paths(out, since_ns)
    if record is None or changed is None:
        found = files_outside(out, skip=(ARTIFACTS,))
    else:
        found = dict(record)
        folders = sorted(p for p, is_folder in changed.items() if is_folder)
        for rel, is_folder in changed.items():
            if not is_folder:
                _look_at_file(out, rel, found)
        if folders:
            _look_at_folders(out, folders, found)
        log.debug("looked again at %d changed paths of the output", len(changed))
    found.update(artifacts)
    return found


def _changed_paths(out: Path, since_ns: int) -> dict[str, bool] | None:
    """Return the output's paths whose ctime is after `since_ns` (less the margin).

    Each maps to whether it is a folder; None when `find` cannot tell.
    """
    seconds, nanoseconds = divmod(max(since_ns - scan.MARGIN_NS, 0), 1_000_000_000)
    root = str(out)
    command = [
        "find",
        root,
        "(",
        "-path",
        f"{root}/{STATE_DIR}",
        "-o",
        "-path",
        f"{root}/{ARTIFACTS}",
        ")",
        "-prune",
        "-o",
        "-newerct",
        f"@{seconds}.{nanoseconds:09d}",
        "-printf",
        r"%y %P\0",
    ]
    try:
        done = subprocess.run(command, capture_output=True, timeout=_FIND_SECONDS, check=False)
    except (OSError, subprocess.SubprocessError) as e:
        log.debug("walking the output: %s", e)
        return None
    if done.returncode != 0:
        log.debug("walking the output: find said %r", done.stderr[:200])
        return None
    changed: dict[str, bool] = {}
    for item in done.stdout.split(b"\0"):
        if item:  # "d " and the path under `out` ("" for `out` itself)
            changed[os.fsdecode(item[2:])] = item[:1] == b"d"
    return changed


def _look_at_file(out: Path, rel: str, found: dict[str, int]) -> None:
    """Take one changed file's size as it is now (gone: not there)."""
    try:
        info = (out / rel).lstat()
    except OSError:
        found.pop(rel, None)
        return
    found[rel] = info.st_size


def _look_at_folders(out: Path, folders: list[str], found: dict[str, int]) -> None:
    """List changed folders again: entries removed, added, or now of another kind."""
    inside: dict[str, set[str]] = {}  # folder -> names of the recorded entries in it
    for path in found:
        parent, _, name = path.rpartition("/")
        while True:
            inside.setdefault(parent, set()).add(name)
            if not parent:
                break
            parent, _, name = parent.rpartition("/")
    for folder in folders:
        prefix = f"{folder}/" if folder else ""
        try:
            entries = {e.name: e for e in os.scandir(out / folder)}
        except OSError:  # removed, or no longer a folder: nothing under it is there
            entries = {}
        if not folder:  # the top: neither the builder's state nor the artifacts
            entries.pop(STATE_DIR, None)
            entries.pop(ARTIFACTS, None)
        for name in inside.get(folder, set()) - entries.keys():
            _forget(found, prefix + name)
        for name, entry in entries.items():
            rel = prefix + name
            if entry.is_dir(follow_symlinks=False):
                if rel not in inside:  # a new folder, or a file turned into one
                    found.pop(rel, None)
                    below = files_on_disk(out / rel)
                    found.update({f"{rel}/{sub}": size for sub, size in below.items()})
            elif rel not in found or rel in inside:  # a new file, or a folder turned into one
                _forget(found, rel)
                found[rel] = entry.stat(follow_symlinks=False).st_size


def _forget(found: dict[str, int], rel: str) -> None:
    """Drop a path, and everything under it when it was a folder."""
    found.pop(rel, None)
    prefix = f"{rel}/"
    for path in [p for p in found if p.startswith(prefix)]:
        del found[path]
