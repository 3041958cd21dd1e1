"""The client on the wire: silent servers, cancelled transfers, and `-v` showing requests.

Real servers on 127.0.0.1 (tests/fault_server.py): one that accepts connections and
never answers, one that stalls in the middle of a body.
"""

from __future__ import annotations

import io
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builder.common.errors import FetchError
from builder.common.fetch import CancelledTransferError, open_registry
from builder.common.http_client import HttpClient
from tests.conftest import PLUGINDEX
from tests.fault_server import Recorder, serve_recorded, silent_server, stalled
from tests.signed_build import DEMO_ROOT, build_signed


@pytest.fixture
def site(tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "doc.json").write_bytes(b'{"format":1}\n')
    (folder / "big.bin").write_bytes(b"x" * 1000)
    return folder


# --- a server that never answers ---------------------------------------------------------


def test_a_silent_server_fails_once_the_read_timeout_passes_with_a_clear_message() -> None:
    """Accepted, then nothing: one attempt, `no answer within 1 s`, not a minute of silence."""
    with silent_server() as url:
        fetcher = open_registry(url, None, read_timeout=1)
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetcher.document("config.json")
        elapsed = time.monotonic() - started
    assert str(caught.value) == (
        f"{url}config.json: no answer within 1 s (the server accepted the connection but "
        "sent nothing); check the network, or use --offline to work from the cache"
    )
    assert 1 <= elapsed < 2.5, elapsed  # not retried


def test_the_default_timeouts_are_a_short_connect_and_a_30_s_read() -> None:
    fetcher = open_registry("https://registry.example/", None)
    timeout = fetcher.http._pool.connection_pool_kw["timeout"]  # type: ignore[attr-defined]
    assert (timeout.connect_timeout, timeout.read_timeout) == (5, 30)


def test_a_body_that_stalls_fails_with_no_data_within_the_read_timeout(site: Path) -> None:
    with serve_recorded(site) as (url, recorder):
        recorder.faults["/big.bin"] = [stalled(5)]
        fetcher = open_registry(url, None, read_timeout=1)
        started = time.monotonic()
        with pytest.raises(
            FetchError, match=r"big\.bin: no data within 1 s \(the transfer stalled\)"
        ):
            fetcher.download("big.bin", io.BytesIO(), max_size=1000)
        assert time.monotonic() - started < 2.5


def test_the_silent_message_comes_from_the_client_that_timed_out() -> None:
    assert HttpClient(timeout=7).silent() == (
        "no answer within 7 s (the server accepted the connection but sent nothing)"
    )


def test_the_cli_says_no_answer_within_the_timeout_and_exits_3(tmp_path: Path) -> None:
    """`plugindex info` against a hung registry: one line, exit 3, within the limit."""
    with silent_server() as url:
        started = time.monotonic()
        done = subprocess.run(
            [*PLUGINDEX, "info", "auth-jwt", "--registry", url, "--root", str(DEMO_ROOT)],
            env=_env(tmp_path, PLUGINDEX_TIMEOUT="1"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    assert done.stderr == (
        f"error: {url}metadata/2.root.json: no answer within 1 s (the server accepted the "
        "connection but sent nothing); check the network, or use --offline to work from "
        "the cache\n"
    )
    assert elapsed < 10, elapsed  # the process starts in ~1 s; the wait itself is 1 s


# --- cancelling a transfer ------------------------------------------------------------------


class _Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes, /) -> int:
        self.data += data
        return len(data)


def _run(target: Callable[[], object]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as e:  # handed to the test
            errors.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


@pytest.mark.parametrize("what", ["download", "document"])
def test_a_cancel_ends_a_stalled_transfer_at_once(site: Path, what: str) -> None:
    """The read waits on a server that stalls for 30 s; setting cancel ends it within 0.5 s."""
    path = "big.bin" if what == "download" else "doc.json"
    with serve_recorded(site) as (url, recorder):
        recorder.faults[f"/{path}"] = [stalled(30)]
        fetcher = open_registry(url, None)
        cancel = threading.Event()
        sink = _Sink()

        def call() -> object:
            if what == "download":
                fetcher.download(path, sink, max_size=1000, cancel=cancel)
                return None
            return fetcher.document(path, cancel=cancel)

        thread, errors = _run(call)
        while not recorder.hits:
            time.sleep(0.01)
        time.sleep(0.3)  # the read is waiting now
        started = time.monotonic()
        cancel.set()
        thread.join(5)
        elapsed = time.monotonic() - started
    assert not thread.is_alive()
    assert elapsed < 0.5, elapsed
    assert [type(e) for e in errors] == [CancelledTransferError]
    assert str(errors[0]) == f"{url}{path}: cancelled"
    assert sink.data == b""


def test_a_cancelled_transfer_is_never_started(site: Path) -> None:
    with serve_recorded(site) as (url, recorder):
        cancel = threading.Event()
        cancel.set()
        with pytest.raises(CancelledTransferError):
            open_registry(url, None).download("big.bin", _Sink(), max_size=1000, cancel=cancel)
    assert recorder.hits == []


def test_an_uncancelled_transfer_completes(site: Path) -> None:
    """The watcher of a transfer that is never cancelled changes nothing."""
    with serve_recorded(site) as (url, _):
        sink = _Sink()
        fetcher = open_registry(url, None)
        fetcher.download("big.bin", sink, max_size=1000, cancel=threading.Event())
        assert fetcher.document("doc.json", cancel=threading.Event()) == b'{"format":1}\n'
    assert bytes(sink.data) == b"x" * 1000


# --- -v shows the requests --------------------------------------------------------------------


def _env(home: Path, **extra: str) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "PLUGINDEX_PLUGINS_DIR": str(home / "plugins"),
        "PLUGINDEX_CACHE_DIR": str(home / "cache"),
        "PLUGINDEX_CONFIG_DIR": str(home / "config"),
        "PLUGINDEX_DATA_DIR": str(home / "data"),
        **extra,
    }


@pytest.fixture
def served(index: Path, tmp_path: Path) -> Iterator[tuple[str, Recorder]]:
    out = tmp_path / "out"
    build_signed(index, out)
    with serve_recorded(out) as found:
        yield found


def test_verbose_shows_every_request_with_status_bytes_and_time(
    served: tuple[str, Recorder], tmp_path: Path
) -> None:
    url, recorder = served
    done = subprocess.run(
        [*PLUGINDEX, "-v", "info", "auth-jwt", "--registry", url, "--root", str(DEMO_ROOT)],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    logged = [
        line.split()[3:5]
        for line in done.stderr.splitlines()
        if line.startswith("INFO builder.common.fetch: GET ")
    ]
    assert logged == [[url + h.path[1:], str(h.status)] for h in recorder.hits]
    assert f"GET {url}metadata/2.root.json 404 0 bytes " in done.stderr
    timestamp = next(line for line in done.stderr.splitlines() if "timestamp.json 200" in line)
    assert timestamp.endswith(" s") and " bytes " in timestamp
