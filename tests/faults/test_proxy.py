"""A TCP proxy on 127.0.0.1 between premigrate and the database that drops the connections, stalls them, or refuses
and then accepts: premigrate waits, times out and exits as the README documents, and nothing is lost."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.helpers import LiveCli, host_port
from tests.faults.harness import (
    LEDGER, LIVENESS_S, MARKS, SEED, FaultDatabase, FaultProxy, Spec, all_applied, check_invariant, converge,
    finish_live, premigrate, single_error, snapshot, traced_migration, wait_for_work, write_spec,
)

SERVERS = ["postgresql", "mysql"]
STALL_BOUND_S = 20.0


def via(fdb: FaultDatabase, proxy: FaultProxy, **query: str) -> FaultDatabase:
    """The same database, reached through the proxy."""
    return FaultDatabase(fdb.db, fdb.url_via(proxy.port, **query), user=fdb.user)


def proxy_for(fdb: FaultDatabase, **kwargs: bool) -> FaultProxy:
    return FaultProxy(host_port(fdb.db.url, 5432 if fdb.dialect == "postgresql" else 3306), **kwargs)


def folder_with(tmp_path: Path, spec: Spec, versions: list[int]) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir(exist_ok=True)
    write_spec(folder, spec, versions)
    return folder


def slow_spec(dialect: str, first: int, count: int, pause: float, spec: Spec | None = None) -> Spec:
    spec = spec or Spec(dialect, migrations={1: [MARKS]})
    for version in range(first, first + count):
        spec.migrations[version] = traced_migration(dialect, version, pause, index=False)
    return spec


@pytest.mark.parametrize("dialect", SERVERS)
def test_proxy_drops_connections_mid_run(dialect: str, fault_db_factory, tmp_path: Path) -> None:
    """Every connection reset mid-run: exit 3 (nothing recorded), 4 (a row records it) or 8 (the lock session saw
    it first); the next run converges."""
    scenario = f"proxy drops connections: {dialect}"
    rng = random.Random(f"{SEED}:{scenario}")
    fdb = fault_db_factory(dialect)
    spec = slow_spec(dialect, 2, 0, 0)
    folder = folder_with(tmp_path, spec, [1])
    codes: Counter[int] = Counter()
    with proxy_for(fdb) as proxy:
        through = via(fdb, proxy)
        for round_ in range(3):
            versions = list(range(2 + 3 * round_, 5 + 3 * round_))
            slow_spec(dialect, versions[0], 3, 0.3, spec)
            write_spec(folder, spec, versions)
            live = LiveCli("up", "--dir", str(folder), env=through.env(), cwd=tmp_path)
            assert wait_for_work(live), "".join(live.lines)
            time.sleep(rng.uniform(0.0, 0.6))
            assert proxy.drop() >= 1
            result = finish_live(scenario, live)
            codes[result.returncode] += 1
            # 3: the migration's session saw the loss first; 4: a row records where it stopped; 8: the lock
            # session saw it first (the runner lock went with it).
            assert result.returncode in (3, 4, 8), f"seed {SEED}: {result.stderr}"
            error = single_error(result)
            fdb.quiesce()
            snap = check_invariant(scenario, fdb, spec)
            recorded = [r for r in snap.history.values() if r["state"] != "applied"]
            if result.returncode == 8:
                assert "runner lock" in error, error
            else:
                assert (result.returncode == 4) == bool(recorded), (result.returncode, recorded, error)
            converge(scenario, through, spec, folder)
            assert all_applied(spec, check_invariant(scenario, fdb, spec))
    LEDGER.note(scenario, f"exit codes {dict(codes)}")


@pytest.mark.parametrize("dialect", SERVERS)
def test_proxy_stalls_during_connect(dialect: str, fault_db_factory, tmp_path: Path) -> None:
    """A proxy that accepts but never answers: the connect timeout ends each attempt, and `wait`/`up` exit 3 at
    --wait-timeout instead of hanging."""
    scenario = f"proxy stalls: {dialect}"
    fdb = fault_db_factory(dialect)
    spec = slow_spec(dialect, 2, 2, 0)
    folder = folder_with(tmp_path, spec, [1, 2, 3])
    with proxy_for(fdb) as proxy:
        proxy.stall()
        through = via(fdb, proxy)
        for command in ("wait", "up"):
            # Liveness bound: several times the wait timeout, never a speed assertion.
            result = premigrate(scenario, command, "--dir", str(folder), "--wait-timeout", "3s",
                                env=through.env(), cwd=tmp_path, timeout=STALL_BOUND_S)
            assert 3 == result.returncode, result.stderr
            assert "not ready after 3s" in single_error(result)
            assert proxy.accepted >= 1  # it did reach the proxy: the stall, not a refusal, was what it waited out
    assert {} == snapshot(fdb).history
    check_invariant(scenario, fdb, spec)


def test_proxy_stalls_mid_statement_mariadb(fault_db_factory, tmp_path: Path) -> None:
    """MariaDB with `read_timeout` in the URL: a connection that stops answering mid-statement is given up after
    that long (exit 4: a row records it); the next run converges."""
    scenario = "proxy stalls: mysql"
    fdb = fault_db_factory("mysql")
    spec = slow_spec("mysql", 2, 2, 1.0)
    folder = folder_with(tmp_path, spec, [1, 2, 3])
    with proxy_for(fdb) as proxy:
        through = via(fdb, proxy, read_timeout="2")
        live = LiveCli("up", "--dir", str(folder), env=through.env(), cwd=tmp_path)
        assert wait_for_work(live)
        time.sleep(0.3)
        proxy.stall()
        result = finish_live(scenario, live, timeout=LIVENESS_S)
        assert result.returncode in (3, 4), result.stderr
        assert "lost the connection" in single_error(result)
        proxy.drop()
        proxy.resume()
        fdb.quiesce()
        check_invariant(scenario, fdb, spec)
        converge(scenario, via(fdb, proxy), spec, folder)
    assert all_applied(spec, check_invariant(scenario, fdb, spec))


def test_proxy_stalls_mid_statement_postgresql_sigterm(fault_db_factory, tmp_path: Path) -> None:
    """PostgreSQL has no client-side read timeout (libpq has none): a stalled connection waits like a long statement.
    What ends it is the orchestrator's SIGTERM, which must still work: exit 143 with nothing committed."""
    scenario = "proxy stalls: postgresql"
    fdb = fault_db_factory("postgresql")
    spec = slow_spec("postgresql", 2, 2, 1.0)
    folder = folder_with(tmp_path, spec, [1, 2, 3])
    with proxy_for(fdb) as proxy:
        live = LiveCli("up", "--dir", str(folder), env=via(fdb, proxy).env(), cwd=tmp_path)
        assert wait_for_work(live)
        time.sleep(0.3)
        proxy.stall()
        time.sleep(1.5)
        assert live.proc.poll() is None  # still waiting on the stalled connection
        live.proc.send_signal(signal.SIGTERM)
        # README: the first SIGTERM ends the run "within a few seconds even if the statement would have run for an
        # hour"; the bound is generous.
        try:
            result = finish_live(scenario, live, timeout=STALL_BOUND_S)
        except AssertionError:
            LEDGER.scenario(scenario).exit_codes[-1] += 1  # -1: hung, killed by the test
            raise
        assert 143 == result.returncode, result.stderr
        assert result.find("interrupted")
        proxy.drop()
        proxy.resume()
        fdb.quiesce()
        check_invariant(scenario, fdb, spec)
        converge(scenario, via(fdb, proxy), spec, folder)
    assert all_applied(spec, check_invariant(scenario, fdb, spec))


