"""The build's output folder: write order, all-or-nothing staging, only what changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from builder.common.build_folder import STATE_DIR
from builder.common.errors import BuildError
from builder.index.output import Planned, check_output, files_outside, write_output

ART = f"artifacts/{'a' * 64}/x.tgz"


def planned(data: bytes) -> Planned:
    return Planned(hashlib.sha256(data).hexdigest(), len(data), data)


PLAN = {
    "config.json": planned(b'{"name":"r"}'),
    "status.json": planned(b"{}"),
    "names.json": planned(b"[]"),
    "index/3/a/abc.json": planned(b'{"versions":[]}'),
    ART: planned(b"artifact"),
    "metadata/timestamp.json": planned(b"ts"),
}


def test_files_are_committed_pointed_at_first_and_pointers_last(tmp_path: Path) -> None:
    """Mutant: the commit order sorted by path puts config.json before the documents."""
    report = write_output(tmp_path / "out", PLAN, None)
    assert report.written == [
        ART,
        "index/3/a/abc.json",
        "names.json",
        "config.json",
        "status.json",
        "metadata/timestamp.json",
    ]
    assert (tmp_path / "out/config.json").read_bytes() == b'{"name":"r"}'
    assert not (tmp_path / "out" / STATE_DIR / "staging").exists()


def test_only_changed_files_are_rewritten_and_stale_ones_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, PLAN, None)
    previous = {path: p.sha256 for path, p in PLAN.items()}
    plan = {k: v for k, v in PLAN.items() if k != "index/3/a/abc.json"}
    plan["names.json"] = planned(b'["abc"]')
    report = write_output(out, plan, previous)
    assert report.written == ["names.json"]
    assert report.removed == ["index/3/a/abc.json"]
    assert report.unchanged == len(plan) - 1
    assert not (out / "index").exists()  # empty folders pruned


def test_a_file_changed_on_disk_is_rewritten_even_if_its_hash_is_recorded(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, PLAN, None)
    (out / "names.json").write_bytes(b"[1, 2]")
    previous = {path: p.sha256 for path, p in PLAN.items()}
    assert write_output(out, PLAN, previous).written == ["names.json"]
    assert (out / "names.json").read_bytes() == b"[]"


def test_a_source_that_changed_while_building_leaves_the_output_as_it_was(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    write_output(out, PLAN, None)
    source = tmp_path / "artifact"
    source.write_bytes(b"changed")
    plan = {
        **PLAN,
        "names.json": planned(b'["new"]'),
        f"artifacts/{'b' * 64}/y.tgz": Planned("b" * 64, 7, source),
    }
    with pytest.raises(BuildError, match="changed while building"):
        write_output(out, plan, {path: p.sha256 for path, p in PLAN.items()})
    assert (out / "names.json").read_bytes() == b"[]"
    assert not (out / STATE_DIR / "staging").exists()


def test_before_commit_runs_only_when_something_changes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    calls: list[int] = []
    write_output(out, PLAN, None, before_commit=lambda: calls.append(1))
    previous = {path: p.sha256 for path, p in PLAN.items()}
    write_output(out, PLAN, previous, before_commit=lambda: calls.append(2))
    assert calls == [1]


def test_a_failing_before_commit_changes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, PLAN, None)
    previous = {path: p.sha256 for path, p in PLAN.items()}

    def refuse() -> None:
        raise BuildError("no")

    plan = {**PLAN, "names.json": planned(b'["new"]')}
    with pytest.raises(BuildError):
        write_output(out, plan, previous, before_commit=refuse)
    assert (out / "names.json").read_bytes() == b"[]"


def test_the_output_must_be_a_build_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(BuildError, match="not a folder"):
        check_output(tmp_path / "file")
    (tmp_path / "full").mkdir()
    (tmp_path / "full/x").write_text("x")
    with pytest.raises(BuildError, match="folder is not empty and holds no earlier"):
        check_output(tmp_path / "full")
    check_output(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    check_output(tmp_path / "empty")


def test_a_file_copied_from_a_source_is_written_whole(tmp_path: Path) -> None:
    source = tmp_path / "artifact"
    source.write_bytes(b"artifact bytes " * 1000)
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    key = f"artifacts/{sha}/a.tgz"
    write_output(tmp_path / "out", {key: Planned(sha, 15000, source)}, None)
    assert (tmp_path / "out" / key).read_bytes() == source.read_bytes()


def test_a_changed_file_without_content_is_an_internal_error_named(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        write_output(tmp_path / "out", {"names.json": Planned("0" * 64, 2, None)}, None)
    assert str(caught.value) == "names.json: no content to write (internal error)"


def test_leftovers_of_an_interrupted_staging_are_cleared_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / STATE_DIR / "staging" / "names.json").mkdir(parents=True)  # a folder, not a file
    report = write_output(out, PLAN, None)
    assert "names.json" in report.written
    assert (out / "names.json").read_bytes() == b"[]"


def test_a_refused_commit_of_removals_only_keeps_its_own_error(tmp_path: Path) -> None:
    """Nothing was staged: cleaning up must not hide the error with its own."""
    out = tmp_path / "out"
    write_output(out, PLAN, None)
    previous = {path: p.sha256 for path, p in PLAN.items()}
    fewer = {k: v for k, v in PLAN.items() if k != "names.json"}

    def refuse() -> None:
        raise BuildError("refused")

    with pytest.raises(BuildError, match="refused"):
        write_output(out, fewer, previous, before_commit=refuse)
    assert (out / "names.json").is_file()


def test_files_outside_lists_published_files_except_skipped_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, PLAN, None)
    (out / "search").mkdir()
    (out / "search" / "shard.json").write_bytes(b"12345")
    (out / "link").symlink_to(out / "index", target_is_directory=True)
    found = files_outside(out, skip={"search"})
    assert found == {path: p.size for path, p in PLAN.items()} | {"link": found["link"]}
    assert files_outside(tmp_path / "missing", skip=()) == {}


def test_a_file_without_content_is_named_by_its_file_name(tmp_path: Path) -> None:
    with pytest.raises(BuildError) as caught:
        write_output(tmp_path / "out", {"index/2/ab.json": Planned("0" * 64, 2, None)}, None)
    assert str(caught.value) == "ab.json: no content to write (internal error)"
