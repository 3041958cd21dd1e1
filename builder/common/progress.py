"""Progress of transfers on a terminal: one redrawn line, only for transfers over a second.

One mechanism for every download a person waits for: the client's (one line for all
of a command's artifacts, `ProgressLine`) and the build's and the gate's downloads of
authors' artifacts (a named entry per file, `TransferBoard`). A thread redraws the
line, so a transfer that stalls still shows its time passing; quicker transfers show
nothing at all, and nothing is drawn when stderr is not a terminal (`terminal_board`).
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TextIO

SHOW_PROGRESS_AFTER = 1.0  # seconds: quicker transfers show no progress at all
_REDRAW = 0.2  # seconds between redraws of the progress line
_SHOWN = 3  # transfers named on the line at once; the others are counted

# Given a file's name and its expected bytes, a context yielding "n more bytes arrived".
TransferDisplay = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


def size_text(count: float) -> str:
    """Return a byte count for people: 512 B, 3.4 kB, 12.0 MB."""
    for unit in ("B", "kB", "MB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


@dataclass
class _Transfer:
    label: str
    total: int  # bytes expected (0: unknown)
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    shown: bool = False  # drawn at least once: it gets a last line when it ends

    def text(self) -> str:
        """Return `label  42% 1.2 MB of 3.0 MB, 300.0 kB/s, 4 s`."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        percent = f" {100 * self.done // self.total:3d}%" if self.total else ""
        return (
            f"{self.label}{percent} {size_text(self.done)} of {size_text(self.total)}, "
            f"{size_text(self.done / elapsed)}/s, {elapsed:.0f} s"
        )


class TransferBoard:
    """Named transfers, maybe running at once, on one line of `stream`.

    A transfer appears once it has lasted `SHOW_PROGRESS_AFTER` seconds; when a shown
    transfer ends, its last state stays on a line of its own.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._active: list[_Transfer] = []
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._drawn = 0  # characters of the line last drawn: a shorter one must cover it

    @contextlib.contextmanager
    def transfer(self, label: str, total: int) -> Iterator[Callable[[int], None]]:
        """Show one transfer while it runs; yield the function that counts its bytes."""
        entry = _Transfer(label, total)

        def advance(count: int) -> None:
            with self._lock:
                entry.done += count

        with self._lock:
            self._active.append(entry)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="plugindex-progress", daemon=True
                )
                self._thread.start()
        try:
            yield advance
        finally:
            with self._lock:
                self._active.remove(entry)
                if entry.shown:
                    self._line(entry.text())
                    self._write("\n")
                    self._drawn = 0
                    self._draw()
                self._wake.notify_all()

    def _run(self) -> None:
        with self._lock:
            while self._active:
                self._wake.wait(_REDRAW)
                self._draw()
            self._thread = None

    def _draw(self) -> None:
        """Redraw the line with the transfers that have lasted long enough (lock held)."""
        now = time.monotonic()
        due = [e for e in self._active if now - e.started >= SHOW_PROGRESS_AFTER]
        if not due:
            return
        for entry in due:
            entry.shown = True
        text = "; ".join(e.text() for e in due[:_SHOWN])
        if len(due) > _SHOWN:
            text += f"; and {len(due) - _SHOWN} more"
        self._line(text)

    def _line(self, text: str) -> None:
        """Draw `text` over the current line, cut to the terminal's width (lock held)."""
        # One column short of the terminal: a full line would wrap and break the redraw.
        width = max(shutil.get_terminal_size((100, 24)).columns - 1, 20)
        text = text[:width]
        self._write("\r" + text.ljust(min(width, max(self._drawn, 60))))
        self._drawn = len(text)

    def _write(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a terminal gone: nothing to show
            self.stream.write(text)
            self.stream.flush()


class ProgressLine:
    """All of one command's downloads as a single transfer (`downloading  42% …`)."""

    def __init__(self, total: int, stream: TextIO, label: str = "downloading") -> None:
        self._transfer = TransferBoard(stream).transfer(label, total)
        self.advance: Callable[[int], None] = lambda count: None

    def __enter__(self) -> ProgressLine:
        self.advance = self._transfer.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._transfer.__exit__(None, None, None)


def terminal_board() -> TransferDisplay | None:
    """Return a display of named transfers on stderr when it is a terminal, else None."""
    if not sys.stderr.isatty():
        return None
    return TransferBoard(sys.stderr).transfer
