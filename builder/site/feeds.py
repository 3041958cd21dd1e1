"""Atom feeds: one per plugin, new plugins and all releases, dated by their entries."""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from builder.format.models import RegistryConfig
from builder.index.facts import PluginFacts
from builder.site.context import (
    FEED_ENTRIES,
    RELEASE_ENTRIES,
    Row,
    newest,
    plugin_feed_path,
    plugin_path,
    url_of,
)
from builder.site.readme import shown


class Entry(NamedTuple):
    """One entry of an Atom feed."""

    title: str
    link: str  # absolute
    updated: str  # RFC 3339
    summary: str


def _moment(date: str) -> str:
    return f"{date}T00:00:00Z"


def feed_context(
    title: str, base_url: str, path: str, alternate: str, entries: Sequence[Entry]
) -> dict[str, Any]:
    """Return an Atom feed's context; it is as new as its newest entry (never the clock)."""
    return {
        "title": title,
        "id": base_url + path,
        "self": base_url + path,
        "alternate": base_url + alternate,
        "updated": max((e.updated for e in entries), default="1970-01-01T00:00:00Z"),
        "entries": list(entries),
    }


def plugin_feed(base_url: str, plugin: PluginFacts) -> dict[str, Any]:
    """Return the feed of one plugin's releases, newest first."""
    page = base_url + url_of(plugin_path(plugin.name))
    entries = [
        Entry(
            f"{plugin.name} {v[0]}" + (" (yanked)" if v[3] else ""),
            f"{page}#v-{v[0]}",
            _moment(v[2]),
            shown(plugin.description),
        )
        for v in reversed(plugin.version_rows[-FEED_ENTRIES:])
    ]
    return feed_context(
        f"{plugin.name} releases",
        base_url,
        plugin_feed_path(plugin.name),
        url_of(plugin_path(plugin.name)),
        entries,
    )


def global_feeds(
    registry: RegistryConfig, facts: Mapping[str, PluginFacts], rows: Mapping[str, Row]
) -> dict[str, dict[str, Any]]:
    """Return the new-plugins and all-releases feeds, by path."""
    base = registry.base_url
    new = newest(FEED_ENTRIES, [rows[name] for name in sorted(rows)], "first")
    # Each plugin has a release on its newest date, so the newest releases all belong
    # to plugins whose newest date is at least the RELEASE_ENTRIES-th newest of those:
    # only their versions are unpacked. Ties (same day) stay in name order, then
    # version order (oldest first).
    newest_dates = heapq.nlargest(RELEASE_ENTRIES, (p.released[1] for p in facts.values()))
    floor = newest_dates[-1] if len(newest_dates) == RELEASE_ENTRIES else ""
    releases = heapq.nlargest(
        RELEASE_ENTRIES,
        (
            (name, v)
            for name in sorted(facts)
            if facts[name].released[1] >= floor
            for v in facts[name].version_rows
        ),
        key=lambda item: item[1][2],
    )
    return {
        "feeds/new.xml": feed_context(
            f"{registry.title}: new plugins",
            base,
            "feeds/new.xml",
            "",
            [
                Entry(
                    f"{r.name}: {r.display_name}",
                    base + url_of(plugin_path(r.name)),
                    _moment(r.first),
                    r.description,
                )
                for r in new
            ],
        ),
        "feeds/releases.xml": feed_context(
            f"{registry.title}: all releases",
            base,
            "feeds/releases.xml",
            "",
            [
                Entry(
                    f"{name} {v[0]}" + (" (yanked)" if v[3] else ""),
                    f"{base}{url_of(plugin_path(name))}#v-{v[0]}",
                    _moment(v[2]),
                    shown(facts[name].description),
                )
                for name, v in releases
            ],
        ),
    }
