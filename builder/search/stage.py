"""The search stage of a build: search/whoosh/ for the CLI, search/v1/ for the browser.

The stage is made before the build knows whether it has work; what it does
(`planning`, with Whoosh) is imported only when the build plans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from builder.index.output import Planned
    from builder.index.stages import BuildView
    from builder.search.planning import SearchPlanner
    from builder.search.shards import ShardLimits


class SearchStage:
    """Adds the search index and the browser shards to a build."""

    name = "search"

    def __init__(self, limits: ShardLimits | None = None) -> None:
        self.limits = limits  # None: the shards' defaults
        self.report: dict[str, Any] = {}  # what the last plan did (for -v and benchmarks)
        self._planner: SearchPlanner | None = None

    def plan(self, view: BuildView) -> dict[str, Planned]:
        """Return the search index's and the shards' files, updating what changed."""
        from builder.search.planning import SearchPlanner  # only a build with work plans

        if self._planner is None:  # one for the stage's life: it rolls back a failed build
            self._planner = SearchPlanner(self.limits)
        files = self._planner.plan(view)
        self.report = self._planner.report
        return files

    def fingerprint(self) -> str:
        """Return "": the search index is made from the analysed index alone."""
        return ""

    def committed(self, view: BuildView) -> None:
        """Save the state once the build's files are in place."""
        if self._planner is not None:
            self._planner.committed(view)
