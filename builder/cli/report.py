"""How commands report: our errors as messages and exit codes, problems as text or annotations."""

from __future__ import annotations

import functools
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from builder.common.errors import InvalidIndexError, PlugindexError, Problem
from builder.common.exits import ExitCode

F = TypeVar("F", bound=Callable[..., None])

# How problems print: for people (stderr), or as GitHub Actions annotations (stdout).
format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "github", "json"]),
    default="text",
    show_default=True,
    help="How to print problems: for people, as GitHub Actions annotations, or as JSON.",
)


def print_problems(problems: Sequence[Problem], output_format: str) -> None:
    """Print every problem, then a one-line count (as one JSON document with `json`)."""
    if output_format == "json":
        click.echo(problems_json(problems))
        return
    for problem in problems:
        if output_format == "github":
            click.echo(problem.render_github())
        else:
            click.echo(problem.render(), err=True)
    files = len({p.file for p in problems})
    noun = "problem" if len(problems) == 1 else "problems"
    click.echo(f"{len(problems)} {noun} in {files} file{'s' if files != 1 else ''}", err=True)


def problems_json(problems: Sequence[Problem], summary: str | None = None) -> str:
    """Return problems as JSON for scripts: `{"valid", "problems": [...], "summary"}`."""
    rows = [
        {
            "file": str(p.file),
            "line": p.line,
            "field": p.field,
            "rule": p.rule or None,
            "message": p.message,
        }
        for p in problems
    ]
    return json.dumps({"valid": not rows, "problems": rows, "summary": summary}, indent=2)


def step_summary(title: str, problems: Sequence[Problem]) -> str:
    """Return a Markdown summary of a check for a GitHub Actions job page."""
    if not problems:
        return f"### {title}\n\n✅ every rule passes\n"
    lines = [
        f"### {title}",
        "",
        f"❌ {len(problems)} problem{'s' if len(problems) != 1 else ''}",
        "",
        "| rule | where | problem |",
        "|---|---|---|",
    ]
    for p in problems:
        where = _cell(p.location())
        what = _inert_markdown(f"{p.field}: {p.message}" if p.field else p.message)
        lines.append(f"| {p.rule or '—'} | `{where}` | {what} |")
    lines.append("")
    lines.append("Each rule id and its fix: docs/rules.md")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    """Escape text for a code span in one Markdown table cell."""
    return _one_line(text).replace("|", "\\|").replace("`", "'")


def _inert_markdown(text: str) -> str:
    """Escape text an author may control so the job page shows it, never renders it.

    Every ASCII punctuation character is backslash-escaped (CommonMark lets any of
    them be), so no link, image, emphasis, HTML tag, entity or table cell break
    survives; control characters, which could hide text, become spaces.
    """
    return "".join(f"\\{c}" if c in _PUNCTUATION else c for c in _one_line(text))


_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def _one_line(text: str) -> str:
    """Replace line breaks and other control characters with spaces."""
    return "".join(" " if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"} else c for c in text)


def write_step_summary(title: str, problems: Sequence[Problem]) -> None:
    """Append the summary to $GITHUB_STEP_SUMMARY when GitHub Actions set it."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return
    try:
        with Path(target).open("a", encoding="utf-8") as f:
            f.write(step_summary(title, problems))
    except OSError as e:
        raise PlugindexError(f"{target}: cannot write the step summary ({e.strerror})") from e


def reports_errors(command: F) -> F:
    """Print our errors for a person (no traceback) and exit with their code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except InvalidIndexError as e:
            print_problems(e.problems, kwargs.get("output_format", "text"))
            sys.exit(e.exit_code)
        except PlugindexError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)
        except (KeyboardInterrupt, click.Abort):  # Ctrl-C, also at a prompt
            click.echo("\ninterrupted", err=True)
            sys.exit(ExitCode.INTERRUPTED)
        except BrokenPipeError:
            quiet_broken_pipe()
        except click.ClickException:
            raise  # usage errors: Click prints them and exits 2
        except Exception as e:
            if os.environ.get("PLUGINDEX_DEBUG") == "1":
                raise
            click.echo(
                f"internal error: {type(e).__name__}: {e} "
                f"(set PLUGINDEX_DEBUG=1 to see the traceback)",
                err=True,
            )
            sys.exit(ExitCode.INTERNAL)

    return wrapper  # type: ignore[return-value]


def quiet_broken_pipe() -> NoReturn:
    """Stop quietly when the reader of our output went away (`plugindex info x | head`).

    Python would report the failed flush of stdout at exit; pointing stdout at
    /dev/null first keeps that quiet. The status is the shell's for a SIGPIPE death.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(ExitCode.BROKEN_PIPE)
