"""Sharded records (`builder.common.sharded`): a save rewrites the parts that changed.

The build keeps its cache and the record of its files this way; the last tests
check that a build which changed one plugin rewrites a few parts of each, and that
the records it leaves are the ones a clean build leaves.
"""

from __future__ import annotations

import hashlib
import marshal
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from builder.common import layout, sharded
from builder.common.build_folder import (
    ARTIFACT_PARTS,
    OTHER_PARTS,
    STATE_DIR,
    OutputFiles,
    files_on_disk,
    load_outputs,
    read_outputs,
)
from builder.index.build import build
from builder.index.cache import CACHE_FILE, BuildCache, load_cache, save_cache
from tests.test_build import add_version, leaf_plugin, plugin_names

KEY = "test record 1"
EPOCH = {"SOURCE_DATE_EPOCH": "1736899200"}


def entries(count: int) -> dict[str, tuple[str, int]]:
    return {f"plugins/p{i}.json": (f"{i:064x}", i) for i in range(count)}


def parts_of(root: Path) -> dict[str, tuple[int, int]]:
    """Return each part file with its (inode, mtime_ns): a rewritten part changes both."""
    found = {}
    for path in sharded.parts_folder(root).iterdir():
        stat = path.stat()
        found[path.name] = (stat.st_ino, stat.st_mtime_ns)
    return found


def save(
    root: Path, values: dict[str, tuple[str, int]], loaded: sharded.Sharded | None = None
) -> sharded.Sharded:
    return sharded.save(root, KEY, ("header", 1), sharded.split(values.items()), loaded)


def test_a_record_reads_back_as_it_was_saved(tmp_path: Path) -> None:
    root = tmp_path / "record.bin"
    values = entries(2000)
    save(root, values)
    loaded = sharded.load(root, KEY)
    assert loaded is not None
    assert loaded.header == ("header", 1)
    assert loaded.entries() == values
    assert len(loaded.parts) == sharded.PARTS
    # Spread evenly (a save rewrites a small share), each key in the part it hashes to.
    assert max(len(part) for part in loaded.parts) <= 4 * len(values) / sharded.PARTS
    assert all(
        sharded.split([(k, v)])[i] == {k: v}
        for i, p in enumerate(loaded.parts)
        for k, v in p.items()
    )


def test_a_save_rewrites_only_the_parts_whose_entries_changed(tmp_path: Path) -> None:
    root = tmp_path / "record.bin"
    values = entries(2000)
    save(root, values)
    loaded = sharded.load(root, KEY)
    before = parts_of(root)
    changed = dict(values)
    changed["plugins/p7.json"] = ("f" * 64, 7)  # one value changed
    changed["plugins/new.json"] = ("e" * 64, 1)  # one entry added
    del changed["plugins/p9.json"]  # one removed
    saved = save(root, changed, loaded)
    after = parts_of(root)
    touched = {
        sharded.split([(k, 0)]).index({k: 0})
        for k in ("plugins/p7.json", "plugins/new.json", "plugins/p9.json")
    }
    assert len(set(before) - set(after)) == len(touched)  # each old part replaced is removed
    assert len(set(after) - set(before)) == len(touched)
    unchanged = set(before) & set(after)
    assert all(before[name] == after[name] for name in unchanged)  # not even rewritten
    assert sharded.load(root, KEY) == saved
    assert saved.entries() == changed


def test_a_save_with_nothing_changed_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "record.bin"
    save(root, entries(300))
    loaded = sharded.load(root, KEY)
    root_before, parts_before = root.stat().st_mtime_ns, parts_of(root)
    save(root, entries(300), loaded)
    assert (root.stat().st_mtime_ns, parts_of(root)) == (root_before, parts_before)
    # A changed header alone rewrites the root and no part.
    sharded.save(root, KEY, ("header", 2), sharded.split(entries(300).items()), loaded)
    assert parts_of(root) == parts_before
    assert sharded.load(root, KEY).header == ("header", 2)  # type: ignore[union-attr]


def test_a_forgotten_record_is_gone_and_its_parts_go_with_the_next_save(tmp_path: Path) -> None:
    root = tmp_path / "record.bin"
    loaded = save(root, entries(300))
    sharded.forget(root)
    assert sharded.load(root, KEY) is None
    assert parts_of(root)  # left until the next save
    # The next save, even of the same entries, writes a root again.
    save(root, entries(300), loaded)
    assert sharded.load(root, KEY) == loaded
    saved = save(root, entries(5))
    assert set(parts_of(root)) == set(saved.names)  # the old parts are gone
    assert sharded.load(root, KEY) == saved


