"""Losing the connection mid-run: exit 3 when nothing was recorded (rolled back), 4 when a row was; the next run
converges. SQLite has no connection to lose."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.helpers import LiveCli, db_env, up, write
from tests.support import TestDatabase


@pytest.fixture(params=["postgresql", "mysql"])
def dialect(request: pytest.FixtureRequest) -> str:
    return request.param


SLOW = {"postgresql": "SELECT pg_sleep(30)", "mysql": "SELECT SLEEP(30)"}


def kill_when_running(db: TestDatabase) -> None:
    """The statement is sent right after migration_started; retry until the server shows it."""
    for _ in range(100):
        try:
            kill_premigrate_session(db)
            return
        except AssertionError:
            time.sleep(0.1)
    kill_premigrate_session(db)


def kill_premigrate_session(db: TestDatabase) -> None:
    """Terminate the server session running the slow statement, as a failover or an admin would."""
    if db.dialect == "postgresql":
        rows = db.query("SELECT pid FROM pg_stat_activity WHERE datname = %s AND query LIKE %s "
                        "AND pid <> pg_backend_pid()", (db.name, "%pg_sleep(30)%"))
        assert rows, "premigrate's session was not found"
        db.query("SELECT pg_terminate_backend(%s)", (rows[0][0],))
    else:
        rows = db.query("SELECT id FROM information_schema.processlist WHERE info LIKE %s AND id <> CONNECTION_ID()",
                        ("%SLEEP(30)%",))
        assert rows, "premigrate's session was not found"
        db.query(f"KILL {int(rows[0][0])}")


class TestConnectionLost:
    def test_exit_code_and_state(self, db: TestDatabase, migrations_dir: Path) -> None:
        """PostgreSQL rolls back (exit 3, nothing recorded); MariaDB leaves an in_progress row (exit 4)."""
        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);")
        write(migrations_dir, "002_b.sql", f"CREATE TABLE b (id INTEGER);\n{SLOW[db.dialect]};\nCREATE TABLE c (id INTEGER);")
        run = LiveCli("up", "--dir", str(migrations_dir), env=db_env(db), cwd=migrations_dir.parent)
        run.wait_for_event("migration_started", where=lambda e: e.get("version") == "2")
        kill_when_running(db)
        result = run.finish()
        error = result.find("error")[0]
        assert "lost the connection" in error["error"]
        if db.dialect == "postgresql":
            assert 3 == result.returncode
            assert ["1"] == [r["migration_id"] for r in db.history()]
            assert "b" not in db.tables()
        else:
            assert 4 == result.returncode
            row = db.history()[1]
            assert ("2", "in_progress", 1, 2) == (row["migration_id"], row["state"], row["statements_done"],
                                                 row["statement_started"])

    def test_next_run_converges(self, db: TestDatabase, migrations_dir: Path) -> None:
        """After the loss, the next run applies everything (PostgreSQL) or names the statement in doubt (MariaDB)."""
        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n" + SLOW[db.dialect] + ";")
        run = LiveCli("up", "--dir", str(migrations_dir), env=db_env(db), cwd=migrations_dir.parent)
        run.wait_for_event("migration_started")
        kill_when_running(db)
        run.finish()
        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\nSELECT 1;")
        again = up(db, migrations_dir)
        if db.dialect == "postgresql":
            assert (0, ["1"]) == (again.returncode, [r["migration_id"] for r in db.history()])
        else:
            assert 5 == again.returncode
            assert "statement 2 of 2" in again.find("error")[0]["error"]
