"""DDL lock timeouts with retries, statement timeouts, and the per-file directives that override them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import LIVENESS_S, LiveCli, db_env, up, write
from tests.support import TestDatabase

TABLE = "CREATE TABLE accounts (id INTEGER PRIMARY KEY);\n"
ALTER = "ALTER TABLE accounts ADD COLUMN note VARCHAR(20);\n"


class Blocker:
    """A second session that read `accounts` in a transaction it keeps open: its lock conflicts with ALTER TABLE."""

    def __init__(self, db: TestDatabase) -> None:
        self.db = db
        if db.dialect == "postgresql":
            import psycopg

            self.conn: Any = psycopg.connect(db.url, autocommit=False, application_name="report-job")
            self.conn.execute("SELECT count(*) FROM accounts").fetchall()
            self.id = self.conn.info.backend_pid
        else:
            import pymysql

            from tests.support import _mysql_connect

            self.conn = _mysql_connect(db.url)
            assert isinstance(self.conn, pymysql.connections.Connection)
            with self.conn.cursor() as cur:
                cur.execute("START TRANSACTION")
                cur.execute("SELECT count(*) FROM accounts")
                cur.fetchall()
            self.id = self.conn.thread_id()

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def _columns(db: TestDatabase) -> set[str]:
    if db.dialect == "postgresql":
        rows = db.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'accounts'")
    else:
        rows = db.query("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                        "AND table_name = 'accounts'")
    return {r[0].lower() for r in rows}


@pytest.fixture
def accounts(db: TestDatabase, migrations_dir: Path) -> Iterator[Blocker]:
    """Version 1 (the table) applied; then a session holds a lock on it until the test releases it."""
    write(migrations_dir, "001_accounts.sql", TABLE)
    assert 0 == up(db, migrations_dir).returncode
    write(migrations_dir, "002_note.sql", ALTER)
    blocker = Blocker(db)
    try:
        yield blocker
    finally:
        try:
            blocker.release()
        except Exception:  # noqa: BLE001 - already released by the test
            pass


# MariaDB counts lock_wait_timeout in whole seconds.
TIMEOUT = {"postgresql": "200ms", "mysql": "1s"}


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
class TestLockRetries:
    def test_retries_until_the_blocker_goes(self, db: TestDatabase, migrations_dir: Path,
                                            accounts: Blocker) -> None:
        """The ALTER times out, is retried (each retry logged with the blocker), and succeeds once the lock is free."""
        live = LiveCli("up", "--dir", str(migrations_dir), "--ddl-lock-timeout", TIMEOUT[db.dialect],
                       "--lock-retries", "30", env=db_env(db), cwd=migrations_dir.parent)
        try:
            first = live.wait_for_event("lock_retry")
            accounts.release()
            result = live.finish(timeout=LIVENESS_S)
        finally:
            live.kill()

        assert 0 == result.returncode, result.stderr
        assert "note" in _columns(db)
        assert ["applied", "applied"] == [r["state"] for r in db.history()]
        assert (2, "2", 1) == (first["attempt"], first["version"], first["statement"])
        named = [b.get("pid", b.get("connection_id")) for b in first["blockers"]]
        assert accounts.id in named, first

    def test_gives_up_after_the_retries_naming_the_blocker(self, db: TestDatabase, migrations_dir: Path,
                                                           accounts: Blocker) -> None:
        """With the session kept open: exit 4 after 1 + N attempts; the message names the blocking session."""
        result = up(db, migrations_dir, "--ddl-lock-timeout", TIMEOUT[db.dialect], "--lock-retries", "2")

        assert 4 == result.returncode, result.stderr
        assert [2, 3] == [e["attempt"] for e in result.find("lock_retry")]
        [error] = result.find("error")
        assert "gave up after 3 attempt(s)" in error["error"]
        who = f"pid {accounts.id}" if db.dialect == "postgresql" else f"connection {accounts.id}"
        assert who in error["error"], error["error"]
        if db.dialect == "postgresql":
            assert "report-job" in error["error"]
        assert "note" not in _columns(db)
        assert ["1"] == [r["migration_id"] for r in db.history() if r["state"] == "applied"]
        assert "Traceback" not in result.stderr

    def test_directive_overrides_the_retries(self, db: TestDatabase, migrations_dir: Path,
                                             accounts: Blocker) -> None:
        """`-- premigrate:lock-retries 0` in the file: the first lock timeout is final, whatever --lock-retries says."""
        write(migrations_dir, "002_note.sql", "-- premigrate:lock-retries 0\n" + ALTER)

        result = up(db, migrations_dir, "--ddl-lock-timeout", TIMEOUT[db.dialect], "--lock-retries", "10")

        assert 4 == result.returncode, result.stderr
        assert [] == result.find("lock_retry")
        assert "gave up after 1 attempt(s)" in result.find("error")[0]["error"]


@pytest.mark.parametrize("dialect", ["postgresql"])
class TestLockTimeoutDirective:
    def test_file_timeout_outlasts_a_short_blocker(self, db: TestDatabase, migrations_dir: Path,
                                                   accounts: Blocker) -> None:
        """`-- premigrate:ddl-lock-timeout 30s` lets the ALTER wait out a blocker that leaves after a second, with
        no retry, although the run's own timeout is 100ms and retries are off."""
        write(migrations_dir, "002_note.sql", "-- premigrate:ddl-lock-timeout 30s\n" + ALTER)
        timer = threading.Timer(1.0, accounts.release)
        timer.start()
        try:
            result = up(db, migrations_dir, "--ddl-lock-timeout", "100ms", "--lock-retries", "0")
        finally:
            timer.cancel()

        assert 0 == result.returncode, result.stderr
        assert [] == result.find("lock_retry")
        assert "note" in _columns(db)

    def test_plan_shows_the_file_timeouts(self, db: TestDatabase, migrations_dir: Path, accounts: Blocker) -> None:
        """`plan` prints the DDL lock timeout and retries that each file will run with."""
        write(migrations_dir, "002_note.sql", "-- premigrate:ddl-lock-timeout 30s\n-- premigrate:lock-retries 3\n"
              + ALTER)
        write(migrations_dir, "003_more.sql", "ALTER TABLE accounts ADD COLUMN more INTEGER;\n")

        result = up(db, migrations_dir, "--dry-run", "--ddl-lock-timeout", "2s", "--statement-timeout", "1m")

        assert 7 == result.returncode, result.stderr
        assert "DDL lock 30s per attempt, 3 retries; statement 60s" in result.stdout
        assert "DDL lock 2s per attempt, 10 retries; statement 60s" in result.stdout


