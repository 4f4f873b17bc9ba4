"""Twenty runners started at once, ten rounds on one database per dialect: every migration is applied exactly once
and every runner exits 0. With a runner-lock timeout shorter than a slow migration, runners exit 0 or 6, at least
one exits 6, and still every migration is applied exactly once."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.faults.harness import (
    LEDGER, MARKS, SEED, Spec, Stmt, all_applied, check_invariant, single_error, traced_migration, write_spec,
)
from tests.support import CliResult, popen_cli

RUNNERS = 20
ROUNDS = 10
PER_ROUND = 2


def stampede(scenario: str, fdb, folder: Path, *args: str) -> list[CliResult]:
    """Start RUNNERS `up` processes at once and collect them all."""
    return collect(scenario, [popen_cli("up", "--dir", str(folder), *args, env=fdb.env(), cwd=folder.parent)
                              for _ in range(RUNNERS)])


def collect(scenario: str, procs: list[subprocess.Popen[str]], timeout: float = 120) -> list[CliResult]:
    results = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=timeout)
            results.append(LEDGER.record(scenario, CliResult(proc.returncode, stdout, stderr)))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.communicate()
        raise AssertionError(f"a runner was still running {timeout} s after the start")
    return results


def applied_by(results: list[CliResult]) -> Counter[str]:
    return Counter(e["version"] for r in results for e in r.find("migration_applied"))


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_twenty_runners_ten_rounds(dialect: str, fault_db_factory, tmp_path: Path) -> None:
    """Each round adds migrations and starts twenty runners: all exit 0, each migration applied exactly once."""
    scenario = f"20 runners x 10 rounds: {dialect}"
    fdb = fault_db_factory(dialect)
    folder = tmp_path / "migrations"
    folder.mkdir()
    spec = Spec(dialect)
    spec.migrations[1] = [MARKS]
    write_spec(folder, spec, [1])
    contended = 0
    for round_ in range(ROUNDS):
        first = 2 + round_ * PER_ROUND
        versions = list(range(first, first + PER_ROUND))
        for version in versions:
            # The pause keeps the lock held while the other runners arrive, so that they really queue on it.
            spec.migrations[version] = traced_migration(dialect, version, 0.2 if version == first else 0,
                                                        index=False)
        write_spec(folder, spec, versions)
        results = stampede(scenario, fdb, folder, "--lock-timeout", "100s")
        assert [0] * RUNNERS == [r.returncode for r in results], f"seed {SEED}: " + "\n".join(
            r.stderr for r in results if r.returncode)
        expected = {str(v): 1 for v in versions} | ({"1": 1} if round_ == 0 else {})
        assert expected == dict(applied_by(results))
        contended += sum(1 for r in results if r.find("lock_acquired")) >= 2
        snap = check_invariant(scenario, fdb, spec)
        assert all_applied(spec, snap)
        assert all(n == 1 for n in snap.marks.values())
    # In most rounds more than one runner saw pending work and went for the lock: the race was exercised.
    assert contended >= ROUNDS // 2, f"only {contended} rounds had two runners taking the lock"
    LEDGER.note(scenario, f"{ROUNDS} rounds, {len(spec.migrations)} migrations, {contended} rounds contended")


def gate_statement(dialect: str, name: str) -> Stmt:
    """A statement that blocks until the test opens the gate (SQLite, which has no such lock: a 3 s pause)."""
    if dialect == "postgresql":
        return Stmt(f"SELECT pg_advisory_xact_lock({GATE_KEY})", None)
    if dialect == "mysql":
        return Stmt(f"SELECT GET_LOCK('{name}', 60)", None)
    return traced_migration(dialect, 0, 3.0, index=False)[1]


GATE_KEY = 0x5EED


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_lock_timeout_shorter_than_a_slow_migration(dialect: str, fault_db_factory, tmp_path: Path) -> None:
    """Runners give up with exit 6 while one applies a slow migration; nothing is applied twice."""
    scenario = f"20 runners, lock timeout < slow migration: {dialect}"
    fdb = fault_db_factory(dialect)
    folder = tmp_path / "migrations"
    folder.mkdir()
    gate_name = f"gate_{fdb.db.name}"
    spec = Spec(dialect)
    spec.migrations[1] = [MARKS]
    spec.migrations[2] = traced_migration(dialect, 2, 0, index=False)
    spec.migrations[2].insert(1, gate_statement(dialect, gate_name))
    spec.migrations[3] = traced_migration(dialect, 3, 0, index=False)
    write_spec(folder, spec, [1, 2, 3])
    gate = None
    if dialect != "sqlite":
        # The slow migration lasts until every other runner has given up: the outcome does not depend on how fast
        # twenty processes start on a busy machine.
        gate = fdb.db.connect()
        if dialect == "postgresql":
            gate.execute(f"SELECT pg_advisory_lock({GATE_KEY})")
        else:
            with gate.cursor() as cur:
                cur.execute(f"SELECT GET_LOCK('{gate_name}', 10)")
    procs = [popen_cli("up", "--dir", str(folder), "--lock-timeout", "1s", env=fdb.env(), cwd=folder.parent)
             for _ in range(RUNNERS)]
    try:
        if gate is not None:
            deadline = time.monotonic() + 60
            while sum(p.poll() is None for p in procs) > 1 and time.monotonic() < deadline:
                time.sleep(0.1)
            gate.close()
        results = collect(scenario, procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    codes = Counter(r.returncode for r in results)
    assert set(codes) <= {0, 6}, f"seed {SEED}: {codes}\n" + "\n".join(r.stderr for r in results
                                                                         if r.returncode not in (0, 6))
    assert codes[6] >= 1, codes
    for result in results:
        if result.returncode == 6:
            assert "runner lock not acquired" in single_error(result)
    assert {"1": 1, "2": 1, "3": 1} == dict(applied_by(results))
    snap = check_invariant(scenario, fdb, spec)
    assert all_applied(spec, snap)
    assert {"2": 1, "3": 1} == dict(snap.marks)
    LEDGER.note(scenario, f"exit codes {dict(codes)}")
