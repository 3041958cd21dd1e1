"""Check plugins beside the build: in this process for a few, in worker processes for many.

Reading, parsing, checking and verifying the signatures of each plugin is most of a
cold build, and a plugin's check depends only on its own files and registry.yaml.
A thread does not help (the GIL); worker processes do. Each worker (spawned, and
gone with this process: `builder.common.worker_processes`) takes chunks of plugins
in order, one worker per core, while this process hands them out and keeps what
comes back. It checks none itself unless no worker can (one died):
the checks' short-lived objects, made between the results it keeps, left its heap
a fifth larger at the commit (488 against 400 MiB at 30,000 plugins). The results
come back in the order of the jobs, and each depends only on its job, so no byte of
the build depends on who checked what. Small and incremental builds start no worker.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, wait
from typing import Any, TypeVar

from builder.common.worker_processes import worker_pool
from builder.index.signatures import SignatureJob
from builder.trust.signing import Check, KeyRing, verify_statement

log = logging.getLogger(__name__)

# Below this many plugins to check, the workers (about half a second of imports each,
# beside this process) cost more than they save.
PLUGINS_BEFORE_WORKER = 400
BATCH = 16  # plugins per hand-over: small enough that neither process waits long at the end
IN_FLIGHT = 2  # chunks each worker holds at once (one being checked, one queued)

Setup = TypeVar("Setup")
Job = TypeVar("Job")
Result = TypeVar("Result")


def verify_signatures(jobs: Iterable[SignatureJob], keys: Iterable[str]) -> list[Check]:
    """Verify each signature of one plugin against its owners' keys."""
    ring = KeyRing(keys)
    # Looked up here at each call, so a benchmark can measure the build without it.
    return [verify_statement(job.signature, job.statement, ring) for job in jobs]


# At most this many workers: each holds its own interpreter (~60 MiB), and past a few
# the parts of a build only this process does (listing, planning, writing) dominate.
MAX_WORKERS = 8


def worker_count() -> int:
    """Return how many worker processes to start: one per core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    # One core: no worker, the checks run here (a worker would only add its start-up).
    return 0 if cores < 2 else min(MAX_WORKERS, cores)


_SETUP: Any = None  # a worker process's setup, given once when it starts


def _start_worker(setup: object) -> None:
    global _SETUP  # noqa: PLW0603 - one setup per worker process, given once
    _SETUP = setup


def _check_in_worker(check: Callable[[Any, Job], Result], jobs: Sequence[Job]) -> list[Result]:
    return [check(_SETUP, job) for job in jobs]


def check_all(
    check: Callable[[Setup, Job], Result],
    setup: Setup,
    jobs: deque[Job],
    *,
    workers: int | None = None,
) -> list[Result]:
    """Return `check(setup, job)` for every job, in order, checked by workers if many.

    `check` must be a module-level function and `setup` and the jobs picklable.
    `workers` is how many worker processes may check (default: `worker_count()`;
    0 checks everything here). The jobs are taken from `jobs` as they are handed
    out, and let go once checked: a cold build's jobs (each plugin's files and their
    sizes) are a quarter of what it would hold at the end of the checks.
    """
    count = worker_count() if workers is None else workers
    if count < 1 or len(jobs) <= PLUGINS_BEFORE_WORKER:
        done: list[Result] = []
        while jobs:
            done.append(check(setup, jobs.popleft()))
        return done
    # Imported only here: a no-op build starts no worker, and these are a tenth of its start.
    from concurrent.futures import FIRST_COMPLETED
    from concurrent.futures.process import BrokenProcessPool

    results: list[Result | None] = [None] * len(jobs)
    pool = worker_pool(count, _start_worker, (setup,))
    # The chunks in a worker, with their jobs: checked here if the worker dies.
    sent: dict[Future[list[Result]], tuple[range, list[Job]]] = {}
    here = 0  # plugins checked in this process

    def check_here(chunk: range, work: list[Job]) -> None:
        nonlocal here
        here += len(work)
        for i, job in zip(chunk, work, strict=True):
            results[i] = check(setup, job)

    def place(future: Future[list[Result]]) -> None:
        chunk, work = sent.pop(future)
        try:
            checked = future.result()
        except BrokenProcessPool:
            # A worker died (killed, out of memory): its chunks are checked here.
            log.warning("a worker process stopped; checking its plugins in this process")
            check_here(chunk, work)
            return
        for i, result in zip(chunk, checked, strict=True):
            results[i] = result

    try:
        start, broken = 0, False
        while jobs:
            chunk = range(start, start + min(BATCH, len(jobs)))
            work = [jobs.popleft() for _ in chunk]
            start = chunk.stop
            if not broken:
                try:
                    sent[pool.submit(_check_in_worker, check, work)] = (chunk, work)
                except BrokenProcessPool:
                    broken = True  # no worker left: the rest is checked here
            if broken:
                check_here(chunk, work)
            while len(sent) >= IN_FLIGHT * count:
                for future in wait(sent, return_when=FIRST_COMPLETED).done:
                    place(future)
        for future in wait(sent).done:
            place(future)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    log.debug("the workers checked %d of %d plugins", len(results) - here, len(results))
    done = [result for result in results if result is not None]
    assert len(done) == len(results)  # every chunk was checked once, here or in a worker
    return done
