"""One plugin never stops the registry: what cannot be built is held back, the rest ships.

The end-to-end case is a real git repository whose `main` receives, one merge at a
time, every kind of trouble a single plugin (or two pull requests together) can
bring; each build runs on a fresh output folder against the live registry, as CI
does, and is published to a real SeaweedFS bucket. Every other plugin's new version
must be live, and each broken one reported with its file and line.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from builder.authoring.sign import sign_file
from builder.cli.main import cli
from builder.common import layout
from builder.index.build import build
from tests.conftest import demo_key
from tests.fault_server import serve_recorded
from tests.mini_index import add_release, write_index
from tests.s3server import S3Server

OWNER = demo_key("jan-kowalski")  # the owner of every mini-index plugin
PREFIX = "registry"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def merge(repo: Path, message: str) -> None:
    """Commit the working tree to main, as a merged pull request."""
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def depend(index: Path, name: str, version: str, on: str, requirement: str) -> None:
    """Make a release depend on another plugin, and sign it again."""
    path = index / "plugins" / name / "versions" / f"{version}.yaml"
    text = path.read_text(encoding="utf-8").split("\nsignature:", 1)[0] + "\n"
    text = text.replace(
        "compatibility:", f'dependencies:\n  {on}:\n    version: "{requirement}"\ncompatibility:', 1
    )
    path.write_text(text, encoding="utf-8")
    sign_file(path, OWNER)


def yank(index: Path, name: str, version: str) -> Path:
    """Yank a release, signed by its owner."""
    path = index / "plugins" / name / "versions" / f"{version}.yaml"
    text = path.read_text(encoding="utf-8").rstrip("\n")
    path.write_text(text + "\nyanked:\n  reason: Broken.\n  serial: 1\n", encoding="utf-8")
    sign_file(path, OWNER, yank=True)
    return path


def line_of(path: Path, prefix: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, text in enumerate(lines, 1) if text.startswith(prefix))


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def www(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder of remote artifacts served on 127.0.0.1, and its URL."""
    folder = tmp_path / "www"
    folder.mkdir()
    with serve_recorded(folder) as (url, _):
        yield folder, url


# --- end to end: git, fresh runners, SeaweedFS ------------------------------------------


