"""Sign: add an author's signature to a version file or plugin.yaml, as a text edit.

The signature block is written into the file the author wrote, keeping every other
line (comments, order, quoting) exactly as it was: an existing block of the same
statement is replaced, otherwise the block is appended at the end of its section.
The edited text is parsed again before it is written, and must say exactly what the
file said before plus the new signature: a duplicate `signature:` key, or a yank
signature lost on the way, is refused and nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel

from builder.authoring.yaml_edit import EditError, Lines, content_end, quoted
from builder.common.errors import InvalidIndexError, PlugindexError, SourceError
from builder.common.files import write_atomic
from builder.format.load import SchemaProblemsError, parse_model, read_file
from builder.format.models import PluginManifest, RegistryConfig, VersionManifest
from builder.format.paths import PLUGIN_FILE, PLUGINS_DIR, REGISTRY_FILE, VERSIONS_DIR
from builder.format.shapes import manifest_fields, version_entry
from builder.format.strict_yaml import resolve_plain
from builder.trust import statements
from builder.trust.signing import owner_keys, sign_statement, verify_statement

M = TypeVar("M", bound=BaseModel)

SIGNATURE_FIELDS = ("algorithm", "key_id", "value")


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
    return parse_text(model, index, rel, read_file(index, rel))


def parse_text(model: type[M], index: Path, rel: str, data: bytes) -> M:
    """Parse the text a source file has (or is about to have) strictly."""
    try:
        return parse_model(model, data, index, rel)
    except SchemaProblemsError as e:
        raise InvalidIndexError(e.problems) from None


def sign_file(file: Path, key: Ed25519PrivateKey, *, yank: bool = False) -> Signed:
    """Sign the statement `file` makes (release, yank/un-yank, or manifest) in place."""
    index = find_index(file)
    rel = file.resolve().relative_to(index).as_posix()
    registry = parse_source(RegistryConfig, index, REGISTRY_FILE)
    text = read_file(index, rel).decode("utf-8")
    if is_version_file(rel) and not yank:
        version = parse_text(VersionManifest, index, rel, text.encode("utf-8"))
        refuse_unsigned_yank(registry.name, index, rel, version)
    signed, kind, key_id = sign_text(registry.name, index, rel, text, key, yank=yank)
    write_source(file, signed)
    return Signed(file, kind, key_id)


def is_version_file(rel: str) -> bool:
    """Tell whether an index-relative path is plugins/<name>/versions/<version>.yaml."""
    parts = rel.split("/")
    return len(parts) == 4 and parts[0] == PLUGINS_DIR and parts[2] == VERSIONS_DIR


def is_manifest_file(rel: str) -> bool:
    """Tell whether an index-relative path is plugins/<name>/plugin.yaml."""
    parts = rel.split("/")
    return len(parts) == 3 and parts[0] == PLUGINS_DIR and parts[2] == PLUGIN_FILE


def write_source(file: Path, text: str) -> None:
    """Write a source file atomically, keeping its permissions (0644 for a new file)."""
    mode = file.stat().st_mode & 0o777 if file.exists() else 0o644
    try:
        write_atomic(file, text.encode("utf-8"), mode=mode)
    except OSError as e:
        raise SignError(f"{file}: cannot write ({e.strerror})") from e


def refuse_unsigned_yank(registry: str, index: Path, rel: str, version: VersionManifest) -> None:
    """Refuse to sign a release while the file's yank or un-yank is left unsigned or stale.

    Signing the release alone would report success and leave a yank the gate and the
    build refuse; the author is told how to sign it instead.
    """
    shown = index / rel
    for section, state in (("yanked", version.yanked), ("unyanked", version.unyanked)):
        if state is None:
            continue
        how = f"run `plugindex sign {shown} --key KEY_FILE --yank`"
        if section == "yanked":
            how += (
                f" or `plugindex yank {rel.split('/')[1]} {version.version} "
                "--reason TEXT --key KEY_FILE`"
            )
        if state.signature is None:
            raise SignError(f"{shown}: this file has an unsigned {section}: block; {how}")
        statement = version_statement(registry, rel, version, yank=True).statement
        manifest = parse_source(
            PluginManifest, index, f"{PLUGINS_DIR}/{rel.split('/')[1]}/{PLUGIN_FILE}"
        )
        allowed = owner_keys(manifest.owners, retired=True)
        if not verify_statement(state.signature.model_dump(), statement, allowed).valid:
            raise SignError(
                f"{shown}: the signature of its {section}: block does not verify with an "
                f"owner key (was the block edited after it was signed?); {how}"
            )


def sign_text(
    registry: str,
    index: Path,
    rel: str,
    text: str,
    key: Ed25519PrivateKey,
    *,
    yank: bool = False,
) -> tuple[str, statements.Kind, str]:
    """Return `text` (of index file `rel`) signed, its statement's kind and the key id.

    The signed text is parsed again and must differ from `text` only by the new
    signature: anything else (a duplicate key, a lost yank signature) is refused.
    """
    shown = str(index / rel)
    if is_manifest_file(rel):
        model: type[BaseModel] = PluginManifest
    elif is_version_file(rel):
        model = VersionManifest
    else:
        raise SignError(
            f"{shown}: expected plugins/<name>/{PLUGIN_FILE} or "
            f"plugins/<name>/{VERSIONS_DIR}/<version>.yaml inside {index}"
        )
    before = parse_text(model, index, rel, text.encode("utf-8"))
    if isinstance(before, PluginManifest):
        statement = statements.manifest_statement(registry, manifest_fields(before))
        to_sign = ToSign("manifest", (), statement)
    else:
        assert isinstance(before, VersionManifest)
        to_sign = version_statement(registry, rel, before, yank=yank)
    block = sign_statement(key, to_sign.statement)
    signed = set_signature(text, to_sign.section, block, shown=shown)
    _check_only_signature_changed(model, index, rel, before, signed, to_sign.section, block)
    return signed, to_sign.kind, block["key_id"]


class ToSign(NamedTuple):
    kind: statements.Kind
    section: tuple[str, ...]  # the section that holds the signature; () is the top level
    statement: bytes


def version_statement(registry: str, rel: str, version: VersionManifest, *, yank: bool) -> ToSign:
    """Return what `sign` (or `sign --yank`) signs in a version file, and where."""
    plugin = rel.split("/")[1]
    sha256 = version.artifact.sha256
    if not yank:
        entry = version_entry(version)
        return ToSign("release", (), statements.release_statement(registry, plugin, entry))
    if version.yanked is not None:
        y = version.yanked
        statement = statements.yank_statement(
            registry, plugin, version.version, sha256=sha256, reason=y.reason, serial=y.serial
        )
        return ToSign("yank", ("yanked",), statement)
    if version.unyanked is not None:
        u = version.unyanked
        statement = statements.unyank_statement(
            registry, plugin, version.version, sha256=sha256, serial=u.serial
        )
        return ToSign("unyank", ("unyanked",), statement)
    raise SignError(
        "--yank: expected a `yanked:` (reason, serial) or `unyanked:` (serial) "
        "section in the version file, found neither"
    )


def _check_only_signature_changed(  # noqa: PLR0917 - the two states and the change
    model: type[BaseModel],
    index: Path,
    rel: str,
    before: BaseModel,
    signed: str,
    section: tuple[str, ...],
    block: dict[str, str],
) -> None:
    """Refuse a signed text that says anything but what it said before, plus `block`."""
    shown = index / rel
    try:
        after = parse_model(model, signed.encode("utf-8"), index, rel)
    except (SourceError, SchemaProblemsError) as e:
        found = e.problem.render() if isinstance(e, SourceError) else e.problems[0].render()
        raise SignError(
            f"{shown}: adding the signature would leave the file invalid ({found}); "
            "nothing was written: write the file in plain block style and sign again"
        ) from None
    old, new = before.model_dump(), after.model_dump()
    placed = _pop(new, (*section, "signature"))
    _pop(old, (*section, "signature"))
    if old != new or placed != block:
        raise SignError(
            f"{shown}: the signature could not be added without changing the rest of the "
            "file; nothing was written: write the file in plain block style and sign again"
        )


def _pop(data: dict[str, Any], loc: tuple[str, ...]) -> Any:
    """Remove and return the value at `loc` of nested mappings (None if absent)."""
    node: Any = data
    for part in loc[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return node.pop(loc[-1], None) if isinstance(node, dict) else None


def set_signature(text: str, section: tuple[str, ...], block: dict[str, str], *, shown: str) -> str:
    """Return `text` with `signature:` set to `block` at top level or in `section`.

    Only block-style YAML is edited (what `plugindex new` writes and people write);
    anything else is refused rather than guessed at. A `signature` key written
    quoted or with a space before its colon is still the one replaced.
    """
    doc = Lines(text)
    start, end, indent = 0, len(doc.lines), 0
    if section:
        try:
            found = doc.section(section[0])
        except EditError as e:
            raise SignError(f"{shown}:{e}") from None
        if found is None:
            raise SignError(f"{shown}: expected a `{section[0]}:` section, found none")
        start, end, indent = found
    # Quoted where a plain scalar would read as another type: a hex key id such as
    # 840119474e320079 is a number (infinity) to YAML.
    fields = [f"  {f}: {_signature_scalar(block[f])}" for f in SIGNATURE_FIELDS]
    new = doc.block(["signature:", *fields], indent)
    existing = doc.find("signature", start=start, end=end, indent=indent)
    if existing is not None:
        doc.lines[existing[0] : existing[1]] = new
    else:
        at = content_end(doc.lines, start, end)
        doc.lines[at:at] = new
    return doc.text()


_BASE64_OR_HEX = re.compile(r"[A-Za-z0-9+/=]+")


def _signature_scalar(value: str) -> str:
    """Write a signature field plain when it reads back as this very text, else quoted."""
    if _BASE64_OR_HEX.fullmatch(value) and resolve_plain(value) == value:
        return value
    return quoted(value)
