"""Properties over large input spaces (hypothesis), each checked against a reference.

- requirements: parsing and matching against a small independent reference of
  Cargo's semantics (every operator, partial versions, inclusive and exclusive
  bounds, the prerelease rule), with versions ordered by `semver` itself;
- the resolver: any solution it returns satisfies every requirement, and when it
  says there is none, brute force over a small universe agrees;
- strict YAML: whatever it accepts survives a round trip, and it never raises
  anything but our own error;
- canonical JSON: the same bytes whatever the key order.

Example counts are bounded so each test takes a second or two.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import semver
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from builder.client.resolve import Candidate, Dependency, ResolutionError, Root, resolve
from builder.common.errors import SourceError
from builder.format.requirements import (
    RequirementError,
    key_of,
    parse_requirement,
)
from builder.format.strict_yaml import parse, resolve_plain
from builder.trust.statements import canonical_json

# Mutation runs (benchmarks/mutation.py) need a verdict, not a minimal example: no
# shrinking and no example database there.
settings.register_profile(
    "mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate], database=None
)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
# The suite draws the same examples every run, so it never fails by chance in CI;
# HYPOTHESIS_PROFILE=explore draws new ones (run it when changing the code under test).
FIXED = os.environ.get("HYPOTHESIS_PROFILE") != "explore"
FAST = settings(
    derandomize=FIXED, max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- requirements against a reference ----------------------------------------------------

PRERELEASES = [None, "alpha", "alpha.1", "beta", "rc.1", "rc.2", "0", "1"]
numbers = st.integers(0, 3)
versions = st.builds(
    lambda ma, mi, pa, pre: f"{ma}.{mi}.{pa}" + (f"-{pre}" if pre else ""),
    numbers,
    numbers,
    numbers,
    st.sampled_from(PRERELEASES),
)
OPERATORS = ["", "^", "~", "=", ">", ">=", "<", "<="]


@st.composite
def comparators(draw: st.DrawFn) -> tuple[str, int, int | None, int | None, str | None]:
    """Draw (op, major, minor, patch, prerelease): a full or partial version."""
    op = draw(st.sampled_from(OPERATORS))
    major = draw(numbers)
    given_parts = draw(st.integers(1, 3))
    minor = draw(numbers) if given_parts > 1 else None
    patch = draw(numbers) if given_parts > 2 else None
    pre = draw(st.sampled_from(PRERELEASES)) if patch is not None else None
    return op, major, minor, patch, pre


def text_of(comp: tuple[str, int, int | None, int | None, str | None]) -> str:
    op, major, minor, patch, pre = comp
    parts = [str(p) for p in (major, minor, patch) if p is not None]
    return op + ".".join(parts) + (f"-{pre}" if pre else "")


def _triple(v: semver.Version) -> tuple[int, int, int]:
    return (v.major, v.minor, v.patch)


def reference_bound(
    comp: tuple[str, int, int | None, int | None, str | None], v: semver.Version
) -> bool:
    """Cargo's meaning of one comparator, prerelease rule aside."""
    op, major, minor, patch, pre = comp
    op = op or "^"
    full = None
    if minor is not None and patch is not None:
        full = semver.Version(major, minor, patch, pre)
    low_triple = (major, minor or 0, patch or 0)
    # The next "series": what a partial version's wildcard part rolls over to.
    next_series = (major + 1, 0, 0) if minor is None else (major, minor + 1, 0)
    if op == "^":
        at_least = v.compare(full) >= 0 if full else _triple(v) >= low_triple
        if major > 0 or minor is None:
            upper = (major + 1, 0, 0)
        elif minor > 0 or patch is None:
            upper = (0, minor + 1, 0)
        else:
            upper = (0, 0, (patch or 0) + 1)
        return at_least and _triple(v) < upper
    if op == "~" or (op == "=" and full is None):
        at_least = v.compare(full) >= 0 if full else _triple(v) >= low_triple
        return at_least and _triple(v) < next_series
    if op == "=":
        return full is not None and v.compare(full) == 0
    if op == ">":
        return v.compare(full) > 0 if full else _triple(v) >= next_series
    if op == ">=":
        return v.compare(full) >= 0 if full else _triple(v) >= (major, minor or 0, 0)
    if op == "<":
        return v.compare(full) < 0 if full else _triple(v) < (major, minor or 0, 0)
    assert op == "<="
    return v.compare(full) <= 0 if full else _triple(v) < next_series


