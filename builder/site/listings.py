"""The listing pages: A to Z, categories and keywords, paginated, with totals."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from builder.format.models import RegistryConfig
from builder.index.facts import PluginFacts
from builder.index.render import category_counts
from builder.site.context import (
    PER_PAGE,
    Row,
    by_letter,
    listing_path,
    root_of,
    url_of,
)


def listing_pages(
    folder: str, title: str, intro: str, rows: Sequence[Row], crumbs: Sequence[tuple[str, str]]
) -> dict[str, dict[str, Any]]:
    """Return the pages of one listing (rows in name order), by path."""
    pages = max(1, math.ceil(len(rows) / PER_PAGE))
    result: dict[str, dict[str, Any]] = {}
    for page in range(1, pages + 1):
        path = listing_path(folder, page)
        root = root_of(path)
        result[path] = {
            "title": title if page == 1 else f"{title} (page {page})",
            "heading": title,
            "intro": intro,
            "rows": list(rows[(page - 1) * PER_PAGE : page * PER_PAGE]),
            "total": len(rows),
            "page": page,
            "pages": pages,
            "first": (page - 1) * PER_PAGE + 1,
            "last": min(page * PER_PAGE, len(rows)),
            "previous": root + url_of(listing_path(folder, page - 1)) if page > 1 else None,
            "next": root + url_of(listing_path(folder, page + 1)) if page < pages else None,
            "crumbs": [(root + url_of(p), label) for p, label in crumbs],
        }
    return result


def listing_contexts(
    registry: RegistryConfig, rows: Mapping[str, Row], facts: Mapping[str, PluginFacts]
) -> dict[str, tuple[str, dict[str, Any]]]:
    """Return every listing page (A to Z, categories, keywords) as path -> (template, context)."""
    ordered = [rows[name] for name in sorted(rows)]
    pages: dict[str, tuple[str, dict[str, Any]]] = {}
    letters = by_letter(ordered)
    pages["browse/index.html"] = (
        "directory.html",
        {
            "title": "All plugins, A\u2013Z",
            "intro": f"{len(ordered)} plugins, by the first letter of their name.",
            "entries": [
                {"href": f"{letter}/", "label": letter.upper(), "count": len(letters[letter])}
                for letter in sorted(letters)
            ],
            "wide": False,
        },
    )
    browse = ("browse/index.html", "A\u2013Z")
    for letter, found in sorted(letters.items()):
        for path, context in listing_pages(
            f"browse/{letter}",
            f"Plugins starting with {letter.upper()}",
            f"{len(found)} of the {len(ordered)} plugins start with {letter.upper()}.",
            found,
            [browse],
        ).items():
            pages[path] = ("listing.html", context)
    counts = category_counts(registry, facts)
    pages["categories/index.html"] = (
        "directory.html",
        {
            "title": "Categories",
            "intro": f"{len(registry.categories)} categories.",
            "entries": [
                {
                    "href": f"{c.slug}/",
                    "label": c.title,
                    "count": counts[c.slug],
                    "description": c.description,
                }
                for c in registry.categories
            ],
            "wide": True,
        },
    )
    by_category: dict[str, list[Row]] = defaultdict(list)
    by_keyword: dict[str, list[Row]] = defaultdict(list)
    for row in ordered:
        plugin = facts[row.name]
        for slug in plugin.categories:
            by_category[slug].append(row)
        for keyword in plugin.keywords:
            by_keyword[keyword].append(row)
    crumb = ("categories/index.html", "Categories")
    for category in registry.categories:
        for path, context in listing_pages(
            f"categories/{category.slug}",
            category.title,
            category.description,
            by_category[category.slug],
            [crumb],
        ).items():
            pages[path] = ("listing.html", context)
    pages["keywords/index.html"] = (
        "directory.html",
        {
            "title": "Keywords",
            "intro": f"{len(by_keyword)} keywords.",
            "entries": [
                {"href": f"{keyword}/", "label": keyword, "count": len(found)}
                for keyword, found in sorted(by_keyword.items())
            ],
            "wide": False,
        },
    )
    crumb = ("keywords/index.html", "Keywords")
    for keyword, found in sorted(by_keyword.items()):
        for path, context in listing_pages(
            f"keywords/{keyword}",
            f"Keyword: {keyword}",
            f"{len(found)} plugins are tagged {keyword}.",
            found,
            [crumb],
        ).items():
            pages[path] = ("listing.html", context)
    return pages
