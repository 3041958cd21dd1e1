"""Render the pages of one build: in this process, or shared with a worker on another core.

A cold build renders two files per plugin (its page and its feed), about a third
of the site's cost beside the writes. The jobs are plain, picklable tuples; a
worker process (spawned, as the signature verifier's) renders chunks taken from the
end of the list while this process renders from the front, so the split follows
whichever core is less busy and a loaded machine costs no more than one core
would. Both processes render with the same templates, assets and settings, and
every page depends only on its job, so the bytes do not depend on who rendered it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, wait
from pathlib import Path
from typing import Any, NamedTuple

import jinja2

from builder.common.worker_processes import worker_pool
from builder.format.models import RegistryConfig
from builder.index.output import prestage
from builder.index.stages import DocumentFile, read_document
from builder.site import context as ctx
from builder.site.readme import load_readme
from builder.site.render import make_environment, render
from builder.site.resources import Asset

log = logging.getLogger(__name__)

# Below this many jobs, starting a worker (about half a second of imports on the
# other core) costs more than it saves.
JOBS_BEFORE_WORKER = 400
CHUNK = 64  # jobs per hand-over: small enough that neither process waits long at the end
IN_FLIGHT = 4  # chunks the worker holds at once (one rendering, the others queued)
# While both render, this process's thread that hands chunks over needs the GIL
# within a fraction of a chunk; at the default 5 ms interval, the rendering thread
# kept it so long that the worker sat idle three quarters of the time.
HAND_OVER_INTERVAL = 0.0001  # seconds


class Setup(NamedTuple):
    """What a process needs to render pages exactly as every other process does."""

    templates: Path
    assets: Mapping[str, Asset]
    registry: RegistryConfig
    ahead: str | None = None  # write rendered pages ahead here (see `Written`)


class PageJob(NamedTuple):
    """A page or feed whose context is already made."""

    path: str
    template: str
    values: dict[str, Any]


class PluginJob(NamedTuple):
    """A plugin page: made from its JSON document, README and users."""

    path: str
    document: bytes | DocumentFile  # read by the process that renders the page
    folder: str  # the plugin's folder in the index (its README and images)
    used: tuple[str, ...]


class VersionsJob(NamedTuple):
    """One of a plugin's versions pages: made from its JSON document.

    The pages of one plugin are consecutive jobs, so the renderer makes the contexts
    of all of them once, from the first (see `Renderer.job`).
    """

    path: str
    document: bytes | DocumentFile  # read by the process that renders the pages


class Written(NamedTuple):
    """A page written ahead into the build (`Setup.ahead`) by the process that rendered it.

    Writing is a third of a cold site's cost; done where the page is rendered, it is
    shared by both processes, and only the hash crosses between them.
    """

    sha256: str
    size: int


Content = bytes | Written


class PluginPage(NamedTuple):
    """A rendered plugin page and what the site remembers of the plugin."""

    content: Content
    licence: str
    readme: str | None  # the README's path in the plugin's folder, as the document names it
    files: dict[str, list[Any]]  # published README files: path -> [sha256, size]


Job = PageJob | PluginJob | VersionsJob
Result = Content | PluginPage


class Renderer:
    """Render jobs with one environment (see the module)."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.shared = 0  # jobs of the last `render_all` that a worker process rendered
        self.env: jinja2.Environment = make_environment(
            setup.templates, setup.assets, setup.registry
        )
        # The versions pages of the last document seen (see `VersionsJob`).
        self._versions: tuple[bytes | DocumentFile, dict[str, dict[str, Any]]] = (b"", {})

    def page(self, path: str, template: str, **values: Any) -> bytes:
        """Render one page or feed at `path` (its links start from its own folder)."""
        root = values.pop("root", None) or ctx.root_of(path)
        canonical = self.setup.registry.base_url + ctx.url_of(path)
        return render(self.env, template, root=root, canonical=canonical, **values)

    def written(self, path: str, content: bytes) -> Content:
        """Write a rendered page ahead, if the setup says where; return what to plan."""
        if self.setup.ahead is None:
            return content
        sha256 = hashlib.sha256(content).hexdigest()
        if not prestage(self.setup.ahead, path, sha256, content):
            return content  # the commit writes it, and reports what goes wrong
        return Written(sha256, len(content))

    def job(self, job: Job) -> Result:
        """Render one job."""
        if isinstance(job, PageJob):
            return self.written(job.path, self.page(job.path, job.template, **job.values))
        if isinstance(job, VersionsJob):
            if self._versions[0] != job.document:
                parsed = json.loads(read_document(job.document))
                self._versions = (job.document, ctx.versions_contexts(parsed))
            content = self.page(job.path, "versions.html", page=self._versions[1][job.path])
            return self.written(job.path, content)
        document = json.loads(read_document(job.document))
        readme, published = load_readme(Path(job.folder), document.get("readme"))
        files = {path: list(entry) for path, entry in published.items()}
        raw = document.get("readme") if files else None
        page = ctx.plugin_context(document, readme, raw, job.used, self.setup.registry)
        written = self.written(job.path, self.page(job.path, "plugin.html", page=page))
        return PluginPage(written, document["license"], document.get("readme"), files)

    def batch(self, jobs: Sequence[Job]) -> list[Result]:
        """Render a chunk of jobs, in order."""
        return [self.job(job) for job in jobs]


