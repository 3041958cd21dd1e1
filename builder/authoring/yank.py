"""Yank and un-yank: write a version file's signed `yanked:` or `unyanked:` section.

Each yank or un-yank carries a serial one above the version's last one (the file
always holds the latest: an `unyanked:` section replaces the `yanked:` it takes
back), so an old signed state can never be replayed over a newer one. The section
replaces the one there was, or goes before the release signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.authoring.plugin import AuthorError, PluginAt, check_signer, checked, open_plugin
from builder.authoring.sign import parse_source, sign_text, write_source
from builder.authoring.yaml_edit import Lines, render
from builder.format.load import read_file
from builder.format.models import LongText, VersionManifest

YANK_SECTIONS = ("yanked", "unyanked")


@dataclass(frozen=True)
class YankWritten:
    file: Path
    serial: int
    owner: str
    key_id: str


def yank_version(
    index: Path, name: str, version: str, *, reason: str, key: Ed25519PrivateKey
) -> YankWritten:
    """Yank `version` of plugin `name` for `reason`, signed with an owner's `key`."""
    reason = checked("--reason", LongText, reason)
    plugin, rel, current = _open_version(index, name, version)
    owner = check_signer(plugin, key)
    done = current.yanked
    if done is not None and done.reason == reason and done.signature is not None:
        raise AuthorError(
            f"{index / rel}: {name} {version} is already yanked with this reason "
            f"(serial {done.serial}); nothing to change"
        )
    state: dict[str, str | int] = {"reason": reason, "serial": next_serial(current)}
    return _write(plugin, rel, "yanked", state, key, owner)


def unyank_version(index: Path, name: str, version: str, *, key: Ed25519PrivateKey) -> YankWritten:
    """Take back the yank of `version` of plugin `name`, signed with an owner's `key`."""
    plugin, rel, current = _open_version(index, name, version)
    owner = check_signer(plugin, key)
    if current.yanked is None:
        taken_back = (
            f"; its yank was already taken back (serial {current.unyanked.serial})"
            if current.unyanked is not None
            else ""
        )
        raise AuthorError(f"{index / rel}: {name} {version} is not yanked{taken_back}")
    return _write(plugin, rel, "unyanked", {"serial": next_serial(current)}, key, owner)


def next_serial(version: VersionManifest) -> int:
    """Return the serial of the version's next yank or un-yank: one above the last."""
    states = (version.yanked, version.unyanked)
    return max((s.serial for s in states if s is not None), default=0) + 1


def _open_version(index: Path, name: str, version: str) -> tuple[PluginAt, str, VersionManifest]:
    plugin = open_plugin(index, name)
    rel = plugin.version_rel(version)
    if not (index / rel).is_file():
        have = ", ".join(plugin.versions()) or "none"
        raise AuthorError(
            f"{index / rel}: no such file (expected a version of {name}; it has: {have})"
        )
    return plugin, rel, parse_source(VersionManifest, index, rel)


def _write(  # noqa: PLR0917 - the file, the new state, and who signs it
    plugin: PluginAt,
    rel: str,
    section: str,
    state: dict[str, str | int],
    key: Ed25519PrivateKey,
    owner: str,
) -> YankWritten:
    """Put `section: state` in place of the file's yank state, sign it, write the file."""
    index = plugin.index
    doc = Lines(read_file(index, rel).decode("utf-8"))
    rendered = render(section, state)
    places = [found for old in YANK_SECTIONS if (found := doc.find(old)) is not None]
    if places:
        # Replace the first; a second state (the file may hold only one) goes too.
        for start, end in sorted(places, reverse=True)[:-1]:
            del doc.lines[start:end]
        start, end = min(places)
        if doc.lines[start].startswith("yanked") and section == "unyanked":
            start = doc.comment_above(start)  # a comment on the yank is wrong once taken back
        doc.lines[start:end] = doc.block(rendered)
    else:
        doc.put(section, rendered, before=("signature",))
    signed, _, key_id = sign_text(plugin.registry.name, index, rel, doc.text(), key, yank=True)
    write_source(index / rel, signed)
    return YankWritten(index / rel, int(state["serial"]), owner, key_id)
