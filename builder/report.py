"""Print problems for people (text) or for GitHub Actions (annotations)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from builder.errors import Problem


def print_problems(problems: Sequence[Problem], output_format: str) -> None:
    """Print every problem, then a one-line count."""
    for problem in problems:
        if output_format == "github":
            click.echo(problem.render_github())
        else:
            click.echo(problem.render(), err=True)
    files = len({p.file for p in problems})
    noun = "problem" if len(problems) == 1 else "problems"
    click.echo(f"{len(problems)} {noun} in {files} file{'s' if files != 1 else ''}", err=True)
