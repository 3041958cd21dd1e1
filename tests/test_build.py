"""`plugindex build`: the documented layout, deterministic, atomic and incremental."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from builder.cli.main import cli
from builder.common import layout
from builder.common.build_folder import STATE_DIR
from builder.common.errors import BuildError
from builder.index import output, render
from builder.index.analyse import analyse
from builder.index.build import build
from tests.conftest import PLUGINDEX, sign_as_owner


def snapshot(out: Path) -> dict[str, bytes]:
    """Return every published file of a build by path (builder state excluded)."""
    return {
        p.relative_to(out).as_posix(): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and STATE_DIR not in p.relative_to(out).parts
    }


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def plugin_names(index: Path) -> list[str]:
    return sorted(p.name for p in (index / "plugins").iterdir())


def add_version(index: Path, name: str, version: str) -> Path:
    """Add a signed version to a plugin by copying its newest version file."""
    versions = index / "plugins" / name / "versions"
    source = sorted(versions.glob("*.yaml"))[-1]
    kept: list[str] = []
    skipping = False
    for line in source.read_text(encoding="utf-8").splitlines():
        if not line.startswith((" ", "#")):  # a top-level key starts or ends a section
            skipping = line.startswith(("yanked:", "signature:"))
        if not skipping:
            kept.append(f"version: {version}" if line.startswith("version:") else line)
    target = versions / f"{version}.yaml"
    target.write_text("\n".join(kept) + "\n", encoding="utf-8")
    sign_as_owner(target)
    return target


def leaf_plugin(index: Path) -> str:
    """Return a plugin no other plugin depends on (safe to remove)."""
    facts = analyse(index).facts
    needed = {name for f in facts.values() for name in f.depends_on}
    return sorted(set(facts) - needed)[-1]


def test_prefix_paths_follow_cargo() -> None:
    assert layout.index_path("a") == "index/1/a.json"
    assert layout.index_path("ab") == "index/2/ab.json"
    assert layout.index_path("abc") == "index/3/a/abc.json"
    assert layout.index_path("auth-jwt") == "index/au/th/auth-jwt.json"


@pytest.mark.parametrize("name", ["a", "ab", "abc", "auth-jwt"])
def test_paths_follow_the_templates_config_json_publishes(name: str) -> None:
    # The functions spell the templates out (for speed); clients use the templates.
    prefix = layout.prefix_of(name)
    assert layout.index_path(name) == layout.INDEX_TEMPLATE.format(prefix=prefix, name=name)
    sha256, filename = "ab" * 32, f"{name}-1.0.0.tar.gz"
    expected = layout.ARTIFACT_TEMPLATE.format(sha256=sha256, filename=filename)
    assert layout.artifact_path(sha256, filename) == expected


def test_bundled_index_validates(index: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", str(index)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_build_writes_the_documented_layout(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = plugin_names(index)
    assert len(names) >= 6

    config = read_json(out / "config.json")
    assert config["format"] == 1
    assert config["index"] == "index/{prefix}/{name}.json"
    assert config["artifacts"] == "artifacts/{sha256}/{filename}"

    listed = read_json(out / "names.json")
    assert listed["count"] == len(names)
    assert sorted(listed["plugins"]) == names

    categories = read_json(out / "categories.json")["categories"]
    slugs_used = sum(len(read_json(out / layout.index_path(n))["categories"]) for n in names)
    assert sum(c["count"] for c in categories) == slugs_used

    for name in names:
        document = read_json(out / layout.index_path(name))
        assert document["name"] == name
        assert document["versions"], name
        for version in document["versions"]:
            artifact = version["artifact"]
            assert artifact["download"] == f"artifacts/{artifact['sha256']}/{artifact['filename']}"
            data = (out / artifact["download"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == artifact["sha256"]
            assert len(data) == artifact["size"]
        source_versions = {p.stem for p in (index / "plugins" / name / "versions").iterdir()}
        assert {v["version"] for v in document["versions"]} == source_versions
        if listed["plugins"][name] is not None:
            assert listed["plugins"][name] in source_versions

    for order in ("name", "recent"):
        page = read_json(out / layout.page_path(order, 1))
        assert page["total"] == len(names)
        assert page["sort"] == order
        assert len(page["plugins"]) == min(len(names), layout.PAGE_SIZE)
    by_name = [p["name"] for p in read_json(out / layout.page_path("name", 1))["plugins"]]
    assert by_name == names
    recent = [p["released"] for p in read_json(out / layout.page_path("recent", 1))["plugins"]]
    assert recent == sorted(recent, reverse=True)

    status = read_json(out / "status.json")
    assert status["plugins"] == len(names)
    assert status["versions"] == sum(
        len(read_json(out / layout.index_path(n))["versions"]) for n in names
    )


def test_yanked_and_prerelease_are_not_latest(index: Path, tmp_path: Path) -> None:
    """names.json shows the newest non-yanked release, never a prerelease or yank."""
    out = tmp_path / "out"
    build(index, out)
    latest = read_json(out / "names.json")["plugins"]
    seen_yank = seen_pre = False
    for name in plugin_names(index):
        versions = read_json(out / layout.index_path(name))["versions"]
        yanked = {v["version"] for v in versions if v["yanked"]}
        pre = {v["version"] for v in versions if "-" in v["version"]}
        seen_yank |= bool(yanked)
        seen_pre |= bool(pre)
        assert latest[name] not in yanked | pre
    assert seen_yank and seen_pre, "the bundled index shows a yank and a prerelease"


def test_two_builds_give_identical_bytes(index: Path, tmp_path: Path) -> None:
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    build(index, tmp_path / "one", environ=env)
    build(index, tmp_path / "two", environ=env)
    one, two = snapshot(tmp_path / "one"), snapshot(tmp_path / "two")
    assert one == two
    assert read_json(tmp_path / "one" / "status.json")["built_at"] == "2023-11-14T22:13:20Z"


def test_incremental_build_equals_a_clean_build(index: Path, tmp_path: Path) -> None:
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    build(index, tmp_path / "incremental", environ=env)
    add_version(index, plugin_names(index)[0], "9.0.0")
    shutil.rmtree(index / "plugins" / leaf_plugin(index))
    build(index, tmp_path / "incremental", environ=env)
    build(index, tmp_path / "clean", environ=env)
    assert snapshot(tmp_path / "incremental") == snapshot(tmp_path / "clean")


def test_no_op_rebuild_writes_and_parses_nothing(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = build(index, out)
    assert set(first.reparsed) == set(plugin_names(index))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.json")}
    again = build(index, out)
    assert again.reparsed == ()
    assert again.report.written == [] and again.report.removed == []
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.json")} == before


def test_one_changed_plugin_rewrites_only_what_it_touches(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(index, out)
    name = plugin_names(index)[0]
    add_version(index, name, "9.0.0")
    result = build(index, out)
    assert result.reparsed == (name,)
    written = set(result.report.written)
    assert layout.index_path(name) in written
    other_documents = {layout.index_path(n) for n in plugin_names(index) if n != name}
    assert not written & other_documents
    allowed = {
        layout.index_path(name),
        layout.NAMES,
        layout.STATUS,
        layout.CATEGORIES,
        layout.page_path("name", 1),
        layout.page_path("recent", 1),
    }
    assert written <= allowed
    assert read_json(out / "names.json")["plugins"][name] == "9.0.0"


def test_a_deleted_output_file_is_restored(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(index, out)
    name = plugin_names(index)[0]
    document = out / layout.index_path(name)
    expected = document.read_bytes()
    document.unlink()
    build(index, out)
    assert document.read_bytes() == expected


def test_a_removed_plugin_loses_its_document(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(index, out)
    victim = leaf_plugin(index)
    shutil.rmtree(index / "plugins" / victim)
    result = build(index, out)
    assert layout.index_path(victim) in result.report.removed
    assert not (out / layout.index_path(victim)).exists()
    assert victim not in read_json(out / "names.json")["plugins"]


def test_a_failure_mid_build_leaves_the_old_output(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    build(index, out)
    before = snapshot(out)
    add_version(index, plugin_names(index)[0], "9.0.0")
    staged: list[str] = []

    def failing_stage(target: str, path: str, planned: output.Planned) -> None:
        # The document and the listings were written ahead: status.json is staged last.
        staged.append(path)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(output, "_stage", failing_stage)
    with pytest.raises(BuildError, match="No space left"):
        build(index, out)
    assert staged == [layout.STATUS]
    assert snapshot(out) == before
    assert not (out / STATE_DIR / "staging").exists()
    assert not (out / STATE_DIR / "ahead").exists()  # what was written ahead went too
    monkeypatch.undo()
    build(index, out)
    assert read_json(out / "names.json")["plugins"][plugin_names(index)[0]] == "9.0.0"


def test_an_invalid_new_version_is_held_back_and_reported(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(index, out)
    before = snapshot(out)
    name = plugin_names(index)[0]
    add_version(index, name, "9.0.0").write_text("version: [\n")
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "9.0.0.yaml:2: invalid YAML" in result.stderr
    assert f"[held back: {name}, version left out]" in result.stderr
    assert snapshot(out)[layout.index_path(name)] == before[layout.index_path(name)]
    held = read_json(out / "status.json")["held_back"]
    assert held == [
        {
            "plugin": name,
            "outcome": "version left out",
            "file": f"plugins/{name}/versions/9.0.0.yaml",
            "line": 2,
            "rule": None,
            "reason": held[0]["reason"],
        }
    ]
    assert held[0]["reason"].startswith("invalid YAML")


def test_strict_invalid_input_leaves_the_old_output(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(index, out)
    before = snapshot(out)
    add_version(index, plugin_names(index)[0], "9.0.0").write_text("version: [\n")
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out), "--strict"])
    assert result.exit_code == 1
    assert "9.0.0.yaml:" in result.output
    assert snapshot(out) == before


def test_a_broken_registry_yaml_still_stops_the_build(index: Path, tmp_path: Path) -> None:
    """Not one plugin's problem: the maintainers' own file stops everything."""
    out = tmp_path / "out"
    build(index, out)
    before = snapshot(out)
    registry = index / "registry.yaml"
    registry.write_text(registry.read_text(encoding="utf-8") + "surprise: 1\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out)])
    assert result.exit_code == 1
    assert "registry.yaml:" in result.stderr and "surprise" in result.stderr
    assert snapshot(out) == before


def test_refuses_to_build_into_a_foreign_folder(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(BuildError, match="not empty"):
        build(index, out)
    result = CliRunner().invoke(cli, ["build", str(index), "--out", str(out)])
    assert result.exit_code == 3
    assert "Traceback" not in result.output
    assert sorted(p.name for p in out.iterdir()) == ["holiday.jpg"]


def test_status_names_the_source_commit(index: Path, tmp_path: Path) -> None:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(index), *args], check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    git("add", ".")
    git(
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.org",
        "commit",
        "-qm",
        "base",
        "--date=2024-01-01T00:00:00Z",
    )
    out = tmp_path / "out"
    build(index, out, environ={"GIT_COMMITTER_DATE": "x"})
    status = read_json(out / "status.json")
    assert status["source_commit"] == git("rev-parse", "HEAD")
    assert status["built_at"] is not None


def test_cli_runs_as_a_real_process(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [*PLUGINDEX, "build", str(index), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "built" in done.stdout
    assert (out / "config.json").is_file()
    (index / "plugins" / plugin_names(index)[0] / "plugin.yaml").write_text("name: [\n")
    done = subprocess.run(
        [*PLUGINDEX, "validate", str(index)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "plugin.yaml:" in done.stderr and "invalid YAML" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_a_build_stopped_while_committing_leaves_no_lying_cache(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files moved in but cache not saved: the next build must not trust the old cache."""
    out = tmp_path / "out"
    build(index, out)
    version_file = sorted((index / "plugins" / plugin_names(index)[0] / "versions").iterdir())[0]
    original = version_file.read_text()
    version_file.write_text(original.replace("released: 20", "released: 19", 1))
    sign_as_owner(version_file)
    monkeypatch.setattr("builder.index.cache.save_cache", failing_save)
    with pytest.raises(BuildError, match="cannot write the build"):
        build(index, out)
    monkeypatch.undo()
    version_file.write_text(original)
    build(index, out)
    build(index, tmp_path / "clean")
    assert snapshot(out) == snapshot(tmp_path / "clean")


