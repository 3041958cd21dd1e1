"""Where the client's settings come from: options, then environment, then a config file.

The config file is `config.toml` in the user config folder (`PLUGINDEX_CONFIG_DIR`
overrides it), with optional keys `registry`, `plugins_dir`, `cache_dir` and
`host_version`. Defaults: plugins in the user data folder, cache in the user cache
folder (`platformdirs`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from builder.common.errors import PlugindexError
from builder.format.requirements import RequirementError, key_of

APP = "plugindex"
CONFIG_FILE = "config.toml"


class ClientConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    registry: str | None = None  # URL or folder of a published registry
    plugins_dir: str | None = None
    cache_dir: str | None = None
    host_version: str | None = None  # the host application's version

    @field_validator("host_version")
    @classmethod
    def _semantic_version(cls, value: str | None) -> str | None:
        if value:
            try:
                key_of(value)
            except RequirementError as e:
                raise ValueError(str(e)) from None
        return value


@dataclass(frozen=True)
class Settings:
    registry: str | None
    plugins_dir: Path
    cache_dir: Path
    host_version: str | None


def config_path() -> Path:
    """Return the config file's path."""
    folder = os.environ.get("PLUGINDEX_CONFIG_DIR")
    return (Path(folder) if folder else platformdirs.user_config_path(APP)) / CONFIG_FILE


def read_config(path: Path) -> ClientConfig:
    """Read the config file (no file: every default)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ClientConfig()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PlugindexError(f"{path}: cannot read the config file ({e})") from None
    try:
        return ClientConfig.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message += " (expected keys: registry, plugins_dir, cache_dir, host_version)"
        raise PlugindexError(f"{path}: {where}: {message}") from None


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
    )
