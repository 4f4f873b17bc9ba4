"""`premigrate up` on a three-node Galera cluster: runners on different nodes never both migrate (auto picks the
replicated lease), and a node lost mid-run ends the run with a documented code from which a surviving node
recovers."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support import run_cli
from tests.topology.galera import GaleraCluster, GaleraNode
from tests.topology.runs import Runner, counted_migration

pytestmark = pytest.mark.topology

LEASE = "3s"


def _query(node: GaleraNode, database: str, sql: str) -> list[tuple[Any, ...]]:
    conn = node.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")  # read what the cluster committed
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def _counts(node: GaleraNode, database: str) -> dict[str, int]:
    rows = _query(node, database, "SELECT version, count(*) FROM applied_log GROUP BY version")
    return {str(v): int(n) for v, n in rows}


def _url(node: GaleraNode, database: str) -> str:
    return node.url(database)


class TestTwoNodes:
    def test_two_runners_on_two_nodes_apply_each_migration_once_everywhere(
            self, galera: GaleraCluster, galera_database: str, tmp_path: Path) -> None:
        """Two runners started at once on nodes 1 and 2: both exit 0, auto chose the table lock because of
        Galera, and on every node each migration is applied exactly once."""
        for version in range(1, 9):
            counted_migration(tmp_path, version, mysql=True)
        runners = [Runner("up", "--dir", str(tmp_path), "--lock-lease", LEASE,
                          env={"DATABASE_URL": _url(node, galera_database)}) for node in galera.nodes[:2]]
        try:
            codes = [r.finish() for r in runners]
        finally:
            for r in runners:
                r.kill()
        assert [0, 0] == codes, "\n".join(r.output()[-3000:] for r in runners)
        chosen = [e for r in runners for e in r.find("lock_mode_chosen")]
        assert chosen and all(e["mode"] == "table" and "Galera" in e["reason"] for e in chosen)
        assert 8 == sum(len(r.find("migration_applied")) for r in runners)
        for node in galera.nodes:
            assert {str(v): 1 for v in range(1, 9)} == _counts(node, galera_database)
            states = _query(node, galera_database, "SELECT state, count(*) FROM premigrate_history GROUP BY state")
            assert [("applied", 8)] == [(str(s), int(n)) for s, n in states]


class TestRollingSchemaUpgrade:
    def test_rsu_is_refused(self, galera: GaleraCluster, galera_database: str,
                                           tmp_path: Path) -> None:
        """wsrep_OSU_method = RSU (DDL on this node only): exit 5 and nothing applied. (--allow-galera-rsu is not
        run here: schema changes under RSU desynchronise the node, which is the operator's procedure, not a test's.)"""
        counted_migration(tmp_path, 1, mysql=True)
        node = galera.nodes[0]
        conn = node.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SET GLOBAL wsrep_OSU_method = 'RSU'")
            refused = run_cli("up", "--dir", str(tmp_path), env={"DATABASE_URL": _url(node, galera_database)})
            assert 5 == refused.returncode, refused.stderr[-3000:]
            assert "RSU" in refused.stderr
            assert [] == _query(node, galera_database, "SHOW TABLES LIKE 'applied_log'")
        finally:
            with conn.cursor() as cur:
                cur.execute("SET GLOBAL wsrep_OSU_method = 'TOI'")
            conn.close()


class TestNodeLost:
    def test_node_killed_mid_run_then_a_surviving_node_converges(
            self, galera_own: GaleraCluster, tmp_path: Path) -> None:
        """The node a runner uses is killed mid-run: the run exits with a documented code (3 or 4: the history
        row records where it stopped); on a surviving node the next `up` (after `repair --resume` when the
        statement cut off is in doubt) applies exactly what is missing, each migration once."""
        galera = galera_own  # a node is killed: not the cluster the other tests share
        galera_database = f"pm_topo_{uuid.uuid4().hex[:12]}"
        conn = galera.nodes[0].connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {galera_database}")
        finally:
            conn.close()
        for version in range(1, 31):
            counted_migration(tmp_path, version, "SELECT SLEEP(0.2);\n" if version == 12 else "", mysql=True)
        victim, survivor = galera.nodes[2], galera.nodes[0]
        runner = Runner("up", "--dir", str(tmp_path), "--lock-lease", LEASE, "--wait-timeout", "5s",
                        env={"DATABASE_URL": _url(victim, galera_database)})
        try:
            runner.wait_for(lambda e: e.get("event") == "migration_started" and e.get("version") == "12")
            victim.kill()
            code = runner.finish(timeout=120)
        finally:
            runner.kill()
        # 8: the lock's session was found gone first (docs/topologies.md)
        assert code in (3, 4, 8), runner.output()[-3000:]
        time.sleep(1)  # the survivors notice the node is gone and form the primary component
        rerun = run_cli("up", "--dir", str(tmp_path), "--lock-lease", LEASE,
                        env={"DATABASE_URL": _url(survivor, galera_database)})
        if rerun.returncode == 5:  # the statement cut off is in doubt: the operator settles it (it was a SLEEP)
            assert "in doubt" in rerun.stderr or "repair" in rerun.stderr, rerun.stderr[-3000:]
            resumed = run_cli("repair", "--dir", str(tmp_path), "--resume", "--retry-current", "--lock-lease", LEASE,
                              env={"DATABASE_URL": _url(survivor, galera_database)})
            assert 0 == resumed.returncode, resumed.stderr[-3000:]
            rerun = run_cli("up", "--dir", str(tmp_path), "--lock-lease", LEASE,
                            env={"DATABASE_URL": _url(survivor, galera_database)})
        assert 0 == rerun.returncode, rerun.stderr[-3000:]
        for node in galera.nodes[:2]:
            assert {str(v): 1 for v in range(1, 31)} == _counts(node, galera_database)
