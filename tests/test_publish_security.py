"""Publishing's safety rules at their edges: the lease, the upload plan and its order.

Against a real folder store (`LocalStorage`), with a second publisher simulated by
writing the live record behind the first one's back.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import random
import re
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from builder.cli.main import cli
from builder.common.build_folder import (
    OUTPUTS,
    STATE_DIR,
    files_on_disk,
    read_outputs,
    write_outputs,
)
from builder.index.build import build as index_build
from builder.publish.folder import LocalStorage
from builder.publish.lease import Lease, must_wait, take_lease
from builder.publish.plan import (
    BuildFiles,
    Upload,
    borrowed_objects,
    build_objects,
    check_references,
    order_batches,
    plan_publish,
    plan_uploads,
    read_build,
)
from builder.publish.record import (
    RECORD,
    BuildStamp,
    PublishError,
    RecordRoot,
    record_of,
    write_record,
)
from builder.publish.tree import (
    LEAF_MAX,
    Made,
    Node,
    Ref,
    TreeError,
    make_tree,
    read_tree,
    update_tree,
)
from tests.conftest import BUNDLED_INDEX
from tests.test_build import add_version

BUILD = BuildStamp("2024-01-01T00:00:00Z", "abc123")
OTHER = BuildStamp("2024-01-02T00:00:00Z", "def456")


def leased(tmp_path: Path, *, renew_every: float = 3600.0) -> tuple[LocalStorage, Lease]:
    store = LocalStorage(tmp_path / "store")
    (tmp_path / "store").mkdir()
    lease = take_lease(
        store,
        RecordRoot(),
        None,
        build=BUILD,
        pending=dict.fromkeys(["index/a.json", "config.json"], "0" * 64),
        holder="me",
        renew_every=renew_every,
    )
    assert lease is not None
    return store, lease


def steal(store: LocalStorage) -> None:
    """Another publisher takes the lease over (a stale lease, or --break-lease)."""
    found = store.get(RECORD)
    assert found is not None
    theirs = RecordRoot(state="publishing", build=OTHER, holder="them", lease_started=1.0)
    write_record(store, theirs, found.tag)


def test_taking_the_lease_records_the_build_and_its_pending_keys(tmp_path: Path) -> None:
    store, lease = leased(tmp_path)
    found = store.get(RECORD)
    assert found is not None and found.tag == lease.tag
    record = RecordRoot.decode(found.data, "record")
    assert (record.state, record.build, record.holder) == ("publishing", BUILD, "me")
    whole = record_of(store)
    assert whole is not None and whole.pending == ["config.json", "index/a.json"]


def test_a_lease_is_not_taken_when_the_record_changed_since_it_was_read(tmp_path: Path) -> None:
    store, _ = leased(tmp_path)
    again = take_lease(
        store, RecordRoot(), None, build=OTHER, pending={}, holder="them", renew_every=1.0
    )
    assert again is None


def test_a_publisher_that_lost_its_lease_stops_before_writing_more(tmp_path: Path) -> None:
    """Mutant: check() not comparing the record's tag: the loser keeps uploading."""
    store, lease = leased(tmp_path)
    lease.check()  # still ours
    steal(store)
    with pytest.raises(PublishError, match="another publisher took over this publish's lease"):
        lease.check()


def test_a_due_renewal_of_a_lost_lease_fails(tmp_path: Path) -> None:
    store, lease = leased(tmp_path, renew_every=0.0)
    lease.check()  # due: renewed, still ours
    steal(store)
    with pytest.raises(PublishError, match="stopped before writing more"):
        lease.check()
    with pytest.raises(PublishError, match="another publisher took over"):
        lease.renew()
    with pytest.raises(PublishError, match="another publisher took over"):
        lease.renew_if_due()


def test_renewing_a_held_lease_rewrites_the_record(tmp_path: Path) -> None:
    store, lease = leased(tmp_path)
    before = lease.tag
    lease.held = replace(lease.held, lease_started=0.0)
    lease.renew()
    assert lease.tag != before
    found = store.get(RECORD)
    assert found is not None and found.tag == lease.tag
    assert RecordRoot.decode(found.data, "r").lease_started != 0.0


