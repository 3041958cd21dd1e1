"""Check that the store still holds what the live record says: a sample on every
publish, every object with `--repair`.

The live record is the publisher's memory of the store. An object deleted or
overwritten behind its back (a lifecycle rule, a mistaken `aws s3 rm`, a restore
from an old backup) would never be uploaded again by an incremental publish, which
trusts the record. So before its first write each publish that uploads anything
HEADs, in parallel (a publish with nothing to upload sends no request but the read
of the record's root, so it checks nothing):

- a random sample of the live objects it keeps (`SAMPLE`, drawn afresh each run
  from a seed it logs, the same seed for every look within the run);
- every live object that the documents it uploads name without uploading it (the
  older versions' artifacts of a changed plugin), when there are at most
  `RELIED_ALL` of them, else a sample of those too;

and `--repair` HEADs every live object it keeps. An object that is missing, or
whose size or recorded sha256 differs from the build's, is uploaded again from the
build within the same publish (it joins the plan, in its place in the write
order), and the publish says so; a sample that finds damage suggests `--repair`,
since more may be gone. An object the build does not hold (an artifact a
`build --live` borrowed from the store) cannot be put back: the publish stops
before its first write and says how to rebuild.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from builder.common.files import sha256_of_file
from builder.publish.plan import Upload, UploadPlan
from builder.publish.record import PublishError
from builder.publish.storage import Head, Storage

log = logging.getLogger(__name__)

SAMPLE = 16  # live objects checked on every publish that uploads
RELIED_ALL = 64  # objects the plan relies on, checked one by one up to this many
_PARALLEL_CHECKS = 32  # HEAD requests in flight (the S3 client pools 32 connections)
_CHUNK = 4096  # keys handed to the pool at a time: a repair of millions stays small


class Damage(NamedTuple):
    """A live object the store lost or holds with other bytes."""

    key: str
    why: str  # "missing", "1200 bytes (expected 1334)", …


class Audit(NamedTuple):
    """What a check of the store found."""

    checked: int  # objects looked at
    damaged: list[Damage]
    full: bool  # every live object (--repair), not a sample


def pick(candidates: Sequence[str], size: int, seed: int) -> list[str]:
    """Return `size` of `candidates` at random; the same seed and candidates give the same."""
    if size >= len(candidates):
        return list(candidates)
    return random.Random(seed).sample(candidates, size)  # noqa: S311 - not a secret


def kept_objects(plan: UploadPlan, live: Mapping[str, str]) -> list[str]:
    """Return the live keys this publish keeps as they are (in the plan, not uploaded).

    Sorted, so that a seed always picks the same keys.
    """
    uploading = {u.key for u in plan.uploads}
    return sorted(
        key
        for key, sha256 in live.items()
        if plan.objects.get(key) == sha256 and key not in uploading
    )


def keys_to_check(
    plan: UploadPlan,
    live: Mapping[str, str],
    relied: Iterable[str],
    *,
    repair: bool,
    sample: int,
    seed: int,
) -> list[str]:
    """Return the keys to HEAD: every kept one with `repair`, else a sample and the relied-on."""
    kept = kept_objects(plan, live)
    if repair:
        return kept
    kept_set = set(kept)
    leaning = sorted(k for k in set(relied) if k in kept_set)
    chosen = leaning if len(leaning) <= RELIED_ALL else pick(leaning, sample, seed)
    return list(dict.fromkeys([*chosen, *pick(kept, sample, seed)]))


def check_store(
    store: Storage,
    keys: Sequence[str],
    objects: Mapping[str, str],
    build_dir: Path,
    sizes: Mapping[str, int],
) -> list[Damage]:
    """HEAD `keys` in parallel; return those missing or different from the build."""
    if not keys:
        return []

    def look(key: str) -> Damage | None:
        return _damage(key, store.head(key), objects[key], build_dir, sizes.get(key))

    found: list[Damage] = []
    with ThreadPoolExecutor(min(_PARALLEL_CHECKS, len(keys))) as pool:
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            found.extend(d for d in pool.map(look, chunk) if d is not None)
    return found


def _damage(
    key: str, head: Head | None, sha256: str, build_dir: Path, size: int | None
) -> Damage | None:
    """Compare what the store says of an object with what the build holds."""
    if head is None:
        return Damage(key, "missing")
    if size is not None and head.size != size:
        return Damage(key, f"{head.size} bytes (expected {size})")
    if head.sha256 is not None:
        return None if head.sha256 == sha256 else Damage(key, "other bytes (sha256 differs)")
    if head.md5 is not None and size is not None:
        # Uploaded before sha256s were recorded with objects: its ETag is its MD5.
        digest = hashlib.md5(usedforsecurity=False)
        with (build_dir / key).open("rb") as stream:
            while block := stream.read(1 << 20):
                digest.update(block)
        if digest.hexdigest() != head.md5:
            return Damage(key, "other bytes (MD5 ETag differs)")
    return None


def repairs(
    damaged: Iterable[Damage],
    build_dir: Path,
    sizes: Mapping[str, int],
    objects: Mapping[str, str],
    where: Callable[[str], str],
) -> list[Upload]:
    """Return the uploads that put damaged objects back from the build.

    Raises PublishError, before any write, for one the build does not hold, and for an
    artifact whose bytes in the build no longer match its key.
    """
    uploads = []
    for damage in damaged:
        if damage.key not in sizes:
            raise PublishError(
                f"{where(damage.key)}: {damage.why}, and this build does not hold it "
                f"(built with --live, which took it from the store); build again without "
                f"--live, then publish with --repair; nothing was published"
            )
        source = build_dir / damage.key
        if damage.key.startswith("artifacts/"):
            # Not read when the plan was made (its key names its hash): read it now.
            got, _ = sha256_of_file(source)
            if got != objects[damage.key]:
                raise PublishError(
                    f"{source}: artifact bytes do not match the sha256 in its path "
                    f"(expected {objects[damage.key]}, got {got}); nothing was published"
                )
        uploads.append(Upload(damage.key, objects[damage.key], sizes[damage.key], source))
    return uploads
