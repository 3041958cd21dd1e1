"""Turn the build's plugin facts and documents into the plain shapes the templates show.

Templates only loop and branch; every value they print is computed here, and every
string an author wrote passes through `shown` first. Listings (`listings`) and feeds
(`feeds`) are built from facts alone (cheap on every build); a plugin page also reads
the plugin's JSON document.
"""

from __future__ import annotations

import heapq
import string
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any, NamedTuple

from builder.common import layout
from builder.format.models import RegistryConfig
from builder.index.facts import PluginFacts
from builder.index.render import category_counts, category_entries
from builder.site.readme import Readme, shown
from builder.trust.signing import key_id

PER_PAGE = layout.PAGE_SIZE  # plugins per listing page
HOME_ROWS = 10  # plugins in each list of the home page
FEED_ENTRIES = 50  # entries in a per-plugin feed and the new-plugins feed
RELEASE_ENTRIES = 100  # entries in the all-releases feed
LETTERS = string.ascii_lowercase  # every name starts with one of these
USED_BY_SHOWN = 30  # users named on a plugin page; all of them on its used-by page
# Non-yanked versions on a plugin page (with the yanked among them, the latest release
# and prerelease); every version is on its versions pages, VERSIONS_PER_PAGE a page.
# A row is 1-2 KB: ten keep a plugin page without README under 30 KB with the CSS.
VERSIONS_SHOWN = 10
VERSIONS_PER_PAGE = 100


class Row(NamedTuple):
    """A plugin as a listing shows it."""

    name: str
    display_name: str
    description: str
    version: str | None  # what users get by default; None when every version is yanked
    updated: str  # the newest non-yanked release date ("" when every version is yanked)
    first: str  # the first release date


def row_of(plugin: PluginFacts) -> Row:
    """Return the listing row of a plugin."""
    first, _, updated = plugin.released
    return Row(
        plugin.name,
        shown(plugin.display_name),
        shown(plugin.description),
        plugin.latest[0] if plugin.latest else None,
        updated,
        first,
    )


def root_of(path: str) -> str:
    """Return the relative path from the page at `path` to the site's root."""
    depth = path.count("/")
    return "../" * depth if depth else "./"


def url_of(path: str) -> str:
    """Return a page's path as linked: its folder for an index.html."""
    if path == "index.html":
        return ""
    return path.removesuffix("index.html")


def plugin_path(name: str) -> str:
    """Return the path of a plugin's page."""
    return f"plugins/{name}/index.html"


def plugin_feed_path(name: str) -> str:
    """Return the path of a plugin's Atom feed."""
    return f"plugins/{name}/feed.xml"


def used_by_path(name: str) -> str:
    """Return the path of the page listing every plugin that uses `name`."""
    return f"plugins/{name}/used-by/index.html"


def used_by_context(name: str, users: Sequence[str]) -> dict[str, Any]:
    """Return the context of a plugin's full "used by" page."""
    return {"name": name, "users": list(users)}


def versions_path(name: str, page: int) -> str:
    """Return the path of page `page` (from 1) of a plugin's versions."""
    return listing_path(f"plugins/{name}/versions", page)


