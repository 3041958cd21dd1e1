"""A registry's files as its signed metadata (TUF) names them: a `Fetcher` over a TufClient.

Everything the client reads goes through the `Fetcher` protocol, so the registry
documents, the search manifest and files, and the artifacts all come through here:
each is looked up in the signed targets, fetched at its consistent-snapshot path and
checked against the signed length and sha256 before anyone parses it (author
signatures are checked afterwards, as without TUF). A file the registry does not
sign does not exist for the client: a document is "not found" (a signed absence:
the message says the signed targets do not list it), an artifact refused; a file
it signs that the server does not serve is a download failure, not an absence. A
document whose signed hash is unchanged comes from the cache without a request.
"""

from __future__ import annotations

import threading

from builder.client.tuf_updater import TufClient
from builder.common.fetch import MAX_DOCUMENT_SIZE, NotFoundError, TooLargeError
from builder.common.http_client import Progress, Sink


class SignedFetcher:
    """Fetch only what the registry signed, checked (see the module)."""

    def __init__(self, client: TufClient) -> None:
        self.client = client
        self.location = client.fetcher.location
        self._memo: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def url_of(self, ref: str) -> str:
        """Return the URL (or path) of a registry-relative reference."""
        return self.client.fetcher.url_of(ref)

    def signed(self, ref: str) -> tuple[str, int] | None:
        """Return the sha256 and size the registry signed for `ref`; refuse an unsigned file."""
        info = self.client.target_info(ref)
        return info.sha256, info.size

    def document(
        self,
        path: str,
        *,
        max_size: int = MAX_DOCUMENT_SIZE,
        cancel: threading.Event | None = None,
    ) -> bytes:
        """Return a signed document's bytes, verified (at most once per process)."""
        with self._lock:
            if path in self._memo:
                return self._memo[path]
        info = self.client.find_target(path)
        if info is None:
            self.client.forget(path)  # a copy kept from when it was signed
            raise NotFoundError(
                f"{self.url_of(path)}: not found (the registry's signed targets do not list "
                f"it: removed, or never published)"
            )
        if info.size > max_size:
            raise TooLargeError(
                f"{self.url_of(path)}: too large (expected at most {max_size} bytes, "
                f"the registry signed {info.size})"
            )
        data = self.client.verified_target(info, cancel)
        with self._lock:
            self._memo[path] = data
        return data

    def download(
        self,
        ref: str,
        sink: Sink,
        *,
        max_size: int,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        """Stream a signed file into `sink`, checked against its signed length and sha256."""
        info = self.client.target_info(ref)
        if info.size > max_size:
            raise TooLargeError(
                f"{self.url_of(ref)}: too large (expected at most {max_size} bytes, "
                f"the registry signed {info.size})"
            )
        self.client.download_target(info, sink, progress, cancel=cancel)

    def discard(self, path: str) -> None:
        """Forget a document whose contents were refused: memo and cached copy both."""
        with self._lock:
            self._memo.pop(path, None)
        self.client.forget(path)
