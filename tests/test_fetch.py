"""HTTP fetching: cache revalidation, retries, caps and redirects against real local servers."""

from __future__ import annotations

import email.utils
import http.server
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from builder.common.errors import FetchError
from builder.common.fetch import (
    HttpFetcher,
    LocalFetcher,
    NotFoundError,
    TooLargeError,
    retry_after,
)
from builder.publish.serve import BuildRequestHandler
from tests.fault_server import Fault, endless, serve_recorded, status


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "doc.json").write_bytes(b'{"format":1}\n')
    (folder / "big.bin").write_bytes(b"x" * 5000)
    return folder


def fetcher(url: str, cache: Path | None, **kw: float) -> HttpFetcher:
    return HttpFetcher(url, cache, backoff=0.05, **kw)  # type: ignore[arg-type]


def test_a_cached_document_is_revalidated_and_reused_on_304(site: Path, tmp_path: Path) -> None:
    with serve_recorded(site) as (url, recorder):
        first = fetcher(url, tmp_path / "cache")
        assert first.document("doc.json") == b'{"format":1}\n'
        assert first.document("doc.json") == b'{"format":1}\n'  # memoised: one request
        second = fetcher(url, tmp_path / "cache")
        assert second.document("doc.json") == b'{"format":1}\n'
    assert [(h.status, h.conditional) for h in recorder.hits] == [(200, False), (304, True)]
    assert (second.stats.conditional, second.stats.not_modified) == (1, 1)


def test_a_changed_document_is_downloaded_again(site: Path, tmp_path: Path) -> None:
    with serve_recorded(site) as (url, recorder):
        assert fetcher(url, tmp_path / "cache").document("doc.json") == b'{"format":1}\n'
        time.sleep(0.01)
        (site / "doc.json").write_bytes(b'{"format":1,"new":true}\n')
        assert fetcher(url, tmp_path / "cache").document("doc.json").endswith(b"true}\n")
    assert [(h.status, h.conditional) for h in recorder.hits] == [(200, False), (200, True)]


def test_retries_stop_after_the_last_attempt_with_one_line(site: Path) -> None:
    with serve_recorded(site) as (url, recorder):
        recorder.faults["/doc.json"] = [status(502)] * 4
        with pytest.raises(FetchError) as caught:
            fetcher(url, None).document("doc.json")
    assert str(caught.value) == (
        f"{url}doc.json: server error (expected HTTP 200, got 502 after 4 attempts); "
        "try again later"
    )


def test_a_long_retry_after_is_not_waited_for(site: Path) -> None:
    with serve_recorded(site) as (url, recorder):
        recorder.faults["/doc.json"] = [status(429, {"Retry-After": "3600"})]
        started = time.monotonic()
        with pytest.raises(FetchError, match="the server asks to retry after 3600 s"):
            fetcher(url, None).document("doc.json")
    assert time.monotonic() - started < 1


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert retry_after("7", 1.0) == 7.0
    assert retry_after(None, 1.5) == 1.5
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after(later, 1.0) <= 31


def test_an_announced_oversize_body_is_refused_before_reading(site: Path) -> None:
    with serve_recorded(site) as (url, _):
        with pytest.raises(TooLargeError, match="the server announces 5000"):
            fetcher(url, None).document("big.bin", max_size=1000)
        sink = io.BytesIO()
        with pytest.raises(TooLargeError):
            fetcher(url, None).download("big.bin", sink, max_size=4999)


def test_an_endless_body_is_cut_at_the_cap(site: Path) -> None:
    with serve_recorded(site) as (url, recorder):
        recorder.faults["/doc.json"] = [endless]
        with pytest.raises(TooLargeError, match="expected at most 100000 bytes, got more"):
            fetcher(url, None).document("doc.json", max_size=100_000)


def _slow_body(pause: float) -> Fault:
    """Announce 40 bytes, then send one every `pause` seconds (or none when pause > 1)."""

    def answer(handler: BuildRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "40")
        handler.end_headers()
        try:
            for _ in range(40):
                time.sleep(pause)
                if pause <= 1:
                    handler.wfile.write(b"x")
        except OSError:
            pass  # the client gave up: what we are testing

    return answer


@pytest.mark.parametrize("pause", [0.1, 3.0], ids=["dripping", "silent"])
def test_a_slow_body_is_stopped_at_the_deadline(site: Path, pause: float) -> None:
    """The time cap holds while a read waits, not only between full chunks."""
    with serve_recorded(site) as (url, recorder):
        recorder.faults["/big.bin"] = [_slow_body(pause)]
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetcher(url, None, deadline=0.5, timeout=5.0).download(
                "big.bin", io.BytesIO(), max_size=100
            )
        elapsed = time.monotonic() - started
    assert str(caught.value) == f"{url}big.bin: too slow (not complete after 0.5 s)"
    assert 0.5 <= elapsed < 1.5


def test_missing_files_are_not_found(site: Path, tmp_path: Path) -> None:
    with serve_recorded(site) as (url, _), pytest.raises(NotFoundError, match="HTTP 404"):
        fetcher(url, None).document("nothing.json")
    with pytest.raises(NotFoundError):
        LocalFetcher(site).document("nothing.json")


@contextmanager
def redirect_server(location: str) -> Iterator[str]:
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


def test_redirects_are_followed_but_not_to_other_schemes(site: Path) -> None:
    with serve_recorded(site) as (url, _):
        with redirect_server(url + "doc.json") as redirecting:
            assert fetcher(redirecting, None).document("x.json") == b'{"format":1}\n'
        with (
            redirect_server("file:///etc/passwd") as redirecting,
            pytest.raises(FetchError, match="unsafe redirects"),
        ):
            fetcher(redirecting, None).document("x.json")


@pytest.mark.parametrize(
    ("ref", "make"),
    [
        ("http://elsewhere.example/x", lambda url: HttpFetcher("https://r.example/", None)),
        ("file:///etc/passwd", lambda url: HttpFetcher(url, None)),
    ],
    ids=["https-to-http", "file-scheme"],
)
def test_artifact_urls_may_not_downgrade_or_leave_http(
    ref: str, make: Callable[[str], HttpFetcher]
) -> None:
    with pytest.raises(FetchError, match="refusing to fetch"):
        make("http://127.0.0.1:9/").url_of(ref)


@pytest.mark.parametrize("ref", ["../secret", "/etc/passwd", "https://x.example/a"])
def test_a_folder_registry_serves_only_files_inside_it(site: Path, ref: str) -> None:
    with pytest.raises(FetchError, match="serves only files inside it"):
        LocalFetcher(site).download(ref, io.BytesIO(), max_size=10)
