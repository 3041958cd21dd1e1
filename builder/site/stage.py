"""The site as a build stage: the HTML site, its feeds and sitemap.

The stage is made before the build knows whether it has work, and says what it reads
(`fingerprint`) for the no-op check; the planning and rendering (`planning`, with
Jinja2, markdown-it and the models) are imported only when the build plans.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from builder.common.file_stats import tree_stats
from builder.site.resources import resource_dir

if TYPE_CHECKING:
    from builder.index.output import Planned
    from builder.index.stages import BuildView
    from builder.site.planning import SitePlanner


class SiteStage:
    """Add the HTML site, its feeds and sitemap to a build."""

    name = "site"

    def __init__(self, *, worker: bool = True) -> None:
        self.worker = worker  # share a large render with a worker process (see `workers`)
        self.rendered: tuple[str, ...] = ()  # files the last plan rendered (not kept)
        self.shared = 0  # of those, rendered by a worker process
        self._planner: SitePlanner | None = None

    def plan(self, view: BuildView) -> dict[str, Planned]:
        """Return every file of the site, rendering only what changed."""
        from builder.site.planning import SitePlanner  # only a build with work plans

        if self._planner is None:  # one for the stage's life, as its state is
            self._planner = SitePlanner(worker=self.worker)
        self._planner.worker = self.worker
        files = self._planner.plan(view)
        self.rendered, self.shared = self._planner.rendered, self._planner.shared
        return files

    def fingerprint(self) -> str:
        """Return the stats of the templates and assets (the site's code is the builder's)."""
        folders = (resource_dir("templates"), resource_dir("site"))
        stats = repr(([tree_stats(folder) for folder in folders],))
        return hashlib.sha256(stats.encode("utf-8")).hexdigest()

    def committed(self, view: BuildView) -> None:
        """Save the keys of the pages now in place, for the next build."""
        if self._planner is not None:
            self._planner.committed(view)
