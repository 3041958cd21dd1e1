"""A build that shares its plugins' checks with worker processes equals a serial one.

Workers check chunks from the end of the list while the build checks from the
front (`builder.index.verifier`); the results are merged in the index's order, so
not one byte may depend on which process checked which plugin.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import weakref
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from builder.cli.maintainer import build_stages
from builder.format import load
from builder.index import output, verifier, work
from builder.index.build import build
from builder.index.output import Planned
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from generate_index import generate  # a benchmark module, found in its folder

ENV = {"SOURCE_DATE_EPOCH": "1700000000"}


def published(out: Path) -> dict[str, bytes]:
    """Return every published file of a build (its private state folder left out)."""
    return {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and not path.relative_to(out).as_posix().startswith(".plugindex/")
    }


def shared_plugins(caplog: pytest.LogCaptureFixture) -> int:
    """Return how many plugins the workers checked in the last build (from its log)."""
    said = [r.getMessage() for r in caplog.records]
    found = [m.split()[3] for m in said if m.startswith("the workers checked ")]
    assert found, "the build did not share its checks with a worker"
    return int(found[-1])


def serial_and_parallel(
    index: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    *,
    full: bool,
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Build `index` with no worker, then with one worker on chunks of two plugins."""
    stages = build_stages if full else list
    build(index, tmp_path / "serial", environ=ENV, stages=stages(), workers=0)
    monkeypatch.setattr(verifier, "PLUGINS_BEFORE_WORKER", 0)
    monkeypatch.setattr(verifier, "BATCH", 2)
    with caplog.at_level(logging.DEBUG, logger=verifier.__name__):
        build(index, tmp_path / "parallel", environ=ENV, stages=stages(), workers=1)
    assert shared_plugins(caplog) > 0
    return published(tmp_path / "serial"), published(tmp_path / "parallel")


