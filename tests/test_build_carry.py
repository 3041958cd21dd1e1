"""A rebuild carries the last build's artifacts over unplanned, and publishes what a
cold build of the same index publishes (`builder.index.carry`).

Each test changes a small index with repository-local artifacts, rebuilds, and
compares the output (every file and its bytes) and the record of its files with a
cold build of the same index; it also checks that the rebuild did carry the
unchanged plugins' artifacts over, and which artifacts it found stale.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from builder.common import layout, sharded
from builder.common.build_folder import (
    ARTIFACT_PARTS,
    OTHER_PARTS,
    OUTPUTS,
    STATE_DIR,
    read_outputs,
)
from builder.common.errors import BuildError
from builder.index import work
from builder.index.build import BuildResult, build
from builder.index.cache import BuildCache
from builder.index.carry import CarriedArtifacts, carry_artifacts
from builder.index.output import Planned
from builder.index.previous import PreviousStates
from tests.conftest import copy_demo_index
from tests.mini_index import VERSION, _sign, add_release, artifact_bytes, write_index
from tests.signed_build import build_signed

_ENVIRON = {"SOURCE_DATE_EPOCH": "1700000000"}


def _artifact(name: str, version: str) -> str:
    """Return the published path of a local artifact `add_release` made."""
    sha256 = hashlib.sha256(artifact_bytes(name, version)).hexdigest()
    return layout.artifact_path(sha256, f"{name}-{version}.tar.gz")


class Recorder:
    """What each build carried over and planned of the local artifacts."""

    def __init__(self) -> None:
        self.carried: list[CarriedArtifacts | None] = []
        self.local: list[dict[str, Planned]] = []

    @property
    def last(self) -> CarriedArtifacts:
        carried = self.carried[-1]
        assert carried is not None, "the build planned every artifact"
        return carried


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[Recorder]:
    seen = Recorder()
    settle = work._settle

    def carried(*args: Any, **kwargs: Any) -> CarriedArtifacts | None:
        found = carry_artifacts(*args, **kwargs)
        seen.carried.append(found)
        return found

    def settled(*args: Any, **kwargs: Any) -> work.Settled:
        result = settle(*args, **kwargs)
        seen.local.append(result.local)
        return result

    monkeypatch.setattr(work, "carry_artifacts", carried)
    monkeypatch.setattr(work, "_settle", settled)
    yield seen


@pytest.fixture
def index(tmp_path: Path) -> Path:
    root = write_index(tmp_path / "index")
    for name in ("alpha", "beta", "gamma"):
        for number, version in enumerate(("1.0.0", "1.1.0"), start=1):
            add_release(root, name, version, f"artifacts/{name}-{version}.tar.gz", day=number)
    return root


def _rebuild(index: Path, out: Path) -> BuildResult:
    return build(index, out, environ=_ENVIRON, workers=0)


def _published(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and STATE_DIR not in p.relative_to(out).parts
    }


def _same_as_cold(index: Path, out: Path, tmp_path: Path) -> None:
    """Check `out` against a cold build of `index`: files, bytes, record, no-op count."""
    cold = tmp_path / "cold"
    shutil.rmtree(cold, ignore_errors=True)
    build(index, cold, environ=_ENVIRON, workers=0)
    assert _published(out) == _published(cold)
    assert read_outputs(out) == read_outputs(cold)
    again = _rebuild(index, out)  # the record the no-op check keeps counts every file
    assert not again.report.written and not again.report.removed
    assert again.report.unchanged == len(_published(cold))


def _removed_as_stale(recorder: Recorder, result: BuildResult, out: Path, *gone: str) -> None:
    """Check that the last build found exactly `gone` stale, and removed it."""
    assert recorder.last.stale == set(gone)
    assert set(gone) <= set(result.report.removed)
    assert not any((out / path).exists() for path in gone)


def test_a_new_version_plans_only_its_plugin_and_publishes_what_a_cold_build_does(
    index: Path, tmp_path: Path, recorder: Recorder
) -> None:
    out = tmp_path / "out"
    _rebuild(index, out)
    add_release(index, "beta", "1.2.0", "artifacts/beta-1.2.0.tar.gz", day=3)
    result = _rebuild(index, out)
    assert recorder.last.stale == frozenset()
    assert set(recorder.local[-1]) == {_artifact("beta", v) for v in ("1.0.0", "1.1.0", "1.2.0")}
    assert _artifact("beta", "1.2.0") in result.report.written
    assert result.report.removed == []
    _same_as_cold(index, out, tmp_path)


def test_a_removed_version_loses_its_artifact(
    index: Path, tmp_path: Path, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _rebuild(index, out)
    (index / "plugins/alpha/versions/1.0.0.yaml").unlink()
    read_back: list[str] = []
    state = PreviousStates.state

    def spied(self: PreviousStates, name: str) -> Any:
        read_back.append(name)
        return state(self, name)

    monkeypatch.setattr(PreviousStates, "state", spied)
    result = _rebuild(index, out)
    assert read_back == []  # alpha's last facts are its cache record's: no document read
    _removed_as_stale(recorder, result, out, _artifact("alpha", "1.0.0"))
    _same_as_cold(index, out, tmp_path)


def test_a_removed_plugin_loses_its_artifacts(
    index: Path, tmp_path: Path, recorder: Recorder
) -> None:
    out = tmp_path / "out"
    _rebuild(index, out)
    shutil.rmtree(index / "plugins/gamma")
    result = _rebuild(index, out)
    _removed_as_stale(recorder, result, out, *(_artifact("gamma", v) for v in ("1.0.0", "1.1.0")))
    _same_as_cold(index, out, tmp_path)


def test_an_artifact_with_new_bytes_replaces_the_old_one(
    index: Path, tmp_path: Path, recorder: Recorder
) -> None:
    out = tmp_path / "out"
    _rebuild(index, out)
    (index / "plugins/alpha/versions/1.1.0.yaml").unlink()
    new = add_release(index, "alpha", "1.1.0", "artifacts/alpha-1.1.0.tar.gz", data=b"rebuilt")
    result = _rebuild(index, out)
    path = layout.artifact_path(hashlib.sha256(new).hexdigest(), "alpha-1.1.0.tar.gz")
    assert recorder.last.stale == {_artifact("alpha", "1.1.0")}
    assert path in result.report.written
    assert (out / path).read_bytes() == b"rebuilt"
    _same_as_cold(index, out, tmp_path)


def _share(index: Path, name: str, version: str, owner: str, owner_version: str) -> None:
    """Give `name` a version whose artifact is exactly `owner`'s `owner_version` one."""
    content = artifact_bytes(owner, owner_version)
    filename = f"{owner}-{owner_version}.tar.gz"
    folder = index / "plugins" / name
    (folder / "shared").mkdir(exist_ok=True)
    (folder / "shared" / filename).write_bytes(content)
    text = VERSION.format(
        version=version,
        day=9,
        url=f"shared/{filename}",
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        filename=filename,
    )
    (folder / "versions" / f"{version}.yaml").write_text(text, encoding="utf-8")
    _sign(folder / "versions" / f"{version}.yaml")


