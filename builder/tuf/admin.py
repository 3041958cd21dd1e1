"""The operator's side of TUF: set a registry up, rotate its root, refresh its timestamp.

`init_registry` writes root 1 into the index (committed and reviewed like any
change) and every role's first key as files for the operator to move: the root keys
offline, the online keys into CI secrets. `rotate_root` writes root N+1, signed by
the thresholds of root N and of root N+1, so clients follow the chain.
`refresh_timestamp` re-signs, with the clock, the timestamp of a published registry
(and every other online role close to its expiry) without a rebuild.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from securesystemslib.signer import CryptoSigner, Key, Signer
from tuf.api.metadata import Metadata, MetaFile, Role, Root, Snapshot, Targets, Timestamp
from tuf.api.serialization.json import JSONSerializer

from builder.common.files import write_atomic
from builder.format.paths import REGISTRY_FILE, TUF_DIR
from builder.tuf.keys import (
    ONLINE,
    ROOT,
    SNAPSHOT,
    TARGETS,
    TIMESTAMP,
    TOP_LEVEL,
    generate,
    short_id,
    write_private,
)
from builder.tuf.metadata import (
    Expiry,
    TufError,
    check_distinct_keys,
    check_root_chain,
    metadata_path,
    parse,
    sign,
    utc,
)
from builder.tuf.sizing import bins_for
from builder.tuf.stage import root_files

ROOT_SERIALIZER = JSONSerializer(compact=False)  # root is committed: readable in a diff
DEFAULT_EXPIRY = Expiry()


class MetadataStore(Protocol):
    """Where a published registry's metadata is read and written (a bucket, a folder)."""

    def read(self, path: str) -> bytes | None:
        """Return a published file, or None when there is none."""
        ...

    def write(self, path: str, data: bytes) -> None:
        """Publish a file (metadata is small: whole bytes)."""
        ...


@dataclass(frozen=True)
class InitResult:
    root: Path
    keys: dict[str, list[Path]]  # role -> private key files written
    bins: int


def count_targets(index: Path) -> int:
    """Estimate the targets an index makes: a document per plugin, an artifact per version."""
    plugins = list((index / "plugins").glob("*/plugin.yaml"))
    versions = list((index / "plugins").glob("*/versions/*.yaml"))
    return 2 * len(plugins) + len(versions) + 10


def init_registry(
    index: Path,
    keys_out: Path,
    *,
    root_keys: int = 3,
    threshold: int = 2,
    bins: int | None = None,
    expiry: Expiry = DEFAULT_EXPIRY,
    now: datetime.datetime | None = None,
) -> InitResult:
    """Create root 1 in `index`/tuf and every role's keys in `keys_out`; size the bins."""
    if root_files(index):
        raise TufError(
            f"{index / TUF_DIR}: the registry already has a root (rotate it with "
            f"plugindex registry rotate-root)"
        )
    if not 1 <= threshold <= root_keys:
        raise TufError(f"--threshold {threshold}: expected 1 to {root_keys} (the root keys)")
    when = now or datetime.datetime.now(datetime.UTC)
    signers: dict[str, list[CryptoSigner]] = {
        ROOT: [generate() for _ in range(root_keys)],
        **{role: [generate()] for role in ONLINE},
    }
    root = Root(
        version=1,
        expires=(when + datetime.timedelta(days=expiry.root)).replace(microsecond=0),
        consistent_snapshot=True,
    )
    for role, role_signers in signers.items():
        for signer in role_signers:
            root.add_key(signer.public_key, role)
    root.roles[ROOT].threshold = threshold
    written: dict[str, list[Path]] = {}
    for role, role_signers in signers.items():
        for number, signer in enumerate(role_signers, start=1):
            name = f"{role}-{number}.pem" if role == ROOT else f"{role}.pem"
            write_private(keys_out / name, signer)
            written.setdefault(role, []).append(keys_out / name)
    target = index / TUF_DIR / "1.root.json"
    envelope: Metadata[Root] = Metadata(root)
    for signer in signers[ROOT]:
        envelope.sign(signer, append=True)
    write_atomic(target, envelope.to_bytes(ROOT_SERIALIZER) + b"\n")
    count = bins or bins_for(count_targets(index))
    _add_settings(index / REGISTRY_FILE, count)
    return InitResult(target, written, count)


