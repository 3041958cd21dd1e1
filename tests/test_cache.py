"""The build cache: what a rebuild takes from it, and what it must not.

Most of the cache's bytes are the plugins' packed version rows, which a rebuild needs
for the few plugins it checks again. These tests check that a rebuild reads only
those, that the rows kept read back as a clean build's, and that rows gone from the
cache stop a build with the file named instead of a wrong output. The last ones
check what the cache's records are trusted for: a plugin only touched is not parsed
again, and a cache made from another index is not trusted for this one.
"""

from __future__ import annotations

import marshal
import shutil
import time
import zlib
from pathlib import Path

import pytest

from builder.common import sharded
from builder.common.build_folder import STATE_DIR
from builder.common.errors import BuildError
from builder.index.build import build
from builder.index.cache import CACHE_FILE, BuildCache, load_cache, save_cache
from builder.index.facts import PluginFacts
from builder.index.finds import MARGIN_NS
from tests.mini_index import add_release, write_index
from tests.test_build import add_version, leaf_plugin, plugin_names

EPOCH = {"SOURCE_DATE_EPOCH": "1736899200"}
_HALF = sharded.PARTS // 2  # the parts of the plugins' records; their rows follow


def _rows_names(out: Path) -> tuple[str, ...]:
    """Return the files of the cache's parts of packed rows, as its root names them
    (a part with no rows, whose file is shared with every other empty part: "")."""
    _, _, names = marshal.loads((out / STATE_DIR / CACHE_FILE).read_bytes())
    empty = set(names[:_HALF])  # a small index leaves some records' parts empty
    return tuple("" if name in empty else name for name in names[_HALF:])


def _facts(cache: BuildCache) -> dict[str, PluginFacts]:
    found = {}
    for name, record in cache.plugins.items():
        facts = record.facts()
        assert facts is not None
        found[name] = facts
    return found


def _version_rows(cache: BuildCache) -> dict[str, object]:
    return {name: facts.version_rows for name, facts in _facts(cache).items()}


