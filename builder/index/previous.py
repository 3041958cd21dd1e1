"""The last published state of each plugin, which a plugin that fails now keeps."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from builder.common import layout
from builder.format.names import name_problem
from builder.index.facts import PluginFacts, facts_of_document

log = logging.getLogger(__name__)


class PreviousStates:
    """The last published state of each plugin: its per-plugin document, by name.

    `outputs` is what the previous build (or the live registry) holds, path → sha256;
    `read` returns one of its files, or None. A document is used only when its bytes
    hash to what `outputs` says.
    """

    def __init__(
        self, outputs: Mapping[str, str] | None, read: Callable[[str], bytes | None]
    ) -> None:
        self.outputs = outputs if outputs is not None else {}
        self._read = read
        self._states: dict[str, tuple[bytes, PluginFacts] | None] = {}

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """Return the names of every plugin published before (made when first asked)."""
        return frozenset(
            name
            for path in self.outputs
            if path.startswith("index/") and path.endswith(".json")
            for name in (path.rsplit("/", 1)[1].removesuffix(".json"),)
            if layout.index_path(name) == path and name_problem(name) is None
        )

    def published(self, name: str) -> bool:
        """Tell whether a valid plugin name had a document before."""
        return layout.index_path(name) in self.outputs

    def sha256(self, name: str) -> str | None:
        """Return the sha256 of a plugin's last published document, if it has one."""
        return self.outputs.get(layout.index_path(name)) if name in self.names else None

    def state(self, name: str) -> tuple[bytes, PluginFacts] | None:
        """Return a plugin's last published document and its facts, or None."""
        if name not in self._states:
            self._states[name] = self._load(name)
        return self._states[name]

    def _load(self, name: str) -> tuple[bytes, PluginFacts] | None:
        expected = self.sha256(name)
        if expected is None:
            return None
        path = layout.index_path(name)
        data = self._read(path)
        if data is None or hashlib.sha256(data).hexdigest() != expected:
            log.warning("%s: the last published document is not available", path)
            return None
        facts = facts_of_document(data, name)
        if facts is None:
            log.warning("%s: the last published document cannot be read back", path)
        return None if facts is None else (data, facts)


def read_from(out: Path) -> Callable[[str], bytes | None]:
    """Return a reader of the files of a build folder (None for a missing one)."""

    def read(path: str) -> bytes | None:
        try:
            return (out / path).read_bytes()
        except OSError:
            return None

    return read
