"""The one HTTP client at its edges: the public-address guard, retries and their waits,
connection failures, body caps, and what each failure says.

Every server is a real one on 127.0.0.1 that answers from a script. Waits are made
observable, not slept: `time.sleep` inside the client is replaced by a recorder.
"""

from __future__ import annotations

import email.utils
import http.server
import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import urllib3
from urllib3.util import connection as urllib3_connection

from builder import __version__
from builder.common import address_guard, http_client
from builder.common.errors import FetchError
from builder.common.http_client import (
    OFFLINE_HINT,
    HttpClient,
    NonPublicAddressError,
    NotFoundError,
    TooLargeError,
    _reason,
    non_public_reason,
    public_address,
    retry_after,
)
from builder.common.limits import DEFAULT_LIMITS

Answer = Callable[[http.server.BaseHTTPRequestHandler], None]


def reply(code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
    """Answer `code` with `body` (its length announced unless a header says otherwise)."""

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        sent = {"Content-Length": str(len(body)), **(headers or {})}
        for name, value in sent.items():
            if value:
                handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    return answer


def cut_short(announced: int, sent: bytes) -> Answer:
    """Announce `announced` bytes, send fewer, then close the connection."""

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(announced))
        handler.end_headers()
        handler.wfile.write(sent)
        handler.wfile.flush()
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)

    return answer


def stall_after(sent: bytes, seconds: float) -> Answer:
    """Announce more than `sent`, send it, then say nothing for `seconds`."""

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(sent) + 100))
        handler.end_headers()
        handler.wfile.write(sent)
        handler.wfile.flush()
        time.sleep(seconds)

    return answer


@dataclass
class Script:
    """What each path answers, in order (the last answer repeats), and what was asked."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)
    seen: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path


@contextmanager
def scripted() -> Iterator[Script]:
    """Serve a script on 127.0.0.1."""
    script = Script()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            script.seen.append((self.path, dict(self.headers.items())))
            queue = script.answers.get(self.path) or [reply(404)]
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            answer(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    script.base = f"http://127.0.0.1:{server.server_port}"
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def server() -> Iterator[Script]:
    with scripted() as script:
        yield script


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the client's waits instead of sleeping them."""
    recorded: list[float] = []

    class Clock:
        sleep = staticmethod(recorded.append)
        monotonic = staticmethod(time.monotonic)
        time = staticmethod(time.time)

    monkeypatch.setattr(http_client, "time", Clock)
    return recorded


def get(client: HttpClient, url: str, max_size: int = 1 << 20) -> bytes:
    sink = io.BytesIO()
    client.download(url, sink, max_size=max_size)
    return sink.getvalue()