def _add_settings(registry_file: Path, bins: int) -> None:
    """Append a `tuf:` section to registry.yaml unless it has one (comments are kept)."""
    text = registry_file.read_text(encoding="utf-8")
    if any(line.startswith("tuf:") for line in text.splitlines()):
        return
    block = (
        "\n# The registry's signed metadata (TUF; docs/tuf.md). Root: tuf/N.root.json.\n"
        "tuf:\n"
        f"  bins: {bins}  # hashed bins the targets are spread over\n"
        "  expiry: {root: 365, targets: 30, snapshot: 7, timestamp: 1}  # days\n"
        "  # Online keys, by default from $PLUGINDEX_TUF_<ROLE>_KEY (base64):\n"
        "  # signers: {timestamp: env:MY_TIMESTAMP_KEY}\n"
    )
    write_atomic(registry_file, (text.rstrip("\n") + "\n" + block).encode("utf-8"))


def base64_key(path: Path) -> str:
    """Return a key file as the base64 a CI secret holds."""
    return base64.b64encode(path.read_bytes()).decode("ascii")


def rotate_root(
    index: Path,
    signers: Sequence[Signer],
    *,
    keys: Mapping[str, Sequence[Key]] | None = None,
    thresholds: Mapping[str, int] | None = None,
    expiry: Expiry = DEFAULT_EXPIRY,
    now: datetime.datetime | None = None,
) -> Path:
    """Write root N+1 with the new `keys`/`thresholds` per role, signed by old and new roots."""
    files = root_files(index)
    when = now or datetime.datetime.now(datetime.UTC)
    # The current root may have expired: rotating is how an expired root is renewed.
    current = check_root_chain([f.read_bytes() for f in files], lambda n: str(files[n - 1]), None)
    old: Metadata[Root] = Metadata.from_bytes(files[-1].read_bytes())
    new = Root.from_dict(old.signed.to_dict())
    new.version = current.version + 1
    new.expires = (when + datetime.timedelta(days=expiry.root)).replace(microsecond=0)
    _change_roles(new, keys or {}, thresholds or {})
    target = files[-1].with_name(f"{new.version}.root.json")
    check_distinct_keys(new, str(target))
    envelope: Metadata[Root] = Metadata(new)
    useful = set(current.roles[ROOT].keyids) | set(new.roles[ROOT].keyids)
    for signer in signers:
        if signer.public_key.keyid in useful:
            envelope.sign(signer, append=True)
    for name, trusted in ((f"root {current.version}", current), (f"root {new.version}", new)):
        result = trusted.get_verification_result(ROOT, envelope.signed_bytes, envelope.signatures)
        if not result.verified:
            have = ", ".join(short_id(k) for k in result.signed) or "none"
            need = ", ".join(short_id(k) for k in result.unsigned)
            raise TufError(
                f"{target}: not written: {name} needs {result.threshold} of its root keys, "
                f"got {len(result.signed)} ({have}); sign also with: {need}"
            )
    write_atomic(target, envelope.to_bytes(ROOT_SERIALIZER) + b"\n")
    return target


def _change_roles(
    new: Root, keys: Mapping[str, Sequence[Key]], thresholds: Mapping[str, int]
) -> None:
    """Replace the keys and thresholds of the roles named; check every threshold can be met."""
    for role, role_keys in keys.items():
        if role not in TOP_LEVEL:
            raise TufError(f"{role}: not a role (expected one of {', '.join(TOP_LEVEL)})")
        if not role_keys:
            raise TufError(f"{role}: expected at least one key")
        for keyid in list(new.roles[role].keyids):
            new.revoke_key(keyid, role)
        for key in role_keys:
            new.add_key(key, role)
    for role, value in thresholds.items():
        if role not in TOP_LEVEL:
            raise TufError(f"{role}: not a role (expected one of {', '.join(TOP_LEVEL)})")
        new.roles[role].threshold = value
    for role, delegated in new.roles.items():
        if not 1 <= delegated.threshold <= len(delegated.keyids):
            raise TufError(
                f"{role}: threshold {delegated.threshold} with {len(delegated.keyids)} keys "
                f"(expected 1 to the number of keys)"
            )


