"""drivers/mysql_write_first.py on MariaDB: a history write held by hold_update() goes out in one message with the
next statement, behind the runner-lock check; the statement runs only after the check passed and the write was
made; a write that fails keeps the statement from running and is raised as premigrate's own; a session a statement
may have changed, or one in an open transaction, does not carry the write; anything else the session sends first
sends the held write first. And `up` records a migration the same way with it."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from premigrate.cli import main
from premigrate.drivers import driver_class
from premigrate.drivers.base import STATE_IN_PROGRESS, DriverSettings, HistoryRow, SqlError
from premigrate.errors import LockLost
from premigrate.model.dsn import parse_url
from tests.support import TestDatabase

KEY = "write-first"


def _row(**changes: Any) -> HistoryRow:
    row = HistoryRow(migration_id="1", version="1", description="d", kind="versioned", script="1_d.sql",
                     checksum="sha256:00", applied_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                     execution_ms=0, applied_by="me", state=STATE_IN_PROGRESS, statements_done=0,
                     statements_total=2, statement_started=1, premigrate_version="0.1.0")
    return row.evolve(**changes)


class _Sessions:
    """A lock session holding the lock and a migration session whose writes are guarded by it, as `up` has them;
    the history table holds the row "statement 1 started"."""

    def __init__(self, db: TestDatabase) -> None:
        self.db = db
        self.opened: list[Any] = []
        self.holder, self.runner = self._connect(), self._connect()
        assert self.holder.try_lock(KEY)
        self.runner.guard_writes(KEY, self.holder.session_id())
        self.runner.ensure_history_table()
        self.first = _row()
        self.runner.insert_row(self.first)
        self.second = self.first.evolve(statements_done=1, statement_started=2, statement_hashes=("prefix:1:ab",))

    def _connect(self) -> Any:
        driver = driver_class("mysql").connect(parse_url(self.db.url), DriverSettings(table="premigrate_history"))
        self.opened.append(driver)
        return driver

    def stored(self) -> dict[str, Any]:
        columns = ("applied_by", "statements_done", "statement_started", "statement_hashes")
        return dict(zip(columns, self.db.query(f"SELECT {', '.join(columns)} FROM premigrate_history")[0]))

    def close(self) -> None:
        for driver in self.opened:
            driver.close()


@pytest.fixture
def sessions(mariadb: TestDatabase):  # type: ignore[no-untyped-def]
    made = _Sessions(mariadb)
    yield made
    made.close()


def _lost() -> LockLost:
    return LockLost("lost")


def test_the_write_goes_out_with_the_statement_in_one_message(sessions: _Sessions) -> None:
    runner = sessions.runner
    assert runner.hold_update(sessions.second, sessions.first, _lost)
    sent = runner.statements_sent
    runner.execute("CREATE TABLE t2 (id INT)")
    assert sent + 1 == runner.statements_sent  # one round trip for the check, the write and the statement
    stored = sessions.stored()
    assert (1, 2, "prefix:1:ab") == (stored["statements_done"], stored["statement_started"],
                                     stored["statement_hashes"])
    assert "t2" in sessions.db.tables()
    runner.execute("CREATE TABLE t3 (id INT)")  # nothing held any more: the statement alone
    assert sent + 2 == runner.statements_sent


def test_only_the_changed_columns_are_written(sessions: _Sessions) -> None:
    """The row holds what `since` says, written by this run: a column the write does not change is not sent (seen
    here by a value put there behind the run's back, which a write of the whole row would overwrite)."""
    sessions.db.execute("UPDATE premigrate_history SET applied_by = 'elsewhere'")
    assert sessions.runner.hold_update(sessions.second, sessions.first, _lost)
    sessions.runner.execute("CREATE TABLE t2 (id INT)")
    assert ("elsewhere", 2) == (sessions.stored()["applied_by"], sessions.stored()["statement_started"])


def test_a_lost_lock_keeps_the_write_and_the_statement_from_running(sessions: _Sessions) -> None:
    runner = sessions.runner
    _lose_the_lock(sessions)
    assert runner.hold_update(sessions.second, sessions.first, _lost)
    with pytest.raises(LockLost):
        runner.execute("CREATE TABLE t2 (id INT)")
    assert "t2" not in sessions.db.tables()
    assert 1 == sessions.stored()["statement_started"]
    assert [(1,)] == runner.fetch("SELECT 1")  # the session is in step after the refused message


def test_a_failed_write_is_premigrates_own_and_the_statement_does_not_run(sessions: _Sessions) -> None:
    runner = sessions.runner
    assert runner.hold_update(sessions.second, sessions.first, _lost)
    sessions.db.execute("RENAME TABLE premigrate_history TO moved_away")
    with pytest.raises(SqlError) as failed:
        runner.execute("CREATE TABLE t2 (id INT)")
    assert failed.value.own_write
    assert "premigrate_history" in failed.value.message
    assert "t2" not in sessions.db.tables()
    assert [(1,)] == runner.fetch("SELECT 1")


def test_a_failing_statement_fails_as_itself_after_the_write(sessions: _Sessions) -> None:
    runner = sessions.runner
    assert runner.hold_update(sessions.second, sessions.first, _lost)
    with pytest.raises(SqlError) as failed:
        runner.execute("CREATE TABLE no_such_db.t2 (id INT)")
    assert not failed.value.own_write
    assert "1049" == failed.value.code  # unknown database: the statement's own error
    assert 2 == sessions.stored()["statement_started"]  # the write before it was made


@pytest.mark.parametrize("statement", ["SET @x = 1", "START TRANSACTION", "SET autocommit = 0"])
def test_a_session_a_statement_may_have_changed_does_not_carry_it(sessions: _Sessions, statement: str) -> None:
    runner = sessions.runner
    runner.execute(statement)
    assert not runner.hold_update(sessions.second, sessions.first, _lost)


def test_without_a_lock_to_check_against_it_is_not_held(sessions: _Sessions) -> None:
    sessions.runner.guard_writes(KEY, None)
    assert not sessions.runner.hold_update(sessions.second, sessions.first, _lost)


def _lose_the_lock(sessions: _Sessions) -> None:
    sessions.holder.close()
    deadline = time.monotonic() + 30
    while sessions.db.query("SELECT IS_USED_LOCK(%s)", (sessions.runner._lock_name(KEY),))[0][0] is not None:
        assert time.monotonic() < deadline, "the server kept a closed session's lock"
        time.sleep(0.05)


def test_other_sql_sends_the_held_write_behind_its_lock_check(sessions: _Sessions) -> None:
    """Sent on its own, the write still goes after its check: with the lock lost, neither it nor the other SQL
    runs."""
    assert sessions.runner.hold_update(sessions.second, sessions.first, _lost)
    _lose_the_lock(sessions)
    with pytest.raises(LockLost):
        sessions.runner.fetch("SELECT 1")
    assert 1 == sessions.stored()["statement_started"]


def test_other_sql_sends_the_held_write_first(sessions: _Sessions) -> None:
    runner = sessions.runner
    assert runner.hold_update(sessions.second, sessions.first, _lost)
    assert [(2,)] == runner.fetch("SELECT statement_started FROM premigrate_history")
    runner.execute("CREATE TABLE t2 (id INT)")
    assert 2 == sessions.stored()["statement_started"]


def test_a_second_hold_sends_the_first_write_first(sessions: _Sessions) -> None:
    runner = sessions.runner
    third = sessions.second.evolve(statements_done=2, statement_started=3)
    assert runner.hold_update(sessions.second, sessions.first, _lost)
    assert runner.hold_update(third, sessions.second, _lost)
    assert 2 == sessions.stored()["statement_started"]  # the first write went out on its own
    runner.execute("CREATE TABLE t3 (id INT)")
    assert (2, 3) == (sessions.stored()["statements_done"], sessions.stored()["statement_started"])


def test_a_dropped_write_is_never_sent(sessions: _Sessions) -> None:
    runner = sessions.runner
    assert runner.hold_update(sessions.second, sessions.first, _lost)
    runner.drop_held_write()
    runner.execute("CREATE TABLE t2 (id INT)")
    assert 1 == sessions.stored()["statement_started"]


def test_up_stops_before_a_statement_whose_write_failed(mariadb: TestDatabase, tmp_path: Path,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    """A trigger refuses the write "statement 1 done, 2 started" of the second migration: `up` fails with that
    error, as premigrate's own (not as statement 2's), statement 2 never ran, and the row says statement 1 is in
    doubt, which is true of the record (its end was not written)."""
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001_a.sql").write_text("CREATE TABLE a1 (id INT);\nCREATE TABLE a2 (id INT);\n")
    assert 0 == main(["up", "--dir", str(folder), "--log-format", "json"], {"DATABASE_URL": mariadb.url})
    assert [(2, 2, "applied")] == [(r["statements_done"], r["statement_started"], r["state"])
                                   for r in mariadb.history()]
    mariadb.execute("CREATE TRIGGER refuse BEFORE UPDATE ON premigrate_history FOR EACH ROW "
                    "IF NEW.migration_id = '2' AND NEW.statements_done = 1 THEN "
                    "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'refused by a trigger'; END IF")
    (folder / "002_b.sql").write_text("CREATE TABLE b1 (id INT);\nCREATE TABLE b2 (id INT);\n")
    capfd.readouterr()
    code = main(["up", "--dir", str(folder), "--log-format", "json"], {"DATABASE_URL": mariadb.url})
    events = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    assert 0 != code
    assert "b1" in mariadb.tables() and "b2" not in mariadb.tables()
    assert not [e for e in events if e["event"] == "migration_failed" and e.get("statement") == 2]
    assert any("refused by a trigger" in json.dumps(e) for e in events)
    second = [r for r in mariadb.history() if r["migration_id"] == "2"][0]
    assert (0, 1) == (second["statements_done"], second["statement_started"])
