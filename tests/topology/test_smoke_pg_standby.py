"""The PostgreSQL fixtures are a primary and a streaming hot standby that can be promoted."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from tests.topology.pgha import PgServer

pytestmark = pytest.mark.topology
class TestStreamingStandby:
    def test_the_standby_is_in_recovery_and_sees_the_primarys_writes(self, pg_primary: PgServer,
                                                                      pg_standby: PgServer) -> None:
        """pg_is_in_recovery() is true on the standby, false on the primary; a committed row is replayed."""
        assert pg_standby.in_recovery() is True
        assert pg_primary.in_recovery() is False
        table, value = f"t_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        pg_primary.query(f"CREATE TABLE {table} (v text)")
        pg_primary.query(f"INSERT INTO {table} VALUES (%s)", (value,))
        pg_standby.wait_replayed(pg_primary)
        assert [(value,)] == pg_standby.query(f"SELECT v FROM {table}")

    def test_the_standby_refuses_writes_until_promoted(self, pg_primary: PgServer, pg_standby: PgServer) -> None:
        """A write on the standby fails as read-only (SQLSTATE 25006); after pg_ctl promote it succeeds."""
        table = f"t_{uuid.uuid4().hex[:8]}"
        pg_primary.query(f"CREATE TABLE {table} (v text)")
        pg_standby.wait_replayed(pg_primary)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            pg_standby.query(f"INSERT INTO {table} VALUES ('x')")
        pg_standby.promote()
        assert pg_standby.in_recovery() is False
        pg_standby.query(f"INSERT INTO {table} VALUES ('after promote')")
        assert [("after promote",)] == pg_standby.query(f"SELECT v FROM {table}")


class TestMultiHostUrls:
    def test_read_write_picks_the_primary_even_when_the_standby_is_listed_first(self, pg_primary: PgServer,
                                                                                pg_standby: PgServer) -> None:
        """libpq tries the hosts in order and skips a server that is read-only (target_session_attrs)."""
        url = (f"postgresql://postgres@127.0.0.1:{pg_standby.port},127.0.0.1:{pg_primary.port}/postgres"
               "?target_session_attrs=read-write")
        with psycopg.connect(url, autocommit=True) as conn:
            assert pg_primary.port == conn.info.port
            assert (False,) == conn.execute("SELECT pg_is_in_recovery()").fetchone()

    def test_read_write_against_the_standby_alone_fails_naming_it_read_only(self, pg_standby: PgServer) -> None:
        """With only the standby listed, libpq refuses the connection and says why."""
        url = f"postgresql://postgres@127.0.0.1:{pg_standby.port}/postgres?target_session_attrs=read-write"
        with pytest.raises(psycopg.OperationalError, match="read-only"):
            psycopg.connect(url, connect_timeout=5).close()
