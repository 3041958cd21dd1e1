"""Install, upgrade and uninstall: resolve, download and verify, stage, then commit.

Each command holds the plugins folder's lock, reads its lockfile and pinned keys,
resolves against the registry (documents fetched a level at a time, every one
verified and checked against its pin), downloads and unpacks what changes into a
staging folder, and commits it all as one transaction (see `transaction`): the
plugins folder always matches its lockfile, before or after, never half-way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Required, TypedDict, Unpack

from builder.client.deprecations import (
    deprecation_of,
    deprecation_warnings,
    refreshed_deprecations,
)
from builder.client.downloads import ProgressFactory, download_all
from builder.client.explain import change_notes
from builder.client.lockfile import (
    LockedDependency,
    LockedPlugin,
    Lockfile,
    TrustFile,
    read_lockfile,
    read_trust,
    write_lockfile,
    write_trust,
    yank_warnings,
)
from builder.client.outcome import Change, InstallError, OnPlan, Outcome, Request
from builder.client.plan import (
    Kept,
    Planned,
    Resolved,
    candidates_of,
    kept_of,
    plan_downloads,
    refreshed_yanks,
    resolve_against,
    yank_reason,
)
from builder.client.registry import Registry
from builder.client.resolve import Options, Root
from builder.client.signatures import Pin, pin_of
from builder.client.transaction import Move, commit, plugins_state, staging
from builder.client.unpack import unpack
from builder.common.limits import DEFAULT_LIMITS, Limits

# Callers import these from here: the outcome types and the deprecation marks.
__all__ = [
    "Change",
    "InstallError",
    "OnPlan",
    "Outcome",
    "PinChange",
    "Request",
    "deprecation_of",
    "refreshed_deprecations",
]


class PinChange(NamedTuple):
    """A plugin's pinned owner keys before (None: never pinned) and after `repin`."""

    old: Pin | None
    new: Pin


# --- install and upgrade --------------------------------------------------------------


class ChangeOptions(TypedDict, total=False):
    """The keyword options of `install` and `upgrade` (all but `options` may be left out)."""

    options: Required[Options]  # the host version, optional dependencies, prereleases
    cache_dir: Path | None  # verified artifacts and documents (None: no cache)
    progress: ProgressFactory | None  # a display for the downloads (None: none)
    limits: Limits
    dry_run: bool  # plan only: download nothing, write nothing
    on_plan: OnPlan | None  # shown the plan before anything is downloaded


@dataclass(frozen=True)
class _Settings:
    """How to carry out an install or upgrade: `ChangeOptions` with their defaults."""

    options: Options
    cache_dir: Path | None = None
    progress: ProgressFactory | None = None
    limits: Limits = DEFAULT_LIMITS
    dry_run: bool = False
    on_plan: OnPlan | None = None


@dataclass(frozen=True)
class _Job:
    """One install or upgrade: the registry, the plugins folder's state, and the settings."""

    registry: Registry
    plugins_dir: Path
    lock: Lockfile
    trust: TrustFile
    settings: _Settings


@contextmanager
def _job(registry: Registry, plugins_dir: Path, given: ChangeOptions) -> Iterator[_Job]:
    """Hold the plugins folder's lock; yield its state, checked to be this registry's."""
    settings = _Settings(**given)
    with plugins_state(plugins_dir, create=not settings.dry_run):
        lock, trust = read_lockfile(plugins_dir), read_trust(plugins_dir)
        check_same_registry(lock, registry, plugins_dir)
        yield _Job(registry, plugins_dir, lock, trust, settings)


def install(
    registry: Registry,
    plugins_dir: Path,
    requests: Sequence[Request],
    **given: Unpack[ChangeOptions],
) -> Outcome:
    """Install the requested plugins (the newest fitting versions) and what they need."""
    with _job(registry, plugins_dir, given) as job:
        return _resolve_and_apply(job, requests, unlock=[r.name for r in requests])


def upgrade(
    registry: Registry, plugins_dir: Path, names: Sequence[str], **given: Unpack[ChangeOptions]
) -> Outcome:
    """Upgrade the named installed plugins (all when none are named), within their requirements."""
    with _job(registry, plugins_dir, given) as job:
        for name in names:
            if name not in job.lock.plugins:
                raise InstallError(f"{name} is not installed in {plugins_dir} (use install)")
        unlock = list(names) or sorted(job.lock.plugins)
        if not unlock:
            return Outcome(dry_run=job.settings.dry_run)
        return _resolve_and_apply(job, [], unlock=unlock)


