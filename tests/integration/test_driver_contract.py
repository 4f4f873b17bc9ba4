"""The driver contract: every backend must pass every test here, against a real server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

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
SERVERS = ["postgresql", "mysql"]


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
    def test_history_read_is_one_round_trip(self, driver: Driver, exists: bool) -> None:
        """Between transactions the history is read with a single query, whether or not the table exists."""
        if exists:
            driver.ensure_history_table()
            driver.insert_row(row("1"))
        sent = driver.statements_sent
        assert ([row("1")] if exists else [], 1) == (driver.read_history(), driver.statements_sent - sent)

    def test_statements_sent_counts_a_migration_statement(self, driver: Driver) -> None:
        """statements_sent grows by one for each statement execute() sends."""
        sent = driver.statements_sent
        driver.execute("SELECT 1")
        driver.execute("SELECT 2")
        assert 2 == driver.statements_sent - sent

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

    def test_execute_returns_rows_affected(self, driver: Driver) -> None:
        """execute() returns the rows a DML statement affected (an UPDATE: the rows it matched), and nothing
        negative for a statement without a count."""
        created = driver.execute("CREATE TABLE counted (id INTEGER, v INTEGER)")
        assert created is None or created == 0  # MySQL reports 0 for DDL; the engine reads DDL as no count
        assert 3 == driver.execute("INSERT INTO counted VALUES (1, 0), (2, 0), (3, 1)")
        assert 2 == driver.execute("UPDATE counted SET v = 0 WHERE id IN (1, 3)")  # row 1 keeps its value
        assert 0 == driver.execute("DELETE FROM counted WHERE id = 9")

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

    def test_lock_held_says_whether_this_session_holds_it(self, db: TestDatabase) -> None:
        """lock_held is true on the holding session only, and false again after unlock."""
        first, second = open_driver(db), open_driver(db)
        try:
            assert first.try_lock("k")
            assert (True, False) == (first.lock_held("k"), second.lock_held("k"))
            first.unlock("k")
            assert False is first.lock_held("k")
        finally:
            first.close()
            second.close()

    def test_guarded_update_refuses_once_the_lock_is_gone(self, db: TestDatabase) -> None:
        """With guard_writes, update_row writes while the holder holds the lock and raises LockLost after;
        the row is left as it was (servers; SQLite's file lock cannot be lost under its process)."""
        from premigrate.errors import LockLost

        holder, writer = open_driver(db), open_driver(db)
        try:
            writer.ensure_history_table()
            writer.insert_row(row("1", state="in_progress"))
            assert holder.try_lock("k")
            writer.guard_writes("k", holder.session_id())
            if holder.session_id() is None:  # SQLite: no guard, the update is unconditional
                holder.unlock("k")
                writer.update_row(row("1", state="applied"))
                assert ["applied"] == [r.state for r in writer.read_history()]
                return
            writer.update_row(row("1", state="in_progress", statements_done=1))
            holder.unlock("k")
            with pytest.raises(LockLost):
                writer.update_row(row("1", state="applied"))
            assert ["in_progress"] == [r.state for r in writer.read_history()]
        finally:
            holder.close()
            writer.close()

    @pytest.mark.parametrize("dialect", SERVERS)  # SQLite never guards: its lock cannot be lost
    def test_guarded_finish_and_start_writes_both_rows_or_refuses(self, db: TestDatabase) -> None:
        """finish_and_start from another session than the holder's: both rows while the lock is held; LockLost and
        neither row once it is gone."""
        from premigrate.errors import LockLost

        holder, writer = open_driver(db), open_driver(db)
        try:
            writer.ensure_history_table()
            writer.insert_row(row("1", state="in_progress", statements_done=1))
            assert holder.try_lock("k")
            writer.guard_writes("k", holder.session_id())
            writer.finish_and_start(row("1"), row("2", state="in_progress", statements_done=0))
            assert [("1", "applied"), ("2", "in_progress")] == [
                (r.migration_id, r.state) for r in writer.read_history()]
            holder.unlock("k")
            with pytest.raises(LockLost):
                writer.finish_and_start(row("2"), row("3", state="in_progress", statements_done=0))
            assert [("1", "applied"), ("2", "in_progress")] == [
                (r.migration_id, r.state) for r in writer.read_history()]
        finally:
            holder.close()
            writer.close()

    @pytest.mark.parametrize("dialect", SERVERS)  # SQLite never guards: its lock cannot be lost
    def test_the_holders_own_writes_are_plain(self, db: TestDatabase) -> None:
        """The lock's session writes its progress rows without the lock condition (its lock ends only with it):
        both rows are written, and on MariaDB/MySQL without the derived table the condition needs (no temporary
        table for the two rows)."""
        holder = open_driver(db)
        try:
            holder.ensure_history_table()
            holder.insert_row(row("1", state="in_progress", statements_done=1))
            assert holder.try_lock("k")
            holder.guard_writes("k", holder.session_id())
            temporary_tables = "SHOW SESSION STATUS LIKE 'Created_tmp_tables'"
            before = holder.fetch(temporary_tables) if db.dialect == "mysql" else []
            holder.finish_and_start(row("1"), row("2", state="in_progress", statements_done=0))
            holder.update_row(row("2", state="in_progress", statements_done=1))
            if db.dialect == "mysql":
                after = holder.fetch(temporary_tables)
                assert int(after[0][1]) - int(before[0][1]) == 0
            assert [("1", "applied", 2), ("2", "in_progress", 1)] == [
                (r.migration_id, r.state, r.statements_done) for r in holder.read_history()]
        finally:
            holder.close()

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_lock_condition_reads_no_catalog(self, db: TestDatabase) -> None:
        """The lock condition every migration's history write carries names its database by oid: the server plans
        no pg_database lookup for it. It is true while the holder holds the lock, false for another session's pid
        and once the lock is released."""
        holder, writer = open_driver(db), open_driver(db)
        try:
            assert holder.try_lock("k")
            pid = holder.session_id()
            assert pid is not None and writer.session_id() != pid
            condition, params = writer._lock_condition("k", pid)  # type: ignore[attr-defined]
            plan = "\n".join(str(r[0]) for r in writer.fetch(f"EXPLAIN SELECT {condition}", params))
            assert "pg_locks" not in plan and "pg_lock_status" in plan and "pg_database" not in plan, plan
            assert writer.fetch(f"SELECT {condition}", params) == [(True,)]
            other, other_params = writer._lock_condition("k", writer.session_id() or 0)  # type: ignore[attr-defined]
            assert writer.fetch(f"SELECT {other}", other_params) == [(False,)]
            holder.unlock("k")
            assert writer.fetch(f"SELECT {condition}", params) == [(False,)]
        finally:
            holder.close()
            writer.close()

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


def in_thread(action: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `action` in a thread; its result or exception lands in the returned dict."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = action()
        except BaseException as exc:  # noqa: BLE001 - inspected by the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def hold_table(holder: Driver) -> None:
    """Open a transaction on `holder` that keeps table t locked against DDL until it ends."""
    holder.begin()
    if holder.dialect == "postgresql":
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    elif holder.dialect == "mysql":
        holder.execute("SELECT * FROM t")  # holds the table's metadata lock until the transaction ends
    else:
        holder.execute("INSERT INTO t VALUES (1)")  # BEGIN IMMEDIATE already holds the write lock


class TestTransactionHelper:
    def test_commits_when_the_block_ends(self, driver: Driver, db: TestDatabase) -> None:
        """transaction() commits what the block did."""
        driver.ensure_history_table()
        with driver.transaction():
            driver.insert_row(row("1"))
        assert 1 == len(db.history())

    def test_rolls_back_and_reraises(self, driver: Driver, db: TestDatabase) -> None:
        """An exception in the block rolls the transaction back and propagates unchanged."""
        driver.ensure_history_table()
        with pytest.raises(KeyError):
            with driver.transaction():
                driver.insert_row(row("1"))
                raise KeyError("boom")
        assert [] == db.history()
        driver.insert_row(row("2"))  # the session is usable again, outside any transaction
        assert ["2"] == [r["migration_id"] for r in db.history()]


class TestTimeouts:
    def test_statement_timeout_stops_a_long_statement(self, driver: Driver) -> None:
        """set_timeouts(statement_timeout=...) makes a statement that runs too long fail with SqlError."""
        driver.set_timeouts(None, 0.5, local=False)
        started = time.monotonic()
        with pytest.raises(SqlError):
            driver.execute(SLEEP[driver.dialect])
        assert time.monotonic() - started < 30  # liveness only: the statement would run for 60 s or forever

    def test_reset_lifts_the_statement_timeout(self, driver: Driver) -> None:
        """After reset_timeouts() a statement longer than the old limit runs to its end."""
        driver.set_timeouts(None, 0.2, local=False)
        driver.reset_timeouts()
        bounded = {"postgresql": "SELECT pg_sleep(1)", "mysql": "SELECT SLEEP(1)",
                   "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
                             "SELECT count(*) FROM c"}
        driver.execute(bounded[driver.dialect])

    def test_local_timeouts_end_with_the_transaction(self, driver: Driver) -> None:
        """Where timeouts can be transaction-local, a local statement timeout is gone after the commit; elsewhere
        (Capabilities.local_timeouts False) it stays a session value until reset_timeouts()."""
        with driver.transaction():
            driver.set_timeouts(None, 0.2, local=True)
        if driver.local_timeouts:
            driver.execute("SELECT pg_sleep(1)")
            return
        with pytest.raises(SqlError):
            driver.execute(SLEEP[driver.dialect])
        driver.reset_timeouts()

    def test_lock_timeout_is_lock_contention(self, db: TestDatabase) -> None:
        """A statement that waits longer than the lock timeout fails with SqlError.lock_contention set."""
        holder, waiter = open_driver(db), open_driver(db)
        try:
            holder.execute("CREATE TABLE t (id int)")
            hold_table(holder)
            waiter.set_timeouts(0.5, None, local=False)
            with pytest.raises(SqlError) as info:
                if waiter.dialect == "sqlite":
                    waiter.begin()
                waiter.execute("ALTER TABLE t ADD COLUMN extra int")
            assert info.value.lock_contention
        finally:
            holder.rollback()
            holder.close()
            waiter.close()


class TestBlockers:
    def test_names_the_blocking_session(self, db: TestDatabase) -> None:
        """blockers(), asked from a third session while a statement waits, names the session holding the lock
        (databases without session ids answer [] and report none)."""
        holder, waiter, watcher = open_driver(db), open_driver(db), open_driver(db)
        try:
            waiting_id = waiter.session_id()
            if waiting_id is None:
                assert [] == watcher.blockers(0)
                return
            assert holder.session_id() not in (None, waiting_id)
            holder.execute("CREATE TABLE t (id int)")
            hold_table(holder)
            waiter.set_timeouts(30, None, local=False)
            thread, outcome = in_thread(lambda: waiter.execute("ALTER TABLE t ADD COLUMN extra int"))
            found: list[dict[str, Any]] = []
            deadline = time.monotonic() + 20
            while not found and time.monotonic() < deadline:
                time.sleep(0.2)
                found = watcher.blockers(waiting_id)
            holder.rollback()
            thread.join(30)
            ids = [b.get("pid", b.get("connection_id")) for b in found]
            assert holder.session_id() in ids
            assert "error" not in outcome, outcome
        finally:
            holder.close()
            waiter.close()
            watcher.close()


class TestInvalidIndexes:
    def test_drops_only_an_invalid_index(self, driver: Driver, db: TestDatabase) -> None:
        """After a failed concurrent index build the invalid index is dropped and named; a valid one is kept."""
        driver.execute("CREATE TABLE t (a int)")
        driver.execute("INSERT INTO t VALUES (1)")
        driver.execute("CREATE INDEX t_valid ON t (a)")
        assert None is driver.drop_invalid_index("t_valid")
        if not driver.invalid_indexes:
            assert None is driver.drop_invalid_index("t_nothing")
            return
        driver.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(SqlError):
            driver.execute("CREATE UNIQUE INDEX CONCURRENTLY t_unique ON t (a)")
        assert "t_unique" == driver.drop_invalid_index("t_unique")
        indexes = {r[0] for r in db.query("SELECT indexname FROM pg_indexes WHERE tablename = 't'")}
        assert {"t_valid"} == indexes


class TestSchema:
    def test_ensure_schema_creates_the_history_schema(self, db: TestDatabase) -> None:
        """ensure_schema creates the schema of the history table (and --schema's) where schemas exist; twice is
        harmless; the history table then lives there."""
        probe = open_driver(db)
        supports = probe.supports_schema
        probe.close()
        d = open_driver(db, schema="pm_contract_s" if supports else None)
        try:
            d.ensure_schema()
            d.ensure_schema()
            assert d.ensure_history_table()
            d.insert_row(row("1"))
            assert [row("1")] == d.read_history()
            if supports:
                assert [("pm_contract_s",)] == db.query(
                    "SELECT table_schema FROM information_schema.tables WHERE table_name = 'premigrate_history'")
        finally:
            d.close()


class TestSessionFacts:
    def test_server_version_and_tables(self, driver: Driver) -> None:
        """server_version names the product; list_tables lists a created table; fetch returns rows."""
        product = {"postgresql": "PostgreSQL", "mysql": "MySQL", "sqlite": "SQLite"}[driver.dialect]
        assert driver.server_version().startswith(product + " ")
        driver.execute("CREATE TABLE listed (id int)")
        driver.execute("INSERT INTO listed VALUES (7)")
        assert "listed" in driver.list_tables()
        assert [(7,)] == [tuple(r) for r in driver.fetch("SELECT id FROM listed")]

    def test_prepare_session_and_statement_limit(self, driver: Driver) -> None:
        """prepare_session can be called on a fresh session; limit_statement_time bounds later statements on
        servers (SQLite has no server to protect)."""
        driver.prepare_session()
        driver.limit_statement_time(0.5)
        if driver.dialect == "sqlite":
            driver.execute("SELECT 1")
            return
        with pytest.raises(SqlError):
            driver.execute(SLEEP[driver.dialect])

    def test_database_missing(self, db: TestDatabase, tmp_path: Any) -> None:
        """database_missing is True only for a SQLite file that does not exist yet."""
        cls = driver_class(db.dialect)
        open_driver(db).close()  # the SQLite file exists once a session was opened
        assert False is cls.database_missing(parse_url(db.url))
        if db.dialect == "sqlite":
            assert True is cls.database_missing(parse_url(f"sqlite:///{tmp_path / 'nope.db'}"))


class TestSessionState:
    def test_restore_session_undoes_a_migrations_settings(self, db: TestDatabase, driver: Driver) -> None:
        """What a migration set in its session is back to the connect-time value after restore_session, and the
        current database is unchanged (database_changed: None)."""
        if db.dialect == "postgresql":
            driver.execute("SET search_path TO pg_catalog")
            driver.execute("SET statement_timeout = '7s'")
            driver.restore_session()
            assert [("0", "\"$user\", public")] == driver.fetch(
                "SELECT current_setting('statement_timeout'), current_setting('search_path')")
        elif db.dialect == "mysql":
            driver.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
            driver.execute("SET @leftover = 1")
            driver.restore_session()
            [(mode, leftover)] = driver.fetch("SELECT @@SESSION.sql_mode, @leftover")
            assert "ANSI_QUOTES" not in mode and leftover is None
        else:
            driver.restore_session()
        assert None is driver.database_changed()


@pytest.mark.parametrize("dialect", ["mysql"])
class TestMysqlSessionRoundTrips:
    """MySQL: the session restore and the current-database check cost a round trip only after a statement that
    may have changed what they look at (model/session_effects.may_change_session, may_switch_database)."""

    def test_plain_ddl_needs_no_restore_and_anything_else_does(self, db: TestDatabase, driver: Driver) -> None:
        driver.execute("CREATE TABLE a (id int)")
        driver.execute("CREATE INDEX a_id ON a (id)")
        sent = driver.statements_sent
        assert False is driver.restore_session()
        assert sent == driver.statements_sent
        driver.execute("SET @leftover = 1")
        assert True is driver.restore_session()
        assert [(None,)] == [tuple(r) for r in driver.fetch("SELECT @leftover")]
        assert False is driver.restore_session()  # restored: clean again

    def test_a_hidden_switch_is_seen_and_plain_statements_are_not_asked_about(self, db: TestDatabase,
                                                                            driver: Driver) -> None:
        driver.execute("CREATE TABLE a (id int)")
        sent = driver.statements_sent
        assert None is driver.database_changed()
        assert sent == driver.statements_sent
        driver.execute("EXECUTE IMMEDIATE CONCAT('US', 'E mysql')")
        assert "mysql" == driver.database_changed()
