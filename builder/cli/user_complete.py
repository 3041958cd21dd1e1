"""Shell completion of plugin names: the registry's (names.json) and the installed ones.

Click runs these when the shell asks (`_PLUGINDEX_COMPLETE=bash_complete`). A
registry's names come from the cache first (through its signed metadata, as every
command reads them), so a TAB costs no request once any command has read names.json;
the first one fetches it with short timeouts. A completion never prints an error: it
completes nothing instead.
"""

from __future__ import annotations

import dataclasses
import logging
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


def registry_names(ctx: click.Context, found: Any) -> list[str]:
    """Return the registry's plugin names: from the cache, else fetched (and cached).

    Through the registry's signed metadata as every command reads it: offline first
    (the metadata and names.json an earlier command kept), then with short timeouts.
    """
    from builder.client.connect import Where, connect
    from builder.client.registry import Registry
    from builder.common.fetch import HttpFetcher, open_registry

    where = Where(
        registry=found.registry,
        registries=found.registries,
        data_dir=found.data_dir,
        cache_dir=found.cache_dir,
        root=ctx.params.get("root"),
        insecure=bool(ctx.params.get("insecure_no_tuf")),
        offline=True,
    )
    try:
        return Registry(connect(where).fetcher).names()
    except PlugindexError as e:  # not cached yet
        log.info("names not in the cache: %s", e)

    def quick(location: str) -> Any:
        if urlsplit(location).scheme not in {"http", "https"}:
            return open_registry(location, found.cache_dir)
        return HttpFetcher(
            location,
            found.cache_dir,
            attempts=1,
            timeout=_TIMEOUT,
            deadline=_TIMEOUT,
            connect_timeout=_TIMEOUT,
        )

    online = dataclasses.replace(where, offline=False)
    return Registry(connect(online, quick).fetcher).names()


def complete_names(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Complete a plugin name from the registry's names.json."""
    if "@" in incomplete:
        return []
    try:
        found = _settings(ctx)
        if not found.registry:
            return []
        names = registry_names(ctx, found)
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
