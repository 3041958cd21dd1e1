"""Progress of the plugin user's downloads: one line on stderr, on a terminal only, and
only for transfers that take over a second."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

SHOW_PROGRESS_AFTER = 1.0  # seconds: quicker transfers show no progress at all
_REDRAW = 0.2  # seconds between redraws of the progress line


def _size(count: float) -> str:
    """Return a byte count for people: 512 B, 3.4 kB, 12.0 MB."""
    for unit in ("B", "kB", "MB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


class ProgressLine:
    """One progress line on stderr, drawn only once the transfers have taken a second.

    A thread redraws it, so a transfer that stalls still shows its time passing.
    """

    def __init__(self, total: int, stream: TextIO, label: str = "downloading") -> None:
        self.total = total
        self.stream = stream
        self.label = label
        self.done = 0
        self.drawn = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="plugindex-progress", daemon=True)

    def advance(self, count: int) -> None:
        """Count `count` more bytes received."""
        with self._lock:
            self.done += count

    def __enter__(self) -> ProgressLine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self.drawn:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _run(self) -> None:
        if self._stop.wait(SHOW_PROGRESS_AFTER):
            return
        while True:
            self._draw()
            if self._stop.wait(_REDRAW):
                return

    def _draw(self) -> None:
        with self._lock:
            done = self.done
        elapsed = max(time.monotonic() - self._started, 1e-6)
        percent = f" {100 * done // self.total:3d}%" if self.total else ""
        text = (
            f"\r{self.label}{percent} {_size(done)} of {_size(self.total)}, "
            f"{_size(done / elapsed)}/s, {elapsed:.0f} s"
        )
        with contextlib.suppress(OSError, ValueError):  # a terminal gone: nothing to show
            self.stream.write(text.ljust(60))
            self.stream.flush()
        self.drawn = True


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
