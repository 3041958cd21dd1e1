"""Files written ahead (`prestage`) and committed with the build: moved whole or one by one.

The build's checking processes write a plugin's document and local artifacts ahead,
at their published paths; `write_output` moves them into place (a whole folder in one
rename where the output has none yet) and stages only the rest. Each test states
what ends up in the output folder.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from builder.common.build_folder import (
    STATE_DIR,
    OutputFiles,
    forget_outputs,
    read_outputs,
    write_outputs,
)
from builder.common.sharded import Sharded
from builder.index.carry import CarriedArtifacts
from builder.index.output import (
    Planned,
    Prestaged,
    WriteReport,
    _unplanned,
    _WholeFolders,
    files_outside,
    prestage,
    record_files,
    write_output,
)

A1 = f"artifacts/{'a' * 64}/a.tgz"
A2 = f"artifacts/{'b' * 64}/b.tgz"
DOC = "index/3/a/abc.json"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def planned(data: bytes) -> Planned:
    return Planned(sha(data), len(data), data)


def tree(folder: Path) -> dict[str, bytes]:
    """Return every file under `folder` (except the build's state) with its bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and STATE_DIR not in p.relative_to(folder).parts
    }


# --- writing ahead ----------------------------------------------------------------------


def test_bytes_written_ahead_land_at_their_path_and_leave_no_part(tmp_path: Path) -> None:
    root = tmp_path / "ahead"
    assert prestage(str(root), DOC, sha(b"{}"), b"{}") is True
    assert (root / DOC).read_bytes() == b"{}"
    assert list((root / ".parts").iterdir()) == []


def test_a_source_file_is_copied_ahead_only_with_its_sha256(tmp_path: Path) -> None:
    root, source = tmp_path / "ahead", tmp_path / "src.tgz"
    source.write_bytes(b"artifact" * 10_000)
    assert prestage(str(root), A1, sha(source.read_bytes()), source) is True
    assert (root / A1).read_bytes() == source.read_bytes()
    assert prestage(str(root), A2, sha(b"other"), source) is False
    assert not (root / A2).exists()
    assert list((root / ".parts").iterdir()) == []


def test_a_source_that_cannot_be_read_is_left_to_the_commit(tmp_path: Path) -> None:
    root = tmp_path / "ahead"
    assert prestage(str(root), A1, sha(b"x"), tmp_path / "missing.tgz") is False
    assert not (root / A1).exists()
    assert list((root / ".parts").iterdir()) == []


def test_writing_ahead_twice_keeps_one_whole_copy(tmp_path: Path) -> None:
    root = tmp_path / "ahead"
    assert prestage(str(root), A1, sha(b"one"), b"one")
    assert prestage(str(root), A1, sha(b"one"), b"one")
    assert (root / A1).read_bytes() == b"one"
    assert sorted(p.name for p in (root / A1).parent.iterdir()) == ["a.tgz"]


# --- committing what was written ahead --------------------------------------------------


def _ahead(tmp_path: Path, files: dict[str, bytes]) -> Prestaged:
    root = tmp_path / "ahead"
    for path, data in files.items():
        assert prestage(str(root), path, sha(data), data)
    return Prestaged(root, {path: sha(data) for path, data in files.items()})


def test_a_cold_build_moves_each_top_folder_whole(tmp_path: Path) -> None:
    files = {A1: b"one", A2: b"two", DOC: b"{}"}
    plan = {path: Planned(sha(d), len(d), None) for path, d in files.items()}
    plan["config.json"] = planned(b"{}")
    ahead = _ahead(tmp_path, files)
    out = tmp_path / "out"
    report = write_output(out, plan, None, prestaged=ahead)
    assert tree(out) == {**files, "config.json": b"{}"}
    assert report.written == [A1, A2, DOC, "config.json"]
    # Moved whole: the folders written ahead are gone from where they were written.
    assert not (ahead.root / "artifacts").exists() and not (ahead.root / "index").exists()


def test_a_folder_the_output_has_is_filled_file_by_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, {A1: planned(b"one")}, None)
    files = {A2: b"two"}
    ahead = _ahead(tmp_path, files)
    plan = {A1: planned(b"one"), A2: Planned(sha(b"two"), 3, None)}
    report = write_output(out, plan, {A1: sha(b"one")}, prestaged=ahead)
    assert report.written == [A2]
    assert tree(out) == {A1: b"one", A2: b"two"}
    assert (ahead.root / "artifacts").is_dir()  # not moved whole: out had artifacts/


