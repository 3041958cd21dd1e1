"""The published shapes of source models: what documents show and signatures cover.

`statements` signs these shapes, `render_json` publishes them, and a client rebuilds
a statement from the published document alone, so the three always agree.
"""

from __future__ import annotations

from typing import Any

from builder.format.models import Owner, PluginManifest, VersionManifest


def version_entry(version: VersionManifest) -> dict[str, Any]:
    """Return a version in its published shape (what `statements` signs and checks)."""
    # One dump per version: field-by-field dumps cost seconds on a large index.
    data = version.model_dump()
    data["dependencies"] = [
        {"name": name, "req": dep["version"], "kind": dep["kind"]}
        for name, dep in sorted(data["dependencies"].items())
    ]
    data["compliance"] = {k: x for k, x in data["compliance"].items() if x is not None}
    return data


def manifest_fields(manifest: PluginManifest) -> dict[str, Any]:
    """Return plugin.yaml's fields in their published shape (what `statements` signs).

    `deprecated` is there only when the plugin is deprecated: a document (and the
    statement) of a plugin that is not stays byte for byte what it was before the
    field existed, so no old signature breaks.
    """
    fields: dict[str, Any] = {
        "name": manifest.name,
        "display_name": manifest.display_name,
        "description": manifest.description,
        "authors": [a.model_dump(exclude_none=True) for a in manifest.authors],
        "license": manifest.license,
        "homepage": manifest.homepage,
        "repository": manifest.repository,
        "keywords": manifest.keywords,
        "categories": manifest.categories,
        "owners": [owner_shape(o) for o in manifest.owners],
        "readme": manifest.readme,
        "revision": manifest.revision,
    }
    if manifest.deprecated is not None:
        fields["deprecated"] = manifest.deprecated.model_dump(exclude_none=True)
    return fields


def owner_shape(owner: Owner) -> dict[str, Any]:
    """Return an owner in its published shape (what the manifest statement signs).

    `retired_keys` stays a list of keys, as it always was; the versions each bound
    retired key may vouch for go to `retired_versions` ({key: [versions]}) and the
    revoked keys to `revoked_keys` ([{key, reason}]), each only when there is one:
    an owner without them gives the bytes it gave before they existed, and a client
    that does not know them still reads the keys.
    """
    shape: dict[str, Any] = {
        "github": owner.github,
        "keys": list(owner.keys),
        "retired_keys": owner.retired(),
    }
    bound = {k.key: list(k.versions) for k in owner.retired_keys if k.versions is not None}
    if bound:
        shape["retired_versions"] = bound
    if owner.revoked_keys:
        shape["revoked_keys"] = [{"key": k.key, "reason": k.reason} for k in owner.revoked_keys]
    return shape