def test_renew_if_due_waits_for_its_time(tmp_path: Path) -> None:
    _, lease = leased(tmp_path, renew_every=3600.0)
    before = lease.tag
    lease.renew_if_due()
    assert lease.tag == before


def test_a_publisher_that_lost_its_lease_does_not_write_the_final_record(tmp_path: Path) -> None:
    store, lease = leased(tmp_path)
    steal(store)
    with pytest.raises(PublishError, match="the other publish decides what is live"):
        lease.finish(RecordRoot(generation=1))
    found = store.get(RECORD)
    assert found is not None and RecordRoot.decode(found.data, "r").holder == "them"


def test_releasing_a_lost_lease_leaves_the_other_publishers_record(tmp_path: Path) -> None:
    store, lease = leased(tmp_path)
    steal(store)
    lease.release()
    found = store.get(RECORD)
    assert found is not None and RecordRoot.decode(found.data, "r").holder == "them"


def test_releasing_a_held_lease_keeps_its_pending_keys(tmp_path: Path) -> None:
    store, lease = leased(tmp_path)
    lease.release()
    found = store.get(RECORD)
    assert found is not None
    record = RecordRoot.decode(found.data, "r")
    assert (record.state, record.lease_started) == ("published", None)
    whole = record_of(store)
    assert whole is not None and whole.pending == ["config.json", "index/a.json"]


def test_must_wait_for_a_fresh_lease_of_another_build(tmp_path: Path) -> None:
    import time

    store = LocalStorage(tmp_path)
    theirs = RecordRoot(state="publishing", build=OTHER, lease_started=time.time())
    args: dict[str, float] = {
        "since": time.monotonic(),
        "lease_timeout": 600.0,
        "wait_timeout": 60.0,
    }
    assert must_wait(store, theirs, BUILD, **args)
    assert not must_wait(store, RecordRoot(), BUILD, **args)
    stale = RecordRoot(state="publishing", build=OTHER, lease_started=time.time() - 601)
    assert not must_wait(store, stale, BUILD, **args)
    same = RecordRoot(state="publishing", build=BUILD, lease_started=time.time())
    assert not must_wait(store, same, BUILD, **args)
    with pytest.raises(PublishError, match="gave up waiting after 60 s"):
        must_wait(
            store, theirs, BUILD, since=time.monotonic() - 61, lease_timeout=600, wait_timeout=60
        )


# --- the upload plan --------------------------------------------------------------------


def _upload(key: str) -> Upload:
    return Upload(key, "0" * 64, 1, Path(key))


def test_uploads_go_artifacts_documents_listings_pointers_and_config_last() -> None:
    keys = [
        "config.json",
        "status.json",
        "names.json",
        "index/3/a/abc.json",
        f"artifacts/{'a' * 64}/x.tgz",
        "plugins/abc/index.html",
    ]
    batches = order_batches([_upload(k) for k in keys], live={})
    assert [[u.key for u in batch] for batch in batches] == [
        [f"artifacts/{'a' * 64}/x.tgz"],
        ["index/3/a/abc.json"],
        ["names.json", "plugins/abc/index.html"],
        ["status.json"],
        ["config.json"],
    ]


def test_within_a_rank_new_keys_go_before_replaced_ones() -> None:
    batches = order_batches(
        [_upload("index/2/ab.json"), _upload("index/2/zz.json")],
        live={"index/2/ab.json": "1" * 64},
    )
    assert [[u.key for u in batch] for batch in batches] == [
        ["index/2/zz.json"],
        ["index/2/ab.json"],
    ]


def _build(tmp_path: Path, files: dict[str, bytes]) -> Path:
    for key, data in files.items():
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(data)
    return tmp_path


