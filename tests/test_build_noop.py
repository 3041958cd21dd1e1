"""A build with nothing to do is seen as such from its finds alone (`builder.index.noop`).

Each test makes one kind of change and checks that the next build does the work (it
loads the cache) and leaves the same files as a clean build; the record's own
conditions (held-back plugins, whole-second clocks, a build stopped half-way) are
checked by whether the record is there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from builder.common import layout
from builder.common.build_folder import STATE_DIR
from builder.index import cache as cache_module
from builder.index import noop
from builder.index import plan as plan_module
from builder.index import work as work_module
from builder.index.build import BuildResult, build
from builder.index.cache import CACHE_FILE
from builder.site.stage import SiteStage
from tests.conftest import ROOT
from tests.test_build import add_version, failing_save, leaf_plugin, plugin_names, snapshot

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate_index import generate

EPOCH = {"SOURCE_DATE_EPOCH": "1736899200"}
TICK = 0.06  # past noop.TICK_NS: an edit after this pause is after the build looked


@pytest.fixture
def cache_loads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record every output folder whose cache a build loads (a no-op loads none)."""
    loads: list[Path] = []
    real = cache_module.load_cache

    def load(out: Path, index: Path, **options: Any) -> Any:
        loads.append(out)
        return real(out, index, **options)

    monkeypatch.setattr(work_module, "load_cache", load)
    return loads


def settled(index: Path, out: Path, **options: Any) -> BuildResult:
    """Build, with the last edit before it and the next one after it by a clear tick."""
    time.sleep(TICK)
    result = build(index, out, environ=EPOCH, **options)
    time.sleep(TICK)
    return result


def record_of(out: Path) -> Path:
    return out / STATE_DIR / noop.RECORD_FILE


def test_a_build_with_nothing_to_do_reads_no_cache_and_writes_nothing(
    index: Path, tmp_path: Path, cache_loads: list[Path]
) -> None:
    out = tmp_path / "out"
    first = settled(index, out)
    before = snapshot(out)
    cache_loads.clear()
    again = build(index, out, environ=EPOCH)
    assert cache_loads == []
    assert again.report.written == [] and again.report.removed == []
    assert again.report.unchanged == len(first.report.written)
    assert (again.plugins, again.versions, again.reparsed) == (first.plugins, first.versions, ())
    assert snapshot(out) == before


# What only a build with work to do needs: the source format's models and parser,
# the analysis, the renderers. A no-op's start-up was half of it importing them.
_WORK_MODULES = ("pydantic", "yaml", "builder.format.load", "builder.index.analyse")
_LOADED_BY_A_BUILD = """
import json, sys
from pathlib import Path
from builder.index.build import build
build(Path(sys.argv[1]), Path(sys.argv[2]), environ=json.loads(sys.argv[3]))
print(" ".join(sorted(m for m in sys.modules if m.startswith(tuple(sys.argv[4:])))))
"""


def _loaded_by_a_build(index: Path, out: Path) -> set[str]:
    """Build in a fresh interpreter; return which of `_WORK_MODULES` it loaded."""
    command = [sys.executable, "-c", _LOADED_BY_A_BUILD, str(index), str(out)]
    command += [json.dumps(EPOCH), *_WORK_MODULES]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return {m for m in done.stdout.split() if m in _WORK_MODULES}