def versions_pages(count: int) -> int:
    """Return how many versions pages a plugin with `count` versions has (0: none)."""
    return 0 if count <= VERSIONS_SHOWN else -(-count // VERSIONS_PER_PAGE)


def listing_path(folder: str, page: int) -> str:
    """Return the path of page `page` (from 1) of a paginated listing under `folder`."""
    return f"{folder}/index.html" if page == 1 else f"{folder}/{page}/index.html"


# --- listings -------------------------------------------------------------------------


def used_by(facts: Mapping[str, PluginFacts]) -> dict[str, tuple[str, ...]]:
    """Return, by plugin, the plugins some version of which names it as a dependency."""
    users: dict[str, list[str]] = defaultdict(list)
    for name in sorted(facts):
        for target in facts[name].depends_on:
            users[target].append(name)
    return {name: tuple(names) for name, names in users.items()}


def by_letter(rows: Iterable[Row]) -> dict[str, list[Row]]:
    """Group rows by the first letter of their name (every letter present, maybe empty)."""
    letters: dict[str, list[Row]] = {letter: [] for letter in LETTERS}
    for row in rows:
        letters.setdefault(row.name[0], []).append(row)
    return letters


def home_context(
    registry: RegistryConfig, rows: Mapping[str, Row], facts: Mapping[str, PluginFacts]
) -> dict[str, Any]:
    """Return the home page's context."""
    ordered = [rows[name] for name in sorted(rows)]
    recent = newest(HOME_ROWS, ordered, "updated")
    new = newest(HOME_ROWS, ordered, "first")
    return {
        "title": registry.title,
        "description": registry.description or "",
        "plugins": len(rows),
        "versions": sum(p.version_count for p in facts.values()),
        "recent": [r for r in recent if r.updated],
        "new": new,
        "categories": category_entries(registry, facts),
    }


def newest(count: int, ordered: Sequence[Row], field: str) -> list[Row]:
    """Return the `count` rows with the latest `field` date; ties keep their order.

    `nlargest` is stable like `sorted(reverse=True)`, so rows given in name order stay
    in name order among equal dates, and "" (no date) comes last.
    """
    return heapq.nlargest(count, ordered, key=attrgetter(field))


def search_context(
    registry: RegistryConfig, rows: Mapping[str, Row], facts: Mapping[str, PluginFacts]
) -> dict[str, Any]:
    """Return the search page's context: the fallback listings and the filters."""
    letters = by_letter(rows.values())
    counts = category_counts(registry, facts)
    engines = sorted({p.latest[2] for p in facts.values() if p.latest})
    return {
        "letters": [(letter, len(found)) for letter, found in sorted(letters.items())],
        "categories": [(c.slug, c.title, counts[c.slug]) for c in registry.categories],
        "engines": engines,
    }


def stats_context(
    registry: RegistryConfig, facts: Mapping[str, PluginFacts], licences: Mapping[str, str]
) -> dict[str, Any]:
    """Return the stats page's context: counts by category, engine, licence and month."""
    counts = category_counts(registry, facts)
    engines = Counter(p.latest[2] if p.latest else "(every version yanked)" for p in facts.values())
    by_licence = Counter(shown(licences.get(name, "")) or "(unknown)" for name in facts)
    months: Counter[str] = Counter()
    for plugin in facts.values():
        months.update(dict(plugin.months_released()))
    return {
        "plugins": len(facts),
        "versions": sum(p.version_count for p in facts.values()),
        "yanked": sum(p.yanked for p in facts.values()),
        "categories": _bars([(c.title, counts[c.slug]) for c in registry.categories]),
        "engines": _bars(sorted(engines.items(), key=lambda kv: (-kv[1], kv[0]))),
        "licences": _bars(sorted(by_licence.items(), key=lambda kv: (-kv[1], kv[0]))),
        "months": _bars(sorted(months.items(), reverse=True)),
    }


def _bars(items: Sequence[tuple[str, int]]) -> dict[str, Any]:
    return {"rows": list(items), "max": max((count for _, count in items), default=0) or 1}


# --- plugin pages ---------------------------------------------------------------------


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024 or unit == "MiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"  # pragma: no cover - the loop always returns


def _is_prerelease(version: str) -> bool:
    return "-" in version.split("+", 1)[0]


def plugin_context(
    document: Mapping[str, Any],
    readme: Readme,
    readme_path: str | None,
    users: Sequence[str],
    registry: RegistryConfig,
) -> dict[str, Any]:
    """Return a plugin page's context from its JSON document and rendered README."""
    name = str(document["name"])
    root = root_of(plugin_path(name))
    titles = {c.slug: c.title for c in registry.categories}
    latest = _latest_version(document["versions"])
    versions = [_version_context(name, v, root, latest) for v in reversed(document["versions"])]
    more = versions_pages(len(versions)) > 0
    return {
        "name": name,
        "display_name": shown(document["display_name"]),
        "description": shown(document["description"]),
        "license": shown(document["license"]),
        "homepage": document.get("homepage"),
        "repository": document.get("repository"),
        "authors": [
            {"name": shown(a["name"]), "email": a.get("email")} for a in document["authors"]
        ],
        "owners": [
            {
                "github": o["github"],
                "keys": [key_id(k) for k in o["keys"]],
                "retired": [key_id(k) for k in o.get("retired_keys", [])],
            }
            for o in document["owners"]
        ],
        "categories": [(slug, titles.get(slug, slug)) for slug in document["categories"]],
        "keywords": list(document["keywords"]),
        "latest": latest,
        "install": f"plugindex install {name}" if latest else None,
        "versions": _newest_of(versions) if more else versions,
        "versions_total": len(versions),
        "versions_page": "versions/" if more else None,
        "peers": "../",  # from this page to the other plugins' pages
        "yanked_count": sum(1 for v in versions if v["yanked"] is not None),
        "used_by": list(users[:USED_BY_SHOWN]),
        "used_by_total": len(users),
        "used_by_page": "used-by/" if len(users) > USED_BY_SHOWN else None,
        "json": root + layout.index_path(name),
        "readme": readme.html,
        "readme_too_large": readme.too_large,
        "readme_raw": readme_path,
    }


def _newest_of(versions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the rows a plugin page shows, newest first (see VERSIONS_SHOWN)."""
    shown_rows: list[dict[str, Any]] = []
    releases = 0
    for v in versions:
        if releases == VERSIONS_SHOWN:
            break
        shown_rows.append(v)
        releases += v["yanked"] is None
    # The latest release and the latest prerelease are always on the page, however old.
    wanted = [v for v in versions if v["latest"]]
    wanted += [v for v in versions if v["prerelease"] and v["yanked"] is None][:1]
    extra = [v for v in wanted if all(v is not s for s in shown_rows)]
    if not extra:
        return shown_rows
    order = {id(v): i for i, v in enumerate(versions)}
    return sorted([*shown_rows, *extra], key=lambda v: order[id(v)])


def versions_contexts(document: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the contexts of a plugin's versions pages (every version), by path."""
    name = str(document["name"])
    latest = _latest_version(document["versions"])
    newest_first = list(reversed(document["versions"]))
    pages = versions_pages(len(newest_first))
    result: dict[str, dict[str, Any]] = {}
    for page in range(1, pages + 1):
        path = versions_path(name, page)
        root = root_of(path)
        start = (page - 1) * VERSIONS_PER_PAGE
        chunk = newest_first[start : start + VERSIONS_PER_PAGE]
        result[path] = {
            "name": name,
            "display_name": shown(document["display_name"]),
            "plugin": root + url_of(plugin_path(name)),
            "peers": root + "plugins/",
            "versions": [_version_context(name, v, root, latest) for v in chunk],
            "total": len(newest_first),
            "yanked_count": sum(1 for v in newest_first if v.get("yanked")),
            "page": page,
            "pages": pages,
            "first": start + 1,
            "last": start + len(chunk),
            "previous": root + url_of(versions_path(name, page - 1)) if page > 1 else None,
            "next": root + url_of(versions_path(name, page + 1)) if page < pages else None,
        }
    return result


def _latest_version(versions: Sequence[Mapping[str, Any]]) -> str | None:
    """Return the newest non-yanked release, else prerelease, as the index picks it."""
    fallback = None
    for v in reversed(versions):
        if v["yanked"] is not None:
            continue
        if not _is_prerelease(v["version"]):
            return str(v["version"])
        fallback = fallback or str(v["version"])
    return fallback


def _version_context(
    name: str, v: Mapping[str, Any], root: str, latest: str | None
) -> dict[str, Any]:
    artifact = v["artifact"]
    yanked = v.get("yanked")
    signed = v.get("signed_by") or {}
    return {
        "version": v["version"],
        "anchor": "v-" + v["version"],
        "released": v["released"],
        "yanked": shown(yanked["reason"]) if yanked else None,
        "prerelease": _is_prerelease(v["version"]),
        "latest": v["version"] == latest,
        "engine": v["engine"],
        "host": v["compatibility"]["host"],
        "plugin_api": v["compatibility"]["plugin_api"],
        "formats": [
            (f["extension"], shown(f["description"]), f["mime_type"]) for f in v["formats"]
        ],
        "risk": v["compliance"]["risk_level"],
        "notes": shown(v["compliance"].get("notes") or ""),
        "signer": signed.get("owner"),
        "key_id": signed.get("key_id") or (v.get("signature") or {}).get("key_id"),
        "download": root + artifact["download"],
        "filename": artifact["filename"],
        "sha256": artifact["sha256"],
        "size": _size(int(artifact["size"])),
        "dependencies": [(d["name"], d["req"], d["kind"]) for d in v["dependencies"]],
        "install": None if yanked else f"plugindex install {name}@={v['version']}",
    }
