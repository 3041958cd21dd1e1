"""Fetch: a registry's documents and artifacts, over HTTP(S) or from a local folder.

Two implementations of one small protocol. Over HTTP, documents are cached in the
user cache folder and revalidated with `If-None-Match` / `If-Modified-Since` (a 304
reuses the cached bytes); each document is fetched at most once per process; 5xx
answers and connection failures are retried with exponential backoff, 429 after the
server's `Retry-After`; every body is capped in size and time. Nothing fetched here is
trusted: callers check signatures and checksums.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import io
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urljoin, urlsplit

import urllib3

from builder import __version__
from builder.common.errors import FetchError

log = logging.getLogger(__name__)

USER_AGENT = f"plugindex/{__version__}"
MAX_DOCUMENT_SIZE = 8 * 1024 * 1024  # bytes: a per-plugin document with many versions
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_CHUNK = 1 << 16
OFFLINE_HINT = "check the network, or use --offline to work from the cache"

Progress = Callable[[int], None]


class Sink(Protocol):
    """Where a download's bytes go (a file, a buffer, a hashing wrapper)."""

    def write(self, data: bytes, /) -> int:
        """Take the next bytes."""
        ...


class NotFoundError(FetchError):
    """The registry has no such file (HTTP 404, or no such local file)."""


class TooLargeError(FetchError):
    """A body went past its size cap."""


class Fetcher(Protocol):
    """Where a registry's files come from."""

    location: str  # the registry root, for messages

    def url_of(self, ref: str) -> str:
        """Return the full URL (or path) of a registry-relative reference."""
        ...

    def document(self, path: str, *, max_size: int = MAX_DOCUMENT_SIZE) -> bytes:
        """Return a (small, mutable) document's bytes, at most once per process."""
        ...

    def download(
        self, ref: str, sink: Sink, *, max_size: int, progress: Progress | None = None
    ) -> None:
        """Stream an artifact into `sink`, stopping past `max_size` bytes."""
        ...

    def discard(self, path: str) -> None:
        """Forget a document that failed verification, so the next fetch is a full one."""
        ...


@dataclass
class Stats:
    """Requests made by one fetcher (for `-v` and the benchmark)."""

    requests: int = 0
    conditional: int = 0
    not_modified: int = 0
    downloaded: int = 0  # body bytes received


def _reason(error: Exception) -> str:
    """Return the short reason of a connection error ("Connection refused")."""
    text = str(error)
    found = re.findall(r"\[Errno -?\d+\] ([^)'\"]+)", text)
    if found:
        return str(found[-1]).strip().lower()
    if isinstance(error, urllib3.exceptions.TimeoutError):
        return "timed out"
    return type(error).__name__