_RENDERER: Renderer | None = None  # the worker process's own renderer


def _start_worker(setup: Setup) -> None:
    global _RENDERER  # noqa: PLW0603 - one renderer per worker process, made once
    _RENDERER = Renderer(setup)


def _render_in_worker(jobs: Sequence[Job]) -> list[Result]:
    assert _RENDERER is not None
    return _RENDERER.batch(jobs)


@contextlib.contextmanager
def _quick_hand_overs() -> Iterator[None]:
    """Let the thread that hands chunks to the worker run soon (see HAND_OVER_INTERVAL)."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(HAND_OVER_INTERVAL)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def render_all(renderer: Renderer, jobs: Sequence[Job], *, worker: bool = True) -> list[Result]:
    """Render every job; return the results in the order of `jobs`.

    With `worker` and enough jobs, a worker process renders chunks from the end while
    this process renders from the front, until they meet.
    """
    renderer.shared = 0
    # One core: a worker would only add its start-up and the hand-overs.
    if not worker or len(jobs) < JOBS_BEFORE_WORKER or (os.cpu_count() or 1) < 2:
        return renderer.batch(jobs)
    results: list[Result | None] = [None] * len(jobs)
    chunks = [range(start, min(start + CHUNK, len(jobs))) for start in range(0, len(jobs), CHUNK)]
    front, back = 0, len(chunks)
    pool = worker_pool(1, _start_worker, (renderer.setup,))
    sent: dict[Future[list[Result]], range] = {}

    def place(chunk: range, rendered: Sequence[Result]) -> None:
        for index, result in zip(chunk, rendered, strict=True):
            results[index] = result

    try:
        with _quick_hand_overs():
            while front < back:
                while len(sent) < IN_FLIGHT and front < back:
                    back -= 1
                    work = [jobs[i] for i in chunks[back]]
                    sent[pool.submit(_render_in_worker, work)] = chunks[back]
                if front < back:
                    place(chunks[front], renderer.batch([jobs[i] for i in chunks[front]]))
                    front += 1
                for future in [future for future in sent if future.done()]:
                    place(sent.pop(future), future.result())
            for future in wait(sent).done:
                place(sent.pop(future), future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    renderer.shared = sum(len(chunk) for chunk in chunks[back:])
    log.debug("site: the worker rendered %d of %d pages", renderer.shared, len(jobs))
    done = [result for result in results if result is not None]
    assert len(done) == len(jobs)  # every chunk was rendered once, here or in the worker
    return done
