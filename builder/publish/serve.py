"""Serve a build folder on the loopback interface, as a bucket (or its CDN) would serve it.

Directories serve their `index.html`, unknown paths the build's 404 page with status
404, and every answer carries the headers `builder.common.layout` gives a store:
Cache-Control by path, and on pages the Content-Security-Policy.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import http.server
import os
import urllib.parse
from pathlib import Path
from typing import Any

from builder.common.layout import CONTENT_TYPES, NOT_FOUND_PAGE, SECURITY_HEADERS, cache_control


class BuildRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with ETags, conditional GETs, and no dot-files or listings."""

    extensions_map = {  # noqa: RUF012 - the base class declares it as a plain attribute
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        **CONTENT_TYPES,
    }
    server_version = "plugindex-serve"
    sys_version = ""

    def send_head(self) -> Any:
        # Decoded first: `%2e` is a dot too.
        path = urllib.parse.unquote(self.path.split("?", 1)[0].split("#", 1)[0])
        if any(part.startswith(".") for part in path.replace("\\", "/").split("/") if part):
            return self._not_found()
        local = Path(self.translate_path(self.path))
        if local.is_dir():
            if not path.endswith("/"):  # relative links in the page need the slash
                self.send_response(301)
                self.send_header("Location", path + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            local = local / "index.html"
        try:
            info = local.stat()
        except OSError:
            return self._not_found()
        if not local.is_file():
            return self._not_found()
        etag = (
            '"'
            + hashlib.sha256(
                f"{info.st_mtime_ns}:{info.st_size}:{info.st_ino}".encode()
            ).hexdigest()[:32]
            + '"'
        )
        if etag in {t.strip() for t in self.headers.get("If-None-Match", "").split(",")}:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.end_headers()
            return None
        stream = local.open("rb")
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(local)))
        self.send_header("Content-Length", str(info.st_size))
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", email.utils.formatdate(info.st_mtime, usegmt=True))
        self.send_header("Access-Control-Allow-Origin", "*")
        self._send_store_headers(local)
        self.end_headers()
        return stream

    def _send_store_headers(self, local: Path) -> None:
        rel = local.relative_to(self.directory).as_posix()
        self.send_header("Cache-Control", cache_control(rel))
        if local.suffix == ".html":
            for name, value in SECURITY_HEADERS.items():
                self.send_header(name, value)

    def _not_found(self) -> None:
        """Answer 404 with the build's own page when it has one, as the bucket does."""
        page = Path(self.directory) / NOT_FOUND_PAGE
        try:
            body = page.read_bytes()
        except OSError:
            self.send_error(404, "Not found")
            return
        self.send_response(404)
        self.send_header("Content-Type", CONTENT_TYPES[".html"])
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("PLUGINDEX_SERVE_QUIET") != "1":
            super().log_message(format, *args)


def make_server(
    directory: Path, host: str = "127.0.0.1", port: int = 8000
) -> http.server.ThreadingHTTPServer:
    """Return a server for `directory` (port 0 picks a free port)."""
    handler = functools.partial(BuildRequestHandler, directory=str(directory))
    return http.server.ThreadingHTTPServer((host, port), handler)