class TestStatementTimeout:
    @pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
    def test_long_statement_is_stopped(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--statement-timeout stops a statement that runs too long: exit 4, the migration rolled back."""
        endless = ("SELECT pg_sleep(60);" if db.dialect == "postgresql" else
                   "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;")
        write(migrations_dir, "001_slow.sql", TABLE + endless + "\n")

        result = up(db, migrations_dir, "--statement-timeout", "500ms")

        assert 4 == result.returncode, result.stderr
        [failed] = result.find("migration_failed")
        assert 2 == failed["statement"]
        assert "accounts" not in db.tables()
        assert [] == [r for r in db.history() if r["state"] == "applied"]

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_directive_zero_lifts_the_limit(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`-- premigrate:statement-timeout 0` lets one known-slow file run past the run's statement timeout, and the
        next file is bounded again."""
        write(migrations_dir, "001_slow.sql", "-- premigrate:statement-timeout 0\nSELECT pg_sleep(1.5);\n")
        write(migrations_dir, "002_bounded.sql", "SELECT pg_sleep(1.5);\n")

        result = up(db, migrations_dir, "--statement-timeout", "700ms")

        assert 4 == result.returncode, result.stderr
        assert [("1", "applied")] == [(r["migration_id"], r["state"]) for r in db.history()]
        assert "2" == result.find("migration_failed")[0]["version"]
        assert "57014" == result.find("migration_failed")[0]["sqlstate"]


class TestBadDirectives:
    @pytest.mark.parametrize("dialect", ["sqlite"])
    @pytest.mark.parametrize("line", ["-- premigrate:ddl-lock-timeout soon", "-- premigrate:lock-retries -1",
                                      "-- premigrate:statement-timeout", "-- premigrate:lock-retries 2\n"
                                      "-- premigrate:lock-retries 3"])
    def test_refused_before_anything_runs(self, db: TestDatabase, migrations_dir: Path, line: str) -> None:
        """A malformed timeout directive is exit 5 with a one-line message naming the file; nothing is created."""
        write(migrations_dir, "001_accounts.sql", line + "\n" + TABLE)

        result = up(db, migrations_dir)

        assert 5 == result.returncode, result.stderr
        [error] = result.find("error")
        assert "001_accounts.sql" in error["error"] and "premigrate:" in error["error"]
        assert "\n" not in error["error"]
        assert set() == db.tables()
