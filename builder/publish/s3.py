"""The S3 store: a bucket and prefix through boto3, and the S3 conditional write.

Every write of the live record is conditional (`If-Match` on the tag read, or
`If-None-Match: *` for the first one): S3 and SeaweedFS check the condition and
write atomically, so two publishers can never both win. An unmet condition (412
PreconditionFailed, or 409 ConditionalRequestConflict while another conditional
write is in flight) is a `ConflictError`; every other boto3 error becomes a
`StorageError` that names the s3:// URL and what was expected.
"""

from __future__ import annotations

import collections
import contextlib
import json
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from builder.common.layout import NOT_FOUND_PAGE
from builder.publish.storage import ConflictError, Head, StorageError, Stored

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# The user metadata (`x-amz-meta-sha256`) in which an upload records its sha256.
SHA256_METADATA = "sha256"
# A single-part upload's ETag is the MD5 of its bytes (not so for multipart uploads,
# which have a `-N` suffix, nor under SSE-KMS, where a mismatch only means a re-upload).
_MD5_ETAG = re.compile(r'"?([0-9a-f]{32})"?')
_DELETE_BATCH = 1000  # keys in one DeleteObjects request at most (S3's limit)


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
        self.bytes_received = 0  # bodies read (GET)
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
            data = answer["Body"].read()
            with self._count_lock:
                self.bytes_received += len(data)
            return Stored(data, answer["ETag"])
        except Exception as e:
            if _code(e) in {"NoSuchKey", "404"}:
                return None
            raise _wrapped(e, self.where(key), "read") from e

    def head(self, key: str) -> Head | None:
        """Return an object's size, recorded sha256 and MD5 ETag (one HEAD request)."""
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as e:
            code = _code(e)
            if code in {"NoSuchKey", "404", "NotFound"}:
                return None
            if code in {"403", "Forbidden", "AccessDenied"}:
                # S3 answers a HEAD of a missing object with 403 to whoever may not
                # list the bucket: the object may simply be gone.
                raise StorageError(
                    f"{self.where(key)}: cannot check ({code}; without s3:ListBucket on "
                    f"the bucket S3 answers 403 for a missing object: grant it to the "
                    f"publisher, or check the credentials)"
                ) from e
            raise _wrapped(e, self.where(key), "check") from e
        md5 = _MD5_ETAG.fullmatch(answer.get("ETag", ""))
        return Head(
            size=int(answer["ContentLength"]),
            sha256=answer.get("Metadata", {}).get(SHA256_METADATA),
            md5=md5[1] if md5 else None,
        )

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
        """Write an object with its headers (and its sha256), conditionally when asked to."""
        # The conditional write: S3 compares the tag and writes in one step, so of two
        # publishers that read the same tag only one can succeed.
        extra: dict[str, Any] = {}
        if if_tag is not None:
            extra["IfMatch"] = if_tag
        if if_absent:
            extra["IfNoneMatch"] = "*"
        if sha256 is not None:
            extra["Metadata"] = {SHA256_METADATA: sha256}
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
                    **extra,
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

    def delete_many(self, keys: Sequence[str]) -> None:
        """Delete objects with DeleteObjects, up to 1,000 keys a request."""
        for start in range(0, len(keys), _DELETE_BATCH):
            chunk = keys[start : start + _DELETE_BATCH]
            objects: Any = [{"Key": self._key(k)} for k in chunk]
            try:
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True}
                )
            except Exception as e:
                where = f"{self.where(chunk[0])} (and {len(chunk) - 1} more keys)"
                raise _wrapped(e, where, "delete") from e
            # Quiet: the answer lists only the keys that could not be deleted.
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                raise StorageError(
                    f"s3://{self.bucket}/{first.get('Key', '')}: cannot delete "
                    f"({first.get('Code', '')}: {first.get('Message', '')}); "
                    f"{len(errors)} of {len(chunk)} keys not deleted"
                )

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
        done.append(self._init_website())
        return done

    def _init_website(self) -> str:
        """Serve folders' index.html and the build's 404 page, where the store can."""
        try:
            self.client.put_bucket_website(
                Bucket=self.bucket,
                WebsiteConfiguration={
                    "IndexDocument": {"Suffix": "index.html"},
                    "ErrorDocument": {"Key": f"{self.prefix}/{NOT_FOUND_PAGE}".lstrip("/")},
                },
            )
        except Exception as e:  # many S3-compatible stores have no website hosting
            return (
                f"website hosting: not available here ({_code(e) or type(e).__name__}); "
                f"serve the site through a CDN or web server that maps folders to "
                f"index.html and missing paths to {NOT_FOUND_PAGE}"
            )
        return f"website hosting: folders serve index.html, missing paths {NOT_FOUND_PAGE}"


def _public_read_policy(bucket: str, scope: str) -> str:
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
