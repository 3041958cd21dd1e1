"""Progress of authors' artifact downloads (validate, build): on a terminal, per file, only
for transfers over a second; nothing when stderr is not a terminal.

The same display draws the client's one-line progress (`ProgressLine`), so both look
alike. Servers are real ones on 127.0.0.1 that send a body slowly.
"""

from __future__ import annotations

import http.server
import io
import os
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.common import progress
from builder.common.errors import FetchError
from builder.common.http_client import HttpClient
from builder.common.progress import ProgressLine, TransferBoard, terminal_board
from tests import mini_index
from tests.conftest import PLUGINDEX
from tests.test_mut_http import Answer, Script, reply, scripted


def dripping(body: bytes, seconds: float, pieces: int = 10) -> Answer:
    """Announce `body`, then send it in `pieces` spread over `seconds`."""

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        step = -(-len(body) // pieces)
        try:
            for start in range(0, len(body), step):
                time.sleep(seconds / pieces)
                handler.wfile.write(body[start : start + step])
                handler.wfile.flush()
        except OSError:
            pass  # the client gave up

    return answer


@pytest.fixture
def server() -> Iterator[Script]:
    with scripted() as script:
        yield script


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_a_slow_download_shows_its_file_bytes_and_total(server: Script) -> None:
    body = b"a" * 2000
    server.answers["/files/auth-1.0.0.tar.gz"] = [dripping(body, 1.6)]
    screen = io.StringIO()
    client = HttpClient(display=TransferBoard(screen).transfer)
    sink, arrived = io.BytesIO(), list[int]()
    client.download(
        server.url("/files/auth-1.0.0.tar.gz"), sink, max_size=2000, progress=arrived.append
    )
    assert sink.getvalue() == body and sum(arrived) == 2000  # the caller's progress still told
    shown = screen.getvalue()
    assert "\rauth-1.0.0.tar.gz " in shown
    assert " of 2.0 kB, " in shown
    last = shown.rstrip("\n").rsplit("\r", 1)[-1]
    assert last.startswith("auth-1.0.0.tar.gz 100% 2.0 kB of 2.0 kB, ")
    assert shown.endswith("\n")


def test_a_quick_download_shows_nothing(server: Script) -> None:
    server.answers["/a.tar.gz"] = [reply(200, b"a" * 2000)]
    screen = io.StringIO()
    sink = io.BytesIO()
    HttpClient(display=TransferBoard(screen).transfer).download(
        server.url("/a.tar.gz"), sink, max_size=2000
    )
    assert sink.getvalue() == b"a" * 2000
    assert screen.getvalue() == ""


def test_transfers_at_once_share_the_line_and_each_ends_on_its_own(server: Script) -> None:
    server.answers["/one.zip"] = [dripping(b"1" * 1000, 1.5)]
    server.answers["/two.zip"] = [dripping(b"2" * 3000, 1.8)]
    screen = io.StringIO()
    board = TransferBoard(screen)
    client = HttpClient(display=board.transfer)
    threads = [
        threading.Thread(
            target=client.download, args=(server.url(f"/{n}.zip"), io.BytesIO()), kwargs=kw
        )
        for n, kw in (("one", {"max_size": 1000}), ("two", {"max_size": 3000}))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    frames = screen.getvalue().split("\r")
    assert any("one.zip" in f and "; two.zip" in f for f in frames) or any(
        "two.zip" in f and "; one.zip" in f for f in frames
    )
    finals = [line.rsplit("\r", 1)[-1].rstrip() for line in screen.getvalue().splitlines()]
    assert any(f.startswith("one.zip 100% 1.0 kB of 1.0 kB, ") for f in finals)
    assert any(f.startswith("two.zip 100% 3.0 kB of 3.0 kB, ") for f in finals)


def test_the_client_line_is_the_same_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """`ProgressLine` (the client's installs) draws through the board, labelled once."""
    monkeypatch.setattr(progress, "SHOW_PROGRESS_AFTER", 0.1)
    screen = io.StringIO()
    with ProgressLine(500, screen) as line:
        line.advance(200)
        time.sleep(0.35)
        line.advance(300)
    last = screen.getvalue().rstrip("\n").rsplit("\r", 1)[-1]
    assert last.startswith("downloading 100% 500 B of 500 B, ")
    assert "\rdownloading  40% 200 B of 500 B, " in screen.getvalue()


def test_progress_is_drawn_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert terminal_board() is None
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    display = terminal_board()
    assert display is not None
    monkeypatch.setattr(progress, "SHOW_PROGRESS_AFTER", 0.0)
    with display("x.tar.gz", 10) as advance:
        advance(10)
        time.sleep(0.3)
    assert "x.tar.gz 100% 10 B of 10 B" in terminal.getvalue()


@pytest.mark.parametrize(
    ("count", "text"),
    [(512, "512 B"), (3400, "3.4 kB"), (12e6, "12.0 MB"), (1_000_500, "1.0 MB"), (5e9, "5.0 GB")],
)
def test_sizes_read_for_people(count: float, text: str) -> None:
    assert progress.size_text(count) == text


# --- the line itself, drawn by hand ------------------------------------------------------


NOW = 1000.0  # what the display's clock says in the tests that draw by hand


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop the display's clock at NOW (the tests' own sleeps are unaffected)."""
    monkeypatch.setattr(progress, "time", types.SimpleNamespace(monotonic=lambda: NOW))


def entry(label: str, total: int, done: int, age: float) -> progress._Transfer:
    """Return a transfer that started `age` seconds before NOW with `done` bytes."""
    return progress._Transfer(label, total, NOW - age, done)


@pytest.mark.usefixtures("clock")
def test_a_transfers_text_gives_share_bytes_rate_and_time() -> None:
    assert entry("a.tgz", 1000, 500, 2.0).text() == "a.tgz  50% 500 B of 1.0 kB, 250 B/s, 2 s"
    assert entry("a.tgz", 1000, 500, 0.2).text() == "a.tgz  50% 500 B of 1.0 kB, 2.5 kB/s, 0 s"
    assert entry("a.tgz", 0, 5, 5.0).text() == "a.tgz 5 B of 0 B, 1 B/s, 5 s"  # no total: no share


def board(
    monkeypatch: pytest.MonkeyPatch, columns: int | None = None
) -> tuple[TransferBoard, io.StringIO]:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(columns))
    screen = io.StringIO()
    return TransferBoard(screen), screen


@pytest.mark.usefixtures("clock")
def test_only_transfers_over_a_second_are_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    shown, screen = board(monkeypatch)
    shown._active = [entry("new.tgz", 10, 1, 0.1)]
    shown._draw()
    assert screen.getvalue() == ""
    shown._active.append(entry("old.tgz", 10, 1, 1.5))
    shown._draw()
    assert screen.getvalue().startswith("\rold.tgz  10% ")
    assert "new.tgz" not in screen.getvalue()
    assert [e.shown for e in shown._active] == [False, True]


@pytest.mark.usefixtures("clock")
def test_three_transfers_are_named_and_more_are_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    shown, screen = board(monkeypatch, columns=400)
    shown._active = [entry(f"{n}.tgz", 10, 1, 2.0) for n in "abc"]
    shown._draw()
    assert screen.getvalue().count(".tgz") == 3 and "more" not in screen.getvalue()
    shown._active += [entry(f"{n}.tgz", 10, 1, 2.0) for n in "de"]
    shown._draw()
    last = screen.getvalue().rsplit("\r", 1)[-1].rstrip()
    assert last.endswith("; and 2 more")
    assert last.startswith("a.tgz ") and "; b.tgz " in last and "; c.tgz " in last
    assert "d.tgz" not in last


@pytest.mark.parametrize(("columns", "width"), [(None, 99), (40, 39), (10, 20)])
def test_a_line_is_cut_one_short_of_the_terminal(
    monkeypatch: pytest.MonkeyPatch, columns: int | None, width: int
) -> None:
    shown, screen = board(monkeypatch, columns)
    shown._line("x" * 300)
    assert screen.getvalue() == "\r" + "x" * width


def test_a_short_line_covers_what_was_drawn_before(monkeypatch: pytest.MonkeyPatch) -> None:
    shown, screen = board(monkeypatch)
    shown._line("short")
    assert screen.getvalue() == "\r" + "short".ljust(60)
    shown._line("y" * 80)
    shown._line("z")
    assert screen.getvalue().rsplit("\r", 1)[-1] == "z".ljust(80)


class Broken(io.StringIO):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def write(self, text: str) -> int:
        raise self.error


@pytest.mark.parametrize("error", [OSError("terminal gone"), ValueError("closed")])
def test_a_terminal_gone_is_no_error(error: Exception) -> None:
    TransferBoard(Broken(error))._write("text")


def test_the_board_draws_again_after_a_quiet_spell(monkeypatch: pytest.MonkeyPatch) -> None:
    """The drawing thread stops when no transfer runs, and starts with the next one."""
    monkeypatch.setattr(progress, "SHOW_PROGRESS_AFTER", 0.05)
    monkeypatch.setattr(progress, "_REDRAW", 0.05)
    shown, screen = board(monkeypatch)
    for name in ("first.tgz", "second.tgz"):
        with shown.transfer(name, 10) as advance:
            advance(10)
            time.sleep(0.3)
        time.sleep(0.3)  # the thread has seen no transfer and ended
        assert shown._thread is None
    assert "first.tgz 100% " in screen.getvalue()
    assert "second.tgz 100% " in screen.getvalue()


# --- the commands -----------------------------------------------------------------------


def _index_served_slowly(root: Path, server: Script) -> tuple[Path, str]:
    """Write an index whose one artifact is served by `server`, slowly; return it and its file."""
    body = b"slow artifact\n" * 200
    index = mini_index.write_index(root / "index")
    name = "slow-plugin-1.0.0.tar.gz"
    mini_index.add_release(index, "slow-plugin", "1.0.0", server.url(f"/{name}"), data=body)
    server.answers[f"/{name}"] = [dripping(body, 1.6)]
    return index, name


def _in_a_terminal(*args: str) -> tuple[int, str]:
    """Run plugindex with a pseudo-terminal as stdout and stderr; return its code and output."""
    import pty

    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*PLUGINDEX, *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    output = b""
    try:
        while chunk := os.read(controller, 4096):
            output += chunk
    except OSError:  # the terminal closed with the process (EIO)
        pass
    finally:
        os.close(controller)
    return process.wait(timeout=60), output.decode("utf-8", "replace")


def test_validate_shows_a_slow_download_on_a_terminal_only(tmp_path: Path, server: Script) -> None:
    index, name = _index_served_slowly(tmp_path, server)
    code, output = _in_a_terminal("validate", str(index))
    assert code == 0, output
    assert f"\r{name} " in output
    assert f"{name} 100% 2.8 kB of 2.8 kB, " in output
    assert output.rstrip().endswith("1 plugins, 1 versions: valid")
    server.answers[f"/{name}"] = [dripping(b"slow artifact\n" * 200, 1.6)]
    piped = subprocess.run(
        [*PLUGINDEX, "validate", str(index)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert name not in piped.stderr and "\r" not in piped.stderr


def test_a_shown_download_that_fails_names_its_url(server: Script) -> None:
    server.answers["/big.tar.gz"] = [reply(200, b"x" * 11)]
    client = HttpClient(display=TransferBoard(io.StringIO()).transfer)
    with pytest.raises(FetchError) as caught:
        client.download(server.url("/big.tar.gz"), io.BytesIO(), max_size=10)
    assert str(caught.value) == (
        f"{server.url('/big.tar.gz')}: too large (expected at most 10 bytes, "
        "the server announces 11)"
    )