def test_only_changed_or_uncertain_files_are_uploaded(tmp_path: Path) -> None:
    art = b"artifact"
    sha = hashlib.sha256(art).hexdigest()
    files = {f"artifacts/{sha}/a.tgz": art, "names.json": b"[]", "status.json": b"{}"}
    build = _build(tmp_path, files)
    sizes = {k: len(v) for k, v in files.items()}
    live = {
        f"artifacts/{sha}/a.tgz": sha,
        "names.json": hashlib.sha256(b"[]").hexdigest(),
        "status.json": hashlib.sha256(b"{}").hexdigest(),
    }
    objects = build_objects(build, BuildFiles(sizes, BUILD))
    assert objects == live
    assert plan_uploads(build, sizes, objects, live).uploads == []
    plan = plan_uploads(
        build, sizes, objects, live, uncertain=["names.json", f"artifacts/{sha}/a.tgz"]
    )
    assert sorted(u.key for u in plan.uploads) == [f"artifacts/{sha}/a.tgz", "names.json"]
    assert plan.objects == live
    changed = plan_uploads(build, sizes, objects, {**live, "status.json": "0" * 64})
    assert [u.key for u in changed.uploads] == ["status.json"]


def test_an_artifact_whose_bytes_do_not_match_its_path_is_never_uploaded(tmp_path: Path) -> None:
    key = f"artifacts/{'a' * 64}/a.tgz"
    build = _build(tmp_path, {key: b"not those bytes"})
    with pytest.raises(PublishError, match="artifact bytes do not match the sha256 in its path"):
        plan_uploads(build, {key: 15}, {key: "a" * 64}, {})


def test_a_document_naming_an_artifact_not_in_the_build_is_refused(tmp_path: Path) -> None:
    document = {"versions": [{"version": "1.0.0", "artifact": {"download": "artifacts/x/a"}}]}
    build = _build(tmp_path, {"index/2/ab.json": json.dumps(document).encode()})
    upload = Upload("index/2/ab.json", "0" * 64, 1, build / "index/2/ab.json")
    with pytest.raises(PublishError, match=r"version 1\.0\.0: artifact artifacts/x/a is not"):
        check_references(build, [upload], {})
    check_references(build, [upload], {"artifacts/x/a": "x"})


# --- the lease at its edges (time held still) -------------------------------------------


