"""The statements authors sign, as canonical bytes: the one place that defines them.

A statement is a domain line naming its kind, then canonical JSON (sorted keys, no
whitespace, UTF-8) of what it asserts. The kind is signed too, so a signature over
one kind of statement (a yank, say) can never verify as another (a release), and the
registry's name is inside every statement, so a signature made for one registry is
worthless in another. docs/format.md (section "Signatures") describes the same bytes.

The builder and the client both call these functions, on the same published shape of
a version (`render_json.version_entry`), so both always sign and check the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

DOMAIN = "plugindex-statement/1"
Kind = Literal["release", "yank", "unyank", "manifest"]

# What a release signature covers: every field an install depends on or shows.
RELEASE_FIELDS = (
    "version",
    "released",
    "artifact",
    "dependencies",
    "compatibility",
    "engine",
    "formats",
    "compliance",
)
ARTIFACT_FIELDS = ("url", "sha256", "size", "filename")
# What a plugin.yaml signature covers: all of the file except the signature itself.
MANIFEST_FIELDS = (
    "name",
    "display_name",
    "description",
    "authors",
    "license",
    "homepage",
    "repository",
    "keywords",
    "categories",
    "owners",
    "readme",
    "revision",
)
# Fields signed only when present: a plugin.yaml without them gives the bytes it gave
# before they existed, so every signature made then still verifies.
OPTIONAL_MANIFEST_FIELDS = ("deprecated",)


def canonical_json(value: Any) -> bytes:
    """Serialise a JSON value canonically: sorted keys, no whitespace, UTF-8."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return text.encode("utf-8")


def statement(kind: Kind, registry: str, plugin: str, body: Mapping[str, Any]) -> bytes:
    """Return the bytes signed for a statement of `kind` about `plugin` in `registry`."""
    payload = {"kind": kind, "registry": registry, "plugin": plugin, **body}
    return f"{DOMAIN} {kind}\n".encode() + canonical_json(payload)


def release_statement(registry: str, plugin: str, entry: Mapping[str, Any]) -> bytes:
    """Return the release statement of a version in its published shape."""
    body = {field: entry.get(field) for field in RELEASE_FIELDS}
    artifact = entry["artifact"]
    body["artifact"] = {field: artifact[field] for field in ARTIFACT_FIELDS}
    return statement("release", registry, plugin, body)


def yank_statement(
    registry: str, plugin: str, version: str, *, sha256: str, reason: str, serial: int
) -> bytes:
    """Return the statement that yanks `version` (whose artifact has `sha256`)."""
    body = {"version": version, "sha256": sha256, "reason": reason, "serial": serial}
    return statement("yank", registry, plugin, body)


def unyank_statement(
    registry: str, plugin: str, version: str, *, sha256: str, serial: int
) -> bytes:
    """Return the statement that takes back the yank of `version`."""
    body = {"version": version, "sha256": sha256, "serial": serial}
    return statement("unyank", registry, plugin, body)


def manifest_statement(registry: str, fields: Mapping[str, Any]) -> bytes:
    """Return the statement of a plugin.yaml's content (its published shape)."""
    body = {field: fields.get(field) for field in MANIFEST_FIELDS}
    for field in OPTIONAL_MANIFEST_FIELDS:
        if fields.get(field) is not None:
            body[field] = fields[field]
    return statement("manifest", registry, str(fields["name"]), body)
