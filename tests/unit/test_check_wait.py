"""check --wait: poll read-only until nothing is pending, or the timeout decides as a plain check would."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from premigrate.commands.status import POLL_S, wait_until_current
from premigrate.errors import DatabaseUnavailable, ValidationFailed
from premigrate.model.planner import Plan, Problem, Reason, Step


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.events.append((level, event, fields))

    def names(self) -> list[str]:
        return [e[1] for e in self.events]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pending(*ids: str) -> Plan:
    return Plan(steps=[Step(SimpleNamespace(id=i), Reason.NEW) for i in ids])  # type: ignore[arg-type]


CURRENT = Plan()
IN_DOUBT = Plan(problems=[Problem("in_doubt", "2", "002 is in progress")])


def readings(*plans: Plan | Exception):
    queue = list(plans)

    def read(left: float | None = None) -> Plan:
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item
    return read


class TestCheckWait:
    def test_each_reading_waits_no_longer_than_the_time_left(self) -> None:
        """The database is waited for within --timeout: each reading is told the time left (it took --wait-timeout,
        60 s, when --timeout was 2 s)."""
        clock = FakeClock()
        given: list[float | None] = []

        def read(left: float | None) -> Plan:
            given.append(left)
            clock.now += 1.5
            raise DatabaseUnavailable("not yet")

        with pytest.raises(DatabaseUnavailable):
            wait_until_current(RecordingLog(), read, 5.0, clock=clock, sleep=clock.sleep)
        assert [5.0, 1.5] == given[:2] and all(left is not None and left >= 0 for left in given)

    def test_pending_then_current(self) -> None:
        """Pending on the first two readings, current on the third: exit 0 after two polls."""
        log, clock = RecordingLog(), FakeClock()
        code = wait_until_current(log, readings(pending("1", "2"), pending("2"), CURRENT), 60.0, clock=clock,
                                  sleep=clock.sleep)
        assert (0, [POLL_S, POLL_S]) == (code, clock.sleeps)
        assert ["check_waiting", "check_waiting", "up_to_date"] == log.names()

    def test_timeout_while_pending_exits_7(self) -> None:
        """Still pending at the timeout: exit 7, and the last sleep stops at the deadline."""
        log, clock = RecordingLog(), FakeClock()
        code = wait_until_current(log, readings(pending("1")), 5.0, clock=clock, sleep=clock.sleep)
        assert (7, 5.0) == (code, sum(clock.sleeps))
        assert ["check_waiting", "check_wait_timed_out", "pending"] == log.names()

    def test_run_in_progress_is_waited_for(self) -> None:
        """A row in doubt (a statement running) is waited for, not a failure while time remains."""
        log, clock = RecordingLog(), FakeClock()
        assert 0 == wait_until_current(log, readings(IN_DOUBT, CURRENT), 60.0, clock=clock, sleep=clock.sleep)

    def test_problem_at_the_timeout_exits_5(self) -> None:
        """Still in doubt at the timeout: exit 5, as a plain check."""
        clock = FakeClock()
        with pytest.raises(ValidationFailed):
            wait_until_current(RecordingLog(), readings(IN_DOUBT), 4.0, clock=clock, sleep=clock.sleep)

    def test_unreachable_then_current(self) -> None:
        """An unreachable database is waited for; at the timeout its error stands (exit 3)."""
        clock = FakeClock()
        down = DatabaseUnavailable("cannot connect")
        assert 0 == wait_until_current(RecordingLog(), readings(down, CURRENT), 60.0, clock=clock, sleep=clock.sleep)
        with pytest.raises(DatabaseUnavailable):
            late = FakeClock()
            wait_until_current(RecordingLog(), readings(down), 3.0, clock=late, sleep=late.sleep)
