"""What changed in the index and in the output since the last build, being listed.

Both lists are made by `find` processes started before anything else, so that they
run while the build loads its cache (see `builder.index.scan` and `on_disk`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.index.cache import BuildCache
from builder.index.on_disk import find_changed_paths
from builder.index.scan import Finding, find_changed_folders


@dataclass(frozen=True)
class Changes:
    """The finds of what changed in the index and in the output (None: walk it)."""

    index: Finding | None
    output: Finding | None

    @classmethod
    def start(cls, index: Path, out: Path, cache: BuildCache) -> Changes:
        """Start listing what changed since the cache's scan and since its build."""
        in_index = None
        if cache.scanned > 0 and cache.plugins:
            in_index = find_changed_folders(index, cache.scanned)
        in_output = None
        if cache.outputs is not None and cache.written > 0:
            in_output = find_changed_paths(out, cache.written)
        return cls(in_index, in_output)

    def stop(self) -> None:
        """Stop what was not read (a build that failed first)."""
        for finding in (self.index, self.output):
            if finding is not None:
                finding.stop()
