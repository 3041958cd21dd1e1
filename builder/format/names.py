"""Plugin names: the one rule every name in the index obeys."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

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


# --- names that could be mistaken for others (typosquats) ---------------------------

# Characters and pairs that read alike in most fonts, mapped to one representative.
# Pairs first: `rn` must become `m` before single characters are mapped.
_LOOKALIKE_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_LOOKALIKE_CHARS = str.maketrans({"0": "o", "1": "l", "i": "l", "5": "s"})


def normalise(name: str) -> str:
    """Return the form two names are compared in: lower case, `_` and `.` as `-`."""
    return name.lower().replace("_", "-").replace(".", "-")


def skeleton(name: str) -> str:
    """Return a name with look-alike characters folded together (`rn` → `m`, `0` → `o`)."""
    folded = normalise(name)
    for pair, single in _LOOKALIKE_PAIRS:
        folded = folded.replace(pair, single)
    return folded.translate(_LOOKALIKE_CHARS)


def within_one_edit(a: str, b: str) -> bool:
    """Tell whether a and b differ by at most one insertion, deletion, substitution or swap.

    The Damerau-Levenshtein distance ≤ 1 test, in linear time: it runs against every
    name of the index for each new plugin.
    """
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        if a[i + 1 :] == b[i + 1 :]:
            return True  # one substitution
        # one swap of neighbours
        return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[i + 1 :] == shorter[i:]


def resembled_name(name: str, existing: Iterable[str]) -> tuple[str, str] | None:
    """Return (existing name, how they are alike) if `name` could be mistaken for one."""
    own, own_skeleton = normalise(name), skeleton(name)
    for other in sorted(existing):
        if other == name:
            continue
        if normalise(other) == own:
            return other, "the same name after normalisation (case, `_` and `.` as `-`)"
        if skeleton(other) == own_skeleton:
            return other, "look-alike characters (such as 0/o, 1/l/i, rn/m, vv/w)"
        if within_one_edit(normalise(other), own):
            return other, "one typing mistake apart (edit distance 1)"
    return None
