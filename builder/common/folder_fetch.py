"""A registry in a local folder (a build output), read in place: the second fetcher.

It answers like the HTTP fetcher (`builder.common.fetch`): the same errors for a
missing or oversized file, the same cancellation, and never a file outside the folder.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from builder.common.cancel import check_cancel
from builder.common.errors import FetchError
from builder.common.http_client import CHUNK, NotFoundError, Progress, Sink, TooLargeError
from builder.common.limits import DEFAULT_LIMITS


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
        max_size: int = DEFAULT_LIMITS.document_bytes,
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
