"""Publishing's safety rules at their edges: the lease, the upload plan and its order.

Against a real folder store (`LocalStorage`), with a second publisher simulated by
writing the live record behind the first one's back.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from builder.publish.folder import LocalStorage
from builder.publish.lease import Lease, must_wait, take_lease
from builder.publish.plan import Upload, check_references, order_batches, plan_uploads
from builder.publish.record import RECORD, BuildStamp, LiveRecord, PublishError, write_record

BUILD = BuildStamp("2024-01-01T00:00:00Z", "abc123")
OTHER = BuildStamp("2024-01-02T00:00:00Z", "def456")


def leased(tmp_path: Path, *, renew_every: float = 3600.0) -> tuple[LocalStorage, Lease]:
    store = LocalStorage(tmp_path / "store")
    (tmp_path / "store").mkdir()
    lease = take_lease(
        store,
        LiveRecord(),
        None,
        build=BUILD,
        pending=["index/a.json", "config.json"],
        holder="me",
        renew_every=renew_every,
    )
    assert lease is not None
    return store, lease


def steal(store: LocalStorage) -> None:
    """Another publisher takes the lease over (a stale lease, or --break-lease)."""
    found = store.get(RECORD)
    assert found is not None
    theirs = LiveRecord(state="publishing", build=OTHER, holder="them", lease_started=1.0)
    write_record(store, theirs, found.tag)


def test_taking_the_lease_records_the_build_and_its_pending_keys(tmp_path: Path) -> None:
    store, lease = leased(tmp_path)
    found = store.get(RECORD)
    assert found is not None and found.tag == lease.tag
    record = LiveRecord.decode(found.data, "record")
    assert (record.state, record.build, record.holder) == ("publishing", BUILD, "me")
    assert record.pending == ["config.json", "index/a.json"]


def test_a_lease_is_not_taken_when_the_record_changed_since_it_was_read(tmp_path: Path) -> None:
    store, _ = leased(tmp_path)
    again = take_lease(
        store, LiveRecord(), None, build=OTHER, pending=[], holder="them", renew_every=1.0
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
    lease.held = LiveRecord(**{**lease.held.__dict__, "lease_started": 0.0})
    lease.renew()
    assert lease.tag != before
    found = store.get(RECORD)
    assert found is not None and found.tag == lease.tag
    assert LiveRecord.decode(found.data, "r").lease_started != 0.0


def test_renew_if_due_waits_for_its_time(tmp_path: Path) -> None:
    _, lease = leased(tmp_path, renew_every=3600.0)
    before = lease.tag
    lease.renew_if_due()
    assert lease.tag == before


def test_a_publisher_that_lost_its_lease_does_not_write_the_final_record(tmp_path: Path) -> None:
    store, lease = leased(tmp_path)
    steal(store)
    with pytest.raises(PublishError, match="the other publish decides what is live"):
        lease.finish(LiveRecord(generation=1))
    found = store.get(RECORD)
    assert found is not None and LiveRecord.decode(found.data, "r").holder == "them"


def test_releasing_a_lost_lease_leaves_the_other_publishers_record(tmp_path: Path) -> None:
    store, lease = leased(tmp_path)
    steal(store)
    lease.release()
    found = store.get(RECORD)
    assert found is not None and LiveRecord.decode(found.data, "r").holder == "them"


def test_releasing_a_held_lease_keeps_its_pending_keys(tmp_path: Path) -> None:
    store, lease = leased(tmp_path)
    lease.release()
    found = store.get(RECORD)
    assert found is not None
    record = LiveRecord.decode(found.data, "r")
    assert (record.state, record.lease_started) == ("published", None)
    assert record.pending == ["config.json", "index/a.json"]


def test_must_wait_for_a_fresh_lease_of_another_build(tmp_path: Path) -> None:
    import time

    store = LocalStorage(tmp_path)
    theirs = LiveRecord(state="publishing", build=OTHER, lease_started=time.time())
    args: dict[str, float] = {
        "since": time.monotonic(),
        "lease_timeout": 600.0,
        "wait_timeout": 60.0,
    }
    assert must_wait(store, theirs, BUILD, **args)
    assert not must_wait(store, LiveRecord(), BUILD, **args)
    stale = LiveRecord(state="publishing", build=OTHER, lease_started=time.time() - 601)
    assert not must_wait(store, stale, BUILD, **args)
    same = LiveRecord(state="publishing", build=BUILD, lease_started=time.time())
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
    assert plan_uploads(build, sizes, live).uploads == []
    plan = plan_uploads(build, sizes, live, uncertain=["names.json", f"artifacts/{sha}/a.tgz"])
    assert sorted(u.key for u in plan.uploads) == [f"artifacts/{sha}/a.tgz", "names.json"]
    assert plan.objects == live
    changed = plan_uploads(build, sizes, {**live, "status.json": "0" * 64})
    assert [u.key for u in changed.uploads] == ["status.json"]


def test_an_artifact_whose_bytes_do_not_match_its_path_is_never_uploaded(tmp_path: Path) -> None:
    key = f"artifacts/{'a' * 64}/a.tgz"
    build = _build(tmp_path, {key: b"not those bytes"})
    with pytest.raises(PublishError, match="artifact bytes do not match the sha256 in its path"):
        plan_uploads(build, {key: 15}, {})


def test_a_document_naming_an_artifact_not_in_the_build_is_refused(tmp_path: Path) -> None:
    document = {"versions": [{"version": "1.0.0", "artifact": {"download": "artifacts/x/a"}}]}
    build = _build(tmp_path, {"index/2/ab.json": json.dumps(document).encode()})
    upload = Upload("index/2/ab.json", "0" * 64, 1, build / "index/2/ab.json")
    with pytest.raises(PublishError, match=r"version 1\.0\.0: artifact artifacts/x/a is not"):
        check_references(build, [upload], {})
    check_references(build, [upload], {"artifacts/x/a": "x"})
