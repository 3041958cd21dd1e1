"""The site as a build stage: plan every page, render only those whose inputs changed.

Each page has an input key: for a plugin page, its document's hash, its README's
files and who uses it; for a listing, the rows it shows; for all, the templates,
assets, site code and registry settings. The keys of the last build live in
`.plugindex/site.json`; a page whose key is unchanged (and whose file the last build
wrote) is kept without rendering, so a one-plugin change re-renders only its page,
the pages that list it, the feeds and the plugins whose "used by" changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from builder import FORMAT_VERSION, __version__
from builder.common.files import write_atomic
from builder.index.facts import PluginFacts
from builder.index.output import Planned
from builder.index.stages import BuildView
from builder.site import context as ctx
from builder.site.readme import Readme, load_readme
from builder.site.render import make_environment, render
from builder.site.resources import load_assets, resource_dir

log = logging.getLogger(__name__)

STATE_FILE = "site.json"
STATE_VERSION = 1
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


class _Plan:
    """The files of one site build, kept or rendered, and the state they leave."""

    def __init__(self, view: BuildView, old: Mapping[str, Any], env: jinja2.Environment) -> None:
        self.view = view
        self.old_pages: Mapping[str, list[str]] = old.get("pages", {})
        self.env = env
        self.files: dict[str, Planned] = {}
        self.pages: dict[str, list[str]] = {}
        self.rendered: list[str] = []

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

    def add(self, path: str, key: str, content: bytes) -> None:
        """Add a rendered file."""
        sha256 = hashlib.sha256(content).hexdigest()
        self.files[path] = Planned(sha256, len(content), content)
        self.pages[path] = [key, sha256]
        self.rendered.append(path)

    def page(self, path: str, key: str, template: str, **values: Any) -> None:
        """Add a page (or feed) rendered from `template`, unless its key is unchanged."""
        if self.keep(path, key):
            return
        root = values.pop("root", None) or ctx.root_of(path)
        canonical = self.view.registry.base_url + ctx.url_of(path)
        self.add(path, key, render(self.env, template, root=root, canonical=canonical, **values))


class SiteStage:
    """Add the HTML site, its feeds and sitemap to a build."""

    name = "site"

    def __init__(self) -> None:
        self._state: dict[str, Any] | None = None
        self.rendered: tuple[str, ...] = ()  # files the last plan rendered (not kept)

    def plan(self, view: BuildView) -> dict[str, Planned]:
        """Return every file of the site, rendering only what changed."""
        templates, site = resource_dir("templates"), resource_dir("site")
        assets = load_assets(site)
        registry = view.registry
        env = make_environment(templates, assets, registry)
        global_key = _digest(
            __version__,
            FORMAT_VERSION,
            STATE_VERSION,
            registry.model_dump_json(),
            _tree_digest(templates, "*"),
            _tree_digest(_CODE, "*.py"),
            sorted((a.name, a.sha256) for a in assets.values()),
        )
        old = load_state(view.state_dir)
        plan = _Plan(view, old, env)
        for asset in assets.values():
            plan.files[asset.path] = Planned(asset.sha256, len(asset.content), asset.content)

        facts = view.facts
        rows = {name: ctx.row_of(p) for name, p in facts.items()}
        users = ctx.used_by(facts)
        plugins = self._plan_plugins(view, plan, old.get("plugins", {}), users, global_key)
        licences = {name: info["licence"] for name, info in plugins.items()}

        home = ctx.home_context(registry, rows, facts)
        plan.page("index.html", _digest(global_key, home), "home.html", page=home)
        for path, (template, context) in ctx.listing_contexts(registry, rows, facts).items():
            plan.page(path, _digest(global_key, template, context), template, page=context)
        stats = ctx.stats_context(registry, facts, licences)
        plan.page("stats/index.html", _digest(global_key, stats), "stats.html", page=stats)
        search = ctx.search_context(registry, rows, facts)
        plan.page("search/index.html", _digest(global_key, search), "search.html", page=search)
        # The 404 page is served at any depth: its links start from the site's own path.
        plan.page(
            "404.html",
            _digest(global_key, "404"),
            "404.html",
            root=urlsplit(registry.base_url).path,
            page={},
        )
        for path, feed in ctx.global_feeds(registry, facts, rows).items():
            plan.page(path, _digest(global_key, feed), "feed.xml", feed=feed)
        self._plan_crawlers(plan, global_key)
        self._state = {"version": STATE_VERSION, "pages": plan.pages, "plugins": plugins}
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
    ) -> dict[str, Any]:
        """Plan every plugin's page, feed and README files; return their new state."""
        plugins: dict[str, Any] = {}
        for name, facts in sorted(view.facts.items()):
            info = known.get(name)
            document: dict[str, Any] | None = None
            readme: Readme | None = None
            folder = view.index / "plugins" / facts.folder
            if (
                name in view.changed_documents
                or not isinstance(info, dict)
                or info.get("doc") != facts.doc_sha256
            ):
                document = json.loads(view.document(name))
                readme, files = load_readme(folder, document.get("readme"))
                info = {
                    "doc": facts.doc_sha256,
                    "licence": document["license"],
                    "readme": document.get("readme"),
                    "files": {path: list(entry) for path, entry in files.items()},
                }
            plugins[name] = info
            for path, (sha256, size) in info["files"].items():
                plan.files[f"plugins/{name}/{path}"] = Planned(sha256, size, folder / path)
            used = users.get(name, ())
            key = _digest(global_key, facts.doc_sha256, info["files"], used)
            path = ctx.plugin_path(name)
            if not plan.keep(path, key):
                if document is None:
                    document = json.loads(view.document(name))
                if readme is None:
                    readme, _ = load_readme(folder, document.get("readme"))
                page = ctx.plugin_context(
                    document, readme, info["readme"] if info["files"] else None, used, view.registry
                )
                plan.page(path, key, "plugin.html", page=page)
            if len(used) > ctx.USED_BY_SHOWN:
                users_page = ctx.used_by_context(name, used)
                plan.page(
                    ctx.used_by_path(name),
                    _digest(global_key, users_page),
                    "used_by.html",
                    page=users_page,
                )
            self._plan_feed(plan, view, facts, global_key)
        return plugins

    @staticmethod
    def _plan_feed(plan: _Plan, view: BuildView, facts: PluginFacts, global_key: str) -> None:
        path = ctx.plugin_feed_path(facts.name)
        key = _digest(global_key, "feed", facts.doc_sha256)
        if not plan.keep(path, key):
            feed = ctx.plugin_feed(view.registry.base_url, facts)
            plan.page(path, key, "feed.xml", feed=feed)

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
        if self._state is None:
            return
        data = json.dumps(self._state, sort_keys=True, separators=(",", ":")).encode("utf-8")
        target = view.state_dir / STATE_FILE
        try:
            if target.read_bytes() == data:
                return
        except OSError:
            pass
        write_atomic(target, data)