def test_parts_left_by_a_stopped_save_are_removed_by_the_next(tmp_path: Path) -> None:
    root = tmp_path / "record.bin"
    save(root, entries(300))
    folder = sharded.parts_folder(root)
    (folder / "0123.bin").write_bytes(b"a part no root names")
    (folder / ".0123.bin.tmp").write_bytes(b"a temp file")
    save(root, entries(301))
    assert not (folder / "0123.bin").exists() and not (folder / ".0123.bin.tmp").exists()


def test_a_part_that_vanished_after_loading_is_written_again(tmp_path: Path) -> None:
    root = tmp_path / "record.bin"
    loaded = save(root, entries(300))
    (sharded.parts_folder(root) / loaded.names[0]).unlink()
    sharded.forget(root)
    save(root, entries(300), loaded)
    assert sharded.load(root, KEY) == loaded


def test_changes_copy_the_parts_they_fall_in_and_share_the_others(tmp_path: Path) -> None:
    loaded = save(tmp_path / "record.bin", entries(2000))
    before = loaded.entries()
    changes = {"plugins/p1.json": None, "plugins/p2.json": ("f" * 64, 9), "plugins/x.json": None}
    parts = sharded.changed(loaded, changes)
    expected = {**before, "plugins/p2.json": ("f" * 64, 9)}
    del expected["plugins/p1.json"]
    assert sharded.Sharded(None, parts, loaded.names).entries() == expected
    assert loaded.entries() == before  # the loaded record is left as it was
    touched = {i for i, part in enumerate(parts) if part is not loaded.parts[i]}
    assert touched == {sharded.split([(k, 0)]).index({k: 0}) for k in changes}


@pytest.mark.parametrize(
    "damage",
    [
        "missing part",
        "damaged part",
        "part of another type",
        "foreign key",
        "damaged root",
        "too few parts",
    ],
)
def test_a_damaged_or_foreign_record_counts_as_none(tmp_path: Path, damage: str) -> None:
    root = tmp_path / "record.bin"
    loaded = save(root, entries(300))
    part = sharded.parts_folder(root) / loaded.names[3]
    if damage == "missing part":
        part.unlink()
    elif damage == "damaged part":
        part.write_bytes(b"\x00not marshal")
    elif damage == "part of another type":
        part.write_bytes(marshal.dumps([1, 2]))
    elif damage == "foreign key":
        root.write_bytes(marshal.dumps(("another record", None, loaded.names)))
    elif damage == "damaged root":
        root.write_bytes(b"\x00not marshal")
    else:
        root.write_bytes(marshal.dumps((KEY, None, loaded.names[:-1])))
    assert sharded.load(root, KEY) is None


