"""A build served on 127.0.0.1 that records every request and can misbehave on cue."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from builder.publish.serve import BuildRequestHandler


@dataclass(frozen=True)
class Hit:
    path: str
    status: int
    conditional: bool  # sent If-None-Match or If-Modified-Since


Fault = Callable[[BuildRequestHandler], None]


def status(code: int, headers: dict[str, str] | None = None) -> Fault:
    """Answer with `code`, the headers and an empty body."""

    def answer(handler: BuildRequestHandler) -> None:
        handler.send_response(code)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def endless(handler: BuildRequestHandler) -> None:
    """Answer 200 and stream zeros until the client hangs up (at most 1 GiB)."""
    handler.send_response(200)
    handler.end_headers()
    chunk = b"\0" * 65536
    try:
        for _ in range(16384):
            handler.wfile.write(chunk)
    except OSError:
        pass  # the client stopped reading: what we are testing


def dripping(body: bytes, pause: float) -> Fault:
    """Announce `body` whole, then send it one byte every `pause` seconds."""

    def answer(handler: BuildRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        try:
            for byte in body:
                time.sleep(pause)
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
        except OSError:
            pass  # the client gave up: what we are testing

    return answer


def stalled(seconds: float) -> Fault:
    """Answer 200 with a length, then send nothing for `seconds` (a transfer that stalls)."""

    def answer(handler: BuildRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        handler.wfile.flush()
        time.sleep(seconds)

    return answer


@contextmanager
def silent_server() -> Iterator[str]:
    """Listen on 127.0.0.1 and never answer: connections are accepted, requests never read.

    Yields the base URL. What a registry behind a hung proxy looks like to a client.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # the kernel completes the handshakes; nobody reads
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    finally:
        listener.close()


@dataclass
class Recorder:
    hits: list[Hit] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        """Return the requested paths, in order."""
        return [h.path for h in self.hits]


class _Handler(BuildRequestHandler):
    recorder: Recorder

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        with self.recorder.lock:
            queue = self.recorder.faults.get(self.path.split("?")[0])
            fault = queue.pop(0) if queue else None
        if fault is not None:
            fault(self)
        else:
            super().do_GET()

    def send_response(self, code: int, message: str | None = None) -> None:
        conditional = "If-None-Match" in self.headers or "If-Modified-Since" in self.headers
        with self.recorder.lock:
            self.recorder.hits.append(Hit(self.path, code, conditional))
        super().send_response(code, message)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_recorded(directory: Path) -> Iterator[tuple[str, Recorder]]:
    """Serve `directory`; yield its base URL and the request recorder."""
    recorder = Recorder()
    handler = type("Handler", (_Handler,), {"recorder": recorder})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(directory))
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/", recorder
    finally:
        server.shutdown()
        server.server_close()
