"""Driver.rebound: a fleet worker's session moves to its next target with nothing of the previous one left."""

from __future__ import annotations

from dataclasses import replace

import pytest

from premigrate.drivers import driver_class
from premigrate.drivers.base import Driver, DriverSettings, SqlError
from premigrate.model.dsn import parse_url
from tests.support import TestDatabase

SETTINGS = DriverSettings(table="premigrate_history")
KEY = "fleet-rebound-test"


# The servers' sessions move between targets; SQLite targets are files, each opened anew (test_sqlite_never_rebinds).
SERVERS = pytest.mark.parametrize("dialect", ["postgresql", "mysql"])


def connect(db: TestDatabase, **settings: object) -> Driver:
    driver = driver_class(db.dialect).connect(parse_url(db.url), replace(SETTINGS, **settings))  # type: ignore[arg-type]
    driver.prepare_session()
    return driver


def scalar(driver: Driver, sql: str) -> object:
    return driver.fetch(sql, ())[0][0]


class TestRebound:
    @SERVERS
    def test_state_of_the_previous_target_is_gone(self, db: TestDatabase) -> None:
        """Session variables, temporary tables and the runner lock of the previous target do not survive."""
        first = connect(db)
        other = connect(db)
        try:
            if db.dialect == "postgresql":
                first.execute("SET statement_timeout = 1234")
                first.execute("CREATE TEMPORARY TABLE leftover (id int)")
                variable = "SELECT current_setting('statement_timeout')"
                temp_count = "SELECT count(*) FROM pg_tables WHERE tablename = 'leftover'"
            else:
                first.execute("SET SESSION sql_mode = 'ANSI_QUOTES'")
                first.execute("CREATE TEMPORARY TABLE leftover (id int)")
                variable = "SELECT @@SESSION.sql_mode"
                temp_count = "SELECT 0"  # MariaDB 10 lists no temporary tables: the SELECT below must fail
            assert first.try_lock(KEY)
            before = scalar(first, variable)
            second = first.rebound(parse_url(db.url), SETTINGS)
            assert second is not None
            second.prepare_session()
            assert before != scalar(second, variable)
            assert 0 == scalar(second, temp_count)
            if db.dialect == "mysql":
                with pytest.raises(SqlError) as gone:
                    second.execute("SELECT * FROM leftover")
                assert "1146" == str(gone.value.code)  # ER_NO_SUCH_TABLE
            assert other.try_lock(KEY), "the previous target's runner lock survived the rebind"
            other.unlock(KEY)
        finally:
            first.close()
            other.close()

    @SERVERS
    def test_moves_to_the_next_schema_or_database(self, db: TestDatabase) -> None:
        """PostgreSQL: the next schema's search path; MariaDB: the next database, on the same connection."""
        driver = connect(db, search_path="tenant_a") if db.dialect == "postgresql" else connect(db)
        try:
            if db.dialect == "postgresql":
                second = driver.rebound(parse_url(db.url), replace(SETTINGS, search_path="tenant_b"))
                assert second is not None
                second.prepare_session()
                assert "tenant_b" == scalar(second, "SELECT current_setting('search_path')")
            else:
                db.admin(f"CREATE DATABASE {db.name}_b")
                try:
                    url = parse_url(db.url)
                    second = driver.rebound(replace(url, database=f"{db.name}_b"), SETTINGS)
                    assert second is not None
                    assert f"{db.name}_b" == scalar(second, "SELECT DATABASE()")
                finally:
                    db.admin(f"DROP DATABASE IF EXISTS {db.name}_b")
        finally:
            driver.close()

    @SERVERS
    def test_refuses_another_server_or_user(self, db: TestDatabase) -> None:
        """A session never serves a target on another port or as another user: None, and the caller reconnects."""
        url = parse_url(db.url)
        driver = connect(db)
        try:
            assert driver.rebound(replace(url, port=1), SETTINGS) is None
            assert driver.rebound(replace(url, user="someone_else"), SETTINGS) is None
        finally:
            driver.close()

    @pytest.mark.parametrize("dialect", ["postgresql"])  # MariaDB switches databases on one connection (above)
    def test_postgresql_refuses_another_database(self, db: TestDatabase) -> None:
        """A PostgreSQL session cannot change its database: None."""
        driver = connect(db)
        try:
            assert driver.rebound(replace(parse_url(db.url), database="postgres"), SETTINGS) is None
        finally:
            driver.close()

    @pytest.mark.parametrize("dialect", ["sqlite"])
    def test_sqlite_never_rebinds(self, db: TestDatabase) -> None:
        """SQLite: every target is a file of its own, opened anew."""
        driver = connect(db)
        try:
            assert driver.rebound(parse_url(db.url), SETTINGS) is None
        finally:
            driver.close()