def closed_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- which addresses are public ---------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("169.254.1.1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("fd00::1", "unique-local"),
        ("fc00::1", "unique-local"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("::ffff:10.0.0.1", "private"),
        ("4000::1", "reserved"),
        ("100.64.0.1", "non-global"),
        ("8.8.8.8", None),
        ("::ffff:8.8.8.8", None),
        ("2001:4860:4860::8888", None),
    ],
)
def test_each_kind_of_non_public_address_is_named(address: str, kind: str | None) -> None:
    assert non_public_reason(address) == kind


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Resolve names from a table; record nothing else (no DNS in tests)."""
    table: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: Any, **kw: Any) -> list[Any]:
        if not kw and host not in table:  # urllib3 connecting to the checked address
            return real(host, port, *args)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        family = socket.AF_INET6
        return [
            (family if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in table[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


def test_a_public_name_resolves_to_its_first_address(resolver: dict[str, list[str]]) -> None:
    resolver["cdn.example"] = ["93.184.216.34", "2606:2800:220:1::1"]
    assert public_address("cdn.example", 443) == "93.184.216.34"
    resolver["2606:2800:220:1::1"] = ["2606:2800:220:1::1"]
    assert public_address("[2606:2800:220:1::1]", 443) == "2606:2800:220:1::1"


def test_a_name_with_one_private_address_among_public_ones_is_refused(
    resolver: dict[str, list[str]],
) -> None:
    resolver["mixed.example"] = ["93.184.216.34", "10.1.2.3"]
    with pytest.raises(NonPublicAddressError) as caught:
        public_address("mixed.example", 80)
    assert str(caught.value) == (
        "refusing to connect to mixed.example (10.1.2.3), a private address (expected a "
        "public host; a registry serving artifacts from its own network sets "
        "policy.allow_private_addresses: true)"
    )


def test_an_address_given_as_the_host_is_named_once(resolver: dict[str, list[str]]) -> None:
    resolver["127.0.0.1"] = ["127.0.0.1"]
    with pytest.raises(NonPublicAddressError, match=r"^refusing to connect to 127\.0\.0\.1, a "):
        public_address("127.0.0.1", 80)


def test_a_name_without_addresses_is_a_resolution_failure(resolver: dict[str, list[str]]) -> None:
    resolver["empty.example"] = []
    with pytest.raises(socket.gaierror):
        public_address("empty.example", 80)


def test_a_public_only_client_refuses_a_local_server(server: Script) -> None:
    server.answers["/a"] = [reply(200, b"secret")]
    with pytest.raises(NonPublicAddressError) as caught:
        get(HttpClient(public_only=True, attempts=1), server.url("/a"))
    assert str(caught.value).startswith(
        f"{server.url('/a')}: refusing to connect to 127.0.0.1, a loopback address"
    )
    assert server.seen == []  # refused before connecting
    assert get(HttpClient(attempts=1), server.url("/a")) == b"secret"  # the default allows it


def test_a_public_only_client_connects_to_the_address_it_checked(
    server: Script, resolver: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved once, checked, and the connection goes to that address."""
    checked: list[str] = []

    def reason(address: str) -> str | None:
        checked.append(address)
        return None  # pretend 127.0.0.1 is public, to reach the connection itself

    monkeypatch.setattr(address_guard, "non_public_reason", reason)
    resolver["artifacts.example"] = ["127.0.0.1"]
    server.answers["/a"] = [reply(200, b"body")]
    port = server.base.rsplit(":", 1)[1]
    client = HttpClient(public_only=True, attempts=1)
    assert get(client, f"http://artifacts.example:{port}/a") == b"body"
    assert checked == ["127.0.0.1"]
    assert server.seen[0][1]["Host"] == f"artifacts.example:{port}"


def test_a_public_only_client_names_an_unknown_host(
    resolver: dict[str, list[str]], waits: list[float]
) -> None:
    with pytest.raises(FetchError) as caught:
        get(HttpClient(public_only=True, attempts=1), "http://nowhere.example/a")
    assert str(caught.value) == (
        f"http://nowhere.example/a: cannot connect (name or service not known); {OFFLINE_HINT}"
    )