def test_the_bundled_index_builds_the_same_bytes_with_a_worker(
    index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Every stage (documents, site, search, signed metadata), and a version held back."""
    broken = index / "plugins" / "auth-jwt" / "versions" / "9.9.9.yaml"
    broken.write_text("version: [\n", encoding="utf-8")
    serial, parallel = serial_and_parallel(index, tmp_path, monkeypatch, caplog, full=True)
    assert b'"held_back":[{' in serial["status.json"]
    assert sorted(parallel) == sorted(serial)
    different = [path for path in serial if parallel[path] != serial[path]]
    assert different == []


def test_a_generated_index_builds_the_same_bytes_with_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Sixty plugins with artifacts in the index, Unicode text and a long tail of versions."""
    made = generate(tmp_path / "index", 60, 6, seed=3, artifacts="local")
    serial, parallel = serial_and_parallel(
        tmp_path / "index", tmp_path, monkeypatch, caplog, full=False
    )
    assert sum(path.startswith("artifacts/") for path in serial) == made.versions
    assert sorted(parallel) == sorted(serial)
    different = [path for path in serial if parallel[path] != serial[path]]
    assert different == []


@pytest.mark.parametrize(("cores", "workers"), [(1, 0), (2, 2), (3, 3), (8, 8), (64, 8)])
def test_one_worker_per_core_and_none_on_one_core(
    monkeypatch: pytest.MonkeyPatch, cores: int, workers: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1000)  # the cores this process may use count
    assert verifier.worker_count() == workers


@pytest.mark.parametrize(("cores", "workers"), [(None, 0), (1, 0), (4, 4), (9, 8)])
def test_without_affinity_the_cores_of_the_machine_count(
    monkeypatch: pytest.MonkeyPatch, cores: int | None, workers: int
) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert verifier.worker_count() == workers


def twice_unless_in_a_worker(setup: int, job: int) -> int:
    """Multiply a job by `setup`, or stop the process at once when it is a worker."""
    if multiprocessing.parent_process() is not None:
        os._exit(3)  # as if killed: no exception, no result
    return job * setup


def test_plugins_of_a_worker_that_dies_are_checked_here(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(verifier, "PLUGINS_BEFORE_WORKER", 0)
    monkeypatch.setattr(verifier, "BATCH", 3)
    with caplog.at_level(logging.DEBUG, logger=verifier.__name__):
        results = verifier.check_all(twice_unless_in_a_worker, 2, deque(range(20)), workers=1)
    assert results == [2 * job for job in range(20)]
    assert "a worker process stopped" in caplog.text
    assert shared_plugins(caplog) == 0


@pytest.mark.parametrize("threshold", [3, 400])
def test_a_small_check_starts_no_worker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, threshold: int
) -> None:
    """Up to the threshold, no worker: the function runs here (a worker would exit)."""
    monkeypatch.setattr(verifier, "PLUGINS_BEFORE_WORKER", threshold)
    with caplog.at_level(logging.DEBUG, logger=verifier.__name__):
        results = verifier.check_all(twice_unless_in_a_worker, 5, deque([1, 2, 3]), workers=1)
    assert results == [5, 10, 15]
    assert "workers checked" not in caplog.text


def test_one_plugin_past_the_threshold_starts_a_worker(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(verifier, "PLUGINS_BEFORE_WORKER", 3)
    with caplog.at_level(logging.DEBUG, logger=verifier.__name__):
        results = verifier.check_all(pid_of_the_checker, 0, deque(range(4)), workers=1)
    assert os.getpid() not in results
    assert shared_plugins(caplog) == 4


def pid_of_the_checker(setup: int, job: int) -> int:
    """Return the process that checked the job (slowly: each worker gets chunks)."""
    time.sleep(0.01)
    return os.getpid() + setup


@pytest.mark.parametrize("workers", [1, 2])
def test_as_many_worker_processes_as_asked_and_none_left(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(verifier, "PLUGINS_BEFORE_WORKER", 0)
    monkeypatch.setattr(verifier, "BATCH", 1)
    checkers = set(verifier.check_all(pid_of_the_checker, 0, deque(range(60)), workers=workers))
    assert len(checkers) == workers
    assert os.getpid() not in checkers
    assert multiprocessing.active_children() == []  # each worker was waited for


def test_a_chunk_is_handed_out_as_soon_as_one_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not once every chunk in flight is back: a worker would wait for the slowest."""
    monkeypatch.setattr(verifier, "PLUGINS_BEFORE_WORKER", 0)
    monkeypatch.setattr(verifier, "BATCH", 1)
    still_out: list[int] = []  # chunks not back yet each time a wait returns
    wait = concurrent.futures.wait

    def watched(futures: Any, *args: Any, **kwargs: Any) -> Any:
        waited = wait(futures, *args, **kwargs)
        still_out.append(len(waited.not_done))
        return waited

    monkeypatch.setattr(verifier, "wait", watched)
    verifier.check_all(pid_of_the_checker, 0, deque(range(30)), workers=1)
    assert max(still_out[:-1]) >= 1  # each check takes 10 ms: the next is still out
    assert still_out[-1] == 0


def sleep_in_a_worker(folder: str, job: int) -> int:
    """Say which worker took the job (a file named by its process id), then wait."""
    (Path(folder) / str(os.getpid())).touch()
    time.sleep(120)
    return job


def running(pid: int) -> bool:
    """Whether the process `pid` runs (a zombie, waiting to be reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_the_workers_of_a_killed_build_exit_with_it(tmp_path: Path) -> None:
    """A build killed outright (SIGKILL: no clean-up runs) leaves no worker behind."""
    script = (
        "import sys; from collections import deque\n"
        "from builder.index import verifier\n"
        "from tests.test_parallel_build import sleep_in_a_worker\n"
        "verifier.PLUGINS_BEFORE_WORKER, verifier.BATCH = 0, 1\n"
        "verifier.check_all(sleep_in_a_worker, sys.argv[1], deque(range(4)), workers=2)\n"
    )
    build = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], cwd=ROOT)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and build.poll() is None:
            time.sleep(0.05)
            workers = [int(path.name) for path in tmp_path.iterdir()]
        assert len(workers) == 2, "the workers did not start"
        build.kill()
        build.wait()
        deadline = time.monotonic() + 10
        while any(map(running, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in workers if running(pid)] == []
    finally:
        build.kill()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


class _Job:
    """A job that can be watched for being let go (a weak reference to it)."""

    def __init__(self, number: int) -> None:
        self.number = number


_WATCHED: list[weakref.ref[_Job]] = []  # in this process only: a worker has none


def jobs_still_held(setup: int, job: _Job) -> int:
    """Count the jobs before this one that something still holds."""
    return sum(1 for ref in _WATCHED[: job.number] if ref() is not None) + setup


def test_each_job_is_let_go_once_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """A cold build's jobs are a quarter of what it holds: none outlives its check."""
    monkeypatch.setattr(verifier, "PLUGINS_BEFORE_WORKER", 0)
    jobs = deque(_Job(number) for number in range(40))
    _WATCHED[:] = [weakref.ref(job) for job in jobs]
    results = verifier.check_all(jobs_still_held, 0, jobs, workers=0)
    assert results == [0] * 40
    assert not jobs


def test_only_the_jobs_in_the_workers_are_held(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Handed to the workers a chunk at a time, and let go as each chunk comes back."""
    monkeypatch.setattr(verifier, "PLUGINS_BEFORE_WORKER", 0)
    monkeypatch.setattr(verifier, "BATCH", 2)
    held: list[int] = []  # the jobs alive each time this process waits for a worker
    wait = concurrent.futures.wait

    in_flight: list[int] = []  # the chunks in the workers at each wait

    def watched(futures: Any, *args: Any, **kwargs: Any) -> Any:
        held.append(sum(1 for ref in _WATCHED if ref() is not None))
        in_flight.append(len(futures))
        return wait(futures, *args, **kwargs)

    monkeypatch.setattr(verifier, "wait", watched)
    jobs = deque(_Job(number) for number in range(40))
    _WATCHED[:] = [weakref.ref(job) for job in jobs]
    with caplog.at_level(logging.DEBUG, logger=verifier.__name__):
        results = verifier.check_all(jobs_still_held, 0, jobs, workers=1)
    assert results == [0] * 40  # a worker sees none of this process's jobs
    assert shared_plugins(caplog) == 40  # and this process checked none
    assert len(held) > 10
    # Those not handed out yet, and those in a worker: a chunk fewer at each wait.
    assert all(alive <= 40 - 2 * k for k, alive in enumerate(held))
    assert held[-1] <= verifier.IN_FLIGHT * 2
    # A worker is never idle for want of a chunk, and holds no more than it needs.
    assert set(in_flight[:-1]) == {verifier.IN_FLIGHT}
    assert in_flight[-1] <= verifier.IN_FLIGHT


def test_threads_walking_the_index_find_what_one_walk_finds(
    index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plugin folders walked by threads: the same files, stats and problems, in order."""
    deep = index / "plugins" / "auth-jwt" / "a"
    for depth in range(load.MAX_DEPTH + 1):
        deep = deep / str(depth)
    deep.mkdir(parents=True)
    (index / "plugins" / "template-faker" / "link").symlink_to(index / "registry.yaml")
    monkeypatch.setattr(load, "FOLDERS_BEFORE_THREADS", 10**9)
    one = load.scan_index(index)
    monkeypatch.setattr(load, "FOLDERS_BEFORE_THREADS", 0)
    monkeypatch.setattr(load, "_FOLDERS_PER_TASK", 1)
    threaded = load.scan_index(index)
    assert [p.render() for p in one.problems] == [p.render() for p in threaded.problems]
    assert len(one.problems) == 2
    assert {n: f.files for n, f in one.plugins.items()} == {
        n: f.files for n, f in threaded.plugins.items()
    }


def test_the_list_of_live_artifacts_is_written_only_when_it_changes(tmp_path: Path) -> None:
    """A build --live records the artifacts it left out; a no-op does not rewrite it."""
    made = generate(tmp_path / "index", 5, 3, seed=1)
    live = dict(made.artifacts)
    out = tmp_path / "out"

    def build_live(held: dict[str, str]) -> None:
        build(
            tmp_path / "index", out, environ=ENV, fetch=False, live=held, live_read=lambda _: None
        )

    build_live(live)
    listed = out / ".plugindex" / "borrowed.json"
    assert sorted(json.loads(listed.read_text())) == sorted(live)
    before = listed.stat().st_mtime_ns
    os.utime(listed, ns=(before - 10**9, before - 10**9))  # a rewrite would show
    build_live(live)
    assert listed.stat().st_mtime_ns == before - 10**9
    gone = sorted(live)[0]
    del live[gone]
    build_live(live)
    assert sorted(json.loads(listed.read_text())) == sorted(live)


@pytest.mark.parametrize("workers", [0, 1])
def test_a_cold_build_holds_one_string_per_artifact_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """The plan's keys are the record of files written ahead's own (1.5 million at 150,000)."""
    generate(tmp_path / "index", 30, 4, seed=5, artifacts="local")
    monkeypatch.setattr(verifier, "PLUGINS_BEFORE_WORKER", 0)
    seen: list[tuple[int, int]] = []  # (artifacts planned, those whose path is the record's)
    write_output = output.write_output

    def watched(out: Path, plan: Mapping[str, Planned], *args: Any, **kwargs: Any) -> Any:
        ahead = kwargs["prestaged"].files
        held = {id(path) for path in ahead}
        artifacts = [path for path in plan if path.startswith("artifacts/")]
        seen.append((len(artifacts), sum(id(path) in held for path in artifacts)))
        return write_output(out, plan, *args, **kwargs)

    monkeypatch.setattr(work, "write_output", watched)
    build(tmp_path / "index", tmp_path / "out", environ=ENV, stages=[], workers=workers)
    [(planned, shared)] = seen
    assert planned > 100
    assert shared == planned
