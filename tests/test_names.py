"""Names that could be mistaken for existing ones (typosquats), and names that can't."""

from __future__ import annotations

import pytest

from builder.format.names import NameIndex, is_typing_slip, resembled_name, reserved_word_in

EXISTING = ["auth-jwt", "auth-basic", "datasource-postgres", "template-faker", "minimap", "tars"]


@pytest.mark.parametrize(
    ("name", "other", "how"),
    [
        ("Auth-JWT", "auth-jwt", "normalisation"),
        ("auth_jwt", "auth-jwt", "normalisation"),
        ("auth-jvvt", "auth-jwt", "look-alike"),
        ("authjwt", "auth-jwt", "hyphens"),
        ("jwt-auth", "auth-jwt", "another order"),
        ("auth-jwt-pro", "auth-jwt", "`pro` added"),
        ("py-auth-jwt", "auth-jwt", "`py` added"),
        ("official-auth-jwt-v2", "auth-jwt", "added"),
        ("auth-bsaic", "auth-basic", "slip"),  # a swap
        ("auth-baasic", "auth-basic", "slip"),  # a doubled key
        ("auth-bsic", "auth-basic", "slip"),  # a missed key
        ("datasource-postgtes", "datasource-postgres", "slip"),  # r -> t, neighbours
        ("datasource-p0stgtes", "datasource-postgres", "slip"),  # look-alike plus a slip
        ("ternplate-fakrr", "template-faker", "slip"),  # rn for m, plus a slip
    ],
)
def test_a_squat_is_flagged_with_the_name_it_copies(name: str, other: str, how: str) -> None:
    found = resembled_name(name, EXISTING)
    assert found is not None, name
    assert found.other == other
    assert how in found.how


@pytest.mark.parametrize(
    "name",
    [
        "mindmap",  # minimap: i -> d is no slip, two different words
        "tabs",  # tars: too short for one-edit checks, b is far from r
        "auth-jwk",  # jwt: short words (acronyms) differ by one letter all the time
        "auth-jwr",  # jwt: r is next to t, but a three-letter word is too short to judge
        "auth-jtw",
        "auth-oauth2",
        "datasource-mysql",
        "template-faker-extras",  # `extras` is not a squatter's word
    ],
)
def test_a_legitimately_different_name_passes(name: str) -> None:
    assert resembled_name(name, EXISTING) is None


def test_the_same_name_after_normalising_is_marked_as_such() -> None:
    """Only a normalisation clash is PX130; every other likeness is PX131."""
    same = resembled_name("AUTH_JWT", EXISTING)
    alike = resembled_name("auth-jvvt", EXISTING)
    assert same is not None and same.same_after_normalising
    assert alike is not None and not alike.same_after_normalising


def test_a_name_is_not_its_own_squat() -> None:
    assert NameIndex(EXISTING).resembled("auth-jwt") is None


@pytest.mark.parametrize(
    ("typed", "meant", "slip"),
    [
        ("requsets", "requests", True),
        ("requestss", "requests", True),
        ("requets", "requests", True),
        ("rewuests", "requests", True),  # w is next to q
        ("repuests", "requests", False),  # p is far from q
        ("requestsz", "requests", True),  # z is next to s
        ("requestsp", "requests", False),
        ("requests", "requests", False),
    ],
)
def test_typing_slips(typed: str, meant: str, slip: bool) -> None:
    assert is_typing_slip(typed, meant) is slip


@pytest.mark.parametrize(
    ("name", "word"),
    [("official-jwt", "official"), ("jwt-plugindex", "plugindex"), ("jwt-officials", None)],
)
def test_a_reserved_word_inside_a_name_is_found(name: str, word: str | None) -> None:
    assert reserved_word_in(name, ["official", "plugindex", "admin"]) == word
