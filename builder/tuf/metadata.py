"""The signed metadata of one build: roots, bins, targets, snapshot and timestamp.

Every role's version is a time in seconds since 1970: the build's own (from the
source commit or SOURCE_DATE_EPOCH, never the clock) when the role is signed anew,
bumped past what is live when that is newer; it expires `expiry` days after that
time. A role whose content is unchanged and not yet half-way to its expiry keeps
its live version, and since Ed25519 signatures are deterministic its file comes out
byte for byte the same, so publishing uploads only the bins that changed, the
snapshot and the timestamp. Targets are spread over `2**bits` hashed bins
(TUF's succinct hashed-bin delegation) signed by the targets key; config.json, which
every client reads first, is listed by the top-level targets role itself.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from securesystemslib.signer import Key, Signer
from tuf.api.exceptions import RepositoryError, UnsignedMetadataError
from tuf.api.metadata import (
    Delegations,
    Metadata,
    MetaFile,
    Root,
    Signed,
    Snapshot,
    SuccinctRoles,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import JSONSerializer

from builder.common import layout
from builder.common.errors import PlugindexError
from builder.common.thresholds import check_distinct_keys as distinct_keys
from builder.tuf.keys import SNAPSHOT, TARGETS, TIMESTAMP

log = logging.getLogger(__name__)

DAY = 86400  # seconds
_MAX_VERSION = 200_000_000_000  # seconds since 1970 (year ~8300): past it, no expiry fits
BINS = "bins"  # delegated role names: bins-00 … bins-ff
# Targets the top-level targets role lists itself rather than a bin: every client
# reads config.json first, and the targets role is fetched anyway, so this saves the
# request for config.json's bin. It changes with the registry's settings, rarely.
TOP_LEVEL_TARGETS = frozenset({layout.CONFIG})
SERIALIZER = JSONSerializer(compact=True)


class TufError(PlugindexError):
    """The registry's TUF metadata cannot be made or read."""


class Target(NamedTuple):
    sha256: str
    size: int  # bytes


@dataclass(frozen=True)
class Expiry:
    """Days each role stays valid once signed (registry.yaml `tuf.expiry`)."""

    root: int = 365
    targets: int = 30
    snapshot: int = 7
    timestamp: int = 1

    def seconds(self, role: str) -> int:
        """Return a role's validity in seconds (bins share the targets role's)."""
        return int(getattr(self, role if role in (TARGETS, SNAPSHOT, TIMESTAMP) else TARGETS)) * DAY


class Previous(Protocol):
    """The registry's metadata as last published (or last built): what versions to beat."""

    def read(self, path: str) -> bytes | None:
        """Return a published file's bytes, or None when there is none."""
        ...

    def sha256(self, path: str) -> str | None:
        """Return a published file's sha256, or None when there is none."""
        ...


@dataclass(frozen=True)
class MetaOut:
    """One metadata file of the build: its bytes (None: unchanged on disk), hash and size."""

    path: str
    data: bytes | None
    sha256: str
    size: int


def utc(seconds: int) -> datetime.datetime:
    """Return a time in seconds since 1970 as an aware UTC datetime."""
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def metadata_path(role: str, version: int | None = None) -> str:
    """Return the published path of a role's metadata (versioned unless timestamp)."""
    return (
        f"{layout.METADATA}{role}.json"
        if version is None
        else (f"{layout.METADATA}{version}.{role}.json")
    )


def sign(signed: Signed, signers: Sequence[Signer]) -> bytes:
    """Return the metadata file of `signed`, signed by every signer given."""
    envelope: Metadata[Any] = Metadata(signed)
    for signer in signers:
        envelope.sign(signer, append=True)
    return envelope.to_bytes(SERIALIZER)


def bins_of(bits: int, keyids: Sequence[str]) -> SuccinctRoles:
    """Return the hashed-bin delegation: 2**bits bins named bins-<hex>."""
    return SuccinctRoles(list(keyids), 1, bits, BINS)


def bin_index(path: str, bits: int) -> int:
    """Return the bin of a target path: the top `bits` bits of its sha256 (as TUF's)."""
    digest = hashlib.sha256(path.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - bits)


def parse(data: bytes, role: str, where: str) -> Metadata[Any]:
    """Parse a metadata file of `role`; raise TufError naming `where` if it is not one."""
    try:
        parsed: Metadata[Any] = Metadata.from_bytes(data)
    except (DeserializationError, ValueError, KeyError, TypeError) as e:
        raise TufError(f"{where}: not TUF metadata ({e})") from None
    if parsed.signed.type != role:
        raise TufError(f"{where}: expected {role} metadata, got {parsed.signed.type}")
    return parsed


def check_distinct_keys(root: Root, where: str) -> None:
    """Refuse a root that lists one public key under two key ids (it would count twice)."""
    public = {keyid: str(key.keyval.get("public", "")) for keyid, key in root.keys.items()}
    distinct_keys(public, where, TufError)


