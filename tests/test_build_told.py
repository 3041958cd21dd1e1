"""A build told what changed (`build --changed`) looks at nothing else in the index.

The caller (a hook with the merge's `git diff --name-only`) says which paths changed
since the last build; the build walks only their plugin folders and starts no find
of the index. What it was not told it does not build, and it never hides that from a
build that looks: it counts as having looked no later than the last build that did.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, NoReturn

import pytest
from click.testing import CliRunner

from builder.cli.changed_paths import paths_listed
from builder.cli.main import cli
from builder.index import changes as changes_module
from builder.index import noop
from builder.index.build import build
from builder.index.finds import changed_folders, told_changes, told_listing
from tests.test_build import add_version, leaf_plugin, plugin_names, snapshot
from tests.test_build_noop import EPOCH, cache_loads, settled

__all__ = ["cache_loads"]  # a fixture, used by name


@pytest.fixture
def no_index_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any build that starts a find of the index."""

    def refuse(*_: object) -> NoReturn:
        raise AssertionError("a find of the index was started")

    monkeypatch.setattr(changes_module, "find_changed_folders", refuse)
    monkeypatch.setattr(noop, "find_changed_folders", refuse)


def _clean(index: Path, tmp_path: Path) -> dict[str, bytes]:
    clean = tmp_path / "clean"
    shutil.rmtree(clean, ignore_errors=True)
    build(index, clean, environ=EPOCH)
    return snapshot(clean)


def _told(index: Path, out: Path, changed: list[str], **options: Any) -> Any:
    time.sleep(0.06)
    return build(index, out, environ=EPOCH, changed=changed, **options)


def test_a_build_told_what_changed_builds_it_and_looks_at_nothing_else(
    index: Path, tmp_path: Path, no_index_finds: None
) -> None:
    out = tmp_path / "out"
    first = settled(index, out)
    name = plugin_names(index)[0]
    added = add_version(index, name, "9.9.9")
    told = _told(index, out, [str(added)])
    assert told.reparsed == (name,)
    assert told.versions == first.versions + 1
    assert snapshot(out) == _clean(index, tmp_path)


def test_a_change_left_out_is_not_built_until_a_build_that_looks(
    index: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = settled(index, out)
    told_of, left_out = plugin_names(index)[:2]
    told_path = add_version(index, told_of, "9.9.9")
    add_version(index, left_out, "9.9.9")
    told = _told(index, out, [str(told_path)])
    assert told.reparsed == (told_of,)
    assert told.versions == first.versions + 1
    again = _told(index, out, [])  # told again, of nothing: still not seen
    assert again.versions == told.versions
    looked = build(index, out, environ=EPOCH)
    assert left_out in looked.reparsed
    assert looked.versions == first.versions + 2
    assert snapshot(out) == _clean(index, tmp_path)


def test_a_build_told_nothing_changed_is_a_no_op(
    index: Path, tmp_path: Path, cache_loads: list[Path], no_index_finds: None
) -> None:
    out = tmp_path / "out"
    settled(index, out)
    before = snapshot(out)
    cache_loads.clear()
    outside = [str(index / "registry.yaml"), str(tmp_path / "elsewhere.yaml")]
    result = _told(index, out, outside)
    assert cache_loads == []
    assert result.report.written == [] and result.reparsed == ()
    assert snapshot(out) == before


def test_a_plugin_folder_removed_is_seen_untold(
    index: Path, tmp_path: Path, no_index_finds: None
) -> None:
    """Folders come and go in the listing of plugins/, which every build makes."""
    out = tmp_path / "out"
    first = settled(index, out)
    shutil.rmtree(index / "plugins" / leaf_plugin(index))
    result = _told(index, out, [])
    assert result.plugins == first.plugins - 1
    assert snapshot(out) == _clean(index, tmp_path)


def test_the_paths_told_are_taken_from_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "repo" / "registry-index"
    (index / "plugins" / "a").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo")
    listed = told_listing(
        index,
        [
            "registry-index/plugins/a/versions/1.0.0.yaml",  # as git prints it
            str(index / "plugins" / "b" / "plugin.yaml"),  # absolute, and gone
            "registry-index/plugins/c",  # a folder
            "registry-index/registry.yaml",  # outside plugins/
            "registry-index/plugins",  # plugins/ itself
            "registry-index/plugins/../../x.yaml",  # out of it again
            "other/plugins/d/plugin.yaml",
            "",
        ],
    )
    assert listed == (b"plugins/a/versions/1.0.0.yaml\0plugins/b/plugin.yaml\0plugins/c\0")
    assert changed_folders(told_changes(listed, 0)) == {"a", "b", "c"}


def test_an_index_named_through_a_link_takes_paths_from_its_real_folder(
    tmp_path: Path,
) -> None:
    real = tmp_path / "real"
    (real / "plugins" / "a").mkdir(parents=True)
    (tmp_path / "link").symlink_to(real)
    through_link = told_listing(tmp_path / "link", [str(real / "plugins" / "a" / "p.yaml")])
    through_real = told_listing(real, [str(tmp_path / "link" / "plugins" / "a" / "p.yaml")])
    assert through_link == b"plugins/a/p.yaml\0"
    assert through_real == b"plugins/a/p.yaml\0"


def test_a_told_finding_counts_as_looked_when_the_last_look_started() -> None:
    """What it records as its scan is the last look that saw everything, not now."""
    finding = told_changes(b"plugins/a/x\0", 1_234)
    assert finding.started == 1_234
    assert finding.prints_anything()
    assert not told_changes(b"", 1_234).prints_anything()


def _git(repository: Path, *arguments: str) -> bytes:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *arguments]
    return subprocess.run(command, cwd=repository, check=True, capture_output=True).stdout


