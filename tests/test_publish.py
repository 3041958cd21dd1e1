"""`plugindex publish`: incremental, ordered, race-safe publishing to a folder or to S3.

S3 tests run against a real SeaweedFS (`s3_bucket` fixture) and read what they
published back over anonymous HTTP, as a client would.
"""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import logging
import subprocess
import tracemalloc
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from builder.cli.main import cli
from builder.cli.maintainer import verify_document
from builder.common import layout
from builder.common.build_folder import forget_outputs
from builder.common.layout import IMMUTABLE, content_type
from builder.index.build import build
from builder.publish import verify
from builder.publish.audit import SAMPLE, Damage, pick, repairs
from builder.publish.folder import LocalStorage
from builder.publish.plan import Upload, order_batches
from builder.publish.publish import PublishOptions, damage_lines, publish
from builder.publish.record import (
    RECORD,
    NodeStore,
    PublishError,
    RecordRoot,
    Retired,
    record_of,
)
from builder.publish.s3 import S3Storage
from builder.publish.storage import ConflictError, StorageError
from builder.publish.tree import NODES, node_key
from builder.trust.signing import public_key_text
from tests.conftest import PLUGINDEX, sign_as_owner
from tests.mini_index import add_release, write_index
from tests.s3server import S3Server
from tests.test_build import add_version, leaf_plugin, plugin_names, snapshot

# Build times after every bundled release (a release dated after its build is held back).
OLD = {"SOURCE_DATE_EPOCH": "1767225600"}  # 2026-01-01T00:00:00Z
NEW = {"SOURCE_DATE_EPOCH": "1767225700"}
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
    """Return every key under the prefix with its sha256 (the live record's objects excluded)."""
    client = server.client()
    found: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=f"{PREFIX}/"
    ):
        for item in page.get("Contents", []):
            key = item["Key"][len(PREFIX) + 1 :]
            if not key.startswith(".plugindex/"):
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


def artifacts_named(out: Path, name: str) -> set[str]:
    """Return the artifact keys a plugin's document in a build names."""
    document = json.loads((out / layout.index_path(name)).read_bytes())
    return {v["artifact"]["download"] for v in document["versions"]}


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
    # The artifacts the new document names were checked one by one, and a sample.
    assert store.requests["HEAD"] == report.checked
    assert report.checked >= len(artifacts_named(tmp_path / "two", name))
    # Beyond the objects: the root twice (the lease, then the completed record), the
    # pending keys' node, and the record's changed nodes; a few KB in all.
    record_puts = store.requests["PUT"] - len(report.uploaded)
    assert 3 <= record_puts <= 12, dict(store.requests)
    assert store.bytes_sent - report.bytes_uploaded < 8_000
    assert store.requests["DELETE"] <= 2  # the nodes the first publish stopped using
    # A re-publish with no change: the root alone, under 1 KB; no sample.
    again = store_of(s3_bucket)
    unchanged = publish(tmp_path / "two", again)
    assert unchanged.uploaded == []
    assert unchanged.checked == 0
    assert dict(again.requests) == {"GET": 1}
    assert again.bytes_received < 1000
    assert again.bytes_sent == 0


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
    assert "holds a newer build (built at 2026-01-01T00:01:40Z)" in result.output
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
    # A HEAD answers a bare 403 (no body to say why): the message says both causes.
    with pytest.raises(
        StorageError, match=r"names\.json: cannot check \(403; without s3:ListBucket"
    ):
        store_of(s3_bucket).head("names.json")


# --- what the store lost: the sample check and --repair --------------------------


def delete_object(server: S3Server, bucket: str, key: str) -> None:
    """Delete a published object behind the publisher's back (a mistaken `aws s3 rm`)."""
    server.client().delete_object(Bucket=bucket, Key=f"{PREFIX}/{key}")


def some_artifact(out: Path) -> str:
    return sorted(k for k in snapshot(out) if k.startswith("artifacts/"))[0]


