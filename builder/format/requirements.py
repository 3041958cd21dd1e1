"""Semver versions and requirements, with Cargo's meaning of `^`, `~`, `*` and ranges.

A requirement is a comma-separated list of comparators that must all hold:
`^1.2`, `~1.2.3`, `=1.0.0`, `>=1.0, <2.0`, `1.2.*`, `*`. A bare version means `^`.
Versions are compared through precomputed tuple keys, because the build checks
hundreds of thousands of dependency edges and semver objects compare slowly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import semver

# A version's sort key: (major, minor, patch, prerelease), where a release sorts after
# every prerelease of the same triple, and prerelease identifiers compare as semver says.
VersionKey = tuple[int, int, int, tuple[tuple[int, int | str], ...]]
RELEASE: tuple[tuple[int, int | str], ...] = ((2, 0),)

_COMPARATOR = re.compile(
    r"\s*(?P<op>\^|~|=|>=|<=|>|<)?\s*"
    r"(?P<major>0|[1-9]\d*|\*|x|X)"
    r"(?:\.(?P<minor>0|[1-9]\d*|\*|x|X)"
    r"(?:\.(?P<patch>0|[1-9]\d*|\*|x|X)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?)?)?\s*\Z"
)
_WILDCARD = frozenset({"*", "x", "X"})


class RequirementError(ValueError):
    """A requirement or version string does not parse."""


@lru_cache(maxsize=65536)
def parse_version(text: str) -> semver.Version:
    """Parse a strict semver 2.0 version (no leading `v`, no missing parts)."""
    try:
        return semver.Version.parse(text)
    except (ValueError, TypeError) as e:
        raise RequirementError(
            f"expected a semantic version such as 1.2.3 or 2.0.0-rc.1; got {text!r}"
        ) from e


def version_key(version: semver.Version) -> VersionKey:
    """Return a tuple that sorts versions in semver precedence order."""
    if version.prerelease is None:
        pre = RELEASE
    else:
        pre = tuple(
            (0, int(part)) if part.isdigit() else (1, part)
            for part in version.prerelease.split(".")
        )
    return (version.major, version.minor, version.patch, pre)


def key_of(text: str) -> VersionKey:
    """Return the sort key of a version string."""
    return version_key(parse_version(text))


def _triple_key(major: int, minor: int, patch: int) -> VersionKey:
    # The lowest version of a triple is its smallest prerelease; `(0, 0)` sorts first.
    return (major, minor, patch, ((-1, 0),))


# An interval of version keys: (low, low inclusive, high, high inclusive); None: unbounded.
Bound = tuple[VersionKey | None, bool, VersionKey | None, bool]


@dataclass(frozen=True)
class Requirement:
    """A parsed requirement: lower/upper bounds plus the triples it allows prereleases of."""

    text: str
    bounds: tuple[Bound, ...]
    prerelease_triples: frozenset[tuple[int, int, int]]

    def matches(self, key: VersionKey, *, allow_prerelease: bool = False) -> bool:
        """Return whether the version with sort `key` satisfies every comparator."""
        if key[3] != RELEASE and not allow_prerelease and key[:3] not in self.prerelease_triples:
            return False
        for low, low_inclusive, high, high_inclusive in self.bounds:
            if low is not None and (key < low or (key == low and not low_inclusive)):
                return False
            if high is not None and (key > high or (key == high and not high_inclusive)):
                return False
        return True

    def __str__(self) -> str:
        return self.text


def _bounds(op: str, major: int, minor: int | None, patch: int | None, pre: str | None) -> Bound:
    """Translate one comparator into an interval of version keys."""
    exact: VersionKey | None = None
    if minor is not None and patch is not None:
        exact = key_of(f"{major}.{minor}.{patch}" + (f"-{pre}" if pre else ""))
    if op == "^":
        low = exact or _triple_key(major, minor or 0, patch or 0)
        if major > 0 or minor is None:
            high = _triple_key(major + 1, 0, 0)
        elif minor > 0 or patch is None:
            high = _triple_key(0, minor + 1, 0)
        else:
            high = _triple_key(0, 0, patch + 1)
        return (low, True, high, False)
    if op == "~" or (op == "=" and exact is None):
        low = exact or _triple_key(major, minor or 0, patch or 0)
        high = _triple_key(major + 1, 0, 0) if minor is None else _triple_key(major, minor + 1, 0)
        return (low, True, high, False)
    if op == "=":
        return (exact, True, exact, True)
    upper_of_partial = (
        _triple_key(major + 1, 0, 0) if minor is None else _triple_key(major, minor + 1, 0)
    )
    if op == ">":
        return (exact, False, None, False) if exact else (upper_of_partial, True, None, False)
    if op == ">=":
        return (exact or _triple_key(major, minor or 0, 0), True, None, False)
    if op == "<":
        return (None, False, exact or _triple_key(major, minor or 0, 0), False)
    # "<="
    return (None, False, exact, True) if exact else (None, False, upper_of_partial, False)


@lru_cache(maxsize=65536)
def parse_requirement(text: str) -> Requirement:
    """Parse a requirement such as `^1.2`, `>=1.0, <2.0` or `*`."""
    if not text.strip():
        raise RequirementError("expected a version requirement such as ^1.2; got an empty one")
    bounds: list[Bound] = []
    prerelease_triples: set[tuple[int, int, int]] = set()
    for part in text.split(","):
        match = _COMPARATOR.match(part)
        if not match:
            raise RequirementError(
                f"expected a version requirement such as ^1.2, ~1.2.3, >=1.0, <2.0 or *; "
                f"got {text!r}"
            )
        op = match["op"] or "^"
        if match["major"] in _WILDCARD:
            if match["op"] or match["minor"] is not None or len(text.split(",")) > 1:
                raise RequirementError(f"expected `*` alone; got {text!r}")
            bounds.append((None, False, None, False))
            continue
        # `1.*` and `1.2.x` are wildcards: the series of the parts before the star.
        given = [f for f in (match["major"], match["minor"], match["patch"]) if f is not None]
        numbers = []
        for value in given:
            if value in _WILDCARD:
                break
            numbers.append(int(value))
        if len(numbers) < len(given):
            if any(value not in _WILDCARD for value in given[len(numbers) :]):
                raise RequirementError(f"expected wildcards only at the end; got {text!r}")
            if match["op"] or match["pre"]:
                raise RequirementError(f"expected no operator with a wildcard; got {text!r}")
            op = "="
        major = numbers[0]
        minor = numbers[1] if len(numbers) > 1 else None
        patch = numbers[2] if len(numbers) > 2 else None
        if match["pre"]:
            prerelease_triples.add((major, minor or 0, patch or 0))
        bounds.append(_bounds(op, major, minor, patch, match["pre"]))
    return Requirement(text, tuple(bounds), frozenset(prerelease_triples))
