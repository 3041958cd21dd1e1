"""Plugin names: the one rule every name in the index obeys."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import NamedTuple

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
_LOOKALIKE_PAIRS = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_LOOKALIKE_CHARS = str.maketrans({"0": "o", "1": "l", "i": "l", "5": "s"})


def normalise(name: str) -> str:
    """Return the form two names are compared in: lower case, `_` and `.` as `-`."""
    return name.lower().replace("_", "-").replace(".", "-")


def skeleton(name: str) -> str:
    """Return a name with look-alike characters folded together (`rn` → `m`, `0` → `o`)."""
    # Characters first, so a pair made of a look-alike (`c1` for `cl`) folds too.
    folded = normalise(name).translate(_LOOKALIKE_CHARS)
    for pair, single in _LOOKALIKE_PAIRS:
        folded = folded.replace(pair, single)
    return folded


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


class Resemblance(NamedTuple):
    """An existing name a new one could be mistaken for, and why."""

    other: str
    how: str
    same_after_normalising: bool = False  # not merely alike: the same name (PX130)


# Words squatters add to a popular name to make a "new" one: `auth-jwt-pro`, `py-auth-jwt`.
NOISE_WORDS = frozenset(
    {
        "pro", "plus", "premium", "official", "original", "real", "true", "new", "next",
        "latest", "legacy", "lite", "free", "secure", "safe", "fixed", "fix", "patched",
        "beta", "v2", "v3", "2", "3", "x", "py", "python", "python3", "js", "node", "hq",
    }
)  # fmt: skip
# A slip must fall in a word at least this long: short words (jwt, jwk, aio, api) are
# each other's one-edit neighbours as a matter of course.
_MIN_SLIP_WORD = 4

# QWERTY keys and the keys around them: a substitution or an insertion of a
# neighbouring key is a typing slip; one of a key across the keyboard is another word.
_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, frozenset[str]]:
    where = {c: (r, i) for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
    near: dict[str, set[str]] = {c: set() for c in where}
    for c, (r, i) in where.items():
        # the row below is shifted half a key to the right
        for rr, ii in (
            (r, i - 1),
            (r, i + 1),
            (r - 1, i),
            (r - 1, i + 1),
            (r + 1, i - 1),
            (r + 1, i),
        ):
            if 0 <= rr < len(_ROWS) and 0 <= ii < len(_ROWS[rr]):
                near[c].add(_ROWS[rr][ii])
    return {c: frozenset(n) for c, n in near.items()}


_NEAR = _keyboard_neighbours()


def _folded_neighbours() -> dict[str, frozenset[str]]:
    """Return key neighbours in skeleton space: a folded key is near what its sources were."""
    folded: dict[str, set[str]] = {}
    for key, neighbours in _NEAR.items():
        folded.setdefault(key.translate(_LOOKALIKE_CHARS), set()).update(
            n.translate(_LOOKALIKE_CHARS) for n in neighbours
        )
    return {key: frozenset(n) for key, n in folded.items()}


_NEAR_FOLDED = _folded_neighbours()


def is_typing_slip(typed: str, meant: str, near: dict[str, frozenset[str]] | None = None) -> bool:
    """Tell whether `typed` is `meant` with one slip: a swap, a doubled, missed or near key.

    A substitution counts only for a neighbouring key, and an insertion only for a
    doubled letter or a key next to one of its neighbours: `tabs` is not a slip for
    `tars`, `mindmap` is not one for `minimap`, but `requsets` is one for `requests`.
    The slip must fall in a word of at least `_MIN_SLIP_WORD` letters. `near` maps
    each key to its neighbours (QWERTY by default).
    """
    near = _NEAR if near is None else near
    if typed == meant or not within_one_edit(typed, meant):
        return False
    i = 0
    while i < min(len(typed), len(meant)) and typed[i] == meant[i]:
        i += 1
    longer = typed if len(typed) > len(meant) else meant
    if len(_word_at(longer, i)) < _MIN_SLIP_WORD:
        return False
    if len(typed) == len(meant):
        if typed[i + 1 :] != meant[i + 1 :]:
            return True  # a swap of neighbours
        return typed[i] in near.get(meant[i], frozenset())
    if len(typed) < len(meant):
        return True  # a missed key
    extra = typed[i]
    neighbours = {typed[i - 1] if i > 0 else "", typed[i + 1] if i + 1 < len(typed) else ""}
    return extra in neighbours or any(extra in near.get(n, frozenset()) for n in neighbours)


def _word_at(name: str, i: int) -> str:
    """Return the hyphen-separated word at position `i` of `name` (or just before it)."""
    i = min(i, len(name) - 1)
    if name[i] == "-":
        i -= 1  # the edit touches the end of the word before the hyphen
    start = name.rfind("-", 0, i + 1) + 1
    end = name.find("-", i)
    return name[start : end if end != -1 else len(name)]


def _words(name: str) -> tuple[str, ...]:
    return tuple(w for w in name.split("-") if w)


_NOISE_FORMS = frozenset(skeleton(word) for word in NOISE_WORDS)


def _trimmed(words: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Return the name with noise words dropped from either end, in every way (not itself)."""
    found: set[tuple[str, ...]] = set()
    start = 0
    while start < len(words) - 1:
        end = len(words)
        while end - start > 1 and words[end - 1] in _NOISE_FORMS:
            end -= 1
            found.add(words[start:end])
        if words[start] not in _NOISE_FORMS:
            break
        start += 1
        found.add(words[start:])
    return found


