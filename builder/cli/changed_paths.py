"""The paths `build --changed` is given: NUL-terminated, or lines as git prints them.

Made with `git diff --name-only --no-renames [-z] OLD NEW`: a file moved from one
plugin folder to another is otherwise listed at its new path alone, and the folder it
left would keep its cached listing.
"""

from __future__ import annotations

import codecs
import os
from typing import BinaryIO

from builder.common.errors import PlugindexError


def paths_listed(listing: BinaryIO) -> list[str]:
    """Return the paths of a `--changed` listing: NUL-terminated if it holds a NUL,
    else one per line."""
    try:
        data = listing.read()
    except OSError as e:
        raise PlugindexError(f"{listing.name}: cannot read the changed paths ({e.strerror})") from e
    if b"\0" in data:
        paths = data.split(b"\0")
    else:
        paths = [_unquoted(line.removesuffix(b"\r")) for line in data.split(b"\n")]
    return [os.fsdecode(path) for path in paths if path.strip()]


def _unquoted(line: bytes) -> bytes:
    """Return a line of `git diff --name-only` as the path it names.

    Git puts a path with a byte outside printable ASCII (or a quote, a backslash) in
    double quotes, with C escapes and octal bytes (`core.quotePath`).
    """
    if len(line) < 2 or not (line.startswith(b'"') and line.endswith(b'"')):
        return line
    try:
        return codecs.escape_decode(line[1:-1])[0]
    except ValueError:
        return line
