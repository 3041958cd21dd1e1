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
changed (a 304 answers everything: the snapshot and bins are kept, targets are
cached by hash); otherwise the new snapshot and the bins the lookups need.

Offline (`--offline`), nothing is fetched: the metadata kept by the last online run
is used as it was then (its signatures checked again, its expiry judged at that
run's time: it was current then, and no one could have fed it since).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TypeVar

from builder.common import layout
from builder.common.errors import FetchError, PlugindexError
from builder.common.exits import ExitCode
from builder.common.fetch import Fetcher, NotFoundError, TooLargeError
from builder.common.files import HashingWriter, write_atomic
from builder.common.http_client import Progress, Sink

# tuf.api.metadata imports securesystemslib.signer, which imports boto3 for an AWS KMS
# signer no client uses: a third of `plugindex search`'s start-up. boto3 is hidden
# while tuf loads (that signer then reports it missing); later imports find it again.
_HIDE_BOTO3 = "boto3" not in sys.modules
if _HIDE_BOTO3:
    sys.modules["boto3"] = None  # type: ignore[assignment]  # None: ImportError
try:
    from tuf.api import exceptions as tuf_errors
    from tuf.api.metadata import Metadata, Root, Timestamp
    from tuf.ngclient import FetcherInterface, Updater, UpdaterConfig
finally:
    if _HIDE_BOTO3:
        del sys.modules["boto3"]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

PINNED_ROOT = "pinned.root.json"  # the root a registry is trusted from (the pin)
TRUST_FILE = "trust.json"  # the registry's URL and the pin's sha256
METADATA_DIR = "metadata"  # python-tuf's state: root history, timestamp, snapshot, bins
REFRESHED_FILE = "refreshed.json"  # when the state was last brought up to date online
_SHA256 = re.compile(r"[0-9a-f]{64}")
_EXPIRED = re.compile(r"(?:New |Final )?([\w.-]+?)(?:\.json)? is expired")
# Caps for metadata python-tuf downloads without a known length (bytes).
LIMITS = UpdaterConfig(
    max_root_rotations=64,
    root_max_length=512 * 1024,
    timestamp_max_length=16 * 1024,
    snapshot_max_length=4 * 1024 * 1024,
    targets_max_length=16 * 1024 * 1024,
)


class TufRefusedError(PlugindexError):
    """The registry's signed metadata, or a file it names, failed verification."""

    exit_code = ExitCode.REFUSED


class NoTufError(TufRefusedError):
    """The registry serves no TUF metadata (the user may opt out: --insecure-no-tuf)."""


class TargetInfo(NamedTuple):
    """A file as the registry signed it."""

    path: str  # the target path: `index/au/th/auth-jwt.json`
    sha256: str
    size: int  # bytes
    url: str  # registry-relative: where its consistent copy is served


# --- the pin -----------------------------------------------------------------------------


def trust_dir(data_dir: Path, name: str) -> Path:
    """Return the folder holding a registry's pin and TUF state."""
    return data_dir / "tuf" / name


def registry_slug(location: str) -> str:
    """Return a folder name for a registry known only by its URL (--registry URL --root)."""
    return "url-" + hashlib.sha256(location.rstrip("/").encode("utf-8")).hexdigest()[:16]


def resolve_root(spec: str, fetcher: Fetcher) -> bytes:
    """Return the root bytes a `--root` names: a root file, or the sha256 of root 1.

    A sha256 pins what the network serves as `metadata/1.root.json`: the bytes are
    used only if their sha256 is the one given.
    """
    value = spec.strip().lower()
    if _SHA256.fullmatch(value):
        ref = f"{layout.METADATA}1.root.json"
        try:
            data = fetcher.document(ref, max_size=LIMITS.root_max_length)
        except NotFoundError:
            raise NoTufError(
                f"{fetcher.url_of(ref)}: not found (the registry serves no TUF metadata; "
                f"use --insecure-no-tuf to read it unverified)"
            ) from None
        got = hashlib.sha256(data).hexdigest()
        if got != value:
            fetcher.discard(ref)
            raise TufRefusedError(
                f"{fetcher.url_of(ref)}: not the pinned root (expected sha256 {value}, got {got})"
            )
        return _checked_root(data, fetcher.url_of(ref))
    path = Path(spec).expanduser()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PlugindexError(
            f"{spec}: cannot read the root ({e.strerror}; expected a root.json file or "
            f"the 64-hex sha256 of the registry's first root)"
        ) from None
    return _checked_root(data, str(path))


def _checked_root(data: bytes, where: str) -> bytes:
    """Return root bytes after checking they parse, sign themselves and list no key twice."""
    try:
        root: Metadata[Root] = Metadata.from_bytes(data)
        if not isinstance(root.signed, Root):
            raise TypeError(f"a {root.signed.type} file")
        root.signed.verify_delegate(Root.type, root.signed_bytes, root.signatures)
    except (tuf_errors.RepositoryError, ValueError, TypeError, KeyError) as e:
        cause = f": {e.__cause__}" if e.__cause__ is not None else ""
        raise TufRefusedError(f"{where}: not a valid TUF root ({e}{cause})") from None
    _check_distinct_keys(root.signed, where)
    return data


def _check_distinct_keys(root: Root, where: str) -> None:
    """Refuse a root listing one public key under two ids: it would count twice."""
    seen: dict[str, str] = {}
    for keyid, key in root.keys.items():
        value = str(key.keyval.get("public", ""))
        if value in seen:
            raise TufRefusedError(
                f"{where}: keys {seen[value][:16]} and {keyid[:16]} are the same public key "
                f"(a key may count only once toward a threshold)"
            )
        seen[value] = keyid


def pin_root(folder: Path, location: str, root: bytes) -> None:
    """Store the root a registry is trusted from, and its sha256, durably."""
    write_atomic(folder / PINNED_ROOT, root, durable=True)
    trust = {"url": location, "root_sha256": hashlib.sha256(root).hexdigest()}
    write_atomic(folder / TRUST_FILE, json.dumps(trust, indent=1).encode("utf-8"), durable=True)


def pinned_root(folder: Path) -> tuple[str, bytes] | None:
    """Return the URL and pinned root of a registry, refusing a pin edited on disk."""
    try:
        trust = json.loads((folder / TRUST_FILE).read_bytes())
        root = (folder / PINNED_ROOT).read_bytes()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise TufRefusedError(
            f"{folder / TRUST_FILE}: unreadable ({e}); add the registry again"
        ) from None
    got = hashlib.sha256(root).hexdigest()
    if not isinstance(trust, dict) or trust.get("root_sha256") != got:
        expected = trust.get("root_sha256") if isinstance(trust, dict) else None
        raise TufRefusedError(
            f"{folder / PINNED_ROOT}: changed on disk (expected sha256 {expected}, got "
            f"{got}); the trust in this registry is not used: add it again with "
            f"`plugindex registry add NAME URL --root FILE_OR_SHA256`"
        )
    return str(trust.get("url", "")), _checked_root(root, str(folder / PINNED_ROOT))


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
            _checked_root(data, self.fetcher.url_of(url))
        return data


class _Updater(Updater):
    offline = False  # read the kept state only: no metadata is fetched

    def _persist_file(self, filename: str, data: bytes) -> None:
        path = Path(filename)
        try:
            if path.read_bytes() == data:  # the pinned root, written again on every start
                return
        except OSError:
            pass
        # The trusted state must survive a crash as the plugins folder does.
        write_atomic(path, data, durable=True)

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
    cache: Path | None = None  # where fetched targets are kept by sha256
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
        if not _SHA256.fullmatch(sha256):
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

        A target already fetched (by any earlier run) comes from the cache, by its hash.
        """
        info = path if isinstance(path, TargetInfo) else self.target_info(path)
        cached = self._cached(info)
        if cached is not None:
            return cached
        buffer = io.BytesIO()
        self.download_target(info, buffer, cancel=cancel)
        data = buffer.getvalue()
        self._keep(info, data)
        return data

    def forget(self, info: TargetInfo) -> None:
        """Drop a target's cached bytes (they verified, but what they say was refused)."""
        blob = self._blob(info)
        if blob is not None:
            try:
                blob.unlink(missing_ok=True)
            except OSError as e:
                log.warning("cannot remove %s from the cache: %s", blob, e)

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
        if writer.size != info.size or writer.hexdigest() != info.sha256:
            raise TufRefusedError(
                f"{self.fetcher.url_of(info.url)}: does not match what the registry signed "
                f"for {info.path} (expected sha256 {info.sha256} and {info.size} bytes, got "
                f"{writer.hexdigest()} and {writer.size}): tampered, or from another build"
            )

    # --- the target cache ---------------------------------------------------------------

    def _blob(self, info: TargetInfo) -> Path | None:
        return None if self.cache is None else self.cache / info.sha256[:2] / info.sha256

    def _cached(self, info: TargetInfo) -> bytes | None:
        blob = self._blob(info)
        try:
            data = blob.read_bytes() if blob is not None else None
        except OSError:
            return None
        if data is None or hashlib.sha256(data).hexdigest() != info.sha256:
            return None
        return data

    def _keep(self, info: TargetInfo, data: bytes) -> None:
        blob = self._blob(info)
        if blob is None:
            return
        try:
            write_atomic(blob, data)
        except OSError as e:
            log.warning("cannot write the cache (%s): %s", blob, e)

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
            raise self._explain(e) from None
        except tuf_errors.RepositoryError as e:
            self.fetcher.discard(layout.TIMESTAMP)  # never reuse a copy that failed
            raise self._explain(e) from None

    def _explain(self, error: Exception) -> PlugindexError:
        where = self.location
        text = str(error) or type(error).__name__
        if isinstance(error, tuf_errors.DownloadHTTPError) and error.status_code == 404:
            if self._bridge.last.get("timestamp") is None and "timestamp" in text:
                return NoTufError(
                    f"{where}: serves no TUF metadata ({text}); refusing an unsigned "
                    f"registry (use --insecure-no-tuf to read it unverified)"
                )
            return TufRefusedError(
                f"{where}: signed metadata names a file the registry does not serve ({text})"
            )
        if isinstance(error, tuf_errors.DownloadLengthMismatchError):
            return TufRefusedError(
                f"{where}: a metadata file is longer than allowed ({text}); refused"
            )
        if isinstance(error, tuf_errors.DownloadError):  # our fetcher's message: URL and cause
            return FetchError(text)
        if isinstance(error, tuf_errors.ExpiredMetadataError):
            return TufRefusedError(f"{where}: {self._expired(text)}")
        if isinstance(error, tuf_errors.BadVersionNumberError):
            return TufRefusedError(
                f"{where}: refused a rollback: {text} (the registry serves older metadata "
                f"than this client already trusted)"
            )
        if isinstance(error, tuf_errors.LengthOrHashMismatchError):
            return TufRefusedError(
                f"{where}: metadata does not match what the snapshot or timestamp signed "
                f"({text}): tampered, or mixed from two builds"
            )
        if isinstance(error, tuf_errors.UnsignedMetadataError):
            return TufRefusedError(
                f"{where}: metadata not signed by enough of the registry's keys ({text})"
            )
        return TufRefusedError(f"{where}: the registry's signed metadata was refused ({text})")

    def _expired(self, text: str) -> str:
        """Return a message naming the expired role and its expiry date."""
        match = _EXPIRED.search(text)
        role = match[1] if match else "metadata"
        data = self._bridge.last.get(role)
        if data is None:
            try:
                data = (self.state / METADATA_DIR / f"{role}.json").read_bytes()
            except OSError:
                data = None
        when = ""
        if data is not None:
            try:
                when = f" on {Metadata.from_bytes(data).signed.expires:%Y-%m-%d %H:%M} UTC"
            except (ValueError, KeyError, TypeError):
                when = ""
        return (
            f"the registry's {role} metadata expired{when} (a stale or frozen registry, or "
            f"this computer's clock is wrong); refusing it"
        )


def targets_cache(cache_dir: Path | None) -> Path | None:
    """Return where verified targets are kept by sha256 (shared by every registry)."""
    return cache_dir / "tuf-targets" if cache_dir else None


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
    return TufClient(fetcher, folder, found[1], targets_cache(cache_dir), offline)


def pin_registry(fetcher: Fetcher, data_dir: Path, name: str, root_spec: str) -> Path:
    """Pin a registry's root (a file or a sha256) under `name`; return its trust folder.

    A pin equal to the one kept changes nothing, so the state it verified stays.
    """
    folder = trust_dir(data_dir, name)
    root = resolve_root(root_spec, fetcher)
    existing = pinned_root(folder) if (folder / TRUST_FILE).exists() else None
    if existing is None or existing[1] != root:
        pin_root(folder, fetcher.location, root)
    return folder


def trust_registry(
    fetcher: Fetcher, data_dir: Path, name: str, root_spec: str, cache_dir: Path | None = None
) -> TufClient:
    """Pin a registry's root (a file or a sha256) and return its client, refreshed."""
    folder = pin_registry(fetcher, data_dir, name, root_spec)
    found = pinned_root(folder)
    assert found is not None  # just pinned
    client = TufClient(fetcher, folder, found[1], targets_cache(cache_dir))
    client.refresh()
    return client
