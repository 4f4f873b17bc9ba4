"""A live line at a terminal: one line below the log lines, rewritten in place (a fleet's progress).

The console log's stream at a terminal is a LiveLineStream. Until something shows a line it only passes writes
through. While a line is shown, every write first erases it (carriage return, erase to the end of the line), and the
line is drawn again once the output is back at the start of a line, so a log line never starts after, or is cut by,
the live line. A log line reaches the stream in pieces (print() writes the text, then the newline): the line is
never drawn between them. Never used when stderr is not a terminal, the log is JSON, or TERM is dumb (a terminal
that does not understand the erase sequence): the CLI decides (cli.main).
"""

from __future__ import annotations

import os
import threading
from typing import Any, TextIO

# Carriage return, then ECMA-48 EL (erase in line, 0: from the cursor to the end of the line).
ERASE = "\r\x1b[K"
DEFAULT_COLUMNS = 80


class LiveLineStream:
    """A text stream that keeps one live line below what is written to it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        # Reentrant: a signal handler runs in the main thread and may interrupt it while it holds the lock.
        self._lock = threading.RLock()
        self._line: str | None = None
        self._drawn = False
        self._at_line_start = True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def write(self, text: str) -> int:
        with self._lock:
            self._erase()
            written = self._stream.write(text)
            if text:
                self._at_line_start = text.endswith("\n")
            self._draw()
            return written

    def flush(self) -> None:
        with self._lock:
            self._stream.flush()

    def show(self, line: str) -> None:
        """Show `line` in place of the one shown (drawn now, or after the log line being written)."""
        with self._lock:
            line = _fit(line, self._columns())
            if line == self._line and self._drawn:
                return
            self._erase()
            self._line = line
            self._draw()
            self._stream.flush()

    def clear(self) -> None:
        """Erase the line for good: what comes next starts where it was."""
        acquired = self._lock.acquire(timeout=0.5)  # from a signal handler: never wait on a stuck writer for long
        try:
            self._erase()
            self._line = None
            self._stream.flush()
        except (OSError, ValueError):  # a terminal gone: nothing left to erase
            pass
        finally:
            if acquired:
                self._lock.release()

    @property
    def line(self) -> str | None:
        return self._line

    def _erase(self) -> None:
        if self._drawn:
            self._stream.write(ERASE)
            self._drawn = False

    def _draw(self) -> None:
        if self._line is not None and self._at_line_start:
            self._stream.write(self._line)
            self._drawn = True

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self._stream.fileno()).columns or DEFAULT_COLUMNS
        except (OSError, ValueError, AttributeError):
            return DEFAULT_COLUMNS


def _fit(line: str, columns: int) -> str:
    """One row of the terminal: a line that wraps could not be erased by going back to the start of the row."""
    width = max(columns - 1, 10)
    return line if len(line) <= width else line[:width - 1] + "…"