def test_a_one_plugin_build_rewrites_a_few_parts_and_leaves_a_clean_builds_records(
    index: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(index, out, environ=EPOCH)
    cache_root = out / STATE_DIR / CACHE_FILE
    outputs_root = out / STATE_DIR / "outputs.bin"
    cache_before, outputs_before = parts_of(cache_root), parts_of(outputs_root)
    add_version(index, plugin_names(index)[0], "9.0.0")
    build(index, out, environ=EPOCH)
    cache_after, outputs_after = parts_of(cache_root), parts_of(outputs_root)
    # One plugin read again: its part of the cache's records and its part of their
    # packed version rows. Its document, artifact and the listings: a few parts of
    # the record of files.
    assert len(set(cache_after) - set(cache_before)) == 2
    assert 1 <= len(set(outputs_after) - set(outputs_before)) <= 8
    clean = tmp_path / "clean"
    build(index, clean, environ=EPOCH)
    assert read_outputs(out) == read_outputs(clean)
    incremental, fresh = load_cache(out, index), load_cache(clean, index)
    assert incremental.plugins == fresh.plugins
    assert _version_rows(incremental) == _version_rows(fresh)
    assert (incremental.outputs, incremental.sizes, incremental.files) == (
        fresh.outputs,
        fresh.sizes,
        fresh.files,
    )


def _version_rows(cache: BuildCache) -> dict[str, tuple[tuple[Any, ...], ...]]:
    """Return each cached plugin's version rows, as read from the cache's parts."""
    rows = {}
    for name, record in cache.plugins.items():
        facts = record.facts()
        assert facts is not None
        rows[name] = facts.version_rows
    return rows


def _hashed(out: Path) -> dict[str, tuple[str, int]]:
    return {
        path: (hashlib.sha256((out / path).read_bytes()).hexdigest(), size)
        for path, size in files_on_disk(out).items()
    }


def test_the_record_of_files_made_from_changes_is_the_folder_as_it_is(
    index: Path, tmp_path: Path
) -> None:
    """Each incremental build records what changed; the record is what the folder holds."""
    out, clean = tmp_path / "out", tmp_path / "clean"
    build(index, out, environ=EPOCH)
    names = plugin_names(index)
    gone = leaf_plugin(index)

    def new_version() -> None:
        add_version(index, names[0], "9.0.0")

    def stray_file() -> None:
        (out / "index" / "stray.json").write_text("{}", encoding="utf-8")

    def removed_plugin_and_its_document() -> None:
        # The document was deleted from the output already: recorded, but on no disk.
        (out / layout.index_path(gone)).unlink()
        shutil.rmtree(index / "plugins" / gone)

    def deleted_listing() -> None:
        (out / "names.json").unlink()

    for change in (new_version, stray_file, removed_plugin_and_its_document, deleted_listing):
        change()
        time.sleep(0.06)  # past the no-op record's tick: the build sees the change
        build(index, out, environ=EPOCH)
        assert read_outputs(out) == _hashed(out), change.__name__
    build(index, clean, environ=EPOCH)
    assert read_outputs(out) == read_outputs(clean)


def test_the_record_of_files_keeps_artifacts_in_parts_of_their_own(
    index: Path, tmp_path: Path
) -> None:
    """Artifacts in the first half of the parts, other files in the second, before and
    after changes: the cache takes the artifacts' sizes apart a part at a time."""
    out = tmp_path / "out"
    build(index, out, environ=EPOCH)
    shutil.rmtree(index / "plugins" / leaf_plugin(index))  # its artifacts go, by change
    add_version(index, plugin_names(index)[0], "9.0.0")
    time.sleep(0.06)
    build(index, out, environ=EPOCH)
    record = load_outputs(out)
    assert record is not None
    for i, part in enumerate(record.parts):
        assert all(path.startswith("artifacts/") == (i in ARTIFACT_PARTS) for path in part), i
    assert any(record.parts[i] for i in ARTIFACT_PARTS)
    assert any(record.parts[i] for i in OTHER_PARTS)
    everything = record.entries()
    cache = load_cache(out, index)
    assert cache.outputs == {path: sha256 for path, (sha256, _) in everything.items()}
    assert cache.sizes == {
        p: size for p, (_, size) in everything.items() if p.startswith("artifacts/")
    }
    assert cache.files == {
        p: size for p, (_, size) in everything.items() if not p.startswith("artifacts/")
    }
    # Read as looked up, the artifacts' columns say the same, part by part.
    lazy = load_cache(out, index, artifacts_later=True)
    assert lazy.outputs is not None and lazy.outputs_record is not None
    assert not any(lazy.outputs_record.read(i) for i in ARTIFACT_PARTS)
    artifact = next(p for p in everything if p.startswith("artifacts/"))
    assert lazy.outputs.get(artifact) == everything[artifact][0]
    assert lazy.sizes[artifact] == everything[artifact][1] and artifact in lazy.sizes
    read = [i for i in ARTIFACT_PARTS if lazy.outputs_record.read(i) is not None]
    assert len(read) == 1  # the one part that holds it
    assert lazy.sizes.get("artifacts/0/none.tgz") is None and "artifacts/0/x" not in lazy.sizes
    assert lazy.outputs.get(layout.NAMES) == cache.outputs[layout.NAMES]
    assert layout.NAMES not in lazy.sizes
    with pytest.raises(KeyError):
        lazy.sizes["artifacts/0/none.tgz"]
    assert (len(lazy.outputs), len(lazy.sizes)) == (len(cache.outputs), len(cache.sizes))
    assert dict(lazy.outputs) == cache.outputs and dict(lazy.sizes) == cache.sizes
    assert lazy.files == cache.files


def test_what_the_output_holds_with_its_artifacts_read_as_looked_up() -> None:
    """`OutputFiles` answers as the merged dict would, and reads no part to list
    the files looked at."""
    files = {"index/a/b/x.json": 3, "names.json": 5}
    artifacts = {"artifacts/ab/x.tgz": 7}
    held = OutputFiles(dict(files), artifacts)
    merged = {**files, **artifacts}
    assert dict(held) == merged and len(held) == len(merged)
    for path in [*merged, "artifacts/cd/y.tgz", "other.json"]:
        assert held.get(path) == merged.get(path)
        assert (path in held) == (path in merged)
    assert held["artifacts/ab/x.tgz"] == 7
    with pytest.raises(KeyError):
        held["other.json"]
    assert held.files == files


@pytest.mark.parametrize("row", ["short", "not a tuple"])
def test_a_cache_record_of_another_shape_is_read_again(
    index: Path, tmp_path: Path, row: str
) -> None:
    out = tmp_path / "out"
    build(index, out, environ=EPOCH)
    expected = _hashed(out)
    name = plugin_names(index)[0]
    cache = load_cache(out, index)
    record = cache.plugins[name]
    record.row = record.row[:-1] if row == "short" else 7  # type: ignore[assignment]
    save_cache(out, cache)
    result = build(index, out, environ=EPOCH)
    assert list(result.reparsed) == [name]
    assert _hashed(out) == expected
    assert load_cache(out, index).plugins[name].usable()
