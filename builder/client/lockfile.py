"""The state of a plugins folder: the lockfile (what is installed) and the pinned keys.

Both are JSON files in the plugins folder, written atomically. The lockfile records
exactly what each plugin's folder holds (every file's sha256), so `verify` needs no
network; the trust file keeps owner keys pinned even after a plugin is uninstalled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from builder.client.signatures import Pin
from builder.common.errors import PlugindexError
from builder.common.files import write_atomic

LOCKFILE = "plugindex.lock"
TRUSTFILE = "plugindex-trust.json"
STATE_FORMAT = 1


class StateError(PlugindexError):
    """The lockfile or trust file cannot be read or written."""


class _State(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LockedDependency(_State):
    name: str
    req: str
    kind: str


class LockedDeprecation(_State):
    message: str
    replacement: str | None = None


class LockedPlugin(_State):
    version: str
    requested: str | None = None  # the requirement the user asked for, if any
    explicit: bool = False  # asked for by name (not only installed as a dependency)
    sha256: str  # of the artifact
    size: int  # bytes of the artifact
    filename: str
    dependencies: tuple[LockedDependency, ...] = ()
    files: dict[str, str] = {}  # path inside the plugin folder -> sha256
    signed_by: str | None = None  # key id that verified the release
    yanked: str | None = None  # the yank's reason, as the registry last said (install, list…)
    deprecated: LockedDeprecation | None = None  # as the registry last said (install, list…)
    host: str | None = None  # the version's compatibility.host (None: any host)


class Lockfile(_State):
    format: int = STATE_FORMAT
    registry: str | None = None  # the registry's name (from config.json)
    source: str | None = None  # where it was fetched from
    transaction: str | None = None  # the last committed change (see transaction.recover)
    plugins: dict[str, LockedPlugin] = {}


class TrustFile(_State):
    format: int = STATE_FORMAT
    plugins: dict[str, Pin] = {}


M = TypeVar("M", bound=_State)


def _read(path: Path, model: type[M]) -> M:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return model()
    except OSError as e:
        raise StateError(f"{path}: cannot read ({e.strerror})") from e
    try:
        return model.model_validate(json.loads(data))
    except RecursionError:
        raise StateError(
            f"{path}: not a plugindex {model.__name__.lower()} (nested too deeply); "
            "restore it or remove the plugins folder"
        ) from None
    except (ValueError, ValidationError) as e:
        first = str(e).splitlines()[0 if not isinstance(e, ValidationError) else 1]
        raise StateError(
            f"{path}: not a plugindex {model.__name__.lower()} ({first.strip()}); "
            "restore it or remove the plugins folder"
        ) from None


def _write(path: Path, state: _State) -> None:
    text = json.dumps(state.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
    try:
        # Durable: a crash must not lose pinned keys, nor the lockfile's record of the last
        # committed transaction (which `transaction.recover` trusts).
        write_atomic(path, text.encode("utf-8"), durable=True)
    except OSError as e:
        raise StateError(f"{path}: cannot write ({e.strerror})") from e


def read_lockfile(plugins_dir: Path) -> Lockfile:
    """Return the lockfile of a plugins folder (empty when there is none)."""
    return _read(plugins_dir / LOCKFILE, Lockfile)


def write_lockfile(plugins_dir: Path, lock: Lockfile) -> None:
    """Write the lockfile atomically."""
    _write(plugins_dir / LOCKFILE, lock)


def read_trust(plugins_dir: Path) -> TrustFile:
    """Return the pinned owner keys of a plugins folder."""
    return _read(plugins_dir / TRUSTFILE, TrustFile)


def write_trust(plugins_dir: Path, trust: TrustFile) -> None:
    """Write the pinned owner keys atomically."""
    _write(plugins_dir / TRUSTFILE, trust)


def yank_warnings(
    plugins: Mapping[str, LockedPlugin], names: Iterable[str] | None = None
) -> list[str]:
    """Return one warning per installed version last seen yanked (all plugins, or `names`)."""
    chosen = sorted(plugins) if names is None else sorted(set(names) & set(plugins))
    return [
        f"{name} {plugins[name].version} (installed) is yanked: {plugins[name].yanked}"
        for name in chosen
        if plugins[name].yanked
    ]
