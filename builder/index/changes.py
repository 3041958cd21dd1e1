"""What changed in the index and in the output since the last build, being listed.

Both lists are made by `find` processes started before anything else, so that they
run while the build loads its cache (see `builder.index.finds` and `on_disk`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from builder.index.cache import BuildCache
from builder.index.finds import Finding, find_changed_folders, told_changes
from builder.index.on_disk import find_changed_paths


@dataclass(frozen=True)
class Changes:
    """The finds of what changed in the index and in the output (None: walk it)."""

    index: Finding | None
    output: Finding | None

    @classmethod
    def start(
        cls,
        index: Path,
        out: Path,
        cache: BuildCache,
        *,
        running: tuple[Finding, Finding] | None = None,
        told: bytes | None = None,
    ) -> Changes:
        """Start listing what changed since the cache's scan and since its build.

        `running` are finds of the index and output already started by a no-op check
        (see `builder.index.noop`) from the cache's own build: they are taken over.
        `told` is what the caller says changed in the index (`finds.told_listing`):
        it stands for the index's finds.
        """
        in_index = None
        if cache.scanned > 0 and cache.plugins:
            if told is not None:  # from the cache's scan, not the no-op record's
                in_index = told_changes(told, cache.scanned)
            elif running:
                in_index = running[0]
            else:
                in_index = find_changed_folders(index, cache.scanned)
        elif running:
            running[0].stop()
        in_output = None
        if cache.outputs is not None and cache.written > 0:
            in_output = running[1] if running else find_changed_paths(out, cache.written)
        elif running:
            running[1].stop()
        return cls(in_index, in_output)

    def stop(self) -> None:
        """Stop what was not read (a build that failed first)."""
        for finding in (self.index, self.output):
            if finding is not None:
                finding.stop()
