"""The HTTP fetcher's document cache: bodies with their validators, by URL, on disk.

A cached body is revalidated with `If-None-Match` / `If-Modified-Since` before use
(`builder.common.fetch`); this module only reads, writes and forgets entries. A body
is written before its meta file, so a meta file never describes a missing body.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import NamedTuple

import urllib3

from builder.common.files import write_atomic

log = logging.getLogger(__name__)


class CachedDocument(NamedTuple):
    """A document kept in the HTTP cache, with the validators the server sent."""

    meta: dict[str, str]  # url, and etag / last_modified when the server gave them
    body: bytes


class CacheFiles(NamedTuple):
    """Where the HTTP cache keeps one URL's document."""

    body: Path
    meta: Path  # JSON: the URL and its validators


class HttpCache:
    """Documents by URL under `<cache_dir>/http/`; no cache folder means no cache at all."""

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir

    def files(self, url: str) -> CacheFiles | None:
        """Return where `url`'s document is kept (None: no cache)."""
        if self.cache_dir is None:
            return None
        digest = hashlib.sha256(url.encode("utf-8")).hexdigest()
        folder = self.cache_dir / "http" / digest[:2]
        return CacheFiles(folder / f"{digest}.body", folder / f"{digest}.json")

    def read(self, url: str) -> CachedDocument | None:
        """Return `url`'s cached document, or None when there is none or it is unreadable."""
        files = self.files(url)
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

    def store(self, url: str, body: bytes, headers: urllib3.HTTPHeaderDict) -> None:
        """Keep `body` with the validators in `headers`; a failed write only logs."""
        files = self.files(url)
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

    def forget(self, url: str) -> None:
        """Remove `url`'s entry (a body that failed verification must not come back)."""
        for file in self.files(url) or ():
            try:
                file.unlink(missing_ok=True)
            except OSError as e:
                log.warning("cannot remove %s from the cache: %s", file, e)
