"""The one HTTP download path: a pooled GET with our retry, redirect, size and time policy.

Used by the registry fetcher (`builder.common.fetch`) for a registry's documents and
artifacts, and by the build and the gate for authors' artifact URLs. 5xx answers and
connection failures are retried with exponential backoff, 429 after the server's
`Retry-After`; redirects go only to allowed schemes and never from https to http;
every body is capped in size and in time (a server dripping bytes cannot stall us).
A client given a `display` shows each download over a second by its file name
(`builder.common.progress`: on a terminal only).
A client made with `public_only` (authors' artifact URLs) connects only to public
addresses (`builder.common.address_guard`), on the first request and every redirect.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import urllib3

from builder import __version__
from builder.common.address_guard import (
    NonPublicAddressError,
    PublicHTTPPool,
    PublicHTTPSPool,
    non_public_reason,
    public_address,
)
from builder.common.errors import FetchError
from builder.common.limits import DEFAULT_LIMITS, Limits
from builder.common.progress import TransferDisplay

log = logging.getLogger(__name__)

# Callers know the guard's names from here.
__all__ = [
    "CHUNK",
    "OFFLINE_HINT",
    "HttpClient",
    "NonPublicAddressError",
    "NotFoundError",
    "Progress",
    "Sink",
    "Stats",
    "TooLargeError",
    "non_public_reason",
    "public_address",
    "retry_after",
]

USER_AGENT = f"plugindex/{__version__}"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 1 << 16  # bytes read at a time
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


def _both(first: Progress | None, second: Progress) -> Progress:
    """Return a progress callback that tells `first` (if any) and then `second`."""
    if first is None:
        return second

    def both(count: int) -> None:
        first(count)
        second(count)

    return both


@dataclass
class Stats:
    """Requests made by one client (for `-v` and the benchmark)."""

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
    cut = re.search(r"IncompleteRead\((\d+) bytes read, (\d+) more expected\)", text)
    if cut:  # the server closed the connection in the middle of the body
        return f"closed after {cut[1]} bytes, {cut[2]} more expected"
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


class HttpClient:
    """A pool of HTTP(S) connections that fetches under one policy (see the module)."""

    def __init__(
        self,
        *,
        attempts: int = 4,
        backoff: float = 0.5,  # seconds before the first retry; doubled each time
        max_retry_after: float = 120.0,  # seconds: a longer Retry-After fails at once
        timeout: float = 30.0,  # seconds per connect or read
        deadline: float = 600.0,  # seconds for a whole body
        connect_timeout: float | None = None,  # seconds to connect (default: `timeout`)
        schemes: Iterable[str] = ("http", "https"),  # what a redirect may lead to
        hint: str = OFFLINE_HINT,  # what to try when a server cannot be reached
        limits: Limits = DEFAULT_LIMITS,
        public_only: bool = False,  # connect only to public addresses (see the module)
        display: TransferDisplay | None = None,  # shows each `download` by its file name
    ) -> None:
        self.attempts = attempts
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.deadline = deadline
        self.read_timeout = timeout
        self.schemes = frozenset(schemes)
        self.hint = hint
        self.limits = limits
        self.display = display
        self.stats = Stats()
        self._pool = urllib3.PoolManager(
            maxsize=8,
            retries=False,
            timeout=urllib3.Timeout(
                connect=timeout if connect_timeout is None else connect_timeout, read=timeout
            ),
        )
        if public_only:
            self._pool.pool_classes_by_scheme = {"http": PublicHTTPPool, "https": PublicHTTPSPool}

    def download(
        self, url: str, sink: Sink, *, max_size: int, progress: Progress | None = None
    ) -> None:
        """Stream the body of an absolute URL into `sink`; raise FetchError unless HTTP 200."""
        scheme = urlsplit(url).scheme
        if scheme not in self.schemes:
            raise FetchError(
                f"{url}: refusing to fetch (expected a {' or '.join(sorted(self.schemes))} "
                f"URL, got {scheme or 'no scheme'})"
            )
        with self.request(url, {}) as response:
            if response.status != 200:
                error = NotFoundError if response.status == 404 else FetchError
                raise error(f"{url}: download failed (expected HTTP 200, got {response.status})")
            if self.display is None:
                self.stream(url, response, sink, max_size, progress)
                return
            name = urlsplit(url).path.rsplit("/", 1)[-1] or url
            with self.display(name, max_size) as shown:
                self.stream(url, response, sink, max_size, _both(progress, shown))

    @contextlib.contextmanager
    def request(self, url: str, headers: dict[str, str]) -> Iterator[urllib3.BaseHTTPResponse]:
        """GET `url` (see `get`) and give its connection back to the pool afterwards."""
        response = self.get(url, headers)
        try:
            yield response
        except BaseException:
            response.close()  # a body not read to the end: the connection is not reusable
            raise
        finally:
            response.release_conn()

    def get(self, url: str, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        """GET `url`, following safe redirects and retrying what is worth retrying.

        The caller reads the body (see `stream`) and releases the connection.
        """
        attempt = 0
        redirects = 0
        while True:
            attempt += 1
            try:
                # Headers given to a request replace the pool's own: name ourselves here.
                response = self._pool.request(
                    "GET",
                    url,
                    headers={"User-Agent": USER_AGENT, **headers},
                    preload_content=False,
                    redirect=False,
                )
            except NonPublicAddressError as e:
                raise NonPublicAddressError(f"{url}: {e}") from e
            except urllib3.exceptions.ReadTimeoutError as e:
                # Connected, then silence: asking again would only double the wait.
                raise FetchError(f"{url}: {self.silent()}; {self.hint}") from e
            except urllib3.exceptions.HTTPError as e:
                # Retried once only: a refused connection rarely heals within seconds.
                if attempt >= min(2, self.attempts):
                    raise FetchError(f"{url}: cannot connect ({_reason(e)}); {self.hint}") from e
                self._wait(url, f"cannot connect ({_reason(e)})", self._backoff(attempt))
                continue
            self.stats.requests += 1
            if response.status in _REDIRECTS and response.headers.get("Location"):
                target = urljoin(url, response.headers["Location"])
                response.drain_conn()
                response.release_conn()
                redirects += 1
                self._check_redirect(url, target, redirects)
                url, attempt = target, attempt - 1
                continue
            if response.status not in RETRY_STATUSES:
                return response
            self._before_retry(url, response, attempt)

    def silent(self, *, stalled: bool = False) -> str:
        """Return what a read timeout means, for messages (`stalled`: in the middle of a body)."""
        if stalled:
            return f"no data within {self.read_timeout:g} s (the transfer stalled)"
        return (
            f"no answer within {self.read_timeout:g} s (the server accepted the "
            f"connection but sent nothing)"
        )

    def _check_redirect(self, url: str, target: str, redirects: int) -> None:
        """Refuse a redirect past the limit, to another scheme, or from https to http."""
        if redirects > self.limits.redirects or urlsplit(target).scheme not in self.schemes:
            raise FetchError(f"{url}: too many or unsafe redirects (last to {target})")
        if url.startswith("https:") and not target.startswith("https:"):
            raise FetchError(f"{url}: redirected to {target} (expected an https URL)")

    def _before_retry(self, url: str, response: urllib3.BaseHTTPResponse, attempt: int) -> None:
        """Wait before retrying a 429 or 5xx answer, or raise when retrying is pointless."""
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

    def stream(
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
                    chunk = response.read1(CHUNK)
                except urllib3.exceptions.HTTPError as e:
                    if expired.is_set():
                        raise FetchError(too_slow) from e
                    if isinstance(e, urllib3.exceptions.ReadTimeoutError):
                        raise FetchError(f"{url}: {self.silent(stalled=True)}; {self.hint}") from e
                    raise FetchError(f"{url}: connection lost ({_reason(e)}); {self.hint}") from e
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
