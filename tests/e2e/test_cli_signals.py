"""SIGTERM/SIGINT during a migration: the statement stops, the migration is rolled back (or recorded), the lock freed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import LIVENESS_S, LiveCli, db_env, endless_sql, up, write
from tests.support import CliResult, TestDatabase

FIRST = "CREATE TABLE t1 (id INTEGER PRIMARY KEY);\n"
SLOW_HEAD = "-- a table, then a statement that runs for a long time\nCREATE TABLE before_sleep (id INTEGER PRIMARY KEY);\n"


def _slow_sql_running(db: TestDatabase) -> bool:
    """Whether the server shows the long statement of migration 2 as running (always True for SQLite)."""
    if db.dialect == "postgresql":
        rows = db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                        "AND query LIKE '%%pg_sleep%%' AND pid <> pg_backend_pid()", (db.name,))
    elif db.dialect == "mysql":
        rows = db.query("SELECT count(*) FROM information_schema.processlist WHERE db = %s "
                        "AND info LIKE 'SELECT SLEEP%%'", (db.name,))
    else:
        return True
    return bool(rows[0][0])


def _wait_until(predicate, timeout: float = LIVENESS_S, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def interrupt_during_slow_statement(db: TestDatabase, migrations_dir: Path, signum: int) -> CliResult:
    """Run `up` on [t1, before_sleep + endless statement], send `signum` while the endless statement runs."""
    write(migrations_dir, "001_t1.sql", FIRST)
    write(migrations_dir, "002_slow.sql", SLOW_HEAD + endless_sql(db.dialect) + "\n")
    live = LiveCli("up", "--dir", str(migrations_dir), env=db_env(db), cwd=migrations_dir.parent)
    try:
        live.wait_for_event("migration_started", where=lambda e: e.get("version") == "2")
        # Make sure the endless statement (not the CREATE TABLE before it) is the one being interrupted.
        assert _wait_until(lambda: _slow_sql_running(db)), "the slow statement never showed up on the server"
        if db.dialect == "sqlite":
            time.sleep(0.5)
        assert live.proc.poll() is None, "premigrate ended before it could be interrupted"
        live.proc.send_signal(signum)
        return live.finish(timeout=LIVENESS_S)
    finally:
        live.kill()


@pytest.fixture
def sigterm_run(db: TestDatabase, migrations_dir: Path) -> CliResult:
    return interrupt_during_slow_statement(db, migrations_dir, signal.SIGTERM)


class TestSigtermExit:
    def test_exits_143_with_interrupted_event(self, sigterm_run: CliResult) -> None:
        """SIGTERM during a migration exits 143, logs `interrupted` and `lock_released`, and ends with the summary."""
        assert 143 == sigterm_run.returncode, sigterm_run.stderr
        [event] = sigterm_run.find("interrupted")
        assert "SIGTERM" == event["signal"]
        assert 1 == len(sigterm_run.find("lock_released"))
        summary = sigterm_run.events[-1]
        assert ("summary", 143) == (summary["event"], summary["exit_code"])
        assert "Traceback" not in sigterm_run.stderr

    def test_not_reported_as_sql_failure(self, sigterm_run: CliResult) -> None:
        """An interruption is not a failed migration: no `migration_failed` and no `internal_error` event."""
        assert [] == sigterm_run.find("migration_failed")
        assert [] == sigterm_run.find("internal_error")


@pytest.mark.parametrize("dialect", [pytest.param("postgresql", id="postgresql"), pytest.param("sqlite", id="sqlite")])
class TestSigtermRollsBack:
    def test_migration_rolled_back(self, db: TestDatabase, sigterm_run: CliResult) -> None:
        """The CREATE TABLE before the interrupted statement is rolled back and version 2 has no history row."""
        assert 143 == sigterm_run.returncode
        assert "before_sleep" not in db.tables()
        assert [("1", "applied")] == [(r["migration_id"], r["state"]) for r in db.history()]

    def test_lock_free_and_fixed_file_applies(self, db: TestDatabase, migrations_dir: Path,
                                              sigterm_run: CliResult) -> None:
        """Afterwards the lock is free: with the slow statement removed, `up --lock-timeout 5s` exits 0."""
        write(migrations_dir, "002_slow.sql", SLOW_HEAD)

        result = up(db, migrations_dir, "--lock-timeout", "5s")

        assert 0 == result.returncode, result.stderr
        assert "before_sleep" in db.tables()
        assert [("1", "applied"), ("2", "applied")] == [(r["migration_id"], r["state"]) for r in db.history()]


@pytest.mark.parametrize("dialect", [pytest.param("postgresql", id="postgresql")])
class TestSigtermCancelsServerQuery:
    def test_no_pg_sleep_left_running(self, db: TestDatabase, sigterm_run: CliResult) -> None:
        """After premigrate exits, no pg_sleep query of it is still running on the server."""
        assert 143 == sigterm_run.returncode
        # A short grace for the server to process the cancel; an uncancelled pg_sleep(3600) would run for an hour.
        assert _wait_until(lambda: not _slow_sql_running(db), timeout=3.0)


@pytest.mark.parametrize("dialect", [pytest.param("mysql", id="mysql")])
class TestSigtermRecordedOnMariaDb:
    def test_row_records_interrupted_statement(self, db: TestDatabase, sigterm_run: CliResult) -> None:
        """Version 2's row is in_progress with statement 2 started but only statement 1 done, blaming SIGTERM."""
        assert 143 == sigterm_run.returncode
        row = {r["migration_id"]: r for r in db.history()}["2"]
        assert ("in_progress", 1, 2) == (row["state"], row["statements_done"], row["statement_started"])
        assert "SIGTERM" in (row["error"] or "")

    def test_no_sleep_left_running(self, db: TestDatabase, sigterm_run: CliResult) -> None:
        """After premigrate exits, its SLEEP(3600) is no longer running on the server."""
        assert 143 == sigterm_run.returncode
        assert _wait_until(lambda: not _slow_sql_running(db), timeout=3.0)

    def test_next_up_refuses_in_doubt_row(self, db: TestDatabase, migrations_dir: Path,
                                          sigterm_run: CliResult) -> None:
        """The lock is free (no exit 6): the next `up --lock-timeout 5s` exits 5 naming version 2 and statement 2."""
        result = up(db, migrations_dir, "--lock-timeout", "5s")

        assert 5 == result.returncode, result.stderr
        [error] = result.find("error")
        assert "version 2" in error["error"]
        assert "statement 2" in error["error"]


@pytest.mark.parametrize("dialect", [pytest.param("postgresql", id="postgresql")])
class TestSigint:
    def test_sigint_exits_130_and_rolls_back(self, db: TestDatabase, migrations_dir: Path) -> None:
        """SIGINT during a migration exits 130 with an `interrupted` event and the migration rolled back."""
        result = interrupt_during_slow_statement(db, migrations_dir, signal.SIGINT)

        assert 130 == result.returncode, result.stderr
        assert ["SIGINT"] == [e["signal"] for e in result.find("interrupted")]
        assert 130 == result.events[-1]["exit_code"]
        assert "before_sleep" not in db.tables()
        assert ["1"] == [r["migration_id"] for r in db.history()]