def test_a_public_only_client_names_a_refused_connection(
    resolver: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    monkeypatch.setattr(address_guard, "non_public_reason", lambda address: None)
    resolver["down.example"] = ["127.0.0.1"]
    url = f"http://down.example:{closed_port()}/a"
    with pytest.raises(FetchError) as caught:
        get(HttpClient(public_only=True, attempts=1, hint="check the URL"), url)
    assert str(caught.value) == f"{url}: cannot connect (connection refused); check the URL"


# --- retries and their waits ------------------------------------------------------------


def test_server_errors_are_retried_with_doubling_waits(server: Script, waits: list[float]) -> None:
    server.answers["/a"] = [reply(500), reply(502), reply(504), reply(200, b"ok")]
    client = HttpClient(backoff=0.5)
    assert get(client, server.url("/a")) == b"ok"
    assert waits == [0.5, 1.0, 2.0]
    assert client.stats.requests == 4


def test_the_last_attempt_fails_with_the_count(server: Script, waits: list[float]) -> None:
    server.answers["/a"] = [reply(503)]
    with pytest.raises(FetchError) as caught:
        get(HttpClient(attempts=3, backoff=0.1), server.url("/a"))
    assert str(caught.value) == (
        f"{server.url('/a')}: server error (expected HTTP 200, got 503 after 3 attempts); "
        "try again later"
    )
    assert waits == [0.1, 0.2]
    assert len(server.seen) == 3


def test_a_rate_limit_waits_as_long_as_the_server_asks(server: Script, waits: list[float]) -> None:
    server.answers["/a"] = [reply(429, headers={"Retry-After": "7"}), reply(200, b"ok")]
    assert get(HttpClient(backoff=0.5), server.url("/a")) == b"ok"
    assert waits == [7.0]


def test_a_503_honours_retry_after_but_a_500_does_not(server: Script, waits: list[float]) -> None:
    server.answers["/a"] = [reply(503, headers={"Retry-After": "3"}), reply(200, b"ok")]
    server.answers["/b"] = [reply(500, headers={"Retry-After": "3"}), reply(200, b"ok")]
    client = HttpClient(backoff=0.25)
    assert get(client, server.url("/a")) == b"ok"
    assert get(client, server.url("/b")) == b"ok"
    assert waits == [3.0, 0.25]


def test_an_unreadable_retry_after_backs_off(server: Script, waits: list[float]) -> None:
    server.answers["/a"] = [reply(429, headers={"Retry-After": "soon"}), reply(200, b"ok")]
    assert get(HttpClient(backoff=0.25), server.url("/a")) == b"ok"
    assert waits == [0.25]


def test_a_rate_limit_without_retry_after_backs_off(server: Script, waits: list[float]) -> None:
    server.answers["/a"] = [reply(429)]
    with pytest.raises(FetchError) as caught:
        get(HttpClient(attempts=2, backoff=0.25), server.url("/a"))
    assert str(caught.value) == (
        f"{server.url('/a')}: rate limited (expected HTTP 200, got 429 after 2 attempts); "
        "try again later"
    )
    assert waits == [0.25]


def test_retry_after_up_to_the_limit_is_waited_and_past_it_is_not(
    server: Script, waits: list[float]
) -> None:
    server.answers["/a"] = [reply(429, headers={"Retry-After": "60"}), reply(200, b"ok")]
    assert get(HttpClient(max_retry_after=60), server.url("/a")) == b"ok"
    assert waits == [60.0]
    server.answers["/b"] = [reply(503, headers={"Retry-After": "61"})]
    with pytest.raises(FetchError) as caught:
        get(HttpClient(max_retry_after=60), server.url("/b"))
    assert str(caught.value) == (
        f"{server.url('/b')}: server error (HTTP 503); the server asks to retry after 61 s; "
        "try again later"
    )
    assert waits == [60.0]


def test_a_redirect_does_not_use_up_an_attempt(server: Script, waits: list[float]) -> None:
    server.answers["/a"] = [reply(302, headers={"Location": "/b"})]
    server.answers["/b"] = [reply(502), reply(200, b"moved")]
    client = HttpClient(attempts=2, backoff=0.1)
    assert get(client, server.url("/a")) == b"moved"
    assert [path for path, _ in server.seen] == ["/a", "/b", "/b"]
    assert waits == [0.1]


def test_redirects_stop_at_the_limit(server: Script) -> None:
    for n in range(DEFAULT_LIMITS.redirects + 1):
        server.answers[f"/{n}"] = [reply(301, headers={"Location": f"/{n + 1}"})]
    server.answers[f"/{DEFAULT_LIMITS.redirects}"] = [reply(200, b"end")]
    assert get(HttpClient(), server.url("/0")) == b"end"
    server.answers[f"/{DEFAULT_LIMITS.redirects}"] = [reply(301, headers={"Location": "/x"})]
    with pytest.raises(FetchError) as caught:
        get(HttpClient(), server.url("/0"))
    assert str(caught.value) == (
        f"{server.url(f'/{DEFAULT_LIMITS.redirects}')}: too many or unsafe redirects "
        f"(last to {server.url('/x')})"
    )


def test_a_redirect_without_a_location_is_an_answer(server: Script) -> None:
    server.answers["/a"] = [reply(302)]
    with pytest.raises(FetchError) as caught:
        get(HttpClient(), server.url("/a"))
    assert str(caught.value) == f"{server.url('/a')}: download failed (expected HTTP 200, got 302)"
    assert type(caught.value) is FetchError


def test_a_refused_connection_is_retried_once_then_named(waits: list[float]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/a"
    with pytest.raises(FetchError) as caught:
        get(HttpClient(backoff=0.3), url)
    assert str(caught.value) == f"{url}: cannot connect (connection refused); {OFFLINE_HINT}"
    assert waits == [0.3]
    with pytest.raises(FetchError):
        get(HttpClient(attempts=1, backoff=0.3), url)
    assert waits == [0.3]  # one attempt: no wait at all


def test_a_server_that_never_answers_is_not_asked_again(waits: list[float]) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/a"
    try:
        started = time.monotonic()
        with pytest.raises(FetchError) as caught:
            get(HttpClient(timeout=0.3, hint="try later"), url)
    finally:
        listener.close()
    assert str(caught.value) == (
        f"{url}: no answer within 0.3 s (the server accepted the connection but sent "
        "nothing); try later"
    )
    assert waits == []
    assert time.monotonic() - started < 3


def test_a_connect_timeout_of_its_own_is_kept_apart_from_the_read_timeout() -> None:
    client = HttpClient(timeout=9.0, connect_timeout=2.0)
    timeout = client._pool.connection_pool_kw["timeout"]
    assert (timeout.connect_timeout, timeout.read_timeout) == (2.0, 9.0)
    default = HttpClient(timeout=9.0)._pool.connection_pool_kw["timeout"]
    assert (default.connect_timeout, default.read_timeout) == (9.0, 9.0)


def test_the_client_names_itself(server: Script) -> None:
    server.answers["/a"] = [reply(200, b"ok")]
    get(HttpClient(), server.url("/a"))
    assert server.seen[0][1]["User-Agent"] == f"plugindex/{__version__}"


# --- bodies -----------------------------------------------------------------------------


def test_a_body_at_its_cap_is_read_whole_and_counted(server: Script) -> None:
    server.answers["/a"] = [reply(200, b"x" * 1000)]
    client, sink, arrived = HttpClient(), io.BytesIO(), list[int]()
    client.download(server.url("/a"), sink, max_size=1000, progress=arrived.append)
    assert sink.getvalue() == b"x" * 1000
    assert sum(arrived) == 1000
    assert client.stats.downloaded == 1000


def test_an_announced_body_over_the_cap_is_refused_unread(server: Script) -> None:
    server.answers["/a"] = [reply(200, b"x" * 1001)]
    client = HttpClient()
    with pytest.raises(TooLargeError) as caught:
        get(client, server.url("/a"), max_size=1000)
    assert str(caught.value) == (
        f"{server.url('/a')}: too large (expected at most 1000 bytes, the server announces 1001)"
    )
    assert client.stats.downloaded == 0


def test_an_unannounced_body_over_the_cap_is_cut(server: Script) -> None:
    server.answers["/a"] = [reply(200, b"x" * 1001, {"Content-Length": "", "Connection": "close"})]
    with pytest.raises(TooLargeError) as caught:
        get(HttpClient(), server.url("/a"), max_size=1000)
    assert str(caught.value) == (
        f"{server.url('/a')}: too large (expected at most 1000 bytes, got more)"
    )


def test_a_body_cut_short_is_a_lost_connection(server: Script) -> None:
    server.answers["/a"] = [cut_short(1000, b"x" * 10)]
    with pytest.raises(FetchError) as caught:
        get(HttpClient(hint="check the server"), server.url("/a"))
    assert str(caught.value) == (
        f"{server.url('/a')}: connection lost (closed after 10 bytes, 990 more expected); "
        "check the server"
    )


def test_a_stalled_body_says_it_stalled(server: Script) -> None:
    server.answers["/a"] = [stall_after(b"x" * 10, 3.0)]
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        get(HttpClient(timeout=0.3, hint="try later"), server.url("/a"))
    assert str(caught.value) == (
        f"{server.url('/a')}: no data within 0.3 s (the transfer stalled); try later"
    )
    assert time.monotonic() - started < 2.5


def test_a_body_past_its_deadline_is_too_slow(server: Script) -> None:
    server.answers["/a"] = [stall_after(b"x" * 10, 3.0)]
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        get(HttpClient(timeout=10.0, deadline=0.5), server.url("/a"))
    assert str(caught.value) == f"{server.url('/a')}: too slow (not complete after 0.5 s)"
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize(("code", "kind"), [(404, NotFoundError), (410, FetchError)])
def test_an_unserved_download_names_its_status(
    server: Script, code: int, kind: type[FetchError]
) -> None:
    server.answers["/a"] = [reply(code)]
    with pytest.raises(FetchError) as caught:
        get(HttpClient(), server.url("/a"))
    assert type(caught.value) is kind
    assert str(caught.value) == (
        f"{server.url('/a')}: download failed (expected HTTP 200, got {code})"
    )


def test_only_the_clients_schemes_are_fetched() -> None:
    with pytest.raises(FetchError) as caught:
        get(HttpClient(schemes=("https",)), "http://127.0.0.1/a")
    assert str(caught.value) == (
        "http://127.0.0.1/a: refusing to fetch (expected a https URL, got http)"
    )


# --- small helpers ----------------------------------------------------------------------


def test_a_connection_errors_reason_is_its_last_errno_text() -> None:
    error = urllib3.exceptions.NewConnectionError(
        urllib3.connection.HTTPConnection("x"),
        "Failed to resolve 'x' ([Errno -2] Name or service not known) "
        "then ([Errno 111] Connection refused)",
    )
    assert _reason(error) == "connection refused"
    assert _reason(urllib3.exceptions.ConnectTimeoutError(None, "slow")) == "timed out"
    assert _reason(urllib3.exceptions.ProtocolError("odd")) == "ProtocolError"


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after(" 12 ", 1.0) == 12.0
    assert retry_after("", 1.5) == 1.5
    assert retry_after(None, 2.5) == 2.5
    assert retry_after("soon", 3.5) == 3.5
    assert retry_after("Mon, 01 Jan 2001 00:00:00 GMT", 4.0) == 0.0
    later = email.utils.formatdate(time.time() + 100, usegmt=True)
    assert 95 <= retry_after(later, 0.0) <= 100


# --- what the first run of the mutants left ---------------------------------------------


def test_a_client_has_the_documented_defaults() -> None:
    client = HttpClient()
    assert (client.attempts, client.backoff, client.max_retry_after) == (4, 0.5, 120.0)
    assert (client.read_timeout, client.deadline) == (30.0, 600.0)
    timeout = client._pool.connection_pool_kw["timeout"]
    assert (timeout.connect_timeout, timeout.read_timeout) == (30.0, 30.0)
    assert client.schemes == {"http", "https"}
    assert client.display is None


def test_a_public_only_client_guards_https_too(waits: list[float]) -> None:
    url = f"https://127.0.0.1:{closed_port()}/a"
    with pytest.raises(NonPublicAddressError, match=r"a loopback address"):
        get(HttpClient(public_only=True, attempts=1), url)


def test_a_name_resolving_to_nothing_says_so(
    resolver: dict[str, list[str]], waits: list[float]
) -> None:
    resolver["void.example"] = []
    with pytest.raises(FetchError) as caught:
        get(HttpClient(public_only=True, attempts=1, hint="check the URL"), "http://void.example/a")
    assert str(caught.value) == "http://void.example/a: cannot connect (no address); check the URL"


def test_a_guarded_connection_keeps_its_timeout_and_options(
    server: Script, resolver: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checked address is connected to with the pool's timeout and socket options."""
    seen: list[tuple[Any, ...]] = []
    real = urllib3_connection.create_connection

    def create_connection(address: Any, timeout: Any, **kw: Any) -> socket.socket:
        seen.append((address, timeout, kw))
        connected: socket.socket = real(address, timeout, **kw)
        return connected

    monkeypatch.setattr(address_guard, "non_public_reason", lambda address: None)
    monkeypatch.setattr(urllib3_connection, "create_connection", create_connection)
    resolver["artifacts.example"] = ["127.0.0.1"]
    server.answers["/a"] = [reply(200, b"body")]
    port = int(server.base.rsplit(":", 1)[1])
    client = HttpClient(public_only=True, attempts=1, timeout=9.0, connect_timeout=2.0)
    assert get(client, f"http://artifacts.example:{port}/a") == b"body"
    (address, timeout, options), *_ = seen
    assert address == ("127.0.0.1", port)
    assert timeout == 2.0
    assert options["source_address"] is None
    assert (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) in options["socket_options"]


def test_a_guarded_connection_that_times_out_says_so(
    resolver: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch, waits: list[float]
) -> None:
    def create_connection(address: Any, timeout: Any, **kw: Any) -> socket.socket:
        raise TimeoutError("timed out")

    monkeypatch.setattr(address_guard, "non_public_reason", lambda address: None)
    monkeypatch.setattr(urllib3_connection, "create_connection", create_connection)
    resolver["slow.example"] = ["127.0.0.1"]
    with pytest.raises(FetchError) as caught:
        get(HttpClient(public_only=True, attempts=1, hint="check"), "http://slow.example/a")
    assert str(caught.value) == "http://slow.example/a: cannot connect (timed out); check"


def test_a_url_without_a_path_is_shown_by_its_url(server: Script) -> None:
    server.answers["/"] = [reply(200, b"root")]
    shown: list[tuple[str, int]] = []

    @contextmanager
    def display(name: str, total: int) -> Iterator[Callable[[int], None]]:
        shown.append((name, total))
        yield lambda count: None

    assert get(HttpClient(display=display), server.base, max_size=10) == b"root"
    server.answers["/files/a.tgz"] = [reply(200, b"a")]
    get(HttpClient(display=display), server.url("/files/a.tgz"), max_size=5)
    assert shown == [(server.base, 10), ("a.tgz", 5)]


class _LateResponse:
    """A response whose read returns data only after the deadline has passed."""

    headers: dict[str, str] = {}  # noqa: RUF012 - read only

    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.shut = False

    def read1(self, size: int) -> bytes:
        time.sleep(self.wait)
        return b"late"

    def shutdown(self) -> None:
        self.shut = True


def test_data_that_arrives_after_the_deadline_is_too_slow() -> None:
    late = _LateResponse(0.4)
    client = HttpClient(deadline=0.1)
    with pytest.raises(FetchError) as caught:
        client.stream("http://x.example/a", late, io.BytesIO(), 100, None)  # type: ignore[arg-type]
    assert str(caught.value) == "http://x.example/a: too slow (not complete after 0.1 s)"
    assert late.shut


def test_the_bytes_received_add_up_over_downloads(server: Script) -> None:
    server.answers["/a"] = [reply(200, b"x" * 300)]
    client = HttpClient()
    get(client, server.url("/a"))
    get(client, server.url("/a"))
    assert client.stats.downloaded == 600
    assert client.stats.requests == 2
