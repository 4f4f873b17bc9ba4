"""Which statements open, end or cannot run inside a transaction; the lock-retry loop and its pauses."""

from __future__ import annotations

import re

import pytest

from premigrate.engine import lockwait
from premigrate.settings import StatementSettings

from premigrate.model import transactions
from premigrate.drivers.base import SqlError
from premigrate.model.sql import Statement, split_statements


def _control(sql: str, dialect: str = "postgresql") -> list[str | None]:
    return [transactions.control(s) for s in split_statements(sql, dialect)]


class TestControl:
    @pytest.mark.parametrize("sql", ["BEGIN", "begin transaction", "BEGIN WORK", "START TRANSACTION",
                                     "start transaction read write", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE TRANSACTION",
                                     "BEGIN ISOLATION LEVEL SERIALIZABLE"])
    def test_opening(self, sql: str) -> None:
        assert transactions.BEGIN == transactions.control(Statement(sql, 1))

    @pytest.mark.parametrize("sql", ["COMMIT", "commit work", "END", "END TRANSACTION"])
    def test_committing(self, sql: str) -> None:
        assert transactions.COMMIT == transactions.control(Statement(sql, 1))

    @pytest.mark.parametrize("sql", ["ROLLBACK", "ABORT", "rollback work"])
    def test_rolling_back(self, sql: str) -> None:
        assert transactions.ROLLBACK == transactions.control(Statement(sql, 1))

    @pytest.mark.parametrize("sql", ["BEGIN NOT ATOMIC SELECT 1; END", "ROLLBACK TO SAVEPOINT a", "SAVEPOINT a",
                                     "COMMIT PREPARED 'x'", "ENDPOINT", "BEGINNING", "SELECT 'BEGIN'",
                                     "CREATE TABLE begin_log (id int)"])
    def test_not_control(self, sql: str) -> None:
        assert transactions.control(Statement(sql, 1)) is None

    def test_begin_inside_bodies_is_not_seen(self) -> None:
        """BEGIN in a dollar-quoted function, a DO block or a MySQL procedure stays inside its statement."""
        pg = ("CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;\n"
              "DO $$ BEGIN PERFORM 1; COMMIT; END $$;\n")
        my = "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; COMMIT; END //\nDELIMITER ;\n"
        assert [None, None] == _control(pg)
        assert [None] == _control(my, "mysql")

    def test_sqlite_table_rebuild(self) -> None:
        sql = ("PRAGMA foreign_keys=OFF;\nBEGIN;\nCREATE TABLE n (id int);\nINSERT INTO n SELECT id FROM o;\n"
               "DROP TABLE o;\nALTER TABLE n RENAME TO o;\nCOMMIT;\nPRAGMA foreign_keys=ON;\n")
        statements = split_statements(sql, "sqlite")
        assert [transactions.Block(2, 7, "commit")] == transactions.blocks(statements)


class TestBlocks:
    def test_several_blocks(self) -> None:
        statements = split_statements("BEGIN; SELECT 1; COMMIT; SELECT 2; START TRANSACTION; ROLLBACK;", "mysql")
        assert [transactions.Block(1, 3, "commit"), transactions.Block(5, 6, "rollback")] == \
            transactions.blocks(statements)

    @pytest.mark.parametrize("sql, message", [
        ("BEGIN;\nSELECT 1;\n", "statement 1 opens a transaction that the file never commits"),
        ("SELECT 1;\nCOMMIT;\n", "statement 2 (COMMIT) ends a transaction the file never opened"),
        ("BEGIN;\nBEGIN;\nCOMMIT;\n", "statement 2 opens a transaction inside the one opened by statement 1"),
    ])
    def test_unbalanced(self, sql: str, message: str) -> None:
        with pytest.raises(transactions.TransactionSyntaxError, match=re.escape(message)):
            transactions.blocks(split_statements(sql, "postgresql"))

    def test_no_blocks(self) -> None:
        assert [] == transactions.blocks(split_statements("CREATE TABLE a (id int); SELECT 1;", "postgresql"))


