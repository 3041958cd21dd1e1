"""Fetch: a registry's documents and artifacts, over HTTP(S) or from a local folder.

Two implementations of one small protocol. Over HTTP, documents are cached in the
user cache folder and revalidated with `If-None-Match` / `If-Modified-Since` (a 304
reuses the cached bytes); each document is fetched at most once per process; the
requests themselves go through `builder.common.http_client` (retries, safe redirects,
size and time caps). Nothing fetched here is trusted: callers check signatures and
checksums.

A transfer can be cancelled: given a `cancel` event, the open response is closed the
moment it is set, so a read waiting on a stalled server returns at once. Every
request is logged at INFO (method, URL, status, bytes, time): `plugindex -v` shows them.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO, NamedTuple, Protocol
from urllib.parse import urljoin, urlsplit

import urllib3

from builder.common.errors import FetchError
from builder.common.exits import ExitCode
from builder.common.files import write_atomic
from builder.common.http_client import (
    CHUNK,
    HttpClient,
    NotFoundError,
    Progress,
    Sink,
    Stats,
    TooLargeError,
    retry_after,
)
from builder.common.limits import DEFAULT_LIMITS

# The errors and helpers callers know from here; they live with the HTTP client.
__all__ = [
    "MAX_DOCUMENT_SIZE",
    "CachedDocument",
    "CancelledTransferError",
    "Fetcher",
    "HttpFetcher",
    "LocalFetcher",
    "NotFoundError",
    "Progress",
    "Sink",
    "TooLargeError",
    "open_registry",
    "retry_after",
]

log = logging.getLogger(__name__)

MAX_DOCUMENT_SIZE = DEFAULT_LIMITS.document_bytes  # bytes: a plugin with many versions
CONNECT_TIMEOUT = 5.0  # seconds: a registry that takes longer to accept is unreachable
READ_TIMEOUT = 30.0  # seconds of silence before a request or a body is given up
_CANCEL_POLL = 0.05  # seconds: how often a watcher looks whether its transfer ended


class CancelledTransferError(FetchError):
    """A transfer was cancelled (Ctrl-C, or another transfer of the same command failed)."""

    exit_code = ExitCode.INTERRUPTED


class Fetcher(Protocol):
    """Where a registry's files come from."""

    location: str  # the registry root, for messages

    def url_of(self, ref: str) -> str:
        """Return the full URL (or path) of a registry-relative reference."""
        ...

    def document(
        self,
        path: str,
        *,
        max_size: int = MAX_DOCUMENT_SIZE,
        cancel: threading.Event | None = None,
    ) -> bytes:
        """Return a (small, mutable) document's bytes, at most once per process."""
        ...

    def download(
        self,
        ref: str,
        sink: Sink,
        *,
        max_size: int,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Stream an artifact into `sink`, stopping past `max_size` bytes."""
        ...

    def discard(self, path: str) -> None:
        """Forget a document that failed verification, so the next fetch is a full one."""
        ...

    def signed(self, ref: str) -> tuple[str, int] | None:
        """Return the sha256 and size the registry's signed metadata gives `ref`.

        None when the files come with no such metadata (a plain fetcher); a fetcher that
        has it refuses a file it does not sign.
        """
        ...


def check_cancel(url: str, cancel: threading.Event | None) -> None:
    """Raise CancelledTransferError once `cancel` is set."""
    if cancel is not None and cancel.is_set():
        raise CancelledTransferError(f"{url}: cancelled")


@contextmanager
def closed_on_cancel(
    url: str, response: urllib3.BaseHTTPResponse, cancel: threading.Event | None
) -> Iterator[None]:
    """Close `response` the moment `cancel` is set, and raise once the transfer returns.

    A read blocked on a stalled server then returns at once (the socket is shut down
    under it); whatever it returned is not used.
    """
    if cancel is None:
        yield
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if cancel.wait(_CANCEL_POLL):
                with suppress(Exception):  # already finished or released meanwhile
                    response.shutdown()
                return

    threading.Thread(target=watch, name="plugindex-cancel", daemon=True).start()
    try:
        yield
    except Exception:
        check_cancel(url, cancel)  # the shut-down socket's error means "cancelled"
        raise
    finally:
        finished.set()
    check_cancel(url, cancel)  # a body cut short by the shutdown is never used


class CachedDocument(NamedTuple):
    """A document kept in the HTTP cache, with the validators the server sent."""

    meta: dict[str, str]  # url, and etag / last_modified when the server gave them
    body: bytes


class CacheFiles(NamedTuple):
    """Where the HTTP cache keeps one URL's document."""

    body: Path
    meta: Path  # JSON: the URL and its validators


class HttpFetcher:
    """A registry served over HTTP(S), with a revalidating on-disk cache."""

    def __init__(
        self,
        base_url: str,
        cache_dir: Path | None,
        *,
        offline: bool = False,
        attempts: int = 4,
        backoff: float = 0.5,  # seconds before the first retry; doubled each time
        max_retry_after: float = 120.0,  # seconds: a longer Retry-After fails at once
        timeout: float = READ_TIMEOUT,  # seconds per read (and connect, unless given)
        deadline: float = 600.0,  # seconds for a whole body
        connect_timeout: float | None = None,  # seconds to connect
    ) -> None:
        self.location = base_url if base_url.endswith("/") else base_url + "/"
        self.cache_dir = cache_dir
        self.offline = offline
        self.http = HttpClient(
            attempts=attempts,
            backoff=backoff,
            max_retry_after=max_retry_after,
            timeout=timeout,
            deadline=deadline,
            connect_timeout=connect_timeout,
        )
        self._memo: dict[str, bytes] = {}
        self._lock = threading.Lock()

    @property
    def stats(self) -> Stats:
        """Return the requests made so far."""
        return self.http.stats

    def url_of(self, ref: str) -> str:
        """Return the absolute URL of `ref`: relative to the registry root, or http(s)."""
        url = urljoin(self.location, ref)
        scheme = urlsplit(url).scheme
        if scheme not in {"http", "https"} or (
            scheme == "http" and self.location.startswith("https:")
        ):
            raise FetchError(f"{ref}: refusing to fetch (expected an https URL, got {scheme}:)")
        return url

    # --- cache ------------------------------------------------------------------------

    def _cache_files(self, url: str) -> CacheFiles | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        folder = self.cache_dir / "http" / digest[:2]
        return CacheFiles(folder / f"{digest}.body", folder / f"{digest}.json")

    def _cached(self, url: str) -> CachedDocument | None:
        files = self._cache_files(url)
        if files is None:
            return None
        try:
            meta = json.loads(files.meta.read_bytes())
            body = files.body.read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("url") != url:
            return None
        return CachedDocument(meta, body)

    def _store(self, url: str, body: bytes, headers: urllib3.HTTPHeaderDict) -> None:
        files = self._cache_files(url)
        if files is None:
            return
        meta = {"url": url}
        for field, header in (("etag", "ETag"), ("last_modified", "Last-Modified")):
            if headers.get(header):
                meta[field] = headers[header]
        try:
            # The body first: a meta file never describes a body that is not there.
            write_atomic(files.body, body)
            write_atomic(files.meta, json.dumps(meta).encode("utf-8"))
        except OSError as e:
            log.warning("cannot write the cache (%s): %s", files.body, e)

    def discard(self, path: str) -> None:
        """Forget a document that failed verification: memo and cache entry both.

        Otherwise a tampered body stored with a genuine ETag would come back on every
        304 and every --offline run.
        """
        with self._lock:
            self._memo.pop(path, None)
        files = self._cache_files(self.url_of(path))
        for file in files or ():
            try:
                file.unlink(missing_ok=True)
            except OSError as e:
                log.warning("cannot remove %s from the cache: %s", file, e)

    # --- requests ---------------------------------------------------------------------

    def signed(self, ref: str) -> tuple[str, int] | None:
        """Return None: a registry read as it is carries no signed metadata of its own."""
        return None

    def document(
        self,
        path: str,
        *,
        max_size: int = MAX_DOCUMENT_SIZE,
        cancel: threading.Event | None = None,
    ) -> bytes:
        """Return a document, from memory, else revalidated against the cache."""
        with self._lock:
            if path in self._memo:
                return self._memo[path]
        url = self.url_of(path)
        cached = self._cached(url)
        if self.offline:
            if cached is None:
                raise FetchError(f"{url}: not in the cache (run once without --offline first)")
            body = cached.body
        else:
            body = self._revalidate(url, cached, max_size, cancel)
        with self._lock:
            self._memo[path] = body
        return body

    def _revalidate(
        self,
        url: str,
        cached: CachedDocument | None,
        max_size: int,
        cancel: threading.Event | None,
    ) -> bytes:
        headers = {}
        if cached is not None:
            if "etag" in cached.meta:
                headers["If-None-Match"] = cached.meta["etag"]
            if "last_modified" in cached.meta:
                headers["If-Modified-Since"] = cached.meta["last_modified"]
        if headers:
            self.stats.conditional += 1
        check_cancel(url, cancel)
        started = time.monotonic()
        with self.http.request(url, headers) as response, closed_on_cancel(url, response, cancel):
            if response.status == 304 and cached is not None:
                self.stats.not_modified += 1
                _logged(url, response.status, 0, started)
                return cached.body
            if response.status == 404:
                _logged(url, response.status, 0, started)
                raise NotFoundError(f"{url}: not found (HTTP 404)")
            if response.status != 200:
                _logged(url, response.status, 0, started)
                raise FetchError(
                    f"{url}: unexpected answer (expected HTTP 200, got {response.status})"
                )
            buffer = io.BytesIO()
            self.http.stream(url, response, buffer, max_size, None)
        body = buffer.getvalue()
        _logged(url, response.status, len(body), started)
        self._store(url, body, response.headers)
        return body

    def download(
        self,
        ref: str,
        sink: Sink,
        *,
        max_size: int,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Stream an artifact into `sink` (artifacts are immutable: never revalidated)."""
        url = self.url_of(ref)
        if self.offline:
            raise FetchError(f"{url}: not in the cache (run once without --offline first)")
        check_cancel(url, cancel)
        started = time.monotonic()
        counted = _Counting(sink)
        with self.http.request(url, {}) as response, closed_on_cancel(url, response, cancel):
            if response.status == 404:
                _logged(url, response.status, 0, started)
                raise NotFoundError(f"{url}: not found (HTTP 404)")
            if response.status != 200:
                _logged(url, response.status, 0, started)
                raise FetchError(
                    f"{url}: download failed (expected HTTP 200, got {response.status})"
                )
            try:
                self.http.stream(url, response, counted, max_size, progress)
            finally:
                _logged(url, response.status, counted.size, started)


class _Counting:
    """A sink that counts what passes through it (for the request log)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.size = 0

    def write(self, data: bytes, /) -> int:
        """Pass the bytes on, counting them."""
        self.size += len(data)
        return self.sink.write(data)


def _logged(url: str, status: int, size: int, started: float) -> None:
    """Log one request at INFO: what `plugindex -v` shows."""
    log.info("GET %s %d %d bytes %.2f s", url, status, size, time.monotonic() - started)


class LocalFetcher:
    """A registry in a local folder (a build output), read in place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)
        self._memo: dict[str, bytes] = {}

    def url_of(self, ref: str) -> str:
        """Return the path of `ref` inside the folder; refuse anything outside it."""
        if urlsplit(ref).scheme or ref.startswith("/") or ".." in ref.split("/"):
            raise FetchError(
                f"{ref}: a registry in a folder serves only files inside it "
                f"(expected a path relative to {self.root})"
            )
        return str(self.root / ref)

    def _open(self, ref: str, max_size: int) -> BinaryIO:
        file = Path(self.url_of(ref))
        try:
            stream = file.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"{file}: not found") from None
        except OSError as e:
            raise FetchError(f"{file}: cannot read ({e.strerror})") from e
        size = os.fstat(stream.fileno()).st_size
        if size > max_size:
            stream.close()
            raise TooLargeError(
                f"{file}: too large (expected at most {max_size} bytes, got {size})"
            )
        return stream

    def signed(self, ref: str) -> tuple[str, int] | None:
        """Return None: a folder read as it is carries no signed metadata of its own."""
        return None

    def document(
        self,
        path: str,
        *,
        max_size: int = MAX_DOCUMENT_SIZE,
        cancel: threading.Event | None = None,
    ) -> bytes:
        """Return a file's bytes (once per process)."""
        if path not in self._memo:
            check_cancel(path, cancel)
            with self._open(path, max_size) as stream:
                self._memo[path] = stream.read(max_size + 1)
        return self._memo[path]

    def discard(self, path: str) -> None:
        """Forget a document read earlier (the folder itself is left alone)."""
        self._memo.pop(path, None)

    def download(
        self,
        ref: str,
        sink: Sink,
        *,
        max_size: int,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Copy a file into `sink`."""
        with self._open(ref, max_size) as stream:
            copied = 0
            while chunk := stream.read(CHUNK):
                check_cancel(ref, cancel)
                copied += len(chunk)
                if copied > max_size:
                    raise TooLargeError(f"{ref}: too large (expected at most {max_size} bytes)")
                sink.write(chunk)
                if progress is not None:
                    progress(len(chunk))


def open_registry(
    location: str,
    cache_dir: Path | None,
    *,
    offline: bool = False,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
) -> Fetcher:
    """Return the fetcher for a registry URL (http, https, file) or folder.

    Over HTTP, a registry that does not accept a connection within `connect_timeout`
    seconds, or stays silent for `read_timeout` seconds, fails with a message that says so.
    """
    scheme = urlsplit(location).scheme
    if scheme in {"http", "https"}:
        return HttpFetcher(
            location,
            cache_dir,
            offline=offline,
            timeout=read_timeout,
            connect_timeout=connect_timeout,
        )
    if scheme == "file":
        return LocalFetcher(Path(urlsplit(location).path))
    if scheme and len(scheme) > 1:  # one letter: a Windows drive
        raise FetchError(f"{location}: unsupported registry (expected an http(s) URL or a folder)")
    return LocalFetcher(Path(location))
