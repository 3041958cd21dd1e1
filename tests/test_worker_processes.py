"""The pools every stage's workers come from: spawned, set up once, gone with their parent.

That a killed build's workers exit with it is tested through the checks' pool
(`tests/test_parallel_build.py::test_the_workers_of_a_killed_build_exit_with_it`).
"""

from __future__ import annotations

import os

from builder.common.worker_processes import worker_pool

_GIVEN: tuple[object, ...] = ()  # what the initializer was given, in a worker
SET_HERE = "set in the module as imported"


def remember(*given: object) -> None:
    global _GIVEN  # noqa: PLW0603 - one worker's state, set once as it starts
    _GIVEN = given


def what_the_worker_has(_: int) -> tuple[tuple[object, ...], str, int]:
    return _GIVEN, SET_HERE, os.getpid()


def test_each_worker_is_set_up_with_the_initializer_and_its_arguments() -> None:
    with worker_pool(1, remember, ("setup", 3)) as pool:
        given, _, pid = pool.submit(what_the_worker_has, 0).result()
    assert given == ("setup", 3)
    assert pid != os.getpid()


def test_a_worker_is_spawned_not_forked() -> None:
    """A forked worker would see what this process changed after importing the module."""
    global SET_HERE  # noqa: PLW0603 - changed here only, to tell a fork from a spawn
    SET_HERE, before = "changed in this process", SET_HERE
    try:
        with worker_pool(1) as pool:
            given, seen, _ = pool.submit(what_the_worker_has, 0).result()
    finally:
        SET_HERE = before
    assert seen == "set in the module as imported"
    assert given == ()
