"""StatementAttempts.execute: the span, the blocker watch and the progress report around one statement, put there
without a context manager each (engine/attempts.py, _run)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from premigrate.engine.attempts import StatementAttempts
from premigrate.engine.lockwait import BlockerWatch, Timeouts
from premigrate.engine.progress import ProgressReport
from premigrate.engine.tracing import Tracer
from premigrate.errors import MigrationFailed
from premigrate.model.migrations import Migration
from premigrate.model.sql import Statement
from tests.unit.fakes import FakeDriver, syntax_error
from tests.unit.test_executor import RecordingLog

STATEMENTS = [Statement("UPDATE t SET a = 1", 1), Statement("DELETE FROM t", 2)]


class Span:
    def __init__(self) -> None:
        self.attributes: dict[str, Any] = {}

    def set(self, name: str, value: Any) -> None:
        self.attributes[name] = value


class RecordingTracer(Tracer):
    """A tracer that counts the statement spans it was asked for."""

    def __init__(self, enabled: bool) -> None:
        super().__init__()
        self.enabled = enabled
        self.spans: list[tuple[str, int | None, Span]] = []

    @contextmanager
    def statement(self, sql: str, *, index: int | None = None) -> Iterator[Span]:  # type: ignore[override]
        span = Span()
        self.spans.append((sql, index, span))
        yield span


class CountingDriver(FakeDriver):
    dialect = "mysql"

    def execute(self, statement: str) -> int | None:
        super().execute(statement)
        return 3

    def session_id(self) -> int:
        return 7


class Watcher(FakeDriver):
    """A watcher session: never asked anything here (no statement runs for half its lock timeout)."""


def attempts(tracer: Tracer, watch: BlockerWatch | None = None,
             progress: ProgressReport | None = None) -> StatementAttempts:
    return StatementAttempts(CountingDriver(), RecordingLog(), time.monotonic,  # type: ignore[arg-type]
                             lambda m: Timeouts(None, None, 0), watch=watch, tracer=tracer, progress=progress)


def migration() -> Migration:
    return Migration(kind="versioned", version=None, description="a", script="1_a.sql",
                     up_sql="UPDATE t SET a = 1;\nDELETE FROM t;\n", up_first_line=1, checksum="c")


def test_no_span_is_asked_for_when_tracing_is_off() -> None:
    tracer = RecordingTracer(enabled=False)
    run = attempts(tracer)
    run.execute(migration(), STATEMENTS, 2, time.monotonic(), recorded=True)
    assert tracer.spans == []
    assert run.row_counts(2) == (3, [None, 3])


def test_a_traced_statement_gets_its_span_with_the_rows_it_affected() -> None:
    tracer = RecordingTracer(enabled=True)
    attempts(tracer).execute(migration(), STATEMENTS, 1, time.monotonic(), recorded=True)
    [(sql, index, span)] = tracer.spans
    assert (sql, index, span.attributes) == ("UPDATE t SET a = 1", 1, {"premigrate.rows_affected": 3})


def test_the_watch_and_the_report_are_armed_while_the_statement_runs_and_cleared_after() -> None:
    watch = BlockerWatch(Watcher())  # type: ignore[arg-type]
    progress = ProgressReport(RecordingLog(), first_after_s=3600.0)  # type: ignore[arg-type]
    seen: list[tuple[Any, Any]] = []
    run = attempts(RecordingTracer(enabled=False), watch, progress)
    driver = run.driver
    assert isinstance(driver, CountingDriver)
    real = driver.execute

    def looking(statement: str) -> int | None:
        seen.append((watch._job, progress._current))
        return real(statement)

    driver.execute = looking  # type: ignore[method-assign]
    try:
        run.execute(migration(), STATEMENTS, 1, time.monotonic(), recorded=True, lock_timeout=600.0)
        [(job, current)] = seen
        assert job is not None and job[0] == 7  # the statement's session, looked up halfway through 600 s
        assert current is not None and current[0][1] == 1  # statement 1 runs
        assert (watch._job, progress._current) == (None, None)

        driver.fail["DELETE FROM t"] = [syntax_error()]
        with pytest.raises(MigrationFailed):
            run.execute(migration(), STATEMENTS, 2, time.monotonic(), recorded=True, lock_timeout=600.0)
        assert (watch._job, progress._current) == (None, None)  # cleared after a failure too
    finally:
        watch.close()


def test_no_watch_without_a_lock_timeout() -> None:
    watch = BlockerWatch(Watcher())  # type: ignore[arg-type]
    try:
        assert watch.arm(CountingDriver(), None, []) is False  # type: ignore[arg-type]
        assert watch._job is None and watch._thread is None
    finally:
        watch.close()
