"""Check installed files against the lockfile, and put back exactly what it records.

`verify` re-hashes every installed file (no network). `restore` downloads the
versions the lockfile names, checks the artifact against both the signed index and
the sha256 the lockfile recorded, unpacks it, checks every unpacked file against
the lockfile too, and commits the folders as one transaction. It serves
`install --reinstall NAME`, `verify --repair` and `install --locked` (another
machine's plugindex.lock, installed exactly, like `npm ci`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from builder.client.documents import Version
from builder.client.downloads import ProgressFactory, check_artifact_size, download_all
from builder.client.install import Change, InstallError, OnPlan, Outcome, check_same_registry
from builder.client.lockfile import (
    LockedPlugin,
    Lockfile,
    TrustFile,
    read_lockfile,
    read_trust,
    yank_warnings,
)
from builder.client.plan import Kept, refreshed_yanks, yank_reason
from builder.client.registry import Registry, Verified
from builder.client.signatures import TrustError, check_pin
from builder.client.transaction import Move, commit, plugins_state, staging
from builder.client.unpack import unpack
from builder.common.files import sha256_of_file
from builder.common.limits import DEFAULT_LIMITS, Limits


class Verification(NamedTuple):
    """What `verify_installed` found: files checked, every problem, the plugins damaged."""

    checked: int
    problems: list[str]
    damaged: list[str]  # names of plugins with at least one problem
    warnings: list[str]  # installed versions last seen yanked


def _plugin_problems(plugins_dir: Path, name: str, plugin: LockedPlugin) -> tuple[int, list[str]]:
    """Return the files checked in one plugin's folder and what is wrong with them."""
    folder = plugins_dir / name
    if not folder.is_dir():
        return 0, [f"{folder}: missing (expected {name} {plugin.version})"]
    found = {
        p.relative_to(folder).as_posix(): p
        for p in sorted(folder.rglob("*"))
        if p.is_file() or p.is_symlink()
    }
    problems = []
    for rel, expected in sorted(plugin.files.items()):
        path = found.pop(rel, None)
        if path is None:
            problems.append(f"{folder / rel}: missing (expected sha256 {expected})")
        elif path.is_symlink():
            problems.append(f"{folder / rel}: replaced by a link (expected a file)")
        elif (got := sha256_of_file(path)[0]) != expected:
            problems.append(f"{folder / rel}: modified (expected sha256 {expected}, got {got})")
    problems.extend(
        f"{path}: not installed by plugindex (unexpected file)" for path in found.values()
    )
    return len(plugin.files), problems


def _verify(plugins_dir: Path, lock: Lockfile) -> Verification:
    problems: list[str] = []
    damaged = []
    checked = 0
    for name, plugin in sorted(lock.plugins.items()):
        count, found = _plugin_problems(plugins_dir, name, plugin)
        checked += count
        problems += found
        if found:
            damaged.append(name)
    return Verification(checked, problems, damaged, yank_warnings(lock.plugins))


def verify_installed(plugins_dir: Path) -> Verification:
    """Re-hash every installed file against the lockfile; return files checked and problems."""
    with plugins_state(plugins_dir, create=False):
        return _verify(plugins_dir, read_lockfile(plugins_dir))


@dataclass(frozen=True)
class RestoreSettings:
    """How `restore` downloads: the cache, a progress display, limits, dry run, a plan hook."""

    cache_dir: Path | None = None
    progress: ProgressFactory | None = None
    limits: Limits = DEFAULT_LIMITS
    dry_run: bool = False
    on_plan: OnPlan | None = None


