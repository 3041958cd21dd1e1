"""Problems render the same facts for people and for GitHub Actions."""

from __future__ import annotations

from pathlib import Path

from builder.common.errors import Problem


def test_text_form_names_file_line_and_field() -> None:
    problem = Problem(
        Path("idx/a.yaml"), 7, "artifact.sha256", "does not match (expected x, got y)"
    )
    assert problem.render() == "idx/a.yaml:7: artifact.sha256: does not match (expected x, got y)"


def test_github_form_escapes_data_and_properties() -> None:
    problem = Problem(Path("odd,name:1.yaml"), 3, "f", "100% wrong\nsecond line")
    assert problem.render_github() == (
        "::error file=odd%2Cname%3A1.yaml,line=3::f: 100%25 wrong%0Asecond line"
    )


def test_problems_without_a_line_sort_first_in_their_file() -> None:
    problems = [Problem(Path("a"), 5, "", "x"), Problem(Path("a"), None, "", "y")]
    assert [p.message for p in sorted(problems, key=Problem.sort_key)] == ["y", "x"]
