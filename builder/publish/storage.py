"""Where a build is published: a small protocol with two real stores, a folder and S3.

Keys are POSIX paths relative to the registry root (`index/au/th/auth-jwt.json`);
each store maps them under its own root or prefix. Four operations are all that
publishing needs: read an object with its version tag, write one (optionally only
if its version tag is still the one read: a compare-and-swap), delete one, and say
where a key lives for messages.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from builder.common.errors import PlugindexError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_COPY_CHUNK = 1 << 20  # bytes read at a time: an artifact is never held whole in memory


class StorageError(PlugindexError):
    """A store could not be read or written (credentials, network, permissions)."""


class ConflictError(StorageError):
    """A conditional write failed: someone else changed the object since it was read."""


@dataclass(frozen=True)
class Stored:
    data: bytes
    tag: str  # the store's version tag (an ETag): changes whenever the object does


class Storage(Protocol):
    """A place to publish to."""

    def where(self, key: str) -> str:
        """Return where `key` lives, for messages (`s3://bucket/prefix/key`, a path)."""
        ...

    def get(self, key: str) -> Stored | None:
        """Return an object and its version tag, or None when it does not exist."""
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
    ) -> str:
        """Write an object; return its new tag.

        With `if_tag`, only if the object's tag is still that one; with `if_absent`,
        only if there is none. Raises ConflictError otherwise.
        """
        ...

    def delete(self, key: str) -> None:
        """Delete an object (no error when it is already gone)."""
        ...


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

    def put(
        self,
        key: str,
        body: bytes | Path,
        *,
        content_type: str,
        cache_control: str,
        if_tag: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Write a file atomically, comparing first under a lock when asked to."""
        target = self.root / key
        try:
            if if_tag is None and not if_absent:
                return self._write(target, body)
            with self._locked():
                current = self.get(key)
                if (if_absent and current is not None) or (
                    if_tag is not None and (current is None or current.tag != if_tag)
                ):
                    raise ConflictError(f"{self.where(key)}: changed by someone else")
                return self._write(target, body)
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

    @staticmethod
    def _write(target: Path, body: bytes | Path) -> str:
        """Write `body` to a temporary file, chunk by chunk, then rename; return its sha256."""
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as stream:
                if isinstance(body, bytes):
                    stream.write(body)
                    digest.update(body)
                else:
                    with body.open("rb") as source:
                        while chunk := source.read(_COPY_CHUNK):
                            stream.write(chunk)
                            digest.update(chunk)
            os.chmod(temporary, 0o644)  # noqa: PTH101 - mkstemp makes it private
            Path(temporary).replace(target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return digest.hexdigest()

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


class S3Storage:
    """An S3 bucket and prefix (AWS S3, SeaweedFS, MinIO, R2) through boto3.

    Credentials and endpoint come from the standard AWS chain (environment,
    profile, instance role; `AWS_ENDPOINT_URL` for other stores). botocore's
    "standard" retry mode retries throttling (503 SlowDown, 429) and 5xx answers
    with exponential backoff and jitter. Conditional writes use `If-Match` and
    `If-None-Match: *`, which S3 and SeaweedFS honour atomically.
    """

    def __init__(self, bucket: str, prefix: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client if client is not None else make_client()
        # Requests sent, by operation (retries included), for the summary and tests.
        self.requests: collections.Counter[str] = collections.Counter()
        self.bytes_sent = 0
        self._count_lock = threading.Lock()
        self.client.meta.events.register("before-send.s3", self._count)

    def _count(self, request: Any, **_: Any) -> None:
        body = request.body
        size = len(body) if isinstance(body, bytes | bytearray) else 0
        if size == 0 and hasattr(request, "headers"):
            size = int(request.headers.get("Content-Length", 0) or 0)
        with self._count_lock:
            self.requests[request.method] += 1
            self.bytes_sent += size

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def where(self, key: str) -> str:
        """Return the s3:// URL of `key`."""
        return f"s3://{self.bucket}/{self._key(key)}"

    def get(self, key: str) -> Stored | None:
        """Read an object; its tag is its ETag."""
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            return Stored(answer["Body"].read(), answer["ETag"])
        except Exception as e:
            if _code(e) in {"NoSuchKey", "404"}:
                return None
            raise _wrapped(e, self.where(key), "read") from e

    def put(
        self,
        key: str,
        body: bytes | Path,
        *,
        content_type: str,
        cache_control: str,
        if_tag: str | None = None,
        if_absent: bool = False,
    ) -> str:
        """Write an object with its headers, conditionally when asked to."""
        extra: dict[str, str] = {}
        if if_tag is not None:
            extra["IfMatch"] = if_tag
        if if_absent:
            extra["IfNoneMatch"] = "*"
        with contextlib.ExitStack() as stack:
            data: bytes | BinaryIO = body if isinstance(body, bytes) else b""
            if isinstance(body, Path):
                # A file is streamed: botocore reads it in chunks to sign and send it,
                # and seeks back to its start to retry.
                try:
                    data = stack.enter_context(body.open("rb"))
                except OSError as e:
                    raise StorageError(f"{body}: cannot read ({e.strerror})") from e
            try:
                answer = self.client.put_object(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    Body=data,
                    ContentType=content_type,
                    CacheControl=cache_control,
                    **extra,  # type: ignore[arg-type]
                )
            except Exception as e:
                if _code(e) in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                    raise ConflictError(f"{self.where(key)}: changed by someone else") from e
                raise _wrapped(e, self.where(key), "write") from e
        return answer["ETag"]

    def delete(self, key: str) -> None:
        """Delete an object."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as e:
            raise _wrapped(e, self.where(key), "delete") from e

    def init_bucket(self) -> list[str]:
        """Create the bucket if needed; allow public reads of the prefix only; allow CORS GET."""
        done: list[str] = []
        client = self.client
        try:
            try:
                client.head_bucket(Bucket=self.bucket)
            except Exception as e:
                if _code(e) not in {"404", "NoSuchBucket", "NotFound"}:
                    raise
                client.create_bucket(Bucket=self.bucket)
                done.append(f"created bucket {self.bucket}")
            scope = f"{self.prefix}/*" if self.prefix else "*"
            client.put_bucket_policy(
                Bucket=self.bucket,
                Policy=_public_read_policy(self.bucket, scope),
            )
            done.append(f"public read for s3://{self.bucket}/{scope}")
            client.put_bucket_cors(
                Bucket=self.bucket,
                CORSConfiguration={
                    "CORSRules": [
                        {
                            "AllowedMethods": ["GET", "HEAD"],
                            "AllowedOrigins": ["*"],
                            "AllowedHeaders": ["*"],
                            "ExposeHeaders": ["ETag"],
                            "MaxAgeSeconds": 3600,
                        }
                    ]
                },
            )
            done.append("CORS: GET and HEAD from any origin")
        except Exception as e:
            raise _wrapped(e, f"s3://{self.bucket}", "set up") from e
        return done


def _public_read_policy(bucket: str, scope: str) -> str:
    import json

    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicReadOfThePublishedPrefix",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject"],
                    "Resource": [f"arn:aws:s3:::{bucket}/{scope}"],
                }
            ],
        }
    )


def make_client() -> S3Client:
    """Return an S3 client from the standard AWS configuration, with retries and pooling."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "max_attempts": 8},
        max_pool_connections=32,
        connect_timeout=10,
        read_timeout=60,
        # Checksums only where S3 requires them: SeaweedFS, MinIO and R2 differ in
        # which of the newer flexible checksums they accept.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", config=config)


def _code(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _wrapped(error: Exception, where: str, action: str) -> StorageError:
    """Turn a boto3 error into one a person can act on."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
    )

    if isinstance(error, NoCredentialsError):
        return StorageError(
            f"{where}: no AWS credentials found (expected AWS_ACCESS_KEY_ID and "
            f"AWS_SECRET_ACCESS_KEY, a profile or a role)"
        )
    if isinstance(error, EndpointConnectionError):
        return StorageError(f"{where}: cannot {action} ({error})")
    if isinstance(error, ClientError):
        code = _code(error)
        message = error.response.get("Error", {}).get("Message", "")
        if code == "NoSuchBucket":
            return StorageError(
                f"{where}: the bucket does not exist (create it, or run publish with --init)"
            )
        return StorageError(f"{where}: cannot {action} ({code}: {message})".rstrip())
    if isinstance(error, BotoCoreError):
        return StorageError(f"{where}: cannot {action} ({error})")
    if isinstance(error, StorageError):
        return error
    return StorageError(f"{where}: cannot {action} ({type(error).__name__}: {error})")


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