def check_root_chain(roots: Sequence[bytes], where: Callable[[int], str], now: int | None) -> Root:
    """Check that roots 1..N each sign the next; return the newest (refused if expired at `now`)."""
    if not roots:
        raise TufError(f"{where(1)}: missing (expected 1.root.json; run plugindex registry init)")
    trusted: Metadata[Root] | None = None
    for number, data in enumerate(roots, start=1):
        current: Metadata[Root] = parse(data, Root.type, where(number))
        if current.signed.version != number:
            raise TufError(f"{where(number)}: version {current.signed.version} (expected {number})")
        try:
            for signer_root in (trusted, current) if trusted is not None else (current,):
                signer_root.signed.verify_delegate(
                    Root.type, current.signed_bytes, current.signatures
                )
        except UnsignedMetadataError as e:
            raise TufError(f"{where(number)}: not signed by enough root keys ({e})") from None
        except RepositoryError as e:
            raise TufError(f"{where(number)}: {e}") from None
        check_distinct_keys(current.signed, where(number))
        trusted = current
    assert trusted is not None
    root = trusted.signed
    if not root.consistent_snapshot:
        raise TufError(f"{where(len(roots))}: expected consistent_snapshot: true")
    if now is not None and root.expires <= utc(now):
        raise TufError(
            f"{where(len(roots))}: root version {root.version} expired on "
            f"{root.expires:%Y-%m-%d %H:%M} UTC (build time {utc(now):%Y-%m-%d %H:%M}); "
            f"sign a new one with plugindex registry rotate-root"
        )
    return root


@dataclass
class Generator:
    """Sign one build's metadata against what was live before it.

    `state` maps a role to [digest of its inputs, version, sha256] from the last
    build, so a role whose inputs and live file are unchanged is not even re-signed.
    """

    root: Root
    expiry: Expiry
    bits: int
    now: int  # the build's time, seconds since 1970
    previous: Previous
    signer_for: Callable[[str], Signer]
    on_disk: Mapping[str, int]
    state: dict[str, list[Any]] = field(default_factory=dict)
    signed_roles: list[str] = field(default_factory=list)  # roles signed anew, for the report
    _live: dict[str, int] = field(default_factory=dict)

    def generate(self, targets: Mapping[str, Target]) -> dict[str, MetaOut]:
        """Return every metadata file of the build (roots are added by the caller)."""
        self._live = self._live_versions()
        out: dict[str, MetaOut] = {}
        targets_keys = [self.root.get_key(k) for k in self.root.roles[TARGETS].keyids]
        succinct = bins_of(self.bits, [k.keyid for k in targets_keys])
        grouped: dict[int, dict[str, Target]] = {}
        top = {p: t for p, t in targets.items() if p in TOP_LEVEL_TARGETS}
        for path, target in targets.items():
            if path not in top:
                grouped.setdefault(bin_index(path, self.bits), {})[path] = target
        meta: dict[str, MetaFile] = {}
        for number, name in enumerate(succinct.get_roles()):
            entries = grouped.get(number, {})
            made = self._role(name, _bin_maker(entries), _digest(sorted(entries.items())))
            out[made.path] = made
            meta[f"{name}.json"] = MetaFile(self._version_of(made))
        # The delegation is an input too: a new `tuf.bins` must re-sign the targets role.
        inputs = _digest({"top": sorted(top.items()), "bits": self.bits})
        made = self._role(TARGETS, _targets_maker(targets_keys, succinct, top), inputs)
        out[made.path] = made
        meta[f"{TARGETS}.json"] = MetaFile(self._version_of(made))
        # A role the live snapshot lists stays listed (TUF clients refuse a snapshot
        # that drops one): after `tuf.bins` changes, the old bins keep their entries,
        # though no delegation names them and no client fetches them again.
        for role, version in self._live.items():
            if role not in (SNAPSHOT, TIMESTAMP) and f"{role}.json" not in meta:
                meta[f"{role}.json"] = MetaFile(version)
        snapshot_inputs = sorted((k, v.version) for k, v in meta.items())
        made = self._role(SNAPSHOT, _snapshot_maker(meta), _digest(snapshot_inputs))
        out[made.path] = made
        snapshot_file = MetaFile(self._version_of(made), made.size, {"sha256": made.sha256})
        made = self._role(
            TIMESTAMP,
            _timestamp_maker(snapshot_file),
            _digest([snapshot_file.version, made.sha256]),
            versioned=False,
        )
        out[made.path] = made
        return out

    @staticmethod
    def _version_of(made: MetaOut) -> int:
        return int(made.path.rsplit("/", 1)[1].split(".", 1)[0])

    def _live_versions(self) -> dict[str, int]:
        """Return the live version of every role, read from the live timestamp and snapshot."""
        versions: dict[str, int] = {}
        stamp_path = metadata_path(TIMESTAMP)
        data = self.previous.read(stamp_path)
        if data is None:
            return versions
        stamp: Metadata[Timestamp] = parse(data, Timestamp.type, stamp_path)
        if self._trusted(stamp, TIMESTAMP, stamp_path):
            versions[TIMESTAMP] = stamp.signed.version
        snap_version = stamp.signed.snapshot_meta.version
        versions[SNAPSHOT] = snap_version
        snap_path = metadata_path(SNAPSHOT, snap_version)
        data = self.previous.read(snap_path)
        if data is None:
            raise TufError(
                f"{snap_path}: missing, though {stamp_path} names it (a damaged previous "
                f"build or registry; publish a complete build first)"
            )
        snapshot: Metadata[Snapshot] = parse(data, Snapshot.type, snap_path)
        if not self._trusted(snapshot, SNAPSHOT, snap_path):
            return versions
        for name, info in snapshot.signed.meta.items():
            versions[name.removesuffix(".json")] = info.version
        return versions

    def _trusted(self, live: Metadata[Any], role: str, where: str) -> bool:
        """Return whether live metadata is signed by keys the root still authorises.

        After a key rotation, versions signed by the old key (perhaps fast-forwarded
        by whoever stole it) are not what new versions must go past.
        """
        try:
            self.root.verify_delegate(role, live.signed_bytes, live.signatures)
        except (UnsignedMetadataError, ValueError):
            log.warning("%s: not signed by the current %s key: its version is ignored", where, role)
            return False
        if live.signed.version > _MAX_VERSION:
            raise TufError(
                f"{where}: version {live.signed.version} is beyond any time (a fast-forward "
                f"by a stolen {role} key?); rotate that key with plugindex registry rotate-root"
            )
        return True

    def _role(
        self,
        role: str,
        make: Callable[[int, datetime.datetime], Signed],
        inputs: str,
        *,
        versioned: bool = True,
    ) -> MetaOut:
        """Keep a role's live file when nothing changed, else sign a new version."""
        period = self.expiry.seconds(role)
        signer = None
        digest = _digest([inputs, period, self.root.roles[_key_role(role)].keyids])
        live = self._live.get(role)
        if live is not None and live + period - self.now > period // 2:
            path = metadata_path(role, live if versioned else None)
            live_sha = self.previous.sha256(path)
            size = self.on_disk.get(path)
            if (
                live_sha is not None
                and size is not None
                and self.state.get(role)
                == [
                    digest,
                    live,
                    live_sha,
                ]
            ):
                return MetaOut(path, None, live_sha, size)
            signer = self.signer_for(_key_role(role))
            data = sign(make(live, utc(live + period)), [signer])
            sha256 = hashlib.sha256(data).hexdigest()
            if sha256 == live_sha:
                self.state[role] = [digest, live, sha256]
                return MetaOut(path, data, sha256, len(data))
        version = max(self.now, (live or 0) + 1)
        signer = signer or self.signer_for(_key_role(role))
        data = sign(make(version, utc(version + period)), [signer])
        sha256 = hashlib.sha256(data).hexdigest()
        self.state[role] = [digest, version, sha256]
        self.signed_roles.append(role)
        return MetaOut(metadata_path(role, version if versioned else None), data, sha256, len(data))