def check_same_registry(lock: Lockfile, registry: Registry, plugins_dir: Path) -> None:
    """Refuse to mix plugins of two registries in one plugins folder."""
    if lock.registry is not None and lock.plugins and lock.registry != registry.name:
        raise InstallError(
            f"{plugins_dir}: holds plugins from registry {lock.registry!r}, not "
            f"{registry.name!r} ({registry.fetcher.location}); use another --plugins-dir"
        )


def _resolve_and_apply(job: _Job, requests: Sequence[Request], *, unlock: Sequence[str]) -> Outcome:
    """Resolve the requests and everything installed, then carry out the changes."""
    resolved = resolve_against(
        job.registry,
        roots_of(requests, job.lock),
        job.lock,
        job.trust.plugins,
        unlock=unlock,
        options=job.settings.options,
        limits=job.settings.limits,
    )
    return _apply(job, resolved, {r.name: r for r in requests}, unlock)


def roots_of(requests: Sequence[Request], lock: Lockfile) -> list[Root]:
    """Return what must be installed: the request first, then everything installed."""
    roots = [Root(r.name, r.requirement, "you") for r in requests]
    named = {r.name for r in requests}
    for name, plugin in sorted(lock.plugins.items()):
        if name not in named:
            roots.append(Root(name, plugin.requested, "you (installed earlier)"))
    return roots


def _plan(
    job: _Job,
    resolved: Resolved,
    planned: Sequence[Planned],
    unlock: Sequence[str],
    requested: Mapping[str, Request],
) -> Outcome:
    """Return what the change will do: each version change (and why), kept ones, warnings."""
    notes = change_notes(
        resolved.resolution,
        {name: candidates_of(verified) for name, verified in resolved.docs.items()},
        {name: p.version for name, p in job.lock.plugins.items()},
        job.settings.options,
    )
    kept = kept_of(job.lock, resolved.resolution)
    # Kept plugins being upgraded had their yank explained by the resolver already.
    plugins = {**job.lock.plugins, **refreshed_yanks(job.lock, resolved.docs)}
    yanks = yank_warnings(plugins, [k.name for k in kept if k.name not in unlock])
    deprecations = deprecation_warnings(resolved, [p.name for p in planned], requested)
    return Outcome(
        changes=[
            Change(
                p.name,
                p.old.version if p.old else None,
                p.version.number,
                notes.get(p.name),
                deprecation_of(p.verified.plugin),
            )
            for p in planned
        ],
        unchanged=kept,
        warnings=[*resolved.resolution.warnings, *yanks, *deprecations],
        dry_run=job.settings.dry_run,
    )


def _apply(
    job: _Job, resolved: Resolved, requested: Mapping[str, Request], unlock: Sequence[str]
) -> Outcome:
    """Download, unpack and commit every changed plugin; record new requirements of kept ones.

    Kept plugins whose document was read get their yank and deprecation marks brought
    up to date.
    """
    planned = plan_downloads(job.lock, resolved, job.settings.limits)
    outcome = _plan(job, resolved, planned, unlock, requested)
    if job.settings.dry_run:
        return outcome
    if job.settings.on_plan is not None:
        job.settings.on_plan(outcome)
    plugins = {**job.lock.plugins, **refreshed_yanks(job.lock, resolved.docs)}
    plugins.update(refreshed_deprecations(plugins, resolved.docs))
    plugins.update(_rerequested(plugins, outcome.unchanged, requested))
    if not planned:
        if plugins != job.lock.plugins:
            write_lockfile(job.plugins_dir, job.lock.model_copy(update={"plugins": plugins}))
        return outcome
    with staging(job.plugins_dir) as txn_dir:
        download_all(
            job.registry.fetcher,
            {p.name: p.version for p in planned},
            txn_dir / "downloads",
            cache_dir=job.settings.cache_dir,
            progress=job.settings.progress,
            keep={locked.sha256 for locked in job.lock.plugins.values()},  # never pruned
        )
        for p in planned:
            files = unpack(
                txn_dir / "downloads" / p.name,
                p.version.entry.artifact.filename,
                txn_dir / "new" / p.name,
                limits=job.settings.limits,
            )
            plugins[p.name] = _locked_plugin(p, files, requested.get(p.name))
        commit(
            job.plugins_dir,
            txn_dir,
            [Move(p.name, has_new=True) for p in planned],
            _new_lock(job, plugins),
            _new_trust(job.trust, resolved),
        )
    return outcome