class TestOutsideTransactionOnly:
    @pytest.mark.parametrize("sql", [
        "CREATE INDEX CONCURRENTLY i ON t (a)", "create unique index concurrently if not exists i on t (a)",
        "DROP INDEX CONCURRENTLY i", "REINDEX INDEX CONCURRENTLY i", "VACUUM ANALYZE t", "ALTER SYSTEM SET x = 1",
        "CREATE DATABASE d", "DROP DATABASE d", "CREATE TABLESPACE s LOCATION '/x'", "CLUSTER",
        "ALTER DATABASE d SET TABLESPACE s",
    ])
    def test_postgresql_refuses(self, sql: str) -> None:
        assert transactions.outside_transaction_only(Statement(sql, 1), "postgresql")

    @pytest.mark.parametrize("sql", ["CREATE INDEX i ON t (a)", "ALTER TYPE mood ADD VALUE 'meh'", "CLUSTER t USING i",
                                     "REFRESH MATERIALIZED VIEW CONCURRENTLY v", "SELECT 'VACUUM'",
                                     "ALTER DATABASE d SET work_mem = '1MB'"])
    def test_postgresql_allows(self, sql: str) -> None:
        assert transactions.outside_transaction_only(Statement(sql, 1), "postgresql") is None

    @pytest.mark.parametrize("sql", ["VACUUM", "PRAGMA foreign_keys = OFF", "pragma main.journal_mode=WAL"])
    def test_sqlite_refuses(self, sql: str) -> None:
        assert transactions.outside_transaction_only(Statement(sql, 1), "sqlite")

    def test_other_dialects_unaffected(self) -> None:
        assert transactions.outside_transaction_only(Statement("VACUUM", 1), "mysql") is None
        assert transactions.outside_transaction_only(Statement("PRAGMA foreign_keys=OFF", 1), "postgresql") is None


# Statements on both sides of the line, for the check that lint and the runner read the one catalogue alike.
AGREEMENT = [
    ("postgresql", "CREATE INDEX CONCURRENTLY i ON t (a)"), ("postgresql", "DROP INDEX CONCURRENTLY i"),
    ("postgresql", "REINDEX TABLE CONCURRENTLY t"), ("postgresql", "REINDEX (CONCURRENTLY) TABLE t"),
    ("postgresql", "REINDEX (CONCURRENTLY false) TABLE t"), ("postgresql", "REINDEX DATABASE d"),
    ("postgresql", "REINDEX TABLE t"), ("postgresql", "VACUUM t"), ("postgresql", "ANALYZE t"),
    ("postgresql", "CLUSTER"), ("postgresql", "CLUSTER t USING i"),
    ("postgresql", "ALTER TABLE p DETACH PARTITION c CONCURRENTLY"), ("postgresql", "ALTER TABLE p DETACH PARTITION c"),
    ("postgresql", "CREATE TABLESPACE s LOCATION '/x'"), ("postgresql", "ALTER SYSTEM SET work_mem = '1MB'"),
    ("postgresql", "CREATE INDEX i ON t (a)"), ("postgresql", "ALTER TYPE e ADD VALUE 'x'"),
    ("sqlite", "VACUUM"), ("sqlite", "PRAGMA foreign_keys = OFF"), ("sqlite", "PRAGMA journal_mode = WAL"),
    ("sqlite", "PRAGMA foreign_keys"), ("sqlite", "CREATE INDEX i ON t (a)"),
]


class TestOneCatalogue:
    """The runner and lint answer "can this run inside a transaction?" from the same catalogue."""

    @pytest.mark.parametrize(("dialect", "sql"), [pytest.param(d, s, id=f"{d}-{s}") for d, s in AGREEMENT])
    def test_lint_flags_exactly_what_the_runner_refuses(self, tmp_path: object, dialect: str, sql: str) -> None:
        """A statement in a file run in a transaction is a lint finding exactly when the runner refuses it."""
        from premigrate.commands.lint import lint_migrations
        from premigrate.model.migrations import Migration

        migration = Migration(kind="versioned", version=None, description="x", script="1_x.sql", up_sql=sql + ";",
                              up_first_line=1, checksum="sha256:x")
        flagged = any(f.rule == "transaction-incompatible" for f in lint_migrations([migration], dialect))
        refused = transactions.outside_transaction_only(Statement(sql, 1), dialect) is not None
        assert refused == flagged

    @pytest.mark.parametrize("sql", ["ALTER TABLE p DETACH PARTITION c CONCURRENTLY", "REINDEX SYSTEM s",
                                     "CLUSTER VERBOSE"])
    def test_runner_refuses_what_lint_always_flagged(self, sql: str) -> None:
        """Statements only lint knew about are refused before they run, not failed half-way."""
        assert transactions.outside_transaction_only(Statement(sql, 1), "postgresql")

    @pytest.mark.parametrize("sql", ["REINDEX (CONCURRENTLY false) TABLE t", "PRAGMA foreign_keys"])
    def test_runner_allows_what_lint_always_allowed(self, sql: str) -> None:
        """Statements that can run in a transaction are no longer refused (a pragma read, CONCURRENTLY off)."""
        dialect = "sqlite" if sql.startswith("PRAGMA") else "postgresql"
        assert transactions.outside_transaction_only(Statement(sql, 1), dialect) is None


