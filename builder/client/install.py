"""Install, upgrade and uninstall: resolve, download and verify, stage, then move into place.

Every change to a plugins folder is one transaction under `<plugins>/.plugindex/`:
artifacts are downloaded and checked (size and sha256 while streaming, against the
signed index), unpacked into a staging folder, and only then moved into place,
old folders aside first; the lockfile is written last and names the transaction.
Any failure before that undoes the moves; a transaction interrupted harder (power
loss, SIGKILL) is undone by the next command (`recover`). So the plugins folder
always matches its lockfile, before or after, never half-way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from builder.client.documents import Version
from builder.client.lockfile import (
    LockedDependency,
    LockedPlugin,
    Lockfile,
    TrustFile,
    read_lockfile,
    read_trust,
    write_atomic,
    write_lockfile,
    write_trust,
)
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
from builder.client.signatures import Pin, TrustError, check_pin, is_yanked, pin_of
from builder.client.unpack import unpack
from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode
from builder.common.fetch import Fetcher, TooLargeError
from builder.format.requirements import key_of

log = logging.getLogger(__name__)

STATE_DIR = ".plugindex"  # inside the plugins folder: lock, transactions
ARTIFACT_CACHE = "artifacts"  # inside the cache folder: verified artifacts by sha256
MAX_ARTIFACT_SIZE = 1024 * 1024 * 1024  # bytes; a larger declared size is refused
_PARALLEL_DOWNLOADS = 4
_CHUNK = 1 << 16

# A progress display: given the total bytes, a context yielding "n more bytes arrived".
ProgressFactory = Callable[[int], AbstractContextManager[Callable[[int], None]]]


class InstallError(PlugindexError):
    """The request cannot be carried out with what is installed (not installed, needed)."""

    exit_code = ExitCode.UNSATISFIABLE


@dataclass(frozen=True)
class Change:
    name: str
    old: str | None  # the version before (None: newly installed)
    new: str | None  # the version after (None: removed)


@dataclass
class Outcome:
    """What a command changed, for people and for --json."""

    changes: list[Change] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Request:
    """One NAME[@REQUIREMENT] from the command line."""

    name: str
    requirement: str | None = None


# --- the plugins folder: lock and recovery --------------------------------------------


@contextlib.contextmanager
def plugins_state(plugins_dir: Path) -> Iterator[None]:
    """Hold the plugins folder's lock (one command at a time) and finish any interrupted change."""
    state = plugins_dir / STATE_DIR
    try:
        state.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PlugindexError(
            f"{plugins_dir}: cannot create the plugins folder ({e.strerror})"
        ) from e
    with (state / "lock").open("a+b") as handle:
        # POSIX only; elsewhere concurrent runs on one plugins folder are the user's care.
        with contextlib.suppress(ImportError):
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        recover(plugins_dir)
        yield


