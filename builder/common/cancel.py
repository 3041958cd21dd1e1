"""Cancel a transfer in flight: Ctrl-C, or another transfer of the same command failed.

Given a `cancel` event, the open response is closed the moment it is set, so a read
waiting on a stalled server returns at once instead of after its read timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import urllib3

from builder.common.errors import FetchError
from builder.common.exits import ExitCode

_CANCEL_POLL = 0.05  # seconds: how often a watcher looks whether its transfer ended


class CancelledTransferError(FetchError):
    """A transfer was cancelled (Ctrl-C, or another transfer of the same command failed)."""

    exit_code = ExitCode.INTERRUPTED


def check_cancel(url: str, cancel: threading.Event | None) -> None:
    """Raise CancelledTransferError once `cancel` is set."""
    if cancel is not None and cancel.is_set():
        raise CancelledTransferError(f"{url}: cancelled")


@contextmanager
def closed_on_cancel(
    url: str, response: urllib3.BaseHTTPResponse, cancel: threading.Event | None
) -> Iterator[None]:
    """Close `response` the moment `cancel` is set, and raise once the transfer returns.

    A read blocked on a stalled server then returns at once (the socket is shut down
    under it); whatever it returned is not used.
    """
    if cancel is None:
        yield
        return
    finished = threading.Event()

    def watch() -> None:
        while not finished.is_set():
            if cancel.wait(_CANCEL_POLL):
                with suppress(Exception):  # already finished or released meanwhile
                    response.shutdown()
                return

    threading.Thread(target=watch, name="plugindex-cancel", daemon=True).start()
    try:
        yield
    except Exception:
        check_cancel(url, cancel)  # the shut-down socket's error means "cancelled"
        raise
    finally:
        finished.set()
    check_cancel(url, cancel)  # a body cut short by the shutdown is never used
