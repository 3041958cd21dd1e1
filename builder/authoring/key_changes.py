"""Retire or revoke an owner's key, and sign again what a revoked key signed.

`retire_key` moves a key from `keys` to `retired_keys`, bound to the versions whose
statements it signed: all it may still vouch for. `revoke_key` moves it to
`revoked_keys` with a reason: it then vouches for nothing, and every statement it
signed needs an owner's new signature, which `resign_file` makes. The first two are
signed plugin.yaml changes (revision raised by one), as `owner add` is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.authoring.manifest import (
    ManifestChanged,
    change_manifest,
    source_owner,
)
from builder.authoring.plugin import AuthorError, OptionError, PluginAt, checked, open_plugin
from builder.authoring.sign import (
    SignError,
    find_index,
    parse_source,
    parse_text,
    sign_text,
    version_statement,
    write_source,
)
from builder.authoring.yaml_edit import render
from builder.common.errors import InvalidIndexError, SourceError
from builder.format.load import read_file
from builder.format.models import LongText, Owner, PluginManifest, PublicKey, RegistryConfig
from builder.format.models import VersionManifest as VersionModel
from builder.format.paths import PLUGIN_FILE, PLUGINS_DIR, REGISTRY_FILE
from builder.trust.signing import key_id, public_key_text, verify_statement

MAX_LISTED = 32  # retired or revoked keys per owner (builder/format/models.py)


@dataclass(frozen=True)
class KeyChanged:
    change: ManifestChanged
    owner: str  # whose key was retired or revoked
    versions: tuple[str, ...]  # the versions with a statement the key signed


def retire_key(
    index: Path, name: str, old_key: str, *, new_key: str | None, key: Ed25519PrivateKey
) -> KeyChanged:
    """Retire `old_key`, bound to the versions it signed (and add `new_key` in its place)."""
    old_key = checked("--old-key", PublicKey, old_key)
    plugin = open_plugin(index, name)
    owner = _owner_of(plugin, old_key)
    if old_key in {k.key for k in owner.revoked_keys}:
        raise AuthorError(f"{_shown(plugin)}: key {key_id(old_key)} is revoked, not active")
    bound = next((k for k in owner.retired_keys if k.key == old_key), None)
    if bound is not None and bound.versions is not None:
        raise AuthorError(
            f"{_shown(plugin)}: key {key_id(old_key)} is already retired, bound to "
            f"{', '.join(bound.versions) or 'no version'}"
        )
    versions = signed_with(plugin, old_key)
    data = _without_active_key(plugin, owner, old_key, new_key)
    entry = {"key": old_key, "versions": list(versions)}
    retired = [k for k in data.get("retired_keys", []) if k != old_key]
    if len(retired) >= MAX_LISTED:
        raise AuthorError(f"{_shown(plugin)}: {owner.github} has {MAX_LISTED} retired keys")
    data["retired_keys"] = [*retired, entry]
    return KeyChanged(_write_owner(plugin, owner, data, key), owner.github, versions)


def _without_active_key(
    plugin: PluginAt, owner: Owner, public_key: str, new_key: str | None
) -> dict[str, Any]:
    """Return the owner's source entry with `public_key` no longer active (and `new_key` added).

    An owner must keep one active key: removing the last one without a replacement is
    refused.
    """
    data = source_owner(owner)
    data["keys"] = [k for k in data["keys"] if k != public_key]
    if new_key is not None:
        data["keys"].append(_new_key(plugin, new_key))
    if not data["keys"]:
        raise OptionError(
            f"--new-key: {key_id(public_key)} is the last active key of {owner.github}; "
            "give the key that replaces it (from `plugindex keygen`)"
        )
    return data


def revoke_key(
    index: Path,
    name: str,
    public_key: str,
    *,
    reason: str,
    new_key: str | None,
    key: Ed25519PrivateKey,
) -> KeyChanged:
    """Revoke `public_key` with `reason` (and add `new_key`); list what it signed."""
    public_key = checked("PUBKEY", PublicKey, public_key)
    reason = checked("--reason", LongText, reason)
    plugin = open_plugin(index, name)
    owner = _owner_of(plugin, public_key)
    if public_key in {k.key for k in owner.revoked_keys}:
        raise AuthorError(f"{_shown(plugin)}: key {key_id(public_key)} is already revoked")
    if len(owner.revoked_keys) >= MAX_LISTED:
        raise AuthorError(f"{_shown(plugin)}: {owner.github} has {MAX_LISTED} revoked keys")
    versions = signed_with(plugin, public_key)
    data = _without_active_key(plugin, owner, public_key, new_key)
    retired = [
        k
        for k in data.get("retired_keys", [])
        if (k if isinstance(k, str) else k["key"]) != public_key
    ]
    if retired:
        data["retired_keys"] = retired
    else:
        data.pop("retired_keys", None)
    data["revoked_keys"] = [*data.get("revoked_keys", []), {"key": public_key, "reason": reason}]
    return KeyChanged(_write_owner(plugin, owner, data, key), owner.github, versions)


def signed_with(plugin: PluginAt, public_key: str) -> tuple[str, ...]:
    """Return the versions of `plugin` with a statement (release, yank) `public_key` signed."""
    found = []
    for version in plugin.versions():
        rel = plugin.version_rel(version)
        try:
            model = parse_source(VersionModel, plugin.index, rel)
        except (InvalidIndexError, SourceError):  # a file that does not parse signs nothing
            continue
        if any(_signed_by(plugin.registry.name, rel, model, yank, public_key) for yank in (0, 1)):
            found.append(model.version)
    return tuple(found)


def _signed_by(registry: str, rel: str, version: VersionModel, yank: int, key: str) -> bool:
    state = (version.yanked or version.unyanked) if yank else version
    if state is None or state.signature is None:
        return False
    statement = version_statement(registry, rel, version, yank=bool(yank)).statement
    return verify_statement(state.signature.model_dump(), statement, [key]).valid


@dataclass(frozen=True)
class Resigned:
    file: Path
    statements: tuple[str, ...]  # release, yank or unyank
    key_id: str
    revoked: tuple[str, ...]  # ids of the revoked keys whose signatures were replaced


def resign_file(file: Path, key: Ed25519PrivateKey) -> Resigned:
    """Sign again every statement of a version file whose signature is by a revoked key."""
    index = find_index(file)
    rel = file.resolve().relative_to(index).as_posix()
    parts = rel.split("/")
    if len(parts) != 4 or parts[0] != PLUGINS_DIR:
        raise SignError(f"{file}: expected a version file, plugins/<name>/versions/<version>.yaml")
    registry = parse_source(RegistryConfig, index, REGISTRY_FILE)
    manifest = parse_source(PluginManifest, index, f"{PLUGINS_DIR}/{parts[1]}/{PLUGIN_FILE}")
    signer = public_key_text(key)
    if not any(signer in o.keys for o in manifest.owners):
        raise SignError(
            f"{file}: key {key_id(signer)} is not an active key of an owner of {parts[1]}; "
            "sign again with an active owner key"
        )
    revoked = [k.key for o in manifest.owners for k in o.revoked_keys]
    text = read_file(index, rel).decode("utf-8")
    done: list[str] = []
    replaced: set[str] = set()
    for yank in (False, True):
        version = parse_text(VersionModel, index, rel, text.encode("utf-8"))
        state = (version.yanked or version.unyanked) if yank else version
        if state is None or state.signature is None:
            continue
        statement = version_statement(registry.name, rel, version, yank=yank).statement
        check = verify_statement(state.signature.model_dump(), statement, revoked)
        if not check.valid or check.key is None:
            continue
        text, kind, _ = sign_text(registry.name, index, rel, text, key, yank=yank)
        done.append(kind)
        replaced.add(key_id(check.key))
    if not done:
        raise SignError(
            f"{file}: no signature in it was made by a revoked key of {parts[1]}; "
            "nothing to sign again (a signature by an active or retired key stays as it is)"
        )
    write_source(file, text)
    return Resigned(file, tuple(done), key_id(signer), tuple(sorted(replaced)))


def _owner_of(plugin: PluginAt, public_key: str) -> Owner:
    for owner in plugin.manifest.owners:
        listed = {*owner.keys, *owner.retired(), *(k.key for k in owner.revoked_keys)}
        if public_key in listed:
            return owner
    raise AuthorError(
        f"{_shown(plugin)}: key {key_id(public_key)} is not listed for any owner of {plugin.name}"
    )


def _new_key(plugin: PluginAt, new_key: str) -> str:
    new_key = checked("--new-key", PublicKey, new_key)
    for owner in plugin.manifest.owners:
        if new_key in {*owner.keys, *owner.retired(), *(k.key for k in owner.revoked_keys)}:
            raise AuthorError(
                f"{_shown(plugin)}: key {key_id(new_key)} is already listed for "
                f"{owner.github}; a new key is one never listed before"
            )
    return new_key


def _write_owner(
    plugin: PluginAt, owner: Owner, data: dict[str, Any], key: Ed25519PrivateKey
) -> ManifestChanged:
    owners = [data if o is owner else source_owner(o) for o in plugin.manifest.owners]
    return change_manifest(plugin, key, lambda doc: doc.put("owners", render("owners", owners)))


def _shown(plugin: PluginAt) -> Path:
    return plugin.index / plugin.manifest_rel