class TestConcurrentIndexName:
    @pytest.mark.parametrize("sql, name", [
        ("CREATE INDEX CONCURRENTLY idx_a ON t (a)", "idx_a"),
        ("create unique index concurrently if not exists s.idx ON t (a)", "s.idx"),
        ('CREATE INDEX CONCURRENTLY "Odd ""Name""" ON t (a)', '"Odd ""Name"""'),
        ("CREATE INDEX CONCURRENTLY ON t (a)", None),
        ("CREATE INDEX idx_a ON t (a)", None),
    ])
    def test_names(self, sql: str, name: str | None) -> None:
        assert name == transactions.concurrent_index_name(Statement(sql, 1))


class TestLockRetries:
    def _busy(self) -> lockwait.LockBusy:
        return lockwait.LockBusy(SqlError("lock timeout", code="55P03", lock_contention=True), 2, [{"pid": 7}])

    def test_retries_then_succeeds(self) -> None:
        calls, retries, pauses = [], [], []

        def attempt() -> str:
            calls.append(1)
            if len(calls) < 3:
                raise self._busy()
            return "done"

        result = lockwait.with_lock_retries(attempt, 5, lambda b, n, p: retries.append((n, b.index)), pauses.append)

        assert ("done", 3, [(2, 2), (3, 2)]) == (result, len(calls), retries)
        assert 2 == len(pauses) and pauses[0] < pauses[1]

    def test_gives_up_after_the_retries(self) -> None:
        calls = []

        def attempt() -> None:
            calls.append(1)
            raise self._busy()

        with pytest.raises(lockwait.LockBusy):
            lockwait.with_lock_retries(attempt, 2, lambda *a: None, lambda s: None)
        assert 3 == len(calls)

    def test_zero_retries_means_one_attempt(self) -> None:
        calls = []

        def attempt() -> None:
            calls.append(1)
            raise self._busy()

        with pytest.raises(lockwait.LockBusy):
            lockwait.with_lock_retries(attempt, 0, lambda *a: None, lambda s: None)
        assert 1 == len(calls)

    def test_other_errors_are_not_retried(self) -> None:
        calls = []

        def attempt() -> None:
            calls.append(1)
            raise SqlError("syntax error", code="42601")

        with pytest.raises(SqlError):
            lockwait.with_lock_retries(attempt, 5, lambda *a: None, lambda s: None)
        assert 1 == len(calls)

    def test_backoff_grows_with_jitter_and_is_capped(self) -> None:
        for retry in range(1, 12):
            pause = lockwait.backoff(retry)
            base = min(lockwait.BACKOFF_MAX_S, lockwait.BACKOFF_INITIAL_S * 2 ** (retry - 1))
            assert base <= pause <= base + lockwait.BACKOFF_JITTER_S
        assert len({round(lockwait.backoff(1), 6) for _ in range(20)}) > 1  # jittered, not fixed


class TestTimeoutsFor:
    OPTIONS = {"ddl_lock_timeout": 5.0, "statement_timeout": None, "lock_retries": 10}

    def settings(self, **changes: object) -> StatementSettings:
        return StatementSettings(**{**self.OPTIONS, **changes})  # type: ignore[arg-type]

    def test_run_options(self) -> None:
        t = lockwait.timeouts_for(self.settings(), ())
        assert (5.0, None, 10) == (t.lock, t.statement, t.retries)

    def test_file_overrides(self) -> None:
        t = lockwait.timeouts_for(self.settings(), (("ddl_lock_timeout", 30.0), ("statement_timeout", 0.0),
                                                     ("lock_retries", 0)))
        assert (30.0, 0.0, 0) == (t.lock, t.statement, t.retries)

    def test_run_option_zero_is_no_limit(self) -> None:
        t = lockwait.timeouts_for(self.settings(ddl_lock_timeout=None), ())
        assert 0.0 == t.lock


