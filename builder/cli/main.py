"""The `plugindex` command: one group, with each audience's commands from its own module.

Exit codes (`builder.common.exits.ExitCode`): 0 success; 1 the index has problems
(all printed); 2 bad usage; 3 any other error we can explain (I/O, output folder,
network); 4 nothing satisfies a request; 5 a verification failed; 70 an internal bug;
130 interrupted.
"""

from __future__ import annotations

import logging

import click

from builder import __version__
from builder.cli import author, maintainer, registry_admin, search, user
from builder.cli.report import quiet_broken_pipe


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plugindex")
@click.option("-v", "--verbose", is_flag=True, help="Log what each stage does.")
def cli(verbose: bool) -> None:
    """plugindex: a plugin registry with no server."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


for command in (
    *maintainer.COMMANDS,
    *author.COMMANDS,
    *user.COMMANDS,
    *search.COMMANDS,
    *registry_admin.COMMANDS,
):
    cli.add_command(command)


def main() -> None:
    """Run the CLI."""
    try:
        cli()
    except BrokenPipeError:  # Click's own output (help, usage) to a closed pipe
        quiet_broken_pipe()
