"""`plugindex publish`: incremental, ordered, race-safe publishing to a folder or to S3.

S3 tests run against a real SeaweedFS (`s3_bucket` fixture) and read what they
published back over anonymous HTTP, as a client would.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from builder.cli.main import cli
from builder.common import layout
from builder.common.layout import IMMUTABLE, content_type
from builder.index.build import build
from builder.publish.folder import LocalStorage
from builder.publish.publish import PublishOptions, publish
from builder.publish.record import RECORD, record_of
from builder.publish.s3 import S3Storage
from builder.publish.storage import ConflictError
from tests.conftest import PLUGINDEX, sign_as_owner
from tests.mini_index import add_release, write_index
from tests.s3server import S3Server
from tests.test_build import add_version, leaf_plugin, plugin_names, snapshot

OLD = {"SOURCE_DATE_EPOCH": "1700000000"}
NEW = {"SOURCE_DATE_EPOCH": "1700000100"}
PREFIX = "registry"


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, Any]:
    """GET a URL anonymously; return (status, body, headers)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), response.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def public_url(server: S3Server, bucket: str, key: str) -> str:
    return f"{server.endpoint}/{bucket}/{PREFIX}/{key}"


def check_consistent(read: Any) -> None:
    """Check what a client sees: every object the pointers name exists with its hash.

    `read(key)` returns the bytes of a published key, or None. No config.json means
    nothing was published yet, which is consistent too.
    """
    if read(layout.CONFIG) is None:
        return
    assert read(layout.STATUS) is not None
    names = json.loads(read(layout.NAMES))
    for name in names["plugins"]:
        data = read(layout.index_path(name))
        assert data is not None, f"names.json lists {name}, whose document is missing"
        for version in json.loads(data)["versions"]:
            artifact = version["artifact"]
            body = read(artifact["download"])
            assert body is not None, f"{name} {version['version']}: artifact missing"
            assert hashlib.sha256(body).hexdigest() == artifact["sha256"]


def reader_of(store: S3Storage | LocalStorage) -> Any:
    def read(key: str) -> bytes | None:
        found = store.get(key)
        return None if found is None else found.data

    return read


def store_of(bucket: str) -> S3Storage:
    return S3Storage(bucket, PREFIX)


def bucket_keys(server: S3Server, bucket: str) -> dict[str, str]:
    """Return every key under the prefix with its sha256 (the live record excluded)."""
    client = server.client()
    found: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{PREFIX}/"
    ):
        for item in page.get("Contents", []):
            key = item["Key"][len(PREFIX) + 1 :]
            if key != RECORD:
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found[key] = hashlib.sha256(body).hexdigest()
    return found


def release_new_artifact(index: Path, name: str, version: str) -> bytes:
    """Add a signed version of a bundled plugin with an artifact of its own; return it."""
    target = add_version(index, name, version)
    data = f"{name} {version}\n".encode() * 30
    filename = f"{name}-{version}.tar.gz"
    (index / "plugins" / name / "artifacts" / filename).write_bytes(data)
    fields = {
        "url": f"artifacts/{filename}",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": str(len(data)),
        "filename": filename,
    }
    lines = []
    for line in target.read_text(encoding="utf-8").splitlines():
        key = line.strip().split(":", 1)[0]
        if line.startswith("  ") and not line.startswith("   ") and key in fields:
            lines.append(f"  {key}: {fields.pop(key)}")
        else:
            lines.append(line)
    assert not fields, fields
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sign_as_owner(target)
    return data


def build_hashes(out: Path) -> dict[str, str]:
    return {k: hashlib.sha256(v).hexdigest() for k, v in snapshot(out).items()}


# --- a folder as the target ----------------------------------------------------------


def test_publish_to_a_folder_copies_the_build_then_uploads_nothing(
    index: Path, tmp_path: Path, serve_dir: Any
) -> None:
    out, site = tmp_path / "out", tmp_path / "site"
    build(index, out, environ=OLD)
    result = CliRunner().invoke(cli, ["publish", str(out), str(site)])
    assert result.exit_code == 0, result.output
    files = snapshot(out)
    assert f"uploaded {len(files)} objects" in result.output
    assert snapshot(site) == files  # .plugindex/ is not part of the published files
    check_consistent(reader_of(LocalStorage(site)))
    base = serve_dir(site)
    assert http_get(base + "names.json")[1] == files["names.json"]
    assert http_get(base + RECORD)[0] == 404  # the record is not served
    again = CliRunner().invoke(cli, ["publish", str(out), str(site)])
    assert again.exit_code == 0, again.output
    assert "uploaded 0 objects" in again.output
    assert f"{len(files)} unchanged" in again.output


