"""Publishing under faults: interrupted or killed publishers, and racing publishers.

After every fault a reader checks what a client would see: every object the live
pointers reference exists and matches its hash. Runs against a real SeaweedFS.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import http.server
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from builder.index.build import build
from builder.publish.plan import read_build
from builder.publish.publish import PublishOptions, publish
from builder.publish.record import RECORD, PublishError, record_of
from builder.publish.s3 import S3Storage
from builder.publish.storage import ConflictError, Head, Storage, StorageError, Stored
from builder.publish.tree import NODES
from tests.conftest import BUNDLED_INDEX, PLUGINDEX
from tests.mini_index import add_release, write_index
from tests.s3server import S3Server
from tests.test_build import add_version, leaf_plugin, plugin_names
from tests.test_publish import (
    NEW,
    OLD,
    PREFIX,
    bucket_keys,
    build_hashes,
    check_consistent,
    reader_of,
    release_new_artifact,
)


class CrashError(Exception):
    """Stands for the publisher dying between two requests."""


class WrappedStore:
    """A store that passes every call to `inner`; subclasses change `put`."""

    inner: Storage

    def where(self, key: str) -> str:
        return self.inner.where(key)

    def get(self, key: str) -> Stored | None:
        return self.inner.get(key)

    def head(self, key: str) -> Head | None:
        return self.inner.head(key)

    def put(self, key: str, body: bytes | Path, **options: Any) -> str:
        return self.inner.put(key, body, **options)

    def delete(self, key: str) -> None:
        self.inner.delete(key)

    def delete_many(self, keys: Sequence[str]) -> None:
        self.inner.delete_many(keys)


class CountingStore(WrappedStore):
    """A store that counts its writes."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.writes = 0
        self.lock = threading.Lock()

    def put(self, key: str, body: bytes | Path, **options: Any) -> str:
        with self.lock:
            self.writes += 1
        return self.inner.put(key, body, **options)


@contextlib.contextmanager
def new_bucket(server: S3Server) -> Iterator[str]:
    """Create a bucket for a part of a test, and drop it after (freeing SeaweedFS's volumes)."""
    bucket = server.new_bucket()
    try:
        yield bucket
    finally:
        drop_bucket(server, bucket)


def drop_bucket(server: S3Server, bucket: str) -> None:
    """Delete a bucket and what it holds (SeaweedFS frees its volumes)."""
    client = server.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    client.delete_bucket(Bucket=bucket)


@pytest.fixture
def fresh_bucket(s3_server: S3Server) -> Iterator[Callable[[], str]]:
    """Return a function that creates buckets, each dropped after the test."""
    made: list[str] = []

    def make() -> str:
        made.append(s3_server.new_bucket())
        return made[-1]

    yield make
    for bucket in made:
        drop_bucket(s3_server, bucket)


def writes_of(build_dir: Path, store: Storage) -> int:
    """Return how many writes publishing a build to a store makes (objects and record)."""
    counting = CountingStore(store)
    publish(build_dir, counting)
    return counting.writes


class CrashingStore(WrappedStore):
    """A store that lets `allowed` writes through, then fails every write."""

    def __init__(self, inner: Storage, allowed: int) -> None:
        self.inner = inner
        self.allowed = allowed
        self.lock = threading.Lock()

    def put(self, key: str, body: bytes | Path, **options: Any) -> str:
        with self.lock:
            if self.allowed <= 0:
                raise CrashError(key)
            self.allowed -= 1
        return self.inner.put(key, body, **options)


class FailingStore(WrappedStore):
    """A store whose write number `at` (from 1) fails, as a 500 does after the retries."""

    def __init__(self, inner: Storage, at: int) -> None:
        self.inner = inner
        self.at = at
        self.writes = 0
        self.lock = threading.Lock()

    def put(self, key: str, body: bytes | Path, **options: Any) -> str:
        with self.lock:
            self.writes += 1
            fail = self.writes == self.at
        if fail:
            raise StorageError(f"{self.where(key)}: cannot write (InternalError)")
        return self.inner.put(key, body, **options)


class BlindStore(WrappedStore):
    """A store whose HEAD requests fail (a policy without s3:GetObject on HEAD, a network cut)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.writes = 0

    def head(self, key: str) -> Head | None:
        raise StorageError(f"{self.where(key)}: cannot check (AccessDenied)")

    def put(self, key: str, body: bytes | Path, **options: Any) -> str:
        self.writes += 1
        return self.inner.put(key, body, **options)


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two builds of the bundled index: the second adds, changes and removes plugins."""
    root = tmp_path_factory.mktemp("builds")
    index = root / "index"
    shutil.copytree(BUNDLED_INDEX, index)
    build(index, root / "old", environ=OLD)
    names = plugin_names(index)
    release_new_artifact(index, names[0], "9.0.0")
    add_version(index, names[1], "9.0.0")
    shutil.rmtree(index / "plugins" / leaf_plugin(index))
    build(index, root / "new", environ=NEW)
    return root / "old", root / "new"


