"""Where a build is published: the small protocol every store implements, and its errors.

Keys are POSIX paths relative to the registry root (`index/au/th/auth-jwt.json`);
each store maps them under its own root or prefix. Six operations are all that
publishing needs: read an object with its version tag, look at one without reading
it (its size and what the store knows of its content, to find what went missing),
write one (optionally only if its version tag is still the one read: a
compare-and-swap), delete one or many (S3 deletes up to 1,000 keys in one
request), and say where a key lives for messages. The two
real stores are `folder.LocalStorage` and `s3.S3Storage`; `target.open_target`
picks one for a target string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from builder.common.errors import PlugindexError


class StorageError(PlugindexError):
    """A store could not be read or written (credentials, network, permissions)."""


class ConflictError(StorageError):
    """A conditional write failed: someone else changed the object since it was read."""


@dataclass(frozen=True)
class Stored:
    data: bytes
    tag: str  # the store's version tag (an ETag): changes whenever the object does


@dataclass(frozen=True)
class Head:
    """What a store says of an object without sending it."""

    size: int  # bytes
    # The sha256 of its content as far as the store knows it (S3: the one recorded
    # when plugindex uploaded it; a folder: computed), None when it cannot tell.
    sha256: str | None
    md5: str | None = None  # the MD5 of its content, when the store's tag is one


class Storage(Protocol):
    """A place to publish to."""

    def where(self, key: str) -> str:
        """Return where `key` lives, for messages (`s3://bucket/prefix/key`, a path)."""
        ...

    def get(self, key: str) -> Stored | None:
        """Return an object and its version tag, or None when it does not exist."""
        ...

    def head(self, key: str) -> Head | None:
        """Return an object's size and what the store knows of its content, or None."""
        ...

    def put(
        self,
        key: str,
        body: bytes | Path,
        *,
        content_type: str,
        cache_control: str,
        if_tag: str | None = None,
        if_absent: bool = False,
        sha256: str | None = None,
    ) -> str:
        """Write an object; return its new tag.

        With `if_tag`, only if the object's tag is still that one; with `if_absent`,
        only if there is none. Raises ConflictError otherwise. `sha256`, the body's
        hash, is kept with the object where the store can (so `head` can tell it).
        """
        ...

    def delete(self, key: str) -> None:
        """Delete an object (no error when it is already gone)."""
        ...

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete objects in as few requests as the store allows (gone ones are no error)."""
        ...
