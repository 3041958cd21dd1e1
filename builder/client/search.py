"""Search on the user's side, its answers: the plugins matching a query under filters,
sorted and paged, from an index `builder.client.search_index` synced and opened.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from builder.common import whoosh_reader as engine

if TYPE_CHECKING:
    from builder.format.requirements import VersionKey

SORTS = ("relevance", "name", "recent", "downloads", "rating")


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    engine: str | None = None
    format: str | None = None  # an extension, with or without the dot
    license: str | None = None
    host: str | None = None  # the host application's version


@dataclass
class Results:
    total: int
    page: int
    pages: int
    results: list[dict[str, Any]] = field(default_factory=list)
    words: list[str] = field(default_factory=list)  # the words searched for
    # What was answered: "search" (the words), "listing" (no query: every plugin under
    # the filters, in the chosen order) or "no-words" (a query with no word to search
    # for, such as `*` or `OR`: nothing, rather than every plugin as if it matched).
    mode: str = "search"
    sort: str = "relevance"  # the order actually used (a listing has no relevance)


def _fits(version: Mapping[str, Any], filters: Filters, host: VersionKey | None) -> bool:
    if filters.engine and version["engine"] != filters.engine.lower():
        return False
    if filters.format:
        wanted = "." + filters.format.lower().lstrip(".")
        if wanted not in version["formats"]:
            return False
    if host is not None:
        from builder.format.requirements import RequirementError, parse_requirement

        try:
            return bool(parse_requirement(version["host"]).matches(host, allow_prerelease=True))
        except RequirementError:
            return False
    return True


def chosen_version(
    record: Mapping[str, Any], filters: Filters, host: VersionKey | None
) -> dict[str, Any] | None:
    """Return the version a user would get under the filters: newest fitting release,
    else newest fitting prerelease; yanked ones only for a plugin with nothing else."""
    versions: list[dict[str, Any]] = list(record["versions"])  # newest first
    usable = [v for v in versions if not v["yanked"]] or versions
    fitting = [v for v in usable if _fits(v, filters, host)]
    releases = [v for v in fitting if "-" not in v["version"].split("+")[0]]
    chosen = releases or fitting
    return chosen[0] if chosen else None


def query(
    index: engine.VerifiedIndex,
    text: str,
    filters: Filters,
    *,
    sort: str = "relevance",
    limit: int = 20,
    page: int = 1,
) -> Results:
    """Answer a query: matching plugins under the filters, sorted, one page of them.

    A query without any word to search for lists nothing if it has other text (`*`,
    `OR`, punctuation) and every plugin under the filters if it is empty (a listing,
    by name unless another order is asked for).
    """
    words = engine.query_words(text)
    if not words and text.strip():
        return Results(0, page, 1, mode="no-words", sort=sort)
    host = None
    if filters.host:
        from builder.format.requirements import key_of  # only a host filter needs it

        host = key_of(filters.host)
    wanted = {
        "categories": filters.category or "",
        "engines": filters.engine or "",
        "formats": (filters.format or "").lstrip("."),
        "licenses": filters.license or "",
    }
    if words:
        hits = index.search(text, wanted)
        mode = "search"
    else:
        hits = index.listing(wanted)
        mode = "listing"
        sort = "name" if sort == "relevance" else sort
    # Records are loaded only where needed (a version filter, or the page shown): a broad
    # query matches thousands of plugins, and sorting reads columns instead.
    needs_version = bool(host is not None or filters.engine or filters.format)
    rows: list[tuple[engine.Hit, dict[str, Any] | None, dict[str, Any] | None]] = []
    for hit in hits:
        if not needs_version:
            rows.append((hit, None, None))
            continue
        record = index.record(hit.docnum)
        version = chosen_version(record, filters, host)
        if version is not None:
            rows.append((hit, record, version))
    if sort == "name":
        rows.sort(key=lambda r: index.value("name", r[0].docnum))
    elif sort == "recent":
        rows.sort(
            key=lambda r: (r[2] or {}).get("released") or index.value("released", r[0].docnum),
            reverse=True,
        )
    elif sort in {"downloads", "rating"}:
        rows.sort(key=lambda r: -(index.value(sort, r[0].docnum) or 0))
    # Plugins whose every version is yanked go last whatever the order (the sort is stable).
    rows.sort(key=lambda r: index.value("yanked_only", r[0].docnum))
    total = len(rows)
    pages = max(1, -(-total // limit))
    shown = []
    for hit, loaded, chosen in rows[(page - 1) * limit : page * limit]:
        record = loaded if loaded is not None else index.record(hit.docnum)
        version = chosen if loaded is not None else chosen_version(record, filters, host)
        shown.append(_result(hit.score, record, version or {}))
    return Results(total, page, pages, shown, words, mode, sort)


def _result(score: float, record: Mapping[str, Any], version: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": record["name"],
        "display_name": record["display_name"],
        "description": record["description"],
        "version": version.get("version") or record["latest"],
        "released": version.get("released") or record["released"],
        "engine": version.get("engine"),
        "formats": list(version.get("formats") or []),
        "yanked": bool(version.get("yanked")) or record["yanked_only"],
        "yanked_only": record["yanked_only"],
        # {message, replacement}, or None (a record from before deprecations: None too)
        "deprecated": record.get("deprecated"),
        "categories": record["categories"],
        "keywords": record["keywords"],
        "license": record["license"],
        "owners": record["owners"],
        "downloads": record.get("downloads"),
        "rating": record.get("rating"),
        "score": round(score, 3),
    }


def index_age(built_at: str | None, now: datetime.datetime | None = None) -> str:
    """Return how old an index is, for the offline note ("built 3 days ago")."""
    if not built_at:
        return "of unknown age"
    try:
        when = datetime.datetime.strptime(built_at, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.UTC
        )
    except ValueError:
        return f"built at {built_at}"
    now = now or datetime.datetime.now(datetime.UTC)
    hours = max(0, int((now - when).total_seconds() // 3600))
    if hours < 48:
        return f"built {hours} hour{'s' if hours != 1 else ''} ago ({built_at})"
    return f"built {hours // 24} days ago ({built_at})"
