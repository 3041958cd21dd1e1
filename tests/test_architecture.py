"""The package layout holds its import direction (see each stage's `__init__.py`)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

BUILDER = Path(__file__).resolve().parents[1] / "builder"

# What each stage may import, besides itself and the top-level `builder` package
# (which holds only __version__ and FORMAT_VERSION). A dotted entry allows one module.
ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "format": {"common"},
    "trust": {"common"},
    "index": {"common", "format", "trust"},
    "site": {"common", "format", "trust", "index"},
    "search": {"common", "format", "trust", "index"},
    "gate": {"common", "format", "trust", "index"},
    "publish": {"common"},
    "client": {"common", "trust", "format.names", "format.requirements"},
    "authoring": {"common", "format", "trust"},
    "tuf": {"common", "format", "index"},
    "cli": {"*"},
}

# Modules that touch files, processes or the network: `trust` must use none of them.
IO_MODULES = {
    "io",
    "os",
    "pathlib",
    "shutil",
    "socket",
    "subprocess",
    "tempfile",
    "urllib",
    "urllib3",
    "http",
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(BUILDER.rglob("*.py")):
        parts = path.relative_to(BUILDER).with_suffix("").parts
        found.append((".".join(("builder", *parts)).removesuffix(".__init__"), path))
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    """Return (line, dotted name) for every import in a module, nested ones too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.lineno, node.module))
            # `from builder.index import build` imports the module builder.index.build
            names.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return names


def _stage(module: str) -> str | None:
    """Return the stage a module belongs to (None for builder/__init__ and __main__)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (parts[1:] and (BUILDER / parts[1]).is_dir()) else None


def _allowed(stage: str, target: str) -> bool:
    """Return whether `stage` may import the builder module `target`."""
    parts = target.split(".")
    if len(parts) < 2 or parts[1] in {"__version__", "FORMAT_VERSION"}:
        return True
    target_stage = parts[1]
    if target_stage == stage:
        return True
    rules = ALLOWED.get(stage, set())
    if "*" in rules or target_stage in rules:
        return True
    # a dotted rule allows one module of another stage: `format.names`
    return len(parts) > 2 and f"{target_stage}.{parts[2]}" in rules


def _builder_imports() -> list[tuple[str, str, int, str]]:
    rows = []
    for module, path in _modules():
        stage = _stage(module)
        for line, name in _imports(path):
            if name == "builder" or name.startswith("builder."):
                rows.append((module, str(stage), line, name))
    return rows


def test_every_stage_is_listed() -> None:
    """Each sub-package of builder/ has a rule in this test (a new stage must add one)."""
    stages = {p.name for p in BUILDER.iterdir() if (p / "__init__.py").is_file()}
    assert stages <= set(ALLOWED), f"stages without a rule: {stages - set(ALLOWED)}"


def test_stages_import_only_what_their_docstring_allows() -> None:
    """No stage imports a stage it may not (the client never imports the build side)."""
    wrong = [
        f"{module}:{line} imports {name}"
        for module, stage, line, name in _builder_imports()
        if stage != "None" and not _allowed(stage, name)
    ]
    assert wrong == []


def test_nothing_imports_the_cli() -> None:
    """The CLI sits on top: no stage imports it (the entry point is the only way in)."""
    wrong = [
        f"{module}:{line} imports {name}"
        for module, stage, line, name in _builder_imports()
        if (name == "builder.cli" or name.startswith("builder.cli."))
        and stage != "cli"
        and module != "builder.__main__"
    ]
    assert wrong == []


def test_trust_does_no_io() -> None:
    """Signed statements and signature checks take values, never files or sockets."""
    wrong = []
    for module, path in _modules():
        if _stage(module) != "trust":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, name in _imports(path):
            if name.split(".")[0] in IO_MODULES:
                wrong.append(f"{module}:{line} imports {name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "open":
                wrong.append(f"{module}:{node.lineno} calls open()")
    assert wrong == []


@pytest.mark.parametrize(
    "module",
    [
        "builder.client.install",
        "builder.client.transaction",
        "builder.client.downloads",
        "builder.client.plan",
        "builder.client.registry",
        "builder.client.resolve",
        "builder.client.unpack",
        "builder.client.config",
    ],
)
def test_client_does_not_load_the_source_format(module: str) -> None:
    """Importing the client loads neither PyYAML nor the pydantic models of source files."""
    code = (
        f"import sys, {module}\n"
        "bad = sorted(m for m in sys.modules if m == 'yaml' or m.startswith('yaml.')\n"
        "    or m.startswith(('builder.format.models', 'builder.format.strict_yaml',\n"
        "    'builder.format.load', 'builder.index', 'builder.gate', 'builder.publish')))\n"
        "print(','.join(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


def test_the_direction_check_can_fail() -> None:
    """The rule table refuses what it must (so a broken rule cannot pass silently)."""
    assert not _allowed("client", "builder.index.build")
    assert not _allowed("client", "builder.format.models")
    assert _allowed("client", "builder.format.requirements")
    assert not _allowed("publish", "builder.client.fetch")
    assert not _allowed("trust", "builder.format.load")
    assert _allowed("cli", "builder.gate.git")


# A module past this many lines is doing more than one job: split it along its seam
# (the stage's __init__ docstring names what the stage owns).
MAX_MODULE_LINES = 400


def test_no_module_outgrows_one_responsibility() -> None:
    """Every module of builder/ stays within MAX_MODULE_LINES lines."""
    long = sorted(
        f"{module}: {count} lines"
        for module, path in _modules()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    )
    assert long == [], f"split these modules (limit {MAX_MODULE_LINES} lines): {long}"
