"""Publish a build to a store: only what changed, in a safe order, never backwards.

The store keeps a *live record* (`.plugindex/live.json.gz` under the registry root):
every published key with its sha256, the build it came from, a generation number,
and the keys no longer referenced with the time they stopped being referenced. A
publish reads it once, uploads only objects whose hash differs, and replaces it
with a conditional write, so a fresh CI runner publishes incrementally and two
publishers can never both win.

Order: the live record is first switched to "publishing" (a lease, taken with a
conditional write, renewed while the publish runs), then artifacts, per-plugin
documents, listings, and `config.json` / `status.json` last, each group complete
before the next starts; finally the record is switched back to "published" (or,
after a failure, released with the keys it may have written marked uncertain). A
reader therefore never sees
a document pointing at an object not yet uploaded. A build older than the one
live is refused, so racing publishers cannot roll the registry back.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from builder.common import layout
from builder.common.build_folder import STATE_DIR, files_on_disk, read_borrowed
from builder.common.errors import PlugindexError
from builder.common.layout import content_type
from builder.publish.storage import ConflictError, Storage, StorageError

log = logging.getLogger(__name__)

RECORD = ".plugindex/live.json.gz"
RECORD_FORMAT = 1
IMMUTABLE = "public, max-age=31536000, immutable"  # content-addressed: never changes
MUTABLE = "public, max-age=60"  # documents and pointers: revalidated within a minute
PRIVATE = "no-store"
_PARALLEL_UPLOADS = 16
# A batch is sent in chunks of at most this many uploads or bytes, the lease checked
# before each: a publisher that lost its lease stops within one chunk.
_CHUNK_UPLOADS = 256
_CHUNK_BYTES = 256 << 20
_WAIT_STEP = 1.0  # seconds between looks at another publisher's lease


class PublishError(PlugindexError):
    """The build cannot be published as asked (bad build, newer build live, lost race)."""


@dataclass(frozen=True)
class BuildStamp:
    """What a build says about its source: orders builds, oldest first."""

    built_at: str | None
    commit: str | None

    def describe(self) -> str:
        """Return `built at T from commit C` for messages."""
        commit = f" from commit {self.commit[:12]}" if self.commit else ""
        return f"built at {self.built_at or 'an unknown time'}{commit}"


@dataclass
class LiveRecord:
    """The publisher's record of what is live under a registry root."""

    generation: int = 0
    state: str = "published"  # or "publishing": a publisher holds the lease
    build: BuildStamp = field(default_factory=lambda: BuildStamp(None, None))
    objects: dict[str, str] = field(default_factory=dict)  # key → sha256, referenced now
    retired: dict[str, tuple[str, str]] = field(default_factory=dict)  # key → (sha, since)
    pending: list[str] = field(default_factory=list)  # keys a lease holder may be writing
    holder: str | None = None  # random id of the publisher that wrote the record last
    lease_started: float | None = None  # unix seconds

    def encode(self) -> bytes:
        """Serialise the record (gzip: it lists every object of the registry)."""
        document = {
            "format": RECORD_FORMAT,
            "generation": self.generation,
            "state": self.state,
            "build": {"built_at": self.build.built_at, "source_commit": self.build.commit},
            "holder": self.holder,
            "lease_started": self.lease_started,
            "pending": sorted(self.pending),
            "objects": self.objects,
            "retired": {k: list(v) for k, v in self.retired.items()},
        }
        text = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)

    @classmethod
    def decode(cls, data: bytes, where: str) -> LiveRecord:
        """Parse a record, refusing one this publisher does not understand."""
        try:
            document = json.loads(gzip.decompress(data))
            if document["format"] != RECORD_FORMAT:
                raise PublishError(
                    f"{where}: live record format {document['format']} (expected "
                    f"{RECORD_FORMAT}); publish with a newer plugindex"
                )
            build = document["build"]
            return cls(
                generation=int(document["generation"]),
                state=str(document["state"]),
                build=BuildStamp(build["built_at"], build["source_commit"]),
                objects=dict(document["objects"]),
                retired={k: (v[0], v[1]) for k, v in document["retired"].items()},
                pending=list(document["pending"]),
                holder=document["holder"],
                lease_started=document["lease_started"],
            )
        except (OSError, EOFError, ValueError, KeyError, TypeError, IndexError) as e:
            raise PublishError(
                f"{where}: live record is unreadable ({type(e).__name__}: {e}); "
                f"expected a gzip'd JSON record written by plugindex publish"
            ) from e


