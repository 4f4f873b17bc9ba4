"""engine.topology on the real topologies: PgBouncer's pool modes, Galera, a hot standby before and after promote."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from premigrate.engine.topology import TopologyRefused, detect_mysql, detect_postgres, refuse, unavailable_reason
from tests.topology.galera import GaleraCluster
from tests.topology.pgbouncer import PgBouncer
from tests.topology.pgha import PgServer

pytestmark = pytest.mark.topology


def connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, prepare_threshold=None)


class TestPgBouncer:
    def test_transaction_pooling_is_detected_by_the_backend_pid_changing(
            self, pgbouncer_transaction: PgBouncer, local_pg_database: str) -> None:
        """With a probe connection the pid change is certain; the reason names both pids; auto chooses table."""
        url = pgbouncer_transaction.url(local_pg_database)
        with connect(url) as conn, connect(url) as probe:
            topology = detect_postgres(conn, probe)
        assert "transaction" == topology.pooling
        assert "table" == topology.lock_mode
        assert "transaction pooling detected" in topology.reason
        assert "backend pid changed" in topology.reason

    def test_without_a_probe_a_pooler_is_still_not_trusted(self, pgbouncer_transaction: PgBouncer,
                                                            local_pg_database: str) -> None:
        """Alone, the pooler may hand the same backend back; the cancel-key pid still gives it away."""
        with connect(pgbouncer_transaction.url(local_pg_database)) as conn:
            topology = detect_postgres(conn)
        assert topology.pooling in ("transaction", "unknown")
        assert "table" == topology.lock_mode

    def test_session_pooling_keeps_session_locks(self, pgbouncer_session: PgBouncer, local_pg_database: str) -> None:
        """A pooler is seen, but it keeps one backend per client: advisory locks hold."""
        url = pgbouncer_session.url(local_pg_database)
        with connect(url) as conn, connect(url) as probe:
            topology = detect_postgres(conn, probe)
        assert "session" == topology.pooling
        assert "advisory" == topology.lock_mode
        assert "session pooling detected" in topology.reason

    def test_statement_pooling_is_detected_and_refused(self, pgbouncer_statement: PgBouncer,
                                                       local_pg_database: str) -> None:
        """PgBouncer refuses the test transaction (and closes the connection): statement pooling, refused."""
        url = pgbouncer_statement.url(local_pg_database)
        with connect(url) as conn, connect(url) as probe:
            topology = detect_postgres(conn, probe)
        assert "statement" == topology.pooling
        assert isinstance(refuse(topology), TopologyRefused)


class TestGalera:
    def test_galera_is_detected_with_its_size_and_toi(self, galera: GaleraCluster) -> None:
        """wsrep_on, three nodes, TOI by default: the table lock, no refusal."""
        conn = galera.nodes[1].connect()
        try:
            topology = detect_mysql(conn)
        finally:
            conn.close()
        assert topology.galera and 3 == topology.cluster_size and "TOI" == topology.osu_method
        assert "table" == topology.lock_mode
        assert "Galera 3 nodes detected" in topology.reason
        assert refuse(topology) is None

    def test_a_session_in_rsu_is_refused_unless_allowed(self, galera: GaleraCluster) -> None:
        """wsrep_OSU_method = RSU would keep DDL on one node: refused unless the operator allows it."""
        conn = galera.nodes[0].connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION wsrep_OSU_method = 'RSU'")
            topology = detect_mysql(conn)
        finally:
            conn.close()
        assert "RSU" == topology.osu_method
        assert isinstance(refuse(topology), TopologyRefused)
        assert refuse(topology, allow_rsu=True) is None


class TestStandby:
    def test_a_hot_standby_is_read_only_until_promoted(self, pg_primary: PgServer, pg_standby: PgServer) -> None:
        """pg_is_in_recovery(): not writable, writes fail as read_only; after promote: writable."""
        with pg_standby.connect() as conn:
            topology = detect_postgres(conn)
            assert topology.hot_standby and not topology.writable
            assert "hot standby" in topology.reason
            with pytest.raises(psycopg.Error) as refused:
                conn.execute("CREATE TABLE t (x int)")
        assert "read_only" == unavailable_reason("postgresql", refused.value)
        with pg_primary.connect() as conn:
            assert detect_postgres(conn).writable
        pg_standby.promote()
        with pg_standby.connect() as conn:
            topology = detect_postgres(conn)
        assert topology.writable and not topology.hot_standby
