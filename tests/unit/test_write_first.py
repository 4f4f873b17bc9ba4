"""The executor's side of a history write carried in one message with the next statement (Driver.hold_update,
OwnWrites.update_row_before_statement): "k done, k+1 started" rides with statement k+1 where the migration's session
can carry it, through the lock session where it cannot, and a held write whose statement is never sent is dropped
before the run records the row itself."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest

from premigrate.config import load_config
from premigrate.drivers.base import HistoryRow
from premigrate.engine.executor import Executor
from premigrate.engine.sessions import HeldLock
from premigrate.errors import Interrupted, MigrationFailed
from premigrate.model.modes import StepShapes
from premigrate.model.planner import Reason, Step
from tests.unit.fakes import FakeDriver, syntax_error
from tests.unit.test_executor import RecordingLog, migration

D = TypeVar("D", bound="CarryingDriver")


class CarryingDriver(FakeDriver):
    """A MySQL session that sends a held write in front of its next statement, as drivers/mysql_write_first.py
    does: the write is made, then the statement runs (and may fail). `before_send` fails a statement before
    anything goes out (a signal arriving in between)."""

    def __init__(self, *, carries: bool = True) -> None:
        super().__init__(transactional_ddl=False, local_timeouts=False)
        self.carries = carries
        self.held: HistoryRow | None = None
        self.before_send: dict[str, BaseException] = {}
        self.statements_sent = 0

    def hold_update(self, row: HistoryRow, since: HistoryRow, lost: Any, prepared: object | None = None) -> bool:
        assert self.held is None, "a second write held before the first went out"
        assert since == self.rows[row.migration_id], "the row as last written is what the table holds"
        if self.carries:
            self.held = row
        return self.carries

    def drop_held_write(self) -> None:
        self.held = None

    def _check(self) -> None:
        super()._check()
        if self.held is not None:  # any other SQL of this session sends the held write first
            row, self.held = self.held, None
            self.rows[row.migration_id] = row
            self.writes.append(("sent first", row))

    def check_later(self, lost: Any) -> bool:
        return False  # the lock session is asked (HeldLock.check)

    def execute(self, statement: str) -> None:
        failure = self.before_send.pop(statement, None)
        if failure is not None:
            raise failure
        self.statements_sent += 1
        if self.held is not None:
            row, self.held = self.held, None
            self.rows[row.migration_id] = row
            self.writes.append(("with the statement", row))
        super().execute(statement)  # its _check finds nothing held any more


class Run:
    def __init__(self, driver: CarryingDriver) -> None:
        self.driver = driver
        self.lock_session = FakeDriver(transactional_ddl=False)
        self.lock_session.rows, self.lock_session.writes = driver.rows, driver.writes  # one history table
        self.log = RecordingLog()
        config = load_config("up", {"database_url": "mysql://u@h/d"}, {})
        # An advisory lock with a keepalive: the progress rows are the lock session's writes (own_session).
        self.lock = HeldLock(self.lock_session, "k", 3600)  # type: ignore[arg-type]
        self.executor = Executor(driver, StepShapes("mysql", False), config,  # type: ignore[arg-type]
                                 self.log, applied_by="host", lock=self.lock)

    def apply(self, *migrations: Any) -> None:
        self.executor.apply([Step(m, Reason.PENDING) for m in migrations])

    def use(self, driver: D) -> D:
        """Run on `driver` instead, as both sessions (the final write is the lock session's), on the same table."""
        driver.rows, driver.writes = self.driver.rows, self.driver.writes
        self.driver = driver
        self.executor = Executor(driver, StepShapes("mysql", False), self.executor.config,  # type: ignore[arg-type]
                                 self.log, applied_by="host", lock=self.lock)
        self.lock.session = driver  # type: ignore[assignment]
        return driver

    def started(self, kind: str) -> list[int]:
        return [row.statement_started for what, row in self.driver.writes
                if what == kind and isinstance(row, HistoryRow)]


@pytest.fixture
def run() -> Iterator[Any]:
    made: list[Run] = []

    def make(**kwargs: Any) -> Run:
        made.append(Run(CarryingDriver(**kwargs)))
        return made[-1]

    yield make
    for r in made:
        r.lock.close()


def test_each_progress_row_goes_out_with_the_statement_it_announces(run: Any) -> None:
    r = run()
    r.apply(migration("1"))
    assert [2, 3] == r.started("with the statement")
    assert [] == r.started("update")[:-1]  # the lock session wrote the final row only
    assert ("applied", 3) == (r.driver.rows["1"].state, r.driver.rows["1"].statements_done)


def test_a_session_that_cannot_carry_it_has_the_lock_session_write_it(run: Any) -> None:
    r = run(carries=False)
    r.apply(migration("1"))
    assert [] == r.started("with the statement")
    assert [2, 3, 3] == r.started("update")
    assert "applied" == r.driver.rows["1"].state


def test_a_failing_statement_leaves_its_row_failed_after_the_write(run: Any) -> None:
    r = run()
    r.driver.fail["CREATE TABLE b (id int)"] = [syntax_error()]
    with pytest.raises(MigrationFailed):
        r.apply(migration("1"))
    row = r.driver.rows["1"]
    assert ("failed", 1, 2) == (row.state, row.statements_done, row.statement_started)
    assert [2] == r.started("with the statement")


def test_a_write_whose_statement_is_never_sent_is_dropped_before_the_row_is_recorded(run: Any) -> None:
    """A signal before statement 2 goes out: the run records the row itself, whole, through the lock session, and
    the held write is forgotten, so that nothing sent later on the migration's session writes over that record."""
    r = run()
    r.driver.before_send["CREATE TABLE b (id int)"] = Interrupted(signal.SIGTERM)
    with pytest.raises(Interrupted):
        r.apply(migration("1"))
    assert r.driver.held is None
    row = r.driver.rows["1"]
    assert (1, 2) == (row.statements_done, row.statement_started)
    assert "during statement 2" in (row.error or "")
    assert ["CREATE TABLE a (id int)"] == r.driver.effects


class PreparingDriver(CarryingDriver):
    """Makes each write ahead (a token naming its rows) and records what hold_update and finish_and_start got."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[tuple[str, Any]] = []
        self.received: list[tuple[str, Any]] = []

    def prepare_update(self, row: HistoryRow, since: HistoryRow) -> object:
        self.prepared.append(("update", (row, since)))
        return ("update", row, since)

    def prepare_finish(self, final: HistoryRow, ahead: HistoryRow) -> object:
        self.prepared.append(("finish", (final, ahead)))
        return ("finish", final, ahead)

    def hold_update(self, row: HistoryRow, since: HistoryRow, lost: Any, prepared: object | None = None) -> bool:
        self.received.append(("update", prepared))
        return super().hold_update(row, since, lost)

    def finish_and_start(self, final: HistoryRow, ahead: HistoryRow, draft: object | None = None) -> None:
        self.received.append(("finish", draft))
        super().finish_and_start(final, ahead)


def test_the_writes_made_while_a_statement_runs_reach_the_driver_with_their_rows(run: Any) -> None:
    """The rows written after statement k are bound while it runs (Driver.prepare_update, prepare_finish) and the
    draft goes with exactly those rows; the final row's draft differs from the row sent only in applied_at and
    execution_ms, which are known once the last statement is done."""
    r = run()
    driver = r.use(PreparingDriver())
    r.apply(migration("1"), migration("2"))
    updates = [p for kind, p in driver.received if kind == "update"]
    assert 4 == len(updates) and all(p is not None and p[0] == "update" for p in updates)
    finish = [d for kind, d in driver.received if kind == "finish"]
    assert 1 == len(finish) and finish[0] is not None
    final = driver.rows["1"]
    _, drafted, ahead = finish[0]
    assert drafted == final.evolve(applied_at=drafted.applied_at, execution_ms=drafted.execution_ms)
    assert ("2", 1) == (ahead.migration_id, ahead.statement_started)


class FailingToPrepare(CarryingDriver):
    """A driver whose writes made ahead fail (a bug there): they only save time."""

    def prepare_update(self, row: HistoryRow, since: HistoryRow) -> object:
        raise RuntimeError("a bug in prepare_update")

    def prepare_finish(self, final: HistoryRow, ahead: HistoryRow) -> object:
        raise RuntimeError("a bug in prepare_finish")


def test_a_write_that_cannot_be_made_ahead_is_made_as_usual(run: Any) -> None:
    """Making a write ahead runs while the statement before it runs: its failure must not fail that statement,
    which succeeded, nor leave its row saying it is in doubt."""
    r = run()
    driver = r.use(FailingToPrepare())
    r.apply(migration("1"), migration("2"))
    assert [("applied", 3), ("applied", 3)] == [(driver.rows[i].state, driver.rows[i].statements_done)
                                                for i in ("1", "2")]
    assert [2, 3, 2, 3] == r.started("with the statement")
