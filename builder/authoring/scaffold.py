"""Scaffold: write a new plugin's plugin.yaml and first version file for its author."""

from __future__ import annotations

import datetime
import shutil
from dataclasses import dataclass
from pathlib import Path

from builder.common.errors import PlugindexError
from builder.common.files import sha256_of_file
from builder.format.names import name_problem
from builder.format.paths import PLUGIN_FILE, PLUGINS_DIR, VERSIONS_DIR
from builder.format.requirements import RequirementError, parse_version


class ScaffoldError(PlugindexError):
    """The new plugin cannot be written as asked."""


@dataclass(frozen=True)
class NewPlugin:
    name: str
    version: str
    owner: str  # GitHub handle
    public_key: str  # ed25519:<base64>
    artifact: Path  # the local file to describe
    url: str  # where users will download it from
    description: str
    license: str
    category: str
    engine: str
    host: str  # requirement on the host application's version
    plugin_api: str


def _quoted(text: str) -> str:
    """Return a YAML double-quoted scalar (JSON strings are valid YAML)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _digest(path: Path) -> tuple[str, int]:
    """Return the artifact's sha256 and size."""
    try:
        return sha256_of_file(path)
    except OSError as e:
        raise ScaffoldError(f"{path}: cannot read the artifact ({e.strerror})") from e


def write_new_plugin(index: Path, new: NewPlugin, today: datetime.date) -> list[Path]:
    """Write plugins/<name>/plugin.yaml and versions/<version>.yaml; return their paths."""
    problem = name_problem(new.name)
    if problem:
        raise ScaffoldError(f"name {new.name!r}: {problem}")
    try:
        parse_version(new.version)
    except RequirementError as e:
        raise ScaffoldError(f"version {new.version!r}: {e}") from e
    folder = index / PLUGINS_DIR / new.name
    if folder.exists():
        raise ScaffoldError(f"{folder}: already exists; `new` only starts a plugin")
    sha256, size = _digest(new.artifact)
    plugin_yaml = f"""\
# Plugin-wide facts for {new.name}; each release is a file under versions/.
name: {new.name}
display_name: {_quoted(new.name)}
description: {_quoted(new.description)}
authors:
  - name: {_quoted(new.owner)}
license: {new.license}
categories: [{new.category}]
# Owners may publish and yank versions; each signs with one of their keys.
owners:
  - github: {new.owner}
    keys:
      - {new.public_key}
"""
    version_yaml = f"""\
# Release {new.version} of {new.name}. Immutable once merged: sign it, open a PR.
version: {new.version}
released: {today.isoformat()}
artifact:
  url: {_quoted(new.url)}
  sha256: {sha256}
  size: {size}
  filename: {_quoted(new.artifact.name)}
compatibility:
  host: {_quoted(new.host)}
  plugin_api: {_quoted(new.plugin_api)}
engine: {new.engine}
compliance:
  risk_level: low
"""
    versions = folder / VERSIONS_DIR
    try:
        versions.mkdir(parents=True)
        manifest = folder / PLUGIN_FILE
        version_file = versions / f"{new.version}.yaml"
        manifest.write_text(plugin_yaml, encoding="utf-8")
        version_file.write_text(version_yaml, encoding="utf-8")
    except OSError as e:
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-written stays behind
        raise ScaffoldError(f"{e.filename or folder}: cannot write ({e.strerror})") from e
    return [manifest, version_file]
