"""Facts: the small, cacheable summary of a plugin that whole-index work needs.

Cross-plugin checks (dependencies, cycles) and listings (names.json, pages,
categories) read facts, never manifests, so an incremental build re-parses only the
plugins that changed and takes the rest from the cache.
"""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from builder.load import LoadedPlugin


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class DependencyFacts(Frozen):
    name: str
    req: str
    kind: str


class ArtifactFacts(Frozen):
    sha256: str
    size: int
    filename: str
    url: str  # as the author wrote it
    local: str | None  # index-relative path of a repo-local artifact


class VersionFacts(Frozen):
    version: str
    file: str  # index-relative path of the version file
    released: str
    yanked: bool
    engine: str
    dependencies: tuple[DependencyFacts, ...]
    artifact: ArtifactFacts


class PluginFacts(Frozen):
    name: str
    folder: str
    display_name: str
    description: str
    categories: tuple[str, ...]
    keywords: tuple[str, ...]
    versions: tuple[VersionFacts, ...]  # oldest first
    doc_sha256: str  # hash of the per-plugin document written for these facts
    doc_size: int  # its size in bytes


def local_artifact_path(folder_rel: str, url: str) -> str | None:
    """Return the index-relative path of a repo-local artifact URL, or None if remote.

    A URL without a scheme is a path relative to the plugin's folder; one that
    escapes the folder returns "" so the caller can refuse it.
    """
    if urlsplit(url).scheme:
        return None
    joined = posixpath.normpath(posixpath.join(folder_rel, url))
    if url.startswith("/") or not joined.startswith(folder_rel + "/"):
        return ""
    return joined


def facts_of(plugin: LoadedPlugin, doc_sha256: str, doc_size: int) -> PluginFacts:
    """Summarise a loaded plugin."""
    folder_rel = f"plugins/{plugin.folder}"
    manifest = plugin.manifest
    return PluginFacts(
        name=manifest.name,
        folder=plugin.folder,
        display_name=manifest.display_name,
        description=manifest.description,
        categories=tuple(manifest.categories),
        keywords=tuple(manifest.keywords),
        versions=tuple(
            VersionFacts(
                version=v.manifest.version,
                file=v.file,
                released=v.manifest.released,
                yanked=v.manifest.yanked is not None,
                engine=v.manifest.engine,
                dependencies=tuple(
                    DependencyFacts(name=name, req=dep.version, kind=dep.kind)
                    for name, dep in sorted(v.manifest.dependencies.items())
                ),
                artifact=ArtifactFacts(
                    sha256=v.manifest.artifact.sha256,
                    size=v.manifest.artifact.size,
                    filename=v.manifest.artifact.filename,
                    url=v.manifest.artifact.url,
                    local=local_artifact_path(folder_rel, v.manifest.artifact.url),
                ),
            )
            for v in plugin.versions
        ),
        doc_sha256=doc_sha256,
        doc_size=doc_size,
    )