@pytest.mark.parametrize("separator", ["-z", "lines"])
def test_build_changed_reads_what_git_diff_prints(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, separator: str
) -> None:
    """End to end: a commit, its diff from the last one built, and `build --changed -`.

    With every stage, a rebuild's search segments and signed metadata are not a clean
    build's (they follow the last build): the told rebuild is compared with one that looks.
    """
    repository = index.parent
    _git(repository, "init", "-q")
    _git(repository, "add", "-A")
    _git(repository, "commit", "-q", "-m", "first")
    monkeypatch.chdir(repository)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH["SOURCE_DATE_EPOCH"])
    runner = CliRunner()
    told_out, looked_out = tmp_path / "told", tmp_path / "looked"
    for out in (told_out, looked_out):
        assert (
            runner.invoke(cli, ["build", str(index), "--out", str(out), "--no-fetch"]).exit_code
            == 0
        )
    add_version(index, plugin_names(index)[-1], "9.9.9")
    _git(repository, "add", "-A")
    _git(repository, "commit", "-q", "-m", "a version")
    z = ["-z"] if separator == "-z" else []
    printed = _git(repository, "diff", "--name-only", *z, "HEAD~1", "HEAD")
    time.sleep(0.06)
    arguments = ["build", str(index), "--no-fetch", "--out"]
    told = runner.invoke(cli, [*arguments, str(told_out), "--changed", "-"], input=printed)
    assert told.exit_code == 0, told.output
    assert "(1 plugins parsed)" in told.output
    looked = runner.invoke(cli, [*arguments, str(looked_out)])
    assert looked.exit_code == 0, looked.output
    assert snapshot(told_out) == snapshot(looked_out)


def _listed_by_git(repository: Path, *options: str) -> set[str]:
    """Return the plugin folders `build --changed` takes from the last commit's diff."""
    printed = _git(repository, "diff", "--name-only", *options, "HEAD~1", "HEAD")
    paths = paths_listed(io.BytesIO(printed))
    folders = changed_folders(told_changes(told_listing(repository / "index", paths), 0))
    assert folders is not None
    return folders


def _repository_with(tmp_path: Path, files: list[str]) -> Path:
    repository = tmp_path / "repo"
    for name in files:
        (repository / "index" / name).parent.mkdir(parents=True, exist_ok=True)
        (repository / "index" / name).write_text(f"{name}\n" * 20, encoding="utf-8")
    _git(repository, "init", "-q")
    _git(repository, "add", "-A")
    _git(repository, "commit", "-q", "-m", "first")
    return repository


@pytest.mark.parametrize("z", [["-z"], []], ids=["-z", "lines"])
def test_a_file_moved_between_plugin_folders_names_both_without_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, z: list[str]
) -> None:
    repository = _repository_with(tmp_path, ["plugins/a/notes.md", "plugins/b/plugin.yaml"])
    monkeypatch.chdir(repository)
    _git(repository, "mv", "index/plugins/a/notes.md", "index/plugins/b/notes.md")
    _git(repository, "commit", "-q", "-m", "moved")
    assert _listed_by_git(repository, "--no-renames", *z) == {"a", "b"}
    assert _listed_by_git(repository, *z) == {"b"}  # why the command says --no-renames


def test_a_name_git_quotes_is_unquoted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repository = _repository_with(tmp_path, ["plugins/a/plugin.yaml", "plugins/b/plugin.yaml"])
    monkeypatch.chdir(repository)
    for name in ("plugins/a/café.png", 'plugins/b/say "hi"\there.md'):
        (repository / "index" / name).write_text("new\n", encoding="utf-8")
    _git(repository, "add", "-A")
    _git(repository, "commit", "-q", "-m", "unusual names")
    printed = _git(repository, "diff", "--name-only", "HEAD~1", "HEAD")
    assert printed.count(b'"') >= 4  # git quoted both: the test tests something
    assert _listed_by_git(repository) == {"a", "b"}


def test_paths_named_from_another_folder_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    index = tmp_path / "repo" / "registry-index"
    (index / "plugins" / "a").mkdir(parents=True)
    monkeypatch.chdir(index)  # not the repository's top folder, which git names from
    assert told_listing(index, ["registry-index/plugins/a/plugin.yaml"]) == b""
    assert "registry-index/plugins/a/plugin.yaml: a changed path outside" in caplog.text
    caplog.clear()
    monkeypatch.chdir(tmp_path / "repo")
    assert told_listing(index, ["README.md", "docs/gone/old.md", "registry-index/x"]) == b""
    assert "docs/gone/old.md" in caplog.text  # a folder gone: said, though harmless
    assert "README.md" not in caplog.text


def test_build_changed_names_a_listing_it_cannot_open(index: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-list"
    arguments = ["build", str(index), "--out", str(tmp_path / "out"), "--changed", str(missing)]
    result = CliRunner().invoke(cli, arguments)
    assert result.exit_code == 2
    assert str(missing) in result.output
    assert not (tmp_path / "out").exists()
