"""Run a client's transfers in parallel, and stop them all at the first failure or Ctrl-C.

`concurrent.futures` waits for every queued and running task when its pool closes,
and again at interpreter exit: a Ctrl-C three seconds into an install took effect
only when every download had finished. Here the workers are daemon threads that
take work from a queue; on a failure or Ctrl-C the caller sets the shared `cancel`
event and returns at once. Queued work is never started, and running work stops at
its next `check` (each downloaded chunk calls it). A transfer still waiting on a
silent server is abandoned, not waited for: it writes only into the staging folder
the caller removes, and dies with the process.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Generic, NamedTuple, TypeVar

from builder.common.errors import PlugindexError
from builder.common.exits import ExitCode

T = TypeVar("T")
R = TypeVar("R")

_POLL = 0.2  # seconds: how often a waiting caller wakes (a signal wakes it anyway)


class CancelledError(PlugindexError):
    """The work was cancelled: another transfer failed, or the user pressed Ctrl-C."""

    exit_code = ExitCode.INTERRUPTED


class Cancel:
    """A flag every transfer of one command checks between chunks."""

    def __init__(self) -> None:
        self._event = threading.Event()

    @property
    def event(self) -> threading.Event:
        """Return the event transfers wait on (a fetcher closes its response when it is set)."""
        return self._event

    def set(self) -> None:
        """Ask every transfer to stop at its next check."""
        self._event.set()

    def is_set(self) -> bool:
        """Tell whether the work was cancelled."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise CancelledError once the work was cancelled."""
        if self._event.is_set():
            raise CancelledError("cancelled")


class _Done(NamedTuple, Generic[R]):
    position: int
    result: R | None
    error: BaseException | None


def run_parallel(
    work: Callable[[T], R],
    items: Sequence[T],
    *,
    workers: int,
    cancel: Cancel | None = None,
) -> list[R]:
    """Return `work(item)` for every item, `workers` at a time, in the order of `items`.

    The first failure (or a KeyboardInterrupt in the caller) cancels the rest and is
    raised at once, without waiting for transfers still running.
    """
    if not items:
        return []
    cancel = cancel or Cancel()
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(items)):
        todo.put(index)
    done: queue.Queue[_Done[R]] = queue.Queue()

    def worker() -> None:
        while not cancel.is_set():
            try:
                index = todo.get_nowait()
            except queue.Empty:
                return
            try:
                done.put(_Done(index, work(items[index]), None))
            except BaseException as e:  # handed to the caller, who raises it
                done.put(_Done(index, None, e))

    for _ in range(min(workers, len(items))):
        threading.Thread(target=worker, name="plugindex-transfer", daemon=True).start()
    results: dict[int, R] = {}
    try:
        while len(results) < len(items):
            try:
                finished = done.get(timeout=_POLL)
            except queue.Empty:
                cancel.check()  # cancelled from outside: the workers take no more work
                continue
            if finished.error is not None:
                raise finished.error
            results[finished.position] = finished.result  # type: ignore[assignment]
    except BaseException:
        cancel.set()
        raise
    return [results[index] for index in range(len(items))]