def test_an_artifact_two_plugins_name_stays_while_either_names_it(
    index: Path, tmp_path: Path, recorder: Recorder
) -> None:
    out = tmp_path / "out"
    _share(index, "beta", "2.0.0", "alpha", "1.0.0")
    _rebuild(index, out)
    shared = _artifact("alpha", "1.0.0")
    (index / "plugins/alpha/versions/1.0.0.yaml").unlink()  # beta still names it
    result = _rebuild(index, out)
    assert recorder.last.stale == frozenset()
    assert shared not in result.report.removed
    assert (out / shared).is_file()
    _same_as_cold(index, out, tmp_path)
    (index / "plugins/beta/versions/2.0.0.yaml").unlink()  # now nothing does
    result = _rebuild(index, out)
    _removed_as_stale(recorder, result, out, shared)
    _same_as_cold(index, out, tmp_path)


def test_a_held_back_plugin_keeps_its_artifacts_and_loses_them_once_gone(
    index: Path, tmp_path: Path, recorder: Recorder
) -> None:
    out = tmp_path / "out"
    _rebuild(index, out)
    kept = {_artifact("gamma", v) for v in ("1.0.0", "1.1.0")}
    (index / "plugins/gamma/plugin.yaml").write_text("name: [broken\n", encoding="utf-8")
    result = _rebuild(index, out)
    assert {h.plugin for h in result.held_back} == {"gamma"}
    assert recorder.last.stale == frozenset()
    assert all((out / path).is_file() for path in kept)
    # Held back, gamma has no cache record: its artifacts are known from its document.
    shutil.rmtree(index / "plugins/gamma")
    result = _rebuild(index, out)
    assert not result.held_back
    _removed_as_stale(recorder, result, out, *kept)
    _same_as_cold(index, out, tmp_path)


def test_a_plugin_whose_published_state_cannot_be_read_back_plans_every_artifact(
    index: Path, tmp_path: Path, recorder: Recorder
) -> None:
    out = tmp_path / "out"
    _rebuild(index, out)
    (index / "plugins/gamma/plugin.yaml").write_text("name: [broken\n", encoding="utf-8")
    _rebuild(index, out)
    # The document gamma was kept at is damaged: its artifacts are not known any more.
    document = out / layout.index_path("gamma")
    document.write_bytes(document.read_bytes().replace(b"gamma", b"GAMMA"))
    shutil.rmtree(index / "plugins/gamma")
    result = _rebuild(index, out)
    assert recorder.carried[-1] is None
    assert {_artifact("alpha", "1.0.0"), _artifact("beta", "1.1.0")} <= set(recorder.local[-1])
    assert {_artifact("gamma", v) for v in ("1.0.0", "1.1.0")} <= set(result.report.removed)
    _same_as_cold(index, out, tmp_path)