class _Clock:
    """time.time and time.monotonic held still, moved by hand."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1_000_000.0
        monkeypatch.setattr("builder.publish.lease.time.time", lambda: self.now)
        monkeypatch.setattr("builder.publish.lease.time.monotonic", lambda: self.now)


def test_a_lease_exactly_as_old_as_the_timeout_is_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock(monkeypatch)
    store = LocalStorage(tmp_path)
    record = RecordRoot(state="publishing", build=OTHER, lease_started=clock.now - 600)
    assert not must_wait(store, record, BUILD, since=clock.now, lease_timeout=600, wait_timeout=60)
    younger = RecordRoot(state="publishing", build=OTHER, lease_started=clock.now - 599)
    assert must_wait(store, younger, BUILD, since=clock.now, lease_timeout=600, wait_timeout=60)


def test_waiting_exactly_the_wait_timeout_still_waits_and_then_gives_up_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock(monkeypatch)
    store = LocalStorage(tmp_path)
    record = RecordRoot(state="publishing", build=OTHER, lease_started=clock.now - 10)
    assert must_wait(store, record, BUILD, since=clock.now - 60, lease_timeout=600, wait_timeout=60)
    with pytest.raises(PublishError) as caught:
        must_wait(store, record, BUILD, since=clock.now - 61, lease_timeout=600, wait_timeout=60)
    assert str(caught.value) == (
        f"{tmp_path}: another publish ({OTHER.describe()}) has held the lease for 10 s; "
        "gave up waiting after 60 s"
    )


def test_a_renewal_is_due_exactly_when_its_interval_has_passed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock(monkeypatch)
    _, lease = leased(tmp_path, renew_every=30.0)
    before = lease.tag
    clock.now += 30.0
    lease.renew_if_due()
    assert lease.tag != before
    assert lease.held.lease_started == clock.now


def test_a_lease_records_when_it_was_taken_and_renewed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock(monkeypatch)
    store, lease = leased(tmp_path)

    def recorded() -> RecordRoot:
        found = store.get(RECORD)
        assert found is not None
        return RecordRoot.decode(found.data, "r")

    assert recorded().lease_started == clock.now
    clock.now += 5
    lease.renew()
    assert recorded().lease_started == clock.now


def test_a_lease_is_taken_over_an_existing_record_with_its_tag(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    tag = write_record(store, RecordRoot(generation=3), None)
    lease = take_lease(
        store, RecordRoot(generation=3), tag, build=BUILD, pending={}, holder="me", renew_every=9
    )
    assert lease is not None
    found = store.get(RECORD)
    assert found is not None and RecordRoot.decode(found.data, "r").holder == "me"


def test_finishing_a_held_lease_writes_the_completed_record(tmp_path: Path) -> None:
    store, lease = leased(tmp_path)
    lease.finish(RecordRoot(generation=7, holder="me"))
    found = store.get(RECORD)
    assert found is not None and found.tag == lease.tag
    assert RecordRoot.decode(found.data, "r").generation == 7


def test_releasing_puts_back_the_record_as_found_but_published(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path)
    stale = RecordRoot(generation=2, state="publishing", holder="dead", lease_started=5.0)
    tag = write_record(store, stale, None)
    lease = take_lease(
        store, stale, tag, build=BUILD, pending={"names.json": "0" * 64}, holder="me", renew_every=9
    )
    assert lease is not None
    lease.release()
    found = store.get(RECORD)
    assert found is not None
    record = RecordRoot.decode(found.data, "r")
    assert (record.generation, record.state, record.holder) == (2, "published", "me")
    whole = record_of(store)
    assert whole is not None and (whole.lease_started, whole.pending) == (None, ["names.json"])


@pytest.mark.parametrize(
    ("lose", "call", "doing"),
    [
        ("steal", "check", "stopped before writing more"),
        ("steal", "renew", "stopped before writing more"),
        ("steal", "finish", "the other publish decides what is live"),
    ],
)
def test_a_lost_lease_says_so_in_full(tmp_path: Path, lose: str, call: str, doing: str) -> None:
    store, lease = leased(tmp_path)
    steal(store)
    with pytest.raises(PublishError) as caught:
        if call == "finish":
            lease.finish(RecordRoot())
        else:
            getattr(lease, call)()
    assert str(caught.value) == (
        f"{store.where(RECORD)}: another publisher took over this publish's lease (it went "
        f"unrenewed for longer than the lease lasts, or --break-lease); {doing}. Run "
        "publish again to check."
    )


# --- reading a build and planning over the live record ----------------------------------


def _status(built_at: str = "2024-01-01T00:00:00Z") -> bytes:
    return json.dumps({"built_at": built_at, "source_commit": "abc"}).encode()


def test_read_build_lists_the_files_and_reads_the_stamp(tmp_path: Path) -> None:
    config = b'{"name": "reg"}'
    build = _build(tmp_path, {"config.json": config, "status.json": _status(), "a/b.json": b"1"})
    (tmp_path / ".plugindex").mkdir()
    (tmp_path / ".plugindex/cache.bin").write_bytes(b"state, never published")
    found = read_build(build)
    assert found.files == {"config.json": len(config), "status.json": len(_status()), "a/b.json": 1}
    assert found.stamp == BuildStamp("2024-01-01T00:00:00Z", "abc")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"status.json": b"{}"}, "not a plugindex build (expected config.json; run"),
        ({"config.json": b"{}"}, "not a plugindex build (expected status.json; run"),
        ({}, "not a plugindex build (expected config.json and status.json; run"),
        ({"config.json": b"{}", "status.json": b"[]"}, "status.json: unreadable"),
        ({"config.json": b"{}", "status.json": b"{"}, "status.json: unreadable"),
    ],
    ids=["no-config", "no-status", "neither", "status-shape", "status-json"],
)
def test_read_build_refuses_what_is_not_a_finished_build(
    tmp_path: Path, files: dict[str, bytes], message: str
) -> None:
    (tmp_path / "b").mkdir()
    build = _build(tmp_path / "b", files)
    with pytest.raises(PublishError, match=re.escape(message)):
        read_build(build)


def test_read_build_refuses_a_build_still_staging_and_a_missing_folder(tmp_path: Path) -> None:
    build = _build(tmp_path, {"config.json": b"{}", "status.json": _status()})
    (tmp_path / ".plugindex/staging").mkdir(parents=True)
    with pytest.raises(PublishError, match="a build is in progress or was interrupted"):
        read_build(build)
    with pytest.raises(PublishError, match="not a folder"):
        read_build(tmp_path / "missing")


def test_borrowed_artifacts_must_still_be_live(tmp_path: Path) -> None:
    borrowed = f"artifacts/{'c' * 64}/c.tgz"
    (tmp_path / ".plugindex").mkdir()
    (tmp_path / ".plugindex/borrowed.json").write_text(json.dumps([borrowed]))
    assert borrowed_objects(tmp_path, {borrowed: "c" * 64}, "s3://b") == {borrowed: "c" * 64}
    with pytest.raises(PublishError) as caught:
        borrowed_objects(tmp_path, {borrowed: "d" * 64}, "s3://b")
    assert str(caught.value).startswith(
        f"s3://b: does not hold {borrowed}, which {tmp_path} was built to take from it"
    )
    assert borrowed_objects(tmp_path / "no-state", {}, "s3://b") == {}


def test_plan_publish_uploads_pending_keys_whatever_their_recorded_hash(tmp_path: Path) -> None:
    build = _build(tmp_path, {"names.json": b"[]"})
    files = BuildFiles({"names.json": 2}, BUILD, "reg")
    live = {"names.json": hashlib.sha256(b"[]").hexdigest()}
    assert plan_publish(build, files, live, live, where="x").uploads == []
    plan = plan_publish(build, files, live, live, pending={"names.json": "0" * 64}, where="x")
    assert [u.key for u in plan.uploads] == ["names.json"]


def test_uploads_carry_their_hash_size_and_source(tmp_path: Path) -> None:
    art = b"artifact"
    sha = hashlib.sha256(art).hexdigest()
    build = _build(tmp_path, {f"artifacts/{sha}/a.tgz": art, "names.json": b"[]"})
    sizes = {f"artifacts/{sha}/a.tgz": len(art), "names.json": 2}
    plan = plan_uploads(build, sizes, build_objects(build, BuildFiles(sizes, BUILD)), {})
    assert sorted(plan.uploads, key=lambda u: u.key) == [
        Upload(f"artifacts/{sha}/a.tgz", sha, len(art), build / f"artifacts/{sha}/a.tgz"),
        Upload("names.json", hashlib.sha256(b"[]").hexdigest(), 2, build / "names.json"),
    ]


def test_every_changed_document_is_checked_not_only_the_first(tmp_path: Path) -> None:
    bad = {"versions": [{"version": "2.0.0", "artifact": {"download": "artifacts/y/b"}}]}
    build = _build(tmp_path, {"names.json": b"[]", "index/2/cd.json": json.dumps(bad).encode()})
    uploads = [
        Upload("names.json", "0" * 64, 2, build / "names.json"),
        Upload("index/2/cd.json", "0" * 64, 1, build / "index/2/cd.json"),
    ]
    with pytest.raises(PublishError, match=r"version 2\.0\.0: artifact artifacts/y/b"):
        check_references(build, uploads, {})


def test_an_unreadable_document_is_refused_in_full(tmp_path: Path) -> None:
    build = _build(tmp_path, {"index/2/ab.json": b"{not json"})
    upload = Upload("index/2/ab.json", "0" * 64, 1, build / "index/2/ab.json")
    with pytest.raises(PublishError) as caught:
        check_references(build, [upload], {})
    assert str(caught.value) == (
        f"{build / 'index/2/ab.json'}: unreadable plugin document (expected the JSON a build "
        "writes); nothing was published"
    )


# --- planning a real build ---------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A build of the bundled index (read only: tests copy it before changing it)."""
    out = tmp_path_factory.mktemp("built") / "out"
    result = CliRunner(env={"SOURCE_DATE_EPOCH": "1700000000"}).invoke(
        cli, ["build", str(BUNDLED_INDEX), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    return out


def test_a_first_publish_uploads_every_file_and_relies_on_nothing(built: Path) -> None:
    build = read_build(built)
    assert build.registry == "plugindex-demo"
    plan = plan_publish(built, build, build_objects(built, build), {}, where="x")
    assert sorted(u.key for u in plan.uploads) == sorted(build.files)
    assert set(plan.objects) == set(build.files)
    assert all(plan.objects[u.key] == u.sha256 for u in plan.uploads)
    assert plan.relied == frozenset()


def test_a_changed_document_relies_on_the_live_artifacts_it_names(built: Path) -> None:
    build = read_build(built)
    objects = build_objects(built, build)
    first = plan_publish(built, build, objects, {}, where="x")
    document = next(k for k in build.files if k.startswith("index/") and "auth-jwt" in k)
    live = {k: v for k, v in first.objects.items() if k != document}
    plan = plan_publish(built, build, objects, live, where="x")
    assert [u.key for u in plan.uploads] == [document]
    named = json.loads((built / document).read_bytes())
    downloads = {v["artifact"]["download"] for v in named["versions"]}
    assert plan.relied == frozenset(downloads)


def test_a_document_changed_after_the_build_is_not_published(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "out"
    shutil.copytree(built, copy)
    document = next(p for p in (copy / "index").rglob("*.json") if "auth-jwt" in p.name)
    data = json.loads(document.read_bytes())
    data["versions"][0]["engine"] = "changed after the build"
    document.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(PublishError):
        build = read_build(copy)
        plan_publish(copy, build, build_objects(copy, build), {}, where="x")


def test_a_config_without_a_registry_name_is_refused_in_full(tmp_path: Path) -> None:
    build = _build(tmp_path, {"config.json": b'{"name": 5}', "status.json": _status()})
    with pytest.raises(PublishError) as caught:
        read_build(build)
    assert str(caught.value) == (
        f"{build / 'config.json'}: unreadable (expected the config.json a build writes, "
        "with the registry's name)"
    )


# --- the build's record of its files ----------------------------------------------------


def _hashed(out: Path) -> dict[str, tuple[str, int]]:
    """Return every published file of a build folder with its sha256 and size."""
    return {
        k: (hashlib.sha256((out / k).read_bytes()).hexdigest(), size)
        for k, size in files_on_disk(out).items()
    }


class _StopError(Exception):
    """Stands for a build stopped as it starts changing its folder."""


def test_the_build_records_its_files_and_drops_the_record_while_it_changes_them(
    tmp_path: Path,
) -> None:
    index = tmp_path / "index"
    shutil.copytree(BUNDLED_INDEX, index)
    out = tmp_path / "out"
    index_build(index, out, environ={"SOURCE_DATE_EPOCH": "1767225600"})
    recorded = read_outputs(out)
    assert recorded == _hashed(out)
    name = sorted(p.name for p in (index / "plugins").iterdir())[0]
    add_version(index, name, "9.0.0")

    def stop() -> None:
        raise _StopError

    with pytest.raises(_StopError):
        index_build(out=out, index=index, before_commit=stop)
    assert read_outputs(out) is None  # a half-changed folder has no record to trust
    index_build(index, out, environ={"SOURCE_DATE_EPOCH": "1767225700"})
    assert read_outputs(out) == _hashed(out) != recorded


def test_an_unreadable_or_foreign_record_of_the_files_counts_as_none(tmp_path: Path) -> None:
    (tmp_path / STATE_DIR).mkdir()
    record = tmp_path / STATE_DIR / OUTPUTS
    write_outputs(tmp_path, [("a.json", ("0" * 64, 2))])
    assert read_outputs(tmp_path) == {"a.json": ("0" * 64, 2)}
    record.write_bytes(b"\x00not marshal")
    assert read_outputs(tmp_path) is None
    record.write_bytes(marshal.dumps(("another plugindex", [], [], [])))
    assert read_outputs(tmp_path) is None


# --- the live record's trees --------------------------------------------------------------


def _keys(seed: int, count: int) -> dict[str, str]:
    """Return a map shaped like a build's: artifacts by hash, documents, pages, pointers."""
    rng = random.Random(seed)
    found: dict[str, str] = {}
    while len(found) < count:
        word = "".join(rng.choice("abcdefgh") for _ in range(rng.randint(1, 6)))
        digest = hashlib.sha256(word.encode() + bytes([rng.randint(0, 255)])).hexdigest()
        key = rng.choice(
            [
                f"artifacts/{digest}/{word}.tgz",
                f"index/{word[:2]}/{word}.json",
                f"{word}.json",
                word,
            ]
        )
        found[key] = digest
    return found


class _Nodes:
    """A store of nodes in memory that counts what is read."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self.reads = 0

    def keep(self, made: Made) -> None:
        for node in made.nodes.values():
            node_id, data = node.stored()
            self.stored[node_id] = data

    def load(self, refs: Sequence[Ref]) -> list[Node]:
        self.reads += len(refs)
        return [Node.parse(self.stored[r.id], r.id, r.id) for r in refs]


def test_a_tree_has_one_shape_for_one_map_whatever_the_order() -> None:
    entries = _keys(1, 500)
    shuffled = list(entries.items())
    random.Random(2).shuffle(shuffled)
    tree = make_tree(entries)
    assert tree.root is not None and tree.root.size == 500
    assert make_tree(dict(shuffled)).root == tree.root
    for node in tree.nodes.values():
        if node.children:  # an inner node holds more than a leaf, split by the next character
            assert sum(c.size for c in node.children) > LEAF_MAX
            cut = len(node.prefix)
            nexts = [c.prefix[cut : cut + 1] for c in node.children]
            assert nexts == sorted(set(nexts))
        else:
            assert 1 <= len(node.entries) <= LEAF_MAX
            assert all(k.startswith(node.prefix) for k, _ in node.entries)
    changed = {**entries, sorted(entries)[7]: "0" * 64}
    assert make_tree(changed).root != tree.root


@pytest.mark.parametrize("seed", range(12), ids=[f"seed-{s}" for s in range(12)])
def test_a_tree_changed_in_place_equals_the_tree_made_afresh(seed: int) -> None:
    """Keys set and removed (a few, or most: subtrees shrink to leaves) give the same tree."""
    rng = random.Random(seed)
    old = _keys(seed, rng.randint(1, 700))
    nodes = _Nodes()
    before = make_tree(old)
    nodes.keep(before)
    upserts = _keys(seed + 100, rng.randint(0, 30))
    deletes = rng.sample(sorted(old), min(len(old), rng.choice([0, 5, 40, 600])))
    new = {k: v for k, v in old.items() if k not in deletes} | upserts
    changed = update_tree(before.root, upserts, deletes, nodes.load)
    assert changed.root == make_tree(new).root
    nodes.keep(changed)
    assert read_tree(changed.root, nodes.load).entries == new


def test_a_few_changed_keys_read_and_write_a_few_nodes() -> None:
    old = _keys(3, 5000)
    nodes = _Nodes()
    before = make_tree(old)
    nodes.keep(before)
    new = {**old, "names.json": "1" * 64, f"artifacts/{'2' * 64}/x.tgz": "2" * 64}
    local = make_tree(new)
    read = read_tree(before.root, nodes.load, local)
    assert read.entries == old
    # Only the nodes on the way to the two changed keys were fetched.
    assert 2 <= nodes.reads == len(read.fetched) <= 10 < len(before.nodes)
    written = local.to_write(read.stored)
    assert 2 <= len(written) <= 10
    assert {n.prefix for n in written} >= {"", "artifacts/"}
    unchanged = read_tree(before.root, nodes.load, before)
    assert (unchanged.fetched, unchanged.matched) == (
        set(),
        {before.root.id} if before.root else set(),
    )


def test_a_damaged_node_is_refused_naming_it() -> None:
    node = make_tree({"names.json": "1" * 64}).nodes
    node_id, data = next(iter(node.values())).stored()
    other = make_tree({"names.json": "2" * 64}).nodes
    _, wrong = next(iter(other.values())).stored()
    with pytest.raises(TreeError, match=r"^where: bytes do not match the sha256 in its name"):
        Node.parse(wrong, node_id, "where")
    with pytest.raises(TreeError, match=r"^where: not gzip"):
        Node.parse(b"plain", node_id, "where")
    assert Node.parse(data, node_id, "where").entries == (("names.json", "1" * 64),)
