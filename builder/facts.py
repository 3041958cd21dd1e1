"""Facts: the small, cacheable summary of a plugin that whole-index work needs.

Cross-plugin checks (dependencies, cycles) and listings (names.json, pages,
categories) read facts, never manifests, so an incremental build re-parses only the
plugins that changed and takes the rest from the cache. Facts are slotted
dataclasses that convert to and from plain tuples: a 10,000-plugin cache then loads
in well under a second.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from builder.load import LoadedPlugin


@dataclass(frozen=True, slots=True)
class DependencyFacts:
    name: str
    req: str
    kind: str


@dataclass(frozen=True, slots=True)
class ArtifactFacts:
    sha256: str
    size: int
    filename: str
    url: str  # as the author wrote it
    local: str | None  # index-relative path of a repo-local artifact


@dataclass(frozen=True, slots=True)
class VersionFacts:
    version: str
    file: str  # index-relative path of the version file
    released: str
    yanked: bool
    engine: str
    dependencies: tuple[DependencyFacts, ...]
    artifact: ArtifactFacts


@dataclass(frozen=True, slots=True)
class PluginFacts:
    name: str
    folder: str
    display_name: str
    description: str
    categories: tuple[str, ...]
    keywords: tuple[str, ...]
    versions: tuple[VersionFacts, ...]  # oldest first
    doc_sha256: str  # hash of the per-plugin document written for these facts
    doc_size: int  # its size in bytes

    def to_tuple(self) -> tuple[Any, ...]:
        """Return the facts as nested tuples of plain values (for the cache)."""
        return (
            self.name,
            self.folder,
            self.display_name,
            self.description,
            self.categories,
            self.keywords,
            tuple(
                (
                    v.version,
                    v.file,
                    v.released,
                    v.yanked,
                    v.engine,
                    tuple((d.name, d.req, d.kind) for d in v.dependencies),
                    (
                        v.artifact.sha256,
                        v.artifact.size,
                        v.artifact.filename,
                        v.artifact.url,
                        v.artifact.local,
                    ),
                )
                for v in self.versions
            ),
            self.doc_sha256,
            self.doc_size,
        )

    @classmethod
    def from_tuple(cls, row: tuple[Any, ...]) -> PluginFacts:
        """Rebuild facts from `to_tuple`'s output."""
        name, folder, display_name, description, categories, keywords, versions, sha, size = row
        return cls(
            name,
            folder,
            display_name,
            description,
            categories,
            keywords,
            tuple(
                VersionFacts(
                    v[0],
                    v[1],
                    v[2],
                    v[3],
                    v[4],
                    tuple(DependencyFacts(*d) for d in v[5]),
                    ArtifactFacts(*v[6]),
                )
                for v in versions
            ),
            sha,
            size,
        )


def local_artifact_path(folder_rel: str, url: str) -> str | None:
    """Return the index-relative path of a repo-local artifact URL, or None if remote.

    A URL without a scheme is a path relative to the plugin's folder; one that
    escapes the folder returns "" so the caller can refuse it.
    """
    if "://" in url or urlsplit(url).scheme:
        return None
    joined = posixpath.normpath(posixpath.join(folder_rel, url))
    if url.startswith("/") or not joined.startswith(folder_rel + "/"):
        return ""
    return joined


def facts_of(plugin: LoadedPlugin, doc_sha256: str, doc_size: int) -> PluginFacts:
    """Summarise a loaded plugin."""
    folder_rel = f"plugins/{plugin.folder}"
    manifest = plugin.manifest
    versions = []
    for loaded in plugin.versions:
        v = loaded.manifest
        artifact = v.artifact
        versions.append(
            VersionFacts(
                v.version,
                loaded.file,
                v.released,
                v.yanked is not None,
                v.engine,
                tuple(
                    DependencyFacts(name, dep.version, dep.kind)
                    for name, dep in sorted(v.dependencies.items())
                ),
                ArtifactFacts(
                    artifact.sha256,
                    artifact.size,
                    artifact.filename,
                    artifact.url,
                    local_artifact_path(folder_rel, artifact.url),
                ),
            )
        )
    return PluginFacts(
        manifest.name,
        plugin.folder,
        manifest.display_name,
        manifest.description,
        tuple(manifest.categories),
        tuple(manifest.keywords),
        tuple(versions),
        doc_sha256,
        doc_size,
    )