@pytest.mark.parametrize("dialect", SERVERS)
def test_proxy_refuses_then_accepts(dialect: str, fault_db_factory, tmp_path: Path) -> None:
    """`wait` and `up` with a long --wait-timeout succeed once the port accepts; a shorter one exits 3, untouched."""
    scenario = f"proxy refuses then accepts: {dialect}"
    fdb = fault_db_factory(dialect)
    spec = slow_spec(dialect, 2, 3, 0)
    folder = folder_with(tmp_path, spec, [1, 2, 3, 4])
    with proxy_for(fdb, listening=False) as proxy:
        through = via(fdb, proxy)
        result = premigrate(scenario, "up", "--dir", str(folder), "--wait-timeout", "0.5s", env=through.env(),
                            cwd=tmp_path)
        assert 3 == result.returncode, result.stderr
        assert "not ready after" in single_error(result)
        assert {} == snapshot(fdb).history
        for command in ("wait", "up"):
            opener = threading.Timer(1.0, proxy.accept)
            opener.start()
            try:
                result = premigrate(scenario, command, "--dir", str(folder), "--wait-timeout", "30s",
                                    env=through.env(), cwd=tmp_path)
            finally:
                opener.join()
            assert 0 == result.returncode, result.stderr
            assert result.find("wait_retrying") and result.find("database_ready")
            proxy.refuse()
    assert all_applied(spec, check_invariant(scenario, fdb, spec))