def test_a_first_build_and_a_live_build_carry_nothing(
    index: Path, tmp_path: Path, recorder: Recorder
) -> None:
    out = tmp_path / "out"
    _rebuild(index, out)
    assert recorder.carried == []  # no record of an output yet
    live = {path: sha256 for path, (sha256, _) in (read_outputs(out) or {}).items()}
    build(index, tmp_path / "live-out", live=live, live_read=lambda _: None, workers=0)
    assert recorder.carried == []


def test_a_signed_rebuild_signs_every_artifact_it_carries_over(
    tmp_path: Path, recorder: Recorder
) -> None:
    """The signing stage sees the whole build, carried artifacts included; its signed
    copies of the documents (`index/…/<sha256>.<name>.json`) are no plugins."""
    index = copy_demo_index(tmp_path)
    out, cold = tmp_path / "out", tmp_path / "cold"
    build_signed(index, out, now=1_700_000_000)
    versions = sorted((index / "plugins/protocol-grpc/versions").iterdir())
    gone = versions[0]
    published = read_outputs(out) or {}
    gone.unlink()
    build_signed(index, out, now=1_700_000_000)
    stale = recorder.last.stale
    assert len(stale) == 1 and next(iter(stale)) in published
    build_signed(index, cold, now=1_700_000_000)
    unsigned = {path: data for path, data in _published(cold).items() if "metadata/" not in path}
    assert unsigned.items() <= _published(out).items()
    assert _signed_targets(out) == _signed_targets(cold)
    assert _artifact_targets(out) == {p for p in unsigned if p.startswith("artifacts/")}


def _signed_targets(out: Path) -> dict[str, Any]:
    """Return every target the latest metadata of each hashed bin signs."""
    latest: dict[str, tuple[int, Path]] = {}
    for file in (out / "metadata").glob("*.bins-*.json"):
        version, role = file.name.split(".", 1)
        latest[role] = max(latest.get(role, (0, file)), (int(version), file))
    targets: dict[str, Any] = {}
    for _, file in latest.values():
        targets.update(json.loads(file.read_bytes())["signed"]["targets"])
    return targets


def _artifact_targets(out: Path) -> set[str]:
    return {path for path in _signed_targets(out) if path.startswith("artifacts/")}


def test_nothing_is_carried_without_a_record_or_a_plugin_to_carry() -> None:
    previous = PreviousStates({}, lambda _: None)
    planned: dict[str, Planned] = {}
    assert carry_artifacts(BuildCache(outputs=None), {}, {"alpha"}, planned, previous) is None
    # Nothing to carry: every artifact is planned, and no document is read back.
    assert carry_artifacts(BuildCache(outputs={}), {}, frozenset(), planned, previous) is None
    kept = carry_artifacts(BuildCache(outputs={}), {}, {"alpha"}, planned, previous)
    assert kept is not None and kept.stale == frozenset()


@pytest.mark.parametrize("gone", ["root", "header", "part"])
def test_a_build_folder_whose_record_is_gone_or_damaged_builds_as_a_cold_build(
    index: Path, tmp_path: Path, gone: str
) -> None:
    """Without a record of its files, a build cannot tell which documents are in place:
    it builds everything again, instead of taking the cache's documents as written."""
    out = tmp_path / "out"
    _rebuild(index, out)
    add_release(index, "beta", "1.2.0", "artifacts/beta-1.2.0.tar.gz", day=3)
    root = out / STATE_DIR / OUTPUTS
    key, counts, names = marshal.loads(root.read_bytes())
    if gone == "root":
        root.unlink()
    elif gone == "header":  # a record of an older layout: no count of each part's files
        root.write_bytes(marshal.dumps((key, None, names)))
    else:  # a part of the files but artifacts: read as the record is loaded
        part = next(i for i in OTHER_PARTS if counts[i])
        (sharded.parts_folder(root) / names[part]).write_bytes(b"damaged")
    result = _rebuild(index, out)
    assert not result.held_back
    _same_as_cold(index, out, tmp_path)


def test_an_artifact_part_damaged_under_a_build_stops_it_with_the_file_named(
    index: Path, tmp_path: Path
) -> None:
    """The artifacts' parts are read as they are looked up, and only their files are
    looked for as the record is loaded: one damaged meanwhile stops the build with a
    clear error naming it, before anything in the output changes."""
    out = tmp_path / "out"
    _rebuild(index, out)
    before = _published(out)
    add_release(index, "beta", "1.2.0", "artifacts/beta-1.2.0.tar.gz", day=3)
    root = out / STATE_DIR / OUTPUTS
    _, counts, names = marshal.loads(root.read_bytes())
    damaged = [sharded.parts_folder(root) / names[i] for i in ARTIFACT_PARTS if counts[i]]
    for path in damaged:
        path.write_bytes(b"damaged")
    with pytest.raises(BuildError, match="missing or damaged") as raised:
        _rebuild(index, out)
    assert any(str(path) in str(raised.value) for path in damaged)
    assert _published(out) == before
