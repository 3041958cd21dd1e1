"""Atomic file writes and streamed digests: the two file mechanisms every stage shares."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20  # bytes read at a time: a large file is never held whole in memory


def write_atomic(
    path: Path, data: bytes | BinaryIO, *, durable: bool = False, mode: int | None = None
) -> None:
    """Write a file whole or not at all: a temp file in the same folder, then rename.

    With `durable`, the bytes are flushed to disk before the rename (state a user
    relies on across a crash: the lockfile, pinned keys); `mode` sets the permission
    bits, since `mkstemp` makes the temp file private. A stream is copied in chunks.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as stream:
            if isinstance(data, bytes):
                stream.write(data)
            else:
                shutil.copyfileobj(data, stream, CHUNK)
            if durable:
                stream.flush()
                os.fsync(stream.fileno())
        if mode is not None:
            os.chmod(temp, mode)  # noqa: PTH101 - the temp file is a str path from mkstemp
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_if_changed(path: Path, data: bytes, *, durable: bool = False) -> bool:
    """Write `data` atomically unless the file already holds exactly it; say if it wrote.

    For small state written on every run (a pinned root, a page list): an unchanged
    file is neither rewritten nor has its mtime moved.
    """
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass  # missing or unreadable: write it
    write_atomic(path, data, durable=durable)
    return True


def sha256_of_stream(stream: BinaryIO) -> tuple[str, int]:
    """Return the hex sha256 and the size of everything left in a stream."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def sha256_of_file(path: Path) -> tuple[str, int]:
    """Return the hex sha256 and the size of a file, read in chunks."""
    with path.open("rb") as stream:
        return sha256_of_stream(stream)


class HashingWriter:
    """A sink that hashes and counts what passes through it on the way to another sink."""

    def __init__(self, sink: BinaryIO | None = None) -> None:
        self.sink = sink
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes, /) -> int:
        """Hash, count and pass on the next bytes."""
        self.digest.update(data)
        self.size += len(data)
        if self.sink is not None:
            self.sink.write(data)
        return len(data)

    def hexdigest(self) -> str:
        """Return the hex sha256 of everything written so far."""
        return self.digest.hexdigest()