def test_a_new_folder_inside_a_folder_the_output_has_moves_whole(tmp_path: Path) -> None:
    """An incremental build's new artifact folder moves in one rename, not file by file."""
    out = tmp_path / "out"
    write_output(out, {A1: planned(b"one")}, None)
    new = {f"{A2}": b"two", f"{A2.rpartition('/')[0]}/b.sig": b"sig"}
    ahead = _ahead(tmp_path, new)
    plan = {A1: planned(b"one"), **{p: Planned(sha(d), len(d), None) for p, d in new.items()}}
    moves: list[str] = []
    real_replace = os.replace

    def replace(source: str | Path, target: str | Path) -> None:
        moves.append(Path(target).relative_to(out).as_posix())
        real_replace(source, target)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("builder.index.output.os.replace", replace)
        write_output(out, plan, {A1: sha(b"one")}, prestaged=ahead)
    assert tree(out) == {A1: b"one", **new}
    assert moves == [A2.rpartition("/")[0]]  # the new folder, whole
    assert (ahead.root / "artifacts").is_dir()  # the folder the output had stays


class _CountedListing(dict[str, str]):
    """The record of files written ahead, counting how often it is gone through."""

    walks = 0

    def __iter__(self) -> Iterator[str]:
        type(self).walks += 1
        return super().__iter__()


def test_files_written_ahead_are_counted_once_per_depth_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each depth's count is made once, and each folder looked for in the output once:
    asked per file, a cold build would go quadratic, or stat a folder per artifact."""
    deep = {f"artifacts/{c * 64}/{c}.tgz": sha(c.encode()) for c in "abcd"}
    ahead = _CountedListing(deep)
    looked: list[str] = []
    real_exists = Path.exists

    def exists(path: Path) -> bool:
        looked.append(path.name)
        return real_exists(path)

    whole = _WholeFolders(tmp_path / "out", ahead, lambda: iter(deep))
    with monkeypatch.context() as patch:
        patch.setattr(Path, "exists", exists)
        assert [whole.top(path) for path in deep] == ["artifacts"] * 4
    assert _CountedListing.walks == 1
    assert looked == ["artifacts"]
    (tmp_path / "out" / "artifacts").mkdir(parents=True)  # the output has it now
    again = _WholeFolders(tmp_path / "out", ahead, lambda: iter(deep))
    assert [again.top(path) for path in deep] == [p.rpartition("/")[0] for p in deep]
    assert _CountedListing.walks == 3  # depth 1, then depth 2, each once


def test_a_folder_with_a_file_left_out_is_not_moved_whole(tmp_path: Path) -> None:
    """A file written ahead that the build does not publish stays out of the output."""
    files = {A1: b"one", A2: b"left out"}
    ahead = _ahead(tmp_path, files)
    out = tmp_path / "out"
    report = write_output(out, {A1: Planned(sha(b"one"), 3, None)}, None, prestaged=ahead)
    assert report.written == [A1]
    assert tree(out) == {A1: b"one"}
    assert (ahead.root / A2).read_bytes() == b"left out"


def test_a_file_written_ahead_with_other_bytes_is_staged_instead(tmp_path: Path) -> None:
    ahead = _ahead(tmp_path, {A1: b"stale"})
    out = tmp_path / "out"
    report = write_output(out, {A1: planned(b"fresh")}, None, prestaged=ahead)
    assert report.written == [A1]
    assert tree(out) == {A1: b"fresh"}
    assert (ahead.root / A1).read_bytes() == b"stale"


def test_nested_folders_move_once_at_their_outermost(tmp_path: Path) -> None:
    deep = {f"artifacts/{c * 64}/{c}.tgz": c.encode() for c in "abc"}
    ahead = _ahead(tmp_path, deep)
    out = tmp_path / "out"
    plan = {path: Planned(sha(d), len(d), None) for path, d in deep.items()}
    write_output(out, plan, None, prestaged=ahead)
    assert tree(out) == deep
    assert not (ahead.root / "artifacts").exists()


# --- removing what is no longer published -----------------------------------------------


def test_removing_the_last_file_of_a_folder_removes_its_empty_parents_only(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    plan = {A1: planned(b"one"), A2: planned(b"two"), "index/3/a/abc.json": planned(b"{}")}
    write_output(out, plan, None)
    previous = {path: p.sha256 for path, p in plan.items()}
    report = write_output(out, {A1: plan[A1]}, previous)
    assert report.removed == [A2, "index/3/a/abc.json"]
    assert tree(out) == {A1: b"one"}
    assert not (out / "index").exists()
    assert not (out / A2).parent.exists()
    assert (out / "artifacts").is_dir() and out.is_dir()


def test_files_outside_skips_the_state_and_named_folders(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, {A1: planned(b"one"), "config.json": planned(b"{}")}, None)
    (out / "search").mkdir()
    (out / "search" / "x").write_bytes(b"12")
    assert files_outside(out, {"search"}) == {A1: 3, "config.json": 2}
    assert files_outside(out, set()) == {A1: 3, "config.json": 2, "search/x": 2}
    assert files_outside(tmp_path / "nothing", set()) == {}


def test_a_root_that_cannot_hold_folders_is_left_to_the_commit(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_bytes(b"")
    assert prestage(str(blocked), DOC, sha(b"{}"), b"{}") is False
    assert blocked.read_bytes() == b""


def test_a_folder_the_output_has_takes_only_the_ready_files(tmp_path: Path) -> None:
    """Into a folder the output has: the ready file moves alone, a left-out one stays."""
    out = tmp_path / "out"
    old = "index/3/a/abc.json"
    write_output(out, {old: planned(b"old")}, None)
    new, left_out = "index/3/a/abd.json", "index/3/a/abe.json"
    ahead = _ahead(tmp_path, {new: b"new", left_out: b"not published"})
    plan = {old: planned(b"old"), new: Planned(sha(b"new"), 3, None)}
    report = write_output(out, plan, {old: sha(b"old")}, prestaged=ahead)
    assert report.written == [new]
    assert tree(out) == {old: b"old", new: b"new"}
    assert (ahead.root / left_out).read_bytes() == b"not published"


def test_a_new_subfolder_beside_a_left_out_file_is_not_moved_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out, {A1: planned(b"one")}, None)  # out has artifacts/
    ready, left_out = f"artifacts/{'c' * 64}/c.tgz", f"artifacts/{'c' * 64}/left.tgz"
    ahead = _ahead(tmp_path, {ready: b"c", left_out: b"left"})
    plan = {A1: planned(b"one"), ready: Planned(sha(b"c"), 1, None)}
    write_output(out, plan, {A1: sha(b"one")}, prestaged=ahead)
    assert tree(out) == {A1: b"one", ready: b"c"}


# --- the record of the output's files ---------------------------------------------------


def _recorded(out: Path, files: dict[str, bytes]) -> tuple[Sharded, dict[str, str]]:
    record = write_outputs(out, ((path, (sha(data), len(data))) for path, data in files.items()))
    return record, {path: sha(data) for path, data in files.items()}


def test_a_recorded_path_the_plan_dropped_leaves_the_record_with_nothing_written(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    loaded, hashes = _recorded(out, {A1: b"one", DOC: b"{}"})
    record_files(out, {DOC: planned(b"{}")}, WriteReport(), loaded, hashes)  # A1 was gone
    assert read_outputs(out) == {DOC: (sha(b"{}"), 2)}


def test_a_record_forgotten_before_a_commit_is_written_again_with_no_change(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    loaded, hashes = _recorded(out, {DOC: b"{}"})
    forget_outputs(out)  # as a commit starts; nothing turned out to change
    record_files(out, {DOC: planned(b"{}")}, WriteReport(), loaded, hashes)
    assert read_outputs(out) == {DOC: (sha(b"{}"), 2)}


# --- what the build no longer publishes, with artifacts carried over -------------------


class _NeverWalked(dict[str, int]):
    """The record's artifacts as `OutputFiles` keeps them: looked up, never gone through."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the carried artifacts were gone through one by one")


