"""TUF, the client side: trust a registry through its root, and read only what it signed.

A registry is trusted from a pinned root: a root file the user gives (or that ships
with the demo), or a sha256 that pins the first root the network serves. The pin is
kept in the user data folder with the registry's TUF state (trusted root chain,
timestamp, snapshot, bins: python-tuf's `ngclient.Updater`, writing through our
atomic, durable writes), and every later run starts from that pin, never from
whatever the cache or the network holds. Documents, search files and artifacts are
then looked up in the signed targets (`target_info`) and fetched at their
consistent-snapshot path, their length and sha256 checked (`verified_target`).

Requests: a probe for the next root (`metadata/N+1.root.json`, a 404 unless the
root was rotated) and one conditional GET of `metadata/timestamp.json` when nothing
changed (a 304 answers everything: the snapshot and bins are kept, documents are
cached by path and used while their signed sha256 is unchanged: `target_cache`);
otherwise the new snapshot and the bins the lookups need.

A file the targets do not list does not exist for the client (`find_target` returns
None: a signed absence); a file they list that the server does not serve is a
download failure, never "not found". The pin is `tuf_pin`, the messages of a
refusal `tuf_refusals`.

Offline (`--offline`), nothing is fetched: the metadata kept by the last online run
is used as it was then (its signatures checked again, its expiry judged at that
run's time: it was current then, and no one could have fed it since).
"""

from __future__ import annotations

import datetime
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Root, Timestamp
from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig

from builder.client.target_cache import TargetCache, targets_cache
from builder.client.tuf_pin import (
    ROOT_MAX_LENGTH,
    SHA256,
    checked_root,
    pin_registry,
    pinned_root,
    trust_dir,
)
from builder.client.tuf_refusals import NoTufError, TufRefusedError, explain
from builder.common import layout
from builder.common.errors import FetchError, PlugindexError
from builder.common.fetch import Fetcher, NotFoundError, TooLargeError
from builder.common.files import HashingWriter, write_atomic, write_if_changed
from builder.common.http_client import Progress, Sink

