"""A rebuild walks only the plugin folders whose entries changed since the last scan."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from builder.common import layout
from builder.format import load
from builder.index import cache as cache_module
from builder.index import finds, noop, on_disk
from builder.index.build import build
from tests.conftest import sign_as_owner
from tests.test_build import add_version, leaf_plugin, plugin_names, snapshot

# Status change times come from the kernel's coarse clock (a tick behind at most):
# a pause this long puts an edit clearly after the scan that came before it.
TICK = 0.05


@pytest.fixture
def no_margin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Count a scan as made when it starts (the real margins cover slow file systems and
    the kernel's clock tick)."""
    monkeypatch.setattr(finds, "MARGIN_NS", 0)
    monkeypatch.setattr(noop, "TICK_NS", 0)


def walked_folders(monkeypatch: pytest.MonkeyPatch, index: Path) -> set[str]:
    """Record the plugin folders listed from now on (filled in as the build runs)."""
    walked: set[str] = set()
    real_scandir = os.scandir
    plugins = index / "plugins"

    def scandir(path: Any = ".") -> Any:
        listed = None if isinstance(path, int) else Path(path)  # shutil passes descriptors
        if listed is not None and listed.is_relative_to(plugins) and listed != plugins:
            walked.add(listed.relative_to(plugins).parts[0])
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return walked


def settled_build(index: Path, out: Path) -> None:
    """Build once, with the index's files older than the scan and the next edit later."""
    time.sleep(TICK)
    build(index, out)
    time.sleep(TICK)


@pytest.mark.usefixtures("no_margin")
def test_a_noop_rebuild_walks_no_plugin_folder(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    settled_build(index, out)
    walked = walked_folders(monkeypatch, index)
    again = build(index, out)
    assert walked == set()
    assert again.reparsed == ()
    assert again.report.written == [] and again.report.removed == []


@pytest.fixture(params=["start points listed", "halves by pattern"])
def find_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the index's finds both ways: given the plugin folders (findutils 4.9 and
    later), or splitting plugins/ by a pattern."""
    if request.param == "halves by pattern":
        monkeypatch.setattr(finds, "_takes_start_points", lambda: False)
    else:
        assert finds._takes_start_points()  # the machine's find can
    return str(request.param)


def edit_in_place(path: Path) -> None:
    """Change a file's bytes but not its size, mtime, inode or folder listing."""
    before = path.stat()
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def plugin_in_half(index: Path, find_kind: str, half: int) -> str:
    """Return a plugin that the index's finds list in their `half` (0 or 1)."""
    if find_kind == "halves by pattern":
        name = plugin_names(index)[-half]
        assert name[0] <= "l" if half == 0 else name[0] > "l"  # each find lists one half
        return name
    halves = finds._plugin_folders_halved(index)
    assert halves is not None
    return halves[half].split(b"\0")[0].decode().removeprefix("plugins/")


