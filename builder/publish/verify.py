"""Re-verify the per-plugin documents a publish is about to upload, before its first write.

A build folder can change between `build` and `publish` (a later CI step, a hand
edit, anyone who can write to the runner's disk). A document changed there would be
published as it is: a broken signature makes its plugin uninstallable, and an
`artifact.download` (which no signature covers) pointing at another file would serve
other bytes. So every per-plugin document in the plan is checked here: its path
matches its name; each version's artifact is published under the key its sha256
and filename give, with the size it states when the build holds it; and the
caller's `DocumentVerifier` accepts it. The CLI passes the client's own shape and
signature checks, so publish refuses exactly what a client would refuse, while
this package still imports only `common`.

Documents with the same bytes (a document and its consistent-snapshot copy
`<sha256>.<name>.json`) are verified once. Many documents (a first publish) are
verified in worker processes, on every core: signature checks are CPU work.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from builder.common import layout
from builder.common.errors import PlugindexError
from builder.common.worker_processes import worker_pool
from builder.publish.record import PublishError

# Below this many documents to verify, worker processes cost more than they save.
DOCUMENTS_BEFORE_WORKERS = 400
_BATCH = 64  # documents per hand-over to a worker
_CONSISTENT = re.compile(r"([0-9a-f]{64})\.(.+)\.json")
_NOTHING = "nothing was published"


class DocumentVerifier(Protocol):
    """Checks a per-plugin document's shape and author signatures, as a client would.

    Raises a PlugindexError whose message starts with `where` when the document must
    not be published. Must be a module-level function: it may run in a worker process.
    """

    def __call__(self, data: bytes, *, registry: str, name: str, where: str) -> None: ...


class Document(NamedTuple):
    """A per-plugin document of the plan: its key, its file, its sha256."""

    key: str
    source: Path
    sha256: str


def is_document(key: str) -> bool:
    """Return whether a published key is a per-plugin document (or its consistent copy)."""
    return key.startswith("index/") and key.endswith(".json")


def name_of(key: str) -> str | None:
    """Return the plugin a document key belongs to, or None when its path is not one.

    `index/au/th/auth-jwt.json` and its consistent copy `index/au/th/<sha256>.auth-jwt.json`
    both name `auth-jwt`.
    """
    folder, _, file = key.rpartition("/")
    copy = _CONSISTENT.fullmatch(file)
    name = copy[2] if copy is not None else file.removesuffix(".json")
    return name if layout.index_path(name) == f"{folder}/{name}.json" else None


def _named_hash(key: str) -> str | None:
    """Return the sha256 a consistent copy's file name gives, None for another key."""
    copy = _CONSISTENT.fullmatch(key.rpartition("/")[2])
    return copy[1] if copy is not None else None


def verify_documents(
    documents: Iterable[Document],
    *,
    sizes: Mapping[str, int],
    registry: str,
    verifier: DocumentVerifier | None,
) -> set[str]:
    """Check every document; return the artifact keys they name.

    `sizes` are the sizes of the files in the build (`plan.check_references` has
    made sure every artifact named is in the build or live). Raises PublishError
    naming the file.
    """
    named: set[str] = set()
    to_verify: dict[str, tuple[Document, str]] = {}
    for document in documents:
        data = _read(document.source)
        name = name_of(document.key)
        if name is None:
            raise PublishError(
                f"{document.source}: not a plugin document path (expected "
                f"index/<prefix>/<name>.json or its <sha256>.<name>.json copy); {_NOTHING}"
            )
        named_hash = _named_hash(document.key)
        if named_hash is not None and named_hash != document.sha256:
            raise PublishError(
                f"{document.source}: bytes do not match the sha256 in its name (expected "
                f"{named_hash}, got {document.sha256}); {_NOTHING}"
            )
        named.update(check_artifacts(document.source, data, name, sizes))
        to_verify.setdefault(document.sha256, (document, name))
    if verifier is not None:
        _run_verifier(list(to_verify.values()), registry, verifier)
    return named


def check_artifacts(source: Path, data: bytes, name: str, sizes: Mapping[str, int]) -> list[str]:
    """Check a document's name and every version's artifact; return the artifact keys."""
    try:
        document = json.loads(data)
        if document["name"] != name:
            raise PublishError(
                f"{source}: name {document['name']!r} does not match its path (expected "
                f"{name!r}); {_NOTHING}"
            )
        versions = [(str(v["version"]), v["artifact"]) for v in document["versions"]]
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        raise PublishError(
            f"{source}: unreadable plugin document (expected the JSON a build writes); {_NOTHING}"
        ) from e
    keys = []
    for version, artifact in versions:
        keys.append(_check_artifact(source, version, artifact, sizes))
    return keys


def _check_artifact(source: Path, version: str, artifact: Any, sizes: Mapping[str, int]) -> str:
    """Check one version's artifact entry against the plan; return its key."""
    where = f"{source}: version {version}: artifact"
    try:
        download, sha256, size = artifact["download"], artifact["sha256"], artifact["size"]
        expected = layout.artifact_path(sha256, artifact["filename"])
    except (KeyError, TypeError) as e:
        raise PublishError(
            f"{where}: expected download, sha256, size and filename; {_NOTHING}"
        ) from e
    if download != expected:
        # `download` is not signed: it must be the one key the signed sha256 and
        # filename give, or a document could serve another artifact's bytes.
        raise PublishError(
            f"{where}.download: {download} (expected {expected}, from its sha256 and "
            f"filename); {_NOTHING}"
        )
    if download in sizes and sizes[download] != size:
        raise PublishError(
            f"{where}.size: {size!r} does not match {download} in the build "
            f"({sizes[download]} bytes); {_NOTHING}"
        )
    return str(download)


def _read(source: Path) -> bytes:
    try:
        return source.read_bytes()
    except OSError as e:
        raise PublishError(f"{source}: cannot read ({e.strerror}); {_NOTHING}") from e


def _run_verifier(
    documents: list[tuple[Document, str]], registry: str, verifier: DocumentVerifier
) -> None:
    """Run the verifier over the documents, in worker processes when there are many."""
    jobs = [(verifier, registry, d.source, name) for d, name in documents]
    if len(jobs) < DOCUMENTS_BEFORE_WORKERS or (os.cpu_count() or 1) < 2:
        problems: Iterator[str | None] = (_verify_one(job) for job in jobs)
        _raise_first(problems)
        return
    with worker_pool(os.cpu_count()) as pool:
        _raise_first(pool.map(_verify_one, jobs, chunksize=_BATCH))


_Job = tuple[DocumentVerifier, str, Path, str]


def _verify_one(job: _Job) -> str | None:
    """Verify one document; return why it was refused, or None (runs in a worker too)."""
    verifier, registry, source, name = job
    try:
        verifier(source.read_bytes(), registry=registry, name=name, where=str(source))
    except OSError as e:
        return f"{source}: cannot read ({e.strerror})"
    except PlugindexError as e:
        return str(e)
    return None


def _raise_first(problems: Iterable[str | None]) -> None:
    for problem in problems:
        if problem is not None:
            raise PublishError(
                f"{problem}; not publishing a build changed since `plugindex build` "
                f"(build it again); {_NOTHING}"
            )
