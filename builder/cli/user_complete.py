"""Shell completion of plugin names: the registry's (names.json) and the installed ones.

Click runs these when the shell asks (`_PLUGINDEX_COMPLETE=bash_complete`). A
registry's names come from the cache first, so a TAB costs no request once any
command has read names.json; the first one fetches it with short timeouts. A
completion never prints an error: it completes nothing instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from builder.common.errors import PlugindexError

log = logging.getLogger(__name__)

_TIMEOUT = 2.0  # seconds per connect or read when names.json is not cached yet


def _settings(ctx: click.Context) -> Any:
    from builder.client.config import settings

    return settings(
        registry=ctx.params.get("registry"),
        plugins_dir=ctx.params.get("plugins_dir"),
        cache_dir=ctx.params.get("cache_dir"),
    )


def registry_names(location: str, cache_dir: Path) -> list[str]:
    """Return the registry's plugin names: from the cache, else fetched (and cached)."""
    from builder.client.registry import Registry
    from builder.common.fetch import HttpFetcher, open_registry

    if urlsplit(location).scheme not in {"http", "https"}:
        return Registry(open_registry(location, cache_dir)).names()
    try:
        return Registry(HttpFetcher(location, cache_dir, offline=True)).names()
    except PlugindexError:  # not cached yet
        fetcher = HttpFetcher(location, cache_dir, attempts=1, timeout=_TIMEOUT, deadline=_TIMEOUT)
        return Registry(fetcher).names()


def complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Complete a plugin name from the registry's names.json."""
    if "@" in incomplete:
        return []
    try:
        found = _settings(ctx)
        if not found.registry:
            return []
        names = registry_names(found.registry, found.cache_dir)
    except (PlugindexError, OSError) as e:
        log.info("no completion: %s", e)
        return []
    return [name for name in names if name.startswith(incomplete)]


def complete_installed(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Complete the name of an installed plugin (from the lockfile)."""
    from builder.client.lockfile import read_lockfile

    try:
        plugins = read_lockfile(_settings(ctx).plugins_dir).plugins
    except (PlugindexError, OSError) as e:
        log.info("no completion: %s", e)
        return []
    return [name for name in sorted(plugins) if name.startswith(incomplete)]