@pytest.mark.usefixtures("no_margin")
@pytest.mark.parametrize("half", [0, 1], ids=["first half of plugins/", "second half"])
def test_an_edit_in_place_is_seen_and_only_its_folder_walked(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, half: int, find_kind: str
) -> None:
    """Same size, same mtime, same inode, same folder listing: the ctime still tells."""
    out = tmp_path / "out"
    settled_build(index, out)
    name = plugin_in_half(index, find_kind, half)
    version_file = sorted((index / "plugins" / name / "versions").iterdir())[0]
    before = version_file.stat()
    text = version_file.read_text()
    version_file.write_text(text.replace("# ", "#~", 1))  # a comment: still valid
    os.utime(version_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    walked = walked_folders(monkeypatch, index)
    result = build(index, out)
    assert walked == {name}
    assert result.reparsed == (name,)


@pytest.mark.usefixtures("no_margin", "find_kind")
def test_a_folder_named_artifacts_deeper_in_a_plugin_folder_is_looked_into(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only `plugins/<name>/artifacts/` is taken as a whole; a README's images may sit
    in a folder of that name further down, and an edit to one is seen."""
    name = plugin_names(index)[0]
    image = index / "plugins" / name / "docs" / "artifacts" / "shot.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    out = tmp_path / "out"
    settled_build(index, out)
    edit_in_place(image)
    walked = walked_folders(monkeypatch, index)
    build(index, out)
    assert walked == {name}


@pytest.mark.usefixtures("no_margin")
def test_a_new_version_file_is_seen(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    settled_build(index, out)
    name = plugin_names(index)[0]
    add_version(index, name, "9.0.0")
    result = build(index, out)
    assert result.reparsed == (name,)
    build(index, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")


@pytest.mark.usefixtures("no_margin")
def test_a_removed_plugin_folder_and_a_stray_file_are_seen(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    settled_build(index, out)
    victim = leaf_plugin(index)
    shutil.rmtree(index / "plugins" / victim)
    other = next(n for n in plugin_names(index) if n != victim)
    (index / "plugins" / other / "notes.txt").write_text("not a manifest\n")
    result = build(index, out)
    assert layout.index_path(victim) in result.report.removed
    assert [(h.plugin, h.outcome) for h in result.held_back] == [(other, "file left out")]
    build(index, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")


@pytest.mark.usefixtures("no_margin")
def test_an_artifact_added_or_removed_is_seen(index: Path, tmp_path: Path) -> None:
    """Artifacts are not looked at one by one, but their folder lists what comes and goes."""
    out = tmp_path / "out"
    settled_build(index, out)
    name = plugin_names(index)[-1]
    artifacts = index / "plugins" / name / "artifacts"
    (artifacts / "stray.tar.gz").write_bytes(b"not named by any version\n")
    result = build(index, out)
    assert [(h.plugin, h.outcome, h.rel) for h in result.held_back] == [
        (name, "file left out", f"plugins/{name}/artifacts/stray.tar.gz")
    ]
    time.sleep(TICK)
    (artifacts / "stray.tar.gz").unlink()
    assert build(index, out).held_back == ()
    build(index, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")


@pytest.mark.usefixtures("no_margin")
def test_without_find_every_folder_is_walked(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    settled_build(index, out)
    name = plugin_names(index)[0]
    version_file = sorted((index / "plugins" / name / "versions").iterdir())[0]
    version_file.write_text(version_file.read_text().replace("# ", "#~", 1))
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs"))
    walked = walked_folders(monkeypatch, index)
    result = build(index, out)
    assert walked == set(plugin_names(index))
    assert result.reparsed == (name,)


def test_an_edit_within_the_margin_is_seen(index: Path, tmp_path: Path) -> None:
    """With the real margin, files changed just before a scan are looked at again."""
    out = tmp_path / "out"
    build(index, out)  # a first build: its scan's start is taken when it starts
    noop.forget(out)  # as after a build that held a plugin back: the cache's time serves
    name, other = plugin_names(index)[:2]
    add_version(index, name, "9.0.0")
    assert build(index, out).reparsed == (name,)  # its scan's start came from its finds
    noop.forget(out)
    add_version(index, other, "9.0.0")
    assert build(index, out).reparsed == (other,)


def walked_output(monkeypatch: pytest.MonkeyPatch, out: Path) -> list[Path]:
    """Record the folders of the output listed from now on (state and artifacts aside)."""
    listed: list[Path] = []
    real_scandir, real_walk = os.scandir, os.walk

    def note(path: Any) -> None:
        if isinstance(path, int):  # shutil passes descriptors
            return
        folder = Path(path)
        if folder.is_relative_to(out):
            parts = folder.relative_to(out).parts
            if not parts or parts[0] not in {".plugindex", "artifacts"}:
                listed.append(folder)

    def scandir(path: Any = ".") -> Any:
        note(path)
        return real_scandir(path)

    def walk(top: Any, *args: Any, **kwargs: Any) -> Any:
        note(top)
        return real_walk(top, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    monkeypatch.setattr(os, "walk", walk)
    return listed


@pytest.mark.usefixtures("no_margin")
def test_a_noop_rebuild_lists_no_folder_of_the_output(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    settled_build(index, out)
    build(index, out)  # the first build's own writes are after its scan: looked at once
    time.sleep(TICK)
    listed = walked_output(monkeypatch, out)
    again = build(index, out)
    assert listed == []
    assert again.report.written == [] and again.report.removed == []


@pytest.mark.usefixtures("no_margin")
def test_changes_to_the_output_are_seen_without_a_walk(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file removed, one edited, a stray file and a removed folder are all repaired."""
    out = tmp_path / "out"
    settled_build(index, out)
    build(index, out)
    time.sleep(TICK)
    names = plugin_names(index)
    (out / layout.index_path(names[0])).unlink()
    (out / layout.NAMES).write_text("{}\n")
    (out / "index" / "stray.json").write_text("{}\n")
    shutil.rmtree((out / layout.index_path(names[-1])).parent)
    listed = walked_output(monkeypatch, out)
    result = build(index, out)
    assert out not in listed  # only the changed folders were listed
    assert {layout.index_path(names[0]), layout.NAMES, layout.index_path(names[-1])} <= set(
        result.report.written
    )
    assert "index/stray.json" in result.report.removed
    build(index, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")


@pytest.mark.usefixtures("no_margin")
def test_paths_looked_at_again_in_vain_are_not_looked_at_a_third_time(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Touched files of the output, found as recorded, move the record's time forward."""
    monkeypatch.setattr(cache_module, "LOOKED_AGAIN", 0)
    out = tmp_path / "out"
    settled_build(index, out)
    build(index, out)
    time.sleep(TICK)
    for name in plugin_names(index):
        os.utime(out / layout.index_path(name))  # a new ctime, the same bytes
    time.sleep(TICK)
    looked: list[str] = []
    real_look = on_disk._look_at_file

    def look(out: Path, rel: str, found: dict[str, int], touched: set[str]) -> None:
        looked.append(rel)
        real_look(out, rel, found, touched)

    monkeypatch.setattr(on_disk, "_look_at_file", look)
    assert build(index, out).report.written == []
    assert len(looked) == len(plugin_names(index))
    looked.clear()
    assert build(index, out).report.written == []
    assert looked == []


def _strays(index: Path) -> None:
    """Add to plugins/ what is no plugin folder: a file, a hidden folder, a link."""
    plugins = index / "plugins"
    (plugins / "stray.txt").write_text("x", encoding="utf-8")
    (plugins / ".hidden").mkdir()
    (plugins / "linked").symlink_to(min(plugins.iterdir()))


@pytest.mark.parametrize("looked_up", [1000, 0])  # one by one, and by listing plugins/
def test_a_scan_of_named_folders_finds_what_the_whole_scan_finds_of_them(
    index: Path, monkeypatch: pytest.MonkeyPatch, looked_up: int
) -> None:
    monkeypatch.setattr(load, "_LOOKED_UP", looked_up)
    _strays(index)
    whole = load.scan_index(index)
    name = plugin_names(index)[1]
    only = {name, "stray.txt", ".hidden", "linked", "missing", "..", ".", "", "a/b", "x\0"}
    some = load.scan_index(index, only)
    assert list(some.plugins) == [name]
    assert some.plugins[name] == whole.plugins[name]
    strays = {"stray.txt", ".hidden", "linked"}
    expected = [p for p in whole.problems if p.file.name in strays]
    assert len(expected) == 3 and some.problems == expected


def test_a_scan_of_a_few_named_folders_does_not_list_plugins(
    index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed: list[Path] = []
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if not isinstance(path, int):
            listed.append(Path(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    load.scan_index(index, {plugin_names(index)[0]})
    assert index / "plugins" not in listed


@pytest.mark.usefixtures("no_margin")
def test_a_folder_taken_unwalked_whose_record_is_of_another_shape_is_walked_again(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record that cannot give facts does not stand for its folder's listing: the
    folder is walked and read again, and the output is a cold build's."""
    out = tmp_path / "out"
    settled_build(index, out)
    name = plugin_names(index)[0]
    cache = cache_module.load_cache(out, index)
    record = cache.plugins[name]
    record.row = record.row[:-1]
    cache_module.save_cache(out, cache)
    noop.forget(out)  # the build must look at its cache
    walked = walked_folders(monkeypatch, index)
    result = build(index, out)
    assert walked == {name}
    assert result.reparsed == (name,)
    cold = tmp_path / "cold"
    build(index, cold)
    assert snapshot(out) == snapshot(cold)


@pytest.mark.usefixtures("no_margin", "find_kind")
def test_a_plugin_folder_named_artifacts_is_looked_into(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin may be called `artifacts`: its folder is one like any other."""
    source = leaf_plugin(index)
    folder = index / "plugins" / "artifacts"
    shutil.copytree(index / "plugins" / source, folder)
    manifest = folder / "plugin.yaml"
    manifest.write_text(manifest.read_text().replace(f"name: {source}", "name: artifacts", 1))
    for version_file in (folder / "versions").iterdir():
        sign_as_owner(version_file)  # a version is signed for its plugin's name
    out = tmp_path / "out"
    assert build(index, out).held_back == ()
    time.sleep(TICK)
    edit_in_place(sorted((folder / "versions").iterdir())[0])
    walked = walked_folders(monkeypatch, index)
    build(index, out)
    assert walked == {"artifacts"}


# --- a find that cannot answer ----------------------------------------------------------


def test_finds_that_did_not_start_count_as_printing(tmp_path: Path) -> None:
    """Silence proves nothing when there was no find to speak: a no-op check goes on."""
    finding = finds.Finding([[str(tmp_path / "no-such-find")]])
    assert finding.prints_anything()
    assert finding.output() is None  # and a build walks everything


def test_a_find_that_fails_or_hangs_counts_as_printing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert finds.Finding([["sh", "-c", "exit 1"]]).prints_anything()
    monkeypatch.setattr(finds, "_FIND_SECONDS", 0.2)
    hanging = finds.Finding([["sleep", "30"]])
    try:
        assert hanging.prints_anything()
    finally:
        hanging.stop()


@pytest.mark.usefixtures("no_margin")
def test_folders_and_files_swapped_in_the_output_are_repaired_without_a_walk(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new folder of strays, a file turned into a folder, a folder turned into a file,
    and a link to a folder elsewhere: each is seen by its folder's change alone."""
    out = tmp_path / "out"
    moved = tmp_path / "moved"  # a folder moved in: only it, not what it holds, is new there
    (moved / "sub").mkdir(parents=True)
    (moved / "sub" / "a.json").write_text("{}\n")
    settled_build(index, out)
    build(index, out)
    time.sleep(TICK)
    names = plugin_names(index)
    moved.rename(out / "index" / "moved")
    stray = out / "index" / "zz" / "stray"
    stray.mkdir(parents=True)
    (stray / "a.json").write_text("{}\n")
    (out / layout.NAMES).unlink()
    (out / layout.NAMES).mkdir()
    (out / layout.NAMES / "inside.json").write_text("{}\n")
    document = out / layout.index_path(names[-1])
    shutil.rmtree(document.parent)
    document.parent.write_text("not a folder\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("not the build's\n")
    (out / "index" / "link").symlink_to(elsewhere, target_is_directory=True)
    listed = walked_output(monkeypatch, out)
    result = build(index, out)
    assert (out / "artifacts").is_dir()
    assert not [p for p in listed if p.is_relative_to(out / "artifacts")]  # never walked
    assert {layout.NAMES, layout.index_path(names[-1])} <= set(result.report.written)
    removed = set(result.report.removed)
    assert {"index/moved/sub/a.json", "index/zz/stray/a.json", "index/link"} <= removed
    assert f"{layout.NAMES}/inside.json" in removed
    assert not [p for p in removed if p.startswith(".plugindex")]  # the state is not output
    assert (elsewhere / "keep.txt").read_text() == "not the build's\n"  # not followed
    build(index, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")


def test_an_output_file_changed_right_after_a_build_is_repaired(
    index: Path, tmp_path: Path
) -> None:
    """With the real margin: the output's find looks from before the last build's commit."""
    out = tmp_path / "out"
    build(index, out)
    build(index, out)
    noop.forget(out)  # the build's own look at the output, not the no-op check's
    (out / layout.NAMES).write_text("{}\n")
    assert layout.NAMES in build(index, out).report.written


_LISTDIR = os.listdir


def _unlisted(path: Any) -> list[str]:
    """`os.listdir`, refusing to list a plugins/ folder (the index's, not the output's)."""
    if Path(os.fsdecode(path)).name == "plugins":
        raise PermissionError(13, "Permission denied", str(path))
    return _LISTDIR(path)


@pytest.mark.usefixtures("no_margin")
@pytest.mark.parametrize(
    ("target", "failing"),
    [
        ("builder.index.scan.changed_folders", lambda finding: None),  # no usable `find`
        ("builder.index.scan.os.listdir", _unlisted),  # plugins/ unreadable a moment
    ],
    ids=["finds that cannot tell", "plugins/ not listed"],
)
def test_a_scan_that_cannot_follow_the_change_walks_every_folder(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, failing: Any
) -> None:
    """Without the finds' word or the list of folders, every folder is walked again."""
    out = tmp_path / "out"
    settled_build(index, out)
    names = plugin_names(index)
    add_version(index, names[0], "9.9.9")
    with monkeypatch.context() as patch:
        patch.setattr(target, failing)
        walked = walked_folders(patch, index)
        again = build(index, out)
    assert walked == set(names)
    assert again.reparsed == (names[0],)
    build(index, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")
