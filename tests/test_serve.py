"""`plugindex serve`: a build served on loopback as a bucket would serve it."""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from builder.common import layout
from builder.index.build import build
from tests.conftest import PLUGINDEX


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def served(index: Path, tmp_path: Path, serve_dir: Callable[[Path], str]) -> str:
    out = tmp_path / "out"
    build(index, out)
    return serve_dir(out)


def test_documents_are_served_as_json_with_etags(served: str) -> None:
    status, headers, body = fetch(served + "config.json")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["format"] == 1
    status, _, body = fetch(served + "config.json", {"If-None-Match": headers["ETag"]})
    assert status == 304
    assert body == b""


def test_artifacts_download_as_published(served: str) -> None:
    names = json.loads(fetch(served + "names.json")[2])["plugins"]
    name = sorted(names)[0]
    document = json.loads(fetch(served + layout.index_path(name))[2])
    artifact = document["versions"][-1]["artifact"]
    status, headers, body = fetch(served + artifact["download"])
    assert status == 200
    assert len(body) == artifact["size"]
    assert headers["Content-Type"] == "application/gzip"


@pytest.mark.parametrize(
    "path", [".plugindex/cache.bin", "%2eplugindex/cache.bin", "index/", "nothing-here.json"]
)
def test_builder_state_listings_and_missing_files_are_404(served: str, path: str) -> None:
    assert fetch(served + path)[0] == 404


def test_serve_command_prints_its_url(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(index, out)
    process = subprocess.Popen(
        [*PLUGINDEX, "serve", str(out), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("serving ")
        url = line.split(" at ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        assert fetch(url + "names.json")[0] == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
