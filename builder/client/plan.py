"""Plan a change to a plugins folder: resolve against the registry, then sort the result.

The resolver asks for documents as it needs them; each arrives verified (every
signature checked) and is checked against its plugin's pinned owner keys before the
resolver sees it. The selection then splits into the plugins that stay at their
installed version and those whose new version must be downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from builder.client.documents import Version
from builder.client.downloads import check_artifact_size
from builder.client.lockfile import LockedPlugin, Lockfile
from builder.client.registry import Registry, UnknownPluginError, Verified
from builder.client.resolve import (
    Candidate,
    Dependency,
    NeedDocumentsError,
    Options,
    Resolution,
    Root,
    resolve,
)
from builder.client.signatures import Pin, check_pin, withheld_reason
from builder.common.limits import DEFAULT_LIMITS, Limits
from builder.format.requirements import key_of


class Resolved(NamedTuple):
    """A resolution, the verified documents it read, and the key pins they would record."""

    resolution: Resolution
    docs: dict[str, Verified]
    pins: dict[str, Pin]


class Kept(NamedTuple):
    """A plugin the resolution leaves at its installed version."""

    name: str
    version: str


class Planned(NamedTuple):
    """A plugin whose selected version must be downloaded and unpacked."""

    name: str
    old: LockedPlugin | None  # what is installed now
    verified: Verified
    version: Version


def candidates_of(verified: Verified) -> list[Candidate]:
    """Return the resolver's view of every version of a verified document."""
    plugin = verified.plugin
    return [
        Candidate(
            plugin.name,
            version.number,
            version.key,
            tuple(Dependency(d.name, d.req, d.kind) for d in version.entry.dependencies),
            version.entry.compatibility.host,
            yank_reason(verified, version),
        )
        for version in plugin.versions
    ]


def locked_candidate(name: str, locked: LockedPlugin) -> Candidate:
    """Return the resolver's view of an installed plugin (no document needed)."""
    return Candidate(
        name,
        locked.version,
        key_of(locked.version),
        tuple(Dependency(d.name, d.req, d.kind) for d in locked.dependencies),
        locked.host,
        locked.yanked,
    )


def resolve_against(
    registry: Registry,
    roots: Sequence[Root],
    lock: Lockfile,
    pins: Mapping[str, Pin],
    *,
    unlock: Sequence[str],
    options: Options,
    limits: Limits = DEFAULT_LIMITS,
) -> Resolved:
    """Resolve, fetching documents a level at a time; check each against its pin."""
    locked = {name: locked_candidate(name, p) for name, p in lock.plugins.items()}
    docs: dict[str, Verified] = {}
    new_pins: dict[str, Pin] = {}
    while True:
        try:
            available = {name: candidates_of(v) for name, v in docs.items()}
            resolution = resolve(
                roots, available, locked=locked, unlock=unlock, options=options, limits=limits
            )
        except NeedDocumentsError as need:
            wanted = need.names - docs.keys()
            if not wanted:
                raise
            try:
                fetched = registry.verified_many(wanted)
            except UnknownPluginError as e:
                missing = next((n for n in sorted(wanted) if n in str(e)), "")
                raise UnknownPluginError(
                    f"{e.message} ({_who_needs(missing, docs)})", e.suggestions
                ) from None
            for name, verified in fetched.items():
                pin = check_pin(registry.name, verified.plugin, pins.get(name))
                if pin is not None:
                    new_pins[name] = pin
            docs.update(fetched)
            continue
        return Resolved(resolution, docs, new_pins)


def _who_needs(name: str, docs: Mapping[str, Verified]) -> str:
    for other, verified in sorted(docs.items()):
        for version in reversed(verified.plugin.versions):
            if any(d.name == name for d in version.entry.dependencies):
                return f"{other} {version.number} depends on it"
    return "you asked for it"


def yank_reason(verified: Verified, version: Version) -> str | None:
    """Return why a version is not offered: a valid yank, or a revoked key's signature."""
    return withheld_reason(version, verified.trust[version.number])


def refreshed_yanks(lock: Lockfile, docs: Mapping[str, Verified]) -> dict[str, LockedPlugin]:
    """Return installed plugins whose yank mark differs from what their fresh document says."""
    changed = {}
    for name, verified in docs.items():
        locked = lock.plugins.get(name)
        version = verified.plugin.version(locked.version) if locked else None
        if locked is None or version is None:
            continue
        if (reason := yank_reason(verified, version)) != locked.yanked:
            changed[name] = locked.model_copy(update={"yanked": reason})
    return changed


def kept_of(lock: Lockfile, resolution: Resolution) -> list[Kept]:
    """Return the selected plugins that stay at their installed version, by name."""
    return [
        Kept(name, candidate.version)
        for name, candidate in sorted(resolution.selected.items())
        if (old := lock.plugins.get(name)) is not None and old.version == candidate.version
    ]


def plan_downloads(lock: Lockfile, resolved: Resolved, limits: Limits) -> list[Planned]:
    """Return the selected plugins whose version changes, by name; refuse oversized ones."""
    planned = []
    for name, candidate in sorted(resolved.resolution.selected.items()):
        old = lock.plugins.get(name)
        if old is not None and old.version == candidate.version:
            continue
        verified = resolved.docs[name]
        version = verified.plugin.version(candidate.version)
        assert version is not None  # the candidate came from this document
        check_artifact_size(name, version, limits)
        planned.append(Planned(name, old, verified, version))
    return planned
