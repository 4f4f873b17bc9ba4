"""Progress of a long statement: a `migration_progress` event every INTERVAL_S while one statement runs.

A migration that rewrites a large table can run for minutes with nothing in the log; an operator (or a log-based
alert) cannot tell a slow statement from a hung run. One reporter thread per run, started with the first statement
and woken only when a statement has run for `first_after_s` (sooner for a person reading console output:
FIRST_AT_A_TERMINAL_S), then every `interval_s`.

A statement that starts or ends does not wake the thread unless it must: the thread always sleeps until a time it
records (`_wakes_at`), and on waking looks at what runs now. A new statement is due later than that time whenever
`first_after_s` is longer than the idle pause, which is every run outside the tests; a statement that ends is noticed
at the next wake. Waking it for each statement cost two thread switches per statement, on a machine whose other
core runs the database.
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
# What runs: the migration, statement index, statement count, the statement, the last one sent with it, position.
_Running = tuple[Migration, int, int, Statement, "int | None", "tuple[int, int] | None"]
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
        self._current: tuple[_Running, float] | None = None  # the running statement, since (clock time)
        self._thread: threading.Thread | None = None
        self._wakes_at = 0.0  # when the thread wakes by itself (clock time); 0 while it is awake

    @contextmanager
    def running(self, migration: Migration, index: int, statements: int, statement: Statement, *,
                last: int | None = None) -> Iterator[None]:
        """Statement `index` of `statements` runs; with `last`, statements `index` to `last` were sent in one
        message (engine/together.py), and which of them runs is not known here: the report names the range."""
        self.begin(migration, index, statements, statement, last=last)
        try:
            yield
        finally:
            self.end()

    def begin(self, migration: Migration, index: int, statements: int, statement: Statement, *,
              last: int | None = None) -> None:
        """running()'s start, for a caller with no context manager around its statement (engine/attempts.py);
        end() must follow."""
        # What the report would say is put together only when one is due: most statements end long before.
        running = (migration, index, statements, statement, last, self.position)
        with self._changed:
            started = self.clock()
            self._current = (running, started)
            if self._thread is None:
                self._thread = threading.Thread(target=self._report, name="premigrate-progress", daemon=True)
                self._thread.start()
            elif started + self.first_after_s < self._wakes_at:
                self._changed.notify()

    def end(self) -> None:
        """No statement runs. Under the lock, so that a report being written now is out before the run moves on."""
        with self._changed:
            self._current = None

    def _report(self) -> None:
        with self._changed:
            while True:
                current = self._current
                if current is None:
                    # Idle for IDLE_EXIT_S: the run is over (or between migrations); the next statement starts anew.
                    self._sleep_until(self.clock() + IDLE_EXIT_S)
                    if self._current is None:
                        self._thread = None
                        return
                    continue
                running, started = current
                fields: dict[str, Any] | None = None
                due = started + self.first_after_s
                while self._current is current:
                    if due > self.clock():
                        self._sleep_until(due)
                        continue
                    fields = fields or _fields(*running)
                    self.log.info("migration_progress", **fields, elapsed_s=round(self.clock() - started))
                    due += self.interval_s


    def _sleep_until(self, when: float) -> None:
        """Wait (the condition's lock held on entry and exit) until `when` (clock time) or a statement is due
        sooner. `when` is the recorded wake itself, not recomputed from a later clock reading, which a preempted
        thread could push past a statement's due time (a needless notify)."""
        self._wakes_at = when
        self._changed.wait(max(0.0, when - self.clock()))
        self._wakes_at = 0.0  # awake: a statement that starts now is seen without a notify


def _fields(migration: Migration, index: int, statements: int, statement: Statement, last: int | None,
            position: tuple[int, int] | None) -> dict[str, Any]:
    fields: dict[str, Any] = dict(migration_fields(migration), statement=index, statements=statements,
                                  line=statement.line, sql=_abbreviate(statement.text))
    if last is not None:
        fields.update(last_statement=last, sent_together=True)
    if position is not None:
        fields.update(migration=position[0], migrations=position[1])
    return fields


def _abbreviate(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SQL_LIMIT else flat[:SQL_LIMIT - 3] + "..."
