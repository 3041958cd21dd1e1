"""Later stages of a build: what they see of the index, and how they add files to it.

The site and the search index are built from the same analysed index as the JSON
documents, in the same all-or-nothing write. They live in their own packages (which
import this one, never the other way round); the CLI passes them to `build`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from builder.common import layout
from builder.common.build_folder import STATE_DIR
from builder.common.errors import BuildError
from builder.index.facts import PluginFacts
from builder.index.output import Planned

if TYPE_CHECKING:  # stages are made before a build knows whether it has work
    from builder.format.models import RegistryConfig


class DocumentFile(NamedTuple):
    """Where a plugin's document is: a build's documents stay on disk until read.

    At 150,000 plugins they are 1.6 GB; the site's jobs carry these instead, and
    each process that renders one reads it.
    """

    path: str  # written ahead, or the output's file
    published: str  # where the commit moves it (read once `path` is gone)
    sha256: str | None  # of the document this build rendered; None: as last built

    def read(self) -> bytes:
        """Return the document, refusing bytes that are not what the build rendered."""
        try:
            data = Path(self.path).read_bytes()
        except FileNotFoundError:
            if self.path == self.published:
                raise
            data = Path(self.published).read_bytes()  # the commit moved it into place
        if self.sha256 is not None and hashlib.sha256(data).hexdigest() != self.sha256:
            raise BuildError(f"{self.path}: not the document this build rendered (changed since)")
        return data


def read_document(document: bytes | DocumentFile) -> bytes:
    """Return a document handed over as its bytes or as where it is."""
    return document if isinstance(document, bytes) else document.read()


@dataclass(frozen=True)
class BuildView:
    """The analysed index and the previous build, read-only, as a later stage sees them."""

    index: Path  # the source index folder
    out: Path  # the output folder, still holding the previous build while stages plan
    registry: RegistryConfig
    facts: Mapping[str, PluginFacts]  # every plugin, by name
    # Per-plugin JSON documents rendered in this build (plugins that changed), by name:
    # the bytes, or the path of the file they were written ahead to (see `document`).
    changed_documents: Mapping[str, bytes | str]
    previous: Mapping[str, str]  # path -> sha256 of every file of the previous build
    on_disk: Mapping[str, int]  # path -> size of every file now in the output folder
    timestamp: str | None  # the build's time (ISO 8601, UTC), from the source commit
    commit: str | None  # the source commit, if the index is a git checkout
    # path -> size of the files the previous build wrote, where recorded: a file whose
    # size on disk differs was changed since, and is not kept as it is.
    sizes: Mapping[str, int] = field(default_factory=dict)
    # Where a stage may write its files ahead, from any process (see `output.prestage`),
    # and the record of them it adds to: committing moves them instead of writing them.
    ahead: Path | None = None
    written_ahead: dict[str, str] = field(default_factory=dict)  # path -> sha256

    @property
    def state_dir(self) -> Path:
        """Return the folder where stages may keep state between builds (never published)."""
        return self.out / STATE_DIR

    def document(self, name: str) -> bytes:
        """Return a plugin's per-plugin JSON document: rendered now, or as last built."""
        return read_document(self.document_file(name))

    def document_file(self, name: str) -> bytes | DocumentFile:
        """Return a plugin's document, or where to read it (for a job to read later)."""
        rendered = self.changed_documents.get(name)
        if isinstance(rendered, bytes):
            return rendered
        published = str(self.out / layout.index_path(name))
        if rendered is None:  # as last built
            return DocumentFile(published, published, None)
        return DocumentFile(rendered, published, self.facts[name].doc_sha256)

    def unchanged(self, path: str) -> Planned | None:
        """Return a plan that keeps the previous build's file at `path`, if it has one."""
        sha256, size = self.previous.get(path), self.on_disk.get(path)
        if sha256 is None or size is None or size != self.sizes.get(path, size):
            return None
        return Planned(sha256, size, None)


class OutputStage(Protocol):
    """A stage that adds files to a build (the HTML site, the search index)."""

    name: str  # short, for logs and errors

    def plan(self, view: BuildView) -> dict[str, Planned]:
        """Return every file this stage contributes, by published path."""
        ...

    def committed(self, view: BuildView) -> None:
        """Save the stage's own state once the build's files are in place."""
        ...

    def fingerprint(self) -> str | None:
        """Return a digest of what the stage reads besides the analysed index and the
        builder's code (templates, keys), or None when it cannot tell: then no build
        is taken as a no-op without running (see `builder.index.noop`)."""
        ...


@runtime_checkable
class FinalStage(OutputStage, Protocol):
    """A stage that also adds files once every stage has planned (the TUF signatures)."""

    def plan_after(self, view: BuildView, plan: Mapping[str, Planned]) -> dict[str, Planned]:
        """Return the files this stage adds, given the whole plan of the build so far."""
        ...
