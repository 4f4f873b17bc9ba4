"""Database size and rows affected (engine/measurements.py) on the real PostgreSQL, MariaDB and SQLite."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from premigrate.engine import measurements
from premigrate.engine.measurements import (
    RowCounts,
    database_size,
    reported_rowcount,
    rows_affected,
)
from premigrate.model.dsn import parse_url
from tests.support import TestDatabase

FILL = {
    "postgresql": "INSERT INTO t (v) SELECT repeat('x', 200) FROM generate_series(1, 5000)",
    "mysql": "INSERT INTO t (v) SELECT REPEAT('x', 200) FROM seq_1_to_5000",
    "sqlite": "INSERT INTO t (v) WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 5000) "
              "SELECT printf('%.200c', 'x') FROM s",
}
SLEEP = {"postgresql": "SELECT (pg_sleep(5) IS NULL)::int::bigint",
         "mysql": "SELECT SLEEP(5) + 0 * %s"}


def run(conn: Any, dialect: str, sql: str) -> Any:
    """Execute one statement and return its cursor, as a driver would."""
    if dialect == "mysql":
        cur = conn.cursor()
        cur.execute(sql)
        return cur
    return conn.execute(sql)


class TestDatabaseSize:
    def test_size_grows(self, db: TestDatabase) -> None:
        """A figure in bytes before, and a larger one after 5000 rows of 200 bytes."""
        conn = db.connect()
        try:
            key = {"postgresql": "SERIAL PRIMARY KEY", "mysql": "INTEGER PRIMARY KEY AUTO_INCREMENT",
                   "sqlite": "INTEGER PRIMARY KEY"}[db.dialect]
            run(conn, db.dialect, f"CREATE TABLE t (id {key}, v VARCHAR(300))")
            before = database_size(conn, db.dialect)
            run(conn, db.dialect, FILL[db.dialect])
            if db.dialect == "mysql":
                run(conn, db.dialect, "ANALYZE TABLE t").fetchall()  # InnoDB's figures are statistics
            after = database_size(conn, db.dialect)
        finally:
            conn.close()
        assert (None, None) == (before.skipped, after.skipped)
        assert before.bytes is not None and after.bytes is not None and before.bytes > 0
        assert after.bytes >= before.bytes + 5000 * 200 // 2

    @pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
    def test_slow_query_is_skipped(self, db: TestDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
        """A measurement slower than its bound is skipped with the reason; the session stays usable."""
        monkeypatch.setitem(measurements.SIZE_QUERIES, db.dialect, SLEEP[db.dialect])
        conn = db.connect()
        try:
            size = database_size(conn, db.dialect, timeout_s=0.2)
            assert (None, "skipped: measuring took longer than 0.2s") == (size.bytes, size.skipped)
            assert (1,) == tuple(run(conn, db.dialect, "SELECT 1").fetchone())
            if db.dialect == "postgresql":
                assert "0" == conn.execute("SHOW statement_timeout").fetchone()[0]
        finally:
            conn.close()

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_postgres_inside_a_transaction(self, db: TestDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
        """A skipped measurement inside the caller's transaction leaves that transaction usable."""
        monkeypatch.setitem(measurements.SIZE_QUERIES, "postgresql", SLEEP["postgresql"])
        import psycopg

        with psycopg.connect(db.url) as conn:
            conn.execute("CREATE TABLE kept (id int)")
            assert database_size(conn, "postgresql", timeout_s=0.2).skipped
            conn.execute("INSERT INTO kept VALUES (1)")
            conn.commit()
        assert [(1,)] == db.query("SELECT id FROM kept")

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_postgres_not_permitted(self, db: TestDatabase) -> None:
        """A role without CONNECT on the database gets a skip saying so, not an error."""
        import psycopg

        role = f"pm_test_role_{uuid.uuid4().hex[:8]}"
        db.admin(f"CREATE ROLE {role} LOGIN")
        try:
            with psycopg.connect(db.url.replace("postgres@", f"{role}@", 1), autocommit=True) as conn:
                db.admin(f"REVOKE CONNECT ON DATABASE {db.name} FROM PUBLIC")
                size = database_size(conn, "postgresql")
            assert size.bytes is None and size.skipped is not None
            assert size.skipped.startswith("skipped: not permitted (permission denied for database")
        finally:
            db.drop()
            db.admin(f"DROP ROLE IF EXISTS {role}")

    def test_sqlite_attached(self, tmp_path: Path) -> None:
        """SQLite's figure is page_count * page_size of the named database."""
        import sqlite3

        conn = sqlite3.connect(tmp_path / "a.db")
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        assert 2 * page_size == database_size(conn, "sqlite").bytes
        conn.close()


