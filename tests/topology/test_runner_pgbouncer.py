"""`premigrate up` through PgBouncer: the runner lock holds in every pooling mode it accepts, and the lease takes
over from a killed runner and fences out a paused one."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support import run_cli
from tests.topology.conftest import LOCAL_POSTGRES
from tests.topology.pgbouncer import PgBouncer
from tests.topology.runs import Runner, counted_migration

pytestmark = pytest.mark.topology

LEASE = "3s"  # short leases keep the takeover tests quick
RUNNERS = 20
ROUNDS = 5
PER_ROUND = 3


def _direct(database: str) -> psycopg.Connection[Any]:
    return psycopg.connect(LOCAL_POSTGRES.rsplit("/", 1)[0] + f"/{database}", autocommit=True)


def _counts(database: str) -> dict[str, int]:
    with _direct(database) as conn:
        rows = conn.execute("SELECT version, count(*) FROM applied_log GROUP BY version").fetchall()
    return {str(v): int(n) for v, n in rows}


def _history(database: str) -> list[tuple[str, str]]:
    with _direct(database) as conn:
        rows = conn.execute("SELECT version, state FROM premigrate_history ORDER BY version").fetchall()
    return [(str(v), str(s)) for v, s in rows]


def _stampede(bouncer: PgBouncer, database: str, folder: Path) -> tuple[set[str], set[str]]:
    """RUNNERS concurrent `up` runs per round, ROUNDS rounds, each round adding files; returns the lock modes and
    reasons the runners logged."""
    modes: set[str] = set()
    reasons: set[str] = set()
    for round_number in range(ROUNDS):
        for k in range(PER_ROUND):
            counted_migration(folder, round_number * PER_ROUND + k + 1)
        runners = [Runner("up", "--dir", str(folder), "--lock-lease", LEASE,
                          env={"DATABASE_URL": bouncer.url(database)}) for _ in range(RUNNERS)]
        try:
            codes = [r.finish() for r in runners]
        finally:
            for r in runners:
                r.kill()
        assert [0] * RUNNERS == codes, "\n".join(r.output()[-2000:] for r in runners if r.proc.returncode)
        for r in runners:
            for event in r.find("lock_mode_chosen"):
                modes.add(event["mode"])
                reasons.add(event["reason"])
        expected = {str(v): 1 for v in range(1, (round_number + 1) * PER_ROUND + 1)}
        assert expected == _counts(database)
    assert [(str(v), "applied") for v in sorted(range(1, ROUNDS * PER_ROUND + 1), key=str)] == \
        sorted(_history(database))
    return modes, reasons


class TestTransactionPooling:
    def test_concurrent_runs_apply_each_migration_exactly_once(
            self, pgbouncer_transaction: PgBouncer, local_pg_database: str, tmp_path: Path) -> None:
        """20 concurrent `up` x 5 rounds through transaction pooling: every run exits 0, each migration once,
        and auto chose the table lock because it saw transaction pooling."""
        modes, reasons = _stampede(pgbouncer_transaction, local_pg_database, tmp_path)
        assert {"table"} == modes
        assert all("transaction pooling" in reason for reason in reasons), reasons

    def test_no_transaction_file_with_concurrent_index_builds(
            self, pgbouncer_transaction: PgBouncer, local_pg_database: str, tmp_path: Path) -> None:
        """Three CREATE INDEX CONCURRENTLY in a no-transaction file, through transaction pooling: applied, every
        index valid, the progress row complete."""
        (tmp_path / "0001_t.sql").write_text("CREATE TABLE t (a int, b int, c int);\n")
        (tmp_path / "0002_idx.sql").write_text(
            "-- premigrate:no-transaction\n"
            "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"
            "CREATE INDEX CONCURRENTLY t_b ON t (b);\n"
            "CREATE INDEX CONCURRENTLY t_c ON t (c);\n")
        result = run_cli("up", "--dir", str(tmp_path), "--lock-lease", LEASE,
                         env={"DATABASE_URL": pgbouncer_transaction.url(local_pg_database)})
        assert 0 == result.returncode, result.stderr[-3000:]
        assert ["table"] == [e["mode"] for e in result.find("lock_mode_chosen")]
        with _direct(local_pg_database) as conn:
            indexes = conn.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = 't'::regclass ORDER BY 1").fetchall()
            row = conn.execute("SELECT state, statements_done, statements_total FROM premigrate_history"
                               " WHERE version = '2'").fetchone()
        assert [("t_a", True), ("t_b", True), ("t_c", True)] == indexes
        assert ("applied", 3, 3) == row

    def test_schema_search_path_applies_to_every_migration_transaction(
            self, pgbouncer_transaction: PgBouncer, local_pg_database: str, tmp_path: Path) -> None:
        """--schema through transaction pooling: every migration's unqualified table lands in that schema, although
        each transaction may get another backend than the one the session's SET ran on."""
        for version in range(1, 13):
            (tmp_path / f"{version:04d}_t.sql").write_text(f"CREATE TABLE t{version} (id int);\n")
        stop = threading.Event()

        def churn() -> None:
            """Other clients taking backends all the time, so that the run's transactions move between them."""
            with psycopg.connect(pgbouncer_transaction.url(local_pg_database), autocommit=True,
                                 prepare_threshold=None) as conn:
                while not stop.is_set():
                    with conn.transaction():
                        conn.execute("SELECT pg_sleep(0.005)")

        churners = [threading.Thread(target=churn, daemon=True) for _ in range(4)]
        for thread in churners:
            thread.start()
        try:
            result = run_cli("up", "--dir", str(tmp_path), "--schema", "app", "--lock-lease", LEASE,
                             env={"DATABASE_URL": pgbouncer_transaction.url(local_pg_database)})
        finally:
            stop.set()
            for thread in churners:
                thread.join(timeout=10)
        assert 0 == result.returncode, result.stderr[-3000:]
        with _direct(local_pg_database) as conn:
            rows = conn.execute("SELECT schemaname, count(*) FROM pg_tables WHERE tablename ~ '^t[0-9]+$'"
                                " GROUP BY 1").fetchall()
        assert [("app", 12)] == rows

    def test_killed_runner_lease_is_taken_over(
            self, pgbouncer_transaction: PgBouncer, local_pg_database: str, tmp_path: Path) -> None:
        """SIGKILL while holding the lease: the next runner takes over once the lease expires and converges."""
        counted_migration(tmp_path, 1, "SELECT pg_sleep(3);\n")
        counted_migration(tmp_path, 2)
        url = pgbouncer_transaction.url(local_pg_database)
        first = Runner("up", "--dir", str(tmp_path), "--lock-lease", LEASE, env={"DATABASE_URL": url})
        try:
            first.wait_for(lambda e: e.get("event") == "migration_started")
            first.signal(signal.SIGKILL)
            assert -signal.SIGKILL == first.finish()
        finally:
            first.kill()
        with _direct(local_pg_database) as conn:
            (holder,) = conn.execute("SELECT holder FROM premigrate_history_lock").fetchone() or ("",)
        second = run_cli("up", "--dir", str(tmp_path), "--lock-lease", LEASE, env={"DATABASE_URL": url})
        assert 0 == second.returncode, second.stderr[-3000:]
        held = second.find("lock_lease_held")
        assert 1 == len(held) and holder != held[0]["holder"]
        assert {"1": 1, "2": 1} == _counts(local_pg_database)

    def test_paused_runner_commits_nothing_after_losing_its_lease(
            self, pgbouncer_transaction: PgBouncer, local_pg_database: str, tmp_path: Path) -> None:
        """SIGSTOP past the lease while another runner takes over: after SIGCONT the paused runner commits nothing
        and exits 8 (lock lost); every migration is applied once, by the other runner."""
        counted_migration(tmp_path, 1, "SELECT pg_sleep(2);\n")
        counted_migration(tmp_path, 2)
        url = pgbouncer_transaction.url(local_pg_database)
        paused = Runner("up", "--dir", str(tmp_path), "--lock-lease", LEASE, env={"DATABASE_URL": url})
        try:
            paused.wait_for(lambda e: e.get("event") == "migration_started")
            paused.signal(signal.SIGSTOP)
            other = run_cli("up", "--dir", str(tmp_path), "--lock-lease", LEASE, env={"DATABASE_URL": url})
            assert 0 == other.returncode, other.stderr[-3000:]
            assert 2 == len(other.find("migration_applied"))
            paused.signal(signal.SIGCONT)
            code = paused.finish()
        finally:
            paused.kill()
        assert 8 == code, paused.output()[-3000:]
        summary = [e for e in paused.events if e.get("event") == "summary"]
        assert 8 == summary[-1]["exit_code"]
        assert "lock lost" in paused.output()
        assert [] == paused.find("migration_applied")
        assert {"1": 1, "2": 1} == _counts(local_pg_database)


