"""The published documents a client reads (config.json, per-plugin documents), parsed.

Everything here arrives over the network, so it is checked for shape before use and
kept next to its raw JSON: signatures are checked over the raw entries, exactly as
the builder signed them, never over a re-serialised model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from builder import FORMAT_VERSION
from builder.common.errors import PlugindexError
from builder.format.names import name_problem
from builder.format.requirements import RequirementError, VersionKey, key_of


class DocumentError(PlugindexError):
    """A published document does not have the shape format version 1 gives it."""


class _Published(BaseModel):
    # Later format revisions may add fields; a client ignores what it does not know.
    model_config = ConfigDict(extra="ignore", frozen=True)


class PublishedConfig(_Published):
    format: int
    name: str
    index: str = "index/{prefix}/{name}.json"
    artifacts: str = "artifacts/{sha256}/{filename}"
    names: str = "names.json"


# The URL templates of config.json and the placeholders each may use (docs/format.md
# §6.2). They are filled in literally, never with str.format: a registry could make
# that allocate gigabytes (`{prefix:>200000000}`) or fail on an unknown name.
TEMPLATE_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "index": ("prefix", "name"),
    "artifacts": ("sha256", "filename"),
    "names": (),
}
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MAX_TEMPLATE = 1024  # characters: a URL template is a short path


class PublishedRevokedKey(_Published):
    key: str
    reason: str = ""


class PublishedOwner(_Published):
    github: str
    keys: list[str]
    retired_keys: list[str] = []
    retired_versions: dict[str, list[str]] = {}  # a bound retired key: what it vouches for
    revoked_keys: list[PublishedRevokedKey] = []


class PublishedArtifact(_Published):
    url: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(gt=0)
    filename: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$", max_length=255)
    download: str


class PublishedDependency(_Published):
    name: str
    req: str
    kind: Literal["runtime", "optional", "dev", "build"] = "runtime"


class PublishedCompatibility(_Published):
    host: str
    plugin_api: str


class PublishedYank(_Published):
    reason: str
    serial: int = 1
    signature: dict[str, str] | None = None


class PublishedUnyank(_Published):
    serial: int
    signature: dict[str, str] | None = None


class PublishedVersion(_Published):
    version: str
    released: str
    artifact: PublishedArtifact
    dependencies: list[PublishedDependency] = []
    compatibility: PublishedCompatibility
    engine: str = ""
    formats: list[dict[str, str]] = []
    compliance: dict[str, str] = {}
    yanked: PublishedYank | None = None
    unyanked: PublishedUnyank | None = None
    signature: dict[str, str] | None = None


class PublishedDeprecation(_Published):
    message: str
    replacement: str | None = None  # the plugin to use instead


class PublishedPlugin(_Published):
    format: int
    name: str
    display_name: str = ""
    description: str = ""
    license: str = ""
    homepage: str | None = None
    repository: str | None = None
    owners: list[PublishedOwner]
    revision: int = 1
    deprecated: PublishedDeprecation | None = None  # absent unless the owners deprecated it
    signature: dict[str, str] | None = None
    versions: list[PublishedVersion]


@dataclass(frozen=True)
class Version:
    """One version of a plugin document: its parsed fields and its raw JSON entry."""

    entry: PublishedVersion
    raw: dict[str, Any]
    key: VersionKey

    @property
    def number(self) -> str:
        """Return the version string."""
        return self.entry.version

    @property
    def prerelease(self) -> bool:
        """Whether this is a prerelease."""
        return "-" in self.entry.version.split("+", 1)[0]


@dataclass(frozen=True)
class Plugin:
    """A per-plugin document: parsed, raw, and its versions oldest first."""

    doc: PublishedPlugin
    raw: dict[str, Any]
    versions: tuple[Version, ...]
    source: str  # where it came from, for messages

    @property
    def name(self) -> str:
        """Return the plugin's name."""
        return self.doc.name

    def version(self, number: str) -> Version | None:
        """Return the version `number`, if the document has it."""
        return next((v for v in self.versions if v.number == number), None)


