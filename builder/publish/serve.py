"""Serve a build folder on the loopback interface, as a bucket would serve it."""

from __future__ import annotations

import email.utils
import functools
import hashlib
import http.server
import os
import urllib.parse
from pathlib import Path
from typing import Any

from builder.common.layout import CONTENT_TYPES


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
            self.send_error(404, "Not found")
            return None
        local = Path(self.translate_path(self.path))
        if local.is_dir():
            index = local / "index.html"
            if not index.is_file():
                self.send_error(404, "Not found")
                return None
            local = index
        try:
            info = local.stat()
        except OSError:
            self.send_error(404, "Not found")
            return None
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
        self.end_headers()
        return stream

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("PLUGINDEX_SERVE_QUIET") != "1":
            super().log_message(format, *args)


def make_server(
    directory: Path, host: str = "127.0.0.1", port: int = 8000
) -> http.server.ThreadingHTTPServer:
    """Return a server for `directory` (port 0 picks a free port)."""
    handler = functools.partial(BuildRequestHandler, directory=str(directory))
    return http.server.ThreadingHTTPServer((host, port), handler)
