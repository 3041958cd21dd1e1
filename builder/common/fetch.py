"""Fetch: a registry's documents and artifacts, over HTTP(S) or from a local folder.

Two implementations of one small protocol: `HttpFetcher` here, `LocalFetcher` in
`builder.common.folder_fetch`. Over HTTP, documents are cached in the user cache folder
(`builder.common.http_cache`) and revalidated with `If-None-Match` /
`If-Modified-Since` (a 304 reuses the cached bytes); each document is fetched at most
once per process; the requests themselves go through `builder.common.http_client`
(retries, safe redirects, size and time caps). Nothing fetched here is trusted:
callers check signatures and checksums.

A transfer can be cancelled (`builder.common.cancel`): given a `cancel` event, the open
response is closed the moment it is set, so a read waiting on a stalled server returns
at once. Every request is logged at INFO (method, URL, status, bytes, time):
`plugindex -v` shows them.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin, urlsplit

from builder.common.cancel import CancelledTransferError, check_cancel, closed_on_cancel
from builder.common.errors import FetchError
from builder.common.folder_fetch import LocalFetcher
from builder.common.http_cache import CachedDocument, HttpCache
from builder.common.http_client import (
    HttpClient,
    NotFoundError,
    Progress,
    Sink,
    Stats,
    TooLargeError,
    retry_after,
)
from builder.common.limits import DEFAULT_LIMITS

# The errors and helpers callers know from here; they live with the HTTP client, the
# cancellation and the folder fetcher.
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
        self.cache = HttpCache(cache_dir)
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

    def discard(self, path: str) -> None:
        """Forget a document that failed verification: memo and cache entry both.

        Otherwise a tampered body stored with a genuine ETag would come back on every
        304 and every --offline run.
        """
        with self._lock:
            self._memo.pop(path, None)
        self.cache.forget(self.url_of(path))

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
        cached = self.cache.read(url)
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
        self.cache.store(url, body, response.headers)
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