def test_interrupted_first_publish_is_never_broken_and_completes(
    two_builds: tuple[Path, Path], s3_server: S3Server
) -> None:
    old, _ = two_builds
    # Every object, the record's nodes, and its root twice.
    with new_bucket(s3_server) as probe:
        total = writes_of(old, S3Storage(probe, PREFIX, s3_server.client()))
    assert total > len(build_hashes(old)) + 2
    for allowed in (0, 1, 2, total // 2, total - 4, total - 3, total - 2, total - 1):
        with new_bucket(s3_server) as bucket:
            store = S3Storage(bucket, PREFIX, s3_server.client())
            with pytest.raises(CrashError):
                publish(old, CrashingStore(store, allowed))
            check_consistent(reader_of(store))
            publish(old, store, PublishOptions(lease_timeout=0))
            assert bucket_keys(s3_server, bucket) == build_hashes(old), allowed
            check_consistent(reader_of(store))


def test_interrupted_update_after_every_write_is_never_broken_and_completes(
    two_builds: tuple[Path, Path], s3_server: S3Server
) -> None:
    old, new = two_builds
    with new_bucket(s3_server) as probe:
        publish(old, S3Storage(probe, PREFIX, s3_server.client()))
        writes = writes_of(new, S3Storage(probe, PREFIX, s3_server.client()))
    assert writes >= 6
    for allowed in range(writes):
        with new_bucket(s3_server) as bucket:
            store = S3Storage(bucket, PREFIX, s3_server.client())
            publish(old, store)
            with pytest.raises(CrashError):
                publish(new, CrashingStore(store, allowed))
            check_consistent(reader_of(store))
            # Whatever is live is the old build, or the new one, or on its way: the
            # pointers are one or the other, never a mix that names a missing object.
            status = store.get("status.json")
            assert status is not None
            assert status.data in {
                (old / "status.json").read_bytes(),
                (new / "status.json").read_bytes(),
            }
            publish(new, store, PublishOptions(lease_timeout=0))
            keys = bucket_keys(s3_server, bucket)
            assert {k: v for k, v in keys.items() if k in build_hashes(new)} == build_hashes(new)
            check_consistent(reader_of(store))


def test_a_publish_waits_for_a_live_lease_then_gives_up_clearly(
    two_builds: tuple[Path, Path],
    s3_server: S3Server,
    fresh_bucket: Callable[[], str],
) -> None:
    old, new = two_builds
    bucket = fresh_bucket()
    store = S3Storage(bucket, PREFIX, s3_server.client())
    with pytest.raises(CrashError):
        publish(old, CrashingStore(store, 3))
    with pytest.raises(PublishError, match=r"has held the lease for .* gave up waiting"):
        publish(new, store, PublishOptions(wait_timeout=0.5))
    record = record_of(store)
    assert record is not None and record.state == "publishing"


def test_a_failed_publish_releases_its_lease_and_a_rerun_completes_at_once(
    two_builds: tuple[Path, Path],
    s3_server: S3Server,
    fresh_bucket: Callable[[], str],
) -> None:
    old, new = two_builds
    bucket = fresh_bucket()
    store = S3Storage(bucket, PREFIX, s3_server.client())
    publish(old, store)
    with pytest.raises(StorageError, match="InternalError"):
        publish(new, FailingStore(store, at=4))  # the lease, two uploads, then a failure
    record = record_of(store)
    assert record is not None and record.state == "published"
    assert record.build == read_build(old)[1]  # the build still live
    assert len(record.pending) >= 3  # what the failed publish may have written
    check_consistent(reader_of(store))
    # The build that is still live re-uploads what the failed publish may have
    # replaced, without waiting for a lease.
    started = time.monotonic()
    publish(old, store, PublishOptions(wait_timeout=3))
    keys = bucket_keys(s3_server, bucket)
    assert {k: keys.get(k) for k in build_hashes(old)} == build_hashes(old)
    publish(new, store, PublishOptions(wait_timeout=3))
    assert time.monotonic() - started < 3
    keys = bucket_keys(s3_server, bucket)
    assert {k: keys.get(k) for k in build_hashes(new)} == build_hashes(new)
    check_consistent(reader_of(store))


def test_a_rerun_of_the_same_build_takes_over_its_dead_lease_at_once(
    two_builds: tuple[Path, Path],
    s3_server: S3Server,
    fresh_bucket: Callable[[], str],
) -> None:
    old, _ = two_builds
    bucket = fresh_bucket()
    store = S3Storage(bucket, PREFIX, s3_server.client())
    with pytest.raises(CrashError):
        publish(old, CrashingStore(store, 3))  # dies: it cannot release the lease either
    record = record_of(store)
    assert record is not None and record.state == "publishing"
    started = time.monotonic()
    publish(old, store, PublishOptions(wait_timeout=3))
    assert time.monotonic() - started < 3
    assert bucket_keys(s3_server, bucket) == build_hashes(old)
    check_consistent(reader_of(store))


class SlowStore(WrappedStore):
    """A store whose uploads each take `delay` seconds more (the live record's do not)."""

    def __init__(self, inner: Storage, delay: float) -> None:
        self.inner = inner
        self.delay = delay

    def put(self, key: str, body: bytes | Path, **options: Any) -> str:
        if key != RECORD:
            time.sleep(self.delay)
        return self.inner.put(key, body, **options)


def test_a_slow_publish_renews_its_lease_and_is_not_taken_over(
    two_builds: tuple[Path, Path],
    s3_server: S3Server,
    fresh_bucket: Callable[[], str],
) -> None:
    old, new = two_builds
    bucket = fresh_bucket()
    store = S3Storage(bucket, PREFIX, s3_server.client())
    short = PublishOptions(lease_timeout=1.5, renew_every=0.2)
    outcome: dict[str, Any] = {}

    def publish_newer() -> None:
        outcome["newer"] = publish(new, S3Storage(bucket, PREFIX, s3_server.client()), short)

    newer = threading.Thread(target=publish_newer)
    started = time.monotonic()
    # The newer publisher starts once the slow one holds the lease, and waits for it.
    publish(old, SlowStore(store, 0.5), replace(short, on_plan=lambda count: newer.start()))
    # It outlived a lease by more than the newer publisher's one-second poll.
    assert time.monotonic() - started > short.lease_timeout + 1
    newer.join(timeout=60)
    assert "newer" in outcome
    status = store.get("status.json")
    assert status is not None and status.data == (new / "status.json").read_bytes()
    check_consistent(reader_of(store))


def test_a_publisher_whose_lease_was_taken_over_deletes_nothing(
    two_builds: tuple[Path, Path],
    s3_server: S3Server,
    fresh_bucket: Callable[[], str],
) -> None:
    old, new = two_builds
    bucket = fresh_bucket()
    store = S3Storage(bucket, PREFIX, s3_server.client())
    publish(old, store)
    retiring = set(build_hashes(old)) - set(build_hashes(new))
    assert retiring
    planned: list[int] = []
    uploaded: list[str] = []

    def take_over(key: str, size: int) -> None:
        uploaded.append(key)
        if len(uploaded) == planned[0]:  # after the last upload, before pruning
            # Another publisher takes the lease over (as after a stall longer than
            # the lease) and completes: the build it publishes names `retiring`.
            other = S3Storage(bucket, PREFIX, s3_server.client())
            publish(old, other, PublishOptions(lease_timeout=0, allow_older=True))

    prune_now = PublishOptions(
        prune_older_than=datetime.timedelta(0), on_plan=planned.append, on_upload=take_over
    )
    with pytest.raises(PublishError, match="another publisher took over"):
        publish(new, store, prune_now)
    keys = bucket_keys(s3_server, bucket)
    assert retiring <= set(keys)
    check_consistent(reader_of(store))


class EchoingStore(WrappedStore):
    """A store whose write number `at` of the live record succeeds, then reports a conflict.

    As botocore does when it resends a conditional PUT whose answer was lost: the
    resend fails the condition that the first attempt changed.
    """

    def __init__(self, inner: Storage, at: int) -> None:
        self.inner = inner
        self.at = at
        self.record_writes = 0

    def put(self, key: str, body: bytes | Path, **options: Any) -> str:
        tag = self.inner.put(key, body, **options)
        if key == RECORD:
            self.record_writes += 1
            if self.record_writes == self.at:
                raise ConflictError(f"{self.where(key)}: changed by someone else")
        return tag


@pytest.mark.parametrize(
    ("at", "renew_every", "record_writes"),
    [(1, 60.0, 2), (2, 0.0, None), (2, 60.0, 2)],
    ids=["taking-the-lease", "renewing-it", "the-final-write"],
)
def test_a_retried_record_write_that_did_succeed_counts_as_our_own(
    *,
    two_builds: tuple[Path, Path],
    s3_server: S3Server,
    at: int,
    renew_every: float,
    record_writes: int | None,
    fresh_bucket: Callable[[], str],
) -> None:
    old, _ = two_builds
    store = S3Storage(fresh_bucket(), PREFIX, s3_server.client())
    echoing = EchoingStore(store, at)
    report = publish(old, echoing, PublishOptions(renew_every=renew_every, wait_timeout=3))
    assert report.generation == 1
    if record_writes is not None:  # no second lease taken over its own first one
        assert echoing.record_writes == record_writes
    record = record_of(store)
    assert record is not None and record.state == "published" and record.generation == 1
    assert record.objects == build_hashes(old)
    check_consistent(reader_of(store))


@pytest.fixture(scope="module")
def large_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build of 300 small plugins (about 900 objects): long enough to kill mid-way."""
    root = tmp_path_factory.mktemp("large")
    index = write_index(root / "index")
    for number in range(300):
        for version in ("1.0.0", "1.1.0"):
            add_release(index, f"tool-{number:03d}", version, f"artifacts/{version}.tar.gz")
    build(index, root / "out", environ=OLD)
    return root / "out"


def test_a_killed_publisher_leaves_a_consistent_bucket_and_a_rerun_completes(
    large_build: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    store = S3Storage(s3_bucket, PREFIX, s3_server.client())
    target = f"s3://{s3_bucket}/{PREFIX}"
    process = subprocess.Popen(
        [*PLUGINDEX, "publish", str(large_build), target],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            record = record_of(store)
            if record is not None and record.state == "publishing":
                time.sleep(0.2)  # let some uploads happen
                break
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the publish ended before it was killed"
    check_consistent(reader_of(store))
    record = record_of(store)
    assert record is not None and record.state == "publishing"
    done = subprocess.run(
        [*PLUGINDEX, "publish", str(large_build), target, "--break-lease"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert bucket_keys(s3_server, s3_bucket) == build_hashes(large_build)
    check_consistent(reader_of(store))


def test_a_newer_publish_waits_for_an_older_one_and_wins(
    two_builds: tuple[Path, Path],
    s3_server: S3Server,
    fresh_bucket: Callable[[], str],
) -> None:
    old, new = two_builds
    bucket = fresh_bucket()
    store = S3Storage(bucket, PREFIX, s3_server.client())
    outcome: dict[str, Any] = {}

    def start_newer(key: str, size: int) -> None:
        if "thread" not in outcome:
            thread = threading.Thread(
                target=lambda: outcome.setdefault(
                    "newer", publish(new, S3Storage(bucket, PREFIX, s3_server.client()))
                )
            )
            outcome["thread"] = thread
            thread.start()
            time.sleep(0.3)  # the newer publisher now finds the lease held

    publish(old, store, PublishOptions(on_upload=start_newer))
    outcome["thread"].join(timeout=60)
    assert "newer" in outcome
    keys = bucket_keys(s3_server, bucket)
    assert {k: keys.get(k) for k in build_hashes(new)} == build_hashes(new)
    status = store.get("status.json")
    assert status is not None and status.data == (new / "status.json").read_bytes()


def test_an_older_publish_racing_a_newer_one_stops_with_a_clear_message(
    two_builds: tuple[Path, Path],
    s3_server: S3Server,
    fresh_bucket: Callable[[], str],
) -> None:
    old, new = two_builds
    bucket = fresh_bucket()
    store = S3Storage(bucket, PREFIX, s3_server.client())
    outcome: dict[str, Any] = {}

    def start_older(key: str, size: int) -> None:
        if "older" not in outcome:
            try:
                publish(old, S3Storage(bucket, PREFIX, s3_server.client()))
                outcome["older"] = "published"
            except PublishError as e:
                outcome["older"] = str(e)

    publish(new, store, PublishOptions(on_upload=start_older))
    assert "holds a newer build" in outcome["older"]
    status = store.get("status.json")
    assert status is not None and status.data == (new / "status.json").read_bytes()
    check_consistent(reader_of(store))


def test_two_publisher_processes_racing_end_at_the_newer_build(
    two_builds: tuple[Path, Path],
    s3_server: S3Server,
    s3_bucket: str,
    fresh_bucket: Callable[[], str],
) -> None:
    old, new = two_builds
    for round_number in range(4):
        bucket = s3_bucket if round_number == 0 else fresh_bucket()
        target = f"s3://{bucket}/{PREFIX}"
        order = [old, new] if round_number % 2 == 0 else [new, old]
        processes = {
            build_dir: subprocess.Popen(
                [*PLUGINDEX, "publish", str(build_dir), target],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for build_dir in order
        }
        results = {b: (p.wait(timeout=120), p.communicate()[1]) for b, p in processes.items()}
        assert results[new][0] == 0, results[new][1]
        assert results[old][0] == 0 or (
            results[old][0] == 3 and "holds a newer build" in results[old][1]
        ), results[old]
        store = S3Storage(bucket, PREFIX, s3_server.client())
        status = store.get("status.json")
        assert status is not None and status.data == (new / "status.json").read_bytes()
        check_consistent(reader_of(store))


class ThrottlingProxy(http.server.ThreadingHTTPServer):
    """Forwards S3 requests to SeaweedFS, answering every `every`-th PUT with 503 SlowDown."""

    def __init__(self, upstream: str, every: int) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = urllib.parse.urlsplit(upstream)
        self.every = every
        self.puts = 0
        self.throttled = 0
        self.lock = threading.Lock()


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThrottlingProxy

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if self.command == "PUT":
            with self.server.lock:
                self.server.puts += 1
                throttle = self.server.puts % self.server.every == 0
                self.server.throttled += throttle
            if throttle:
                error = b"<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>"
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(error)))
                self.end_headers()
                self.wfile.write(error)
                return
        upstream = http.client.HTTPConnection(
            self.server.upstream.hostname or "127.0.0.1", self.server.upstream.port, timeout=30
        )
        try:
            # The Host header is passed through unchanged: it is part of the signature.
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in {"connection", "keep-alive", "expect"}:
                    upstream.putheader(name, value)
            upstream.endheaders(body)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response(answer.status)
        for name, value in answer.getheaders():
            if name.lower() not in {
                "connection",
                "keep-alive",
                "transfer-encoding",
                "content-length",
            }:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_DELETE = do_HEAD = do_POST = _relay  # noqa: N815 - handler names

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_throttled_and_failed_writes_are_retried(
    two_builds: tuple[Path, Path],
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old, _ = two_builds
    proxy = ThrottlingProxy(s3_server.endpoint, every=3)
    thread = threading.Thread(target=proxy.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.server_port}")
        store = S3Storage(s3_bucket, PREFIX)  # the client plugindex makes, with its retries
        report = publish(old, store)
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert proxy.throttled >= len(report.uploaded) // 3
    # The objects, the record's nodes (each written once) and its root twice.
    nodes = s3_server.client().list_objects_v2(Bucket=s3_bucket, Prefix=f"{PREFIX}/{NODES}")
    record_writes = nodes["KeyCount"] + 2
    assert store.requests["PUT"] == len(report.uploaded) + record_writes + proxy.throttled
    assert bucket_keys(s3_server, s3_bucket) == build_hashes(old)


def test_a_failing_check_of_the_store_stops_the_publish_before_any_write(
    two_builds: tuple[Path, Path], s3_server: S3Server, s3_bucket: str
) -> None:
    old, new = two_builds
    store = S3Storage(s3_bucket, PREFIX, s3_server.client())
    publish(old, store)
    before = bucket_keys(s3_server, s3_bucket)
    blind = BlindStore(store)
    with pytest.raises(StorageError, match="cannot check"):
        publish(new, blind)
    assert blind.writes == 0
    assert bucket_keys(s3_server, s3_bucket) == before


def test_a_repair_interrupted_midway_completes_on_the_next_run(
    two_builds: tuple[Path, Path], s3_server: S3Server, s3_bucket: str
) -> None:
    """The objects a repair puts back are pending in the record until it completes."""
    old, _ = two_builds
    store = S3Storage(s3_bucket, PREFIX, s3_server.client())
    publish(old, store)
    lost = sorted(k for k in build_hashes(old) if k.startswith("artifacts/"))[:3]
    for key in lost:
        s3_server.client().delete_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}")
    with pytest.raises(CrashError):  # the lease is taken, then one object is put back
        publish(old, CrashingStore(store, 2), PublishOptions(repair=True))
    record = record_of(store)
    assert record is not None and set(lost) <= set(record.pending)
    # No sample and no --repair: the pending keys alone bring the rest back.
    report = publish(old, store, PublishOptions(sample=0, lease_timeout=0))
    assert set(lost) <= set(report.uploaded)
    assert bucket_keys(s3_server, s3_bucket) == build_hashes(old)
    check_consistent(reader_of(store))
