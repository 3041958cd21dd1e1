"""The registry fetchers at their edges: defaults, the document cache on disk, cancelling
a transfer in flight, the request log, and the folder fetcher's refusals.

Servers are real ones on 127.0.0.1 answering from a script (`tests/test_mut_http.py`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from builder.common.cancel import CancelledTransferError, check_cancel
from builder.common.errors import FetchError
from builder.common.exits import ExitCode
from builder.common.fetch import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    HttpFetcher,
    LocalFetcher,
    NotFoundError,
    TooLargeError,
    open_registry,
)
from builder.common.http_cache import HttpCache
from tests.test_mut_http import Answer, Script, reply, scripted, stall_after


@pytest.fixture
def server() -> Iterator[Script]:
    with scripted() as script:
        yield script


def _timeouts(fetcher: HttpFetcher) -> tuple[float, float]:
    timeout = fetcher.http._pool.connection_pool_kw["timeout"]
    return timeout.connect_timeout, timeout.read_timeout


# --- defaults ---------------------------------------------------------------------------


def test_an_http_fetcher_has_the_documented_defaults() -> None:
    fetcher = HttpFetcher("http://127.0.0.1:9/r", None)
    assert fetcher.location == "http://127.0.0.1:9/r/"
    assert not fetcher.offline
    http = fetcher.http
    assert (http.attempts, http.backoff, http.max_retry_after) == (4, 0.5, 120.0)
    assert (http.read_timeout, http.deadline) == (READ_TIMEOUT, 600.0) == (30.0, 600.0)
    assert _timeouts(fetcher) == (30.0, 30.0)


def test_a_registry_url_gets_the_connect_and_read_timeouts_asked_for(tmp_path: Path) -> None:
    fetcher = open_registry("http://127.0.0.1:9/r", tmp_path, read_timeout=7.0, connect_timeout=2.0)
    assert isinstance(fetcher, HttpFetcher)
    assert _timeouts(fetcher) == (2.0, 7.0)
    assert fetcher.http.read_timeout == 7.0
    assert fetcher.cache.cache_dir == tmp_path
    default = open_registry("https://127.0.0.1:9/r", None, offline=True)
    assert isinstance(default, HttpFetcher) and default.offline
    assert _timeouts(default) == (CONNECT_TIMEOUT, READ_TIMEOUT) == (5.0, 30.0)
    folder = open_registry(f"file://{tmp_path}/x", None)
    assert isinstance(folder, LocalFetcher) and folder.root == tmp_path / "x"


@pytest.mark.parametrize(
    ("location", "ref", "scheme"),
    [
        ("https://r.example/", "http://r.example/a", "http"),
        ("http://r.example/", "ftp://r.example/a", "ftp"),
        ("http://r.example/", "file:///etc/passwd", "file"),
    ],
)
def test_a_reference_to_another_scheme_is_refused(location: str, ref: str, scheme: str) -> None:
    with pytest.raises(FetchError) as caught:
        HttpFetcher(location, None).url_of(ref)
    assert str(caught.value) == f"{ref}: refusing to fetch (expected an https URL, got {scheme}:)"


def test_references_resolve_against_the_registry_root() -> None:
    fetcher = HttpFetcher("https://r.example/base", None)
    assert fetcher.url_of("index/a.json") == "https://r.example/base/index/a.json"
    assert fetcher.url_of("https://cdn.example/a") == "https://cdn.example/a"
    assert HttpFetcher("http://r.example/", None).url_of("https://x.example/a") == (
        "https://x.example/a"
    )


# --- the document cache -----------------------------------------------------------------


def test_a_document_is_cached_under_its_urls_digest_with_its_validators(
    server: Script, tmp_path: Path
) -> None:
    server.answers["/r/doc.json"] = [
        reply(200, b'{"a": 1}', {"ETag": '"v1"', "Last-Modified": "Wed, 01 May 2024 00:00:00 GMT"})
    ]
    fetcher = open_registry(server.url("/r"), tmp_path)
    assert fetcher.document("doc.json") == b'{"a": 1}'
    url = server.url("/r/doc.json")
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
    folder = tmp_path / "http" / digest[:2]
    assert (folder / f"{digest}.body").read_bytes() == b'{"a": 1}'
    assert json.loads((folder / f"{digest}.json").read_bytes()) == {
        "url": url,
        "etag": '"v1"',
        "last_modified": "Wed, 01 May 2024 00:00:00 GMT",
    }
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [f"{digest}.body", f"{digest}.json"]
    )


def test_a_document_without_validators_is_cached_with_its_url_only(
    server: Script, tmp_path: Path
) -> None:
    server.answers["/r/doc.json"] = [reply(200, b"{}")]
    open_registry(server.url("/r"), tmp_path).document("doc.json")
    metas = list(tmp_path.rglob("*.json"))
    assert [json.loads(m.read_bytes()) for m in metas] == [{"url": server.url("/r/doc.json")}]
    again = open_registry(server.url("/r"), tmp_path)
    assert again.document("doc.json") == b"{}"
    assert "If-None-Match" not in server.seen[-1][1]
    assert "If-Modified-Since" not in server.seen[-1][1]
    assert again.stats.conditional == 0  # type: ignore[attr-defined]


def test_without_a_cache_folder_nothing_is_written(server: Script, tmp_path: Path) -> None:
    server.answers["/r/doc.json"] = [reply(200, b"{}", {"ETag": '"v1"'})]
    fetcher = HttpFetcher(server.url("/r"), None)
    assert fetcher.document("doc.json") == b"{}"
    assert fetcher.cache.files(server.url("/r/doc.json")) is None
    fetcher.discard("doc.json")  # nothing to remove: no error either
    assert fetcher.document("doc.json") == b"{}"
    assert len(server.seen) == 2


@pytest.mark.parametrize(
    "meta",
    [b"not json", b"[1, 2]", b'{"url": "http://elsewhere/doc.json"}'],
    ids=["damaged", "not-an-object", "another-url"],
)
def test_an_unusable_cache_entry_is_ignored(server: Script, tmp_path: Path, meta: bytes) -> None:
    server.answers["/r/doc.json"] = [reply(200, b"{}", {"ETag": '"v1"'})]
    url = server.url("/r/doc.json")
    files = HttpCache(tmp_path).files(url)
    assert files is not None
    files.body.parent.mkdir(parents=True)
    files.body.write_bytes(b"stale")
    files.meta.write_bytes(meta)
    assert HttpCache(tmp_path).read(url) is None
    assert open_registry(server.url("/r"), tmp_path).document("doc.json") == b"{}"
    assert "If-None-Match" not in server.seen[-1][1]


def test_a_304_without_a_cached_body_is_an_unexpected_answer(server: Script) -> None:
    server.answers["/r/doc.json"] = [reply(304)]
    with pytest.raises(FetchError) as caught:
        HttpFetcher(server.url("/r"), None, attempts=1).document("doc.json")
    assert str(caught.value) == (
        f"{server.url('/r/doc.json')}: unexpected answer (expected HTTP 200, got 304)"
    )


def test_a_revalidated_document_counts_its_requests(server: Script, tmp_path: Path) -> None:
    server.answers["/r/doc.json"] = [reply(200, b"{}", {"ETag": '"v1"'}), reply(304)]
    open_registry(server.url("/r"), tmp_path).document("doc.json")
    again = open_registry(server.url("/r"), tmp_path)
    assert again.document("doc.json") == b"{}"
    assert again.document("doc.json") == b"{}"  # memoised: no second request
    stats = again.stats  # type: ignore[attr-defined]
    assert (stats.requests, stats.conditional, stats.not_modified) == (1, 1, 1)
    assert server.seen[-1][1]["If-None-Match"] == '"v1"'


def test_a_document_over_its_cap_is_refused(server: Script) -> None:
    server.answers["/r/doc.json"] = [reply(200, b"x" * 11)]
    with pytest.raises(TooLargeError):
        HttpFetcher(server.url("/r"), None).document("doc.json", max_size=10)
    server.answers["/r/ok.json"] = [reply(200, b"x" * 10)]
    assert HttpFetcher(server.url("/r"), None).document("ok.json", max_size=10) == b"x" * 10


# --- downloads, the log, cancelling -----------------------------------------------------


def test_a_download_is_logged_with_its_status_and_size(
    server: Script, caplog: pytest.LogCaptureFixture
) -> None:
    server.answers["/r/a.tgz"] = [reply(200, b"y" * 321)]
    sink = io.BytesIO()
    with caplog.at_level(logging.INFO, logger="builder.common.fetch"):
        HttpFetcher(server.url("/r"), None).download("a.tgz", sink, max_size=1000)
    assert sink.getvalue() == b"y" * 321
    lines = [r.getMessage() for r in caplog.records if r.name == "builder.common.fetch"]
    assert len(lines) == 1
    assert lines[0].startswith(f"GET {server.url('/r/a.tgz')} 200 321 bytes ")


def test_a_server_error_on_a_download_is_named(server: Script) -> None:
    server.answers["/r/a.tgz"] = [reply(500)]
    with pytest.raises(FetchError) as caught:
        HttpFetcher(server.url("/r"), None, attempts=1).download("a.tgz", io.BytesIO(), max_size=10)
    assert str(caught.value) == (
        f"{server.url('/r/a.tgz')}: server error (expected HTTP 200, got 500 after 1 attempts); "
        "try again later"
    )


def test_a_cancelled_transfer_never_starts(server: Script) -> None:
    cancel = threading.Event()
    cancel.set()
    fetcher = HttpFetcher(server.url("/r"), None)
    with pytest.raises(CancelledTransferError) as caught:
        fetcher.download("a.tgz", io.BytesIO(), max_size=10, cancel=cancel)
    assert str(caught.value) == f"{server.url('/r/a.tgz')}: cancelled"
    assert caught.value.exit_code == ExitCode.INTERRUPTED
    with pytest.raises(CancelledTransferError):
        fetcher.document("doc.json", cancel=cancel)
    assert server.seen == []


@pytest.mark.parametrize("what", ["download", "document"])
def test_cancelling_a_stalled_transfer_stops_it_at_once(server: Script, what: str) -> None:
    server.answers["/r/a"] = [stall_after(b"x" * 10, 5.0)]
    fetcher = HttpFetcher(server.url("/r"), None, timeout=20.0)
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(CancelledTransferError) as caught:
        if what == "download":
            fetcher.download("a", io.BytesIO(), max_size=1000, cancel=cancel)
        else:
            fetcher.document("a", cancel=cancel)
    assert str(caught.value) == f"{server.url('/r/a')}: cancelled"
    assert time.monotonic() - started < 2.0


def test_a_transfer_that_ends_before_a_cancel_is_kept(server: Script) -> None:
    server.answers["/r/a"] = [reply(200, b"whole")]
    sink = io.BytesIO()
    cancel = threading.Event()
    HttpFetcher(server.url("/r"), None).download("a", sink, max_size=10, cancel=cancel)
    assert sink.getvalue() == b"whole"
    check_cancel("x", None)  # no event: never cancelled


def test_an_offline_download_says_the_cache_cannot_serve_it(server: Script) -> None:
    with pytest.raises(FetchError) as caught:
        HttpFetcher(server.url("/r"), None, offline=True).download(
            "a.tgz", io.BytesIO(), max_size=10
        )
    assert str(caught.value) == (
        f"{server.url('/r/a.tgz')}: not in the cache (run once without --offline first)"
    )
    assert server.seen == []


# --- a registry in a folder -------------------------------------------------------------


@pytest.mark.parametrize("ref", ["https://x.example/a", "/etc/passwd", "a/../../b", ".."])
def test_a_folder_refuses_what_lies_outside_it(tmp_path: Path, ref: str) -> None:
    with pytest.raises(FetchError) as caught:
        LocalFetcher(tmp_path).url_of(ref)
    assert str(caught.value) == (
        f"{ref}: a registry in a folder serves only files inside it "
        f"(expected a path relative to {tmp_path})"
    )


def test_a_folder_names_what_it_cannot_read(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    fetcher = LocalFetcher(tmp_path)
    with pytest.raises(NotFoundError) as missing:
        fetcher.document("nothing.json")
    assert str(missing.value) == f"{tmp_path / 'nothing.json'}: not found"
    with pytest.raises(FetchError) as folder:
        fetcher.document("sub")
    assert str(folder.value) == f"{tmp_path / 'sub'}: cannot read (Is a directory)"


def test_a_folder_download_copies_and_reports_progress_up_to_its_cap(tmp_path: Path) -> None:
    (tmp_path / "a.tgz").write_bytes(b"z" * 150_000)
    fetcher, sink, arrived = LocalFetcher(tmp_path), io.BytesIO(), list[int]()
    fetcher.download("a.tgz", sink, max_size=150_000, progress=arrived.append)
    assert sink.getvalue() == b"z" * 150_000
    assert sum(arrived) == 150_000 and len(arrived) == 3  # chunk by chunk
    with pytest.raises(TooLargeError) as caught:
        fetcher.download("a.tgz", io.BytesIO(), max_size=149_999)
    assert str(caught.value) == (
        f"{tmp_path / 'a.tgz'}: too large (expected at most 149999 bytes, got 150000)"
    )
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledTransferError):
        fetcher.download("a.tgz", io.BytesIO(), max_size=150_000, cancel=cancel)
    with pytest.raises(CancelledTransferError):
        fetcher.document("a.tgz", max_size=150_000, cancel=cancel)


def test_a_folder_remembers_each_document_until_discarded(tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_bytes(b"1")
    fetcher = LocalFetcher(tmp_path)
    assert fetcher.document("doc.json") == b"1"
    (tmp_path / "doc.json").write_bytes(b"2")
    assert fetcher.document("doc.json") == b"1"
    fetcher.discard("doc.json")
    assert fetcher.document("doc.json") == b"2"
    assert fetcher.signed("doc.json") is None
    assert fetcher.location == str(tmp_path)


# --- what the first run of the mutants left ---------------------------------------------


def test_a_two_letter_scheme_is_no_drive(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match=r"^ab://x: unsupported registry"):
        open_registry("ab://x", None)


def test_the_retry_settings_given_reach_the_client() -> None:
    fetcher = HttpFetcher("http://127.0.0.1:9/", None, attempts=2, backoff=0.1, max_retry_after=5)
    assert (fetcher.http.attempts, fetcher.http.backoff, fetcher.http.max_retry_after) == (
        2,
        0.1,
        5,
    )


def test_revalidations_add_up_in_the_statistics(server: Script, tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        server.answers[f"/r/{name}"] = [reply(200, b"{}", {"ETag": '"1"'}), reply(304)]
    first = open_registry(server.url("/r"), tmp_path)
    first.document("a.json")
    first.document("b.json")
    again = open_registry(server.url("/r"), tmp_path)
    assert again.document("a.json") == again.document("b.json") == b"{}"
    stats = again.stats  # type: ignore[attr-defined]
    assert (stats.requests, stats.conditional, stats.not_modified) == (2, 2, 2)


def test_a_cancelled_document_names_its_url(server: Script, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledTransferError) as caught:
        HttpFetcher(server.url("/r"), tmp_path).document("doc.json", cancel=cancel)
    assert str(caught.value) == f"{server.url('/r/doc.json')}: cancelled"


def test_a_document_over_its_cap_names_its_url(server: Script) -> None:
    server.answers["/r/doc.json"] = [reply(200, b"x" * 11)]
    with pytest.raises(TooLargeError) as caught:
        HttpFetcher(server.url("/r"), None).document("doc.json", max_size=10)
    assert str(caught.value) == (
        f"{server.url('/r/doc.json')}: too large (expected at most 10 bytes, "
        "the server announces 11)"
    )


def test_discarding_what_was_never_fetched_is_harmless(server: Script, tmp_path: Path) -> None:
    HttpFetcher(server.url("/r"), tmp_path).discard("never.json")
    LocalFetcher(tmp_path).discard("never.json")


def test_a_discarded_document_leaves_the_cache_folder(server: Script, tmp_path: Path) -> None:
    server.answers["/r/doc.json"] = [reply(200, b"{}", {"ETag": '"1"'})]
    fetcher = HttpFetcher(server.url("/r"), tmp_path)
    fetcher.document("doc.json")
    assert len([p for p in tmp_path.rglob("*") if p.is_file()]) == 2
    fetcher.discard("doc.json")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    ("what", "answer", "logged"),
    [
        ("document", reply(200, b"{}"), "200 2 bytes"),
        ("document", reply(404), "404 0 bytes"),
        ("document", reply(403), "403 0 bytes"),
        ("download", reply(200, b"z" * 150_000), "200 150000 bytes"),
        ("download", reply(404), "404 0 bytes"),
        ("download", reply(403), "403 0 bytes"),
    ],
    ids=["document", "document-404", "document-403", "download", "download-404", "download-403"],
)
def test_every_request_is_logged_with_its_status_and_size(
    server: Script, caplog: pytest.LogCaptureFixture, what: str, answer: Answer, logged: str
) -> None:
    """What `plugindex -v` shows: one line per request, whatever its answer."""
    server.answers["/r/x"] = [answer]
    fetcher = HttpFetcher(server.url("/r"), None, attempts=1)
    with caplog.at_level(logging.INFO, logger="builder.common.fetch"), suppress(FetchError):
        if what == "document":
            fetcher.document("x")
        else:
            fetcher.download("x", io.BytesIO(), max_size=200_000)
    lines = [r.getMessage() for r in caplog.records if r.name == "builder.common.fetch"]
    assert len(lines) == 1
    assert lines[0].startswith(f"GET {server.url('/r/x')} {logged} ")


def test_a_304_is_logged_with_no_bytes(
    server: Script, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server.answers["/r/x"] = [reply(200, b"{}", {"ETag": '"1"'}), reply(304)]
    open_registry(server.url("/r"), tmp_path).document("x")
    with caplog.at_level(logging.INFO, logger="builder.common.fetch"):
        open_registry(server.url("/r"), tmp_path).document("x")
    lines = [r.getMessage() for r in caplog.records if r.name == "builder.common.fetch"]
    assert len(lines) == 1 and lines[0].startswith(f"GET {server.url('/r/x')} 304 0 bytes ")


def test_a_folder_names_what_it_cancels(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    cancel = threading.Event()
    cancel.set()
    for run in (
        lambda: LocalFetcher(tmp_path).document("a", cancel=cancel),
        lambda: LocalFetcher(tmp_path).download("a", io.BytesIO(), max_size=1, cancel=cancel),
    ):
        with pytest.raises(CancelledTransferError) as caught:
            run()
        assert str(caught.value) == "a: cancelled"


def test_a_folder_document_at_its_cap_is_read_whole(tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_bytes(b"x" * 10)
    assert LocalFetcher(tmp_path).document("doc.json", max_size=10) == b"x" * 10


def test_a_file_growing_while_copied_is_cut_at_the_cap(tmp_path: Path) -> None:
    """The size is checked when the file opens and again while it is copied."""
    source = tmp_path / "a.tgz"
    source.write_bytes(b"a" * 70_000)

    class Growing:
        def write(self, data: bytes, /) -> int:
            with source.open("ab") as more:  # the file grows after its size was checked
                more.write(b"b" * 10_000)
            return len(data)

    with pytest.raises(TooLargeError) as caught:
        LocalFetcher(tmp_path).download("a.tgz", Growing(), max_size=70_000)
    assert str(caught.value) == "a.tgz: too large (expected at most 70000 bytes)"
