"""Progress of a long statement: a `migration_progress` event every INTERVAL_S while one statement runs.

A migration that rewrites a large table can run for minutes with nothing in the log; an operator (or a log-based
alert) cannot tell a slow statement from a hung run. One reporter thread per run, started with the first statement
and woken only when a statement has run for `first_after_s` (sooner for a person reading console output:
FIRST_AT_A_TERMINAL_S), then every `interval_s`; statements that finish at once cost a notify.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from premigrate.eventlog import EventLog
from premigrate.model.history import migration_fields
from premigrate.model.migrations import Migration
from premigrate.model.sql import Statement

INTERVAL_S = 10.0
FIRST_AT_A_TERMINAL_S = 3.0
SQL_LIMIT = 60
IDLE_EXIT_S = 1.0


class ProgressReport:
    """Reports the statement that is running, for as long as it runs."""

    def __init__(self, log: EventLog, *, interval_s: float = INTERVAL_S, first_after_s: float = INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.interval_s = interval_s
        self.first_after_s = first_after_s
        self.clock = clock
        self.position: tuple[int, int] | None = None  # migration k of N in this run, set by the executor
        self._changed = threading.Condition()
        self._current: tuple[dict[str, Any], float] | None = None
        self._thread: threading.Thread | None = None

    @contextmanager
    def running(self, migration: Migration, index: int, statements: int, statement: Statement) -> Iterator[None]:
        fields: dict[str, Any] = dict(migration_fields(migration), statement=index, statements=statements,
                                      line=statement.line, sql=_abbreviate(statement.text))
        if self.position is not None:
            fields.update(migration=self.position[0], migrations=self.position[1])
        with self._changed:
            self._current = (fields, self.clock())
            if self._thread is None:
                self._thread = threading.Thread(target=self._report, name="premigrate-progress", daemon=True)
                self._thread.start()
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._current = None
                self._changed.notify()

    def _report(self) -> None:
        with self._changed:
            while True:
                current = self._current
                if current is None:
                    # Idle for IDLE_EXIT_S: the run is over (or between migrations); the next statement starts anew.
                    self._changed.wait(IDLE_EXIT_S)
                    if self._current is None:
                        self._thread = None
                        return
                    continue
                fields, started = current
                due = started + self.first_after_s
                while self._current is current:
                    left = due - self.clock()
                    if left > 0:
                        self._changed.wait(left)
                        continue
                    self.log.info("migration_progress", **fields, elapsed_s=round(self.clock() - started))
                    due += self.interval_s


def _abbreviate(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SQL_LIMIT else flat[:SQL_LIMIT - 3] + "..."
