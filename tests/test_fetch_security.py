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
from builder.common.http_client import HttpClient
from builder.common.limits import DEFAULT_LIMITS

# path -> (status, Location header or None, body)
Routes = dict[str, tuple[int, str | None, bytes]]


class _Handler(BaseHTTPRequestHandler):
    routes: ClassVar[Routes] = {}

    def do_GET(self) -> None:
        status, location, body = self.routes.get(self.path, (404, None, b""))
        self.send_response(status)
        if location is not None:
            self.send_header("Location", location)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


class Server:
    """A local HTTP(S) server whose routes a test sets."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        routes: Routes = {}
        handler = type("Handler", (_Handler,), {"routes": routes})
        self.routes = routes
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
