"""Pools of worker processes that are spawned, not forked, and end with their parent.

Every stage that checks, renders or verifies in other processes starts them here:

- **Spawned, not forked.** The caller may have threads (a progress display, a test
  runner, the build's own readers), and a forked child can inherit a lock one of them
  held, then wait on it forever.
- **Gone with their parent.** A worker waits for work on a queue whose writing end it
  holds itself, so the end of the queue never comes: a parent killed outright (SIGKILL,
  out of memory), whose clean-up never runs, would leave its workers waiting for
  ever. Each worker watches its parent and exits when it has gone.

`multiprocessing` and `concurrent.futures` are imported only when a pool starts: a
no-op build starts none, and they are a tenth of its start-up.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor


def worker_pool(
    workers: int | None,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> ProcessPoolExecutor:
    """Return a pool of `workers` spawned processes (None: one per CPU) that end with this one.

    `initializer(*initargs)` runs once in each worker as it starts, as with
    `ProcessPoolExecutor`; it must be a module-level function.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(initializer, initargs),
    )


def _start_worker(initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
    import multiprocessing
    import threading

    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_leave_with, args=(parent.sentinel,), daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def _leave_with(parent: int) -> None:
    """Exit this worker at once when its parent process has gone."""
    from multiprocessing.connection import wait

    wait([parent])  # readable only once the parent's end of the pipe is closed
    os._exit(1)
