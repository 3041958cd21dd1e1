"""Signed plugin.yaml changes: add or remove an owner (or an owner's key), deprecate.

Each change edits plugin.yaml's text, raises `revision` by exactly one (what the gate
requires, so an old signed plugin.yaml can never be replayed) and signs the manifest
statement with an owner's active key, as the base lists them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from builder.authoring.plugin import (
    AuthorError,
    OptionError,
    PluginAt,
    check_signer,
    checked,
    open_plugin,
)
from builder.authoring.sign import sign_text, write_source
from builder.authoring.yaml_edit import Lines, render
from builder.format.load import read_file
from builder.format.models import GitHubHandle, LongText, Name, Owner, PluginManifest, PublicKey
from builder.format.paths import PLUGIN_FILE, PLUGINS_DIR
from builder.trust.signing import key_id


# The source format's limits (builder/format/models.py), said before a file is edited.
def _max_length(model: type[BaseModel], field: str) -> int:
    lengths = [m.max_length for m in model.model_fields[field].metadata if hasattr(m, "max_length")]
    return int(lengths[0])


MAX_OWNERS = _max_length(PluginManifest, "owners")
MAX_KEYS = _max_length(Owner, "keys")
# Where a new top-level key goes when plugin.yaml does not have it yet.
_BEFORE = {"deprecated": ("revision", "signature"), "revision": ("signature",)}


@dataclass(frozen=True)
class ManifestChanged:
    file: Path
    revision: int
    owner: str  # who signed
    key_id: str


def add_owner(
    index: Path, name: str, handle: str, *, public_key: str | None, key: Ed25519PrivateKey
) -> ManifestChanged:
    """Add `handle` as an owner with `public_key`, or add the key to an existing owner."""
    handle = checked("HANDLE", GitHubHandle, handle)
    plugin = open_plugin(index, name)
    owners = [source_owner(o) for o in plugin.manifest.owners]
    existing = next((o for o in owners if o["github"] == handle), None)
    if public_key is None:
        if existing is not None:
            raise AuthorError(f"{_shown(plugin)}: {handle} is already an owner of {name}")
        raise OptionError(
            "--public-key: a new owner needs a public key (they make one with "
            "`plugindex keygen KEY_FILE`, which prints it)"
        )
    public_key = checked("--public-key", PublicKey, public_key)
    for listed in plugin.manifest.owners:
        if public_key in {*listed.keys, *listed.retired(), *(k.key for k in listed.revoked_keys)}:
            raise AuthorError(
                f"{_shown(plugin)}: key {key_id(public_key)} is already listed for "
                f"{listed.github}; a key belongs to one owner"
            )
    if existing is None:
        if len(owners) >= MAX_OWNERS:
            raise AuthorError(f"{_shown(plugin)}: {name} has {MAX_OWNERS} owners, the most allowed")
        owners.append({"github": handle, "keys": [public_key]})
    elif len(existing["keys"]) >= MAX_KEYS:
        raise AuthorError(
            f"{_shown(plugin)}: {handle} has {MAX_KEYS} active keys, the most allowed; "
            "retire one first (move it to retired_keys)"
        )
    else:
        existing["keys"].append(public_key)
    return change_manifest(plugin, key, lambda doc: doc.put("owners", render("owners", owners)))


def remove_owner(index: Path, name: str, handle: str, *, key: Ed25519PrivateKey) -> ManifestChanged:
    """Remove owner `handle`, never the last one."""
    plugin = open_plugin(index, name)
    owners = [source_owner(o) for o in plugin.manifest.owners]
    kept = [o for o in owners if o["github"] != handle]
    if len(kept) == len(owners):
        listed = ", ".join(o["github"] for o in owners)
        raise AuthorError(
            f"{_shown(plugin)}: {handle} is not an owner of {name} (owners: {listed})"
        )
    if not kept:
        raise AuthorError(
            f"{_shown(plugin)}: {handle} is the last owner of {name}; add another owner "
            f"first (`plugindex owner add {name} HANDLE --public-key ...`)"
        )
    if any(o["github"] == handle and o.get("revoked_keys") for o in owners):
        raise AuthorError(
            f"{_shown(plugin)}: {handle} has revoked keys, and a revoked key stays listed "
            f"for good (the gate refuses dropping it: PX108); keep {handle} as an owner"
        )
    return change_manifest(plugin, key, lambda doc: doc.put("owners", render("owners", kept)))


def deprecate(
    index: Path, name: str, *, message: str, replacement: str | None, key: Ed25519PrivateKey
) -> ManifestChanged:
    """Mark plugin `name` deprecated with `message` and an optional replacement plugin."""
    message = checked("--message", LongText, message)
    plugin = open_plugin(index, name)
    fields: dict[str, Any] = {"message": message}
    if replacement is not None:
        fields["replacement"] = checked("--replacement", Name, replacement)
        if replacement == name:
            raise OptionError(f"--replacement: {name} cannot replace itself")
        if not (index / PLUGINS_DIR / replacement / PLUGIN_FILE).is_file():
            raise OptionError(
                f"--replacement: no plugin {replacement!r} in {index} (expected "
                f"{index / PLUGINS_DIR / replacement / PLUGIN_FILE}); name a published plugin"
            )
    current = plugin.manifest.deprecated
    if current is not None and current.model_dump(exclude_none=True) == fields:
        raise AuthorError(
            f"{_shown(plugin)}: {name} is already deprecated with this message and replacement"
        )
    rendered = render("deprecated", fields)
    return change_manifest(
        plugin, key, lambda doc: doc.put("deprecated", rendered, before=_BEFORE["deprecated"])
    )


def undeprecate(index: Path, name: str, *, key: Ed25519PrivateKey) -> ManifestChanged:
    """Take back the deprecation of plugin `name`."""
    plugin = open_plugin(index, name)
    if plugin.manifest.deprecated is None:
        raise AuthorError(f"{_shown(plugin)}: {name} is not deprecated")
    return change_manifest(plugin, key, lambda doc: doc.drop("deprecated"))


def _shown(plugin: PluginAt) -> Path:
    return plugin.index / plugin.manifest_rel


def source_owner(owner: Owner) -> dict[str, Any]:
    """Return an owner as plugin.yaml writes it: a plain retired key stays plain, and
    empty `retired_keys` and `revoked_keys` are left out."""
    data: dict[str, Any] = {"github": owner.github, "keys": list(owner.keys)}
    if owner.retired_keys:
        data["retired_keys"] = [
            k.key if k.versions is None else {"key": k.key, "versions": list(k.versions)}
            for k in owner.retired_keys
        ]
    if owner.revoked_keys:
        data["revoked_keys"] = [{"key": k.key, "reason": k.reason} for k in owner.revoked_keys]
    return data


def change_manifest(
    plugin: PluginAt, key: Ed25519PrivateKey, edit: Callable[[Lines], object]
) -> ManifestChanged:
    """Apply `edit` to plugin.yaml, raise its revision by one, sign it and write it."""
    signer = check_signer(plugin, key)
    rel = plugin.manifest_rel
    doc = Lines(read_file(plugin.index, rel).decode("utf-8"))
    edit(doc)
    revision = plugin.manifest.revision + 1
    doc.put("revision", [f"revision: {revision}"], before=_BEFORE["revision"])
    signed, _, kid = sign_text(plugin.registry.name, plugin.index, rel, doc.text(), key)
    write_source(plugin.index / rel, signed)
    return ManifestChanged(plugin.index / rel, revision, signer, kid)