def restore(
    registry: Registry,
    plugins_dir: Path,
    names: Sequence[str],
    *,
    only_damaged: bool,
    settings: RestoreSettings | None = None,
) -> Outcome:
    """Install again exactly the versions the lockfile records, verified against it.

    `names` empty means every plugin in the lockfile; with `only_damaged`, only those
    `verify` finds missing or changed are downloaded.
    """
    settings = settings or RestoreSettings()
    with plugins_state(plugins_dir, create=not settings.dry_run):
        lock, trust = read_lockfile(plugins_dir), read_trust(plugins_dir)
        unknown = [n for n in names if n not in lock.plugins]
        if unknown:
            raise InstallError(
                f"{', '.join(unknown)}: not installed in {plugins_dir} (use install NAME)"
            )
        if not lock.plugins:
            raise InstallError(
                f"{plugins_dir / 'plugindex.lock'}: no plugins recorded (expected a lockfile "
                "to restore from; copy plugindex.lock into the plugins folder first)"
            )
        check_same_registry(lock, registry, plugins_dir)
        targets = list(names) or sorted(lock.plugins)
        if only_damaged:
            damaged = set(_verify(plugins_dir, lock).damaged)
            targets = [n for n in targets if n in damaged]
        if not targets:
            return Outcome(
                unchanged=[Kept(n, p.version) for n, p in sorted(lock.plugins.items())],
                warnings=yank_warnings(lock.plugins),
                dry_run=settings.dry_run,
            )
        docs = registry.verified_many(targets)
        versions = {n: _locked_version(docs[n], lock.plugins[n], settings.limits) for n in targets}
        pins = {}
        for name in targets:
            if pin := check_pin(registry.name, docs[name].plugin, trust.plugins.get(name)):
                pins[name] = pin
        lock = lock.model_copy(update={"plugins": {**lock.plugins, **refreshed_yanks(lock, docs)}})
        outcome = Outcome(
            changes=[
                Change(
                    n,
                    lock.plugins[n].version if (plugins_dir / n).is_dir() else None,
                    lock.plugins[n].version,
                )
                for n in targets
            ],
            unchanged=[
                Kept(n, p.version) for n, p in sorted(lock.plugins.items()) if n not in targets
            ],
            warnings=yank_warnings(lock.plugins),
            dry_run=settings.dry_run,
        )
        if settings.dry_run:
            return outcome
        if settings.on_plan is not None:
            settings.on_plan(outcome)
        _replace(
            registry,
            plugins_dir,
            lock,
            docs=docs,
            versions=versions,
            settings=settings,
            trust=TrustFile(plugins=dict(sorted({**trust.plugins, **pins}.items()))),
        )
        return outcome


def _locked_version(verified: Verified, locked: LockedPlugin, limits: Limits) -> Version:
    """Return the document's entry for the locked version, refusing one that differs."""
    plugin = verified.plugin
    version = plugin.version(locked.version)
    if version is None:
        raise InstallError(
            f"{plugin.source}: {plugin.name} {locked.version} is not in the registry "
            f"(the lockfile records it; available: {', '.join(v.number for v in plugin.versions)})"
        )
    artifact = version.entry.artifact
    if (artifact.sha256, artifact.size) != (locked.sha256, locked.size):
        raise TrustError(
            f"{plugin.source}: {plugin.name} {locked.version}: the signed index describes "
            f"another artifact than the lockfile (expected sha256 {locked.sha256}, "
            f"{locked.size} bytes; got {artifact.sha256}, {artifact.size} bytes); "
            "nothing was installed"
        )
    check_artifact_size(plugin.name, version, limits)
    return version


def _replace(
    registry: Registry,
    plugins_dir: Path,
    lock: Lockfile,
    *,
    docs: Mapping[str, Verified],
    versions: Mapping[str, Version],
    settings: RestoreSettings,
    trust: TrustFile,
) -> None:
    """Download, unpack, check against the lockfile, and commit the restored folders."""
    plugins = dict(lock.plugins)
    with staging(plugins_dir) as txn_dir:
        download_all(
            registry.fetcher,
            versions,
            txn_dir / "downloads",
            cache_dir=settings.cache_dir,
            progress=settings.progress,
        )
        for name, version in versions.items():
            locked = lock.plugins[name]
            files = unpack(
                txn_dir / "downloads" / name,
                version.entry.artifact.filename,
                txn_dir / "new" / name,
                limits=settings.limits,
            )
            if locked.files and files != locked.files:
                differ = sorted(set(files.items()) ^ set(locked.files.items()))[0][0]
                raise TrustError(
                    f"{name} {locked.version}: the artifact unpacks to other files than the "
                    f"lockfile records (first: {differ}); nothing was installed"
                )
            plugins[name] = locked.model_copy(
                update={
                    "files": files,
                    "signed_by": docs[name].trust[version.number].key_id,
                    "yanked": yank_reason(docs[name], version),
                }
            )
        commit(
            plugins_dir,
            txn_dir,
            [Move(name, has_new=True) for name in versions],
            lock.model_copy(update={"plugins": plugins}),
            trust,
        )
