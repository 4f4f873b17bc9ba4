"""The runner lock's own session ends mid-run (pg_terminate_backend / KILL, as an idle timeout, a reaper or a proxy
would end it) while a second runner waits for the lock: the first stops with exit 8 before starting another
statement, the second never runs a statement the first ran, and after settling every statement took effect once."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import LiveCli, write
from tests.faults.harness import LEDGER, LIVENESS_S, premigrate, single_error

STATEMENTS = 12
SLEEP_S = 0.25


def traced(dialect: str) -> str:
    """Statement i records i in `ledger` after a short pause: a statement run twice shows as a duplicate."""
    sleep = f"pg_sleep({SLEEP_S})" if dialect == "postgresql" else f"SLEEP({SLEEP_S})"
    head = "-- premigrate:no-transaction\n" if dialect == "postgresql" else ""
    body = "".join(f"INSERT INTO ledger SELECT {i} FROM (SELECT {sleep} AS s) AS pause;\n"
                   for i in range(1, STATEMENTS + 1))
    return head + body


def lock_session(fdb) -> list[int]:
    """The session that holds the runner lock on this database right now."""
    if fdb.dialect == "postgresql":
        rows = fdb.q("SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                     "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s", (fdb.db.name,))
    else:
        key = f"premigrate:{fdb.db.name}:.premigrate_history"
        name = f"premigrate:{fdb.db.name[:35]}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        rows = [r for r in fdb.q("SELECT IS_USED_LOCK(%s)", (name,)) if r[0] is not None]
    return [int(r[0]) for r in rows]


def settle(scenario: str, fdb, folder: Path) -> None:
    """Run `up` until it succeeds; a statement in doubt is settled by the ledger (did its row land?)."""
    for _ in range(4):
        result = premigrate(scenario, "up", "--dir", str(folder), env=fdb.env())
        if result.returncode == 0:
            return
        assert 5 == result.returncode, result.stderr
        row = fdb.q("SELECT statement_started FROM premigrate_history WHERE migration_id = '2'")[0]
        started = int(row[0])
        landed = fdb.q("SELECT count(*) FROM ledger WHERE v = %s", (started,))[0][0]
        flag = "--skip-current" if landed else "--retry-current"
        repair = premigrate(scenario, "repair", "--resume", flag, "--dir", str(folder), env=fdb.env())
        assert 0 == repair.returncode, repair.stderr
    raise AssertionError("the history did not settle")


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_lost_lock_session_stops_the_run(dialect: str, fault_db_factory, tmp_path: Path) -> None:
    """Kill the lock session mid-run with a second runner waiting: exit 8, one line, no statement runs twice."""
    scenario = f"lost lock session: {dialect}"
    fdb = fault_db_factory(dialect)
    folder = tmp_path / "migrations"
    folder.mkdir()
    write(folder, "001_ledger.sql", "CREATE TABLE ledger (v INTEGER NOT NULL);\n")
    write(folder, "002_traced.sql", traced(dialect))
    first = LiveCli("up", "--dir", str(folder), env=fdb.env(), cwd=tmp_path)
    first.wait_for_event("migration_started", where=lambda e: e.get("version") == "2")
    time.sleep(SLEEP_S * 3)
    holders = lock_session(fdb)
    assert 1 == len(holders), holders
    second = LiveCli("up", "--dir", str(folder), "--lock-timeout", "60s", env=fdb.env(), cwd=tmp_path)
    second.wait_for_event("lock_waiting")
    fdb.terminate_sessions(holders)

    result = LEDGER.record(scenario, first.finish(LIVENESS_S))
    other = LEDGER.record(scenario, second.finish(LIVENESS_S))

    assert 8 == result.returncode, result.stderr
    message = single_error(result)
    assert "runner lock was lost" in message, message
    assert other.returncode in (0, 5), other.stderr
    done = fdb.q("SELECT v FROM ledger ORDER BY v")
    assert len(done) == len({r[0] for r in done}), f"a statement ran twice: {done}"
    fdb.quiesce()
    settle(scenario, fdb, folder)
    assert list(range(1, STATEMENTS + 1)) == [r[0] for r in fdb.q("SELECT v FROM ledger ORDER BY v")]


def test_idle_session_timeout_on_the_lock_session_is_exit_8(fault_db_factory, tmp_path: Path) -> None:
    """PostgreSQL ends the idle lock session (idle_session_timeout shorter than the keepalive): the run stops with
    exit 8 naming the cause, before the statement after the one that was running; never exit 0."""
    scenario = "lost lock session: idle_session_timeout"
    fdb = fault_db_factory("postgresql")
    fdb.db.admin(f"ALTER DATABASE {fdb.db.name} SET idle_session_timeout = '1s'")
    folder = tmp_path / "migrations"
    folder.mkdir()
    write(folder, "001_a.sql", "CREATE TABLE a (id int);\n")
    write(folder, "002_b.sql", "-- premigrate:no-transaction\nSELECT pg_sleep(2);\nCREATE TABLE b (id int);\n")

    result = premigrate(scenario, "up", "--dir", str(folder), env=fdb.env())

    assert 8 == result.returncode, result.stderr
    assert "idle-session timeout" in single_error(result)
    assert "b" not in fdb.db.tables()


def test_keepalive_keeps_the_lock_session_past_an_idle_timeout(fault_db_factory, tmp_path: Path) -> None:
    """idle_session_timeout longer than the keepalive (15 s) but shorter than a migration: the keepalive query keeps
    the idle lock session alive, the same session holds the lock from start to end, and the run succeeds. Without
    the keepalive PostgreSQL ends the lock session at 18 s and the run stops with exit 8."""
    scenario = "lock session keepalive: idle_session_timeout 18s"
    fdb = fault_db_factory("postgresql")
    fdb.db.admin(f"ALTER DATABASE {fdb.db.name} SET idle_session_timeout = '18s'")
    folder = tmp_path / "migrations"
    folder.mkdir()
    write(folder, "001_slow.sql", "SELECT pg_sleep(24);\nCREATE TABLE a (id int);\n")
    run = LiveCli("up", "--dir", str(folder), env=fdb.env(), cwd=tmp_path)
    run.wait_for_event("migration_started", where=lambda e: e.get("version") == "1")
    first = lock_session(fdb)
    time.sleep(21)  # past the idle timeout: without a keepalive the lock session is gone by now
    later = lock_session(fdb)

    result = LEDGER.record(scenario, run.finish(LIVENESS_S))

    assert 0 == result.returncode, result.stderr
    assert 1 == len(first) and first == later, (first, later)
    assert "a" in fdb.db.tables()