def test_dry_run_prints_the_plan_and_changes_nothing(index: Path, tmp_path: Path) -> None:
    out, site = tmp_path / "out", tmp_path / "site"
    build(index, out, environ=OLD)
    result = CliRunner().invoke(cli, ["publish", str(out), str(site), "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("upload ")]
    assert len(lines) == len(snapshot(out))
    # Artifacts first, the pointers last.
    assert lines[0].startswith("upload artifacts/")
    assert {lines[-1].split()[1], lines[-2].split()[1]} == {"config.json", "status.json"}
    assert "would upload" in result.output
    assert not site.exists()


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing", "not a folder (expected a plugindex build output)"),
        ("empty", "not a plugindex build (expected config.json and status.json"),
    ],
    ids=["missing-folder", "not-a-build"],
)
def test_a_folder_that_is_not_a_build_is_refused(tmp_path: Path, setup: str, expected: str) -> None:
    source = tmp_path / "out"
    if setup == "empty":
        source.mkdir()
    result = CliRunner().invoke(cli, ["publish", str(source), str(tmp_path / "site")])
    assert result.exit_code == 3
    assert f"error: {source}: {expected}" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "site").exists()


def test_a_build_without_its_remote_artifacts_is_refused(tmp_path: Path) -> None:
    index = write_index(tmp_path / "index")
    add_release(index, "tool-remote", "1.0.0", "http://127.0.0.1:9/tool-remote.tar.gz")
    out, site = tmp_path / "out", tmp_path / "site"
    build(index, out, fetch=False)
    result = CliRunner().invoke(cli, ["publish", str(out), str(site)])
    assert result.exit_code == 3
    assert f"{out / layout.index_path('tool-remote')}: version 1.0.0: artifact" in result.output
    assert "is not in the build" in result.output and "--no-fetch" in result.output
    assert not site.exists()


