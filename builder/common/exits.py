"""Exit codes: one table for every command (the README lists them for users)."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What a `plugindex` process's exit status means."""

    OK = 0
    PROBLEMS = 1  # the index has problems (all printed), or `verify` found changed files
    USAGE = 2  # bad usage: Click prints the usage error
    ERROR = 3  # another error we can explain: I/O, output folder, network
    UNSATISFIABLE = 4  # nothing satisfies the request (resolution, unknown plugin)
    REFUSED = 5  # a verification failed: the client refuses and changes nothing
    INTERNAL = 70  # a bug in plugindex (EX_SOFTWARE)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    BROKEN_PIPE = 141  # the reader of our output went away (128 + SIGPIPE)
