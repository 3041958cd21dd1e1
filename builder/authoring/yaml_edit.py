"""Text edits of block-style YAML: find, replace, add and drop a mapping's keys.

The author's files are edited as text, never re-dumped, so every comment, blank line,
quote and key order they wrote stays. Only block-style mappings are edited (what
`plugindex new` writes and people write); a caller re-parses the result strictly
before writing it, so an edit these helpers get wrong is refused, never saved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# A key line: indentation, the key (plain, or in single or double quotes, as YAML
# allows), optional spaces, the colon, then a space or the end of the line.
_KEY_LINE = re.compile(
    r"""^(?P<indent> *)(?:"(?P<dq>[A-Za-z_][A-Za-z0-9_]*)"|'(?P<sq>[A-Za-z_][A-Za-z0-9_]*)'"""
    r"""|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)) *:(?P<rest>[ \t].*)?$"""
)
# Characters YAML does not allow raw in a stream (PyYAML's reader refuses them).
_NOT_YAML_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


class EditError(ValueError):
    """The text cannot be edited as asked (a message for the caller to place)."""


@dataclass(frozen=True)
class KeyLine:
    indent: int
    key: str
    rest: str  # what follows the colon on the same line (an inline value, a comment)


def key_line(line: str) -> KeyLine | None:
    """Return the key a line opens (at any indentation), or None."""
    match = _KEY_LINE.match(line.rstrip("\r\n"))
    if match is None:
        return None
    key = match["dq"] or match["sq"] or match["plain"]
    return KeyLine(len(match["indent"]), key, (match["rest"] or "").strip())


def has_inline_value(line: str) -> bool:
    """Tell whether a key line carries its value on the same line (`key: value`)."""
    found = key_line(line)
    return found is not None and bool(found.rest.split("#")[0].strip())


class Lines:
    """A YAML text as lines (each keeping its line break), with its newline style."""

    def __init__(self, text: str) -> None:
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.lines = text.splitlines(keepends=True)
        if self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += self.newline

    def text(self) -> str:
        """Return the edited text."""
        return "".join(self.lines)

    def find(
        self, key: str, *, start: int = 0, end: int | None = None, indent: int = 0
    ) -> tuple[int, int] | None:
        """Return the line range [head, end) of `key:` at `indent` within [start, end).

        The range ends after the key's last content line: comments and blank lines
        after it belong to what follows.
        """
        stop = len(self.lines) if end is None else end
        for i in range(start, stop):
            found = key_line(self.lines[i])
            if found is not None and found.indent == indent and found.key == key:
                j = i + 1
                while j < stop and not _ends_block(self.lines[j], indent):
                    j += 1
                return i, content_end(self.lines, i + 1, j)
        return None

    def section(self, key: str) -> tuple[int, int, int] | None:
        """Return (first child line, end, child indent) of a top-level block section."""
        found = self.find(key)
        if found is None:
            return None
        head, end = found
        if has_inline_value(self.lines[head]):
            raise EditError(
                f"{head + 1}: `{key}:` is written inline; write it as an indented block"
            )
        return head + 1, end, child_indent(self.lines, head + 1, end)

    def block(self, rendered: Sequence[str], indent: int = 0) -> list[str]:
        """Return rendered lines (without line breaks) indented and with this text's breaks."""
        pad = " " * indent
        return [f"{pad}{line}{self.newline}" for line in rendered]

    def put(self, key: str, rendered: Sequence[str], *, before: Sequence[str] = ()) -> None:
        """Replace top-level `key` and its block with `rendered` lines.

        A missing key is added before the first top-level key of `before` found (and
        the comment right above it), else at the end.
        """
        new = self.block(rendered)
        found = self.find(key)
        if found is not None:
            self.lines[found[0] : found[1]] = new
            return
        for other in before:
            place = self.find(other)
            if place is not None:
                at = self.comment_above(place[0])
                self.lines[at:at] = new
                return
        at = content_end(self.lines, 0, len(self.lines))
        self.lines[at:at] = new

    def drop(self, key: str) -> bool:
        """Remove top-level `key`, its block and the comment right above it; say if it was there."""
        found = self.find(key)
        if found is None:
            return False
        del self.lines[self.comment_above(found[0]) : found[1]]
        return True

    def comment_above(self, head: int) -> int:
        """Return where the comment lines directly above line `head` start (`head` if none).

        A comment right above a key says something about it: it goes with the key.
        """
        start = head
        while start > 0 and self.lines[start - 1].lstrip(" ").startswith("#"):
            start -= 1
        if start == 0:
            return head  # the file's opening comment is about the file, not the key
        return start


def _ends_block(line: str, indent: int) -> bool:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return False
    return len(line) - len(line.lstrip(" ")) <= indent


def content_end(lines: Sequence[str], start: int, end: int) -> int:
    """Return the line after the last non-blank, non-comment line in [start, end)."""
    last = start
    for i in range(start, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            last = i + 1
    return last


def child_indent(lines: Sequence[str], start: int, end: int) -> int:
    """Return the indentation of the first content line in [start, end) (2 if none)."""
    for i in range(start, end):
        stripped = lines[i].strip()
        if stripped and not stripped.startswith("#"):
            return len(lines[i]) - len(lines[i].lstrip(" "))
    return 2


def quoted(text: str) -> str:
    """Return `text` as a YAML double-quoted scalar that reads back as exactly `text`."""
    # A JSON string is a YAML double-quoted scalar; characters YAML refuses raw
    # (such as U+FFFE) are written as escapes, which YAML reads back.
    encoded = json.dumps(text, ensure_ascii=False)
    return _NOT_YAML_PRINTABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", encoded)


# Text that every YAML reader (1.1 and 1.2) reads back as the same text when plain:
# starts with a letter, no spaces, no colon at the end, not a boolean or null word.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9._/+=:-]*(?<!:)")
_WORDS = frozenset({"null", "true", "false", "yes", "no", "on", "off", "y", "n"})


def scalar(value: object) -> str:
    """Return a scalar value as YAML text that reads back as exactly that value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        plain = _PLAIN.fullmatch(value) and value.lower() not in _WORDS
        return value if plain else quoted(value)
    raise TypeError(f"no YAML form for {type(value).__name__}")


def render(key: str, value: object) -> list[str]:
    """Render `key: value` as block-style YAML lines (mappings, lists, scalars)."""
    if isinstance(value, Mapping):
        if not value:
            return [f"{key}: {{}}"]
        lines = [f"{key}:"]
        for child, item in value.items():
            lines += [f"  {line}" for line in render(str(child), item)]
        return lines
    if isinstance(value, list):
        if not value:
            return [f"{key}: []"]
        lines = [f"{key}:"]
        for item in value:
            lines += _list_item(item)
        return lines
    return [f"{key}: {scalar(value)}"]


def _list_item(item: object) -> list[str]:
    if isinstance(item, Mapping) and item:
        inner: list[str] = []
        for child, value in item.items():
            inner += render(str(child), value)
        return [f"  - {inner[0]}", *(f"    {line}" for line in inner[1:])]
    if isinstance(item, (Mapping, list)):
        return [f"  - {'{}' if isinstance(item, Mapping) else '[]'}"]
    return [f"  - {scalar(item)}"]