def test_a_build_with_nothing_to_do_loads_no_models_and_no_analysis(
    index: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    settled(index, out)
    assert _loaded_by_a_build(index, out) == set()
    time.sleep(TICK)
    _new_version(index, out)
    time.sleep(TICK)
    assert _loaded_by_a_build(index, out) == set(_WORK_MODULES)  # the check can fail


def _edit_in_place(index: Path, out: Path) -> None:
    """Change a comment of a version file, keeping its size, mtime and inode."""
    version_file = sorted((index / "plugins" / plugin_names(index)[0] / "versions").iterdir())[0]
    before = version_file.stat()
    text = version_file.read_text(encoding="utf-8")
    version_file.write_text(text.replace("# ", "#~", 1), encoding="utf-8")
    os.utime(version_file, ns=(before.st_atime_ns, before.st_mtime_ns))


def _new_version(index: Path, out: Path) -> None:
    add_version(index, plugin_names(index)[0], "9.9.9")


def _plugin_removed(index: Path, out: Path) -> None:
    shutil.rmtree(index / "plugins" / leaf_plugin(index))


def _registry_edited(index: Path, out: Path) -> None:
    registry = index / "registry.yaml"
    registry.write_text(registry.read_text(encoding="utf-8") + "# note\n", encoding="utf-8")


def _document_edited(index: Path, out: Path) -> None:
    (out / layout.index_path(plugin_names(index)[0])).write_text("{}\n", encoding="utf-8")


def _document_removed(index: Path, out: Path) -> None:
    (out / layout.index_path(plugin_names(index)[-1])).unlink()


def _stray_file(index: Path, out: Path) -> None:
    (out / "index" / "stray.json").write_text("{}\n", encoding="utf-8")


def _cache_removed(index: Path, out: Path) -> None:
    (out / STATE_DIR / CACHE_FILE).unlink()


CHANGES: dict[str, Callable[[Path, Path], None]] = {
    "a version file edited in place": _edit_in_place,
    "a new version": _new_version,
    "a plugin folder removed": _plugin_removed,
    "registry.yaml edited": _registry_edited,
    "a document of the output edited": _document_edited,
    "a document of the output removed": _document_removed,
    "a stray file in the output": _stray_file,
    "the cache removed": _cache_removed,
}


@pytest.mark.parametrize("change", CHANGES.values(), ids=CHANGES.keys())
def test_every_kind_of_change_makes_the_next_build_work(
    index: Path, tmp_path: Path, cache_loads: list[Path], change: Callable[[Path, Path], None]
) -> None:
    out = tmp_path / "out"
    settled(index, out)
    change(index, out)
    cache_loads.clear()
    build(index, out, environ=EPOCH)
    assert cache_loads == [out]
    build(index, tmp_path / "clean", environ=EPOCH)
    assert snapshot(out) == snapshot(tmp_path / "clean")


def test_another_build_time_makes_the_next_build_work(
    index: Path, tmp_path: Path, cache_loads: list[Path]
) -> None:
    out = tmp_path / "out"
    settled(index, out)
    cache_loads.clear()
    build(index, out, environ={"SOURCE_DATE_EPOCH": "1736899201"})
    assert cache_loads == [out]


def test_a_change_made_while_a_build_runs_is_seen_by_the_next(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_loads: list[Path]
) -> None:
    """A version added after the build read the index (but before it ended) is built next."""
    out = tmp_path / "out"
    settled(index, out)
    _edit_in_place(index, out)  # so that the next build runs in full
    real_plan = plan_module.plan_build
    name = plugin_names(index)[-1]

    def plan_and_add(*args: Any) -> Any:
        add_version(index, name, "9.9.9")  # the index is read already
        time.sleep(TICK)  # and the build's end is well after it
        return real_plan(*args)

    monkeypatch.setattr(work_module, "plan_build", plan_and_add)
    during = build(index, out, environ=EPOCH)
    monkeypatch.undo()
    assert record_of(out).exists()
    after = build(index, out, environ=EPOCH)
    assert after.versions == during.versions + 1
    assert name in after.reparsed


def test_a_build_that_held_a_plugin_back_leaves_no_record(index: Path, tmp_path: Path) -> None:
    """A held-back plugin may build next time with nothing changed (a download that works)."""
    out = tmp_path / "out"
    settled(index, out)
    assert record_of(out).exists()
    add_version(index, plugin_names(index)[0], "9.0.0").write_text("version: [\n")
    result = build(index, out, environ=EPOCH)
    assert result.held_back
    assert not record_of(out).exists()
    assert build(index, out, environ=EPOCH).held_back == result.held_back


def test_whole_second_timestamps_leave_no_record(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system whose clock has whole seconds, a tick's margin is not enough."""
    monkeypatch.setattr(noop, "_fine_grained", lambda *stats: False)
    out = tmp_path / "out"
    settled(index, out)
    assert not record_of(out).exists()


def test_the_record_is_gone_once_a_build_starts_changing_the_output(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    settled(index, out)
    _new_version(index, out)
    monkeypatch.setattr("builder.index.cache.save_cache", failing_save)
    with pytest.raises(Exception, match="cannot write the build"):
        build(index, out, environ=EPOCH)
    assert not record_of(out).exists()


def test_a_stage_that_cannot_tell_its_inputs_runs_every_time(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_loads: list[Path]
) -> None:
    out = tmp_path / "out"
    settled(index, out, stages=[SiteStage(worker=False)])
    cache_loads.clear()
    build(index, out, environ=EPOCH, stages=[SiteStage(worker=False)])
    assert cache_loads == []  # the site's templates are as they were
    monkeypatch.setattr(SiteStage, "fingerprint", lambda self: "other templates")
    build(index, out, environ=EPOCH, stages=[SiteStage(worker=False)])
    assert cache_loads == [out]
    monkeypatch.setattr(SiteStage, "fingerprint", lambda self: None)
    build(index, out, environ=EPOCH, stages=[SiteStage(worker=False)])
    assert not record_of(out).exists()
    build(index, out, environ=EPOCH, stages=[SiteStage(worker=False)])
    assert cache_loads == [out, out, out]


def test_a_build_against_a_live_registry_always_runs(
    index: Path, tmp_path: Path, cache_loads: list[Path]
) -> None:
    out = tmp_path / "out"
    settled(index, out)
    cache_loads.clear()
    build(index, out, environ=EPOCH, live={}, live_read=lambda path: None)
    assert cache_loads == [out]


def test_a_new_commit_with_the_same_files_makes_the_next_build_work(
    index: Path, tmp_path: Path, cache_loads: list[Path]
) -> None:
    """The status names the source commit: a commit that changes no file changes it."""

    def git(*args: str) -> str:
        command = ["git", "-C", str(index), "-c", "user.name=t", "-c", "user.email=t@example.org"]
        return subprocess.run(
            [*command, *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "base", "--date=2024-01-01T00:00:00Z")
    out = tmp_path / "out"
    time.sleep(TICK)
    build(index, out)
    time.sleep(TICK)
    git("commit", "-qm", "nothing", "--allow-empty")
    cache_loads.clear()
    build(index, out)
    assert cache_loads == [out]
    assert json.loads((out / layout.STATUS).read_text())["source_commit"] == git(
        "rev-parse", "HEAD"
    )


def test_a_build_left_incomplete_says_so_again_when_nothing_changed(
    tmp_path: Path, cache_loads: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    """Remote artifacts left out (fetching disabled) are named by every build, no-op or not."""
    index, out = tmp_path / "index", tmp_path / "out"
    generate(index, 4, 2, 0)  # remote artifacts
    settled(index, out, fetch=False)
    assert "not mirrored (fetching disabled)" in caplog.text
    caplog.clear()
    cache_loads.clear()
    build(index, out, environ=EPOCH, fetch=False)
    assert cache_loads == []
    assert "not mirrored (fetching disabled)" in caplog.text
    build(index, out, environ=EPOCH, fetch=False, strict=True)  # other options: another build
    assert cache_loads == [out]


def test_a_record_that_cannot_be_written_leaves_a_good_build_and_no_record(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_loads: list[Path]
) -> None:
    """The record only spares the next build its work: failing to write it fails nothing."""
    out = tmp_path / "out"
    settled(index, out)
    _new_version(index, out)

    real_write = Path.write_bytes

    def full_disk(self: Path, data: bytes) -> int:
        if self.name.startswith("noop."):  # the record alone: the build's files fit
            raise OSError(28, "No space left on device", str(self))
        return real_write(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    result = build(index, out, environ=EPOCH)
    monkeypatch.undo()
    assert result.report.written
    assert not record_of(out).exists()
    build(index, tmp_path / "clean", environ=EPOCH)
    assert snapshot(out) == snapshot(tmp_path / "clean")


# --- what the record's digest covers (`noop.inputs_key`) --------------------------------


def _key(index: Path, environ: dict[str, str]) -> str | None:
    return noop.inputs_key(index, ("commit", "time"), environ, (), (True, False))


def test_a_signing_variable_is_an_input_and_another_variable_is_not(index: Path) -> None:
    """A changed PLUGINDEX_ variable (a signing key) makes the next build run; the
    variables given are those read, not the process's own."""
    first = _key(index, {**EPOCH, "PLUGINDEX_TUF_KEY": "one"})
    assert first == _key(index, {**EPOCH, "PLUGINDEX_TUF_KEY": "one", "HOME": "/elsewhere"})
    assert first != _key(index, {**EPOCH, "PLUGINDEX_TUF_KEY": "two"})
    assert first != _key(index, EPOCH)


def test_the_builders_code_is_an_input_and_its_compiled_files_are_not(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A builder upgraded in place builds again; Python writing its caches does not."""
    package = tmp_path / "package"
    (package / "index").mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    module = package / "index" / "work.py"
    module.write_text("A = 1\n", encoding="utf-8")
    fake = type(sys)("builder")
    fake.__file__ = str(package / "__init__.py")
    monkeypatch.setattr(noop, "builder", fake)
    first = _key(index, EPOCH)
    (package / "index" / "work.pyc").write_bytes(b"compiled")
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "work.cpython.pyc").write_bytes(b"compiled")
    assert _key(index, EPOCH) == first
    module.write_text("A = 2  # upgraded\n", encoding="utf-8")
    assert _key(index, EPOCH) != first


def test_a_change_inside_the_index_git_folder_leaves_a_no_op(
    index: Path, tmp_path: Path, cache_loads: list[Path]
) -> None:
    """Git's own files (a fetch, a gc) are not inputs: the commit is, through `source`."""
    (index / ".git").mkdir(exist_ok=True)
    out = tmp_path / "out"
    settled(index, out)
    (index / ".git" / "FETCH_HEAD").write_text("fetched\n", encoding="utf-8")
    cache_loads.clear()
    build(index, out, environ=EPOCH)
    assert cache_loads == []


def test_output_finds_that_give_nothing_make_the_build_run(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_loads: list[Path]
) -> None:
    """When the output's finds cannot tell (they failed), nothing is taken as unchanged."""
    out = tmp_path / "out"
    settled(index, out)
    monkeypatch.setattr(noop, "changed_paths", lambda finding: None)
    cache_loads.clear()
    build(index, out, environ=EPOCH)
    assert cache_loads == [out]


def test_only_timestamps_with_sub_second_parts_count_as_fine_grained() -> None:
    whole, fine = (1, 2, 3, 5_000_000_000), (1, 2, 3, 5_000_000_001)
    assert not noop._fine_grained(whole, whole, None)
    assert not noop._fine_grained(None, None)
    assert noop._fine_grained(whole, None, fine)
    assert noop._fine_grained((1, 2, 3, 999_999_999))
