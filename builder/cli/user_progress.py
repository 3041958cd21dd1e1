"""Progress of the plugin user's downloads: one line on stderr, on a terminal only, and
only for transfers that take over a second (drawn by `builder.common.progress`, as the
build's and the gate's downloads are)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

from builder.common.progress import ProgressLine


def progress(as_json: bool) -> Any:
    """Return a progress display for downloads on a terminal; None when piped or --json.

    The display appears only for transfers that take over a second.
    """
    if as_json or not sys.stderr.isatty():
        return None

    @contextlib.contextmanager
    def show(total: int) -> Iterator[Callable[[int], None]]:
        with ProgressLine(total, sys.stderr) as line:
            yield line.advance

    return show
