"""The fence wired into the drivers' history writes (SqlHistoryMixin): with a lease held, every history write
commits only together with proof that the lease is still this runner's. SQLite here (the lease SQL of each
dialect is proven in test_lease.py and on the topology servers)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

from premigrate.drivers.base import DriverSettings, HistoryRow
from premigrate.drivers.sqlite import SQLiteDriver
from premigrate.engine.lease import Holder, Lease
from premigrate.errors import LockLost
from premigrate.model.dsn import Dsn


def _row(migration_id: str) -> HistoryRow:
    return HistoryRow(migration_id=migration_id, version=migration_id, description="d", kind="versioned",
                      script=f"{migration_id}_d.sql", checksum="c", applied_at=datetime.now(timezone.utc),
                      execution_ms=1, applied_by="test", state="applied")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[SQLiteDriver, Lease, sqlite3.Connection]:
    path = tmp_path / "db.sqlite"
    driver = SQLiteDriver.connect(Dsn(dialect="sqlite", database=str(path)), DriverSettings(table="premigrate_history"))
    driver.ensure_history_table()
    lock_conn = sqlite3.connect(path, isolation_level=None)
    lease = Lease("sqlite", "premigrate_history_lock", duration_s=30, holder=Holder("mine", "h", 1))
    lease.ensure_table(lock_conn)
    assert lease.try_acquire(lock_conn)
    driver.fence = lambda: lease.fence(driver.conn)
    return driver, lease, lock_conn


def _take_over(lock_conn: sqlite3.Connection) -> None:
    lock_conn.execute("UPDATE premigrate_history_lock SET expires_at = '2000-01-01 00:00:00.000'")
    other = Lease("sqlite", "premigrate_history_lock", duration_s=30, holder=Holder("other", "h2", 2))
    assert other.try_acquire(lock_conn)


class TestFencedWrites:
    def test_writes_commit_while_the_lease_is_held(self, setup: tuple[SQLiteDriver, Lease, sqlite3.Connection]
                                                   ) -> None:
        """Autocommit writes and writes in a transaction both commit, each proving the lease (version bumps)."""
        driver, lease, lock_conn = setup
        before = lease.current(lock_conn)
        driver.insert_row(_row("1"))
        with driver.transaction():
            driver.insert_row(_row("2"))
        after = lease.current(lock_conn)
        assert before is not None and after is not None
        assert 2 == after.version - before.version
        assert ["1", "2"] == [r.migration_id for r in driver.read_history()]

    def test_a_lost_lease_commits_nothing(self, setup: tuple[SQLiteDriver, Lease, sqlite3.Connection]) -> None:
        """After a takeover: the autocommit write and the transaction both raise LockLost and leave no row."""
        driver, _lease, lock_conn = setup
        _take_over(lock_conn)
        with pytest.raises(LockLost):
            driver.insert_row(_row("1"))
        with pytest.raises(LockLost), driver.transaction():
            driver.insert_row(_row("2"))
        assert [] == driver.read_history()
        assert 8 == LockLost("x").exit_code
