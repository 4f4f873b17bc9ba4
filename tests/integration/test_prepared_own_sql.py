"""premigrate's own SQL in a PostgreSQL batch as prepared statements (drivers/postgres_prepared.py): prepared once
per session on a direct connection, prepared again under new names after a migration that may drop them, and a
migration that dropped them all the same runs again statement by statement instead of failing."""

from __future__ import annotations

from pathlib import Path

import pytest

from premigrate.drivers.postgres import PostgresDriver
from tests.integration.test_one_message import _folder, _up
from tests.support import TestDatabase


@pytest.fixture
def db(pg_db: TestDatabase) -> TestDatabase:
    return pg_db


@pytest.fixture
def prepared_at_close(monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[str, str]]]:
    """For each PostgreSQL session the run closes: its prepared statements then (name, statement), by name."""
    seen: list[list[tuple[str, str]]] = []
    original = PostgresDriver.close

    def listing(self: PostgresDriver) -> None:
        if not self.conn.closed and self.in_flight == 0:
            rows = self.conn.execute("SELECT name, statement FROM pg_prepared_statements ORDER BY name").fetchall()
            seen.append([(str(name), str(text)) for name, text in rows])
        original(self)

    monkeypatch.setattr(PostgresDriver, "close", listing)
    return seen


def _own(seen: list[list[tuple[str, str]]]) -> list[tuple[str, str]]:
    return [row for session in seen for row in session if row[0].startswith("premigrate_own_")]


def _applied(db: TestDatabase) -> list[tuple[str, str, int]]:
    return [(str(i), str(s), int(n)) for i, s, n in
            db.query(f"SELECT migration_id, state, statements_done FROM {db.table} ORDER BY migration_id")]


def test_the_guard_the_lock_check_and_the_history_write_are_prepared_once(
        db: TestDatabase, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        prepared_at_close: list[list[tuple[str, str]]], sent_together: list[int]) -> None:
    """Five migrations in batches: three statements prepared on the migration session, once each, whatever the
    number of migrations; every history row is written whole."""
    folder = _folder(tmp_path, {f"00{i}_t{i}.sql": f"CREATE TABLE t{i} (id int);\nCREATE INDEX t{i}_i ON t{i} (id);\n"
                                for i in range(1, 6)})
    code, _ = _up(db, folder, capfd)
    own = _own(prepared_at_close)
    assert (0, 5) == (code, len(sent_together))
    assert ["premigrate_own_1", "premigrate_own_2", "premigrate_own_3"] == [name for name, _ in own]
    texts = " | ".join(text for _, text in own)
    assert "pg_locks" in texts and f"INSERT INTO \"public\".\"{db.table}\"" in texts and "migration_id = $1" in texts
    assert [(str(i), "applied", 2) for i in range(1, 6)] == _applied(db)
    rows = db.query(f"SELECT execution_ms, premigrate_version, error FROM {db.table}")
    assert all(ms >= 0 and version and error is None for ms, version, error in rows)


@pytest.mark.parametrize(("dropping", "batches"), [
    # Named in the migration: its batch carries premigrate's own SQL as literal text; four batches, one each.
    pytest.param("DEALLOCATE ALL;\nCREATE TABLE t2 (id int);\n", 4, id="named"),
    # Built at run time inside a function: no text of the migration names it; the batch fails on premigrate's
    # own prepared statement, nothing of it commits, and the migration runs again statement by statement; the
    # batch of migration 3, sent ahead and skipped, is sent again.
    pytest.param("DO $$ BEGIN EXECUTE 'DEAL' || 'LOCATE ALL'; END $$;\nCREATE TABLE t2 (id int);\n", 4 + 1,
                 id="hidden"),
])
def test_a_migration_that_drops_prepared_statements_applies_and_the_rest_prepare_again(
        db: TestDatabase, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        prepared_at_close: list[list[tuple[str, str]]], sent_together: list[int], dropping: str,
        batches: int) -> None:
    folder = _folder(tmp_path, {
        "001_t1.sql": "CREATE TABLE t1 (id int);\n",
        "002_t2.sql": dropping,
        "003_t3.sql": "CREATE TABLE t3 (id int);\n",
        "004_t4.sql": "CREATE TABLE t4 (id int);\n",
    })
    code, events = _up(db, folder, capfd)
    assert (0, batches) == (code, len(sent_together)), [e for e in events if e["level"] == "error"]
    assert [("1", "applied", 1), ("2", "applied", 2), ("3", "applied", 1), ("4", "applied", 1)] == _applied(db)
    assert {"t1", "t2", "t3", "t4"} == db.tables() - {db.table}
    assert ["1", "2", "3", "4"] == [e["version"] for e in events if e["event"] == "migration_applied"]
    # The first batch prepared the lock check and the history write (1, 2): dropped, and prepared again under new
    # names, with the guard of a batch sent ahead.
    numbers = sorted(int(name.rsplit("_", 1)[1]) for name, _ in _own(prepared_at_close))
    assert 3 == len(numbers) and numbers[0] > 2, numbers


def test_a_failed_migration_is_reported_as_before(db: TestDatabase, tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                  prepared_at_close: list[list[tuple[str, str]]]) -> None:
    """A migration's own failure after prepared statements ran is the migration's (exit 4, its statement named),
    not mistaken for a dropped statement; the one before it stays applied."""
    folder = _folder(tmp_path, {
        "001_t1.sql": "CREATE TABLE t1 (id int);\n",
        "002_t2.sql": "CREATE TABLE t2 (id int);\nINSERT INTO nowhere VALUES (1);\n",
    })
    code, events = _up(db, folder, capfd)
    failed = [e for e in events if e["event"] == "migration_failed"]
    assert (4, [("1", "applied", 1)]) == (code, _applied(db))
    assert (2, "42P01") == (failed[-1]["statement"], failed[-1]["sqlstate"])


def test_a_migration_run_on_its_own_that_drops_them_has_them_prepared_again(
        db: TestDatabase, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        prepared_at_close: list[list[tuple[str, str]]], sent_together: list[int]) -> None:
    """Migration 2 runs outside a transaction, statement by statement, and drops every prepared statement: the
    batch after it prepares its own again first, instead of failing on a name that is gone and running again."""
    folder = _folder(tmp_path, {
        "001_t1.sql": "CREATE TABLE t1 (id int);\n",
        "002_t2.sql": "-- premigrate:no-transaction\nDEALLOCATE ALL;\nCREATE TABLE t2 (id int);\n",
        "003_t3.sql": "CREATE TABLE t3 (id int);\n",
    })
    code, _ = _up(db, folder, capfd)
    assert (0, 2) == (code, len(sent_together))
    assert [("1", "applied", 1), ("2", "applied", 2), ("3", "applied", 1)] == _applied(db)
    numbers = sorted(int(name.rsplit("_", 1)[1]) for name, _ in _own(prepared_at_close))
    assert [3, 4] == numbers