def reference_matches(
    comps: Sequence[tuple[str, int, int | None, int | None, str | None]],
    version: str,
    allow_prerelease: bool,
) -> bool:
    v = semver.Version.parse(version)
    if v.prerelease and not allow_prerelease:
        named = {(c[1], c[2] or 0, c[3] or 0) for c in comps if c[4]}
        if _triple(v) not in named:
            return False
    return all(reference_bound(c, v) for c in comps)


@FAST
@given(st.lists(comparators(), min_size=1, max_size=2), versions, st.booleans())
def test_requirements_match_as_the_reference_says(
    comps: list[tuple[str, int, int | None, int | None, str | None]],
    version: str,
    allow_prerelease: bool,
) -> None:
    text = ", ".join(text_of(c) for c in comps)
    requirement = parse_requirement(text)
    expected = reference_matches(comps, version, allow_prerelease)
    got = requirement.matches(key_of(version), allow_prerelease=allow_prerelease)
    assert got == expected, (text, version, allow_prerelease)


@FAST
@given(versions, versions)
def test_version_keys_order_as_semver_does(a: str, b: str) -> None:
    expected = semver.Version.parse(a).compare(semver.Version.parse(b))
    got = (key_of(a) > key_of(b)) - (key_of(a) < key_of(b))
    assert got == expected


@FAST
@given(st.text(alphabet="0123456789.*xX^~=<>,- abv", max_size=14))
def test_requirement_parsing_raises_only_requirement_errors(text: str) -> None:
    try:
        requirement = parse_requirement(text)
    except RequirementError:
        return
    assert str(requirement) == text
    requirement.matches(key_of("1.2.3"))


@pytest.mark.parametrize(
    ("requirement", "inside", "outside"),
    [
        ("<1.2.3", ["1.2.2", "0.0.0"], ["1.2.3", "1.2.4"]),
        ("<=1.2.3", ["1.2.3"], ["1.2.4"]),
        (">1.2.3", ["1.2.4"], ["1.2.3"]),
        (">=1.2.3", ["1.2.3"], ["1.2.2"]),
        ("^1.2.3", ["1.2.3", "1.9.9"], ["1.2.2", "2.0.0"]),
        ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0"]),
        ("^0.0.3", ["0.0.3"], ["0.0.4"]),
        ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
        ("=1.2.3", ["1.2.3"], ["1.2.4", "1.2.2"]),
        ("1.2.*", ["1.2.0", "1.2.9"], ["1.3.0", "1.1.9"]),
    ],
)
def test_bounds_at_their_edges(requirement: str, inside: list[str], outside: list[str]) -> None:
    """Named cases of the property above, so a failure reads at a glance."""
    parsed = parse_requirement(requirement)
    assert [v for v in inside if not parsed.matches(key_of(v))] == []
    assert [v for v in outside if parsed.matches(key_of(v))] == []


# --- the resolver against brute force ----------------------------------------------------

NAMES = ["aa", "bb", "cc"]
VERSIONS = ["1.0.0", "1.1.0", "2.0.0"]
REQUIREMENTS = ["^1", "^2", ">=1.1.0", "<1.1.0", "=1.0.0", "*", "~1.1"]


@st.composite
def universes(draw: st.DrawFn) -> dict[str, list[Candidate]]:
    """Draw a few plugins whose versions depend on each other at random."""
    world: dict[str, list[Candidate]] = {}
    for name in NAMES:
        present = draw(st.lists(st.sampled_from(VERSIONS), unique=True, max_size=3))
        candidates = []
        for version in sorted(present):
            others = [n for n in NAMES if n != name]
            deps = draw(
                st.lists(
                    st.builds(Dependency, st.sampled_from(others), st.sampled_from(REQUIREMENTS)),
                    max_size=2,
                    unique_by=lambda d: d.name,
                )
            )
            candidates.append(Candidate.of(name, version, deps))
        world[name] = candidates
    return world


def satisfied(
    chosen: Mapping[str, Candidate], roots: Sequence[Root], world: Mapping[str, list[Candidate]]
) -> bool:
    """Tell whether a selection meets every root and every dependency of what it holds."""
    wants = [(r.name, r.requirement or "*") for r in roots]
    wants += [(d.name, d.req) for c in chosen.values() for d in c.dependencies]
    for name, req in wants:
        if name not in chosen or not parse_requirement(req).matches(chosen[name].key):
            return False
    return all(chosen[name] in world[name] for name in chosen)


