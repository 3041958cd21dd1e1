"""The upload plan: what of a build to upload, checked, and in which order.

Only objects whose sha256 differs from the live record's are uploaded. The build's
own record of its files (`build_folder.read_outputs`) gives every file's sha256,
so a file that will not be uploaded is neither read nor even looked at; every
file that will be is hashed as it is now, and an artifact must match the sha256
in its path. Every artifact a changed document names must be published, every
changed document is re-verified (`verify.py`), and the uploads are grouped so
that nothing is written before what it points at.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from builder.common import layout
from builder.common.build_folder import STATE_DIR, files_on_disk, read_borrowed, read_outputs
from builder.common.files import sha256_of_file
from builder.publish.record import BuildStamp, PublishError
from builder.publish.verify import Document, DocumentVerifier, is_document, verify_documents

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Upload:
    """One file of the build to write to the store under `key`."""

    key: str
    sha256: str
    size: int
    source: Path


class BuildFiles(NamedTuple):
    """A build ready to publish: its files (path → size), its stamp, its registry's name."""

    files: dict[str, int]
    stamp: BuildStamp
    registry: str = ""  # config.json's `name`: what every signed statement names
    # Every file's sha256 as the build recorded it; None: no record, so hash them.
    hashes: dict[str, str] | None = None


class UploadPlan(NamedTuple):
    """What to upload, and every key the store references once it is done (→ sha256)."""

    uploads: list[Upload]
    objects: dict[str, str]
    # Live keys that the uploaded documents name without uploading them.
    relied: frozenset[str] = frozenset()


class _Download(NamedTuple):
    version: str
    url: str


def read_build(build_dir: Path) -> BuildFiles:
    """List a build's published files (path → size) and read its stamp from status.json.

    From the build's record of its files when there is one that still matches the
    folder's `config.json` and `status.json`, else by walking the folder.
    """
    if not build_dir.is_dir():
        raise PublishError(f"{build_dir}: not a folder (expected a plugindex build output)")
    recorded = _recorded(build_dir)
    files = recorded[0] if recorded is not None else files_on_disk(build_dir)
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
    config_path = build_dir / layout.CONFIG
    try:
        registry = json.loads(config_path.read_bytes())["name"]
        if not isinstance(registry, str):
            raise TypeError(registry)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PublishError(
            f"{config_path}: unreadable (expected the config.json a build writes, with "
            f"the registry's name)"
        ) from e
    return BuildFiles(files, stamp, registry, recorded[1] if recorded is not None else None)


def _recorded(build_dir: Path) -> tuple[dict[str, int], dict[str, str]] | None:
    """Return the build's record of its files (sizes, hashes) if it matches the folder.

    The record is written after the files: one whose config.json and status.json
    are not those in the folder belongs to another build, and is not used.
    """
    outputs = read_outputs(build_dir)
    if outputs is None:
        log.info("%s: no record of the build's files; listing and hashing them", build_dir)
        return None
    for key in (layout.CONFIG, layout.STATUS):
        try:
            now = sha256_of_file(build_dir / key)[0]
        except OSError:
            now = None
        if key not in outputs or outputs[key][0] != now:
            log.info("%s: %s differs from the build's record; hashing every file", build_dir, key)
            return None
    return {k: v[1] for k, v in outputs.items()}, {k: v[0] for k, v in outputs.items()}


def build_objects(build_dir: Path, build: BuildFiles) -> dict[str, str]:
    """Return what the store references once this build is live: key → sha256.

    The build's files (as its record says, else hashed now: an artifact's key names
    its hash) and the artifacts a `build --live` left to the store.
    """
    if build.hashes is not None:
        objects = dict(build.hashes)
    else:
        objects = {
            key: key.split("/")[1] if key.startswith("artifacts/") else _sha256(build_dir, key)
            for key in build.files
        }
    for key in read_borrowed(build_dir):
        objects.setdefault(key, key.split("/")[1])
    return objects


def _sha256(build_dir: Path, key: str) -> str:
    try:
        return sha256_of_file(build_dir / key)[0]
    except OSError as e:
        raise PublishError(
            f"{build_dir / key}: cannot read ({e.strerror}); nothing was published"
        ) from e