def retry_after(value: str | None, default: float) -> float:
    """Return the seconds a `Retry-After` header asks for (seconds or an HTTP date)."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, when.timestamp() - time.time())


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


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
        timeout: float = 30.0,  # seconds per connect or read
        deadline: float = 600.0,  # seconds for a whole body
    ) -> None:
        self.location = base_url if base_url.endswith("/") else base_url + "/"
        self.cache_dir = cache_dir
        self.offline = offline
        self.attempts = attempts
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.deadline = deadline
        self.stats = Stats()
        self._memo: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._pool = urllib3.PoolManager(
            maxsize=8,
            retries=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            headers={"User-Agent": USER_AGENT},
        )

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

    def _cache_files(self, url: str) -> tuple[Path, Path] | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        folder = self.cache_dir / "http" / digest[:2]
        return folder / f"{digest}.body", folder / f"{digest}.json"

    def _cached(self, url: str) -> tuple[dict[str, str], bytes] | None:
        files = self._cache_files(url)
        if files is None:
            return None
        try:
            meta = json.loads(files[1].read_bytes())
            body = files[0].read_bytes()
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict) or meta.get("url") != url:
            return None
        return meta, body

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
            _write_atomic(files[0], body)
            _write_atomic(files[1], json.dumps(meta).encode("utf-8"))
        except OSError as e:
            log.warning("cannot write the cache (%s): %s", files[0], e)

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

    def _get(self, url: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        """GET `url`, following safe redirects and retrying what is worth retrying."""
        attempt = 0
        redirects = 0
        while True:
            attempt += 1
            try:
                response = self._pool.request(
                    "GET", url, headers=headers, preload_content=False, redirect=False
                )
            except urllib3.exceptions.HTTPError as e:
                # Retried once only: a refused connection rarely heals within seconds.
                if attempt >= min(2, self.attempts):
                    raise FetchError(f"{url}: cannot connect ({_reason(e)}); {OFFLINE_HINT}") from e
                self._wait(url, f"cannot connect ({_reason(e)})", self._backoff(attempt))
                continue
            self.stats.requests += 1
            if response.status in _REDIRECTS and response.headers.get("Location"):
                target = urljoin(url, response.headers["Location"])
                response.drain_conn()
                response.release_conn()
                redirects += 1
                if redirects > _MAX_REDIRECTS or urlsplit(target).scheme not in {"http", "https"}:
                    raise FetchError(f"{url}: too many or unsafe redirects (last to {target})")
                if url.startswith("https:") and not target.startswith("https:"):
                    raise FetchError(f"{url}: redirected to {target} (expected an https URL)")
                url, attempt = target, attempt - 1
                continue
            if response.status not in RETRY_STATUSES:
                return response
            delay = self._backoff(attempt)
            if response.status in {429, 503} and "Retry-After" in response.headers:
                delay = retry_after(response.headers.get("Retry-After"), delay)
            response.drain_conn()
            response.release_conn()
            what = "rate limited" if response.status == 429 else "server error"
            if attempt >= self.attempts:
                raise FetchError(
                    f"{url}: {what} (expected HTTP 200, got {response.status} "
                    f"after {attempt} attempts); try again later"
                )
            if delay > self.max_retry_after:
                raise FetchError(
                    f"{url}: {what} (HTTP {response.status}); the server asks to retry "
                    f"after {delay:.0f} s; try again later"
                )
            self._wait(url, f"HTTP {response.status}", delay)

    def _backoff(self, attempt: int) -> float:
        return float(self.backoff * 2 ** (attempt - 1))

    def _wait(self, url: str, why: str, delay: float) -> None:
        log.info("%s: %s; retrying in %.1f s", url, why, delay)
        time.sleep(delay)

    def _stream(
        self,
        url: str,
        response: urllib3.BaseHTTPResponse,
        sink: Sink,
        max_size: int,
        progress: Progress | None,
    ) -> None:
        """Copy a 200 response's body into `sink`, capped in size and in time."""
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_size:
            raise TooLargeError(
                f"{url}: too large (expected at most {max_size} bytes, "
                f"the server announces {declared})"
            )
        too_slow = f"{url}: too slow (not complete after {self.deadline:g} s)"
        # A server dripping a byte at a time would keep every read alive, so read what
        # has arrived (read1) and, at the deadline, cut the socket from another thread:
        # a read waiting then returns at once.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            with contextlib.suppress(Exception):  # finished or released meanwhile
                response.shutdown()

        timer = threading.Timer(self.deadline, expire)
        timer.daemon = True
        timer.start()
        received = 0
        try:
            while True:
                try:
                    chunk = response.read1(_CHUNK)
                except urllib3.exceptions.HTTPError as e:
                    if expired.is_set():
                        raise FetchError(too_slow) from e
                    raise FetchError(
                        f"{url}: connection lost ({_reason(e)}); {OFFLINE_HINT}"
                    ) from e
                if expired.is_set():
                    raise FetchError(too_slow)
                if not chunk:
                    break
                received += len(chunk)
                if received > max_size:
                    raise TooLargeError(
                        f"{url}: too large (expected at most {max_size} bytes, got more)"
                    )
                sink.write(chunk)
                if progress is not None:
                    progress(len(chunk))
        finally:
            timer.cancel()
            self.stats.downloaded += received

    def document(self, path: str, *, max_size: int = MAX_DOCUMENT_SIZE) -> bytes:
        """Return a document, from memory, else revalidated against the cache."""
        with self._lock:
            if path in self._memo:
                return self._memo[path]
        url = self.url_of(path)
        cached = self._cached(url)
        if self.offline:
            if cached is None:
                raise FetchError(f"{url}: not in the cache (run once without --offline first)")
            body = cached[1]
        else:
            body = self._revalidate(url, cached, max_size)
        with self._lock:
            self._memo[path] = body
        return body

    def _revalidate(
        self, url: str, cached: tuple[dict[str, str], bytes] | None, max_size: int
    ) -> bytes:
        headers = {}
        if cached is not None:
            if "etag" in cached[0]:
                headers["If-None-Match"] = cached[0]["etag"]
            if "last_modified" in cached[0]:
                headers["If-Modified-Since"] = cached[0]["last_modified"]
        if headers:
            self.stats.conditional += 1
        response = self._get(url, headers)
        try:
            if response.status == 304 and cached is not None:
                self.stats.not_modified += 1
                return cached[1]
            if response.status == 404:
                raise NotFoundError(f"{url}: not found (HTTP 404)")
            if response.status != 200:
                raise FetchError(
                    f"{url}: unexpected answer (expected HTTP 200, got {response.status})"
                )
            buffer = io.BytesIO()
            self._stream(url, response, buffer, max_size, None)
        except BaseException:
            response.close()
            raise
        finally:
            response.release_conn()
        body = buffer.getvalue()
        self._store(url, body, response.headers)
        return body

    def download(
        self, ref: str, sink: Sink, *, max_size: int, progress: Progress | None = None
    ) -> None:
        """Stream an artifact into `sink` (artifacts are immutable: never revalidated)."""
        url = self.url_of(ref)
        if self.offline:
            raise FetchError(f"{url}: not in the cache (run once without --offline first)")
        response = self._get(url, {})
        try:
            if response.status == 404:
                raise NotFoundError(f"{url}: not found (HTTP 404)")
            if response.status != 200:
                raise FetchError(
                    f"{url}: download failed (expected HTTP 200, got {response.status})"
                )
            self._stream(url, response, sink, max_size, progress)
        except BaseException:
            response.close()
            raise
        finally:
            response.release_conn()


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

    def document(self, path: str, *, max_size: int = MAX_DOCUMENT_SIZE) -> bytes:
        """Return a file's bytes (once per process)."""
        if path not in self._memo:
            with self._open(path, max_size) as stream:
                self._memo[path] = stream.read(max_size + 1)
        return self._memo[path]

    def discard(self, path: str) -> None:
        """Forget a document read earlier (the folder itself is left alone)."""
        self._memo.pop(path, None)

    def download(
        self, ref: str, sink: Sink, *, max_size: int, progress: Progress | None = None
    ) -> None:
        """Copy a file into `sink`."""
        with self._open(ref, max_size) as stream:
            copied = 0
            while chunk := stream.read(_CHUNK):
                copied += len(chunk)
                if copied > max_size:
                    raise TooLargeError(f"{ref}: too large (expected at most {max_size} bytes)")
                sink.write(chunk)
                if progress is not None:
                    progress(len(chunk))


def open_registry(location: str, cache_dir: Path | None, *, offline: bool = False) -> Fetcher:
    """Return the fetcher for a registry URL (http, https, file) or folder."""
    scheme = urlsplit(location).scheme
    if scheme in {"http", "https"}:
        return HttpFetcher(location, cache_dir, offline=offline)
    if scheme == "file":
        return LocalFetcher(Path(urlsplit(location).path))
    if scheme and len(scheme) > 1:  # one letter: a Windows drive
        raise FetchError(f"{location}: unsupported registry (expected an http(s) URL or a folder)")
    return LocalFetcher(Path(location))
