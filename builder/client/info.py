"""What `info` shows: a plugin's facts (its deprecation first), every version, one
version in detail, and what is installed of it.

Signatures are checked here too, but a failure is reported, not raised: `info` is
how a person looks at a document the client would refuse. A deprecation the owners'
plugin.yaml signature does not cover is shown marked as not signed
(`registry.checked_deprecation`).
"""

from __future__ import annotations

from typing import Any

from builder.client.lockfile import LockedPlugin
from builder.client.registry import (
    Registry,
    UnknownPluginError,
    checked_deprecation,
    manifest_check,
    manifest_problem,
)
from builder.client.signatures import VersionTrust, check_version, is_yanked
from builder.trust.signing import Check, describe, key_id


def _signature_status(trust: VersionTrust, name: str) -> str:
    if trust.release.valid:
        return f"verified: signed by {trust.owner} (key {trust.key_id})"
    return f"NOT VERIFIED: {describe(trust.release, 'release', name)}"


def _manifest_status(check: Check) -> str:
    if check.valid:
        return f"verified (key {_key_id(check.key)})" if check.key else "verified"
    return f"NOT VERIFIED: {manifest_problem(check)}"


def plugin_info(
    registry: Registry,
    name: str,
    version: str | None = None,
    *,
    installed: LockedPlugin | None = None,
) -> dict[str, Any]:
    """Return what `info` shows: plugin facts, every version, one version in detail.

    With `installed` (the plugin's lockfile entry), also the installed version and
    whether the registry has yanked it since.
    """
    plugin = checked_deprecation(registry.name, registry.load(name))
    doc = plugin.doc
    checks = {v.number: check_version(registry.name, plugin, v) for v in plugin.versions}
    if not all(c.valid for t in checks.values() for c in (t.release, t.yank, t.unyank) if c):
        registry.fetcher.discard(registry.index_path(name))  # shown, but not kept
    rows: list[dict[str, Any]] = []
    for v in reversed(plugin.versions):
        yanked = is_yanked(v, checks[v.number]) and v.entry.yanked is not None
        rows.append(
            {
                "version": v.number,
                "released": v.entry.released,
                "prerelease": v.prerelease,
                "yanked": v.entry.yanked.reason if yanked and v.entry.yanked else None,
                "signature": _signature_status(checks[v.number], name),
                "verified": checks[v.number].release.valid,
            }
        )
    if version is not None:
        chosen = plugin.version(version)
        if chosen is None:
            known = ", ".join(r["version"] for r in rows)
            raise UnknownPluginError(f"{name} has no version {version} (available: {known})")
    else:
        fine = [v for v in reversed(plugin.versions) if not is_yanked(v, checks[v.number])]
        releases = [v for v in fine if not v.prerelease]
        chosen = (releases or fine or list(reversed(plugin.versions)))[0]
    entry = chosen.entry
    return {
        "name": doc.name,
        "display_name": doc.display_name,
        "description": doc.description,
        "license": doc.license,
        "homepage": doc.homepage,
        "repository": doc.repository,
        # The owners' deprecation from plugin.yaml: None, or {message, replacement}.
        "deprecated": doc.deprecated.model_dump() if doc.deprecated else None,
        # The owners' signature over plugin.yaml (facts, owners, deprecation).
        "manifest_signature": _manifest_status(manifest_check(registry.name, plugin)),
        "owners": [
            {"github": o.github, "key_ids": [_key_id(k) for k in o.keys]} for o in doc.owners
        ],
        "versions": rows,
        "selected": {
            "version": chosen.number,
            "released": entry.released,
            "yanked": next(r["yanked"] for r in rows if r["version"] == chosen.number),
            "dependencies": [d.model_dump() for d in entry.dependencies],
            "compatibility": entry.compatibility.model_dump(),
            "engine": entry.engine,
            "formats": entry.formats,
            "compliance": entry.compliance,
            "artifact": {
                "filename": entry.artifact.filename,
                "size": entry.artifact.size,
                "sha256": entry.artifact.sha256,
                "url": registry.fetcher.url_of(entry.artifact.download),
            },
            "signature": _signature_status(checks[chosen.number], name),
        },
        "installed": _installed(installed, rows),
    }


def _installed(installed: LockedPlugin | None, rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Return the installed version and its yank as the registry says now (else as last seen)."""
    if installed is None:
        return None
    row = next((r for r in rows if r["version"] == installed.version), None)
    return {
        "version": installed.version,
        "yanked": row["yanked"] if row is not None else installed.yanked,
    }


def _key_id(key: str) -> str:
    try:
        return key_id(key)
    except ValueError:
        return "(malformed key)"
