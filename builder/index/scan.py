"""Scan an index for a build: walk only the plugin folders that changed since the last.

Walking every file of the index (each one a stat call, and a Python object or four)
was most of a no-op build: about 200,000 files at 10,000 plugins. Only the plugin
folders holding an entry `finds` lists as changed since the last scan are walked
again; the others keep the listing the cache recorded.

Without `find`, a cache or a time of the last scan, everything is walked, as before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from builder.format.load import PluginFolder, Scan, scan_index
from builder.format.paths import PLUGINS_DIR
from builder.index.cache import BuildCache
from builder.index.finds import Finding, changed_folders, find_changed_folders

log = logging.getLogger(__name__)


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
