"""Plugin names: the one rule every name in the index obeys."""

from __future__ import annotations

import re
import unicodedata

NAME_PATTERN = r"[a-z][a-z0-9-]{1,63}"
_NAME = re.compile(NAME_PATTERN + r"\Z")
_RULE = "lower-case ASCII letters, digits and single hyphens, 2-64 long, starting with a letter"


def name_problem(name: str) -> str | None:
    """Return why `name` is not a valid plugin name, or None when it is."""
    for char in name:
        if not char.isascii():
            label = unicodedata.name(char, "unnamed character")
            return f"expected {_RULE}; got non-ASCII {char!r} (U+{ord(char):04X} {label})"
    if not _NAME.match(name):
        return f"expected {_RULE}; got {name!r}"
    if name.endswith("-"):
        return f"expected no trailing hyphen; got {name!r}"
    if "--" in name:
        return f"expected no doubled hyphen; got {name!r}"
    return None