class TestSessionPooling:
    def test_concurrent_runs_apply_each_migration_exactly_once(
            self, topology_dir: Path, local_pg_database: str, tmp_path: Path) -> None:
        """20 concurrent `up` x 5 rounds through session pooling: each migration once; auto keeps the advisory
        lock, which holds there. In session pooling every client connection holds a server connection, and a
        runner holds two (its session and its lock session): the pool is sized for that, as docs/topologies.md
        says (a pool of 20 for 20 runners would leave them all waiting for each other until query_wait_timeout)."""
        base = topology_dir / f"sized-{tmp_path.name}"
        base.mkdir()
        bouncer = PgBouncer.start("session", base, pool_size=2 * RUNNERS + 5)
        try:
            modes, reasons = _stampede(bouncer, local_pg_database, tmp_path)
        finally:
            bouncer.stop()
        assert {"advisory"} == modes
        assert all("session pooling" in reason for reason in reasons), reasons


class TestStatementPooling:
    def test_refused_before_anything_changes(
            self, pgbouncer_statement: PgBouncer, local_pg_database: str, tmp_path: Path) -> None:
        """Statement pooling cannot run a migration in a transaction: exit 5, and nothing applied."""
        counted_migration(tmp_path, 1)
        result = run_cli("up", "--dir", str(tmp_path), env={"DATABASE_URL": pgbouncer_statement.url(local_pg_database)})
        assert 5 == result.returncode, result.stderr[-3000:]
        assert "statement pooling" in result.stderr
        with _direct(local_pg_database) as conn:
            assert conn.execute("SELECT to_regclass('t1')").fetchone() == (None,)
