"""Render the JSON documents of the sparse index: pure functions, no I/O.

Every document is serialised by `encode` (`builder.index.encoding`), with sorted keys
and no whitespace, so the same input always gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from builder import FORMAT_VERSION, __version__
from builder.common import layout
from builder.format.load import LoadedPlugin
from builder.format.models import RegistryConfig, VersionManifest
from builder.format.shapes import manifest_fields, version_entry
from builder.index.encoding import encode
from builder.index.facts import PluginFacts
from builder.index.signatures import SignedBy


def download_of(version: VersionManifest) -> str:
    """Return where a client downloads a version's artifact from, relative to the root.

    Always the registry's own copy: the build mirrors every artifact, local or
    remote (`builder.index.mirror`), so the registry never depends on an author's URL.
    """
    artifact = version.artifact
    return layout.artifact_path(artifact.sha256, artifact.filename)


def plugin_document(
    plugin: LoadedPlugin,
    signers: Mapping[str, SignedBy],
    entries: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return the per-plugin document.

    `signers` says, by version, which owner's key the build verified the release
    signature with; `entries` are the versions' published shapes when already made
    (they are completed in place).
    """
    manifest = plugin.manifest
    versions = []
    for i, loaded in enumerate(plugin.versions):
        v = loaded.manifest
        data = entries[i] if entries is not None else version_entry(v)
        data["artifact"]["download"] = download_of(v)
        signer = signers[v.version]
        data["signed_by"] = {"owner": signer.owner, "key_id": signer.key_id, "verified": True}
        if signer.revoked:  # only then: other documents stay byte for byte as they were
            data["revoked_signatures"] = list(signer.revoked)
        versions.append(data)
    return {
        "format": FORMAT_VERSION,
        **manifest_fields(manifest),
        "signature": manifest.signature.model_dump() if manifest.signature else None,
        "versions": versions,
    }


def config_document(registry: RegistryConfig) -> dict[str, Any]:
    """Return config.json: what a client reads first."""
    return {
        "format": FORMAT_VERSION,
        "name": registry.name,
        "title": registry.title,
        "base_url": registry.base_url,
        "index": layout.INDEX_TEMPLATE,
        "artifacts": layout.ARTIFACT_TEMPLATE,
        "names": layout.NAMES,
        "categories": layout.CATEGORIES,
        "status": layout.STATUS,
        "pages": dict(layout.PAGE_TEMPLATES),
    }


def category_counts(registry: RegistryConfig, plugins: Mapping[str, PluginFacts]) -> dict[str, int]:
    """Return the number of plugins in each category, by slug."""
    counts = {c.slug: 0 for c in registry.categories}
    for plugin in plugins.values():
        for slug in plugin.categories:
            counts[slug] = counts.get(slug, 0) + 1
    return counts


def category_entries(
    registry: RegistryConfig, plugins: Mapping[str, PluginFacts]
) -> list[dict[str, Any]]:
    """Return each category of registry.yaml, in its order, with its number of plugins."""
    counts = category_counts(registry, plugins)
    return [
        {"slug": c.slug, "title": c.title, "description": c.description, "count": counts[c.slug]}
        for c in registry.categories
    ]


def listing_files(
    registry: RegistryConfig, plugins: Mapping[str, PluginFacts]
) -> Iterator[tuple[str, bytes]]:
    """Yield names.json, categories.json and every listing page, encoded, with its path.

    One at a time: at 150,000 plugins the pages are 110 MB, which a build writes
    ahead as they come (see `builder.index.work`). A page is put together from its
    plugins' entries as their facts hold them encoded (`PluginFacts.summary`): a
    rebuild encodes again only the plugins it read again, not every entry of every
    page.
    """
    ordered = sorted(plugins.values(), key=lambda p: p.name)
    yield (
        layout.NAMES,
        encode(
            {
                "format": FORMAT_VERSION,
                "count": len(ordered),
                "plugins": {p.name: p.latest[0] if p.latest else None for p in ordered},
            }
        ),
    )
    yield (
        layout.CATEGORIES,
        encode({"format": FORMAT_VERSION, "categories": category_entries(registry, plugins)}),
    )
    orders = {
        "name": ordered,
        # Newest release first; the sort is stable, so ties stay in name order.
        "recent": sorted(ordered, key=lambda p: p.latest[1] if p.latest else "", reverse=True),
    }
    total = len(ordered)
    pages = max(1, math.ceil(total / layout.PAGE_SIZE))
    for order, items in orders.items():
        for page in range(1, pages + 1):
            chunk = items[(page - 1) * layout.PAGE_SIZE : page * layout.PAGE_SIZE]
            head = {
                "format": FORMAT_VERSION,
                "sort": order,
                "page": page,
                "pages": pages,
                "per_page": layout.PAGE_SIZE,
                "total": total,
                "plugins": [],
            }
            entries = b"[" + b",".join(p.summary for p in chunk) + b"]"
            # The only list in the head: every other value is a number or a sort's name.
            yield (
                layout.page_path(order, page),
                encode(head).replace(b'"plugins":[]', b'"plugins":' + entries, 1),
            )


def status_document(
    plugins: Mapping[str, PluginFacts],
    artifacts: int,
    built_at: str | None,
    commit: str | None,
    held_back: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Return status.json: when and from what this build was made, its size, what it held back."""
    versions = sum(p.version_count for p in plugins.values())
    return {
        "format": FORMAT_VERSION,
        "builder": f"plugindex {__version__}",
        "built_at": built_at,
        "source_commit": commit,
        "plugins": len(plugins),
        "versions": versions,
        "yanked": sum(p.yanked for p in plugins.values()),
        "artifacts": artifacts,
        "held_back": list(held_back),
    }
