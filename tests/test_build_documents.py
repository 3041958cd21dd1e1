"""What a build writes ahead stays on disk, not in memory.

At 150,000 plugins the documents are 1.6 GB: a check that wrote one ahead hands over
where it is, and a stage that needs it reads it back, checked against its hash. A
local artifact written ahead is planned with no source (the commit moves it), not
with a Path to its copy in the index (about 300 bytes each, 450 MB at that size).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from builder.common import layout
from builder.common.errors import BuildError
from builder.index.analyse import Analysis, analyse
from builder.index.build import build
from builder.index.output import Planned, prestage
from builder.index.plan import plan_build
from builder.index.stages import BuildView, DocumentFile
from builder.site import planning as site_planning
from builder.site import workers as site_workers
from builder.site.stage import SiteStage
from builder.site.workers import PluginJob, VersionsJob


def _view(analysis: Analysis, out: Path) -> BuildView:
    assert analysis.registry is not None
    return BuildView(
        index=analysis.index,
        out=out,
        registry=analysis.registry,
        facts=analysis.facts,
        changed_documents=analysis.documents,
        previous={},
        on_disk={},
        timestamp=None,
        commit=None,
    )


def test_documents_written_ahead_are_handed_over_as_their_files(
    index: Path, tmp_path: Path
) -> None:
    ahead = tmp_path / "ahead"
    staged = analyse(index, workers=0, stage=ahead)
    in_memory = analyse(index, workers=0)
    assert staged.documents and set(staged.documents) == set(in_memory.documents)
    for name, document in staged.documents.items():
        assert document == f"{ahead}/{layout.index_path(name)}"
        data = in_memory.documents[name]
        assert isinstance(data, bytes)
        assert Path(document).read_bytes() == data
        assert hashlib.sha256(data).hexdigest() == staged.facts[name].doc_sha256


def test_a_stage_reads_a_document_written_ahead_wherever_the_commit_put_it(
    index: Path, tmp_path: Path
) -> None:
    ahead, out = tmp_path / "ahead", tmp_path / "out"
    analysis = analyse(index, workers=0, stage=ahead)
    view = _view(analysis, out)
    name = sorted(analysis.documents)[0]
    expected = (ahead / layout.index_path(name)).read_bytes()
    assert view.document(name) == expected
    published = out / layout.index_path(name)
    published.parent.mkdir(parents=True)
    shutil.move(ahead / layout.index_path(name), published)  # as the commit does
    assert view.document(name) == expected


def test_a_stage_refuses_a_document_changed_after_it_was_written_ahead(
    index: Path, tmp_path: Path
) -> None:
    ahead = tmp_path / "ahead"
    analysis = analyse(index, workers=0, stage=ahead)
    view = _view(analysis, tmp_path / "out")
    name = sorted(analysis.documents)[0]
    staged = ahead / layout.index_path(name)
    staged.write_bytes(staged.read_bytes().replace(b'"name"', b'"nome"'))
    with pytest.raises(BuildError, match="not the document this build rendered"):
        view.document(name)


def test_a_build_with_documents_on_disk_publishes_each_as_rendered(
    index: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(index, out, fetch=False, stages=[], workers=0)
    rendered = analyse(index, workers=0).documents
    for name, data in rendered.items():
        assert (out / layout.index_path(name)).read_bytes() == data


def test_the_site_hands_its_renderers_where_each_document_is_not_its_bytes(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold build's site jobs carry the documents' files: each is read where rendered."""
    jobs: list[Any] = []
    real = site_workers.render_all

    def recording(renderer: Any, batch: Sequence[Any], *, worker: bool = True) -> list[Any]:
        jobs.extend(batch)
        return real(renderer, batch, worker=worker)

    monkeypatch.setattr(site_planning, "render_all", recording)
    out = tmp_path / "out"
    build(index, out, fetch=False, stages=[SiteStage(worker=False)], workers=0)
    carried = [job.document for job in jobs if isinstance(job, PluginJob | VersionsJob)]
    files = [d for d in carried if isinstance(d, DocumentFile) and d.sha256]
    assert carried and files == carried
    for document in files:
        assert Path(document.published).read_bytes() == document.read()


def _local_artifacts_planned(monkeypatch: pytest.MonkeyPatch) -> dict[str, Planned]:
    """Record the repository-local artifacts a build plans (see `Settler.kept_artifacts`)."""
    planned: dict[str, Planned] = {}
    real = plan_build

    def recording(*args: Any) -> dict[str, Planned]:
        planned.update(args[3])  # analysis, source, remote, local, ...
        return real(*args)

    monkeypatch.setattr("builder.index.work.plan_build", recording)
    return planned


def test_artifacts_written_ahead_are_planned_without_a_source_and_moved_in(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = _local_artifacts_planned(monkeypatch)
    out = tmp_path / "out"
    build(index, out, fetch=False, stages=[], workers=0)
    assert planned and all(p.content is None for p in planned.values())
    for path, p in planned.items():
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == p.sha256


def test_artifacts_not_written_ahead_are_copied_from_the_index(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned = _local_artifacts_planned(monkeypatch)
    real = prestage

    def documents_only(root: str, path: str, sha256: str, content: bytes | Path) -> bool:
        return not path.startswith("artifacts/") and real(root, path, sha256, content)

    monkeypatch.setattr("builder.index.check.prestage", documents_only)
    out = tmp_path / "out"
    build(index, out, fetch=False, stages=[], workers=0)
    assert planned and all(isinstance(p.content, Path) for p in planned.values())
    for path, p in planned.items():
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == p.sha256


def test_a_stage_reads_documents_held_in_memory_and_those_of_the_last_build(
    index: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    build(index, out, fetch=False, stages=[], workers=0)
    in_memory = analyse(index, workers=0)  # no stage: the documents are bytes
    name = sorted(in_memory.documents)[0]
    assert _view(in_memory, out).document(name) == in_memory.documents[name]
    last_built = dataclasses.replace(_view(in_memory, out), changed_documents={})
    published = out / layout.index_path(name)
    assert last_built.document(name) == published.read_bytes()
    published.write_bytes(b"{}")  # as last built: taken as the output holds it
    assert last_built.document(name) == b"{}"
    published.unlink()
    with pytest.raises(FileNotFoundError):
        last_built.document(name)


def test_a_file_of_the_last_build_is_kept_only_when_recorded_and_the_same_size(
    index: Path, tmp_path: Path
) -> None:
    view = dataclasses.replace(
        _view(analyse(index, workers=0), tmp_path),
        previous={"a.json": "aa", "b.json": "bb", "c.json": "cc", "e.json": "ee"},
        on_disk={"a.json": 10, "b.json": 20, "d.json": 40, "e.json": 50},
        sizes={"a.json": 10, "b.json": 21},
    )
    assert view.unchanged("a.json") == Planned("aa", 10, None)
    assert view.unchanged("b.json") is None  # changed on disk since it was written
    assert view.unchanged("c.json") is None  # recorded, no longer there
    assert view.unchanged("d.json") is None  # there, not recorded
    assert view.unchanged("e.json") == Planned("ee", 50, None)  # no size recorded: as found
