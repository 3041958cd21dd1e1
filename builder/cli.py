"""The `plugindex` command: parse options, call one stage, map errors to exit codes.

Exit codes: 0 success; 1 the index has problems (all printed); 2 bad usage;
3 any other error we can explain (I/O, output folder, network); 70 an internal bug.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from builder import __version__
from builder.errors import InvalidIndexError, PlugindexError, Problem
from builder.report import print_problems

DEFAULT_INDEX = "registry-index"
_FORMATS = click.Choice(["text", "github"])
_INTERNAL_ERROR = 70

F = TypeVar("F", bound=Callable[..., None])

# How problems print: for people (stderr), or as GitHub Actions annotations (stdout).
format_option = click.option(
    "--format",
    "output_format",
    type=_FORMATS,
    default="text",
    show_default=True,
    help="How to print problems: for people, or as GitHub Actions annotations.",
)


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
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as e:
            if os.environ.get("PLUGINDEX_DEBUG") == "1":
                raise
            click.echo(
                f"internal error: {type(e).__name__}: {e} "
                f"(set PLUGINDEX_DEBUG=1 to see the traceback)",
                err=True,
            )
            sys.exit(_INTERNAL_ERROR)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plugindex")
@click.option("-v", "--verbose", is_flag=True, help="Log what each stage does.")
def cli(verbose: bool) -> None:
    """plugindex: a plugin registry with no server."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@cli.command()
@click.argument("index", default=DEFAULT_INDEX, type=click.Path(path_type=Path))
@format_option
@click.option(
    "--no-fetch",
    is_flag=True,
    help="Do not download remote artifacts to check their sha256 and size.",
)
@reports_errors
def validate(index: Path, output_format: str, no_fetch: bool) -> None:
    """Check every rule of INDEX and report every problem at once."""
    from builder.analyse import analyse
    from builder.artifacts import check_remote_artifacts

    analysis = analyse(index)
    problems = list(analysis.problems)
    if analysis.registry is not None and not no_fetch:
        problems.extend(
            check_remote_artifacts(index, analysis.facts.values(), analysis.registry.policy)
        )
    if problems:
        raise InvalidIndexError(sorted(problems, key=Problem.sort_key))
    versions = sum(len(p.version_rows) for p in analysis.facts.values())
    click.echo(f"{index}: {len(analysis.facts)} plugins, {versions} versions: valid")


@cli.command()
@click.argument("index", default=DEFAULT_INDEX, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="Output folder (created; an earlier build there is updated in place).",
)
@format_option
@reports_errors
def build(index: Path, out: Path, output_format: str) -> None:
    """Build the static sparse index of INDEX into --out."""
    from builder.build import build as run_build

    result = run_build(index, out)
    report = result.report
    click.echo(
        f"built {result.plugins} plugins, {result.versions} versions into {out}: "
        f"{len(report.written)} written, {len(report.removed)} removed, "
        f"{report.unchanged} unchanged ({len(result.reparsed)} plugins parsed)"
    )


@cli.command()
@click.argument("directory", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port).",
)
@reports_errors
def serve(directory: Path, host: str, port: int) -> None:
    """Serve a build DIRECTORY over HTTP for local preview and testing."""
    from builder.serve import make_server

    try:
        server = make_server(directory, host, port)
    except OSError as e:
        raise PlugindexError(f"{host}:{port}: cannot listen ({e.strerror})") from e
    click.echo(f"serving {directory} at http://{host}:{server.server_port}/ (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how serving ends
            server.serve_forever()
    finally:
        server.server_close()


def main() -> None:
    """Run the CLI."""
    cli()
