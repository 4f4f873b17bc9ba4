"""PostgreSQL sends the next migration's batch before the running one has answered (drivers/postgres_together.py):
a signal or a lost connection while one is behind the other leaves what committed reported, and nothing else."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import LIVENESS_S, LiveCli, db_env, write
from tests.support import CliResult, TestDatabase


@pytest.fixture
def dialect() -> str:
    return "postgresql"


def _sleeper_pid(db: TestDatabase) -> int | None:
    rows = db.query("SELECT pid FROM pg_stat_activity WHERE datname = %s AND state = 'active' "
                    "AND query LIKE '%%pg_sleep%%' AND pid <> pg_backend_pid()", (db.name,))
    return int(rows[0][0]) if rows else None


def _wait_for(predicate: object, timeout: float = LIVENESS_S) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()  # type: ignore[operator]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("the long statement never showed up on the server")


def _run_with_third_behind(db: TestDatabase, migrations_dir: Path, act: object) -> CliResult:
    """`up` of [t1; t2 + a long sleep; t3]: while migration 2 sleeps, migration 3's batch is already sent; then
    `act(live, pid)` interrupts it."""
    write(migrations_dir, "001_t1.sql", "CREATE TABLE t1 (id int);\n")
    write(migrations_dir, "002_t2.sql", "CREATE TABLE t2 (id int);\nSELECT pg_sleep(3600);\n")
    write(migrations_dir, "003_t3.sql", "CREATE TABLE t3 (id int);\n")
    live = LiveCli("up", "--dir", str(migrations_dir), env=db_env(db), cwd=migrations_dir.parent)
    try:
        live.wait_for_event("migration_started", where=lambda e: e.get("version") == "2")
        pid = _wait_for(lambda: _sleeper_pid(db))
        act(live, pid)  # type: ignore[operator]
        return live.finish(timeout=LIVENESS_S)
    finally:
        live.kill()


def test_sigterm_with_the_next_migration_sent_ahead(db: TestDatabase, migrations_dir: Path) -> None:
    """SIGTERM while migration 2 runs and migration 3 waits behind it on the server: 2 is cancelled and rolled
    back, 3 does not run; exit 143; only migration 1 is applied, and the lock is released."""
    result = _run_with_third_behind(db, migrations_dir, lambda live, pid: live.proc.send_signal(signal.SIGTERM))
    assert 143 == result.returncode, result.stderr
    assert ["1"] == [e["version"] for e in result.find("migration_applied")]
    assert (["1"], {"t1"}) == ([r["migration_id"] for r in db.history()], db.tables() - {db.table})
    assert 1 == len(result.find("lock_released"))
    assert "Traceback" not in result.stderr


def test_a_lost_connection_with_the_next_migration_sent_ahead(db: TestDatabase, migrations_dir: Path) -> None:
    """The server ends migration 2's session while migration 3 is sent behind it: exit 3, the error says that
    both were in flight and that the history rows say what committed; neither did."""
    result = _run_with_third_behind(
        db, migrations_dir, lambda live, pid: db.query("SELECT pg_terminate_backend(%s)", (pid,)))
    assert 3 == result.returncode, result.stderr
    [failed] = result.find("migration_failed")
    assert "2" == failed["version"]
    assert "sent ahead" in result.events[-1].get("error", "") or "sent ahead" in result.stderr
    assert (["1"], {"t1"}) == ([r["migration_id"] for r in db.history()], db.tables() - {db.table})
