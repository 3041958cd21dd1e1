"""The folder store: a build published to a directory, as a static web server serves it."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from builder.common.files import sha256_of_file, write_atomic
from builder.publish.storage import ConflictError, Head, StorageError, Stored


class LocalStorage:
    """A folder, as `plugindex serve` or any static web server would serve it.

    Writes are atomic (temporary file, then rename). Conditional writes hold an
    exclusive lock on `.plugindex/lock` while they compare and write, so two
    publishers on one machine cannot both win. Headers are not stored: the web
    server serving the folder decides them.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def where(self, key: str) -> str:
        """Return the file path of `key`."""
        return str(self.root / key)

    def get(self, key: str) -> Stored | None:
        """Read a file; its tag is its sha256."""
        try:
            data = (self.root / key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StorageError(f"{self.where(key)}: cannot read ({e.strerror})") from e
        return Stored(data, hashlib.sha256(data).hexdigest())

    def head(self, key: str) -> Head | None:
        """Return a file's size and sha256 (read and hashed: a folder keeps no metadata)."""
        try:
            sha256, size = sha256_of_file(self.root / key)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise StorageError(f"{self.where(key)}: cannot read ({e.strerror})") from e
        return Head(size, sha256)

    def put(
        self,
        key: str,
        body: bytes | Path,
        *,
        content_type: str,
        cache_control: str,
        if_tag: str | None = None,
        if_absent: bool = False,
        sha256: str | None = None,  # not kept: `head` hashes the file itself
    ) -> str:
        """Write a file atomically, comparing first under a lock when asked to."""
        target = self.root / key
        try:
            if if_tag is None and not if_absent:
                return _write(target, body)
            with self._locked():
                current = self.get(key)
                if (if_absent and current is not None) or (
                    if_tag is not None and (current is None or current.tag != if_tag)
                ):
                    raise ConflictError(f"{self.where(key)}: changed by someone else")
                return _write(target, body)
        except OSError as e:
            raise StorageError(
                f"{self.where(key)}: cannot write ({e.strerror}: {e.filename})"
            ) from e

    def delete(self, key: str) -> None:
        """Remove a file and the folders it leaves empty."""
        target = self.root / key
        try:
            target.unlink(missing_ok=True)
        except OSError as e:
            raise StorageError(f"{self.where(key)}: cannot delete ({e.strerror})") from e
        parent = target.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def delete_many(self, keys: Sequence[str]) -> None:
        """Remove files one by one (a folder has no batch delete to gain from)."""
        for key in keys:
            self.delete(key)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.root / ".plugindex" / "lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with lock.open("a") as stream:
            fcntl.flock(stream, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(stream, fcntl.LOCK_UN)


def _write(target: Path, body: bytes | Path) -> str:
    """Write `body` atomically (a file is copied chunk by chunk); return its sha256."""
    # Readable by the web server serving the folder: the temporary file is private.
    if isinstance(body, bytes):
        write_atomic(target, body, mode=0o644)
        return hashlib.sha256(body).hexdigest()
    with body.open("rb") as source:
        write_atomic(target, source, mode=0o644)
    return sha256_of_file(body)[0]
