"""The HTTP client's redirect policy, against real local servers (one of them HTTPS).

An https registry must never be followed to http; redirects are capped and go only
to allowed schemes. The HTTPS server uses a certificate made here, trusted through
SSL_CERT_FILE, so the real TLS path runs.
"""

from __future__ import annotations

import datetime
import io
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from builder.common.errors import FetchError
from builder.common.fetch import open_registry
from builder.common.http_client import HttpClient, NotFoundError, TooLargeError
from builder.common.limits import DEFAULT_LIMITS

# path -> (status, Location header or None, body)
Routes = dict[str, tuple[int, str | None, bytes]]


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[Routes] = {}
    validators: ClassVar[dict[str, dict[str, str]]] = {}  # path -> ETag / Last-Modified
    seen: ClassVar[list[dict[str, str]]] = []  # the headers of every request

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers.items()))
        status, location, body = self.routes.get(self.path, (404, None, b""))
        validators = self.validators.get(self.path, {})
        asked = {
            "ETag": self.headers.get("If-None-Match"),
            "Last-Modified": self.headers.get("If-Modified-Since"),
        }
        if any(asked[name] == value for name, value in validators.items()):
            status, body = 304, b""
        self.send_response(status)
        if location is not None:
            self.send_header("Location", location)
        for name, value in validators.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


