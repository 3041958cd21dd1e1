"""Where the client's settings come from: options, then environment, then a config file.

The config file is `config.toml` in the user config folder (`PLUGINDEX_CONFIG_DIR`
overrides it), with optional keys `registry` (a registry's name, URL or folder),
`plugins_dir`, `cache_dir`, `host_version`, `timeout` and a `[registries]` table of
named registries (`name = "URL"`, written by `plugindex registry add`). Defaults:
plugins and the registries' trust (TUF state) in the user data folder
(`PLUGINDEX_DATA_DIR` overrides it), cache in the user cache folder (`platformdirs`).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from builder.common.errors import PlugindexError
from builder.common.fetch import READ_TIMEOUT
from builder.common.files import write_atomic
from builder.format.names import name_problem
from builder.format.requirements import RequirementError, key_of

APP = "plugindex"
CONFIG_FILE = "config.toml"
_KEYS = "registry, plugins_dir, cache_dir, host_version, timeout, registries"


@dataclass(frozen=True)
class ClientConfig:
    """What config.toml says (every key optional)."""

    registry: str | None = None  # a name from `registries`, or a URL or folder
    # name -> URL of registries added with `registry add`
    registries: Mapping[str, str] = field(default_factory=dict)
    plugins_dir: str | None = None
    cache_dir: str | None = None
    host_version: str | None = None  # the host application's version
    timeout: float | None = None  # seconds of silence allowed, more than 0, at most 600


class ConfigValueError(ValueError):
    """A config.toml value that is not what its key expects (`key`: where it is)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")


def _text(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ConfigValueError(key, f"expected a string, got {value!r}")


def parse_config(data: Mapping[str, object]) -> ClientConfig:
    """Return the config of a parsed config.toml, refusing unknown keys and bad values.

    A dataclass checked here, not a pydantic model: every `plugindex` command reads the
    config, and importing pydantic costs a search a sixth of its time.
    """
    for key in data:
        if key not in ClientConfig.__dataclass_fields__:
            raise ConfigValueError(key, f"not a config key (expected keys: {_KEYS})")
    host_version = _text(data, "host_version")
    if host_version:
        try:
            key_of(host_version)
        except RequirementError as e:
            raise ConfigValueError("host_version", str(e)) from None
    registries = data.get("registries", {})
    if not isinstance(registries, dict):
        raise ConfigValueError("registries", f"expected a table of names, got {registries!r}")
    for name, url in registries.items():
        if (problem := name_problem(name)) is not None:
            raise ConfigValueError("registries", f"{name!r}: not a registry name ({problem})")
        if not isinstance(url, str):
            raise ConfigValueError(f"registries.{name}", f"expected a URL, got {url!r}")
    timeout = data.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 600
    ):
        raise ConfigValueError(
            "timeout", f"expected seconds, more than 0 and at most 600, got {timeout!r}"
        )
    return ClientConfig(
        registry=_text(data, "registry"),
        registries=dict(registries),
        plugins_dir=_text(data, "plugins_dir"),
        cache_dir=_text(data, "cache_dir"),
        host_version=host_version,
        timeout=float(timeout) if timeout is not None else None,
    )


@dataclass(frozen=True)
class Settings:
    registry: str | None
    plugins_dir: Path
    cache_dir: Path
    host_version: str | None
    registries: Mapping[str, str]  # name -> URL
    data_dir: Path  # the registries' trust: tuf/NAME/
    timeout: float  # seconds of silence before a request is given up


def config_path() -> Path:
    """Return the config file's path."""
    folder = os.environ.get("PLUGINDEX_CONFIG_DIR")
    return (Path(folder) if folder else platformdirs.user_config_path(APP)) / CONFIG_FILE


def user_data_dir() -> Path:
    """Return the user data folder (the registries' trust lives in `tuf/` there)."""
    folder = os.environ.get("PLUGINDEX_DATA_DIR")
    return Path(folder).expanduser() if folder else platformdirs.user_data_path(APP)


def read_config(path: Path) -> ClientConfig:
    """Read the config file (no file: every default)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ClientConfig()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PlugindexError(f"{path}: cannot read the config file ({e})") from None
    try:
        return parse_config(data)
    except ConfigValueError as e:
        raise PlugindexError(f"{path}: {e}") from None


def _timeout(text: str | None) -> float | None:
    """Return $PLUGINDEX_TIMEOUT in seconds, refusing anything but a positive number."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 600:
        raise PlugindexError(
            f"PLUGINDEX_TIMEOUT: expected seconds, more than 0 and at most 600, got {text!r}"
        )
    return value


def settings(
    *,
    registry: str | None,
    plugins_dir: Path | None,
    cache_dir: Path | None,
    host_version: str | None = None,
) -> Settings:
    """Return the settings: the given values (options or environment), else the config file."""
    config = read_config(config_path())
    return Settings(
        registry=registry or config.registry,
        plugins_dir=plugins_dir
        or (
            Path(config.plugins_dir).expanduser()
            if config.plugins_dir
            else platformdirs.user_data_path(APP) / "plugins"
        ),
        cache_dir=cache_dir
        or (
            Path(config.cache_dir).expanduser()
            if config.cache_dir
            else platformdirs.user_cache_path(APP)
        ),
        host_version=host_version or config.host_version,
        registries=config.registries,
        data_dir=user_data_dir(),
        timeout=_timeout(os.environ.get("PLUGINDEX_TIMEOUT")) or config.timeout or READ_TIMEOUT,
    )


# --- `registry add`: a named registry in config.toml -------------------------------------

_TABLE = re.compile(r"^\s*\[")
_REGISTRIES = re.compile(r"^\s*\[\s*registries\s*\]\s*(#.*)?$")


def add_registry(path: Path, name: str, url: str) -> bool:
    """Record `name = "url"` under [registries] in config.toml; make it the default if none.

    Only the lines concerned change (comments and other keys stay). Returns whether
    the registry became the default.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as e:
        raise PlugindexError(f"{path}: cannot read the config file ({e})") from None
    config = read_config(path) if text else ClientConfig()
    entry = f"{name} = {json.dumps(url)}"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _REGISTRIES.match(line)), None)
    if start is None:
        lines += ([""] if lines else []) + ["[registries]", entry]
    else:
        end = next((i for i in range(start + 1, len(lines)) if _TABLE.match(lines[i])), len(lines))
        key = re.compile(rf"^\s*{re.escape(name)}\s*=")
        found = next((i for i in range(start + 1, end) if key.match(lines[i])), None)
        if found is None:
            lines.insert(end, entry)
        else:
            lines[found] = entry
    default = config.registry is None
    if default:  # a top-level key goes before the first table
        first = next((i for i, line in enumerate(lines) if _TABLE.match(line)), len(lines))
        lines.insert(first, f"registry = {json.dumps(name)}")
    result = "\n".join(lines) + "\n"
    try:
        written = parse_config(tomllib.loads(result))
    except (tomllib.TOMLDecodeError, ConfigValueError) as e:
        raise PlugindexError(
            f"{path}: cannot add registry {name!r} to the config file without breaking it "
            f"({e}); add `{entry}` under [registries] by hand"
        ) from None
    if written.registries.get(name) != url:
        raise PlugindexError(
            f"{path}: cannot add registry {name!r} (the file defines [registries] in a way "
            f"this edit does not follow); add `{entry}` under [registries] by hand"
        )
    write_atomic(path, result.encode("utf-8"))
    return default