def failing_save(out: Path, cache: object) -> None:
    raise OSError(28, "No space left on device", str(out))


def test_an_edit_that_keeps_size_and_mtime_is_still_seen(index: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    build(index, out)
    name = plugin_names(index)[0]
    version_file = sorted((index / "plugins" / name / "versions").iterdir())[0]
    before = version_file.stat()
    text = version_file.read_text()
    # A comment is not signed, so this edit keeps the file valid; same size, same inode.
    assert text.startswith("# ")
    version_file.write_text(text.replace("# ", "#~", 1))
    os.utime(version_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    result = build(index, out)
    assert result.reparsed == (name,)


@pytest.mark.parametrize("value", ["99999999999999", "-5", "yesterday"])
def test_a_bad_source_date_epoch_is_refused(index: Path, tmp_path: Path, value: str) -> None:
    with pytest.raises(BuildError, match="SOURCE_DATE_EPOCH: expected whole seconds"):
        build(index, tmp_path / "out", environ={"SOURCE_DATE_EPOCH": value})
    assert not (tmp_path / "out").exists()


def local_artifacts(out: Path, name: str) -> list[str]:
    """Return the artifacts of a plugin's document that the build holds."""
    document = read_json(out / layout.index_path(name))
    paths = [v["artifact"]["download"] for v in document["versions"]]
    return [p for p in paths if (out / p).is_file()]


def test_a_rebuild_takes_artifacts_from_its_record_without_walking_them(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Artifacts are content-addressed: a rebuild lists none of their folders."""
    out = tmp_path / "out"
    build(index, out)
    listed: list[Path] = []
    real_scandir = os.scandir

    def scandir(path: Any) -> Any:
        listed.append(Path(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    again = build(index, out)
    assert again.report.written == [] and again.report.removed == []
    assert listed  # the rest of the output and the index are still listed
    assert not [p for p in listed if p.is_relative_to(out / "artifacts")]


def test_a_removed_plugin_loses_its_artifacts_though_they_are_not_walked(
    index: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(index, out)
    needed = {name for f in analyse(index).facts.values() for name in f.depends_on}
    victim = next(n for n in plugin_names(index) if n not in needed and local_artifacts(out, n))
    gone = local_artifacts(out, victim)
    shutil.rmtree(index / "plugins" / victim)
    result = build(index, out)
    assert set(gone) <= set(result.report.removed)
    assert not [p for p in gone if (out / p).exists()]
    assert not [p for p in gone if (out / p).parent.exists()]  # their folders too


def test_staged_files_sit_side_by_side_in_one_folder(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging makes no copy of the output's folders (one per artifact): one folder."""
    out = tmp_path / "out"
    folders: set[str] = set()
    real_stage = output._stage

    def stage(target: str, path: str, planned: output.Planned) -> None:
        folders.add(os.path.dirname(target))  # noqa: PTH120 - staging paths are str
        real_stage(target, path, planned)

    monkeypatch.setattr(output, "_stage", stage)
    result = build(index, out)
    assert any(p.startswith("artifacts/") for p in result.report.written)
    assert folders == {str(out / STATE_DIR / "staging")}
    assert not (out / STATE_DIR / "staging").exists()


def test_a_touched_file_is_read_again_but_not_parsed(index: Path, tmp_path: Path) -> None:
    """Same bytes, new stat: the folder is hashed again and its cache stands."""
    out = tmp_path / "out"
    build(index, out)
    name = plugin_names(index)[0]
    version_file = sorted((index / "plugins" / name / "versions").iterdir())[0]
    version_file.write_bytes(version_file.read_bytes())  # a new ctime, the same bytes
    result = build(index, out)
    assert result.reparsed == ()
    assert result.report.written == []


def test_a_cold_build_moves_documents_and_artifacts_written_ahead(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks write documents and local artifacts ahead; only listings are staged."""
    staged: list[str] = []
    real_stage = output._stage

    def stage(target: str, path: str, planned: output.Planned) -> None:
        staged.append(path)
        real_stage(target, path, planned)

    monkeypatch.setattr(output, "_stage", stage)
    out = tmp_path / "out"
    written = build(index, out).report.written
    assert any(p.startswith("artifacts/") for p in written)
    assert any(p.startswith("index/") for p in written)
    assert not [p for p in staged if p.startswith(("artifacts/", "index/"))]
    assert not (out / STATE_DIR / "ahead").exists()
    # The same bytes as a build that writes nothing ahead (and stages everything).
    monkeypatch.setattr("builder.index.check.prestage", lambda *_: False)
    build(index, tmp_path / "plain")
    assert snapshot(out) == snapshot(tmp_path / "plain")
    assert [p for p in staged if p.startswith(("artifacts/", "index/"))]


def test_an_artifact_written_ahead_for_a_version_held_back_is_not_published(
    index: Path, tmp_path: Path
) -> None:
    """A version that passes its own checks and fails across plugins is left out whole."""
    folder = index / "plugins" / "template-faker"
    data = b"a new release of template-faker\n" * 20
    (folder / "artifacts" / "template-faker-0.6.0.tar.gz").write_bytes(data)
    sha256 = hashlib.sha256(data).hexdigest()
    text = (folder / "versions" / "0.5.0.yaml").read_text(encoding="utf-8")
    text = text.split("signature:\n  algorithm")[0]
    text = text.replace("version: 0.5.0", "version: 0.6.0").replace("0.5.0.tar.gz", "0.6.0.tar.gz")
    text = text.replace("93b95f9f2b60f738cb44be9a2da0d0419f9cb0f2e25867265abb00ebb849a4e5", sha256)
    text = text.replace("size: 325", f"size: {len(data)}").replace('"^1.0"', '"^7.0"')
    new = folder / "versions" / "0.6.0.yaml"
    new.write_text(text, encoding="utf-8")
    sign_as_owner(new)
    out = tmp_path / "out"
    result = build(index, out)
    assert [(h.plugin, h.outcome) for h in result.held_back] == [
        ("template-faker", "version left out")
    ]
    assert not (out / "artifacts" / sha256).exists()
    assert [
        v["version"] for v in read_json(out / layout.index_path("template-faker"))["versions"]
    ] == [
        "0.4.0",
        "0.5.0",
    ]


def test_listings_are_rendered_only_when_what_they_list_changed(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    build(index, out)
    rendered: list[int] = []

    def listing_files(*args: Any) -> Any:
        rendered.append(1)
        return render.listing_files(*args)

    monkeypatch.setattr("builder.index.work.listing_files", listing_files)
    assert build(index, out).report.written == []
    assert rendered == []
    (out / layout.NAMES).unlink()  # damaged: rendered again
    assert build(index, out).report.written == [layout.NAMES]
    assert rendered == [1]
    name = plugin_names(index)[0]
    add_version(index, name, "9.0.0")
    build(index, out)
    assert rendered == [1, 1]
    assert read_json(out / layout.NAMES)["plugins"][name] == "9.0.0"


def test_listings_are_written_ahead_as_they_are_made(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold build holds no listing's bytes until its commit: each is moved into place."""
    planned: dict[str, Any] = {}
    write_output = output.write_output

    def watched(out: Path, plan: Any, *args: Any, **kwargs: Any) -> Any:
        ahead = kwargs["prestaged"].files
        for path, file in plan.items():
            planned[path] = (file.sha256, file.content, ahead.get(path))
        return write_output(out, plan, *args, **kwargs)

    monkeypatch.setattr("builder.index.work.write_output", watched)
    out = tmp_path / "out"
    build(index, out)
    listings = [layout.NAMES, layout.CATEGORIES, layout.page_path("name", 1)]
    listings.append(layout.page_path("recent", 1))
    for path in listings:
        sha256, content, written = planned[path]
        assert (content, written) == (None, sha256), path
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == sha256


def test_a_listing_not_written_ahead_is_written_by_the_commit(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(index, tmp_path / "ahead")
    monkeypatch.setattr("builder.index.work.prestage", lambda *args: False)
    build(index, tmp_path / "not")
    for path in (layout.NAMES, layout.CATEGORIES, layout.page_path("name", 1)):
        assert (tmp_path / "not" / path).read_bytes() == (tmp_path / "ahead" / path).read_bytes()
