"""Semver requirements mean what Cargo users expect."""

from __future__ import annotations

import pytest

from builder.format.requirements import RequirementError, key_of, parse_requirement, parse_version

MATCHES = [
    ("^1.2", "1.2.0", True),
    ("^1.2", "1.9.9", True),
    ("^1.2", "2.0.0", False),
    ("^1.2", "1.1.9", False),
    ("1.2.3", "1.4.0", True),  # a bare version means ^
    ("^0.2.3", "0.2.9", True),
    ("^0.2.3", "0.3.0", False),
    ("^0.0.3", "0.0.4", False),
    ("~1.2.3", "1.2.9", True),
    ("~1.2.3", "1.3.0", False),
    ("~1", "1.9.0", True),
    ("=1.0.0", "1.0.0", True),
    ("=1.0.0", "1.0.1", False),
    (">=1.0, <2.0", "1.5.0", True),
    (">=1.0, <2.0", "2.0.0", False),
    (">1.2", "1.2.5", False),
    (">1.2", "1.3.0", True),
    ("<=1.2", "1.2.9", True),
    ("<=1.2", "1.3.0", False),
    ("1.2.*", "1.2.7", True),
    ("1.2.*", "1.3.0", False),
    ("1.x", "1.4.0", True),
    ("*", "9.9.9", True),
]


@pytest.mark.parametrize(
    ("requirement", "version", "expected"), MATCHES, ids=[f"{r} {v}" for r, v, _ in MATCHES]
)
def test_requirement_matches_like_cargo(requirement: str, version: str, expected: bool) -> None:
    assert parse_requirement(requirement).matches(key_of(version)) is expected


def test_prereleases_match_only_when_named_or_allowed() -> None:
    """A prerelease satisfies a range only if the range names that triple, or when asked."""
    assert not parse_requirement("^1.0").matches(key_of("2.0.0-rc.1"))
    assert not parse_requirement("^1").matches(key_of("1.0.0-beta"))
    assert parse_requirement("^1").matches(key_of("1.1.0-beta"), allow_prerelease=True)
    assert parse_requirement("^2.0.0-rc.1").matches(key_of("2.0.0-rc.2"))
    assert parse_requirement("^2.0.0-rc.1").matches(key_of("2.0.0"))


def test_version_keys_order_by_semver_precedence() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.2.0",
        "1.10.0",
    ]
    assert sorted(ordered, key=key_of) == ordered


@pytest.mark.parametrize(
    "text", ["", "^", "1.2.3.4", ">=a", "v1.2", "*, >1", "^*", ">=1.*", "1.*.3"]
)
def test_bad_requirements_are_refused(text: str) -> None:
    with pytest.raises(RequirementError, match="expected"):
        parse_requirement(text)


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "01.0.0", "1.0.0-", ""])
def test_bad_versions_are_refused(text: str) -> None:
    with pytest.raises(RequirementError, match="expected a semantic version"):
        parse_version(text)