@dataclass
class Refreshed:
    written: list[str] = field(default_factory=list)  # in upload order
    expires: dict[str, datetime.datetime] = field(default_factory=dict)


def refresh_timestamp(
    store: MetadataStore,
    root: Root,
    signer_for: Callable[[str], Signer],
    *,
    expiry: Expiry = DEFAULT_EXPIRY,
    now: datetime.datetime | None = None,
) -> Refreshed:
    """Re-sign the live timestamp, and any online role within half its validity of expiring.

    The clock is used here (and only here): this is what keeps a registry with no new
    builds fresh. Files go up bins and targets first, the snapshot, the timestamp last.
    """
    seconds = int((now or datetime.datetime.now(datetime.UTC)).timestamp())
    stamp_path = metadata_path(TIMESTAMP)
    data = store.read(stamp_path)
    if data is None:
        raise TufError(f"{stamp_path}: not found (publish a signed build first)")
    stamp: Metadata[Timestamp] = parse(data, Timestamp.type, stamp_path)
    snapshot_path = metadata_path(SNAPSHOT, stamp.signed.snapshot_meta.version)
    data = store.read(snapshot_path)
    if data is None:
        raise TufError(f"{snapshot_path}: not found, though {stamp_path} names it")
    snapshot: Metadata[Snapshot] = parse(data, Snapshot.type, snapshot_path)
    done = Refreshed()

    def due(role: str, version: int) -> bool:
        period = expiry.seconds(role)
        return version + period - seconds <= period // 2

    meta = dict(snapshot.signed.meta)
    for name, info in sorted(meta.items(), key=lambda item: item[0] == f"{TARGETS}.json"):
        role = name.removesuffix(".json")
        if not due(role, info.version):
            continue
        path = metadata_path(role, info.version)
        raw = store.read(path)
        if raw is None:
            raise TufError(f"{path}: not found, though {snapshot_path} names it")
        old: Metadata[Targets] = parse(raw, Targets.type, path)
        version = max(seconds, info.version + 1)
        old.signed.version = version
        old.signed.expires = utc(version + expiry.seconds(role))
        key_role = TARGETS
        _put(store, metadata_path(role, version), sign(old.signed, [signer_for(key_role)]), done)
        done.expires[role] = old.signed.expires
        meta[name] = MetaFile(version)
    snapshot_file = stamp.signed.snapshot_meta
    if meta != snapshot.signed.meta or due(SNAPSHOT, snapshot.signed.version):
        version = max(seconds, snapshot.signed.version + 1)
        new_snapshot = Snapshot(
            version=version, expires=utc(version + expiry.seconds(SNAPSHOT)), meta=meta
        )
        body = sign(new_snapshot, [signer_for(SNAPSHOT)])
        _put(store, metadata_path(SNAPSHOT, version), body, done)
        done.expires[SNAPSHOT] = new_snapshot.expires
        snapshot_file = MetaFile(version, len(body), {"sha256": hashlib.sha256(body).hexdigest()})
    version = max(seconds, stamp.signed.version + 1)
    new_stamp = Timestamp(
        version=version,
        expires=utc(version + expiry.seconds(TIMESTAMP)),
        snapshot_meta=snapshot_file,
    )
    _put(store, stamp_path, sign(new_stamp, [signer_for(TIMESTAMP)]), done)
    done.expires[TIMESTAMP] = new_stamp.expires
    return done


def _put(store: MetadataStore, path: str, data: bytes, done: Refreshed) -> None:
    store.write(path, data)
    done.written.append(path)


def describe_root(root: Root) -> list[str]:
    """Return a root's roles, thresholds and key ids, one line each, for people."""
    lines = [f"root version {root.version}, expires {root.expires:%Y-%m-%d}"]
    for name in TOP_LEVEL:
        role: Role = root.roles[name]
        ids = ", ".join(short_id(k) for k in role.keyids)
        lines.append(f"  {name}: {role.threshold} of {len(role.keyids)} ({ids})")
    return lines


def as_dict(result: InitResult) -> dict[str, Any]:
    """Return what init did, for --json."""
    return {
        "root": str(result.root),
        "bins": result.bins,
        "keys": {role: [str(p) for p in paths] for role, paths in result.keys.items()},
    }