def test_a_one_plugin_rebuild_reads_the_rows_of_the_plugins_it_checks_alone(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin changed and those depending on it, whose requirements are checked
    again, with the plugins they require: no other plugin's rows are read."""
    out = tmp_path / "out"
    build(index, out, environ=EPOCH)
    cached = _facts(load_cache(out, index))
    name = next(n for n in plugin_names(index) if any(n in f.depends_on for f in cached.values()))
    checked = {name} | {n for n, f in cached.items() if name in f.depends_on}
    checked |= {d for n in checked for d in cached[n].depends_on}
    assert len(checked) < len(cached)
    add_version(index, name, "9.0.0")
    rows_parts = _rows_names(out)
    read: list[str] = []
    read_part = sharded._read_part

    def recording(path: Path) -> dict[str, object] | None:
        read.append(path.name)
        return read_part(path)

    monkeypatch.setattr(sharded, "_read_part", recording)
    result = build(index, out, environ=EPOCH)
    assert list(result.reparsed) == [name]
    assert {part for part in read if part in rows_parts and part} == {
        rows_parts[zlib.crc32(n.encode()) % _HALF] for n in checked
    }


def test_rows_kept_by_rebuilds_are_those_a_clean_build_makes(index: Path, tmp_path: Path) -> None:
    """Rows changed, added and removed: the parts of rows are byte for byte a clean
    build's (they are named by their bytes), and read back as its rows."""
    out, clean = tmp_path / "out", tmp_path / "clean"
    build(index, out, environ=EPOCH)
    names = plugin_names(index)
    add_version(index, names[0], "9.0.0")
    build(index, out, environ=EPOCH)
    shutil.rmtree(index / "plugins" / leaf_plugin(index))
    build(index, out, environ=EPOCH)
    build(index, clean, environ=EPOCH)
    assert _rows_names(out) == _rows_names(clean)
    assert _version_rows(load_cache(out, index)) == _version_rows(load_cache(clean, index))


def test_a_cache_saved_apart_from_its_load_keeps_every_plugins_rows(
    index: Path, tmp_path: Path
) -> None:
    """A cache saved with no record of what it was loaded from writes every part:
    the rows of the plugins it took from the cache are copied, not lost."""
    out = tmp_path / "out"
    build(index, out, environ=EPOCH)
    cache = load_cache(out, index)
    expected = _version_rows(cache)
    cache.loaded = None
    save_cache(out, cache)
    assert _version_rows(load_cache(out, index)) == expected


def test_rows_gone_from_the_cache_stop_the_build_with_the_file_named(
    index: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(index, out, environ=EPOCH)
    published = sorted(p.relative_to(out) for p in out.rglob("*") if STATE_DIR not in p.parts)
    name = plugin_names(index)[0]
    root = out / STATE_DIR / CACHE_FILE
    for part in sharded.parts_folder(root).iterdir():
        rows = marshal.loads(part.read_bytes())
        if name in rows and type(rows[name]) is bytes:
            del rows[name]
            part.write_bytes(marshal.dumps(rows))
    add_version(index, name, "9.0.0")
    with pytest.raises(BuildError, match=f"no version rows for {name}") as raised:
        build(index, out, environ=EPOCH)
    assert str(root) in str(raised.value)
    assert sorted(p.relative_to(out) for p in out.rglob("*") if STATE_DIR not in p.parts) == (
        published
    )


def test_a_plugin_only_touched_is_taken_from_its_record(index: Path, tmp_path: Path) -> None:
    """Its folder is read again (its files' stats changed), but its input key is the
    one recorded: it is not parsed again."""
    out = tmp_path / "out"
    build(index, out, environ=EPOCH)
    name = plugin_names(index)[0]
    plugin_file = index / "plugins" / name / "plugin.yaml"
    plugin_file.write_bytes(plugin_file.read_bytes())
    result = build(index, out, environ=EPOCH)
    assert result.reparsed == ()


def test_a_cache_made_from_another_index_is_not_trusted(tmp_path: Path) -> None:
    """Two indexes made before either is built, one plugin different: the second,
    built into the first's output, finds nothing changed since the first's scan, and
    only the cache's record of which index it describes keeps it from being served
    the first's plugin."""
    first, second = write_index(tmp_path / "first"), write_index(tmp_path / "second")
    for root in (first, second):
        add_release(root, "alpha", "1.0.0", "files/alpha-1.0.0.tar.gz")
        add_release(root, "beta", "1.0.0", "files/beta-1.0.0.tar.gz")
    add_release(second, "beta", "1.1.0", "files/beta-1.1.0.tar.gz", day=2)
    # Both older than the first build's scan, beyond the margin it keeps for clocks.
    time.sleep(MARGIN_NS / 1e9 + 0.2)
    out, clean = tmp_path / "out", tmp_path / "clean"
    build(first, out, environ=EPOCH)
    build(second, out, environ=EPOCH)
    build(second, clean, environ=EPOCH)
    assert _published(out) == _published(clean)


def test_plugins_whose_rows_share_a_part_keep_each_others(tmp_path: Path) -> None:
    """A part of rows holds every plugin whose folder hashes to it: a rebuild that
    changes one keeps the others' as they were, as a clean build has them."""
    index = write_index(tmp_path / "index")
    first = "alpha"
    same_part = next(
        name
        for name in (f"beta-{i}" for i in range(10_000))
        if zlib.crc32(name.encode()) % _HALF == zlib.crc32(first.encode()) % _HALF
    )
    for name in (first, same_part, "gamma"):
        add_release(index, name, "1.0.0", f"files/{name}-1.0.0.tar.gz")
    out, clean = tmp_path / "out", tmp_path / "clean"
    build(index, out, environ=EPOCH)
    add_release(index, first, "1.1.0", f"files/{first}-1.1.0.tar.gz", day=2)
    build(index, out, environ=EPOCH)
    build(index, clean, environ=EPOCH)
    assert _rows_names(out) == _rows_names(clean)
    assert _version_rows(load_cache(out, index)) == _version_rows(load_cache(clean, index))


def _published(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and STATE_DIR not in p.relative_to(out).parts
    }