def _rerequested(
    plugins: Mapping[str, LockedPlugin], kept: Sequence[Kept], requested: Mapping[str, Request]
) -> dict[str, LockedPlugin]:
    """Return kept plugins asked for again with a requirement, recording that requirement."""
    return {
        k.name: plugins[k.name].model_copy(update={"requested": requirement})
        for k in kept
        if k.name in requested and (requirement := requested[k.name].requirement) is not None
    }


def _locked_plugin(
    planned: Planned, files: dict[str, str], request: Request | None
) -> LockedPlugin:
    """Return the lockfile entry of a freshly unpacked plugin."""
    entry, old = planned.version.entry, planned.old
    return LockedPlugin(
        version=planned.version.number,
        requested=request.requirement if request else (old.requested if old else None),
        explicit=bool(request) or (old.explicit if old else False),
        sha256=entry.artifact.sha256,
        size=entry.artifact.size,
        filename=entry.artifact.filename,
        dependencies=tuple(
            LockedDependency(name=d.name, req=d.req, kind=d.kind) for d in entry.dependencies
        ),
        files=files,
        signed_by=planned.verified.trust[planned.version.number].key_id,
        yanked=yank_reason(planned.verified, planned.version),
        deprecated=deprecation_of(planned.verified.plugin),
        host=entry.compatibility.host,
    )


def _new_lock(job: _Job, plugins: Mapping[str, LockedPlugin]) -> Lockfile:
    """Return the lockfile after the change: this registry, and the plugins by name."""
    return job.lock.model_copy(
        update={
            "registry": job.registry.name,
            "source": job.registry.fetcher.location,
            "plugins": dict(sorted(plugins.items())),
        }
    )


def _new_trust(trust: TrustFile, resolved: Resolved) -> TrustFile:
    """Return the pinned keys after the change: new pins of the selected plugins added."""
    pins = dict(trust.plugins)
    for name in resolved.resolution.selected:
        if name in resolved.pins:
            pins[name] = resolved.pins[name]
    return TrustFile(plugins=dict(sorted(pins.items())))


# --- uninstall ------------------------------------------------------------------------


def dependents_of(lock: Lockfile, name: str) -> list[str]:
    """Return the installed plugins that need `name` at run time, as `name version (req)`."""
    return [
        f"{other} {plugin.version} (needs {d.req})"
        for other, plugin in sorted(lock.plugins.items())
        for d in plugin.dependencies
        if d.name == name and d.kind == "runtime" and other != name
    ]


def uninstall(
    plugins_dir: Path, name: str, *, force: bool = False, dry_run: bool = False
) -> Outcome:
    """Remove an installed plugin, unless an installed plugin needs it (or `force`)."""
    with plugins_state(plugins_dir, create=not dry_run):
        lock = read_lockfile(plugins_dir)
        if name not in lock.plugins:
            raise InstallError(f"{name} is not installed in {plugins_dir}")
        needed_by = dependents_of(lock, name)
        if needed_by and not force:
            raise InstallError(
                f"{name} is needed by {', '.join(needed_by)}; uninstall those first, "
                "or pass --force to break them"
            )
        plugins = {n: p for n, p in lock.plugins.items() if n != name}
        outcome = Outcome(
            changes=[Change(name, lock.plugins[name].version, None)],
            warnings=yank_warnings(plugins),
            dry_run=dry_run,
        )
        if needed_by:
            outcome.warnings.append(f"{', '.join(needed_by)} may no longer work without {name}")
        if dry_run:
            return outcome
        with staging(plugins_dir) as txn_dir:
            commit(
                plugins_dir,
                txn_dir,
                [Move(name, has_new=False)],
                lock.model_copy(update={"plugins": plugins}),
                None,
            )
        return outcome


# --- trust ----------------------------------------------------------------------------


def repin(registry: Registry, plugins_dir: Path, name: str) -> PinChange:
    """Pin a plugin's current owner keys deliberately; return the pin before and after."""
    with plugins_state(plugins_dir):
        trust = read_trust(plugins_dir)
        verified = registry.verified(name)
        new = pin_of(verified.plugin)
        write_trust(
            plugins_dir, TrustFile(plugins=dict(sorted({**trust.plugins, name: new}.items())))
        )
        return PinChange(trust.plugins.get(name), new)