def loads(data: bytes, source: str) -> Any:
    """Parse a published JSON document, refusing bad JSON and absurd nesting alike."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise DocumentError(f"{source}: not valid JSON (expected a JSON document; {e})") from None
    except RecursionError:  # `[[[[…` 200,000 deep: the parser gives up, so do we
        raise DocumentError(
            f"{source}: nested too deeply (expected a plugindex document, a few levels deep)"
        ) from None


def _problem(source: str, error: ValidationError) -> DocumentError:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "(document)"
    return DocumentError(f"{source}: {where}: {first['msg']} (got {str(first['input'])[:60]!r})")


def _check_format(found: Any, source: str) -> None:
    if found != FORMAT_VERSION:
        raise DocumentError(
            f"{source}: unsupported format (expected {FORMAT_VERSION}, got {found!r}); "
            "a newer plugindex may read it"
        )


def template_problem(template: str, allowed: tuple[str, ...]) -> str | None:
    """Return why a URL template is unusable (None: it is fine)."""
    if len(template) > MAX_TEMPLATE:
        return f"too long (expected at most {MAX_TEMPLATE} characters, got {len(template)})"
    for found in _PLACEHOLDER.finditer(template):
        if found[1] not in allowed:
            expected = ", ".join(f"{{{p}}}" for p in allowed) or "no placeholder"
            return f"unknown placeholder {found[0]!r} (expected {expected})"
    if "{" in (rest := _PLACEHOLDER.sub("", template)) or "}" in rest:
        return f"unbalanced brace in {template!r} (expected {{placeholder}} only)"
    return None


def expand(template: str, values: Mapping[str, str]) -> str:
    """Fill a checked URL template's placeholders with `values`, literally."""
    return _PLACEHOLDER.sub(lambda found: values[found[1]], template)


def parse_config(data: bytes, source: str) -> PublishedConfig:
    """Parse config.json and check its URL templates."""
    raw = loads(data, source)
    _check_format(raw.get("format") if isinstance(raw, dict) else None, source)
    try:
        config = PublishedConfig.model_validate(raw)
    except ValidationError as e:
        raise _problem(source, e) from None
    for field, allowed in TEMPLATE_PLACEHOLDERS.items():
        if (problem := template_problem(getattr(config, field), allowed)) is not None:
            raise DocumentError(f"{source}: {field}: {problem}")
    return config


def _check_names(doc: PublishedPlugin, source: str) -> None:
    """Refuse a name that is not a plugin name: names become URL and folder paths."""
    replacement = doc.deprecated.replacement if doc.deprecated else None
    named = [("name", doc.name)]
    if replacement is not None:  # a name people are told to install
        named.append(("deprecated.replacement", replacement))
    named += [
        (f"versions[{i}].dependencies[{j}].name", dependency.name)
        for i, version in enumerate(doc.versions)
        for j, dependency in enumerate(version.dependencies)
    ]
    for where, name in named:
        if (problem := name_problem(name)) is not None:
            raise DocumentError(f"{source}: {where}: not a plugin name ({problem})")


def parse_plugin(data: bytes, source: str, expected_name: str) -> Plugin:
    """Parse a per-plugin document and check it is the one that was asked for."""
    raw = loads(data, source)
    if not isinstance(raw, dict):
        raise DocumentError(f"{source}: expected a JSON object, got {type(raw).__name__}")
    _check_format(raw.get("format"), source)
    try:
        doc = PublishedPlugin.model_validate(raw)
    except ValidationError as e:
        raise _problem(source, e) from None
    _check_names(doc, source)
    if doc.name != expected_name:
        raise DocumentError(
            f"{source}: name does not match its path (expected {expected_name!r}, got {doc.name!r})"
        )
    versions = []
    for entry, raw_entry in zip(doc.versions, raw["versions"], strict=True):
        try:
            key = key_of(entry.version)
        except RequirementError as e:
            raise DocumentError(f"{source}: versions: {e}") from None
        versions.append(Version(entry, raw_entry, key))
    versions.sort(key=lambda v: v.key)
    return Plugin(doc, raw, tuple(versions), source)
