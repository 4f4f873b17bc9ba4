"""The table runner lock on a three-node Galera cluster: a replicated InnoDB row, certified on every node.

GET_LOCK is local to one node, so two runners on two nodes would both hold it; the lease row is replicated, and a
conflicting write on another node surfaces as a certification failure (errno 1213) at commit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from premigrate.engine.lease import Holder, Lease, LockLost, lock_table_name
from tests.topology.galera import GaleraCluster, GaleraNode

pytestmark = pytest.mark.topology
TABLE = lock_table_name("premigrate_history")
EXPIRY_BOUND_S = 15.0


class Nodes:
    """Connections to the cluster's nodes for one test, closed at its end."""

    def __init__(self, cluster: GaleraCluster, database: str) -> None:
        self.cluster = cluster
        self.database = database
        self.opened: list[Any] = []

    def __call__(self, index: int) -> Any:
        """An autocommit connection to node `index` (1-based) whose reads wait for the cluster (wsrep_sync_wait)."""
        node: GaleraNode = self.cluster.nodes[index - 1]
        conn = node.connect(self.database)
        with conn.cursor() as cur:
            cur.execute("SET SESSION wsrep_sync_wait = 1")
        self.opened.append(conn)
        return conn

    def close(self) -> None:
        for conn in self.opened:
            with contextlib.suppress(Exception):  # a test may have broken it on purpose
                conn.close()


def lease(name: str, duration_s: float = 30.0) -> Lease:
    return Lease("mysql", TABLE, duration_s=duration_s, holder=Holder(name, f"host-{name}", 4242))


def sql(conn: Any, statement: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(statement, params)
        return list(cur.fetchall())


def wait_expired(a: Lease, conn: Any) -> None:
    deadline = time.monotonic() + EXPIRY_BOUND_S
    while True:
        state = a.current(conn)
        assert state is not None
        if state.expired:
            return
        assert time.monotonic() < deadline, f"lease still not expired after {EXPIRY_BOUND_S} s: {state}"
        time.sleep(max(0.02, min(state.expires_in_s, 0.2)))


@pytest.fixture
def nodes(galera: GaleraCluster, galera_database: str) -> Iterator[Nodes]:
    n = Nodes(galera, galera_database)
    conn = n(1)
    lease("setup").ensure_table(conn)
    sql(conn, "CREATE TABLE history_writes (id INT PRIMARY KEY) ENGINE=InnoDB")
    try:
        yield n
    finally:
        n.close()


class TestLeaseOnGalera:
    def test_two_runners_on_two_nodes_never_both_hold_the_lease(self, nodes: Nodes) -> None:
        """Runners on node 1 and node 2 try at the same instant, twenty rounds: never both win, and every node
        agrees on the winner."""
        a, b = lease("a"), lease("b")
        conn_a, conn_b, conn_3 = nodes(1), nodes(2), nodes(3)
        rounds_won = 0
        for _ in range(20):
            barrier = threading.Barrier(2)
            won: dict[str, bool] = {}

            def attempt(name: str, mine: Lease, conn: Any, barrier: threading.Barrier, won: dict[str, bool]) -> None:
                barrier.wait()
                won[name] = mine.try_acquire(conn)

            threads = [threading.Thread(target=attempt, args=("a", a, conn_a, barrier, won)),
                       threading.Thread(target=attempt, args=("b", b, conn_b, barrier, won))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert not (won["a"] and won["b"]), "both runners hold the lease"
            winners = [name for name, ok in won.items() if ok]
            if winners:
                rounds_won += 1
                for conn in (conn_a, conn_b, conn_3):
                    state = a.current(conn)
                    assert state is not None and winners[0] == state.holder and not state.expired
                assert (a if winners == ["a"] else b).release(conn_a if winners == ["a"] else conn_b)
            else:
                # Both lost a certification conflict: legitimate, nobody holds it; make sure of that.
                assert a.holder_fields(conn_3) is None
        assert rounds_won > 0

    def test_an_expired_lease_is_taken_over_on_another_node(self, nodes: Nodes) -> None:
        """A runner on node 1 stops renewing; once the lease expires a runner on node 3 takes it, and node 1's
        next renewal learns it lost it."""
        a, b = lease("a", duration_s=0.5), lease("b")
        conn_1, conn_3 = nodes(1), nodes(3)
        assert a.try_acquire(conn_1)
        assert b.try_acquire(conn_3) is False
        wait_expired(a, conn_3)
        assert b.try_acquire(conn_3) is True
        with pytest.raises(LockLost, match="host-b"):
            a.renew(conn_1)
        state = a.current(nodes(2))
        assert state is not None and "b" == state.holder

    def test_a_paused_runner_fails_its_fence_after_a_takeover_on_another_node(self, nodes: Nodes) -> None:
        """Runner A on node 1 is paused past its lease inside its history transaction; B takes over on node 2;
        A's fence then fails and nothing of A's reaches any node."""
        a, b = lease("a", duration_s=0.5), lease("b")
        lock_1, conn_1 = nodes(1), nodes(1)
        assert a.try_acquire(lock_1)
        sql(conn_1, "BEGIN")
        sql(conn_1, "INSERT INTO history_writes (id) VALUES (1)")
        wait_expired(a, nodes(2))  # the pause
        assert b.try_acquire(nodes(2))
        with pytest.raises((LockLost, pymysql.err.OperationalError)) as failed:
            a.fence(conn_1)
            sql(conn_1, "COMMIT")
        if isinstance(failed.value, pymysql.err.OperationalError):
            assert 1213 == failed.value.args[0]  # certification failure / brute-force abort
        try:
            sql(conn_1, "ROLLBACK")
        except pymysql.err.OperationalError as exc:
            # B's takeover may brute-force abort A's transaction after the fence has answered; Galera reports that
            # abort on the session's next statement, here the ROLLBACK. The transaction is gone either way.
            assert 1213 == exc.args[0], exc
        for index in (1, 2, 3):
            assert [] == sql(nodes(index), "SELECT id FROM history_writes")

    def test_a_takeover_on_another_node_between_fence_and_commit_aborts_the_commit(self, nodes: Nodes) -> None:
        """The fence passed on node 1 (its row lock is local to node 1), then the lease expired and B took it on
        node 2 before A committed: Galera certification rolls A's transaction back (errno 1213). On one server the
        takeover would have waited for A's commit instead; here the commit is what fails."""
        a, b = lease("a", duration_s=1.0), lease("b")
        lock_1, conn_1 = nodes(1), nodes(1)
        assert a.try_acquire(lock_1)
        sql(conn_1, "BEGIN")
        sql(conn_1, "INSERT INTO history_writes (id) VALUES (1)")
        a.fence(conn_1)
        wait_expired(a, nodes(2))
        assert b.try_acquire(nodes(2)) is True
        with pytest.raises(pymysql.err.OperationalError) as aborted:
            sql(conn_1, "COMMIT")
        assert 1213 == aborted.value.args[0]
        for index in (1, 2, 3):
            assert [] == sql(nodes(index), "SELECT id FROM history_writes")
            state = a.current(nodes(index))
            assert state is not None and "b" == state.holder