def test_a_bad_target_or_age_is_refused(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(index, out)
    bad_target = CliRunner().invoke(cli, ["publish", str(out), "ftp://host/x"])
    assert bad_target.exit_code == 3
    assert "ftp://host/x: expected s3://bucket/prefix or a folder path" in bad_target.output
    bad_age = CliRunner().invoke(
        cli, ["publish", str(out), str(tmp_path / "s"), "--prune-older-than", "soon"]
    )
    assert bad_age.exit_code == 3
    assert "--prune-older-than: expected a number and a unit" in bad_age.output


# --- S3 (SeaweedFS) ------------------------------------------------------------------


def test_published_bucket_serves_every_object_with_headers(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    out = tmp_path / "out"
    build(index, out, environ=OLD)
    done = subprocess.run(
        [*PLUGINDEX, "publish", str(out), f"s3://{s3_bucket}/{PREFIX}", "--init"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    files = snapshot(out)
    assert f"uploaded {len(files)} objects" in done.stdout
    assert "init: public read for" in done.stdout
    assert "init: website hosting: " in done.stdout  # set, or said why not
    for key, data in files.items():
        status, body, headers = http_get(
            public_url(s3_server, s3_bucket, key), {"Origin": "https://example.org"}
        )
        assert (status, body) == (200, data), key
        assert headers["Access-Control-Allow-Origin"] in {"*", "https://example.org"}
        if key.startswith("artifacts/"):
            assert headers["Content-Type"] == "application/gzip", key
            assert headers["Cache-Control"] == "public, max-age=31536000, immutable", key
        else:
            assert headers["Content-Type"] == "application/json", key
            assert headers["Cache-Control"] == "public, max-age=60", key
    # The documents' download URLs, relative to the registry root, give the right bytes.
    for name in plugin_names(index):
        document = json.loads(files[layout.index_path(name)])
        for version in document["versions"]:
            artifact = version["artifact"]
            status, body, _ = http_get(public_url(s3_server, s3_bucket, artifact["download"]))
            assert status == 200
            assert hashlib.sha256(body).hexdigest() == artifact["sha256"]
            assert len(body) == artifact["size"]
    # Public read covers the published prefix only.
    s3_server.client().put_object(Bucket=s3_bucket, Key="private/x.json", Body=b"{}")
    assert http_get(f"{s3_server.endpoint}/{s3_bucket}/private/x.json")[0] == 403


def test_one_changed_plugin_uploads_only_its_objects_and_pointers(
    index: Path, tmp_path: Path, s3_bucket: str
) -> None:
    build(index, tmp_path / "one", environ=OLD)
    first = store_of(s3_bucket)
    publish(tmp_path / "one", first)
    name = plugin_names(index)[0]
    add_version(index, name, "9.0.0")
    build(index, tmp_path / "two", environ=NEW)  # a fresh output, as on a fresh CI runner
    store = store_of(s3_bucket)
    report = publish(tmp_path / "two", store)
    allowed = {
        layout.index_path(name),
        layout.NAMES,
        layout.CATEGORIES,
        layout.STATUS,
        layout.page_path("name", 1),
        layout.page_path("recent", 1),
    }
    assert layout.index_path(name) in report.uploaded
    assert layout.STATUS in report.uploaded
    assert set(report.uploaded) <= allowed
    # The objects, plus the live record twice (taking the lease, then releasing it).
    assert store.requests["PUT"] == len(report.uploaded) + 2
    assert store.requests["DELETE"] == 0
    # A re-publish with no change: one request, the live record.
    again = store_of(s3_bucket)
    unchanged = publish(tmp_path / "two", again)
    assert unchanged.uploaded == []
    assert sum(again.requests.values()) <= 3
    assert again.requests["PUT"] == 0


def test_a_tampered_artifact_is_refused_and_nothing_becomes_visible(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    build(index, old, environ=OLD)
    publish(old, store_of(s3_bucket))
    before = bucket_keys(s3_server, s3_bucket)
    record_before = record_of(store_of(s3_bucket))
    # A new release whose artifact is altered in the build output after the build.
    name = plugin_names(index)[0]
    release_new_artifact(index, name, "9.0.0")
    build(index, new, environ=NEW)
    artifact = next((new / "artifacts").glob(f"*/{name}-9.0.0.tar.gz"))
    artifact.write_bytes(artifact.read_bytes()[::-1])
    result = CliRunner().invoke(cli, ["publish", str(new), f"s3://{s3_bucket}/{PREFIX}"])
    assert result.exit_code == 3
    assert f"error: {artifact}: artifact bytes do not match the sha256 in its path" in (
        result.output
    )
    assert "Traceback" not in result.output
    assert bucket_keys(s3_server, s3_bucket) == before
    assert record_of(store_of(s3_bucket)) == record_before


def test_an_older_build_never_replaces_a_newer_one(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    build(index, tmp_path / "old", environ=OLD)
    add_version(index, plugin_names(index)[0], "9.0.0")
    build(index, tmp_path / "new", environ=NEW)
    publish(tmp_path / "new", store_of(s3_bucket))
    result = CliRunner().invoke(
        cli, ["publish", str(tmp_path / "old"), f"s3://{s3_bucket}/{PREFIX}"]
    )
    assert result.exit_code == 3
    assert "holds a newer build (built at 2023-11-14T22:15:00Z)" in result.output
    assert "not rolled back" in result.output
    assert bucket_keys(s3_server, s3_bucket) == build_hashes(tmp_path / "new")


def test_unreferenced_objects_are_kept_until_pruned(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    build(index, tmp_path / "one", environ=OLD)
    publish(tmp_path / "one", store_of(s3_bucket))
    victim = leaf_plugin(index)
    (index / "plugins" / victim).rename(tmp_path / "removed")
    build(index, tmp_path / "two", environ=NEW)
    report = publish(tmp_path / "two", store_of(s3_bucket))
    assert layout.index_path(victim) in report.retired
    keys = bucket_keys(s3_server, s3_bucket)
    assert layout.index_path(victim) in keys  # clients with old pointers may need it
    kept = publish(
        tmp_path / "two",
        store_of(s3_bucket),
        PublishOptions(prune_older_than=datetime.timedelta(days=1)),
    )
    assert kept.pruned == []
    target = f"s3://{s3_bucket}/{PREFIX}"
    result = CliRunner().invoke(
        cli, ["publish", str(tmp_path / "two"), target, "--prune-older-than", "0s"]
    )
    assert result.exit_code == 0, result.output
    assert "pruned" in result.output
    assert bucket_keys(s3_server, s3_bucket) == build_hashes(tmp_path / "two")
    record = record_of(store_of(s3_bucket))
    assert record is not None and record.retired == {}


@pytest.mark.parametrize("kind", ["folder", "s3"])
def test_a_large_file_is_streamed_with_its_hash_and_headers(
    kind: str, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """A 16 MiB artifact is written from disk in chunks, never held whole in memory."""
    source = tmp_path / "big.tar.gz"
    digest = hashlib.sha256()
    with source.open("wb") as stream:
        for number in range(16):
            chunk = hashlib.sha256(bytes([number])).digest() * (1 << 15)  # 1 MiB
            stream.write(chunk)
            digest.update(chunk)
    key = f"artifacts/{digest.hexdigest()}/big.tar.gz"
    store = LocalStorage(tmp_path / "site") if kind == "folder" else store_of(s3_bucket)
    headers = {"content_type": content_type(key), "cache_control": IMMUTABLE}
    tracemalloc.start()
    try:
        store.put(key, source, if_absent=True, **headers)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"{peak} bytes allocated while writing a 16 MiB file"
    with pytest.raises(ConflictError):  # the conditional header went with the stream
        store.put(key, source, if_absent=True, **headers)
    found = store.get(key)
    assert found is not None and hashlib.sha256(found.data).hexdigest() == digest.hexdigest()
    if kind == "s3":
        head = s3_server.client().head_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}")
        assert head["ContentLength"] == 16 << 20
        assert head["ContentType"] == "application/gzip"
        assert head["CacheControl"] == IMMUTABLE


def test_wrong_credentials_are_reported_without_a_traceback(
    index: Path, tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    build(index, out)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    result = CliRunner().invoke(cli, ["publish", str(out), f"s3://{s3_bucket}/{PREFIX}"])
    assert result.exit_code == 3
    assert f"error: s3://{s3_bucket}/{PREFIX}/{RECORD}: cannot read (" in result.output
    assert "Traceback" not in result.output
