"""Sign: add an author's signature to a version file or plugin.yaml, as a text edit.

The signature block is written into the file the author wrote, keeping every other
line (comments, order, quoting) exactly as it was: an existing block of the same
statement is replaced, otherwise the block is appended at the end of its section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from builder.common.errors import InvalidIndexError, PlugindexError
from builder.common.files import write_atomic
from builder.format.load import (
    PLUGIN_FILE,
    REGISTRY_FILE,
    VERSIONS_DIR,
    SchemaProblemsError,
    parse_model,
    read_file,
)
from builder.format.models import PluginManifest, RegistryConfig, VersionManifest
from builder.format.shapes import manifest_fields, version_entry
from builder.trust import statements
from builder.trust.signing import sign_statement

M = TypeVar("M", bound=BaseModel)


class SignError(PlugindexError):
    """The file cannot be signed as asked."""


@dataclass(frozen=True)
class Signed:
    file: Path
    kind: statements.Kind
    key_id: str


def find_index(file: Path) -> Path:
    """Return the index folder holding `file` (the nearest parent with registry.yaml)."""
    for parent in file.resolve().parents:
        if (parent / REGISTRY_FILE).is_file():
            return parent
    raise SignError(f"{file}: not inside an index (no {REGISTRY_FILE} in any parent folder)")


def parse_source(model: type[M], index: Path, rel: str) -> M:
    """Read and parse one source file strictly; its problems become InvalidIndexError."""
    try:
        return parse_model(model, read_file(index, rel), index, rel)
    except SchemaProblemsError as e:
        raise InvalidIndexError(e.problems) from None


def sign_file(file: Path, key: Ed25519PrivateKey, *, yank: bool = False) -> Signed:
    """Sign the statement `file` makes (release, yank/un-yank, or manifest) in place."""
    index = find_index(file)
    rel = file.resolve().relative_to(index).as_posix()
    registry = parse_source(RegistryConfig, index, REGISTRY_FILE)
    data = read_file(index, rel)
    parts = rel.split("/")
    if len(parts) == 3 and parts[0] == "plugins" and parts[2] == PLUGIN_FILE:
        manifest = parse_source(PluginManifest, index, rel)
        statement = statements.manifest_statement(registry.name, manifest_fields(manifest))
        kind: statements.Kind = "manifest"
        section: tuple[str, ...] = ()
    elif len(parts) == 4 and parts[0] == "plugins" and parts[2] == VERSIONS_DIR:
        version = parse_source(VersionManifest, index, rel)
        kind, section, statement = _version_statement(registry.name, parts[1], version, yank)
    else:
        raise SignError(
            f"{file}: expected plugins/<name>/{PLUGIN_FILE} or "
            f"plugins/<name>/{VERSIONS_DIR}/<version>.yaml inside {index}"
        )
    block = sign_statement(key, statement)
    text = set_signature(data.decode("utf-8"), section, block, shown=str(file))
    # Atomically, keeping the file's permissions.
    write_atomic(file, text.encode("utf-8"), mode=file.stat().st_mode & 0o777)
    return Signed(file, kind, block["key_id"])


class _ToSign(NamedTuple):
    kind: statements.Kind
    section: tuple[str, ...]  # the section that holds the signature; () is the top level
    statement: bytes


def _version_statement(registry: str, plugin: str, version: VersionManifest, yank: bool) -> _ToSign:
    """Return what `sign` (or `sign --yank`) signs in a version file, and where."""
    sha256 = version.artifact.sha256
    if not yank:
        entry = version_entry(version)
        return _ToSign("release", (), statements.release_statement(registry, plugin, entry))
    if version.yanked is not None:
        y = version.yanked
        statement = statements.yank_statement(
            registry, plugin, version.version, sha256=sha256, reason=y.reason, serial=y.serial
        )
        return _ToSign("yank", ("yanked",), statement)
    if version.unyanked is not None:
        u = version.unyanked
        statement = statements.unyank_statement(
            registry, plugin, version.version, sha256=sha256, serial=u.serial
        )
        return _ToSign("unyank", ("unyanked",), statement)
    raise SignError(
        "--yank: expected a `yanked:` (reason, serial) or `unyanked:` (serial) "
        "section in the version file, found neither"
    )


_KEY_LINE = re.compile(r"^( *)([A-Za-z_][A-Za-z0-9_]*):(.*)$")


def set_signature(text: str, section: tuple[str, ...], block: dict[str, str], *, shown: str) -> str:
    """Return `text` with `signature:` set to `block` at top level or in `section`.

    Only block-style YAML is edited (what `plugindex new` writes and people write);
    anything else is refused rather than guessed at.
    """
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    start, end, indent = 0, len(lines), 0
    if section:
        found = _find_key(lines, 0, len(lines), 0, section[0])
        if found is None:
            raise SignError(f"{shown}: expected a `{section[0]}:` section, found none")
        head, end = found
        inline = _KEY_LINE.match(lines[head])
        if inline is not None and inline.group(3).split("#")[0].strip():
            raise SignError(
                f"{shown}:{head + 1}: `{section[0]}:` is written inline; write it as an "
                f"indented block so the signature can be added to it"
            )
        start = head + 1
        indent = _child_indent(lines, start, end)
    pad = " " * indent
    new = [f"{pad}signature:\n"] + [
        f"{pad}  {field}: {block[field]}\n" for field in ("algorithm", "key_id", "value")
    ]
    existing = _find_key(lines, start, end, indent, "signature")
    if existing is not None:
        first, last = existing
        lines[first:last] = new
    else:
        at = _content_end(lines, start, end)
        lines[at:at] = new
    return "".join(lines)


def _find_key(
    lines: list[str], start: int, end: int, indent: int, key: str
) -> tuple[int, int] | None:
    """Return the line range [head, end) of `key:` at `indent` within [start, end)."""
    for i in range(start, end):
        match = _KEY_LINE.match(lines[i])
        if match and len(match.group(1)) == indent and match.group(2) == key:
            j = i + 1
            while j < end and not _ends_block(lines[j], indent):
                j += 1
            return i, _content_end(lines, i + 1, j)
    return None


def _ends_block(line: str, indent: int) -> bool:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return False
    return len(line) - len(line.lstrip(" ")) <= indent


def _content_end(lines: list[str], start: int, end: int) -> int:
    """Return the line after the last non-blank, non-comment line in [start, end)."""
    last = start
    for i in range(start, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            last = i + 1
    return last


def _child_indent(lines: list[str], start: int, end: int) -> int:
    for i in range(start, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return len(lines[i]) - len(lines[i].lstrip(" "))
    return 2