def brute_force(
    roots: Sequence[Root], world: Mapping[str, list[Candidate]]
) -> dict[str, Candidate] | None:
    options = [[None, *world[name]] for name in NAMES]
    for pick in itertools.product(*options):
        chosen = {c.name: c for c in pick if c is not None}
        if satisfied(chosen, roots, world):
            return chosen
    return None


@settings(
    derandomize=FIXED, max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    universes(),
    st.lists(
        st.builds(Root, st.sampled_from(NAMES), st.sampled_from([None, *REQUIREMENTS])),
        min_size=1,
        max_size=2,
    ),
)
def test_the_resolver_agrees_with_brute_force(
    world: dict[str, list[Candidate]], roots: list[Root]
) -> None:
    try:
        resolution = resolve(roots, world)
    except ResolutionError:
        assert brute_force(roots, world) is None
        return
    chosen = resolution.selected
    assert satisfied(chosen, roots, world)
    # Only what is needed: every selected plugin is a root or a dependency of one.
    needed = {r.name for r in roots} | {d.name for c in chosen.values() for d in c.dependencies}
    assert set(chosen) <= needed


@settings(derandomize=FIXED, max_examples=150, deadline=None)
@given(universes(), st.sampled_from(NAMES))
def test_the_resolver_takes_the_newest_version_a_lone_root_allows(
    world: dict[str, list[Candidate]], name: str
) -> None:
    """With no dependencies in the way, the newest version wins."""
    flat = {n: [Candidate.of(n, c.version) for c in cs] for n, cs in world.items()}
    if not flat[name]:
        return
    got = resolve([Root(name)], flat).selected[name]
    assert got.key == max(c.key for c in flat[name])


# --- strict YAML -------------------------------------------------------------------------

# Printable text: YAML allows no raw control characters, and PyYAML writes some line
# separators (U+0085, U+2028) unescaped, which is its problem, not the loader's.
texts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf")), max_size=12)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False, allow_infinity=False)  # JSON has no infinity
    | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)


@FAST
@given(json_values)
def test_any_json_value_reads_back_as_itself(value: Any) -> None:
    """JSON is YAML 1.2: what the strict loader reads from it is the value itself."""
    # ensure_ascii=False: libyaml reads no surrogate-pair escapes (\\ud800\\udc00), a
    # limit of the parser, not of the loader built on it.
    assert parse(json.dumps(value, ensure_ascii=False), "x.yaml").value == value


@FAST
@given(json_values)
def test_block_yaml_written_by_pyyaml_reads_back_as_itself(value: Any) -> None:
    """What PyYAML writes reads back as itself, but for YAML 1.2's wider plain numbers.

    PyYAML follows YAML 1.1, so it leaves `0E0` or `1e5` plain; the strict loader reads
    plain scalars by YAML 1.2's core schema (docs/format.md), where those are numbers.
    """
    import yaml

    text = yaml.safe_dump(value, allow_unicode=True)
    try:
        got = parse(text, "x.yaml").value
    except SourceError:
        return  # PyYAML writes some things we refuse on purpose (tags, say)
    assert _same(got, value), text


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, str) and not isinstance(a, str):
        return _same(a, resolve_plain(b)) if resolve_plain(b) != b else False
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b) and type(a) is type(b)


YAML_ALPHABET = st.sampled_from(
    [*"ab1:- \n\t'\"#&*!|>[]{},.?%@`\\", "\n  ", ": ", "- ", "---\n", "...\n", "é", "\x00"]
)


@settings(derandomize=FIXED, max_examples=400, deadline=None)
@given(st.lists(YAML_ALPHABET, max_size=30).map("".join))
def test_strict_yaml_raises_only_our_error(text: str) -> None:
    try:
        doc = parse(text, "x.yaml", track_lines=True)
    except SourceError as e:
        assert str(e).startswith("x.yaml")
        return
    # Whatever it accepts is plain data that survives the trip through JSON.
    if _plain(doc.value):
        assert _same(parse(json.dumps(doc.value, ensure_ascii=False), "x.yaml").value, doc.value)


def _plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


# --- canonical JSON ----------------------------------------------------------------------


@FAST
@given(st.dictionaries(st.text(max_size=6), json_values, max_size=6), st.randoms())
def test_canonical_json_ignores_key_order(value: dict[str, Any], random: Any) -> None:
    items = list(value.items())
    random.shuffle(items)
    shuffled = dict(items)
    assert canonical_json(shuffled) == canonical_json(value)
    assert json.loads(canonical_json(value)) == value
    assert b"\n" not in canonical_json(value)
