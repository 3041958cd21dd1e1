"""The same build in separate processes gives the same bytes, whatever PYTHONHASHSEED.

Within one process set and dict order are fixed, so a test there cannot see a build
that depends on string hashing; here each build is its own `plugindex build` process
with its own PYTHONHASHSEED. The index is a plain copy (no git, so no commit to
drift) and SOURCE_DATE_EPOCH fixes the build time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BUNDLED_INDEX, PLUGINDEX, ROOT

EPOCH = "1700000000"


def published(out: Path) -> dict[str, bytes]:
    """Return every published file of a build (its private state folder left out)."""
    return {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and not path.relative_to(out).as_posix().startswith(".plugindex/")
    }


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, bytes]]:
    """Build the bundled index three times: seeds 1, 2 and 1 again, each in a new process."""
    root = tmp_path_factory.mktemp("determinism")
    index = root / "registry-index"
    shutil.copytree(BUNDLED_INDEX, index)
    # Keys a registry.yaml names by a path relative to the index come along too.
    shutil.copytree(ROOT / "tests" / "data", root / "tests" / "data")
    found = {}
    for name, seed in (("one", "1"), ("two", "2"), ("one-again", "1")):
        env = {**os.environ, "PYTHONHASHSEED": seed, "SOURCE_DATE_EPOCH": EPOCH}
        out = root / f"out-{name}"
        result = subprocess.run(
            [*PLUGINDEX, "build", str(index), "--out", str(out)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=240,
        )
        assert result.returncode == 0, result.stderr
        found[name] = published(out)
    return found


def test_the_same_seed_in_two_processes_gives_the_same_bytes(
    builds: dict[str, dict[str, bytes]],
) -> None:
    assert builds["one"] == builds["one-again"]


def test_different_seeds_give_the_same_bytes(builds: dict[str, dict[str, bytes]]) -> None:
    """Every published file, the search index and the signed metadata included."""
    assert sorted(builds["one"]) == sorted(builds["two"])
    assert [path for path in builds["one"] if builds["one"][path] != builds["two"][path]] == []
    assert any(path.startswith("index/") for path in builds["one"])
