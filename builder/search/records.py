"""Search records: what the index knows of a plugin, taken from its published document.

A record is a plain dict (stored as JSON in the Whoosh index and shown by
`plugindex search --json`): plugin facts, the version users get by default, its
deprecation, and per version what the filters need (engine, formats, host
compatibility, yanked).
"""

from __future__ import annotations

import json
from typing import Any

from builder.common.errors import BuildError
from builder.index.facts import PluginFacts

RECORD_FORMAT = 2  # 2: `deprecated`


def record_of(facts: PluginFacts, document: bytes) -> dict[str, Any]:
    """Return a plugin's search record from its facts and its per-plugin JSON document."""
    try:
        doc = json.loads(document)
        versions = [
            {
                "version": v["version"],
                "released": v["released"],
                "engine": v["engine"],
                "formats": [f["extension"] for f in v["formats"]],
                "host": v["compatibility"]["host"],
                "yanked": v["yanked"] is not None,
            }
            for v in reversed(doc["versions"])  # newest first
        ]
        owners = [o["github"] for o in doc["owners"]]
        license_ = doc["license"]
        deprecated = doc.get("deprecated")  # signed by the owners; absent unless deprecated
        if deprecated is not None:
            deprecated = {
                "message": str(deprecated["message"]),
                "replacement": deprecated.get("replacement"),
            }
    except (ValueError, KeyError, TypeError) as e:
        raise BuildError(
            f"{facts.name}: its per-plugin document lacks what search needs ({e!r}); "
            f"run the build again in a fresh output folder"
        ) from e
    latest = facts.latest
    return {
        "format": RECORD_FORMAT,
        "name": facts.name,
        "display_name": facts.display_name,
        "description": facts.description,
        "categories": list(facts.categories),
        "keywords": list(facts.keywords),
        "license": license_,
        "owners": owners,
        "latest": latest[0] if latest else None,
        # When the version users get by default came out (sort by most recent release).
        "released": latest[1] if latest else max((v["released"] for v in versions), default=None),
        "yanked_only": all(v["yanked"] for v in versions),
        # {message, replacement (a plugin name or None)}, or None: ranked lower, said so.
        "deprecated": deprecated,
        # Filled in once the registry publishes them (aggregated stats, reviews).
        "downloads": None,
        "rating": None,
        "versions": versions,
    }