def _carried(sizes: dict[str, int], stale: frozenset[str]) -> CarriedArtifacts:
    return CarriedArtifacts(sizes, {}, stale, {}, len(sizes) - len(stale))


def test_carried_artifacts_are_not_gone_through_to_find_what_goes() -> None:
    on_disk = OutputFiles({DOC: 2, "old.json": 2}, _NeverWalked({A1: 3, A2: 3}))
    gone = _unplanned(on_disk, {DOC: planned(b"{}")}, _carried({A1: 3, A2: 3}, frozenset({A2})))
    assert sorted(gone) == [A2, "old.json"]  # the stale artifact, and the file dropped


def test_a_walked_output_with_artifacts_carried_over_drops_each_stale_file_once() -> None:
    stray = f"artifacts/{'c' * 64}/c.tgz"  # on disk, in no record: goes too
    on_disk = {DOC: 2, "old.json": 2, A1: 3, A2: 3, stray: 1}
    gone = _unplanned(on_disk, {DOC: planned(b"{}")}, _carried({A1: 3, A2: 3}, frozenset({A2})))
    assert sorted(gone) == sorted([A2, "old.json", stray])


def test_stale_files_in_the_way_of_a_write_go_first(tmp_path: Path) -> None:
    """A file where a folder is written (at any depth), and a folder of stale files
    where a file is written: both are cleared, and every other file stays as planned."""
    out = tmp_path / "out"
    (out / "deep" / "a").mkdir(parents=True)
    (out / "deep" / "a" / "b").write_bytes(b"a file where a folder goes")
    (out / "x").write_bytes(b"a file where a folder goes")
    (out / "names.json" / "sub").mkdir(parents=True)
    (out / "names.json" / "sub" / "in.json").write_bytes(b"{}")
    (out / "other.json").write_bytes(b"stale, in nobody's way")
    plan = {
        "deep/a/b/c/d.json": planned(b"1"),
        "x/y.json": planned(b"2"),
        "names.json": planned(b"3"),
        "keep.json": planned(b"4"),
    }
    report = write_output(out, plan, None)
    assert tree(out) == {
        "deep/a/b/c/d.json": b"1",
        "x/y.json": b"2",
        "names.json": b"3",
        "keep.json": b"4",
    }
    assert sorted(report.removed) == ["deep/a/b", "names.json/sub/in.json", "other.json", "x"]
    assert report.removed[-1] == "other.json"  # removed after the writes, not before
