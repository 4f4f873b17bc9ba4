"""migration_progress: reported while one statement runs long, never for one that finishes at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from premigrate.engine import progress
from premigrate.engine.progress import ProgressReport
from premigrate.model.migrations import load_migrations

LIVENESS_S = 30.0


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.seen = threading.Event()

    def info(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))
        if len(self.events) >= 2:
            self.seen.set()


def migration(tmp_path: Path) -> Any:
    (tmp_path / "001_slow.sql").write_text("UPDATE big SET x = 1;\n")
    return load_migrations(tmp_path).versioned[0]


class TestProgressReport:
    def test_long_statement_is_reported_until_it_ends(self, tmp_path: Path) -> None:
        """A statement still running after first_after_s is reported, then every interval_s, with its position."""
        log = Recorder()
        report = ProgressReport(log, interval_s=0.01, first_after_s=0.01)
        report.position = (2, 3)
        m = migration(tmp_path)
        with report.running(m, 1, 1, _statement()):
            assert log.seen.wait(LIVENESS_S)
        count = len(log.events)
        event, fields = log.events[0]
        assert ("migration_progress", 2, 3, 1, "UPDATE big SET x = 1;") == (
            event, fields["migration"], fields["migrations"], fields["statement"], fields["sql"])
        threading.Event().wait(0.1)
        assert count == len(log.events)  # nothing after the statement ended

    def test_a_quick_statement_costs_nothing_a_report_would_say(self, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        """The report's fields (the migration's, the abbreviated SQL) are put together only when a report is due:
        most statements end long before, and for each of them that was work between two round trips."""
        abbreviated: list[str] = []
        real = progress._abbreviate  # noqa: SLF001
        monkeypatch.setattr(progress, "_abbreviate", lambda text: abbreviated.append(text) or real(text))
        report = ProgressReport(Recorder(), first_after_s=60.0)
        m = migration(tmp_path)
        for index in range(1, 4):
            with report.running(m, index, 3, _statement()):
                pass
        assert [] == abbreviated

    def test_the_report_names_the_position_the_statement_started_at(self, tmp_path: Path) -> None:
        """The executor moves the position on to the next migration; a report still due for a statement of this one
        names this one's."""
        log = Recorder()
        report = ProgressReport(log, interval_s=0.01, first_after_s=0.05)
        report.position = (1, 2)
        with report.running(migration(tmp_path), 1, 1, _statement()):
            report.position = (2, 2)
            assert log.seen.wait(LIVENESS_S)
        assert {(1, 2)} == {(fields["migration"], fields["migrations"]) for _, fields in log.events}

    def test_statements_sent_together_are_reported_as_a_range(self, tmp_path: Path) -> None:
        """A migration sent in one message (engine/together.py): the report names statements 1 to n, and says they
        were sent together, since which of them runs is not known on the client."""
        log = Recorder()
        report = ProgressReport(log, interval_s=0.01, first_after_s=0.01)
        with report.running(migration(tmp_path), 1, 4, _statement(), last=4):
            assert log.seen.wait(LIVENESS_S)
        _, fields = log.events[0]
        assert (1, 4, 4, True) == (fields["statement"], fields["statements"], fields["last_statement"],
                                   fields["sent_together"])

    def test_quick_statement_is_not_reported(self, tmp_path: Path) -> None:
        """A statement that ends before first_after_s leaves no event."""
        log = Recorder()
        report = ProgressReport(log, interval_s=3600, first_after_s=3600)
        m = migration(tmp_path)
        for _ in range(100):
            with report.running(m, 1, 1, _statement()):
                pass
        assert [] == log.events


def _statement() -> Any:
    from premigrate.model.sql import Statement

    return Statement("UPDATE big SET x = 1;", 1)


class CountingCondition(threading.Condition):
    """A condition that counts how often a waiter is woken."""

    def __init__(self) -> None:
        super().__init__()
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


class TestThreadWakeups:
    """A statement that starts or ends does not wake the reporter thread unless it is due before the thread's own
    wake: two thread switches per statement were most of a short migration's overhead beside the database."""

    def test_quick_statements_do_not_wake_the_progress_thread(self, tmp_path: Path) -> None:
        report = ProgressReport(Recorder(), interval_s=3600, first_after_s=3600)
        report._changed = CountingCondition()  # noqa: SLF001 - the wakeups are what is measured
        m = migration(tmp_path)
        for _ in range(100):
            with report.running(m, 1, 1, _statement()):
                pass
        assert 0 == report._changed.notified  # noqa: SLF001

    def test_a_statement_due_sooner_than_the_threads_wake_still_wakes_it(self, tmp_path: Path) -> None:
        """The idle thread sleeps IDLE_EXIT_S; a statement due sooner is reported on time, not at that wake."""
        log = Recorder()
        report = ProgressReport(log, interval_s=0.01, first_after_s=0.01)
        report._changed = CountingCondition()  # noqa: SLF001
        m = migration(tmp_path)
        with report.running(m, 1, 1, _statement()):
            pass
        threading.Event().wait(0.2)  # the thread is now idle, asleep for IDLE_EXIT_S
        with report.running(m, 1, 1, _statement()):
            assert log.seen.wait(LIVENESS_S)
        assert report._changed.notified >= 1  # noqa: SLF001

    def test_quick_statements_do_not_wake_the_blocker_watch(self) -> None:
        from premigrate.engine.lockwait import BlockerWatch

        class Session:
            def session_id(self) -> int:
                return 42

            def blockers(self, session: int) -> list[dict[str, Any]]:
                return [{"pid": 7}]

        watch = BlockerWatch(Session())  # type: ignore[arg-type]
        watch._cond = CountingCondition()  # noqa: SLF001
        for _ in range(100):
            with watch.watching(Session(), 10.0) as found:  # type: ignore[arg-type]
                pass
        assert 0 == watch._cond.notified  # noqa: SLF001
        assert [] == found  # a statement that ended at once is never looked up
        asleep = time.monotonic() + LIVENESS_S  # the thread (started by the first statement) has gone to sleep
        while watch._wakes_at == 0.0 and time.monotonic() < asleep:  # noqa: SLF001
            threading.Event().wait(0.01)
        with watch.watching(Session(), 0.2) as found:  # due sooner than the thread's wake: it is woken
            threading.Event().wait(1.0)
        assert [{"pid": 7}] == found
        assert 1 == watch._cond.notified  # noqa: SLF001
        watch.close()