def _journal(txn_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((txn_dir / "journal.json").read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _undo(plugins_dir: Path, txn_dir: Path, entries: Sequence[Mapping[str, object]]) -> None:
    """Put back what a transaction moved, whatever step it stopped at."""
    for entry in reversed(entries):
        name = str(entry["name"])
        target = plugins_dir / name
        old = txn_dir / "old" / name
        new = txn_dir / "new" / name
        # The target is the new folder only while the old one is still aside: once an
        # earlier undo put the old one back (and died before cleaning up), it is the old.
        old_aside = old.exists() or not entry.get("had_old")
        if entry.get("has_new") and not new.exists() and target.exists() and old_aside:
            shutil.rmtree(target)  # the new folder had been moved in
        if entry.get("had_old") and old.exists() and not target.exists():
            old.rename(target)


def recover(plugins_dir: Path) -> None:
    """Finish or undo transactions left behind by an interrupted command."""
    state = plugins_dir / STATE_DIR
    leftovers = sorted(state.glob("txn-*"))
    if not leftovers:
        return
    committed = read_lockfile(plugins_dir).transaction
    for txn_dir in leftovers:
        journal = _journal(txn_dir)
        if journal is not None and journal.get("transaction") != committed:
            entries = journal.get("entries")
            if isinstance(entries, list):
                log.warning("undoing an interrupted change in %s", plugins_dir)
                _undo(plugins_dir, txn_dir, entries)
        shutil.rmtree(txn_dir, ignore_errors=True)


def _commit(
    plugins_dir: Path,
    txn_dir: Path,
    moves: Sequence[tuple[str, bool]],
    lock: Lockfile,
    trust: TrustFile | None,
) -> None:
    """Move staged folders into place (old ones aside first), then write the state files."""
    entries = [
        {"name": name, "had_old": (plugins_dir / name).exists(), "has_new": has_new}
        for name, has_new in moves
    ]
    write_atomic(
        txn_dir / "journal.json",
        json.dumps({"transaction": txn_dir.name, "entries": entries}).encode("utf-8"),
    )
    (txn_dir / "old").mkdir(exist_ok=True)
    try:
        for entry in entries:
            name = str(entry["name"])
            if entry["had_old"]:
                (plugins_dir / name).rename(txn_dir / "old" / name)
            if entry["has_new"]:
                (txn_dir / "new" / name).rename(plugins_dir / name)
        if trust is not None:
            write_trust(plugins_dir, trust)
        write_lockfile(plugins_dir, lock.model_copy(update={"transaction": txn_dir.name}))
    except BaseException:
        _undo(plugins_dir, txn_dir, entries)
        raise
    shutil.rmtree(txn_dir, ignore_errors=True)


@contextlib.contextmanager
def _transaction(plugins_dir: Path) -> Iterator[Path]:
    """Yield a fresh staging folder; remove it whatever happens."""
    txn_dir = plugins_dir / STATE_DIR / f"txn-{secrets.token_hex(8)}"
    (txn_dir / "new").mkdir(parents=True)
    (txn_dir / "downloads").mkdir()
    try:
        yield txn_dir
    finally:
        shutil.rmtree(txn_dir, ignore_errors=True)


# --- resolution against the registry --------------------------------------------------


def candidates_of(verified: Verified) -> list[Candidate]:
    """Return the resolver's view of every version of a verified document."""
    plugin = verified.plugin
    found = []
    for version in plugin.versions:
        entry = version.entry
        yanked = (
            entry.yanked.reason
            if entry.yanked and is_yanked(version, verified.trust[version.number])
            else None
        )
        found.append(
            Candidate(
                plugin.name,
                version.number,
                version.key,
                tuple(Dependency(d.name, d.req, d.kind) for d in entry.dependencies),
                entry.compatibility.host,
                yanked,
            )
        )
    return found


def locked_candidate(name: str, locked: LockedPlugin) -> Candidate:
    """Return the resolver's view of an installed plugin (no document needed)."""
    return Candidate(
        name,
        locked.version,
        key_of(locked.version),
        tuple(Dependency(d.name, d.req, d.kind) for d in locked.dependencies),
        None,
        locked.yanked,
    )


def _who_needs(name: str, docs: Mapping[str, Verified]) -> str:
    for other, verified in sorted(docs.items()):
        for version in reversed(verified.plugin.versions):
            if any(d.name == name for d in version.entry.dependencies):
                return f"{other} {version.number} depends on it"
    return "you asked for it"


def resolve_against(
    registry: Registry,
    roots: Sequence[Root],
    lock: Lockfile,
    pins: Mapping[str, Pin],
    *,
    unlock: Sequence[str],
    options: Options,
) -> tuple[Resolution, dict[str, Verified], dict[str, Pin]]:
    """Resolve, fetching documents a level at a time; check each against its pin.

    Returns the resolution, the documents fetched, and the pins they would record.
    """
    locked = {name: locked_candidate(name, p) for name, p in lock.plugins.items()}
    docs: dict[str, Verified] = {}
    new_pins: dict[str, Pin] = {}
    while True:
        try:
            available = {name: candidates_of(v) for name, v in docs.items()}
            resolution = resolve(roots, available, locked=locked, unlock=unlock, options=options)
        except NeedDocumentsError as need:
            wanted = need.names - docs.keys()
            if not wanted:
                raise
            try:
                fetched = registry.verified_many(wanted)
            except UnknownPluginError as e:
                missing = next((n for n in sorted(wanted) if n in str(e)), "")
                raise UnknownPluginError(f"{e} ({_who_needs(missing, docs)})") from None
            for name, verified in fetched.items():
                pin = check_pin(registry.name, verified.plugin, pins.get(name))
                if pin is not None:
                    new_pins[name] = pin
            docs.update(fetched)
            continue
        return resolution, docs, new_pins


# --- downloads ------------------------------------------------------------------------


class _HashingWriter:
    """A sink that hashes and counts what passes through it."""

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.sink.write(data)


def _copy_verified(source: Path, dest: Path, sha256: str) -> bool:
    """Copy a cached artifact, hashing it; False (and no copy) if it changed."""
    with source.open("rb") as stream, dest.open("wb") as sink:
        writer = _HashingWriter(sink)
        while chunk := stream.read(_CHUNK):
            writer.write(chunk)
    if writer.digest.hexdigest() == sha256:
        return True
    dest.unlink()
    return False


def fetch_artifact(
    fetcher: Fetcher,
    name: str,
    version: Version,
    dest: Path,
    *,
    cache_dir: Path | None,
    progress: Callable[[int], None] | None,
) -> None:
    """Download a version's artifact into `dest`, verified against the signed index."""
    artifact = version.entry.artifact
    cached = cache_dir / ARTIFACT_CACHE / artifact.sha256 if cache_dir else None
    if cached is not None and cached.is_file():
        if _copy_verified(cached, dest, artifact.sha256):
            if progress is not None:
                progress(artifact.size)
            return
        cached.unlink(missing_ok=True)  # a damaged cache entry: fetch again
    url = fetcher.url_of(artifact.download)
    with dest.open("xb") as sink:
        writer = _HashingWriter(sink)
        try:
            fetcher.download(artifact.download, writer, max_size=artifact.size, progress=progress)
        except TooLargeError:
            raise TrustError(
                f"{url}: {name} {version.number}: larger than the signed index says "
                f"(expected {artifact.size} bytes, got more); nothing was installed"
            ) from None
    if writer.size != artifact.size:
        raise TrustError(
            f"{url}: {name} {version.number}: size does not match the signed index "
            f"(expected {artifact.size} bytes, got {writer.size}); nothing was installed"
        )
    got = writer.digest.hexdigest()
    if got != artifact.sha256:
        raise TrustError(
            f"{url}: {name} {version.number}: sha256 does not match the signed index "
            f"(expected {artifact.sha256}, got {got}); nothing was installed"
        )
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cached, dest.read_bytes())
        except OSError as e:
            log.warning("cannot cache %s: %s", cached, e)


# --- install and upgrade --------------------------------------------------------------


def _roots(requests: Sequence[Request], lock: Lockfile) -> list[Root]:
    """Return what must be installed: the request first, then everything installed."""
    roots = [Root(r.name, r.requirement, "you") for r in requests]
    named = {r.name for r in requests}
    for name, plugin in sorted(lock.plugins.items()):
        if name not in named:
            roots.append(Root(name, plugin.requested, "you (installed earlier)"))
    return roots


def _apply(
    registry: Registry,
    plugins_dir: Path,
    *,
    lock: Lockfile,
    trust: TrustFile,
    resolution: Resolution,
    docs: Mapping[str, Verified],
    new_pins: Mapping[str, Pin],
    requests: Sequence[Request],
    cache_dir: Path | None,
    progress: ProgressFactory | None,
) -> Outcome:
    outcome = Outcome(warnings=list(resolution.warnings))
    requested = {r.name: r for r in requests}
    plugins = dict(lock.plugins)
    todo: list[tuple[str, Verified, Version]] = []
    for name, candidate in sorted(resolution.selected.items()):
        old = lock.plugins.get(name)
        if old is not None and old.version == candidate.version:
            outcome.unchanged.append((name, old.version))
            if name in requested and requested[name].requirement is not None:
                plugins[name] = old.model_copy(update={"requested": requested[name].requirement})
            continue
        verified = docs[name]
        version = verified.plugin.version(candidate.version)
        assert version is not None  # the candidate came from this document
        if version.entry.artifact.size > MAX_ARTIFACT_SIZE:
            raise TrustError(
                f"{name} {version.number}: artifact too large (expected at most "
                f"{MAX_ARTIFACT_SIZE} bytes, the index says {version.entry.artifact.size})"
            )
        todo.append((name, verified, version))
        outcome.changes.append(Change(name, old.version if old else None, candidate.version))
    if not todo:
        if plugins != lock.plugins:
            write_lockfile(plugins_dir, lock.model_copy(update={"plugins": plugins}))
        return outcome
    with _transaction(plugins_dir) as txn_dir:
        total = sum(v.entry.artifact.size for _, _, v in todo)
        display = progress(total) if progress else contextlib.nullcontext(None)
        with display as advance, ThreadPoolExecutor(max_workers=_PARALLEL_DOWNLOADS) as pool:
            futures = [
                pool.submit(
                    fetch_artifact,
                    registry.fetcher,
                    name,
                    version,
                    txn_dir / "downloads" / name,
                    cache_dir=cache_dir,
                    progress=advance,
                )
                for name, _, version in todo
            ]
            for future in futures:
                future.result()
        for name, verified, version in todo:
            entry = version.entry
            files = unpack(
                txn_dir / "downloads" / name, entry.artifact.filename, txn_dir / "new" / name
            )
            old = lock.plugins.get(name)
            wanted = requested.get(name)
            plugins[name] = LockedPlugin(
                version=version.number,
                requested=wanted.requirement if wanted else (old.requested if old else None),
                explicit=bool(wanted) or (old.explicit if old else False),
                sha256=entry.artifact.sha256,
                size=entry.artifact.size,
                filename=entry.artifact.filename,
                dependencies=tuple(
                    LockedDependency(name=d.name, req=d.req, kind=d.kind)
                    for d in entry.dependencies
                ),
                files=files,
                signed_by=verified.trust[version.number].key_id,
                yanked=(
                    entry.yanked.reason
                    if entry.yanked and is_yanked(version, verified.trust[version.number])
                    else None
                ),
            )
        pins = dict(trust.plugins)
        for name in resolution.selected:
            if name in new_pins:
                pins[name] = new_pins[name]
        new_lock = lock.model_copy(
            update={
                "registry": registry.name,
                "source": registry.fetcher.location,
                "plugins": dict(sorted(plugins.items())),
            }
        )
        _commit(
            plugins_dir,
            txn_dir,
            [(name, True) for name, _, _ in todo],
            new_lock,
            TrustFile(plugins=dict(sorted(pins.items()))),
        )
    return outcome


def _check_registry(registry: Registry, lock: Lockfile, plugins_dir: Path) -> None:
    if lock.registry is not None and lock.plugins and lock.registry != registry.name:
        raise InstallError(
            f"{plugins_dir}: holds plugins from registry {lock.registry!r}, not "
            f"{registry.name!r} ({registry.fetcher.location}); use another --plugins-dir"
        )


def install(
    registry: Registry,
    plugins_dir: Path,
    requests: Sequence[Request],
    *,
    options: Options,
    cache_dir: Path | None = None,
    progress: ProgressFactory | None = None,
) -> Outcome:
    """Install the requested plugins (the newest fitting versions) and what they need."""
    with plugins_state(plugins_dir):
        lock, trust = read_lockfile(plugins_dir), read_trust(plugins_dir)
        _check_registry(registry, lock, plugins_dir)
        resolution, docs, pins = resolve_against(
            registry,
            _roots(requests, lock),
            lock,
            trust.plugins,
            unlock=[r.name for r in requests],
            options=options,
        )
        return _apply(
            registry,
            plugins_dir,
            lock=lock,
            trust=trust,
            resolution=resolution,
            docs=docs,
            new_pins=pins,
            requests=requests,
            cache_dir=cache_dir,
            progress=progress,
        )


def upgrade(
    registry: Registry,
    plugins_dir: Path,
    names: Sequence[str],
    *,
    options: Options,
    cache_dir: Path | None = None,
    progress: ProgressFactory | None = None,
) -> Outcome:
    """Upgrade the named installed plugins (all when none are named), within their requirements."""
    with plugins_state(plugins_dir):
        lock, trust = read_lockfile(plugins_dir), read_trust(plugins_dir)
        _check_registry(registry, lock, plugins_dir)
        for name in names:
            if name not in lock.plugins:
                raise InstallError(f"{name} is not installed in {plugins_dir} (use install)")
        unlock = list(names) or sorted(lock.plugins)
        if not unlock:
            return Outcome()
        resolution, docs, pins = resolve_against(
            registry, _roots([], lock), lock, trust.plugins, unlock=unlock, options=options
        )
        return _apply(
            registry,
            plugins_dir,
            lock=lock,
            trust=trust,
            resolution=resolution,
            docs=docs,
            new_pins=pins,
            requests=[],
            cache_dir=cache_dir,
            progress=progress,
        )


def dependents_of(lock: Lockfile, name: str) -> list[str]:
    """Return the installed plugins that need `name` at run time, as `name version (req)`."""
    return [
        f"{other} {plugin.version} (needs {d.req})"
        for other, plugin in sorted(lock.plugins.items())
        for d in plugin.dependencies
        if d.name == name and d.kind == "runtime" and other != name
    ]


def uninstall(plugins_dir: Path, name: str, *, force: bool = False) -> Outcome:
    """Remove an installed plugin, unless an installed plugin needs it (or `force`)."""
    with plugins_state(plugins_dir):
        lock = read_lockfile(plugins_dir)
        if name not in lock.plugins:
            raise InstallError(f"{name} is not installed in {plugins_dir}")
        needed_by = dependents_of(lock, name)
        if needed_by and not force:
            raise InstallError(
                f"{name} is needed by {', '.join(needed_by)}; uninstall those first, "
                "or pass --force to break them"
            )
        outcome = Outcome(changes=[Change(name, lock.plugins[name].version, None)])
        if needed_by:
            outcome.warnings.append(f"{', '.join(needed_by)} may no longer work without {name}")
        plugins = {n: p for n, p in lock.plugins.items() if n != name}
        with _transaction(plugins_dir) as txn_dir:
            _commit(
                plugins_dir,
                txn_dir,
                [(name, False)],
                lock.model_copy(update={"plugins": plugins}),
                None,
            )
        return outcome


# --- verify ---------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_installed(plugins_dir: Path) -> tuple[int, list[str]]:
    """Re-hash every installed file against the lockfile; return (files checked, problems)."""
    with plugins_state(plugins_dir):
        lock = read_lockfile(plugins_dir)
    problems: list[str] = []
    checked = 0
    for name, plugin in sorted(lock.plugins.items()):
        folder = plugins_dir / name
        if not folder.is_dir():
            problems.append(f"{folder}: missing (expected {name} {plugin.version})")
            continue
        found = {
            p.relative_to(folder).as_posix(): p
            for p in sorted(folder.rglob("*"))
            if p.is_file() or p.is_symlink()
        }
        for rel, expected in sorted(plugin.files.items()):
            path = found.pop(rel, None)
            checked += 1
            if path is None:
                problems.append(f"{folder / rel}: missing (expected sha256 {expected})")
            elif path.is_symlink():
                problems.append(f"{folder / rel}: replaced by a link (expected a file)")
            elif (got := _sha256(path)) != expected:
                problems.append(f"{folder / rel}: modified (expected sha256 {expected}, got {got})")
        problems.extend(
            f"{path}: not installed by plugindex (unexpected file)" for path in found.values()
        )
    return checked, problems


def repin(registry: Registry, plugins_dir: Path, name: str) -> tuple[Pin | None, Pin]:
    """Pin a plugin's current owner keys deliberately; return (old pin, new pin)."""
    with plugins_state(plugins_dir):
        trust = read_trust(plugins_dir)
        verified = registry.verified(name)
        new = pin_of(verified.plugin)
        write_trust(
            plugins_dir, TrustFile(plugins=dict(sorted({**trust.plugins, name: new}.items())))
        )
        return trust.plugins.get(name), new