class TestDescribeBlockers:
    def test_postgresql(self) -> None:
        text = lockwait.describe_blockers([{"pid": 42, "application_name": "psql", "client_addr": "10.0.0.5",
                                            "user": "app", "state": "idle in transaction", "transaction_s": 30,
                                            "query": "SELECT 1"}])
        assert "blocked by pid 42 (application_name 'psql', client 10.0.0.5, user app, idle in transaction " \
               "for 30 s, last query: 'SELECT 1')" == text

    def test_unknown(self) -> None:
        assert "could not be identified" in lockwait.describe_blockers([])


class _Session:
    def __init__(self, sid: int | None = 7) -> None:
        self.sid = sid
        self.lookups: list[int] = []

    def session_id(self) -> int | None:
        return self.sid

    def blockers(self, session_id: int) -> list[dict[str, object]]:
        self.lookups.append(session_id)
        return [{"pid": 99}]


class TestBlockerWatch:
    def test_names_the_blocker_of_a_statement_still_waiting(self) -> None:
        import time

        watcher, waiting = _Session(), _Session(7)
        watch = lockwait.BlockerWatch(watcher)  # type: ignore[arg-type]
        try:
            with watch.watching(waiting, 0.05) as found:  # type: ignore[arg-type]
                deadline = time.monotonic() + 10
                while not found and time.monotonic() < deadline:
                    time.sleep(0.01)
            assert ([{"pid": 99}], [7]) == (found, watcher.lookups)
            # The same thread serves the next statement.
            with watch.watching(waiting, 0.05) as again:  # type: ignore[arg-type]
                while not again and time.monotonic() < deadline:
                    time.sleep(0.01)
            assert [7, 7] == watcher.lookups
        finally:
            watch.close()

    def test_no_lookup_for_a_statement_that_ends_in_time(self) -> None:
        import time

        watcher = _Session()
        watch = lockwait.BlockerWatch(watcher)  # type: ignore[arg-type]
        try:
            with watch.watching(_Session(7), 30.0) as found:  # type: ignore[arg-type]
                pass
            time.sleep(0.1)
            assert ([], []) == (found, watcher.lookups)
        finally:
            watch.close()

    @pytest.mark.parametrize("watcher, sid, timeout", [(None, 7, 1.0), (_Session(), None, 1.0), (_Session(), 7, 0.0)])
    def test_nothing_to_watch(self, watcher: _Session | None, sid: int | None, timeout: float) -> None:
        """No lock session, a database without session ids (SQLite), or no lock timeout: no thread at all."""
        watch = lockwait.BlockerWatch(watcher)  # type: ignore[arg-type]
        with watch.watching(_Session(sid), timeout) as found:  # type: ignore[arg-type]
            pass
        assert [] == found and watch._thread is None
        watch.close()


class _HangingSession(_Session):
    """A lock session whose connection stopped answering: the lookup never returns."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.release = threading.Event()

    def blockers(self, session_id: int) -> list[dict[str, object]]:
        self.lookups.append(session_id)
        self.release.wait(30)
        return []


class TestBlockerWatchStuck:
    def test_a_lookup_that_never_returns_does_not_hang_the_run(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The statement's end waits a bounded time for a lookup in flight, then writes the watcher session off."""
        import time

        monkeypatch.setattr(lockwait, "LOOKUP_WAIT_S", 0.2)
        watcher = _HangingSession()
        watch = lockwait.BlockerWatch(watcher)  # type: ignore[arg-type]
        try:
            with watch.watching(_Session(7), 0.02):  # type: ignore[arg-type]
                deadline = time.monotonic() + 10
                while not watcher.lookups and time.monotonic() < deadline:
                    time.sleep(0.01)
            assert watch.stuck and [7] == watcher.lookups
            with watch.watching(_Session(7), 0.02):  # type: ignore[arg-type]
                time.sleep(0.1)
            assert [7] == watcher.lookups, "a stuck session is never used again"
            watch.close()
        finally:
            watcher.release.set()
