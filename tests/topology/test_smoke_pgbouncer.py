"""The PgBouncer fixtures are what they claim: which pool mode hands which backend to a client."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.topology.pgbouncer import PgBouncer

pytestmark = pytest.mark.topology


def _connect(bouncer: PgBouncer, database: str) -> psycopg.Connection[Any]:
    return psycopg.connect(bouncer.url(database), autocommit=True, prepare_threshold=None)


def _pid_in_transaction(conn: psycopg.Connection[Any]) -> int:
    with conn.transaction():
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def _pids_across_transactions(bouncer: PgBouncer, database: str) -> tuple[int, int, int]:
    """(pid of client A's first transaction, pid another client got meanwhile, pid of A's second transaction)."""
    with _connect(bouncer, database) as a, _connect(bouncer, database) as b:
        first = _pid_in_transaction(a)
        # B opens a transaction between A's two: a pooler that gave A's backend back to the pool hands it to B.
        with b.transaction():
            row = b.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            other = int(row[0])
            second = _pid_in_transaction(a)
    return first, other, second


class TestTransactionPooling:
    def test_one_client_connection_gets_another_backend_in_its_next_transaction(
            self, pgbouncer_transaction: PgBouncer, local_pg_database: str) -> None:
        """Transaction pooling: a client's backend goes back to the pool at COMMIT and another client gets it."""
        first, other, second = _pids_across_transactions(pgbouncer_transaction, local_pg_database)
        assert first != second
        assert other == first

    def test_the_pooler_is_pgbouncer_in_transaction_mode(self, pgbouncer_transaction: PgBouncer,
                                                          local_pg_database: str) -> None:
        """The console agrees: the pool of the test database runs in transaction mode."""
        with _connect(pgbouncer_transaction, local_pg_database) as conn:
            conn.execute("SELECT 1")
            pools = pgbouncer_transaction.admin("SHOW POOLS")
        modes = {row[0]: row[-1] for row in pools}
        assert "transaction" == modes[local_pg_database]
        assert pgbouncer_transaction.version >= (1, 18)


class TestSessionPooling:
    def test_one_client_connection_keeps_its_backend(self, pgbouncer_session: PgBouncer,
                                                     local_pg_database: str) -> None:
        """Session pooling: a client keeps one backend for its whole connection, as without a pooler."""
        first, other, second = _pids_across_transactions(pgbouncer_session, local_pg_database)
        assert first == second
        assert other != first


class TestStatementPooling:
    def test_multi_statement_transactions_are_refused(self, pgbouncer_statement: PgBouncer,
                                                      local_pg_database: str) -> None:
        """Statement pooling: every statement is its own transaction; an explicit transaction is refused."""
        with _connect(pgbouncer_statement, local_pg_database) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
            with pytest.raises(psycopg.Error, match="statement pooling"), conn.transaction():
                conn.execute("SELECT 1")
                conn.execute("SELECT 2")
