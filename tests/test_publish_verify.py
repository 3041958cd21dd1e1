"""What `publish` re-checks of the documents of a build folder, each refusal in full.

`builder.publish.verify` runs before a publish's first write; the end-to-end tests
(`tests/test_publish.py`) edit a real build. These call it directly, so that each
refusal's message, and when the signature checks go to worker processes, is pinned.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from builder.common import layout
from builder.common.errors import PlugindexError
from builder.publish import verify
from builder.publish.record import PublishError
from builder.publish.verify import Document, verify_documents

NOTHING = "nothing was published"
SHA = "a" * 64
ARTIFACT = layout.artifact_path(SHA, "x.tgz")


def entry(version: str = "1.0.0", **artifact: object) -> dict[str, Any]:
    fields: dict[str, object] = {"download": ARTIFACT, "sha256": SHA, "size": 3}
    fields |= {"filename": "x.tgz"} | artifact
    return {"version": version, "artifact": {k: v for k, v in fields.items() if v is not None}}


def write(tmp_path: Path, key: str, document: object) -> Document:
    path = tmp_path / key
    path.parent.mkdir(parents=True, exist_ok=True)
    data = document if isinstance(document, bytes) else json.dumps(document).encode()
    path.write_bytes(data)
    return Document(key, path, hashlib.sha256(data).hexdigest())


def refusal(
    documents: Iterable[Document],
    sizes: dict[str, int] | None = None,
    verifier: verify.DocumentVerifier | None = None,
) -> str:
    with pytest.raises(PublishError) as caught:
        verify_documents(documents, sizes=sizes or {}, registry="r", verifier=verifier)
    return str(caught.value)


def test_a_good_document_names_its_artifacts(tmp_path: Path) -> None:
    doc = write(tmp_path, layout.index_path("abc"), {"name": "abc", "versions": [entry()]})
    named = verify_documents([doc], sizes={ARTIFACT: 3}, registry="r", verifier=None)
    assert named == {ARTIFACT}


def test_a_document_at_another_plugins_path_is_refused(tmp_path: Path) -> None:
    """index/<prefix>/<name>.json must be the path its name gives: not index/zz/abc.json."""
    doc = write(tmp_path, "index/zz/abc.json", {"name": "abc", "versions": [entry()]})
    assert refusal([doc]) == (
        f"{doc.source}: not a plugin document path (expected index/<prefix>/<name>.json "
        f"or its <sha256>.<name>.json copy); {NOTHING}"
    )


def test_a_document_naming_another_plugin_is_refused(tmp_path: Path) -> None:
    doc = write(tmp_path, layout.index_path("abc"), {"name": "abd", "versions": [entry()]})
    assert refusal([doc]) == (
        f"{doc.source}: name 'abd' does not match its path (expected 'abc'); {NOTHING}"
    )


@pytest.mark.parametrize(
    "document",
    [
        b"{not json",
        b"[]",
        json.dumps({"name": "abc"}).encode(),
        b'{"name": "abc", "versions": [1]}',
    ],
    ids=["not-json", "a-list", "no-versions", "a-version-not-an-object"],
)
def test_a_document_not_of_the_builds_shape_is_refused(tmp_path: Path, document: bytes) -> None:
    doc = write(tmp_path, layout.index_path("abc"), document)
    assert refusal([doc]) == (
        f"{doc.source}: unreadable plugin document (expected the JSON a build writes); {NOTHING}"
    )


def test_an_artifact_entry_missing_a_field_is_refused_naming_its_version(tmp_path: Path) -> None:
    versions = [entry("1.0.0"), entry("1.1.0", filename=None)]
    doc = write(tmp_path, layout.index_path("abc"), {"name": "abc", "versions": versions})
    assert refusal([doc]) == (
        f"{doc.source}: version 1.1.0: artifact: expected download, sha256, size and "
        f"filename; {NOTHING}"
    )


def test_a_download_other_than_its_sha256_and_filename_give_is_refused(tmp_path: Path) -> None:
    other = layout.artifact_path("b" * 64, "x.tgz")
    versions = [entry("1.0.0"), entry("2.0.0", download=other)]
    doc = write(tmp_path, layout.index_path("abc"), {"name": "abc", "versions": versions})
    assert refusal([doc]) == (
        f"{doc.source}: version 2.0.0: artifact.download: {other} (expected {ARTIFACT}, "
        f"from its sha256 and filename); {NOTHING}"
    )


def test_a_size_other_than_the_builds_file_is_refused(tmp_path: Path) -> None:
    doc = write(tmp_path, layout.index_path("abc"), {"name": "abc", "versions": [entry("3.1.0")]})
    assert refusal([doc], sizes={ARTIFACT: 4}) == (
        f"{doc.source}: version 3.1.0: artifact.size: 3 does not match {ARTIFACT} in the "
        f"build (4 bytes); {NOTHING}"
    )


def test_a_consistent_copy_whose_name_hashes_other_bytes_is_refused(tmp_path: Path) -> None:
    key = layout.index_path("abc").replace("/abc.json", f"/{'0' * 64}.abc.json")
    doc = write(tmp_path, key, {"name": "abc", "versions": [entry()]})
    assert refusal([doc]) == (
        f"{doc.source}: bytes do not match the sha256 in its name (expected {'0' * 64}, "
        f"got {doc.sha256}); {NOTHING}"
    )


def test_an_unreadable_document_file_is_refused(tmp_path: Path) -> None:
    key = layout.index_path("abc")
    (tmp_path / key).mkdir(parents=True)  # a folder where the file should be
    doc = Document(key, tmp_path / key, "0" * 64)
    assert refusal([doc]) == f"{doc.source}: cannot read (Is a directory); {NOTHING}"


# --- the signature checks, here or in worker processes ------------------------------------


def refuse_all(data: bytes, *, registry: str, name: str, where: str) -> None:
    raise PlugindexError(f"{where}: refused {name} of {registry}")


class Pools:
    """Stands in for `worker_pool`: records each pool asked for, maps in this process."""

    def __init__(self) -> None:
        self.asked: list[int | None] = []
        self.chunks: list[int] = []

    @contextmanager
    def __call__(self, workers: int | None) -> Iterator[Pools]:
        self.asked.append(workers)
        yield self

    def map(self, job: Callable[[Any], Any], jobs: list[Any], chunksize: int = 1) -> Iterator[Any]:
        self.chunks.append(chunksize)
        return map(job, jobs)


def documents(tmp_path: Path, count: int) -> list[Document]:
    return [
        write(tmp_path, layout.index_path(f"p{i:04}"), {"name": f"p{i:04}", "versions": [entry()]})
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "cores", "asked"),
    [
        (verify.DOCUMENTS_BEFORE_WORKERS - 1, 8, []),
        (verify.DOCUMENTS_BEFORE_WORKERS, 8, [8]),
        (verify.DOCUMENTS_BEFORE_WORKERS, 2, [2]),
        (verify.DOCUMENTS_BEFORE_WORKERS, 1, []),
        (verify.DOCUMENTS_BEFORE_WORKERS, None, []),
    ],
    ids=["too-few", "enough-8-cores", "enough-2-cores", "one-core", "cores-unknown"],
)
def test_many_documents_go_to_one_worker_per_core(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    count: int,
    cores: int | None,
    asked: list[int],
) -> None:
    pools = Pools()
    monkeypatch.setattr(verify, "worker_pool", pools)
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    found = documents(tmp_path, count)
    message = refusal(found, verifier=refuse_all)
    assert message.startswith(f"{found[0].source}: refused p0000 of r; not publishing a build")
    assert pools.asked == asked
    assert pools.chunks == [verify._BATCH] * len(asked)


def test_every_distinct_document_is_given_to_the_verifier_once(tmp_path: Path) -> None:
    seen: list[str] = []

    def record(data: bytes, *, registry: str, name: str, where: str) -> None:
        seen.append(name)

    found = documents(tmp_path, 3)
    # The consistent copy of p0001 (`<sha256>.p0001.json`) holds the same bytes.
    copy_key = found[1].key.replace("/p0001.json", f"/{found[1].sha256}.p0001.json")
    copy = write(tmp_path, copy_key, found[1].source.read_bytes())
    verify_documents([*found, copy], sizes={}, registry="r", verifier=record)
    assert seen == ["p0000", "p0001", "p0002"]
