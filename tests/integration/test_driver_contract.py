"""The driver contract: every backend must pass every test here, against a real server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from premigrate.drivers import driver_class
from premigrate.drivers.base import ConnectFailed, Driver, DriverSettings, HistoryRow, SqlError
from premigrate.model.dsn import parse_url
from premigrate.errors import PremigrateError, UsageError
from tests.support import TestDatabase

SLEEP = {
    "postgresql": "SELECT pg_sleep(60)",
    "mysql": "SELECT SLEEP(60)",
    # Runs until interrupted: an unbounded recursive CTE.
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
}
SETTINGS = DriverSettings(table="premigrate_history")


def open_driver(db: TestDatabase, **settings: object) -> Driver:
    merged = {**SETTINGS.__dict__, **settings}
    return driver_class(db.dialect).connect(parse_url(db.url), DriverSettings(**merged))


@pytest.fixture
def driver(db: TestDatabase) -> Iterator[Driver]:
    d = open_driver(db)
    try:
        yield d
    finally:
        d.close()


def row(migration_id: str = "1", **changes: object) -> HistoryRow:
    base = HistoryRow(
        migration_id=migration_id, version=migration_id, description="create users", kind="versioned",
        script=f"{migration_id}_create_users.sql", checksum="sha256:" + "ab" * 32,
        applied_at=datetime(2026, 1, 13, 15, 53, 7, 123456, tzinfo=timezone.utc), execution_ms=42,
        applied_by="host-1", state="applied", statements_done=2, statements_total=2, statement_started=2,
        statement_hashes=("0123456789abcdef", "fedcba9876543210"), error=None, premigrate_version="0.1.0",
    )
    return base.evolve(**changes)


class TestHistoryTable:
    def test_created_once(self, driver: Driver) -> None:
        """ensure_history_table creates the table the first time and reports False after."""
        assert (False, True, True, False) == (
            driver.history_exists(), driver.ensure_history_table(), driver.history_exists(),
            driver.ensure_history_table())

    def test_missing_table_reads_as_empty(self, driver: Driver) -> None:
        """Reading the history of a database without the table gives no rows and creates nothing."""
        assert ([], False) == (driver.read_history(), driver.history_exists())

    @pytest.mark.parametrize("exists", [pytest.param(False, id="missing"), pytest.param(True, id="present")])
    def test_history_read_is_one_round_trip(self, driver: Driver, exists: bool,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
        """Between transactions the history is read with a single query, whether or not the table exists."""
        if exists:
            driver.ensure_history_table()
            driver.insert_row(row("1"))
        queries: list[str] = []
        fetchall = driver._fetchall  # type: ignore[attr-defined]

        def counting(sql: object, params: object = None) -> object:
            queries.append(str(sql))
            return fetchall(sql, params) if params is not None else fetchall(sql)

        monkeypatch.setattr(driver, "_fetchall", counting)
        monkeypatch.setattr(driver, "_exec", lambda *a: queries.append(str(a[0])))
        assert ([row("1")] if exists else [], 1) == (driver.read_history(), len(queries))

    def test_missing_table_read_inside_a_transaction_keeps_it_usable(self, driver: Driver, db: TestDatabase) -> None:
        """Reading a missing history table inside an open transaction leaves that transaction able to commit."""
        driver.begin()
        history = driver.read_history()
        driver.execute("CREATE TABLE kept_after_read (id int)")
        driver.commit()
        assert ([], True) == (history, "kept_after_read" in db.tables())

    def test_missing_table_in_missing_schema_reads_as_empty(self, db: TestDatabase) -> None:
        """A history table in a schema that does not exist yet reads as empty too (PostgreSQL --table s.t)."""
        d = open_driver(db)
        try:
            schema = {"schema": "no_such_schema"} if d.supports_schema else {}
        finally:
            d.close()
        d = open_driver(db, **schema)
        try:
            assert [] == d.read_history()
        finally:
            d.close()

    def test_other_read_errors_are_not_taken_for_a_missing_table(self, driver: Driver) -> None:
        """A history table that exists but cannot be read as one raises, rather than reading as empty."""
        driver.execute("CREATE TABLE premigrate_history (something_else int)")
        with pytest.raises(SqlError):
            driver.read_history()

    def test_round_trip(self, driver: Driver) -> None:
        """A row written is read back field for field, with applied_at in UTC."""
        driver.ensure_history_table()
        written = [row("1"), row("R:views", version=None, kind="repeatable", error="x" * 5000, state="failed")]
        for r in written:
            driver.insert_row(r)
        assert written == sorted(driver.read_history(), key=lambda r: r.migration_id)

    def test_update_and_delete(self, driver: Driver) -> None:
        """update_row rewrites a row in place; delete_row removes it."""
        driver.ensure_history_table()
        driver.insert_row(row("1", state="in_progress", statements_done=0, statement_started=1))
        driver.update_row(row("1"))
        assert [row("1")] == driver.read_history()
        driver.delete_row("1")
        assert [] == driver.read_history()

    def test_duplicate_insert_fails(self, driver: Driver) -> None:
        """The migration id is the primary key: a second insert of it is refused."""
        driver.ensure_history_table()
        driver.insert_row(row("1"))
        with pytest.raises(SqlError):
            driver.insert_row(row("1"))


class TestStatements:
    def test_sql_error_carries_code(self, driver: Driver) -> None:
        """A failing statement raises SqlError with the database's own code."""
        with pytest.raises(SqlError) as info:
            driver.execute("SELECT * FROM no_such_table")
        expected = {"postgresql": ("sqlstate", "42P01"), "mysql": ("errno", "1146"), "sqlite": ("code", "SQLITE_ERROR")}
        assert expected[driver.dialect] == (info.value.code_field, info.value.code)

    def test_percent_and_braces_pass_unchanged(self, driver: Driver) -> None:
        """Migration SQL is sent as is: % and {} need no escaping."""
        driver.execute("CREATE TABLE p (v VARCHAR(20))")
        driver.execute("INSERT INTO p VALUES ('100% {x}')")
        assert ["p"] == [t for t in driver.list_tables() if t == "p"]

    def test_transaction_rollback(self, driver: Driver, db: TestDatabase) -> None:
        """On transactional-DDL databases a rolled back CREATE TABLE leaves nothing behind."""
        driver.begin()
        driver.execute("CREATE TABLE rolled_back (id int)")
        driver.rollback()
        expect_table = not driver.transactional_ddl  # MySQL commits DDL implicitly
        assert expect_table == ("rolled_back" in db.tables())

    def test_transaction_commit(self, driver: Driver, db: TestDatabase) -> None:
        """A committed transaction is visible to another session."""
        driver.ensure_history_table()
        driver.begin()
        driver.execute("CREATE TABLE kept (id int)")
        driver.insert_row(row("1"))
        driver.commit()
        assert ("kept" in db.tables(), 1) == (True, len(db.history()))

    def test_interrupt_from_another_thread(self, driver: Driver) -> None:
        """interrupt(), called from another thread, stops a long statement with an error."""
        timer = threading.Timer(0.5, driver.interrupt)
        timer.start()
        started = time.monotonic()
        with pytest.raises(SqlError):
            driver.execute(SLEEP[driver.dialect])
        timer.join()
        assert time.monotonic() - started < 30  # liveness only: the statement would run for 60 s


    def test_abort_from_another_thread(self, driver: Driver) -> None:
        """abort(), called from another thread, makes a blocked call fail with a premigrate error (the session is cut
        on the servers, the statement stopped on SQLite), and close() still works afterwards."""
        timer = threading.Timer(0.5, driver.abort)
        timer.start()
        started = time.monotonic()
        with pytest.raises(PremigrateError):
            driver.execute(SLEEP[driver.dialect])
        timer.join()
        assert time.monotonic() - started < 30  # liveness only: the statement would run for 60 s
        driver.close()


