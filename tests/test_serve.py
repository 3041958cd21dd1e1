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


def test_unknown_paths_get_the_builds_own_404_page(
    index: Path, tmp_path: Path, serve_dir: Callable[[Path], str]
) -> None:
    """With a 404.html in the build, any missing path answers it, with status 404."""
    out = tmp_path / "out"
    build(index, out)
    (out / layout.NOT_FOUND_PAGE).write_text("<!doctype html><title>Not here</title>")
    served = serve_dir(out)
    status, headers, body = fetch(served + "plugins/no-such-plugin/")
    assert status == 404
    assert b"Not here" in body
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Content-Security-Policy"] == layout.CONTENT_SECURITY_POLICY


def test_content_addressed_files_are_cached_for_a_year_documents_for_a_minute(
    served: str,
) -> None:
    names = json.loads(fetch(served + "names.json")[2])["plugins"]
    document = json.loads(fetch(served + layout.index_path(sorted(names)[0]))[2])
    artifact = document["versions"][-1]["artifact"]["download"]
    assert fetch(served + artifact)[1]["Cache-Control"] == layout.IMMUTABLE
    assert fetch(served + "config.json")[1]["Cache-Control"] == layout.MUTABLE


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("artifacts/ab/x.tgz", "immutable"),
        ("static/style.0123456789abcdef.css", "immutable"),
        ("search/v1/t/cs.0123abcd.json", "immutable"),
        ("search/v1/manifest.json", "max-age=60"),
        ("plugins/auth-jwt/index.html", "max-age=60"),
        ("index/au/th/auth-jwt.json", "max-age=60"),
        ("config.json", "max-age=60"),
    ],
)
def test_cache_control_by_path(path: str, expected: str) -> None:
    assert expected in layout.cache_control(path)


def test_a_folder_without_its_slash_redirects_to_it(
    index: Path, tmp_path: Path, serve_dir: Callable[[Path], str]
) -> None:
    """`/plugins/x` → `/plugins/x/`, so the page's relative links resolve."""
    out = tmp_path / "out"
    build(index, out)
    (out / "page").mkdir()
    (out / "page" / "index.html").write_text("<!doctype html><title>page</title>")
    served = serve_dir(out)
    request = urllib.request.Request(served + "page", method="GET")
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        opener.open(request, timeout=10)
    except urllib.error.HTTPError as e:
        assert e.code == 301
        assert e.headers["Location"].endswith("/page/")
    else:
        pytest.fail("expected a redirect")
    status, headers, body = fetch(served + "page/")
    assert status == 200 and b"page" in body
    assert headers["X-Content-Type-Options"] == "nosniff"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None
