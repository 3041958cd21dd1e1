"""Requirements at the edges the property tests reach only by chance.

Each row is a bound whose off-by-one or inclusive/exclusive slip would let a
dependency or a user's request select a version it must not (see docs/mutation.md).
"""

from __future__ import annotations

import pytest

from builder.format.requirements import RequirementError, key_of, parse_requirement

CASES = [
    # requirement, versions it admits, versions it refuses (prereleases allowed)
    ("<1.2.3", ["1.2.2", "1.2.3-rc.1"], ["1.2.3", "1.2.4"]),
    ("<=1.2.3", ["1.2.3"], ["1.2.4", "1.2.4-0"]),
    (">1.2.3", ["1.2.4", "1.2.4-0"], ["1.2.3", "1.2.3-rc.1"]),
    (">=1.2.3-rc.1", ["1.2.3-rc.1", "1.2.3"], ["1.2.3-rc.0", "1.2.2"]),
    (">1", ["2.0.0", "2.0.0-0"], ["1.9.9", "1.0.0"]),
    ("<=1", ["1.9.9", "0.1.0"], ["2.0.0", "2.0.0-0"]),
    (">1.2", ["1.3.0", "1.3.0-0"], ["1.2.9", "1.2.0"]),
    ("<=1.2", ["1.2.9", "1.2.0"], ["1.3.0", "1.3.0-0"]),
    ("<1.2", ["1.1.9"], ["1.2.0", "1.2.0-0"]),
    ("<1", ["0.9.9"], ["1.0.0", "1.0.0-0"]),
    (">=1.2", ["1.2.0", "1.2.0-0", "1.2.0-alpha"], ["1.1.9"]),
    (">=1", ["1.0.0", "1.0.0-0"], ["0.9.9"]),
    ("^1.2", ["1.2.0", "1.2.0-0", "1.9.9"], ["2.0.0", "2.0.0-0", "1.1.9"]),
    ("^0.1.2", ["0.1.2", "0.1.9"], ["0.2.0", "0.1.1"]),
    ("^0.0.2", ["0.0.2"], ["0.0.3", "0.0.1"]),
    ("^0.0", ["0.0.0", "0.0.9"], ["0.1.0"]),
    ("^0", ["0.0.0", "0.9.9"], ["1.0.0"]),
    ("~1", ["1.0.0", "1.9.9"], ["2.0.0"]),
    ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
    ("=1.2", ["1.2.0", "1.2.9"], ["1.3.0", "1.1.9"]),
    ("=1", ["1.0.0", "1.9.9"], ["2.0.0", "0.9.9"]),
    ("1.*", ["1.0.0", "1.9.9"], ["2.0.0"]),
    ("1.2.x", ["1.2.0", "1.2.9"], ["1.3.0"]),
    ("=1.2.3-rc.1", ["1.2.3-rc.1"], ["1.2.3", "1.2.3-rc.2"]),
    (">=1.0, <2.0", ["1.0.0", "1.9.9"], ["2.0.0", "0.9.9"]),
]


@pytest.mark.parametrize(("text", "admits", "refuses"), CASES, ids=[c[0] for c in CASES])
def test_a_bound_admits_and_refuses_at_its_edge(
    text: str, admits: list[str], refuses: list[str]
) -> None:
    requirement = parse_requirement(text)
    assert [v for v in admits if not requirement.matches(key_of(v), allow_prerelease=True)] == []
    assert [v for v in refuses if requirement.matches(key_of(v), allow_prerelease=True)] == []


@pytest.mark.parametrize(
    ("text", "prerelease", "allowed"),
    [
        ("^1.2.3-rc.1", "1.2.3-rc.2", True),  # named triple: its prereleases are in
        ("^1.2.3-rc.1", "1.2.4-rc.1", False),  # another triple's are not
        ("^1.2.3", "1.2.4-rc.1", False),
        (">=1.0.0-0, <2.0.0", "1.5.0-0", False),
        (">=1.0.0-0, <2.0.0", "1.0.0-1", True),
    ],
)
def test_prereleases_only_of_a_triple_a_comparator_names(
    text: str, prerelease: str, allowed: bool
) -> None:
    assert parse_requirement(text).matches(key_of(prerelease)) is allowed


@pytest.mark.parametrize(
    "text",
    ["", "  ", "1.2.3.4", "v1.2.3", "^*", "*, ^1", "1.*.3", "^1.*", "01.2.3", ">=1.2.3-", "=="],
)
def test_a_bad_requirement_is_refused(text: str) -> None:
    with pytest.raises(RequirementError, match="expected"):
        parse_requirement(text)


@pytest.mark.parametrize("text", ["1.2", "v1.2.3", "1.2.3-", "", "1.2.3.4"])
def test_a_bad_version_is_refused(text: str) -> None:
    with pytest.raises(RequirementError, match="expected a semantic version"):
        key_of(text)


def test_a_release_sorts_after_its_prereleases_and_numbers_before_words() -> None:
    ordered = ["1.0.0-0", "1.0.0-1", "1.0.0-10", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0"]
    assert sorted(ordered, key=key_of) == ordered
