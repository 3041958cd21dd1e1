"""What `plugindex` loads to start: each command's module only when it runs, and no
build-side or cloud library on the way to a search.

`plugindex search` starts a process per query (target: 400 ms warm, see
benchmarks/bench_search.py); boto3 (through securesystemslib's AWS signer), pydantic
(once the client's config model) and the build side once cost it half of that.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from builder.cli import main
from builder.search.stage import SearchStage
from tests.conftest import BUNDLED_INDEX
from tests.signed_build import DEMO_ROOT, build_signed

ROOT = Path(__file__).resolve().parents[1]
# Modules no search, and no import of the CLI, may load (a prefix covers its submodules).
HEAVY = (
    "boto3",
    "botocore",
    "s3transfer",
    "pydantic",
    "yaml",
    "jinja2",
    "markdown_it",
    "whoosh.writing",
    "builder.index",
    "builder.gate",
    "builder.publish",
    "builder.site",
    "builder.search",
    "builder.tuf",
    "builder.authoring",
    "builder.format.models",
    "builder.cli.author",
    "builder.cli.author_owners",
    "builder.cli.maintainer",
    "builder.cli.registry_admin",
    "builder.cli.user",
)

# Runs the CLI in this process as `python -m builder` would, then prints what it loaded.
RUN_AND_LIST = """
import json, runpy, sys
sys.argv = ["plugindex", *json.loads(sys.argv[1])]
try:
    runpy.run_module("builder", run_name="__main__")
except SystemExit as e:
    code = e.code
else:
    code = 0
print("\\nLOADED " + json.dumps([code, sorted(sys.modules)]))
"""


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


def run_listing_modules(args: list[str], env: dict[str, str]) -> tuple[int, list[str], str]:
    """Run `plugindex ARGS` in a fresh interpreter; return its exit code, the modules it
    loaded and its output."""
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_LIST, json.dumps(args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    out, _, last = done.stdout.rpartition("\nLOADED ")
    assert last, done.stdout + done.stderr
    code, modules = json.loads(last)
    return code, modules, out + done.stderr


def test_importing_the_cli_loads_no_command_module() -> None:
    """`import builder.cli.main` loads click and the error reporting, no command's module."""
    code = "import sys, builder.cli.main; print('\\n'.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert _heavy(done.stdout.split()) == []
    assert "builder.cli.search" not in done.stdout.split()


@pytest.fixture(scope="module")
def signed_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a signed build of the bundled index, with its search index."""
    out = tmp_path_factory.mktemp("startup") / "out"
    build_signed(BUNDLED_INDEX, out, stages=[SearchStage()])
    return out


@pytest.mark.parametrize("trust", ["tuf", "insecure-no-tuf"])
def test_search_loads_no_cloud_library_nor_the_build_side(
    signed_build: Path, tmp_path: Path, trust: str
) -> None:
    """A search, cold then warm, through the registry's TUF root or without it, loads
    neither boto3, botocore nor pydantic, nor any build-side or other command's module."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PLUGINDEX_CONFIG_DIR": str(tmp_path / "config"),
        "PLUGINDEX_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
    }
    trusted = ["--root", str(DEMO_ROOT)] if trust == "tuf" else ["--insecure-no-tuf"]
    args = ["search", "jwt", "--registry", str(signed_build), "--cache-dir", str(tmp_path)]
    for run in ("cold", "warm"):
        code, modules, output = run_listing_modules([*args, *trusted], env)
        assert code == 0, output
        assert "auth-jwt" in output, output
        assert _heavy(modules) == [], run


def test_the_heavy_list_catches_what_it_names() -> None:
    """The check above can fail: the build side and boto3 are caught when loaded."""
    assert _heavy(["boto3", "botocore.session", "builder.index.build", "click"]) == [
        "boto3",
        "botocore.session",
        "builder.index.build",
    ]


def test_every_command_of_every_module_is_in_the_lazy_table() -> None:
    """`COMMANDS` in builder/cli/main.py names every module's commands, under their names."""
    listed: dict[str, click.Command] = {}
    for path in sorted((ROOT / "builder" / "cli").glob("*.py")):
        module = importlib.import_module(f"builder.cli.{path.stem}")
        for command in getattr(module, "COMMANDS", ()) if path.stem != "main" else ():
            assert command.name is not None
            listed[command.name] = command
    assert set(listed) == set(main.COMMANDS)
    for name, (module_name, attribute) in main.COMMANDS.items():
        found = getattr(importlib.import_module(f"builder.cli.{module_name}"), attribute)
        assert found is listed[name], name


def test_help_lists_every_command_with_its_summary() -> None:
    """`plugindex --help` lists every command (importing each module to read its help)."""
    result = CliRunner().invoke(main.cli, ["--help"])
    assert result.exit_code == 0, result.output
    commands = result.output.split("Commands:")[1]
    listed = [line.split()[0] for line in commands.splitlines() if line.strip()]
    assert listed == list(main.COMMANDS)
    assert "Search plugins by name" in commands


def test_shell_completion_offers_every_command() -> None:
    """Completing `plugindex <TAB>` offers every command, as bash completion asks for it."""
    result = CliRunner().invoke(
        main.cli,
        [],
        prog_name="plugindex",
        env={"_PLUGINDEX_COMPLETE": "bash_complete", "COMP_WORDS": "plugindex ", "COMP_CWORD": "1"},
    )
    offered = [line.split(",", 1)[1] for line in result.output.splitlines()]
    assert set(main.COMMANDS) <= set(offered), result.output


def test_an_unknown_command_is_a_usage_error() -> None:
    """A name not in the table is refused as Click refuses it (exit 2, the name quoted)."""
    result = CliRunner().invoke(main.cli, ["serch", "jwt"])
    assert result.exit_code == 2
    assert "No such command 'serch'" in result.output
