"""The `plugindex` command: one group, with each audience's commands from its own module.

Exit codes (`builder.common.exits.ExitCode`): 0 success; 1 the index has problems
(all printed); 2 bad usage; 3 any other error we can explain (I/O, output folder,
network); 4 nothing satisfies a request; 5 a verification failed; 70 an internal bug;
130 interrupted.

Each command's module is imported only when that command runs (or when `--help` or
shell completion lists them all): `plugindex search` starts a process per query, and
the build side's imports would cost it more than the search itself.
"""

from __future__ import annotations

import importlib
import logging

import click

from builder import __version__
from builder.cli.report import quiet_broken_pipe

# Command name -> the module that defines it and the name of the command there, in the
# order `--help` lists them. `tests/test_cli_startup.py` checks it against each
# module's COMMANDS, so a command added there and not here fails a test.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("maintainer", "validate"),
    "build": ("maintainer", "build"),
    "serve": ("maintainer", "serve"),
    "publish": ("maintainer", "publish"),
    "keygen": ("author", "keygen"),
    "sign": ("author", "sign"),
    "new": ("author", "new"),
    "release": ("author", "release"),
    "yank": ("author", "yank"),
    "owner": ("author_owners", "owner"),
    "key": ("author_owners", "key_group"),
    "resign": ("author", "resign"),
    "deprecate": ("author_owners", "deprecate"),
    "info": ("user", "info"),
    "install": ("user", "install"),
    "list": ("user", "list_"),
    "outdated": ("user", "outdated"),
    "upgrade": ("user", "upgrade"),
    "uninstall": ("user", "uninstall"),
    "verify": ("user", "verify"),
    "trust": ("user", "trust"),
    "search": ("search", "search"),
    "registry": ("registry_admin", "registry"),
}


class LazyGroup(click.Group):
    """A group whose commands are imported from their modules when first asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Return every command's name, in the order of `COMMANDS`."""
        return [*COMMANDS, *(n for n in self.commands if n not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return the named command, importing its module the first time."""
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            module, attribute = COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f"builder.cli.{module}"), attribute)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="plugindex")
@click.option("-v", "--verbose", is_flag=True, help="Log what each stage does.")
def cli(verbose: bool) -> None:
    """plugindex: a plugin registry with no server."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Run the CLI."""
    try:
        cli()
    except BrokenPipeError:  # Click's own output (help, usage) to a closed pipe
        quiet_broken_pipe()
