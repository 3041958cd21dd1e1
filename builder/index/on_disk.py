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
from collections.abc import Mapping
from pathlib import Path

from builder.common.build_folder import STATE_DIR, OutputFiles, files_on_disk
from builder.index import finds
from builder.index.cache import BuildCache
from builder.index.finds import Finding, newer_than
from builder.index.output import files_outside

log = logging.getLogger(__name__)

ARTIFACTS = "artifacts"  # the top-level folder of content-addressed artifacts


def files_of_build(
    out: Path, cache: BuildCache, finding: Finding | None
) -> tuple[Mapping[str, int], frozenset[str] | None]:
    """Return what a build's output holds (path → size), from its record and the changes,
    and the files that may differ from the record (None: any, the folder was walked).

    Without a record (a first build, or one stopped while it moved files into place)
    the whole folder is walked, artifacts included.
    """
    if cache.outputs is None:
        return files_on_disk(out), None
    record = cache.files if cache.written > 0 else None
    return output_on_disk(out, record, cache.sizes, finding)


def find_changed_paths(out: Path, since_ns: int, margin_ns: int = finds.MARGIN_NS) -> Finding:
    """Start listing the output's paths whose ctime is after `since_ns` (less a margin)."""
    root = str(out)
    command = ["find", root, "(", "-path", f"{root}/{STATE_DIR}", "-o", "-path"]
    command += [f"{root}/{ARTIFACTS}", ")", "-prune", "-o"]
    command += ["-newerct", newer_than(since_ns - margin_ns), "-printf", r"%y %P\0"]
    return Finding([command])


def output_on_disk(
    out: Path,
    record: Mapping[str, int] | None,
    artifacts: Mapping[str, int],
    finding: Finding | None,
) -> tuple[Mapping[str, int], frozenset[str] | None]:
    """Return what the output holds (path → size), looking only at what changed, and
    the files found changed since the record (None: the folder was walked).

    `record` is every published path of the last build with its size, true of the
    folder when `finding` (`find_changed_paths`) started looking; `artifacts` the
    artifacts' sizes, trusted as they are: a plain dict is merged into the result
    (for a build that looks up every artifact), any other mapping is kept beside it
    (`OutputFiles`: read as looked up). Without a record or a finding, the folder
    is walked (all but the artifacts).
    """
    changed = None if record is None or finding is None else changed_paths(finding)
    touched: set[str] | None = None
    if record is None or changed is None:
        found = files_outside(out, skip=(ARTIFACTS,))
    else:
        found = dict(record)
        touched = set()
        folders = {p for p, is_folder in changed.items() if is_folder}
        for rel, is_folder in changed.items():
            if not is_folder:
                _look_at_file(out, rel, found, touched)
        if folders:
            _look_at_folders(out, folders, found, touched)
        log.debug("looked again at %d changed paths of the output", len(changed))
    looked_again = None if touched is None else frozenset(touched)
    if isinstance(artifacts, dict):
        found.update(artifacts)
        return found, looked_again
    return OutputFiles(found, artifacts), looked_again


def changed_paths(finding: Finding) -> dict[str, bool] | None:
    """Return the paths the finding listed, each mapped to whether it is a folder."""
    listed = finding.output()
    if listed is None:
        return None
    changed: dict[str, bool] = {}
    for item in listed.split(b"\0"):
        if item:  # "d " and the path under `out` ("" for `out` itself)
            changed[os.fsdecode(item[2:])] = item[:1] == b"d"
    return changed


def _look_at_file(out: Path, rel: str, found: dict[str, int], touched: set[str]) -> None:
    """Take one changed file's size as it is now (gone: not there)."""
    touched.add(rel)
    try:
        info = (out / rel).lstat()
    except OSError:
        found.pop(rel, None)
        return
    found[rel] = info.st_size


def _look_at_folders(
    out: Path, folders: set[str], found: dict[str, int], touched: set[str]
) -> None:
    """List changed folders again: entries removed, added, or now of another kind.

    Every path found anew or no longer there is added to `touched`."""
    # The recorded entries of each changed folder, and every recorded folder's name.
    inside: dict[str, set[str]] = {folder: set() for folder in folders}
    was_folder: set[str] = set()
    for path in found:
        parent, _, name = path.rpartition("/")
        if parent in inside:
            inside[parent].add(name)
        while parent and parent not in was_folder:
            was_folder.add(parent)
            parent, _, name = parent.rpartition("/")
            if parent in inside:
                inside[parent].add(name)
    for folder in sorted(folders):
        prefix = f"{folder}/" if folder else ""
        try:
            entries = {e.name: e for e in os.scandir(out / folder)}
        except OSError:  # removed, or no longer a folder: nothing under it is there
            entries = {}
        if not folder:  # the top: neither the builder's state nor the artifacts
            entries.pop(STATE_DIR, None)
            entries.pop(ARTIFACTS, None)
        for name in inside[folder] - entries.keys():
            _forget(found, prefix + name, touched)
        for name, entry in entries.items():
            rel = prefix + name
            if entry.is_dir(follow_symlinks=False):
                # A new folder, or a file turned into one (recorded as a file, while
                # a file looked at inside it made it a folder too).
                if rel not in was_folder or rel in found:
                    _forget(found, rel, touched)
                    below = files_on_disk(out / rel)
                    found.update({f"{rel}/{sub}": size for sub, size in below.items()})
                    touched.update(f"{rel}/{sub}" for sub in below)
            elif rel not in found or rel in was_folder:  # new, or a folder turned into a file
                _forget(found, rel, touched)
                found[rel] = entry.stat(follow_symlinks=False).st_size


def _forget(found: dict[str, int], rel: str, touched: set[str]) -> None:
    """Drop a path, and everything under it when it was a folder."""
    touched.add(rel)
    found.pop(rel, None)
    prefix = f"{rel}/"
    for path in [p for p in found if p.startswith(prefix)]:
        touched.add(path)
        del found[path]
