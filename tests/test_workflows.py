"""The GitHub workflows: linted, least privilege, and installing only hash-pinned code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
LOCK = REPO / "requirements" / "publish.lock"


def _tool(name: str) -> str:
    found = Path(sys.executable).with_name(name)
    if found.is_file():
        return str(found)
    which = shutil.which(name)
    if which is None:
        pytest.fail(f"{name} is not installed (it is a test dependency in pyproject.toml)")
    return which


def _workflow(name: str) -> dict[Any, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_actionlint_finds_nothing() -> None:
    """actionlint (syntax, expressions, shell) passes on every workflow."""
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    done = subprocess.run(
        [_tool("actionlint"), *files], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_zizmor_finds_nothing() -> None:
    """zizmor (injection, credentials, permissions, pinning) passes on .github/."""
    done = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", str(REPO / ".github")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_only_the_publish_job_may_mint_credentials() -> None:
    """`id-token: write` is granted to the one job that needs it, never workflow-wide."""
    for path in WORKFLOWS.glob("*.yml"):
        workflow = _workflow(path.name)
        assert workflow.get("permissions") == {"contents": "read"}, path.name
    jobs = _workflow("publish.yml")["jobs"]
    assert jobs["publish"]["permissions"]["id-token"] == "write"
    refresh = _workflow("refresh-timestamp.yml")["jobs"]
    assert refresh["refresh"]["permissions"]["id-token"] == "write"


def test_the_required_check_never_waits_on_a_path_filter() -> None:
    """A PR touching no index path still gets a result: a skipped gate job, not a pending one."""
    workflow = _workflow("validate.yml")
    # PyYAML reads the key `on` as True.
    trigger = workflow.get("on", workflow.get(True))
    assert trigger == {"pull_request": None}
    gate = workflow["jobs"]["gate"]
    assert gate["needs"] == "changes" and "index == 'true'" in gate["if"]


def _requirement_names(requirements: list[str]) -> set[str]:
    """Return the normalised project names of requirement strings."""
    return {
        re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements
    }


def test_the_publish_lock_pins_every_dependency_by_hash() -> None:
    """Every runtime dependency (and the build backend) is in the lock, with exact hashes."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    needed = _requirement_names(project["project"]["dependencies"])
    needed |= _requirement_names(project["build-system"]["requires"])
    text = LOCK.read_text(encoding="utf-8")
    pinned: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        line = block.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        assert match, f"{LOCK.name}: not pinned with ==: {line.splitlines()[0]}"
        assert "--hash=sha256:" in block, f"{LOCK.name}: no hash for {match.group(1)}"
        pinned[match.group(1).lower().replace("_", "-")] = match.group(2)
    assert needed <= set(pinned), f"not in {LOCK.name}: {sorted(needed - set(pinned))}"


def test_both_workflows_install_from_the_lock() -> None:
    """The jobs install with --require-hashes from the lock, and the project with --no-deps."""
    for name in ("publish.yml", "validate.yml", "refresh-timestamp.yml"):
        text = (WORKFLOWS / name).read_text(encoding="utf-8")
        assert "--require-hashes --no-deps -r" in text and "publish.lock" in text, name
        assert "pip install --no-deps --no-build-isolation" in text, name
