"""What is installed, as the registry sees it now: yanks and deprecations since install,
newer versions.

`list` shows the lockfile with each installed version's current yank state and each
plugin's deprecation (when a registry is reachable; otherwise the state last seen);
`outdated` adds, for every installed plugin, the version `upgrade` would move to and
the newest version there is. Both bring the lockfile's marks up to date, so every
later command that reads the lockfile (even offline: `uninstall`, `verify`) warns
about its yanks, and an offline `list` still shows the deprecations last seen.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from builder.client.documents import Version
from builder.client.explain import deprecation_warning
from builder.client.install import refreshed_deprecations, roots_of
from builder.client.lockfile import (
    LockedPlugin,
    Lockfile,
    read_lockfile,
    read_trust,
    write_lockfile,
    yank_warnings,
)
from builder.client.plan import refreshed_yanks, resolve_against, yank_reason
from builder.client.registry import Registry, Verified
from builder.client.resolve import Options
from builder.client.transaction import STATE_DIR, plugins_state
from builder.common.errors import PlugindexError
from builder.format.requirements import RELEASE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Installed:
    """One installed plugin, with what the registry says about it now."""

    name: str
    plugin: LockedPlugin  # its lockfile entry (yank mark brought up to date when checked)
    compatible: str | None = None  # what `upgrade` would install (outdated only)
    newest: str | None = None  # the newest version not yanked (outdated only)

    @property
    def outdated(self) -> bool:
        """Tell whether a newer version exists, fitting the requirements or not."""
        installed = self.plugin.version
        return (self.compatible or installed) != installed or (
            self.newest or installed
        ) != installed


@dataclass
class Status:
    """The installed plugins, whether the registry was asked, and what to warn about."""

    plugins_dir: Path
    plugins: list[Installed]
    checked: bool  # the registry was asked (else: the lockfile's last known state)
    warnings: list[str] = field(default_factory=list)


def _refresh(plugins_dir: Path, lock: Lockfile, docs: Mapping[str, Verified]) -> Lockfile:
    """Return the lockfile with fresh yank and deprecation marks, written back when changed."""
    changed = refreshed_yanks(lock, docs)
    changed.update(refreshed_deprecations({**lock.plugins, **changed}, docs))
    if not changed:
        return lock
    lock = lock.model_copy(update={"plugins": {**lock.plugins, **changed}})
    if (plugins_dir / STATE_DIR).is_dir():  # its lock is held: see plugins_state
        write_lockfile(plugins_dir, lock)
    return lock


def installed_status(plugins_dir: Path, registry: Registry | None) -> Status:
    """Return the installed plugins; with a registry, their yank state as it is now.

    A registry that cannot be reached (or serves a document that fails to verify)
    leaves the lockfile's last known state, with a warning saying so.
    """
    with plugins_state(plugins_dir, create=False):
        lock = read_lockfile(plugins_dir)
        checked = False
        warnings = []
        if registry is not None and lock.plugins:
            try:
                lock = _refresh(plugins_dir, lock, registry.verified_many(lock.plugins))
                checked = True
            except PlugindexError as e:
                warnings.append(
                    f"cannot check for yanks or deprecations (showing what was last seen): {e}"
                )
    rows = [Installed(name, plugin) for name, plugin in sorted(lock.plugins.items())]
    return Status(plugins_dir, rows, checked, [*warnings, *_marks(lock.plugins)])


def _marks(plugins: Mapping[str, LockedPlugin]) -> list[str]:
    """Return a warning per installed version yanked, then per installed plugin deprecated."""
    deprecations = [
        deprecation_warning(f"{name} {p.version} (installed)", d.message, d.replacement)
        for name, p in sorted(plugins.items())
        if (d := p.deprecated) is not None
    ]
    return [*yank_warnings(plugins), *deprecations]


def _newest(verified: Verified, installed: str, options: Options) -> str | None:
    """Return the newest version not yanked: a release, or a prerelease when one is installed."""
    prerelease_ok = options.prerelease or "-" in installed.split("+", 1)[0]
    fine: list[Version] = [
        v
        for v in verified.plugin.versions
        if yank_reason(verified, v) is None and (prerelease_ok or v.key[3] == RELEASE)
    ]
    return fine[-1].number if fine else None


def outdated(plugins_dir: Path, registry: Registry, *, options: Options) -> Status:
    """Return every installed plugin with what `upgrade` would pick and the newest version."""
    with plugins_state(plugins_dir, create=False):
        lock = read_lockfile(plugins_dir)
        if not lock.plugins:
            return Status(plugins_dir, [], checked=True)
        docs = registry.verified_many(lock.plugins)
        lock = _refresh(plugins_dir, lock, docs)
    warnings = []
    compatible: dict[str, str] = {}
    try:
        resolved = resolve_against(
            registry,
            roots_of([], lock),
            lock,
            read_trust(plugins_dir).plugins,  # checked, never recorded: nothing changes
            unlock=sorted(lock.plugins),
            options=options,
        )
        compatible = {n: c.version for n, c in resolved.resolution.selected.items()}
    except PlugindexError as e:
        warnings.append(f"cannot tell what `upgrade` would install: {e}")
    rows = [
        Installed(
            name,
            plugin,
            compatible.get(name),
            _newest(docs[name], plugin.version, options),
        )
        for name, plugin in sorted(lock.plugins.items())
    ]
    return Status(plugins_dir, rows, True, [*warnings, *_marks(lock.plugins)])
