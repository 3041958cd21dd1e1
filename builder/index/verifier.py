"""Run signature checks beside the build: in this process for a few, in a worker for many.

Ed25519 verification is about a third of a cold build's work. A thread does not
help: after every verify call it must take the GIL back from the parsing thread and
waits for it. A worker process has its own interpreter, so on a second core the
checks overlap with parsing almost entirely. Plugins are sent in batches, as plain
tuples, so the cost of handing them over stays small beside the checks themselves.
Small and incremental builds never start a worker.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor

from builder.index.signatures import SignatureJob
from builder.trust.signing import Check, KeyRing, Verdict, verify_statement

# Below this many plugins to check, a worker process costs more than it saves.
PLUGINS_BEFORE_WORKER = 64
BATCH = 16  # plugins per hand-over to the worker

# What crosses to the worker: per plugin, its keys and (signature, statement) pairs.
_Work = tuple[tuple[str, ...], list[tuple[dict[str, str] | None, bytes]]]
# What comes back: per signature, the verdict's name and the key that verified.
_Outcome = tuple[str, str | None]


def check_batch(batch: Sequence[_Work]) -> list[list[_Outcome]]:
    """Verify the signatures of a batch of plugins (runs in the worker)."""
    results = []
    for keys, pairs in batch:
        ring = KeyRing(keys)
        checks = [verify_statement(signature, statement, ring) for signature, statement in pairs]
        results.append([(c.verdict.name, c.key) for c in checks])
    return results


class Ticket:
    """Where the checks of one plugin will be found."""

    __slots__ = ("batch", "position")

    def __init__(self, batch: int, position: int) -> None:
        self.batch = batch
        self.position = position


class Verifier:
    """Verify plugins' signatures in submission order, off this process when worth it."""

    def __init__(self) -> None:
        self._submitted = 0
        self._pool: ProcessPoolExecutor | None = None
        self._buffer: list[_Work] = []
        self._batches: dict[int, Future[list[list[_Outcome]]]] = {}
        self._next_batch = 0
        self._done: dict[int, list[Check]] = {}  # checks made in this process, by ticket

    def submit(self, jobs: Sequence[SignatureJob], keys: tuple[str, ...]) -> Ticket:
        """Queue one plugin's signatures for checking."""
        self._submitted += 1
        if self._pool is None and self._submitted > PLUGINS_BEFORE_WORKER:
            # Spawned, not forked: the caller may have threads (a server, a test
            # runner), and forking a process with threads can leave a lock held.
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        if self._pool is None:
            ring = KeyRing(keys)
            ticket = Ticket(-1, self._submitted)
            self._done[self._submitted] = [
                verify_statement(job.signature, job.statement, ring) for job in jobs
            ]
            return ticket
        self._buffer.append((keys, [(job.signature, job.statement) for job in jobs]))
        ticket = Ticket(self._next_batch, len(self._buffer) - 1)
        if len(self._buffer) >= BATCH:
            self._send()
        return ticket

    def result(self, ticket: Ticket) -> list[Check]:
        """Return the checks of a plugin, waiting for the worker if needed."""
        if ticket.batch < 0:
            return self._done.pop(ticket.position)
        if ticket.batch == self._next_batch:
            self._send()
        outcomes = self._batches[ticket.batch].result()[ticket.position]
        if ticket.position == len(self._batches[ticket.batch].result()) - 1:
            del self._batches[ticket.batch]  # the last plugin of its batch: done with it
        return [Check(Verdict[name], key) for name, key in outcomes]

    def close(self) -> None:
        """Stop the worker, if one was started."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def _send(self) -> None:
        assert self._pool is not None
        self._batches[self._next_batch] = self._pool.submit(check_batch, self._buffer)
        self._buffer = []
        self._next_batch += 1
