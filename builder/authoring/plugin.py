"""The plugin an author works on: its files in an index, its owners, their key checks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import TypeAdapter, ValidationError

from builder.authoring.sign import parse_source
from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode
from builder.format.models import PluginManifest, RegistryConfig
from builder.format.paths import PLUGIN_FILE, PLUGINS_DIR, REGISTRY_FILE, VERSIONS_DIR
from builder.format.requirements import RequirementError, VersionKey, key_of
from builder.trust.signing import key_id, public_key_text


class AuthorError(PlugindexError):
    """An author's command cannot do what was asked (the index is left as it was)."""


class OptionError(PlugindexError):
    """An option's value is not one the source format accepts."""

    exit_code = ExitCode.USAGE


def checked(option: str, kind: Any, value: object) -> Any:
    """Return `value` checked against a source-format type, or say what is wrong with it."""
    try:
        return TypeAdapter(kind).validate_python(value, strict=True)
    except ValidationError as e:
        message = str(e.errors()[0]["msg"]).removeprefix("Value error, ")
        raise OptionError(f"{option}: {message}") from None


@dataclass(frozen=True)
class PluginAt:
    """One plugin of an index, with the registry settings and its parsed plugin.yaml."""

    index: Path
    name: str
    registry: RegistryConfig
    manifest: PluginManifest

    @property
    def folder(self) -> Path:
        """Return the plugin's folder."""
        return self.index / PLUGINS_DIR / self.name

    @property
    def manifest_rel(self) -> str:
        """Return plugin.yaml's path relative to the index."""
        return f"{PLUGINS_DIR}/{self.name}/{PLUGIN_FILE}"

    def version_rel(self, version: str) -> str:
        """Return a version file's path relative to the index."""
        return f"{PLUGINS_DIR}/{self.name}/{VERSIONS_DIR}/{version}.yaml"

    def versions(self) -> dict[str, VersionKey | None]:
        """Return the plugin's version files by version, with their precedence keys."""
        found: dict[str, VersionKey | None] = {}
        for path in sorted((self.folder / VERSIONS_DIR).glob("*.yaml")):
            try:
                found[path.stem] = key_of(path.stem)
            except RequirementError:
                found[path.stem] = None  # not a version: `validate` reports the file
        return found


def open_plugin(index: Path, name: str) -> PluginAt:
    """Return plugin `name` of `index`, refusing an index or plugin that is not there."""
    if not (index / REGISTRY_FILE).is_file():
        raise AuthorError(f"{index}: not an index (expected {REGISTRY_FILE} in it; use --index)")
    manifest_rel = f"{PLUGINS_DIR}/{name}/{PLUGIN_FILE}"
    if not (index / manifest_rel).is_file():
        known = sorted(p.parent.name for p in (index / PLUGINS_DIR).glob(f"*/{PLUGIN_FILE}"))
        raise AuthorError(
            f"{index / manifest_rel}: no such file (expected a plugin named {name!r}; "
            f"the index has {len(known)}: {', '.join(known[:10])}{' …' if len(known) > 10 else ''})"
        )
    registry = parse_source(RegistryConfig, index, REGISTRY_FILE)
    manifest = parse_source(PluginManifest, index, manifest_rel)
    return PluginAt(index, name, registry, manifest)


def check_signer(plugin: PluginAt, key: Ed25519PrivateKey) -> str:
    """Return the owner whose active key `key` is, or refuse with who the owners are.

    The gate checks the same against the base branch; refusing here saves a pull
    request that could only fail.
    """
    public = public_key_text(key)
    for owner in plugin.manifest.owners:
        if public in owner.keys:
            return owner.github
        if public in owner.retired():
            raise AuthorError(
                f"{plugin.index / plugin.manifest_rel}: key {key_id(public)} is a retired key "
                f"of {owner.github}; sign with one of their active keys"
            )
        if public in {k.key for k in owner.revoked_keys}:
            raise AuthorError(
                f"{plugin.index / plugin.manifest_rel}: key {key_id(public)} is a revoked key "
                f"of {owner.github}; it signs nothing: sign with one of their active keys"
            )
    owners = ", ".join(o.github for o in plugin.manifest.owners)
    raise AuthorError(
        f"{plugin.index / plugin.manifest_rel}: key {key_id(public)} is not an active key of "
        f"an owner of {plugin.name} (owners: {owners}); an owner signs, or adds you with "
        f"`plugindex owner add {plugin.name} HANDLE --public-key ...`"
    )
