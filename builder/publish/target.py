"""Open the store a publish target names: `s3://bucket/prefix` or a folder path."""

from __future__ import annotations

from pathlib import Path

from builder.publish.folder import LocalStorage
from builder.publish.s3 import S3Storage
from builder.publish.storage import Storage, StorageError


def open_target(target: str) -> Storage:
    """Return the store for a publish target: `s3://bucket/prefix` or a folder path."""
    if target.startswith("s3://"):
        bucket, _, prefix = target[len("s3://") :].partition("/")
        if not bucket:
            raise StorageError(f"{target}: expected s3://bucket/prefix")
        return S3Storage(bucket, prefix)
    if "://" in target:
        raise StorageError(f"{target}: expected s3://bucket/prefix or a folder path")
    return LocalStorage(Path(target))