def plan_publish(
    build_dir: Path,
    build: BuildFiles,
    objects: Mapping[str, str],
    live: Mapping[str, str],
    *,
    pending: Iterable[str] = (),
    where: str,
    verifier: DocumentVerifier | None = None,
) -> UploadPlan:
    """Return the checked plan for publishing a build (`objects`) over what is `live`.

    Keys `pending` in the live record are uploaded whatever their recorded hash: an
    earlier publisher may have written them, having died holding the lease or
    failed and released it. Every changed per-plugin document is re-verified, its
    signatures by `verifier` (the CLI passes the client's checks). `where` names
    the store in messages.
    """
    borrowed = borrowed_objects(build_dir, live, where)
    plan = plan_uploads(
        build_dir, build.files, objects, live, pending, recorded=build.hashes is not None
    )
    plan.objects.update(borrowed)
    check_references(build_dir, plan.uploads, plan.objects)
    documents = [Document(u.key, u.source, u.sha256) for u in plan.uploads if is_document(u.key)]
    named = verify_documents(
        documents, sizes=build.files, registry=build.registry, verifier=verifier
    )
    uploading = {u.key for u in plan.uploads}
    return UploadPlan(plan.uploads, plan.objects, frozenset(named - uploading))


def plan_uploads(
    build_dir: Path,
    files: Mapping[str, int],
    objects: Mapping[str, str],
    live: Mapping[str, str],
    uncertain: Iterable[str] = (),
    *,
    recorded: bool = False,
) -> UploadPlan:
    """Return what to upload and the new key → sha256 map.

    `objects` are the build's files' hashes (`build_objects`). A file whose hash is
    live is not read at all; one to upload is hashed now when the hash came from the
    build's record (`recorded`) or is an artifact's, which must match the sha256 in
    its path. A key `uncertain` (an interrupted publisher may have written it) is
    uploaded whatever its hash.
    """
    unsure = set(uncertain)
    uploads: list[Upload] = []
    planned: dict[str, str] = {}
    for key, sha256 in objects.items():
        planned[key] = sha256
        if key not in files or (live.get(key) == sha256 and key not in unsure):
            continue  # live already, or an artifact left to the store (build --live)
        path = build_dir / key
        artifact = key.startswith("artifacts/")
        got, size = (sha256, files[key])
        if artifact or recorded:
            try:
                got, size = sha256_of_file(path)
            except OSError as e:
                raise PublishError(
                    f"{path}: cannot read ({e.strerror}); nothing was published"
                ) from e
        if artifact and got != key.split("/")[1]:
            raise PublishError(
                f"{path}: artifact bytes do not match the sha256 in its path "
                f"(expected {key.split('/')[1]}, got {got}); nothing was published"
            )
        planned[key] = got  # what is there now: a file changed after the build is checked
        uploads.append(Upload(key, got, size, path))
    return UploadPlan(uploads, planned)


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
            downloads = [_Download(v["version"], v["artifact"]["download"]) for v in versions]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PublishError(
                f"{upload.source}: unreadable plugin document (expected the JSON a "
                f"build writes); nothing was published"
            ) from e
        for download in downloads:
            if download.url not in objects:
                raise PublishError(
                    f"{upload.source}: version {download.version}: artifact {download.url} "
                    f"is not in the build (expected every artifact mirrored; was it built "
                    f"with --no-fetch?); nothing was published"
                )


def order_batches(uploads: Iterable[Upload], live: Mapping[str, str]) -> list[list[Upload]]:
    """Group uploads into batches that must finish one before the next starts.

    By `layout.write_rank` (artifacts, documents, listings, pointers, then the TUF
    metadata in its own order, the timestamp last), and config.json after the other
    pointers of its rank; within a rank, keys new to the store go before replaced
    ones, so a replaced document never names a new document that is not there yet.
    """
    batches: dict[tuple[int, bool, bool], list[Upload]] = {}
    for upload in uploads:
        rank = (layout.write_rank(upload.key), upload.key == layout.CONFIG, upload.key in live)
        batches.setdefault(rank, []).append(upload)
    return [sorted(batches[k], key=lambda u: u.key) for k in sorted(batches)]
