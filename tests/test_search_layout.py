"""Where Whoosh is called: only in builder/common/whoosh_adapter.py (the schema and the
build's writing) and whoosh_reader.py (the client's verified, read-only queries)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

BUILDER = Path(__file__).resolve().parents[1] / "builder"
ADAPTERS = {"common/whoosh_adapter.py", "common/whoosh_reader.py"}


def whoosh_importers(root: Path) -> list[str]:
    """Return `file:line` of every import of whoosh under `root`, nested imports too."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            if any(n == "whoosh" or n.startswith("whoosh.") for n in names):
                found.append(f"{path.relative_to(root).as_posix()}:{node.lineno}")
    return found


def test_whoosh_is_imported_only_by_the_two_adapter_modules() -> None:
    """Every Whoosh call sits behind the adapters: nothing else imports whoosh."""
    outside = [w for w in whoosh_importers(BUILDER) if w.split(":")[0] not in ADAPTERS]
    assert outside == []


def test_the_whoosh_check_can_fail(tmp_path: Path) -> None:
    """A module importing whoosh (nested, or from a submodule) is found."""
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "x.py").write_text(
        "def f() -> None:\n    from whoosh.query import Term\n", encoding="utf-8"
    )
    (tmp_path / "y.py").write_text("import whoosh\n", encoding="utf-8")
    assert whoosh_importers(tmp_path) == ["search/x.py:2", "y.py:1"]


def test_the_reader_does_not_load_whoosh_writing() -> None:
    """The client's side never loads Whoosh's writer (a search process pays every import)."""
    code = "import sys, builder.common.whoosh_reader; print('whoosh.writing' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