def _words_not_in(name: str, other: str) -> str:
    """Return the words of `name` that `other` lacks, for a message (`pro`, `py`)."""
    theirs = set(_words(normalise(other)))
    return ", ".join(f"`{w}`" for w in _words(normalise(name)) if w not in theirs)


def _deletions(text: str) -> set[str]:
    return {text[:i] + text[i + 1 :] for i in range(len(text))}


class NameIndex:
    """The names of an index, arranged so a new name is compared with all of them at once.

    Each check is a dictionary lookup (one-edit neighbours through the deletion
    variants of each name, as SymSpell does), so comparing a name with 150,000
    others costs microseconds, not a pass over the list.
    """

    def __init__(self, names: Iterable[str]) -> None:
        self._normal: dict[str, str] = {}
        self._skeleton: dict[str, str] = {}
        self._squashed: dict[str, str] = {}
        self._word_set: dict[tuple[str, ...], str] = {}
        self._trimmed: dict[tuple[str, ...], str] = {}
        self._variants: dict[str, set[str]] = {}
        for name in sorted(set(names)):
            form = skeleton(name)
            self._normal.setdefault(normalise(name), name)
            self._skeleton.setdefault(form, name)
            self._squashed.setdefault(form.replace("-", ""), name)
            self._word_set.setdefault(tuple(sorted(_words(form))), name)
            for trimmed in _trimmed(_words(form)):
                self._trimmed.setdefault(trimmed, name)
            for variant in {form, *_deletions(form)}:
                self._variants.setdefault(variant, set()).add(name)

    def resembled(self, name: str) -> Resemblance | None:
        """Return the existing name `name` could be mistaken for, if any (itself excluded)."""
        form = skeleton(name)
        words = _words(form)

        def other(found: str | None) -> str | None:
            return found if found is not None and found != name else None

        if found := other(self._normal.get(normalise(name))):
            return Resemblance(
                found, "the same name after normalisation (case, `_` and `.` as `-`)", True
            )
        if found := other(self._skeleton.get(form)):
            return Resemblance(found, "look-alike characters (such as 0/o, 1/l/i, rn/m, vv/w)")
        if found := other(self._squashed.get(form.replace("-", ""))):
            return Resemblance(found, "the same letters with hyphens elsewhere")
        if len(words) > 1 and (found := other(self._word_set.get(tuple(sorted(words))))):
            return Resemblance(found, "the same words in another order")
        for trimmed in sorted(_trimmed(words), key=len, reverse=True):
            if found := other(self._skeleton.get("-".join(trimmed))):
                added = _words_not_in(name, found)
                return Resemblance(found, f"the same name with {added} added")
        if found := other(self._trimmed.get(words)):
            return Resemblance(found, f"the same name without {_words_not_in(found, name)}")
        own = normalise(name)
        for found in sorted(self._one_edit_candidates(form)):
            if found != name and (
                is_typing_slip(own, normalise(found))
                or is_typing_slip(form, skeleton(found), _NEAR_FOLDED)
            ):
                return Resemblance(
                    found, "one typing slip apart (a swapped, doubled, missed or neighbouring key)"
                )
        return None

    def _one_edit_candidates(self, form: str) -> set[str]:
        found: set[str] = set()
        for variant in {form, *_deletions(form)}:
            found |= self._variants.get(variant, set())
        return found


def resembled_name(name: str, existing: Iterable[str]) -> Resemblance | None:
    """Return the existing name `name` could be mistaken for, and how they are alike."""
    return NameIndex(existing).resembled(name)


def reserved_word_in(name: str, reserved: Iterable[str]) -> str | None:
    """Return a reserved word `name` contains as one of its words (`official-jwt`), if any."""
    words = set(_words(normalise(name)))
    return next((word for word in sorted(reserved) if word in words and word != name), None)