class TestRowsAffected:
    def test_per_statement(self, db: TestDatabase) -> None:
        """Each driver's count after INSERT/UPDATE/DELETE; None for DDL; a total over the known ones. MySQL is
        connected with CLIENT.FOUND_ROWS as premigrate's driver does."""
        if db.dialect == "mysql":
            import pymysql  # type: ignore[import-untyped]
            from pymysql.constants import CLIENT  # type: ignore[import-untyped]

            url = parse_url(db.url)
            conn = pymysql.connect(host=url.host, port=url.port or 3306, user=url.user, password=url.password or "",
                                   database=url.database, autocommit=True, client_flag=CLIENT.FOUND_ROWS)
        else:
            conn = db.connect()
        counts = RowCounts()
        statements = [
            "CREATE TABLE t (id INTEGER, v VARCHAR(10))",
            "INSERT INTO t (id, v) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
            "UPDATE t SET v = 'z' WHERE id >= 2",
            "UPDATE t SET v = 'z' WHERE id > 99",
            "UPDATE t SET v = 'z' WHERE id = 3",  # matched, value unchanged: 1 with found rows
            "DELETE FROM t WHERE id = 1",
            "ALTER TABLE t ADD COLUMN w INTEGER",
            "DROP TABLE t",
        ]
        try:
            for statement in statements:
                counts.add(statement, reported_rowcount(run(conn, db.dialect, statement)))
        finally:
            conn.close()
        assert [None, 3, 2, 0, 1, 1, None, None] == counts.per_statement
        assert 7 == counts.total
        assert {"rows_affected": 7, "rows_affected_per_statement": [None, 3, 2, 0, 1, 1, None, None]} == counts.as_dict()


class TestRowsAffectedRules:
    @pytest.mark.parametrize(("statement", "reported", "expected"), [
        pytest.param("INSERT INTO t VALUES (1)", 1, 1, id="dml"),
        pytest.param("CREATE TABLE t (x int)", 0, None, id="mysql-ddl-zero"),
        pytest.param("  -- why\n/* block */ alter table t add c int", 0, None, id="ddl-after-comments"),
        pytest.param("UPDATE t SET x = 1", -1, None, id="no-count"),
        pytest.param("DELETE FROM t", None, None, id="none"),
        pytest.param("UPDATE t SET x = 1 WHERE false", 0, 0, id="zero-rows"),
        pytest.param(" \n" * 50000 + "(", 0, 0, id="long-whitespace-linear"),
    ])
    def test_rules(self, statement: str, reported: int | None, expected: int | None) -> None:
        """None means "not a row count"; 0 means a statement that could change rows changed none."""
        assert expected == rows_affected(statement, reported)


class TestThroughDriver:
    def test_driver_session(self, db: TestDatabase) -> None:
        """database_size works on a premigrate driver's own connection (the executor's lock session), and leaves
        that session usable."""
        from premigrate.drivers import driver_class
        from premigrate.drivers.base import DriverSettings

        driver = driver_class(db.dialect).connect(parse_url(db.url), DriverSettings(table="premigrate_history"))
        try:
            empty = database_size(driver.conn, db.dialect)  # type: ignore[attr-defined]
            driver.execute("CREATE TABLE after_size (id INTEGER)")
            one_table = database_size(driver.conn, db.dialect)  # type: ignore[attr-defined]
            assert ["after_size"] == [t for t in driver.list_tables() if t == "after_size"]
        finally:
            driver.close()
        # An empty SQLite file or MySQL schema really is 0 bytes; PostgreSQL counts its catalogs (an empty table's
        # catalog rows may fit in pages it already has).
        assert (None, None) == (empty.skipped, one_table.skipped)
        assert empty.bytes is not None and one_table.bytes is not None and 0 <= empty.bytes <= one_table.bytes
        assert one_table.bytes > 0
