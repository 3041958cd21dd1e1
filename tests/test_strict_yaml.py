"""The strict YAML loader: plain values, exact lines, and no guessing."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.common.errors import SourceError
from builder.format import strict_yaml

HERE = Path("x.yaml")


def test_values_and_lines_are_kept() -> None:
    doc = strict_yaml.parse(
        "name: a\nlist:\n  - 1\n  - two\nmap:\n  key: true\n", HERE, track_lines=True
    )
    assert doc.value == {"name": "a", "list": [1, "two"], "map": {"key": True}}
    assert doc.lines[("name",)] == 1
    assert doc.lines[("list", 1)] == 4
    assert doc.lines[("map", "key")] == 6
    assert doc.line_of(("map", "key", "missing")) == 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no", "no"),  # YAML 1.1 would say False (the Norway problem)
        ("yes", "yes"),
        ("1.10", 1.1),
        ("010", 10),
        ("0x1f", 31),
        ("2025-01-02", "2025-01-02"),  # no implicit timestamps
        ("~", None),
        ("True", True),
        ('"1.10"', "1.10"),
        ("'true'", "true"),
    ],
)
def test_plain_scalars_resolve_by_the_core_schema(text: str, expected: object) -> None:
    assert strict_yaml.parse(f"v: {text}\n", HERE).value == {"v": expected}


def test_raw_text_of_numbers_is_kept_for_messages() -> None:
    doc = strict_yaml.parse("version: 1.10\n", HERE, track_lines=True)
    assert doc.raw[("version",)] == "1.10"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("a: 1\nb: 2\na: 3\n", 3, "duplicate key 'a'"),
        ("a: &x 1\nb: *x\n", 1, "anchors are not allowed"),
        ("a: !!str 1\n", 1, "tags are not allowed"),
        ("a: 1\n---\nb: 2\n", 2, "more than one YAML document"),
        ("a: [1, 2\n", 2, "invalid YAML"),
        ("? [a]\n: 1\n", 1, "mapping keys must be text"),
    ],
    ids=["duplicate-key", "anchor", "tag", "two-documents", "syntax", "complex-key"],
)
def test_ambiguous_yaml_is_refused_with_its_line(text: str, line: int, message: str) -> None:
    with pytest.raises(SourceError) as caught:
        strict_yaml.parse(text, HERE)
    assert caught.value.problem.line == line
    assert message in caught.value.problem.message


def test_non_utf8_names_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(SourceError) as caught:
        strict_yaml.load(path, path)
    assert caught.value.problem.line == 2
    assert "0xff" in caught.value.problem.message


def test_oversize_files_are_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * strict_yaml.MAX_SOURCE_BYTES + "\n")
    with pytest.raises(SourceError, match="too large"):
        strict_yaml.load(path, path)