def test_repair_puts_back_what_was_deleted_or_overwritten_in_the_bucket(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    out = tmp_path / "out"
    build(index, out, environ=OLD)
    publish(out, store_of(s3_bucket))
    lost = some_artifact(out)
    delete_object(s3_server, s3_bucket, lost)
    # Overwritten with other bytes of the same size, by a tool that records no sha256.
    changed = layout.index_path(plugin_names(index)[0])
    body = (out / changed).read_bytes()
    s3_server.client().put_object(
        Bucket=s3_bucket, Key=f"{PREFIX}/{changed}", Body=body.replace(b'"', b"'")
    )
    # An ordinary publish trusts its record: without the sample, nothing is put back.
    publish(out, store_of(s3_bucket), PublishOptions(sample=0))
    assert lost not in bucket_keys(s3_server, s3_bucket)
    target = f"s3://{s3_bucket}/{PREFIX}"
    result = CliRunner().invoke(cli, ["publish", str(out), target, "--repair"])
    assert result.exit_code == 0, result.output
    assert f"repaired {lost} (missing in the store)" in result.output
    assert f"repaired {changed} (other bytes (MD5 ETag differs) in the store)" in result.output
    objects = len(snapshot(out))
    assert f"checked all {objects} live objects, 2 damaged" in result.output
    assert bucket_keys(s3_server, s3_bucket) == build_hashes(out)
    check_consistent(reader_of(store_of(s3_bucket)))
    # Objects are written with their sha256, so the next check compares it, not bytes.
    head = store_of(s3_bucket).head(lost)
    assert head is not None and head.sha256 == lost.split("/")[1]
    again = CliRunner().invoke(cli, ["publish", str(out), target, "--repair"])
    assert again.exit_code == 0, again.output
    assert f"uploaded 0 objects (0 bytes), {objects} unchanged" in again.output
    assert f"checked all {objects} live objects, 0 damaged" in again.output


def test_repair_of_a_folder_puts_back_a_deleted_artifact(index: Path, tmp_path: Path) -> None:
    out, site = tmp_path / "out", tmp_path / "site"
    build(index, out, environ=OLD)
    publish(out, LocalStorage(site))
    lost = some_artifact(out)
    (site / lost).unlink()
    dry = CliRunner().invoke(cli, ["publish", str(out), str(site), "--repair", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would repair {lost} (missing in the store)" in dry.output
    assert not (site / lost).exists()
    result = CliRunner().invoke(cli, ["publish", str(out), str(site), "--repair"])
    assert result.exit_code == 0, result.output
    assert f"repaired {lost} (missing in the store)" in result.output
    assert snapshot(site) == snapshot(out)


def test_the_sample_check_finds_a_deleted_object_and_puts_it_back(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    build(index, one, environ=OLD)
    publish(one, store_of(s3_bucket))
    name = plugin_names(index)[-1]
    add_version(index, name, "9.0.0")
    build(index, two, environ=NEW)
    record = record_of(store_of(s3_bucket))
    assert record is not None
    new = build_hashes(two)
    kept = sorted(k for k, v in record.objects.items() if new.get(k) == v)
    assert len(kept) > SAMPLE
    sampled = pick(kept, SAMPLE, seed=7)  # what seed 7 checks
    relied = artifacts_named(two, name)
    lost = sorted(set(sampled) - relied)[0]
    unsampled = sorted(set(kept) - set(sampled) - relied)[0]
    delete_object(s3_server, s3_bucket, lost)
    delete_object(s3_server, s3_bucket, unsampled)
    store = store_of(s3_bucket)
    report = publish(two, store, PublishOptions(sample_seed=7))
    assert report.checked >= SAMPLE and store.requests["HEAD"] == report.checked
    assert [d.key for d in report.repaired] == [lost]
    assert lost in report.uploaded
    keys = bucket_keys(s3_server, s3_bucket)
    assert keys[lost] == new[lost]
    # A key the seed does not draw stays missing: it is a sample, and a cheap one.
    assert unsampled not in keys
    note = damage_lines(report, two, "s3://b/registry")
    assert note[-1].startswith(
        f"warning: s3://b/registry: 1 of {report.checked} live objects checked"
    )
    assert note[-1].endswith(
        f"run `plugindex publish {two} s3://b/registry --repair` to check every object"
    )


def test_a_publish_with_nothing_to_upload_samples_nothing(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """The sample runs with uploads only: a no-change publish stays at one request."""
    out = tmp_path / "out"
    build(index, out, environ=OLD)
    publish(out, store_of(s3_bucket))
    delete_object(s3_server, s3_bucket, some_artifact(out))
    store = store_of(s3_bucket)
    report = publish(out, store, PublishOptions(sample=len(snapshot(out))))
    assert (report.checked, report.repaired, dict(store.requests)) == (0, [], {"GET": 1})


def test_a_changed_document_has_every_artifact_it_names_checked(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """The older versions' artifacts a new document names are HEADed, not trusted."""
    build(index, tmp_path / "one", environ=OLD)
    publish(tmp_path / "one", store_of(s3_bucket))
    name = next(n for n in plugin_names(index) if len(artifacts_named(tmp_path / "one", n)) > 1)
    lost = sorted(artifacts_named(tmp_path / "one", name))[0]
    delete_object(s3_server, s3_bucket, lost)
    add_version(index, name, "9.0.0")
    build(index, tmp_path / "two", environ=NEW)
    report = publish(tmp_path / "two", store_of(s3_bucket), PublishOptions(sample=0))
    assert [d.key for d in report.repaired] == [lost]
    assert bucket_keys(s3_server, s3_bucket) == build_hashes(tmp_path / "two")
    check_consistent(reader_of(store_of(s3_bucket)))


def test_an_object_the_build_cannot_supply_stops_the_publish_before_any_write(
    tmp_path: Path,
) -> None:
    """A borrowed artifact (build --live) the store lost cannot be put back from the build."""
    damage = Damage(f"artifacts/{'a' * 64}/x.tgz", "missing")
    with pytest.raises(
        PublishError, match=r"build again without --live, then publish with --repair"
    ):
        repairs([damage], tmp_path, {}, {damage.key: "a" * 64}, lambda key: f"s3://b/{key}")


# --- a build folder changed after the build ----------------------------------------


def edit_document(path: Path, how: str) -> None:
    """Change a per-plugin document in a build folder as someone might after `build`."""
    document = json.loads(path.read_bytes())
    first, second = document["versions"][0], document["versions"][-1]
    if how == "signed-field":
        first["released"] = "2020-01-01"
    elif how == "download":
        first["artifact"]["download"] = second["artifact"]["download"]
    elif how == "size":
        first["artifact"]["size"] += 1
    elif how == "shape":
        del first["compatibility"]
    elif how == "owner-key":
        stranger = public_key_text(Ed25519PrivateKey.generate())
        document["owners"] = [{"github": "stranger", "keys": [stranger], "retired_keys": []}]
    path.write_text(json.dumps(document), encoding="utf-8")


EDITS = {
    "signed-field": "the release signature does not verify",
    "download": "artifact.download: artifacts/",
    "size": "artifact.size: ",
    "shape": "compatibility: Field required",
    "owner-key": "the release signature was made with a key that is not an owner key",
}


@pytest.mark.parametrize("how", sorted(EDITS), ids=sorted(EDITS))
def test_a_document_edited_after_the_build_is_refused_before_any_write(
    how: str, index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    build(index, old, environ=OLD)
    publish(old, store_of(s3_bucket))
    before = bucket_keys(s3_server, s3_bucket)
    record_before = record_of(store_of(s3_bucket))
    name = next(n for n in plugin_names(index) if len(artifacts_named(old, n)) > 1)
    release_new_artifact(index, name, "9.0.0")
    build(index, new, environ=NEW)
    document = new / layout.index_path(name)
    edit_document(document, how)
    result = CliRunner().invoke(cli, ["publish", str(new), f"s3://{s3_bucket}/{PREFIX}"])
    assert result.exit_code == 3, result.output
    assert result.output.startswith(f"error: {document}: "), result.output
    assert EDITS[how] in result.output
    assert "nothing was published" in result.output
    assert "Traceback" not in result.output
    assert bucket_keys(s3_server, s3_bucket) == before
    assert record_of(store_of(s3_bucket)) == record_before


def test_an_edited_document_is_refused_by_the_worker_processes_too(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many documents are verified in worker processes; a refusal there stops the publish."""
    out, site = tmp_path / "out", tmp_path / "site"
    build(index, out, environ=OLD)
    document = out / layout.index_path(plugin_names(index)[-1])
    edit_document(document, "signed-field")
    monkeypatch.setattr(verify, "DOCUMENTS_BEFORE_WORKERS", 2)
    monkeypatch.setattr("os.cpu_count", lambda: 2)  # workers even on one core
    result = CliRunner().invoke(cli, ["publish", str(out), str(site)])
    assert result.exit_code == 3, result.output
    assert f"error: {document}: " in result.output
    assert "the release signature does not verify" in result.output
    assert not site.exists()


def test_uploads_follow_the_write_rank_with_the_tuf_timestamp_last() -> None:
    """The order comes from layout.write_rank: TUF metadata after the documents it signs."""
    keys = [
        "metadata/timestamp.json",
        "metadata/3.snapshot.json",
        "metadata/2.root.json",
        "metadata/3.targets.json",
        "metadata/3.bins-0.json",
        "config.json",
        "status.json",
        "index/3/a/abc.json",
        f"artifacts/{'a' * 64}/x.tgz",
        "names.json",
    ]
    uploads = [Upload(k, "0" * 64, 1, Path(k)) for k in keys]
    batches = order_batches(uploads, live={})
    ranks = [layout.write_rank(batch[0].key) for batch in batches]
    assert ranks == sorted(ranks)
    assert all(layout.write_rank(u.key) == layout.write_rank(b[0].key) for b in batches for u in b)
    assert [u.key for u in batches[-1]] == ["metadata/timestamp.json"]
    flat = [u.key for batch in batches for u in batch]
    assert flat.index("index/3/a/abc.json") < flat.index("metadata/3.targets.json")


def test_a_consistent_copy_must_hold_the_bytes_its_name_hashes(index: Path, tmp_path: Path) -> None:
    """`index/…/<sha256>.<name>.json` (a signed build's copies) is checked against its name."""
    out = tmp_path / "out"
    build(index, out, environ=OLD)
    document = out / layout.index_path(plugin_names(index)[0])
    data = document.read_bytes()
    good = document.with_name(f"{hashlib.sha256(data).hexdigest()}.{document.name}")
    good.write_bytes(data)
    bad = document.with_name(f"{'0' * 64}.{document.name}")
    bad.write_bytes(data)
    # Files added after the build are not in its record of what it wrote: not published.
    ignored = publish(out, LocalStorage(tmp_path / "ignored"))
    assert not {good.name, bad.name} & {Path(k).name for k in ignored.uploaded}
    # Without that record, publish lists and hashes the folder, and checks them.
    forget_outputs(out)
    bad.unlink()
    assert publish(out, LocalStorage(tmp_path / "ok"), PublishOptions(verifier=verify_document))
    bad.write_bytes(data)
    result = CliRunner().invoke(cli, ["publish", str(out), str(tmp_path / "site")])
    assert result.exit_code == 3, result.output
    assert f"error: {bad}: bytes do not match the sha256 in its name" in result.output
    assert not (tmp_path / "site").exists()


# --- the live record in pieces ------------------------------------------------------


@pytest.fixture(scope="module")
def three_hundred(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two builds of 300 small plugins (about 900 objects), the second with one release more."""
    root = tmp_path_factory.mktemp("three-hundred")
    index = write_index(root / "index")
    for number in range(300):
        for version in ("1.0.0", "1.1.0"):
            add_release(index, f"tool-{number:03d}", version, f"artifacts/{version}.tar.gz")
    build(index, root / "one", environ=OLD)
    add_release(index, "tool-150", "1.2.0", "artifacts/1.2.0.tar.gz", data=b"new\n" * 50)
    build(index, root / "two", environ=NEW)
    return root / "one", root / "two"


def record_nodes(server: S3Server, bucket: str) -> set[str]:
    """Return the node keys of the live record in a bucket."""
    listed = server.client().list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/{NODES}")
    return {item["Key"][len(PREFIX) + 1 :] for item in listed.get("Contents", [])}


def test_a_one_plugin_publish_sends_and_reads_only_the_record_nodes_that_changed(
    three_hundred: tuple[Path, Path], s3_server: S3Server, s3_bucket: str
) -> None:
    one, two = three_hundred
    first = store_of(s3_bucket)
    publish(one, first)
    nodes = record_nodes(s3_server, s3_bucket)
    whole = sum(
        s3_server.client().head_object(Bucket=s3_bucket, Key=f"{PREFIX}/{k}")["ContentLength"]
        for k in nodes
    )
    assert len(nodes) > 20  # the record is in pieces
    store = store_of(s3_bucket)
    report = publish(two, store)
    assert "index/to/ol/tool-150.json" in report.uploaded
    beyond = store.bytes_sent - report.bytes_uploaded
    written = store.requests["PUT"] - len(report.uploaded)
    # The root twice, the pending keys' and the unused nodes' lists, and the changed nodes.
    assert 4 <= written <= 20, dict(store.requests)
    assert beyond < whole / 3, (beyond, whole)
    # Read: the root, and the nodes on the way to the changed keys.
    assert store.bytes_received < whole / 3
    # No change: the root alone.
    again = store_of(s3_bucket)
    publish(two, again)
    assert (dict(again.requests), again.bytes_sent) == ({"GET": 1}, 0)
    assert again.bytes_received < 1000


def test_a_record_of_one_object_is_read_and_written_anew_in_pieces(
    index: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str
) -> None:
    """A record an older plugindex wrote (format 1) is kept: nothing re-uploaded but its pending."""
    out = tmp_path / "out"
    build(index, out, environ=OLD)
    publish(out, store_of(s3_bucket))
    before = record_of(store_of(s3_bucket))
    assert before is not None
    pending = layout.NAMES
    gone = "index/ol/d-/old-plugin.json"
    single = {
        "format": 1,
        "generation": 4,
        "state": "published",
        "build": {"built_at": before.build.built_at, "source_commit": before.build.commit},
        "holder": "older",
        "lease_started": None,
        "pending": [pending],
        "objects": before.objects,
        "retired": {gone: ["e" * 64, "2020-01-01T00:00:00Z"]},
    }
    client = s3_server.client()
    for key in record_nodes(s3_server, s3_bucket):
        client.delete_object(Bucket=s3_bucket, Key=f"{PREFIX}/{key}")
    data = gzip.compress(json.dumps(single).encode(), mtime=0)
    client.put_object(Bucket=s3_bucket, Key=f"{PREFIX}/{RECORD}", Body=data)
    # Read as it is, for build --live too.
    read = record_of(store_of(s3_bucket))
    assert read is not None and (read.objects, read.pending) == (before.objects, [pending])
    store = store_of(s3_bucket)
    report = publish(out, store)
    assert report.uploaded == [pending]  # the rest is live as the old record says
    found = store.get(RECORD)
    assert found is not None and json.loads(gzip.decompress(found.data))["format"] == 2
    after = record_of(store)
    assert after is not None
    assert (after.generation, after.objects, after.pending) == (5, before.objects, [])
    assert after.retired == {gone: Retired("e" * 64, "2020-01-01T00:00:00Z")}
    again = store_of(s3_bucket)
    publish(out, again)
    assert dict(again.requests) == {"GET": 1}


def test_a_missing_record_node_stops_the_publish_and_repair_writes_it_anew(
    index: Path, tmp_path: Path
) -> None:
    one, two, three = tmp_path / "one", tmp_path / "two", tmp_path / "three"
    site = tmp_path / "site"
    build(index, one, environ=OLD)
    publish(one, LocalStorage(site))
    (index / "plugins" / leaf_plugin(index)).rename(tmp_path / "removed")
    build(index, two, environ=NEW)
    publish(two, LocalStorage(site))  # its document is retired
    found = LocalStorage(site).get(RECORD)
    assert found is not None
    root = RecordRoot.decode(found.data, "r")
    assert root.objects is not None and root.retired is not None
    for tree in (root.objects, root.retired):
        (site / node_key(tree.id)).unlink()
    add_version(index, plugin_names(index)[0], "9.0.0")
    build(index, three, environ={"SOURCE_DATE_EPOCH": "1767225800"})
    result = CliRunner().invoke(cli, ["publish", str(three), str(site)])
    assert result.exit_code == 3, result.output
    assert result.output.startswith(
        f"error: {site / node_key(root.objects.id)}: missing, though the live record names it"
    )
    assert "publish with --repair to write it anew from the build" in result.output
    repaired = CliRunner().invoke(cli, ["publish", str(three), str(site), "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert {k: v for k, v in snapshot(site).items() if k in snapshot(three)} == snapshot(three)
    record = record_of(LocalStorage(site))
    assert record is not None and record.objects == build_hashes(three)
    assert record.retired == {}  # the retired tree started afresh: nothing left it now
    again = CliRunner().invoke(cli, ["publish", str(three), str(site)])
    assert again.exit_code == 0, again.output


def test_nodes_a_publish_stops_using_are_deleted_by_the_next_one(
    index: Path, tmp_path: Path
) -> None:
    site = LocalStorage(tmp_path / "site")
    build(index, tmp_path / "first", environ=OLD)
    publish(tmp_path / "first", site)
    found = site.get(RECORD)
    assert found is not None
    first = RecordRoot.decode(found.data, "r")
    # A first publish's pending keys are its objects tree, node for node: nothing unused.
    assert (first.pending, first.obsolete) == (None, None)
    assert {p.name for p in (tmp_path / "site" / NODES).iterdir()} == {
        node_key(i).rsplit("/", 1)[1] for i in NodeStore(site).read_whole(first.objects).fetched
    }
    names = plugin_names(index)
    for number, name in enumerate(names[:4]):
        add_version(index, name, f"9.0.{number}")
        out = tmp_path / f"out-{number}"
        build(index, out, environ={"SOURCE_DATE_EPOCH": str(1767225601 + number)})
        publish(out, site)
        found = site.get(RECORD)
        assert found is not None
        root = RecordRoot.decode(found.data, "r")
        nodes = NodeStore(site)
        named = set()
        for tree in (root.objects, root.retired, root.pending, root.obsolete):
            named |= nodes.read_whole(tree).fetched
        listed = set(nodes.read_whole(root.obsolete).entries)
        stored = {p.name.removesuffix(".json.gz") for p in (tmp_path / "site" / NODES).iterdir()}
        # What the record names, and what the next publish will delete: nothing else.
        assert named <= stored <= named | listed, number
        assert not named & listed


def test_the_unused_nodes_are_deleted_in_one_request_on_s3(
    three_hundred: tuple[Path, Path], s3_server: S3Server, s3_bucket: str
) -> None:
    """The next publish deletes every node the last one stopped using with one DeleteObjects."""
    one, two = three_hundred
    publish(one, store_of(s3_bucket))
    publish(two, store_of(s3_bucket))
    found = store_of(s3_bucket).get(RECORD)
    assert found is not None
    obsolete = RecordRoot.decode(found.data, "r").obsolete
    assert obsolete is not None and obsolete.size >= 2  # several nodes to delete
    unused = {node_key(i) for i in NodeStore(store_of(s3_bucket)).read_whole(obsolete).entries}
    assert unused <= record_nodes(s3_server, s3_bucket)
    store = store_of(s3_bucket)
    publish(one, store, PublishOptions(allow_older=True))  # changes the plugin back
    found = store.get(RECORD)
    assert found is not None
    root = RecordRoot.decode(found.data, "r")
    reader = NodeStore(store_of(s3_bucket))
    named = set()
    for tree in (root.objects, root.retired, root.pending, root.obsolete):
        named |= {node_key(i) for i in reader.read_whole(tree).fetched}
    gone = unused - named  # the nodes of build one come back: those are kept
    assert gone
    assert not gone & record_nodes(s3_server, s3_bucket)
    assert (store.requests["DELETE"], store.requests["POST"]) == (0, 1), dict(store.requests)


def test_delete_many_deletes_in_batches_and_ignores_missing_keys(
    s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("builder.publish.s3._DELETE_BATCH", 2)
    keys = [f"k/{n}.json" for n in range(5)]
    for store in (store_of(s3_bucket), LocalStorage(tmp_path / "site")):
        for key in keys[:4]:
            store.put(key, b"{}", content_type="application/json", cache_control="no-store")
        store.delete_many(keys)  # the fifth was never there
        assert [store.get(k) for k in keys] == [None] * 5
        if isinstance(store, S3Storage):
            assert store.requests["POST"] == 3  # 2 + 2 + 1 keys
    assert not (tmp_path / "site" / "k").exists()  # a folder left empty goes too


def test_publish_to_a_folder_reads_the_build_s_record_not_the_folder(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither listed nor hashed: a file is read only when it is uploaded."""
    out, site = tmp_path / "out", tmp_path / "site"
    build(index, out, environ=OLD)
    publish(out, LocalStorage(site))

    def no_walk(_: Path) -> dict[str, int]:
        raise AssertionError("walked the build folder")

    monkeypatch.setattr("builder.publish.plan.files_on_disk", no_walk)
    kept = some_artifact(out)
    (out / kept).write_bytes(b"not read: the build recorded it, and it is live")
    report = publish(out, LocalStorage(site))
    assert report.uploaded == []
    monkeypatch.undo()
    add_version(index, plugin_names(index)[0], "9.0.0")
    build(index, out, environ=NEW)
    monkeypatch.setattr("builder.publish.plan.files_on_disk", no_walk)
    changed = publish(out, LocalStorage(site))
    assert layout.index_path(plugin_names(index)[0]) in changed.uploaded
    assert kept not in changed.uploaded


def test_the_sample_size_is_an_option_and_a_publish_without_uploads_says_it_sampled_nothing(
    index: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    one, two, site = tmp_path / "one", tmp_path / "two", tmp_path / "site"
    build(index, one, environ=OLD)
    assert CliRunner().invoke(cli, ["publish", str(one), str(site)]).exit_code == 0
    add_version(index, plugin_names(index)[-1], "9.0.0")
    build(index, two, environ=NEW)
    result = CliRunner().invoke(cli, ["publish", str(two), str(site), "--sample", "3"])
    assert result.exit_code == 0, result.output
    checked = int(result.output.split("; checked ")[1].split()[0])
    relied = len(artifacts_named(two, plugin_names(index)[-1]))
    assert relied < checked <= relied + 3
    with caplog.at_level(logging.INFO, logger="builder.publish"):
        quiet = CliRunner().invoke(cli, ["-v", "publish", str(two), str(site), "--sample", "5"])
    assert quiet.exit_code == 0, quiet.output
    assert "checked" not in quiet.output.splitlines()[-1]
    assert "no live object sampled" in caplog.text
    bad = CliRunner().invoke(cli, ["publish", str(two), str(site), "--sample", "-1"])
    assert bad.exit_code == 2