class Server:
    """A local HTTP(S) server whose routes a test sets."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        routes: Routes = {}
        validators: dict[str, dict[str, str]] = {}
        seen: list[dict[str, str]] = []
        handler = type(
            "Handler", (_Handler,), {"routes": routes, "validators": validators, "seen": seen}
        )
        self.routes, self.validators, self.seen = routes, validators, seen
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if context is not None else "http"
        self.base = f"{scheme}://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, Server]]:
    """An HTTPS server (its certificate trusted) and a plain HTTP one."""
    cert, key = _certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    secure, plain = Server(context), Server(None)
    yield secure, plain
    secure.close()
    plain.close()


def fetch(client: HttpClient, url: str) -> bytes:
    sink = io.BytesIO()
    client.download(url, sink, max_size=1 << 20)
    return sink.getvalue()


def test_https_to_https_redirects_are_followed(servers: tuple[Server, Server]) -> None:
    secure, _ = servers
    secure.routes["/a"] = (302, "/b", b"")
    secure.routes["/b"] = (200, None, b"body")
    assert fetch(HttpClient(attempts=1), secure.base + "/a") == b"body"


def test_an_https_url_redirected_to_http_is_refused(servers: tuple[Server, Server]) -> None:
    """Mutant: the https-to-http check removed: the downgrade was followed."""
    secure, plain = servers
    plain.routes["/x"] = (200, None, b"downgraded")
    secure.routes["/a"] = (301, plain.base + "/x", b"")
    with pytest.raises(
        FetchError, match=r"redirected to http://127\.0\.0\.1:\d+/x \(expected an https URL\)"
    ):
        fetch(HttpClient(attempts=1), secure.base + "/a")


def test_an_https_registry_redirected_to_http_is_refused(servers: tuple[Server, Server]) -> None:
    secure, plain = servers
    plain.routes["/config.json"] = (200, None, b'{"format": 1, "name": "r"}')
    secure.routes["/config.json"] = (302, plain.base + "/config.json", b"")
    fetcher = open_registry(secure.base + "/", None)
    with pytest.raises(FetchError, match=r"expected an https URL"):
        fetcher.document("config.json")


def test_an_https_registry_refuses_http_references(servers: tuple[Server, Server]) -> None:
    secure, plain = servers
    fetcher = open_registry(secure.base + "/", None)
    with pytest.raises(FetchError, match=r"refusing to fetch \(expected an https URL, got http:\)"):
        fetcher.url_of(plain.base + "/artifact.tgz")
    assert fetcher.url_of("artifacts/a.tgz") == secure.base + "/artifacts/a.tgz"


def test_http_to_http_redirects_stop_at_the_limit(servers: tuple[Server, Server]) -> None:
    _, plain = servers
    limit = DEFAULT_LIMITS.redirects
    for hop in range(limit + 1):
        plain.routes[f"/{hop}"] = (302, f"/{hop + 1}", b"")
    plain.routes[f"/{limit}"] = (200, None, b"arrived")
    assert fetch(HttpClient(attempts=1), plain.base + "/0") == b"arrived"
    plain.routes[f"/{limit}"] = (302, f"/{limit + 1}", b"")
    plain.routes[f"/{limit + 1}"] = (200, None, b"too far")
    with pytest.raises(FetchError, match="too many or unsafe redirects"):
        fetch(HttpClient(attempts=1), plain.base + "/0")


def test_a_redirect_to_a_scheme_not_allowed_is_refused(servers: tuple[Server, Server]) -> None:
    _, plain = servers
    plain.routes["/a"] = (302, "ftp://127.0.0.1/x", b"")
    with pytest.raises(FetchError, match=r"too many or unsafe redirects \(last to ftp://"):
        fetch(HttpClient(attempts=1), plain.base + "/a")
    plain.routes["/b"] = (302, "https://127.0.0.1:9/c", b"")
    with pytest.raises(FetchError, match="unsafe redirects"):
        fetch(HttpClient(attempts=1, schemes=["http"]), plain.base + "/b")


def test_a_url_of_a_scheme_not_allowed_is_not_fetched() -> None:
    with pytest.raises(FetchError, match=r"refusing to fetch \(expected a https URL, got http\)"):
        fetch(HttpClient(attempts=1, schemes=["https"]), "http://127.0.0.1:9/a")


# --- the registry fetchers ---------------------------------------------------------------


def test_a_registry_location_picks_its_fetcher(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b"{}")
    assert open_registry(f"file://{tmp_path}", None).document("config.json") == b"{}"
    assert open_registry(str(tmp_path), None).document("config.json") == b"{}"
    assert open_registry("http://127.0.0.1:9/r", None).location == "http://127.0.0.1:9/r/"
    assert open_registry("https://127.0.0.1:9/r/", None).location == "https://127.0.0.1:9/r/"
    assert open_registry("C:/registry", None).location == "C:/registry"  # a drive, no scheme
    with pytest.raises(FetchError) as caught:
        open_registry("ftp://example.org/r", None)
    assert str(caught.value) == (
        "ftp://example.org/r: unsupported registry (expected an http(s) URL or a folder)"
    )


def test_a_cached_document_is_revalidated_by_etag_and_reused(
    servers: tuple[Server, Server], tmp_path: Path
) -> None:
    _, plain = servers
    plain.routes["/r/config.json"] = (200, None, b'{"v": 1}')
    plain.validators["/r/config.json"] = {"ETag": '"abc"'}
    assert open_registry(plain.base + "/r", tmp_path).document("config.json") == b'{"v": 1}'
    again = open_registry(plain.base + "/r", tmp_path)
    assert again.document("config.json") == b'{"v": 1}'
    assert plain.seen[-1].get("If-None-Match") == '"abc"'
    assert (again.stats.conditional, again.stats.not_modified) == (1, 1)  # type: ignore[attr-defined]


def test_a_cached_document_is_revalidated_by_date_too(
    servers: tuple[Server, Server], tmp_path: Path
) -> None:
    _, plain = servers
    stamp = "Wed, 01 May 2024 00:00:00 GMT"
    plain.routes["/r/config.json"] = (200, None, b"{}")
    plain.validators["/r/config.json"] = {"Last-Modified": stamp}
    open_registry(plain.base + "/r", tmp_path).document("config.json")
    again = open_registry(plain.base + "/r", tmp_path)
    assert again.document("config.json") == b"{}"
    assert plain.seen[-1].get("If-Modified-Since") == stamp
    assert "If-None-Match" not in plain.seen[-1]


def test_offline_reads_the_cache_or_says_it_has_nothing(
    servers: tuple[Server, Server], tmp_path: Path
) -> None:
    _, plain = servers
    plain.routes["/r/config.json"] = (200, None, b"{}")
    open_registry(plain.base + "/r", tmp_path).document("config.json")
    before = len(plain.seen)
    offline = open_registry(plain.base + "/r", tmp_path, offline=True)
    assert offline.document("config.json") == b"{}"
    assert len(plain.seen) == before  # no request at all
    with pytest.raises(FetchError) as caught:
        offline.document("names.json")
    assert str(caught.value) == (
        f"{plain.base}/r/names.json: not in the cache (run once without --offline first)"
    )
    with pytest.raises(FetchError, match="not in the cache"):
        offline.download("artifacts/a", io.BytesIO(), max_size=10)


def test_a_discarded_document_leaves_memory_and_cache(
    servers: tuple[Server, Server], tmp_path: Path
) -> None:
    _, plain = servers
    plain.routes["/r/config.json"] = (200, None, b"{}")
    plain.validators["/r/config.json"] = {"ETag": '"abc"'}
    fetcher = open_registry(plain.base + "/r", tmp_path)
    fetcher.document("config.json")
    fetcher.discard("config.json")
    plain.routes["/r/config.json"] = (200, None, b'{"new": 1}')
    plain.validators["/r/config.json"] = {"ETag": '"def"'}
    assert fetcher.document("config.json") == b'{"new": 1}'
    assert "If-None-Match" not in plain.seen[-1]  # a full fetch, not a revalidation


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (404, NotFoundError, "not found (HTTP 404)"),
        (403, FetchError, "unexpected answer (expected HTTP 200, got 403)"),
    ],
)
def test_a_document_that_is_not_served_is_named(
    servers: tuple[Server, Server], status: int, kind: type[Exception], message: str
) -> None:
    _, plain = servers
    plain.routes["/r/x.json"] = (status, None, b"")
    with pytest.raises(kind) as caught:
        open_registry(plain.base + "/r", None).document("x.json")
    assert str(caught.value) == f"{plain.base}/r/x.json: {message}"


@pytest.mark.parametrize(
    ("status", "kind", "message"),
    [
        (404, NotFoundError, "not found (HTTP 404)"),
        (403, FetchError, "download failed (expected HTTP 200, got 403)"),
    ],
)
def test_an_artifact_that_is_not_served_is_named(
    servers: tuple[Server, Server], status: int, kind: type[Exception], message: str
) -> None:
    _, plain = servers
    plain.routes["/r/a.tgz"] = (status, None, b"")
    with pytest.raises(kind) as caught:
        open_registry(plain.base + "/r", None).download("a.tgz", io.BytesIO(), max_size=10)
    assert str(caught.value) == f"{plain.base}/r/a.tgz: {message}"


def test_an_artifact_download_reports_its_progress(servers: tuple[Server, Server]) -> None:
    _, plain = servers
    plain.routes["/r/a.tgz"] = (200, None, b"x" * 1000)
    sink, arrived = io.BytesIO(), list[int]()
    fetcher = open_registry(plain.base + "/r", None)
    fetcher.download("a.tgz", sink, max_size=1000, progress=arrived.append)
    assert sink.getvalue() == b"x" * 1000
    assert sum(arrived) == 1000
    assert plain.seen[-1].get("If-None-Match") is None


def test_a_folder_registry_caps_files_at_their_edge(tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_bytes(b"x" * 10)
    fetcher = open_registry(str(tmp_path), None)
    assert fetcher.document("doc.json", max_size=10) == b"x" * 10
    fetcher.discard("doc.json")
    with pytest.raises(TooLargeError) as caught:
        fetcher.document("doc.json", max_size=9)
    assert (
        str(caught.value)
        == f"{tmp_path / 'doc.json'}: too large (expected at most 9 bytes, got 10)"
    )
    with pytest.raises(NotFoundError) as missing:
        fetcher.document("none.json")
    assert str(missing.value) == f"{tmp_path / 'none.json'}: not found"
    sink, arrived = io.BytesIO(), list[int]()
    fetcher.download("doc.json", sink, max_size=10, progress=arrived.append)
    assert (sink.getvalue(), arrived) == (b"x" * 10, [10])


def test_a_folder_registry_remembers_a_document_until_discarded(tmp_path: Path) -> None:
    (tmp_path / "doc.json").write_bytes(b"1")
    fetcher = open_registry(str(tmp_path), None)
    assert fetcher.document("doc.json") == b"1"
    (tmp_path / "doc.json").write_bytes(b"2")
    assert fetcher.document("doc.json") == b"1"
    fetcher.discard("doc.json")
    assert fetcher.document("doc.json") == b"2"


# --- the HTTP client itself (the gate's and the mirror's downloads) -----------------------


@pytest.mark.parametrize(("status", "kind"), [(404, NotFoundError), (403, FetchError)])
def test_the_client_names_an_unserved_download(
    servers: tuple[Server, Server], status: int, kind: type[Exception]
) -> None:
    _, plain = servers
    plain.routes["/a"] = (status, None, b"")
    with pytest.raises(kind) as caught:
        fetch(HttpClient(attempts=1), plain.base + "/a")
    assert type(caught.value) is kind
    assert str(caught.value) == (
        f"{plain.base}/a: download failed (expected HTTP 200, got {status})"
    )


def test_the_client_reports_progress_and_counts_requests(servers: tuple[Server, Server]) -> None:
    _, plain = servers
    plain.routes["/a"] = (302, "/b", b"")
    plain.routes["/b"] = (200, None, b"y" * 300)
    client, sink, arrived = HttpClient(attempts=1), io.BytesIO(), list[int]()
    client.download(plain.base + "/a", sink, max_size=300, progress=arrived.append)
    assert (sink.getvalue(), sum(arrived)) == (b"y" * 300, 300)
    assert client.stats.requests == 2


def test_the_client_refuses_a_url_without_a_scheme_in_full() -> None:
    with pytest.raises(FetchError) as caught:
        fetch(HttpClient(attempts=1), "example.org/a")
    assert str(caught.value) == (
        "example.org/a: refusing to fetch (expected a http or https URL, got no scheme)"
    )
