"""The site's plan: every page of a build, rendering only those whose inputs changed.

Each page has an input key: for a plugin page, its document's hash, its README's
files and who uses it; for a listing, the rows it shows; for all, the templates,
assets, site code and registry settings. The keys of the last build live in
`.plugindex/site.json`; a page whose key is unchanged (and whose file the last build
wrote) is kept without rendering, so a one-plugin change re-renders only its page,
the pages that list it, the feeds and the plugins whose "used by" changed. When no
plugin changed at all (same settings, same documents), the last build's files are
kept as they are, without making a single context. Plugin pages and feeds are
rendered last, together, so a large build can share them with a worker process
(`workers`).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from builder import FORMAT_VERSION, __version__
from builder.common.files import write_if_changed
from builder.index.facts import PluginFacts
from builder.index.output import Planned
from builder.index.stages import BuildView
from builder.site import context as ctx
from builder.site import feeds, listings
from builder.site.readme import load_readme
from builder.site.resources import Asset, load_assets, resource_dir
from builder.site.workers import (
    Content,
    Job,
    PageJob,
    PluginJob,
    PluginPage,
    Renderer,
    Setup,
    VersionsJob,
    Written,
    render_all,
)

log = logging.getLogger(__name__)

STATE_FILE = "site.json"
STATE_VERSION = 2
SITEMAP_LIMIT = 50_000  # URLs per sitemap file (the protocol's limit)
_CODE = Path(__file__).resolve().parent


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode("utf-8")).hexdigest()


def _tree_digest(folder: Path, pattern: str) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob(pattern)):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def load_state(state_dir: Path) -> dict[str, Any]:
    """Return the site's state of the last build, or an empty one."""
    try:
        state = json.loads((state_dir / STATE_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        return {}
    return state


def _listing_shape(context: Mapping[str, Any], facts: Mapping[str, PluginFacts]) -> object:
    """Return what a listing's key needs: its rows by document hash (a row is made from it).

    Hashing each row's text instead costs a fifth of a one-plugin rebuild's site.
    """
    rows = context.get("rows")
    if rows is None:
        return context
    return {**context, "rows": [facts[row.name].doc_sha256 for row in rows]}


class _Plan:
    """The files of one site build, kept or rendered, and the state they leave."""

    def __init__(self, view: BuildView, old: Mapping[str, Any], renderer: Renderer) -> None:
        self.view = view
        self.old_pages: Mapping[str, list[str]] = old.get("pages", {})
        self.renderer = renderer
        self.files: dict[str, Planned] = {}
        self.pages: dict[str, list[str]] = {}
        self.rendered: list[str] = []
        self.jobs: list[Job] = []  # pages to render together (see `workers`)
        self.keys: list[str] = []  # the key of each job's page ("" for a plugin page)

    def keep(self, path: str, key: str) -> bool:
        """Keep the last build's file at `path` if its key is unchanged; say if it was."""
        record = self.old_pages.get(path)
        if record is None or record[0] != key or self.view.previous.get(path) != record[1]:
            return False
        planned = self.view.unchanged(path)
        if planned is None:
            return False
        self.files[path] = planned
        self.pages[path] = record
        return True

    def add(self, path: str, key: str, content: Content) -> None:
        """Add a rendered file (or one its renderer wrote ahead)."""
        if isinstance(content, Written):
            sha256 = content.sha256
            self.files[path] = Planned(sha256, content.size, None)
            self.view.written_ahead[path] = sha256
        else:
            sha256 = hashlib.sha256(content).hexdigest()
            self.files[path] = Planned(sha256, len(content), content)
        self.pages[path] = [key, sha256]
        self.rendered.append(path)

    def page(self, path: str, key: str, template: str, **values: Any) -> None:
        """Add a page (or feed) rendered from `template` now, unless its key is unchanged."""
        if not self.keep(path, key):
            self.add(path, key, self.renderer.page(path, template, **values))

    def later(self, path: str, key: str, template: str, **values: Any) -> None:
        """Add a page like `page`, rendered with the other jobs by `render_jobs`."""
        if not self.keep(path, key):
            self.jobs.append(PageJob(path, template, values))
            self.keys.append(key)

    def adopt(self, name: str, folder: str, info: dict[str, Any]) -> None:
        """Publish a plugin's README files (copied from its folder in the index)."""
        if not info["files"]:
            return
        source = self.view.index / "plugins" / folder
        for path, (sha256, size) in info["files"].items():
            self.files[f"plugins/{name}/{path}"] = Planned(sha256, size, source / path)


def _kept_as_is(
    view: BuildView, old: Mapping[str, Any], assets: Mapping[str, Asset]
) -> dict[str, Planned] | None:
    """Return the last build's site files when every one is still in place, else None."""
    files = {a.path: Planned(a.sha256, len(a.content), a.content) for a in assets.values()}
    for path, record in old.get("pages", {}).items():
        planned = view.unchanged(path)
        if planned is None or planned.sha256 != record[1]:
            return None
        files[path] = planned
    plugins: Mapping[str, Any] = old.get("plugins", {})
    if plugins.keys() != view.facts.keys():
        return None
    for name, info in plugins.items():
        if info["files"]:  # most plugins have no README: no path to make for them
            source = view.index / "plugins" / view.facts[name].folder
            for path, (sha256, size) in info["files"].items():
                files[f"plugins/{name}/{path}"] = Planned(sha256, size, source / path)
    return files


class SitePlanner:
    """Plan the HTML site, its feeds and sitemap for one build (see `stage.SiteStage`)."""

    def __init__(self, *, worker: bool = True) -> None:
        self.worker = worker  # share a large render with a worker process (see `workers`)
        self._state: dict[str, Any] | None = None
        self._state_changed = False
        self.rendered: tuple[str, ...] = ()  # files the last plan rendered (not kept)
        self.shared = 0  # of those, rendered by a worker process

    def plan(self, view: BuildView) -> dict[str, Planned]:
        """Return every file of the site, rendering only what changed."""
        templates, site = resource_dir("templates"), resource_dir("site")
        assets = load_assets(site)
        registry = view.registry
        global_key = _digest(
            __version__,
            FORMAT_VERSION,
            STATE_VERSION,
            registry.model_dump_json(),
            _tree_digest(templates, "*"),
            _tree_digest(_CODE, "*.py"),
            sorted((a.name, a.sha256) for a in assets.values()),
            (SITEMAP_LIMIT, ctx.PER_PAGE, ctx.HOME_ROWS, ctx.FEED_ENTRIES),
            (ctx.RELEASE_ENTRIES, ctx.USED_BY_SHOWN, ctx.VERSIONS_SHOWN, ctx.VERSIONS_PER_PAGE),
        )
        # Every page is a function of the settings above and the plugins' documents.
        inputs = _digest(
            global_key, [(name, f.folder, f.doc_sha256) for name, f in sorted(view.facts.items())]
        )
        old = load_state(view.state_dir)
        if not view.changed_documents and old.get("inputs") == inputs:
            kept = _kept_as_is(view, old, assets)
            if kept is not None:
                self._state, self._state_changed = old, False
                self.rendered, self.shared = (), 0
                log.info("site: %d files, none changed", len(kept))
                return kept
        ahead = str(view.ahead) if view.ahead is not None else None
        renderer = Renderer(Setup(templates, assets, registry, ahead))
        plan = _Plan(view, old, renderer)
        for asset in assets.values():
            plan.files[asset.path] = Planned(asset.sha256, len(asset.content), asset.content)

        facts = view.facts
        rows = {name: ctx.row_of(p) for name, p in facts.items()}
        users = ctx.used_by(facts)
        plugins, pending = self._plan_plugins(view, plan, old.get("plugins", {}), users, global_key)
        home = ctx.home_context(registry, rows, facts)
        plan.later("index.html", _digest(global_key, home), "home.html", page=home)
        for path, (template, context) in listings.listing_contexts(registry, rows, facts).items():
            key = _digest(global_key, template, _listing_shape(context, facts))
            plan.later(path, key, template, page=context)
        search = ctx.search_context(registry, rows, facts)
        plan.later("search/index.html", _digest(global_key, search), "search.html", page=search)
        # The 404 page is served at any depth: its links start from the site's own path.
        plan.later(
            "404.html",
            _digest(global_key, "404"),
            "404.html",
            root=urlsplit(registry.base_url).path,
            page={},
        )
        for path, feed in feeds.global_feeds(registry, facts, rows).items():
            plan.later(path, _digest(global_key, feed), "feed.xml", feed=feed)
        self._render_jobs(plan, plugins, pending, global_key)
        # The stats count licences, which a plugin's document gives once it is read.
        licences = {name: info["licence"] for name, info in plugins.items()}
        stats = ctx.stats_context(registry, facts, licences)
        plan.page("stats/index.html", _digest(global_key, stats), "stats.html", page=stats)
        self._plan_crawlers(plan, global_key)
        self._state = {
            "version": STATE_VERSION,
            "inputs": inputs,
            "pages": plan.pages,
            "plugins": plugins,
        }
        self._state_changed = True
        self.rendered = tuple(plan.rendered)
        log.info("site: %d files, %d rendered", len(plan.files), len(plan.rendered))
        return plan.files

    def _plan_plugins(
        self,
        view: BuildView,
        plan: _Plan,
        known: Mapping[str, Any],
        users: Mapping[str, tuple[str, ...]],
        global_key: str,
    ) -> tuple[dict[str, Any], dict[str, tuple[PluginFacts, tuple[str, ...]]]]:
        """Plan every plugin's page, feed and README files.

        Return the state of the plugins known now, and the plugin pages left to
        render (by path), whose state comes with them.
        """
        plugins: dict[str, Any] = {}
        pending: dict[str, tuple[PluginFacts, tuple[str, ...]]] = {}
        for name, facts in sorted(view.facts.items()):
            info = known.get(name)
            used = users.get(name, ())
            path = ctx.plugin_path(name)
            same = isinstance(info, dict) and info.get("doc") == facts.doc_sha256
            if same and name in view.changed_documents and path in plan.old_pages:
                # Parsed again, the same document: only a README change re-renders it.
                self._plan_reparsed(view, plan, plugins, facts, used, global_key)
            elif same and name not in view.changed_documents:
                assert isinstance(info, dict)
                plugins[name] = info
                plan.adopt(name, facts.folder, info)
                if not plan.keep(path, _digest(global_key, facts.doc_sha256, info["files"], used)):
                    pending[path] = (facts, used)
            else:
                pending[path] = (facts, used)
            if path in pending:
                folder = str(view.index / "plugins" / facts.folder)
                plan.jobs.append(PluginJob(path, view.document_file(name), folder, used))
                plan.keys.append("")
            if len(used) > ctx.USED_BY_SHOWN:
                users_page = ctx.used_by_context(name, used)
                plan.later(
                    ctx.used_by_path(name),
                    _digest(global_key, users_page),
                    "used_by.html",
                    page=users_page,
                )
            self._plan_versions(view, plan, facts, global_key)
            feed_key = _digest(global_key, "feed", facts.doc_sha256)
            if not plan.keep(ctx.plugin_feed_path(name), feed_key):
                feed = feeds.plugin_feed(view.registry.base_url, facts)
                plan.later(ctx.plugin_feed_path(name), feed_key, "feed.xml", feed=feed)
        return plugins, pending

    @staticmethod
    def _plan_versions(view: BuildView, plan: _Plan, facts: PluginFacts, global_key: str) -> None:
        """Plan a plugin's versions pages, if it has more versions than its page shows."""
        count = ctx.versions_pages(facts.version_count)
        paths = [ctx.versions_path(facts.name, page) for page in range(1, count + 1)]
        keys = [_digest(global_key, "versions", facts.doc_sha256, path) for path in paths]
        # The document is read (and parsed, by the renderer) only for a page to render.
        document = None
        for path, key in zip(paths, keys, strict=True):
            if not plan.keep(path, key):
                document = document or view.document_file(facts.name)
                plan.jobs.append(VersionsJob(path, document))
                plan.keys.append(key)

    @staticmethod
    def _plan_reparsed(  # noqa: PLR0917 - the plan's own state, as `_plan_plugins` holds it
        view: BuildView,
        plan: _Plan,
        plugins: dict[str, Any],
        facts: PluginFacts,
        used: tuple[str, ...],
        global_key: str,
    ) -> None:
        """Plan the page of a plugin read again whose document is unchanged."""
        document = json.loads(view.document(facts.name))
        readme, files = load_readme(view.index / "plugins" / facts.folder, document.get("readme"))
        info = {
            "doc": facts.doc_sha256,
            "licence": document["license"],
            "readme": document.get("readme"),
            "files": {path: list(entry) for path, entry in files.items()},
        }
        plugins[facts.name] = info
        plan.adopt(facts.name, facts.folder, info)
        path = ctx.plugin_path(facts.name)
        key = _digest(global_key, facts.doc_sha256, info["files"], used)
        if not plan.keep(path, key):
            raw = info["readme"] if info["files"] else None
            page = ctx.plugin_context(document, readme, raw, used, view.registry)
            plan.add(path, key, plan.renderer.page(path, "plugin.html", page=page))

    def _render_jobs(
        self,
        plan: _Plan,
        plugins: dict[str, Any],
        pending: Mapping[str, tuple[PluginFacts, tuple[str, ...]]],
        global_key: str,
    ) -> None:
        """Render the plan's jobs and add their pages (and the plugins' state)."""
        results = render_all(plan.renderer, plan.jobs, worker=self.worker)
        self.shared = plan.renderer.shared
        for job, key, result in zip(plan.jobs, plan.keys, results, strict=True):
            if isinstance(result, PluginPage):
                facts, used = pending[job.path]
                info = {
                    "doc": facts.doc_sha256,
                    "licence": result.licence,
                    "readme": result.readme,
                    "files": result.files,
                }
                plugins[facts.name] = info
                plan.adopt(facts.name, facts.folder, info)
                page_key = _digest(global_key, facts.doc_sha256, info["files"], used)
                plan.add(job.path, page_key, result.content)
            else:
                plan.add(job.path, key, result)
        plan.jobs, plan.keys = [], []

    @staticmethod
    def _plan_crawlers(plan: _Plan, global_key: str) -> None:
        base = plan.view.registry.base_url
        urls = sorted(
            base + ctx.url_of(path)
            for path in plan.files
            if path.endswith(".html") and path not in ("404.html", "search/index.html")
        )
        chunks = [urls[i : i + SITEMAP_LIMIT] for i in range(0, len(urls), SITEMAP_LIMIT)] or [[]]
        if len(chunks) == 1:
            plan.page("sitemap.xml", _digest(global_key, urls), "sitemap.xml", urls=urls)
        else:
            parts = [f"sitemaps/sitemap-{n}.xml" for n in range(1, len(chunks) + 1)]
            for part, chunk in zip(parts, chunks, strict=True):
                plan.page(part, _digest(global_key, chunk), "sitemap.xml", urls=chunk)
            maps = [base + part for part in parts]
            plan.page("sitemap.xml", _digest(global_key, maps), "sitemap_index.xml", maps=maps)
        plan.page("robots.txt", _digest(global_key, "robots"), "robots.txt")

    def committed(self, view: BuildView) -> None:
        """Save the keys of the pages now in place, for the next build."""
        if self._state is None or not self._state_changed:
            return
        data = json.dumps(self._state, sort_keys=True, separators=(",", ":")).encode("utf-8")
        write_if_changed(view.state_dir / STATE_FILE, data)
