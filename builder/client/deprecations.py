"""Deprecation marks: what the lockfile records of an owner's deprecation, and the warnings.

A plugin's owners may deprecate it (a signed field with a message and an optional
replacement); the lockfile keeps the mark as last seen, so `list` can show it offline.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from builder.client.documents import Plugin
from builder.client.explain import deprecation_warning
from builder.client.lockfile import LockedDeprecation, LockedPlugin
from builder.client.plan import Resolved
from builder.client.registry import Verified


def deprecation_of(plugin: Plugin) -> LockedDeprecation | None:
    """Return a document's deprecation as the lockfile records it (None: not deprecated)."""
    found = plugin.doc.deprecated
    if found is None:
        return None
    return LockedDeprecation(message=found.message, replacement=found.replacement)


def refreshed_deprecations(
    plugins: Mapping[str, LockedPlugin], docs: Mapping[str, Verified]
) -> dict[str, LockedPlugin]:
    """Return installed plugins whose deprecation mark differs from their fresh document's."""
    changed = {}
    for name, verified in docs.items():
        locked = plugins.get(name)
        if locked is not None and (now := deprecation_of(verified.plugin)) != locked.deprecated:
            changed[name] = locked.model_copy(update={"deprecated": now})
    return changed


def deprecation_warnings(
    resolved: Resolved, changing: Sequence[str], requested: Collection[str]
) -> list[str]:
    """Return a warning per deprecated plugin this command installs or that was asked for.

    One that comes in only as a dependency names who needs it, since that is what to
    replace.
    """
    selected = resolved.resolution.selected
    dependents = {f"{c.name} {c.version}" for c in selected.values()}
    warnings = []
    for name in sorted({*changing, *requested} & selected.keys()):
        verified = resolved.docs.get(name)
        found = verified.plugin.doc.deprecated if verified is not None else None
        if found is None:
            continue
        needed_by = [w.who for w in resolved.resolution.wants.get(name, []) if w.who in dependents]
        subject = name
        if needed_by and name not in requested:
            subject = f"{name} (needed by {', '.join(sorted(set(needed_by)))})"
        warnings.append(deprecation_warning(subject, found.message, found.replacement))
    return warnings