def _key_role(role: str) -> str:
    """Return the top-level role whose key signs `role` (bins: the targets key)."""
    return TARGETS if role.startswith(BINS + "-") else role


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()


def _bin_maker(entries: Mapping[str, Target]) -> Callable[[int, datetime.datetime], Signed]:
    def make(version: int, expires: datetime.datetime) -> Signed:
        files = {
            path: TargetFile(target.size, {"sha256": target.sha256}, path)
            for path, target in sorted(entries.items())
        }
        return Targets(version=version, expires=expires, targets=files)

    return make


def _targets_maker(
    keys: Sequence[Key], succinct: SuccinctRoles, top: Mapping[str, Target]
) -> Callable[[int, datetime.datetime], Signed]:
    def make(version: int, expires: datetime.datetime) -> Signed:
        delegations = Delegations(
            keys={k.keyid: k for k in keys}, roles=None, succinct_roles=succinct
        )
        files = {
            path: TargetFile(target.size, {"sha256": target.sha256}, path)
            for path, target in sorted(top.items())
        }
        return Targets(version=version, expires=expires, targets=files, delegations=delegations)

    return make


def _snapshot_maker(meta: Mapping[str, MetaFile]) -> Callable[[int, datetime.datetime], Signed]:
    def make(version: int, expires: datetime.datetime) -> Signed:
        return Snapshot(version=version, expires=expires, meta=dict(sorted(meta.items())))

    return make


def _timestamp_maker(snapshot: MetaFile) -> Callable[[int, datetime.datetime], Signed]:
    def make(version: int, expires: datetime.datetime) -> Signed:
        return Timestamp(version=version, expires=expires, snapshot_meta=snapshot)

    return make
