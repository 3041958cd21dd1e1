"""Free text in manifests is visible text: no controls, bidi overrides or zero-width marks."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from builder.cli.main import cli


@pytest.fixture
def demo(index: Path) -> Path:
    """A private copy of the bundled index."""
    return index


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Colours \x1b[31mred\x1b[0m", "U+001B"),  # an ANSI escape
        ("Safe \x1b]8;;https://evil.invalid\x07link", "U+001B"),  # an OSC 8 hyperlink
        ("Checks JWTs \u202eexe.lmth", "U+202E"),  # a right-to-left override
        ("Checks\u200bJWTs", "U+200B"),  # a zero-width space
        ("Checks \x85JWTs", "U+0085"),  # a C1 control (next line)
        ("Checks\u2028JWTs", "U+2028"),  # a line separator
    ],
    ids=["ansi", "osc-8", "bidi-override", "zero-width", "c1", "line-separator"],
)
def test_hidden_characters_in_a_description_are_refused_with_file_and_line(
    demo: Path, text: str, code: str
) -> None:
    line = set_description(demo, text)
    result = CliRunner().invoke(cli, ["validate", str(demo), "--no-fetch"])
    assert result.exit_code == 1, result.output
    assert f"plugin.yaml:{line}: " in result.stderr
    assert "description" in result.stderr and code in result.stderr


def test_prose_may_span_lines_but_not_hide_text(demo: Path) -> None:
    """A description keeps its line breaks; a bidi isolate in it is still refused."""
    set_description(demo, "Checks\nJWTs")
    ok = CliRunner().invoke(cli, ["validate", str(demo), "--no-fetch"])
    assert "U+000A" not in ok.stderr and "description" not in ok.stderr
    set_description(demo, "Checks\nthe \u2066parser\u2069")
    result = CliRunner().invoke(cli, ["validate", str(demo), "--no-fetch"])
    assert result.exit_code == 1
    assert "description" in result.stderr and "U+2066" in result.stderr


def set_description(index: Path, text: str) -> int:
    """Replace auth-jwt's description (a block of lines) by `text`; return its line."""
    manifest = index / "plugins" / "auth-jwt" / "plugin.yaml"
    lines = manifest.read_text(encoding="utf-8").splitlines(keepends=True)
    line = next(i for i, s in enumerate(lines, 1) if s.startswith("description:"))
    end = line
    while end < len(lines) and lines[end].startswith(" "):
        end += 1  # the folded block's continuation lines
    escaped = text.encode("unicode_escape").decode("ascii").replace('"', '\\"')
    lines[line - 1 : end] = [f'description: "{escaped}"\n']
    manifest.write_text("".join(lines), encoding="utf-8")
    return line