def test_every_kind_of_broken_plugin_is_held_back_and_everything_else_goes_live(
    tmp_path: Path,
    www: tuple[Path, str],
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served, url = www
    repo = tmp_path / "repo"
    index = write_index(repo / "registry-index")
    git(repo, "init", "-q", "-b", "main")
    target = f"s3://{s3_bucket}/{PREFIX}"
    s3 = s3_server.client()

    def live(path: str) -> Any:
        body = s3.get_object(Bucket=s3_bucket, Key=f"{PREFIX}/{path}")["Body"].read()
        return json.loads(body)

    def build_and_publish(runner: str) -> Result:
        """Build on a fresh runner against what is live, then publish, as the workflow does."""
        out = tmp_path / runner
        built = run("build", str(index), "--out", str(out), "--live", target, "--format", "github")
        assert built.exit_code == 0, built.output
        published = run("publish", str(out), target)
        assert published.exit_code == 0, published.output
        return built

    # The registry as it was: eight plugins, published.
    for name in ("tool-good", "tool-parse", "tool-late", "app"):
        add_release(index, name, "1.0.0", f"artifacts/{name}-1.0.0.tar.gz")
    data = add_release(index, "tool-remote", "1.0.0", f"{url}tool-remote-1.0.0.tar.gz")
    (served / "tool-remote-1.0.0.tar.gz").write_bytes(data)
    add_release(index, "lib", "1.0.0", "artifacts/lib-1.0.0.tar.gz")
    add_release(index, "lib", "1.1.0", "artifacts/lib-1.1.0.tar.gz", day=2)
    depend(index, "app", "1.0.0", "lib", "^1.0")
    merge(repo, "the registry so far")
    first = build_and_publish("runner-1")
    assert "held back" not in first.output
    assert live("names.json")["count"] == 6

    # Merges since, each passing the gate on its own.
    add_release(index, "tool-good", "1.1.0", "artifacts/tool-good-1.1.0.tar.gz", day=3)
    merge(repo, "tool-good 1.1.0")
    good_yank = yank(index, "tool-good", "1.0.0")
    merge(repo, "yank tool-good 1.0.0")
    add_release(index, "app", "1.1.0", "artifacts/app-1.1.0.tar.gz", day=3)
    merge(repo, "app 1.1.0")
    add_release(index, "fresh-start", "0.1.0", "artifacts/fresh-start-0.1.0.tar.gz")
    merge(repo, "a new plugin")
    # A dead artifact URL after merge: it answered the gate, then the author deleted it.
    data = add_release(index, "tool-remote", "1.1.0", f"{url}tool-remote-1.1.0.tar.gz", day=3)
    (served / "tool-remote-1.1.0.tar.gz").write_bytes(data)
    merge(repo, "tool-remote 1.1.0")
    (served / "tool-remote-1.1.0.tar.gz").unlink()
    # A parse error in a published plugin's plugin.yaml.
    manifest = index / "plugins/tool-parse/plugin.yaml"
    manifest.write_text(manifest.read_text(encoding="utf-8") + "keywords: [\n", encoding="utf-8")
    merge(repo, "tool-parse: a bad edit")
    # A release dated far in the future.
    add_release(index, "tool-late", "1.1.0", "artifacts/tool-late-1.1.0.tar.gz")
    late = index / "plugins/tool-late/versions/1.1.0.yaml"
    late.write_text(
        late.read_text(encoding="utf-8").replace("released: 2024-01-01", "released: 2999-12-31")
    )
    sign_file(late, OWNER)
    merge(repo, "tool-late 1.1.0")
    # A stray file, a link and a hidden folder directly under plugins/.
    (index / "plugins/NOTES.txt").write_text("notes\n", encoding="utf-8")
    (index / "plugins/mirror-of-good").symlink_to("tool-good")
    (index / "plugins/.sneaky").mkdir()
    (index / "plugins/.sneaky/plugin.yaml").write_text("name: sneaky\n", encoding="utf-8")
    merge(repo, "strays")
    # Two pull requests against the same base, each fine alone: together, lib's two
    # yanks leave app 1.0.0 with nothing it accepts (PX122), and two look-alike names
    # arrive at once (PX131).
    yank(index, "lib", "1.0.0")
    yank(index, "lib", "1.1.0")
    add_release(index, "data-loader", "1.0.0", "artifacts/data-loader-1.0.0.tar.gz")
    add_release(index, "data-loadr", "1.0.0", "artifacts/data-loadr-1.0.0.tar.gz")
    merge(repo, "two merges that break rules together")

    built = build_and_publish("runner-2")

    # Every other plugin's new state is live.
    names = live("names.json")["plugins"]
    assert names["tool-good"] == "1.1.0"
    good = {v["version"]: v for v in live(layout.index_path("tool-good"))["versions"]}
    assert good["1.0.0"]["yanked"]["reason"] == "Broken."
    assert names["app"] == "1.1.0"
    assert names["fresh-start"] == "0.1.0"
    # The broken ones: left out, or kept as last published.
    assert [v["version"] for v in live(layout.index_path("tool-remote"))["versions"]] == ["1.0.0"]
    assert [v["version"] for v in live(layout.index_path("tool-late"))["versions"]] == ["1.0.0"]
    parse = live(layout.index_path("tool-parse"))
    assert parse["keywords"] == [] and [v["version"] for v in parse["versions"]] == ["1.0.0"]
    assert not any(v["yanked"] for v in live(layout.index_path("lib"))["versions"])
    assert "data-loader" not in names and "data-loadr" not in names
    assert not {"NOTES.txt", "mirror-of-good", ".sneaky", "sneaky"} & set(names)
    # A published remote artifact stays downloadable from the registry.
    remote = live(layout.index_path("tool-remote"))["versions"][0]["artifact"]
    assert s3.head_object(Bucket=s3_bucket, Key=f"{PREFIX}/{remote['download']}")

    # Each is reported: in status.json, with file and line ...
    held = {
        (h["plugin"], h["outcome"], h["file"], h["rule"]) for h in live("status.json")["held_back"]
    }
    assert held == {
        ("tool-remote", "version left out", "plugins/tool-remote/versions/1.1.0.yaml", None),
        ("tool-parse", "previous state kept", "plugins/tool-parse/plugin.yaml", None),
        ("tool-late", "version left out", "plugins/tool-late/versions/1.1.0.yaml", None),
        ("NOTES.txt", "left out", "plugins/NOTES.txt", None),
        ("mirror-of-good", "left out", "plugins/mirror-of-good", None),
        (".sneaky", "left out", "plugins/.sneaky", None),
        ("lib", "previous state kept", "plugins/lib/versions/1.1.0.yaml", "PX122"),
        ("data-loader", "left out", "plugins/data-loader/plugin.yaml", "PX131"),
        ("data-loadr", "left out", "plugins/data-loadr/plugin.yaml", "PX131"),
    }
    by_plugin = {h["plugin"]: h for h in live("status.json")["held_back"]}
    assert by_plugin["tool-remote"]["line"] == line_of(
        index / "plugins/tool-remote/versions/1.1.0.yaml", "  url:"
    )
    assert "download failed (expected HTTP 200, got 404)" in by_plugin["tool-remote"]["reason"]
    assert by_plugin["tool-late"]["line"] == line_of(late, "released:")
    assert "release date in the future" in by_plugin["tool-late"]["reason"]
    assert "leaves" in by_plugin["lib"]["reason"] and "app" in by_plugin["lib"]["reason"]
    assert "approved_similar_names: [data-loadr]" in by_plugin["data-loadr"]["reason"]
    # ... and as annotations for the maintainers, in the build's output.
    warning = (
        f"::warning file={index}/plugins/tool-remote/versions/1.1.0.yaml,"
        f"line={by_plugin['tool-remote']['line']}::"
    )
    assert warning in built.stdout
    assert "held back 9 things that could not be built" in built.stderr
    assert good_yank.is_file()

    # Once fixed on main, the next build publishes what was held back.
    lib_yank = index / "plugins/lib/versions/1.1.0.yaml"
    lib_yank.write_text(lib_yank.read_text(encoding="utf-8").split("\nyanked:", 1)[0] + "\n")
    sign_file(lib_yank, OWNER)
    merge(repo, "keep lib 1.1.0")
    build_and_publish("runner-3")
    lib = {v["version"]: v for v in live(layout.index_path("lib"))["versions"]}
    assert lib["1.0.0"]["yanked"] is not None and lib["1.1.0"]["yanked"] is None


# --- one case at a time, in a build folder ---------------------------------------------


def test_a_plugin_whose_published_version_breaks_keeps_its_last_state(tmp_path: Path) -> None:
    index = write_index(tmp_path / "index")
    add_release(index, "tool-a", "1.0.0", "artifacts/tool-a-1.0.0.tar.gz")
    add_release(index, "tool-b", "1.0.0", "artifacts/tool-b-1.0.0.tar.gz")
    out = tmp_path / "out"
    build(index, out)
    document = (out / layout.index_path("tool-a")).read_bytes()
    # A published version edited after signing: PX010 on a version clients may hold.
    version = index / "plugins/tool-a/versions/1.0.0.yaml"
    version.write_text(
        version.read_text(encoding="utf-8").replace("risk_level: low", "risk_level: high")
    )
    add_release(index, "tool-a", "1.1.0", "artifacts/tool-a-1.1.0.tar.gz", day=2)
    add_release(index, "tool-b", "1.1.0", "artifacts/tool-b-1.1.0.tar.gz", day=2)
    result = build(index, out)
    assert (out / layout.index_path("tool-a")).read_bytes() == document
    names = json.loads((out / "names.json").read_text(encoding="utf-8"))["plugins"]
    assert names == {"tool-a": "1.0.0", "tool-b": "1.1.0"}
    assert [(h.plugin, h.outcome, h.rel, h.problem.rule) for h in result.held_back] == [
        ("tool-a", "previous state kept", "plugins/tool-a/versions/1.0.0.yaml", "PX010")
    ]
    # The next build still knows the last published state, and still holds it back.
    again = build(index, out)
    assert (out / layout.index_path("tool-a")).read_bytes() == document
    assert len(again.held_back) == 1


def test_a_new_version_nothing_satisfies_is_left_out(tmp_path: Path) -> None:
    index = write_index(tmp_path / "index")
    add_release(index, "lib", "1.0.0", "artifacts/lib-1.0.0.tar.gz")
    add_release(index, "app", "1.0.0", "artifacts/app-1.0.0.tar.gz")
    out = tmp_path / "out"
    build(index, out)
    add_release(index, "app", "2.0.0", "artifacts/app-2.0.0.tar.gz", day=2)
    depend(index, "app", "2.0.0", "lib", "^2")
    result = build(index, out)
    names = json.loads((out / "names.json").read_text(encoding="utf-8"))["plugins"]
    assert names["app"] == "1.0.0"
    [held] = result.held_back
    assert (held.plugin, held.outcome) == ("app", "version left out")
    assert "no non-yanked version of lib satisfies '^2'" in held.problem.message


def test_a_new_version_that_closes_a_cycle_through_unchanged_plugins_is_left_out(
    tmp_path: Path,
) -> None:
    """A rebuild looks for cycles only where the changed plugins lead (the rest had
    none): the cycle a new version closes through plugins built before is found."""
    index = write_index(tmp_path / "index")
    for name in ("core", "mid", "top", "zeta"):
        add_release(index, name, "1.0.0", f"artifacts/{name}-1.0.0.tar.gz")
    depend(index, "core", "1.0.0", "mid", ">=1.0.0")  # core -> mid -> top
    depend(index, "mid", "1.0.0", "top", ">=1.0.0")
    depend(index, "zeta", "1.0.0", "core", ">=1.0.0")  # a dependent outside the cycle
    out = tmp_path / "out"
    assert not build(index, out, workers=0).held_back
    add_release(index, "top", "1.1.0", "artifacts/top-1.1.0.tar.gz", day=2)
    depend(index, "top", "1.1.0", "core", ">=1.0.0")  # closes core -> mid -> top -> core
    result = build(index, out, workers=0)
    names = json.loads((out / "names.json").read_text(encoding="utf-8"))["plugins"]
    assert names["top"] == "1.0.0"
    [held] = result.held_back
    # Reported where the cycle meets the change (mid needs top), and held back in top.
    assert (held.plugin, held.outcome, held.rel) == (
        "top",
        "previous state kept",
        "plugins/mid/versions/1.0.0.yaml",
    )
    assert "dependency cycle: mid -> top -> core -> mid" in held.problem.message


def test_a_new_look_alike_of_a_published_name_is_left_out(tmp_path: Path) -> None:
    index = write_index(tmp_path / "index")
    add_release(index, "data-loader", "1.0.0", "artifacts/data-loader-1.0.0.tar.gz")
    out = tmp_path / "out"
    build(index, out)
    add_release(index, "data-laoder", "1.0.0", "artifacts/data-laoder-1.0.0.tar.gz")
    result = build(index, out)
    [held] = result.held_back
    assert (held.plugin, held.outcome, held.problem.rule) == ("data-laoder", "left out", "PX131")
    assert "'data-laoder' resembles 'data-loader' (published before)" in held.problem.message
    # Approved by the maintainers, it is built.
    registry = index / "registry.yaml"
    text = registry.read_text(encoding="utf-8")
    registry.write_text(
        text.replace("policy:\n", "policy:\n  approved_similar_names: [data-laoder]\n")
    )
    assert build(index, out).held_back == ()


def test_strict_builds_all_or_nothing(tmp_path: Path) -> None:
    index = write_index(tmp_path / "index")
    add_release(index, "tool-a", "1.0.0", "artifacts/tool-a-1.0.0.tar.gz")
    (index / "plugins/stray.txt").write_text("x\n", encoding="utf-8")
    out = tmp_path / "out"
    strict = run("build", str(index), "--out", str(out), "--strict")
    assert strict.exit_code == 1
    assert f"{index}/plugins/stray.txt: unexpected entry" in strict.stderr
    assert not out.exists()
    lenient = run("build", str(index), "--out", str(out))
    assert lenient.exit_code == 0, lenient.output
    assert f"{index}/plugins/stray.txt: unexpected entry" in lenient.stderr


@pytest.mark.parametrize("kind", ["file", "link"])
def test_a_stray_file_in_a_plugin_folder_is_left_out_and_the_plugin_built(
    tmp_path: Path, kind: str
) -> None:
    index = write_index(tmp_path / "index")
    add_release(index, "app", "1.0.0", "artifacts/app-1.0.0.tar.gz")
    out = tmp_path / "out"
    build(index, out)
    add_release(index, "app", "1.1.0", "artifacts/app-1.1.0.tar.gz", day=2)
    stray = index / "plugins/app/NOTES.txt"
    if kind == "file":
        stray.write_text("notes\n", encoding="utf-8")
    else:  # found by the scan itself, not by the plugin's rules
        stray.symlink_to("plugin.yaml")
    result = build(index, out)
    [held] = result.held_back
    assert (held.plugin, held.outcome, held.rel) == (
        "app",
        "file left out",
        "plugins/app/NOTES.txt",
    )
    names = json.loads((out / "names.json").read_text(encoding="utf-8"))["plugins"]
    assert names["app"] == "1.1.0"  # built without the stray file, not kept as it was