class TestLock:
    def test_exclusive_between_sessions(self, db: TestDatabase) -> None:
        """Only one session holds the lock; it is free again after unlock."""
        first, second = open_driver(db), open_driver(db)
        try:
            assert (True, False) == (first.try_lock("k"), second.try_lock("k"))
            first.unlock("k")
            assert True is second.try_lock("k")
        finally:
            first.close()
            second.close()

    def test_released_when_session_ends(self, db: TestDatabase) -> None:
        """A lock whose session is gone is free: a killed runner never leaves it stuck."""
        first, second = open_driver(db), open_driver(db)
        try:
            assert first.try_lock("k")
            first.close()
            acquired = False
            deadline = time.monotonic() + 10
            while not acquired and time.monotonic() < deadline:
                acquired = second.try_lock("k")
                time.sleep(0 if acquired else 0.05)
            assert True is acquired
        finally:
            second.close()

    def test_holder_reported(self, db: TestDatabase) -> None:
        """lock_holder tells who holds the lock."""
        first, second = open_driver(db), open_driver(db)
        try:
            assert None is second.lock_holder("k")
            assert first.try_lock("k")
            holder = second.lock_holder("k")
            assert holder  # pid/host (SQLite), pid/application_name (PostgreSQL), connection id (MySQL)
        finally:
            first.close()
            second.close()

    def test_keys_are_independent(self, db: TestDatabase) -> None:
        """Different keys (databases or tables) do not block each other."""
        first = open_driver(db)
        second = open_driver(db, table="other_history")
        try:
            assert (True, True) == (first.try_lock("db:a"), second.try_lock("db:b"))
        finally:
            first.close()
            second.close()


class TestConnect:
    def test_read_only_session_cannot_write(self, db: TestDatabase) -> None:
        """A read-only session refuses writes (SQLite opens the file read-only)."""
        open_driver(db).close()  # make sure the SQLite file exists
        reader = open_driver(db, read_only=True)
        try:
            with pytest.raises(SqlError):
                reader.execute("CREATE TABLE nope (id int)")
        finally:
            reader.close()

    def test_unknown_database_is_final(self, db: TestDatabase) -> None:
        """An unknown database is a final failure, not retried."""
        url = db.url.replace(db.name, "pm_no_such_db_x") if db.dialect != "sqlite" else f"sqlite:///{db.path}.d/x.db"
        with pytest.raises(ConnectFailed) as info:
            driver_class(db.dialect).connect(parse_url(url), SETTINGS)
        assert (False, "unknown_database") == (info.value.transient, info.value.reason)

    @pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
    def test_refused_is_transient(self, dialect: str) -> None:
        """A closed port is a transient failure: the database may be starting."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        scheme = "postgresql" if dialect == "postgresql" else "mysql"
        with pytest.raises(ConnectFailed) as info:
            driver_class(dialect).connect(parse_url(f"{scheme}://u@127.0.0.1:{port}/x"), SETTINGS)
        assert (True, "refused") == (info.value.transient, info.value.reason)

    def test_bad_driver_parameter_is_usage_error(self, db: TestDatabase) -> None:
        """An unknown URL parameter is a configuration error naming it (SQLite URLs take none at all)."""
        with pytest.raises(UsageError, match="bogus|take no query parameters"):
            driver_class(db.dialect).connect(parse_url(db.url + "?bogus=1"), SETTINGS)
