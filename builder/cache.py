"""The build cache: what the last successful build read and wrote, keyed by content.

Source files are recognised by (mtime, size, inode) so an unchanged file is not
read again, but everything downstream is keyed by sha256 of content: a plugin is
re-parsed only when the hash of its files (or of registry.yaml) changes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import BaseModel, ValidationError

from builder import FORMAT_VERSION, __version__
from builder.facts import PluginFacts
from builder.output import STATE_DIR

log = logging.getLogger(__name__)

CACHE_FILE = "cache.json"
# Bump when anything cached would now be computed differently.
_CACHE_KEY = f"plugindex {__version__} format {FORMAT_VERSION} cache 1"


class PluginRecord(BaseModel):
    input: str  # sha256 over registry.yaml and every file of the plugin folder
    facts: PluginFacts


class BuildCache(BaseModel):
    key: str = _CACHE_KEY
    index: str = ""  # absolute path of the index this cache describes
    # index-relative path → (mtime_ns, size, inode, sha256)
    sources: dict[str, tuple[int, int, int, str]] = {}
    plugins: dict[str, PluginRecord] = {}  # by folder name
    outputs: dict[str, str] | None = None  # published path → sha256; None: unknown


def load_cache(out: Path, index: Path) -> BuildCache:
    """Return the cache of the last build into `out`, or an empty one."""
    path = out / STATE_DIR / CACHE_FILE
    try:
        cache = BuildCache.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return BuildCache(index=str(index.resolve()))
    except (OSError, ValidationError) as e:
        log.warning("ignoring unreadable build cache %s: %s", path, e)
        return BuildCache(index=str(index.resolve()))
    if cache.key != _CACHE_KEY or cache.index != str(index.resolve()):
        # Keep only what describes the output folder itself.
        return BuildCache(index=str(index.resolve()), outputs=cache.outputs)
    return cache


def save_cache(out: Path, cache: BuildCache) -> None:
    """Write the cache atomically."""
    path = out / STATE_DIR / CACHE_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(cache.model_dump_json(), encoding="utf-8")
    temporary.replace(path)