# What the rest of the client imports from here: the signed view and its refusals.
__all__ = [
    "LIMITS",
    "NoTufError",
    "TargetInfo",
    "TufClient",
    "TufRefusedError",
    "open_client",
    "trust_registry",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

METADATA_DIR = "metadata"  # python-tuf's state: root history, timestamp, snapshot, bins
REFRESHED_FILE = "refreshed.json"  # when the state was last brought up to date online
# Caps for metadata python-tuf downloads without a known length (bytes).
LIMITS = UpdaterConfig(
    max_root_rotations=64,
    root_max_length=ROOT_MAX_LENGTH,
    timestamp_max_length=16 * 1024,
    snapshot_max_length=4 * 1024 * 1024,
    targets_max_length=16 * 1024 * 1024,
)


class TargetInfo(NamedTuple):
    """A file as the registry signed it."""

    path: str  # the target path: `index/au/th/auth-jwt.json`
    sha256: str
    size: int  # bytes
    url: str  # registry-relative: where its consistent copy is served


# --- the fetcher python-tuf downloads through ---------------------------------------------


class _Bridge(FetcherInterface):
    """python-tuf's fetcher interface over our fetcher (retries, caps, cache, folders).

    The timestamp, the one mutable metadata file, goes through the fetcher's
    revalidating cache (a 304 costs no body); versioned files are immutable.
    """

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher
        self.last: dict[str, bytes] = {}  # role -> bytes last received, for messages

    def _fetch(self, url: str) -> Iterator[bytes]:
        yield self.download_bytes(url, LIMITS.targets_max_length)

    def download_bytes(self, url: str, max_length: int) -> bytes:
        """Return a metadata file, stopping past `max_length` bytes."""
        try:
            if url == layout.TIMESTAMP:
                data = self.fetcher.document(url, max_size=max_length)
            else:
                buffer = io.BytesIO()
                self.fetcher.download(url, buffer, max_size=max_length)
                data = buffer.getvalue()
        except NotFoundError as e:
            raise tuf_errors.DownloadHTTPError(str(e), 404) from None
        except TooLargeError as e:
            raise tuf_errors.DownloadLengthMismatchError(str(e)) from None
        except FetchError as e:
            raise tuf_errors.DownloadError(str(e)) from None
        name = url.rsplit("/", 1)[-1].removesuffix(".json")
        self.last[name.split(".", 1)[1] if name[:1].isdigit() else name] = data
        if name.endswith(".root") or name == "root":
            checked_root(data, self.fetcher.url_of(url))
        return data


class _Updater(Updater):
    offline = False  # read the kept state only: no metadata is fetched

    def _persist_file(self, filename: str, data: bytes) -> None:
        # The pinned root is handed back on every start; the trusted state must survive
        # a crash as the plugins folder does.
        write_if_changed(Path(filename), data, durable=True)

    def _download_metadata(self, rolename: str, length: int, version: int | None = None) -> bytes:
        if not self.offline:
            return super()._download_metadata(rolename, length, version)
        if rolename == Root.type:  # what python-tuf takes as "no newer root"
            raise tuf_errors.DownloadHTTPError("offline: no newer root looked for", 404)
        raise tuf_errors.DownloadError(f"{rolename}.json: not kept by an earlier run")

    def _load_timestamp(self) -> None:
        if not self.offline:
            super()._load_timestamp()
            return
        self._trusted_set.update_timestamp(self._load_local_metadata(Timestamp.type))

    def judge_expiry_at(self, when: datetime.datetime) -> None:
        """Judge expiry at `when` rather than now (offline: the last online run's time)."""
        # python-tuf keeps its clock in the trusted set (tuf>=7,<8 is pinned).
        self._trusted_set.reference_time = when


# --- the client -----------------------------------------------------------------------------


@dataclass
class TufClient:
    """One registry's signed view: refresh once, then look up and fetch targets."""

    fetcher: Fetcher
    state: Path  # trust_dir(...): the pin and python-tuf's metadata
    bootstrap: bytes  # the pinned root
    cache: TargetCache | None = None  # verified documents, by target path
    offline: bool = False  # use the state kept by the last online run; fetch no metadata

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._bridge = _Bridge(self.fetcher)
        (self.state / METADATA_DIR).mkdir(parents=True, exist_ok=True)
        self._updater = self._guard(
            lambda: _Updater(
                str(self.state / METADATA_DIR),
                layout.METADATA,
                fetcher=self._bridge,
                config=LIMITS,
                bootstrap=self.bootstrap,
            )
        )
        self._updater.offline = self.offline
        self._refreshed = False

    @property
    def location(self) -> str:
        """Return the registry's location, for messages."""
        return self.fetcher.location

    def refresh(self) -> None:
        """Bring the trusted metadata up to date (once per client; offline: load it)."""
        with self._lock:
            if self._refreshed:
                return
            if self.offline:
                self._updater.judge_expiry_at(self._last_refresh())
                self._guard(self._updater.refresh)
            else:
                started = time.time()
                self._guard(self._updater.refresh)
                self._record_refresh(started)
            self._refreshed = True

    def _last_refresh(self) -> datetime.datetime:
        """Return when an online run last brought the state up to date."""
        path = self.state / REFRESHED_FILE
        try:
            when = float(json.loads(path.read_bytes())["at"])
            return datetime.datetime.fromtimestamp(when, tz=datetime.UTC)
        except (OSError, ValueError, KeyError, TypeError, OverflowError):
            raise FetchError(
                f"{self.location}: no signed metadata of this registry kept in {self.state} "
                f"(run once without --offline first)"
            ) from None

    def _record_refresh(self, when: float) -> None:
        try:
            write_atomic(self.state / REFRESHED_FILE, json.dumps({"at": when}).encode("utf-8"))
        except OSError as e:
            log.warning("cannot record the refresh time in %s: %s", self.state, e)

    def find_target(self, path: str) -> TargetInfo | None:
        """Return what the registry signed for `path`, or None when it signed no such file."""
        self.refresh()
        with self._lock:
            found = self._guard(lambda: self._updater.get_targetinfo(path))
        if found is None:
            return None
        sha256 = found.hashes.get("sha256", "")
        if not SHA256.fullmatch(sha256):
            raise TufRefusedError(f"{path}: the registry signed no sha256 for it")
        return TargetInfo(path, sha256, found.length, layout.consistent_path(path, sha256))

    def target_info(self, path: str) -> TargetInfo:
        """Return what the registry signed for `path`; refuse a file it did not sign."""
        found = self.find_target(path)
        if found is None:
            raise TufRefusedError(
                f"{self.fetcher.url_of(path)}: not signed by the registry (no such TUF "
                f"target); refusing to use it"
            )
        return found

    def verified_target(
        self, path: str | TargetInfo, cancel: threading.Event | None = None
    ) -> bytes:
        """Return a target's bytes, checked against its signed length and sha256.

        A target already fetched (by any earlier run) comes from the cache while the
        registry still signs the same sha256 for its path.
        """
        info = path if isinstance(path, TargetInfo) else self.target_info(path)
        cached = self.cache.get(info.path, info.sha256) if self.cache is not None else None
        if cached is not None:
            return cached
        buffer = io.BytesIO()
        self.download_target(info, buffer, cancel=cancel)
        data = buffer.getvalue()
        if self.cache is not None:
            self.cache.keep(info.path, data)  # replaces the version it supersedes
        return data

    def forget(self, path: str) -> None:
        """Drop a target's cached bytes (refused after they verified, or no longer signed)."""
        if self.cache is not None:
            self.cache.drop(path)

    def download_target(
        self,
        info: TargetInfo,
        sink: Sink,
        progress: Progress | None = None,
        *,
        cancel: threading.Event | None = None,
    ) -> None:
        """Stream a target into `sink`, refusing more bytes than signed or another sha256.

        The sink has the bytes before the check: the caller discards them on an error.
        """
        writer = HashingWriter(sink)  # type: ignore[arg-type]
        try:
            self.fetcher.download(
                info.url, writer, max_size=info.size, progress=progress, cancel=cancel
            )
        except TooLargeError:
            raise TufRefusedError(
                f"{self.fetcher.url_of(info.url)}: longer than the registry signed "
                f"(expected {info.size} bytes)"
            ) from None
        except NotFoundError as e:
            # Signed, so it exists: a download failure, never "no such plugin".
            raise FetchError(
                f"{self.fetcher.url_of(info.url)}: not served, though the registry signs "
                f"{info.path} ({e}); the registry is incomplete or being published: "
                f"try again later"
            ) from None
        if writer.size != info.size or writer.hexdigest() != info.sha256:
            raise TufRefusedError(
                f"{self.fetcher.url_of(info.url)}: does not match what the registry signed "
                f"for {info.path} (expected sha256 {info.sha256} and {info.size} bytes, got "
                f"{writer.hexdigest()} and {writer.size}): tampered, or from another build"
            )

    # --- errors ----------------------------------------------------------------------------

    def _guard(self, call: Callable[[], _T]) -> _T:
        """Run a python-tuf call; turn its errors into ours, with what a person can act on."""
        try:
            return call()
        except (tuf_errors.DownloadError, OSError) as e:
            if self.offline and not isinstance(e, tuf_errors.DownloadHTTPError):
                raise FetchError(
                    f"{self.location}: the registry's signed metadata is not all kept in "
                    f"{self.state} ({e}); run once without --offline first"
                ) from None
            if isinstance(e, OSError):
                raise PlugindexError(
                    f"{self.state}: cannot keep the registry's trusted metadata ({e.strerror})"
                ) from None
            self.fetcher.discard(layout.TIMESTAMP)  # never reuse a copy that failed
            raise explain(e, self.location, self._bridge.last, self.state / METADATA_DIR) from None
        except tuf_errors.RepositoryError as e:
            self.fetcher.discard(layout.TIMESTAMP)  # never reuse a copy that failed
            raise explain(e, self.location, self._bridge.last, self.state / METADATA_DIR) from None


def open_client(
    fetcher: Fetcher,
    data_dir: Path,
    name: str,
    cache_dir: Path | None = None,
    *,
    offline: bool = False,
) -> TufClient:
    """Return the TUF client of a registry added with `registry add` (or pinned before)."""
    folder = trust_dir(data_dir, name)
    found = pinned_root(folder)
    if found is None:
        raise TufRefusedError(
            f"{fetcher.location}: no trusted root for this registry (add it with "
            f"`plugindex registry add NAME URL --root FILE_OR_SHA256`, or pass --root)"
        )
    return TufClient(fetcher, folder, found[1], targets_cache(cache_dir, name), offline)


def trust_registry(
    fetcher: Fetcher, data_dir: Path, name: str, root_spec: str, cache_dir: Path | None = None
) -> TufClient:
    """Pin a registry's root (a file or a sha256) and return its client, refreshed."""
    folder = pin_registry(fetcher, data_dir, name, root_spec)
    found = pinned_root(folder)
    assert found is not None  # just pinned
    client = TufClient(fetcher, folder, found[1], targets_cache(cache_dir, name))
    client.refresh()
    return client
