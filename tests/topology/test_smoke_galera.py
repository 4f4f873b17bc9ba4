"""The Galera fixture is a three-node cluster that replicates."""

from __future__ import annotations

import uuid

import pytest

from tests.topology.galera import GaleraCluster

pytestmark = pytest.mark.topology


class TestGaleraCluster:
    def test_every_node_sees_three_members(self, galera: GaleraCluster) -> None:
        """wsrep_cluster_size is 3 on every node, and each node is synced and has wsrep_on."""
        for node in galera.nodes:
            assert "3" == node.status("wsrep_cluster_size")
            assert "Synced" == node.status("wsrep_local_state_comment")
            conn = node.connect()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT @@wsrep_on")
                    assert (1,) == cur.fetchone()
            finally:
                conn.close()

    def test_a_row_written_on_node_1_is_read_on_node_3(self, galera: GaleraCluster, galera_database: str) -> None:
        """A committed InnoDB row on node 1 is visible on node 3 (causal read: wsrep_sync_wait)."""
        value = uuid.uuid4().hex
        one = galera.nodes[0].connect(galera_database)
        three = galera.nodes[2].connect(galera_database)
        try:
            with one.cursor() as cur:
                cur.execute("CREATE TABLE t (id int PRIMARY KEY, v varchar(64)) ENGINE=InnoDB")
                cur.execute("INSERT INTO t VALUES (1, %s)", (value,))
            with three.cursor() as cur:
                cur.execute("SET SESSION wsrep_sync_wait = 1")
                cur.execute("SELECT v FROM t WHERE id = 1")
                assert (value,) == cur.fetchone()
                cur.execute("SELECT @@wsrep_node_name")
                assert ("node3",) == cur.fetchone()
        finally:
            one.close()
            three.close()
