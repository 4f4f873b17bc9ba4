"""held_events: events held back for a moment are written once, in the run's order, before any later event."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from premigrate import held_events, log
from premigrate.held_events import ReleasingLog, hold_or_log


class Recorder:
    def __init__(self, name: str, seen: list[str]) -> None:
        self.name, self.seen = name, seen

    def _record(self, event: str, **fields: Any) -> None:
        self.seen.append(f"{self.name}:{event}")

    debug = info = warning = error = _record

    def log(self, level: int, event: str, **fields: Any) -> None:
        self.seen.append(f"{self.name}:{event}")


@pytest.fixture(autouse=True)
def nothing_held() -> Iterator[None]:
    held_events.release()
    yield
    assert not held_events.pending()


def test_held_events_wait_for_the_release_and_come_out_in_order_once() -> None:
    seen: list[str] = []
    run = ReleasingLog(Recorder("run", seen), holding=True)
    run.hold("migration_applied", version="1")
    run.hold("migration_started", version="2")
    assert [] == seen and held_events.pending()
    held_events.release()
    held_events.release()
    assert ["run:migration_applied", "run:migration_started"] == seen


@pytest.mark.parametrize("method", ["debug", "info", "warning", "error"])
def test_every_event_of_the_runs_own_log_writes_the_held_ones_first(method: str) -> None:
    seen: list[str] = []
    run = ReleasingLog(Recorder("run", seen), holding=True)
    run.hold("migration_started", version="2")
    getattr(run, method)("migration_failed", version="2")
    run.hold("migration_applied", version="3")
    run.log(40, "run_failed")
    assert ["run:migration_started", "run:migration_failed", "run:migration_applied", "run:run_failed"] == seen


def test_a_log_that_does_not_hold_logs_at_once() -> None:
    seen: list[str] = []
    hold_or_log(ReleasingLog(Recorder("run", seen), holding=False), "migration_applied")
    hold_or_log(Recorder("plain", seen), "migration_started")  # (a test's log without the wrapper)
    assert ["run:migration_applied", "plain:migration_started"] == seen
    assert not held_events.pending()


def test_an_event_of_any_other_logger_of_the_chain_writes_the_held_ones_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A lint finding, a signal's event, the run summary: written through log.py's chain, after what the run held
    back before them, and each line once."""
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    log.configure()
    try:
        run = ReleasingLog(log.get_logger(), holding=True)
        run.hold("migration_applied", version="1")
        log.get_logger().warning("signal_received", signal="SIGTERM")
        events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
        assert ["migration_applied", "signal_received"] == events
    finally:
        monkeypatch.undo()
        log.configure()


def test_an_event_that_fails_mid_write_is_not_written_again_and_the_rest_wait() -> None:
    """A signal arriving while a held event is written: that event is not written twice, the ones after it come
    out at the next release, in order."""
    seen: list[str] = []

    def interrupted(event: str) -> None:
        raise KeyboardInterrupt

    held_events.hold(interrupted, "migration_applied", {})
    held_events.hold(Recorder("run", seen).info, "migration_started", {})
    with pytest.raises(KeyboardInterrupt):
        held_events.release()
    assert held_events.pending() and [] == seen
    held_events.release()
    assert ["run:migration_started"] == seen


def test_a_held_events_own_trip_through_the_chain_writes_no_later_one_before_it() -> None:
    """Writing a held event goes through the chain, which releases first: on the releasing thread that must not
    write the next held event ahead of the one being written."""
    seen: list[str] = []

    def through_the_chain(event: str) -> None:
        held_events.release_first(None, "info", {})  # what log.py's chain does first
        seen.append(event)

    held_events.hold(through_the_chain, "migration_applied", {})
    held_events.hold(through_the_chain, "migration_started", {})
    held_events.release()
    assert ["migration_applied", "migration_started"] == seen


def test_later_work_waits_for_the_next_send_where_the_driver_makes_room() -> None:
    calls: list[str] = []
    overlapped = held_events.Later(lambda: calls.append("overlapped") or 1, overlap=True)
    inline = held_events.Later(lambda: calls.append("inline") or 2, overlap=False)
    assert [] == calls and held_events.has_work()
    held_events.run_work()  # what the MySQL driver does once a statement is sent
    assert ["overlapped"] == calls and not held_events.has_work()
    assert (1, 2) == (overlapped.get(), inline.get())
    assert (1, 2) == (overlapped.get(), inline.get())  # computed once each
    assert ["overlapped", "inline"] == calls


def test_later_raises_where_it_is_asked_for_and_a_dropped_one_never_runs() -> None:
    def fails() -> int:
        raise ValueError("bad next file")

    failing = held_events.Later(fails, overlap=True)
    dropped = held_events.Later(lambda: pytest.fail("computed after all"), overlap=True)
    dropped.drop()
    held_events.run_work()  # neither raises here
    with pytest.raises(ValueError, match="bad next file"):
        failing.get()


def test_later_interrupted_by_a_signal_is_computed_again_when_asked_for() -> None:
    attempts: list[int] = []

    def compute() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise KeyboardInterrupt
        return 7

    later = held_events.Later(compute, overlap=True)
    with pytest.raises(KeyboardInterrupt):
        held_events.run_work()
    assert 7 == later.get()