@dataclass(frozen=True)
class Upload:
    key: str
    sha256: str
    size: int
    source: Path


@dataclass
class PublishReport:
    uploaded: list[str] = field(default_factory=list)
    unchanged: int = 0
    bytes_uploaded: int = 0
    retired: list[str] = field(default_factory=list)  # no longer referenced; kept
    pruned: list[str] = field(default_factory=list)  # deleted after the grace period
    generation: int = 0
    dry_run: bool = False
    planned: list[Upload] = field(default_factory=list)  # what would be uploaded


@dataclass(frozen=True)
class PublishOptions:
    dry_run: bool = False
    prune_older_than: datetime.timedelta | None = None
    allow_older: bool = False  # publish a build older than the live one (a rollback)
    lease_timeout: float = 900.0  # seconds before another publisher's lease is stale
    # Seconds to wait for another publish to end: longer than lease_timeout, so a
    # publisher that died without releasing its lease is outwaited, not given up on.
    wait_timeout: float = 960.0
    # Seconds between renewals of this publisher's own lease (well under lease_timeout):
    # a long publish keeps its lease, and each renewal proves the lease is still ours.
    renew_every: float = 60.0
    # Called after each upload with (key, bytes); the progress bar, and tests.
    on_upload: Callable[[str, int], None] | None = None
    on_plan: Callable[[int], None] | None = None  # called with the number of uploads


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def read_build(build_dir: Path) -> tuple[dict[str, int], BuildStamp]:
    """List a build's published files (path → size) and read its stamp from status.json."""
    if not build_dir.is_dir():
        raise PublishError(f"{build_dir}: not a folder (expected a plugindex build output)")
    files = files_on_disk(build_dir)
    missing = [p for p in (layout.CONFIG, layout.STATUS) if p not in files]
    if missing:
        raise PublishError(
            f"{build_dir}: not a plugindex build (expected {' and '.join(missing)}; "
            f"run `plugindex build INDEX --out {build_dir}` first)"
        )
    if (build_dir / STATE_DIR / "staging").exists():
        raise PublishError(
            f"{build_dir}: a build is in progress or was interrupted (expected no "
            f"{STATE_DIR}/staging; run the build again)"
        )
    status_path = build_dir / layout.STATUS
    try:
        status = json.loads(status_path.read_bytes())
        stamp = BuildStamp(status["built_at"], status["source_commit"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PublishError(
            f"{status_path}: unreadable (expected the status.json a build writes)"
        ) from e
    return files, stamp


def _is_older(ours: BuildStamp, theirs: BuildStamp) -> bool:
    """Return whether our build is older than theirs (an undated build is oldest)."""
    if theirs.built_at is None:
        return False
    if ours.built_at is None:
        return True
    return ours.built_at < theirs.built_at


def plan_uploads(
    build_dir: Path,
    files: Mapping[str, int],
    live: Mapping[str, str],
    uncertain: Iterable[str] = (),
) -> tuple[list[Upload], dict[str, str]]:
    """Return what to upload and the new key → sha256 map.

    An artifact whose key is live is not read at all (its key names its hash);
    one to upload is hashed and must match the sha256 in its path. Other files are
    hashed and uploaded when their hash differs from the live one or the key is
    `uncertain` (an interrupted publisher may have written it).
    """
    unsure = set(uncertain)
    uploads: list[Upload] = []
    objects: dict[str, str] = {}
    for key, size in files.items():
        if key.startswith("artifacts/"):
            declared = key.split("/")[1]
            objects[key] = declared
            if live.get(key) == declared and key not in unsure:
                continue
            got = _sha256_of(build_dir / key)
            if got != declared:
                raise PublishError(
                    f"{build_dir / key}: artifact bytes do not match the sha256 in its "
                    f"path (expected {declared}, got {got}); nothing was published"
                )
            uploads.append(Upload(key, got, size, build_dir / key))
            continue
        sha256 = _sha256_of(build_dir / key)
        objects[key] = sha256
        if live.get(key) != sha256 or key in unsure:
            uploads.append(Upload(key, sha256, size, build_dir / key))
    return uploads, objects


def borrowed_objects(build_dir: Path, live: Mapping[str, str], where: str) -> dict[str, str]:
    """Return the artifacts the build left to the live registry, checking it still has them.

    A build made with `--live` leaves out remote artifacts the registry already
    holds, so a fresh runner neither downloads nor uploads them again; they stay
    referenced (never retired) as long as a document names them.
    """
    objects: dict[str, str] = {}
    for key in read_borrowed(build_dir):
        declared = key.split("/")[1]
        if live.get(key) != declared:
            raise PublishError(
                f"{where}: does not hold {key}, which {build_dir} was built to take from "
                f"it (built with --live against another target, or pruned since); build "
                f"again; nothing was published"
            )
        objects[key] = declared
    return objects


def check_references(
    build_dir: Path, uploads: Iterable[Upload], objects: Mapping[str, str]
) -> None:
    """Make sure every artifact a changed per-plugin document names is published too."""
    for upload in uploads:
        if not upload.key.startswith("index/"):
            continue
        try:
            document = json.loads(upload.source.read_bytes())
            versions = document["versions"]
            downloads = [(v["version"], v["artifact"]["download"]) for v in versions]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PublishError(
                f"{upload.source}: unreadable plugin document (expected the JSON a "
                f"build writes); nothing was published"
            ) from e
        for version, download in downloads:
            if download not in objects:
                raise PublishError(
                    f"{upload.source}: version {version}: artifact {download} is not in "
                    f"the build (expected every artifact mirrored; was it built with "
                    f"--no-fetch?); nothing was published"
                )


def _order(uploads: list[Upload], live: Mapping[str, str]) -> list[list[Upload]]:
    """Group uploads into batches that must finish one before the next starts.

    By write rank (artifacts, documents, listings, pointers), and config.json, what
    a client reads first, alone at the very end; within a rank, keys new to the
    store go before replaced ones, so a replaced document never names a new
    document that is not there yet.
    """
    batches: dict[tuple[int, bool, bool], list[Upload]] = {}
    for upload in uploads:
        rank = (layout.write_rank(upload.key), upload.key == layout.CONFIG, upload.key in live)
        batches.setdefault(rank, []).append(upload)
    return [sorted(batches[k], key=lambda u: u.key) for k in sorted(batches)]


def publish(
    build_dir: Path, store: Storage, options: PublishOptions | None = None
) -> PublishReport:
    """Publish the build in `build_dir` to `store`."""
    opts = options if options is not None else PublishOptions()
    files, stamp = read_build(build_dir)
    holder = uuid.uuid4().hex
    waited_since = time.monotonic()
    while True:
        found = store.get(RECORD)
        record = LiveRecord.decode(found.data, store.where(RECORD)) if found else LiveRecord()
        if _is_older(stamp, record.build) and not opts.allow_older:
            raise PublishError(
                f"{store.where('')}: holds a newer build ({record.build.describe()}) than "
                f"{build_dir} ({stamp.describe()}); not publishing, so the registry is "
                f"not rolled back (--allow-older publishes it anyway)"
            )
        if _must_wait(store, record, stamp, opts, waited_since):
            time.sleep(_WAIT_STEP)
            continue
        # Keys an earlier publisher may have written whatever the record says: left
        # by one that died holding the lease, or by one that failed and released it.
        uncertain = record.pending
        uploads, objects = plan_uploads(build_dir, files, record.objects, uncertain)
        objects.update(borrowed_objects(build_dir, record.objects, store.where("")))
        check_references(build_dir, uploads, objects)
        report = _report_of(record, uploads, objects, opts)
        if opts.dry_run:
            return report
        if not uploads and objects == record.objects and not report.pruned and not uncertain:
            return report  # nothing changed: one request in all
        held = LiveRecord(
            generation=record.generation,
            state="publishing",
            build=stamp,
            objects=record.objects,
            retired=record.retired,
            pending=sorted({u.key for u in uploads} | set(uncertain)),
            holder=holder,
            lease_started=time.time(),
        )
        try:
            tag = _write_record(store, held, found.tag if found else None)
        except ConflictError:
            log.info("the live record changed while planning; reading it again")
            continue
        break
    if opts.on_plan is not None:
        opts.on_plan(len(uploads))
    lease = _Lease(store, record, held, tag, opts)
    try:
        for batch in _order(uploads, record.objects):
            for chunk in _chunks(batch):
                # A publisher whose lease was taken over stops here rather than
                # overwrite what the new holder wrote.
                lease.check()
                _upload_batch(store, chunk, lease, opts.on_upload)
                report.bytes_uploaded += sum(u.size for u in chunk)
        # Deleted before the record forgets them: a publish stopped here leaves them
        # still listed as retired, so the next prune deletes them again. Renewed
        # first: a new holder may have uploaded again a key this one would delete.
        if report.pruned:
            lease.renew()
        for key in report.pruned:
            store.delete(key)
            lease.renew_if_due()
        done = LiveRecord(
            generation=record.generation + 1,
            state="published",
            build=stamp,
            objects=objects,
            retired=_retired(record, objects, report.pruned),
            holder=holder,
        )
        lease.finish(done)
    except BaseException:
        lease.release()
        raise
    report.generation = done.generation
    return report


def _must_wait(
    store: Storage, record: LiveRecord, stamp: BuildStamp, opts: PublishOptions, since: float
) -> bool:
    """Return whether to wait for another publisher's lease; give up after wait_timeout."""
    if record.state != "publishing":
        return False
    assert record.lease_started is not None
    age = time.time() - record.lease_started
    if record.build == stamp and stamp.built_at is not None:
        # The same build (a CI re-run): its uploads are ours byte for byte.
        log.info("taking over a publish of the same build (%s)", stamp.describe())
        return False
    if age >= opts.lease_timeout:
        log.warning(
            "taking over a publish that stopped %.0f s ago (%s)", age, record.build.describe()
        )
        return False
    if time.monotonic() - since > opts.wait_timeout:
        raise PublishError(
            f"{store.where('')}: another publish ({record.build.describe()}) has held the "
            f"lease for {age:.0f} s; gave up waiting after {opts.wait_timeout:.0f} s"
        )
    log.info("waiting for another publish (%s) to finish", record.build.describe())
    return True


class _Lease:
    """This publisher's hold on the live record, from the lease to the final write."""

    def __init__(
        self, store: Storage, before: LiveRecord, held: LiveRecord, tag: str, opts: PublishOptions
    ) -> None:
        self.store = store
        self.before = before  # the record as this publisher found it
        self.held = held
        self.tag = tag
        self.opts = opts
        self.renewed = time.monotonic()
        self.lock = threading.Lock()  # upload threads renew the lease

    def _lost(self, doing: str) -> PublishError:
        return PublishError(
            f"{self.store.where(RECORD)}: another publisher took over this publish's lease "
            f"(it went unrenewed for longer than the lease lasts, or --break-lease); "
            f"{doing}. Run publish again to check."
        )

    def check(self) -> None:
        """Make sure the lease is still ours: renew it when due, else one GET."""
        with self.lock:
            if time.monotonic() - self.renewed >= self.opts.renew_every:
                self._renew()
                return
            tag = self.tag
        found = self.store.get(RECORD)
        if found is None or found.tag != tag:
            raise self._lost("stopped before writing more")

    def renew_if_due(self) -> None:
        """Renew the lease when `renew_every` has passed since it was last written."""
        with self.lock:
            if time.monotonic() - self.renewed >= self.opts.renew_every:
                self._renew()

    def renew(self) -> None:
        """Renew the lease now, with a conditional write that fails if it is not ours."""
        with self.lock:
            self._renew()

    def _renew(self) -> None:
        renewed = replace(self.held, lease_started=time.time())
        try:
            self.tag = _write_record(self.store, renewed, self.tag)
        except ConflictError as e:
            raise self._lost("stopped before writing more") from e
        self.held = renewed
        self.renewed = time.monotonic()
        log.debug("renewed the lease")

    def finish(self, done: LiveRecord) -> None:
        """Write the completed record in place of the lease."""
        try:
            self.tag = _write_record(self.store, done, self.tag)
        except ConflictError as e:
            raise self._lost("the other publish decides what is live") from e

    def release(self) -> None:
        """Give the lease back after a failed publish, so a re-run need not wait for it.

        The record is put back as it was, except that the keys this publish may have
        written stay in `pending`: the next publisher uploads them again whatever
        their recorded hash. A lease already taken over (or a publish that did
        complete) is left alone.
        """
        released = replace(
            self.before,
            state="published",
            pending=self.held.pending,
            holder=self.held.holder,
            lease_started=None,
        )
        try:
            self.tag = _write_record(self.store, released, self.tag)
        except ConflictError:
            log.info("the lease was taken over or the publish completed; not releasing it")
        except StorageError as e:
            log.warning("could not release the lease after a failed publish: %s", e)
        else:
            log.info("released the lease after a failed publish")


def _report_of(
    record: LiveRecord, uploads: list[Upload], objects: Mapping[str, str], opts: PublishOptions
) -> PublishReport:
    report = PublishReport(dry_run=opts.dry_run, planned=uploads, generation=record.generation)
    report.uploaded = [u.key for u in uploads]
    if opts.dry_run:
        report.bytes_uploaded = sum(u.size for u in uploads)
    report.unchanged = len(objects) - len(uploads)
    report.retired = sorted(set(record.objects) - set(objects))
    if opts.prune_older_than is not None:
        cutoff = _iso(_utc_now() - opts.prune_older_than)
        retired = _retired(record, objects, [])
        report.pruned = sorted(k for k, (_, since) in retired.items() if since <= cutoff)
    return report


def _retired(
    record: LiveRecord, objects: Mapping[str, str], pruned: Iterable[str]
) -> dict[str, tuple[str, str]]:
    """Return the keys no longer referenced, with when they stopped being referenced."""
    now = _iso(_utc_now())
    gone = set(pruned)
    retired = {k: v for k, v in record.retired.items() if k not in objects and k not in gone}
    for key, sha256 in record.objects.items():
        if key not in objects and key not in gone:
            retired[key] = (sha256, now)
    return retired


def _write_record(store: Storage, record: LiveRecord, tag: str | None) -> str:
    """Replace the record if its tag is still `tag` (absent when None); return the new tag."""
    data = record.encode()
    try:
        return store.put(
            RECORD,
            data,
            content_type="application/gzip",
            cache_control=PRIVATE,
            if_tag=tag,
            if_absent=tag is None,
        )
    except ConflictError:
        # A retried conditional PUT whose first attempt did succeed fails its
        # condition: a record holding exactly what we wrote (our holder id is in
        # it) is our own write, not someone else's.
        found = store.get(RECORD)
        if found is None or found.data != data:
            raise
        log.info("the live record already holds this write (a retried request)")
        return found.tag


def _chunks(batch: list[Upload]) -> Iterator[list[Upload]]:
    """Split a batch into chunks of at most _CHUNK_UPLOADS uploads and _CHUNK_BYTES."""
    chunk: list[Upload] = []
    size = 0
    for upload in batch:
        if chunk and (len(chunk) >= _CHUNK_UPLOADS or size + upload.size > _CHUNK_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(upload)
        size += upload.size
    if chunk:
        yield chunk


def _upload_batch(
    store: Storage,
    batch: list[Upload],
    lease: _Lease,
    on_upload: Callable[[str, int], None] | None,
) -> None:
    stop = threading.Event()

    def send(upload: Upload) -> None:
        if stop.is_set():
            return  # an upload failed or the lease is lost: start no more
        try:
            store.put(
                upload.key,
                upload.source,
                content_type=content_type(upload.key),
                cache_control=IMMUTABLE if upload.key.startswith("artifacts/") else MUTABLE,
            )
            if on_upload is not None:
                on_upload(upload.key, upload.size)
            lease.renew_if_due()
        except BaseException:
            stop.set()
            raise

    if len(batch) == 1:
        send(batch[0])
        return
    with ThreadPoolExecutor(_PARALLEL_UPLOADS) as pool:
        try:
            # list(): re-raise the first failure here, after the running uploads end.
            list(pool.map(send, batch))
        except BaseException:
            stop.set()  # Ctrl-C too: the queued uploads are not started
            raise


def parse_duration(text: str) -> datetime.timedelta:
    """Parse a grace period such as `30d`, `12h`, `90m` or `45s`."""
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit():
        raise PublishError(
            f"--prune-older-than: expected a number and a unit (d, h, m or s), e.g. 30d; "
            f"got {text!r}"
        )
    return datetime.timedelta(seconds=int(number) * units[unit])


def describe_plan(report: PublishReport) -> list[str]:
    """Return the lines `--dry-run` prints: what would be uploaded, retired, pruned."""
    ordered = [u for batch in _order(report.planned, {}) for u in batch]
    lines = [f"upload {u.key} ({u.size} bytes)" for u in ordered]
    lines += [f"retire {key} (kept; no longer referenced)" for key in report.retired]
    lines += [f"prune {key}" for key in report.pruned]
    return lines


def summary_of(report: PublishReport, target: str, requests: Any = None) -> str:
    """Return the one-line summary printed at the end."""
    verb = "would upload" if report.dry_run else "uploaded"
    text = (
        f"{target}: {verb} {len(report.uploaded)} objects ({report.bytes_uploaded} bytes), "
        f"{report.unchanged} unchanged, {len(report.retired)} retired, "
        f"{len(report.pruned)} pruned; generation {report.generation}"
    )
    if requests:
        text += f"; {sum(requests.values())} requests"
    return text


def record_of(store: Storage) -> LiveRecord | None:
    """Return the live record of a store, or None when nothing was published there."""
    found = store.get(RECORD)
    return LiveRecord.decode(found.data, store.where(RECORD)) if found else None
