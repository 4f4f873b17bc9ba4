"""engine.topology against the local servers: a direct connection is plain, read-only sessions are seen."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from premigrate.engine.topology import detect_mysql, detect_postgres, unavailable_reason
from tests.support import TestDatabase


@pytest.fixture
def pg(tmp_path: Any) -> Any:
    database = TestDatabase.create("postgresql", tmp_path)
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture
def my(tmp_path: Any) -> Any:
    database = TestDatabase.create("mysql", tmp_path)
    try:
        yield database
    finally:
        database.drop()


class TestPostgresDirect:
    @pytest.mark.parametrize("with_probe", [pytest.param(False, id="alone"), pytest.param(True, id="with-probe")])
    def test_a_direct_connection_is_plain(self, pg: TestDatabase, with_probe: bool) -> None:
        """No pooler, writable, advisory locks trusted."""
        with pg.connect() as conn, pg.connect() as probe:
            topology = detect_postgres(conn, probe if with_probe else None)
        assert topology.pooling is None
        assert topology.writable
        assert "advisory" == topology.lock_mode
        assert () == topology.findings

    def test_a_read_only_session_is_seen_and_its_write_error_classified(self, pg: TestDatabase) -> None:
        """default_transaction_read_only = on: not writable, and a write fails as read_only (25006)."""
        with pg.connect() as conn:
            conn.execute("SET default_transaction_read_only = on")
            topology = detect_postgres(conn)
            assert topology.read_only and not topology.hot_standby and not topology.writable
            assert "read-only" in topology.reason
            with pytest.raises(psycopg.Error) as refused:
                conn.execute("CREATE TABLE t (x int)")
        assert "read_only" == unavailable_reason("postgresql", refused.value)

    def test_a_connection_inside_a_transaction_is_refused(self, pg: TestDatabase) -> None:
        """Detection begins transactions of its own: it needs an autocommit connection."""
        with psycopg.connect(pg.url) as conn, pytest.raises(ValueError, match="autocommit"):
            detect_postgres(conn)


class TestMySQLDirect:
    def test_a_single_mariadb_server_is_plain(self, my: TestDatabase) -> None:
        """wsrep_on is OFF, no Group Replication table, not read-only."""
        conn = my.connect()
        try:
            topology = detect_mysql(conn)
        finally:
            conn.close()
        assert not topology.galera and topology.osu_method is None
        assert not topology.group_replication
        assert topology.writable
        assert "advisory" == topology.lock_mode

    def test_a_read_only_session_is_seen_and_its_write_error_classified(self, my: TestDatabase) -> None:
        """SET SESSION TRANSACTION READ ONLY: not writable, and a write fails as read_only (1792)."""
        conn = my.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE t (x int)")
                cur.execute("SET SESSION TRANSACTION READ ONLY")
            topology = detect_mysql(conn)
            with pytest.raises(Exception) as refused, conn.cursor() as cur:
                cur.execute("INSERT INTO t VALUES (1)")
        finally:
            conn.close()
        assert topology.read_only and not topology.writable
        assert "read_only" == unavailable_reason("mysql", refused.value)
