"""Release: a new version file made from the previous one, with a new artifact, signed.

The new file is the previous version's text (comments and order kept) with a new
`version`, `released` date and `artifact`; compatibility, engine, formats,
dependencies and compliance carry over unless an option changes them. The previous
file's yank state and signature are dropped, and the release is signed.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from builder.authoring.plugin import (
    AuthorError,
    OptionError,
    PluginAt,
    check_signer,
    checked,
    open_plugin,
)
from builder.authoring.sign import parse_source, sign_text, write_source
from builder.authoring.yaml_edit import Lines, render
from builder.common.files import sha256_of_file
from builder.format.load import read_file
from builder.format.models import (
    Artifact,
    FileName,
    Name,
    ReleaseDate,
    RequirementText,
    Slug,
    Version,
    VersionManifest,
)
from builder.format.requirements import VersionKey, key_of

# The sections a release never inherits: the previous version's yank state and signature.
_NOT_INHERITED = ("yanked", "unyanked", "signature")


@dataclass(frozen=True)
class NewRelease:
    name: str
    version: str
    artifact: Path  # the local file users will download
    url: str  # where they download it from
    released: datetime.date
    previous: str | None = None  # the version file to start from (default: the one before)
    filename: str | None = None  # default: the artifact's file name
    host: str | None = None
    plugin_api: str | None = None
    engine: str | None = None
    dependencies: dict[str, str] = field(default_factory=dict)  # name -> requirement
    drop_dependencies: tuple[str, ...] = ()


@dataclass(frozen=True)
class Released:
    file: Path
    previous: str
    owner: str
    key_id: str


def write_release(index: Path, new: NewRelease, key: Ed25519PrivateKey) -> Released:
    """Write versions/<version>.yaml of plugin `new.name` from its previous version, signed."""
    version = checked("VERSION", Version, new.version)
    plugin = open_plugin(index, new.name)
    owner = check_signer(plugin, key)
    rel = plugin.version_rel(version)
    versions = plugin.versions()
    _refuse_taken(plugin, version, versions)
    previous = _previous(plugin, new, versions)
    template = parse_source(VersionManifest, index, plugin.version_rel(previous))
    doc = Lines(read_file(index, plugin.version_rel(previous)).decode("utf-8"))
    for section in _NOT_INHERITED:
        doc.drop(section)
    _retitle(doc, previous, version)
    doc.put("version", [f"version: {version}"])  # a semver always reads back as text
    released = checked("--released", ReleaseDate, new.released.isoformat())
    doc.put("released", [f"released: {released}"], before=("artifact",))
    doc.put("artifact", render("artifact", _artifact(new)), before=("dependencies",))
    _override(doc, plugin, new, template)
    signed, _, key_id = sign_text(plugin.registry.name, index, rel, doc.text(), key)
    if (index / rel).exists():  # written meanwhile: never replace a version file
        raise AuthorError(f"{index / rel}: already exists")
    write_source(index / rel, signed)
    return Released(index / rel, previous, owner, key_id)


def _refuse_taken(plugin: PluginAt, version: str, versions: dict[str, VersionKey | None]) -> None:
    wanted = key_of(version)
    for existing, existing_key in versions.items():
        if existing == version or existing_key == wanted:
            same = "" if existing == version else " (the same version but for build metadata)"
            raise AuthorError(
                f"{plugin.index / plugin.version_rel(existing)}: {plugin.name} {existing} "
                f"already exists{same}; a version number is never used twice: pick another"
            )


def _previous(plugin: PluginAt, new: NewRelease, versions: dict[str, VersionKey | None]) -> str:
    """Return the version to start from: asked for, else the newest below the new one."""
    if new.previous is not None:
        if new.previous not in versions:
            raise OptionError(
                f"--from: {plugin.name} has no version {new.previous} "
                f"(it has: {', '.join(versions) or 'none'})"
            )
        return new.previous
    ordered = sorted((k, v) for v, k in versions.items() if k is not None)
    if not ordered:
        raise AuthorError(
            f"{plugin.folder}: {plugin.name} has no version file to start from; "
            "write the first one with `plugindex new` or by hand"
        )
    wanted = key_of(new.version)
    below = [v for k, v in ordered if k < wanted]
    return below[-1] if below else ordered[-1][1]


def _retitle(doc: Lines, previous: str, version: str) -> None:
    """Update the first-line title `plugindex new` writes (`# Release X of NAME. …`)."""
    if doc.lines and re.match(rf"# Release {re.escape(previous)} of ", doc.lines[0]):
        doc.lines[0] = doc.lines[0].replace(f" {previous} ", f" {version} ", 1)


def _artifact(new: NewRelease) -> dict[str, Any]:
    filename = checked("--filename", FileName, new.filename or new.artifact.name)
    try:
        sha256, size = sha256_of_file(new.artifact)
    except OSError as e:
        raise AuthorError(f"{new.artifact}: cannot read the artifact ({e.strerror})") from e
    if size == 0:
        raise OptionError(f"--artifact: {new.artifact} is empty (expected the package file)")
    fields = {"url": new.url, "sha256": sha256, "size": size, "filename": filename}
    try:
        Artifact.model_validate(fields, strict=True)
    except ValidationError as e:
        first = e.errors()[0]
        option = "--url" if first["loc"][:1] == ("url",) else "--artifact"
        raise OptionError(f"{option}: {str(first['msg']).removeprefix('Value error, ')}") from None
    return fields


def _override(doc: Lines, plugin: PluginAt, new: NewRelease, template: VersionManifest) -> None:
    """Apply the options that change what the previous version said."""
    if new.host is not None or new.plugin_api is not None:
        compatibility = {
            "host": checked("--host", RequirementText, new.host or template.compatibility.host),
            "plugin_api": checked(
                "--plugin-api", RequirementText, new.plugin_api or template.compatibility.plugin_api
            ),
        }
        doc.put("compatibility", render("compatibility", compatibility), before=("engine",))
    if new.engine is not None:
        doc.put("engine", render("engine", checked("--engine", Slug, new.engine)))
    if new.dependencies or new.drop_dependencies:
        deps = _dependencies(plugin, new, template)
        if deps:
            doc.put("dependencies", render("dependencies", deps), before=("compatibility",))
        else:
            doc.drop("dependencies")


def _dependencies(plugin: PluginAt, new: NewRelease, template: VersionManifest) -> dict[str, Any]:
    deps: dict[str, Any] = {
        name: {"version": dep.version, **({"kind": dep.kind} if dep.kind != "runtime" else {})}
        for name, dep in template.dependencies.items()
    }
    for name in new.drop_dependencies:
        if name not in deps:
            raise OptionError(
                f"--drop-dependency: {plugin.name} {template.version} has no dependency "
                f"on {name} (it has: {', '.join(deps) or 'none'})"
            )
        del deps[name]
    for name, requirement in new.dependencies.items():
        checked("--dependency", Name, name)
        if name == plugin.name:
            raise OptionError(f"--dependency: {name} cannot depend on itself")
        kept = deps.get(name, {})
        deps[name] = {**kept, "version": checked("--dependency", RequirementText, requirement)}
    return dict(sorted(deps.items()))
