"""`plugindex search`: find plugins in the registry's search index, synced into the cache.

Exit codes: 0 success (no match is a success: the message says so); 2 bad usage;
3 an error we can explain (network, a missing or malformed index); 5 refused: an
index file does not match its manifest (nothing was opened).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from builder.cli.report import reports_errors
from builder.cli.user_options import tuf_options
from builder.common.errors import PlugindexError


def _check_host_version(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> str | None:
    """Refuse a host version that is not a version, as a usage error (`0.4` means 0.4.0)."""
    from builder.format.requirements import RequirementError, key_of

    if value:
        parts = value.strip().split(".")
        if 1 <= len(parts) < 3 and all(p.isdigit() for p in parts):
            value = ".".join([*parts, "0", "0"][:3])
        try:
            key_of(value)
        except RequirementError as e:
            raise click.BadParameter(str(e)) from None
    return value


def _line(text: str, width: int) -> str:
    """Return `text` on one line, cut to `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(1, width - 1)].rstrip() + "…"


@click.command()
@click.argument("words", nargs=-1, metavar="[QUERY]...")
@click.option("--category", metavar="SLUG", help="Only plugins in this category.")
@click.option("--engine", metavar="NAME", help="Only plugins whose version runs on this engine.")
@click.option("--format", "format_", metavar="EXT", help="Only plugins reading this extension.")
@click.option("--license", "license_", metavar="ID", help="Only plugins under this licence.")
@click.option(
    "--host-version",
    envvar="PLUGINDEX_HOST_VERSION",
    callback=_check_host_version,
    help="Only plugins with a version compatible with this host (that version is shown).",
)
@click.option(
    "--sort",
    type=click.Choice(["relevance", "name", "recent", "downloads", "rating"]),
    default="relevance",
    show_default=True,
    help="Order of the results.",
)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--page", type=click.IntRange(1), default=1, show_default=True)
@click.option(
    "--registry",
    envvar="PLUGINDEX_REGISTRY",
    help="Registry URL (http, https, file) or folder [env: PLUGINDEX_REGISTRY].",
)
@click.option(
    "--cache-dir",
    envvar="PLUGINDEX_CACHE_DIR",
    type=click.Path(path_type=Path, file_okay=False),
    help="Cache folder [env: PLUGINDEX_CACHE_DIR].",
)
@click.option(
    "--offline", is_flag=True, envvar="PLUGINDEX_OFFLINE", help="Use only the cached index."
)
@tuf_options
@click.option("--json", "as_json", is_flag=True, help="Print every field and the total as JSON.")
@reports_errors
def search(  # Click passes every option by keyword
    *,
    words: tuple[str, ...],
    category: str | None,
    engine: str | None,
    format_: str | None,
    license_: str | None,
    host_version: str | None,
    sort: str,
    limit: int,
    page: int,
    registry: str | None,
    cache_dir: Path | None,
    offline: bool,
    root: str | None,
    insecure_no_tuf: bool,
    as_json: bool,
) -> None:
    """Search plugins by name, words, typos forgiven; filter, sort and page the results."""
    from builder.cli.user_options import open_fetcher
    from builder.client import search as client
    from builder.client import search_index
    from builder.client.config import config_path, settings

    found = settings(registry=registry, plugins_dir=None, cache_dir=cache_dir)
    if not found.registry:
        raise PlugindexError(
            f"no registry given (expected --registry URL, $PLUGINDEX_REGISTRY, or "
            f"`registry = ...` in {config_path()})"
        )
    host = host_version or found.host_version
    fetcher = open_fetcher(found, root=root, insecure_no_tuf=insecure_no_tuf, offline=offline)
    cache = search_index.SearchCache(search_index.cache_folder(found.cache_dir, fetcher.location))
    synced = search_index.sync(fetcher, cache, offline=offline)
    index, manifest = search_index.open_index(cache)
    try:
        filters = client.Filters(category, engine, format_, license_, host)
        text = " ".join(words)
        results = client.query(index, text, filters, sort=sort, limit=limit, page=page)
    finally:
        index.close()
    if offline:
        click.echo(
            f"offline: the cached search index, {client.index_age(manifest.built_at)}", err=True
        )
    elif synced.downloaded:
        click.echo(
            f"search index: {synced.downloaded} file(s), {synced.downloaded_bytes} bytes "
            f"downloaded",
            err=True,
        )
    if as_json:
        data: dict[str, Any] = {
            "query": text,
            "words": results.words,
            "answer": results.mode,
            "total": results.total,
            "page": results.page,
            "pages": results.pages,
            "sort": results.sort,
            "index_built_at": manifest.built_at,
            "results": results.results,
        }
        click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False))
        return
    _print(results, text, limit)


NO_WORDS = (
    "no search words in {text!r}: symbols (* ? : quotes) and words such as 'or' and 'the' "
    "are not searched; give a name or a word of a description, or no query at all to "
    "list plugins by a filter"
)


def _print(results: Any, text: str, limit: int) -> None:
    from builder.cli.user_output import shown

    if results.mode == "no-words":
        click.echo(NO_WORDS.format(text=text))
        return
    if results.mode == "listing":
        click.echo(f"no search words: listing every plugin by {results.sort}", err=True)
    if not results.results:
        where = f" on page {results.page}" if results.total else ""
        click.echo(f"no plugin matches {text!r}{where}" if text else f"no plugin{where}")
        return
    width = shutil.get_terminal_size((100, 24)).columns if sys.stdout.isatty() else 100
    for row in results.results:
        version = row["version"] or "-"
        yanked = " (yanked)" if row["yanked"] else ""
        categories = ", ".join(row["categories"])
        head = f"{row['name']} {version}{yanked}{_deprecated_mark(row.get('deprecated'))}"
        # What a registry serves reaches the terminal escaped (see user_output.shown).
        click.echo(shown(f"{head}  [{categories}]"))
        click.echo("    " + shown(_line(row["description"], width - 4)))
    first = (results.page - 1) * limit + 1
    last = first + len(results.results) - 1
    more = f"; --page {results.page + 1} for more" if results.page < results.pages else ""
    click.echo(f"{first}-{last} of {results.total} plugins{more}", err=True)


def _deprecated_mark(deprecated: Any) -> str:
    """Return ` (deprecated)` for a deprecated plugin, with what to use instead."""
    if not deprecated:
        return ""
    replacement = deprecated.get("replacement")
    return f" (deprecated, use {replacement} instead)" if replacement else " (deprecated)"


COMMANDS = (search,)
