"""`kill -9` of `premigrate up` at random moments, one kill per process, on one database per case: after every kill
the history matches the schema, and a normal run then completes everything (after the repair the refusal names,
where a statement was in doubt)."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.helpers import LiveCli
from tests.faults.harness import (
    LEDGER, MARKS, SEED, STARTED, Spec, all_applied, check_invariant, converge, finish_live, settle, snapshot,
    traced_migration, unsettled, wait_for_work, write_spec,
)

def inside_migration(lines: list[str]) -> bool:
    """Whether the last migration event printed before the kill was a start (the kill hit a running migration)."""
    for line in reversed(lines):
        if '"event": "migration_applied"' in line:
            return False
        if any(f'"event": "{name}"' in line for name in STARTED):
            return True
    return False


CASES = [
    # dialect, no-transaction files, migrations, kills
    pytest.param("postgresql", False, 120, 50, id="postgresql"),
    pytest.param("sqlite", False, 120, 50, id="sqlite"),
    pytest.param("mysql", False, 40, 20, id="mariadb"),
    pytest.param("postgresql", True, 40, 20, id="postgresql-no-transaction"),
]


@pytest.mark.parametrize(("dialect", "no_transaction", "count", "kills"), CASES)
def test_kill9_at_random_moments(dialect: str, no_transaction: bool, count: int, kills: int,
                                 fault_db_factory, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Every kill leaves history and schema in agreement; afterwards every migration is applied exactly once."""
    scenario = f"kill -9: {request.node.callspec.id}"
    rng = random.Random(f"{SEED}:{scenario}")
    fdb = fault_db_factory(dialect)
    folder = tmp_path / "migrations"
    folder.mkdir()
    spec = Spec(dialect, no_transaction)

    def add(first: int, last: int) -> None:
        for version in range(first, last + 1):
            spec.migrations[version] = [MARKS] if version == 1 else traced_migration(
                dialect, version, rng.uniform(0.01, 0.05), index=dialect != "mysql", concurrently=no_transaction)
        write_spec(folder, spec, list(range(first, last + 1)))

    add(1, count)
    done, landed_inside, per_migration, resumed = 0, 0, 0.06, 0
    actions: Counter[str] = Counter()
    snap = snapshot(fdb)
    while done < kills:
        live = LiveCli("up", "--dir", str(folder), env=fdb.env(), cwd=tmp_path)
        if not wait_for_work(live):
            result = finish_live(scenario, live)
            if result.returncode == 0:  # everything applied before the kills ran out: more work
                add(len(spec.migrations) + 1, len(spec.migrations) + 10)
                snap = snapshot(fdb)
                continue
            assert 5 == result.returncode, f"seed {SEED}: {result.stderr}"
            rows = unsettled(check_invariant(scenario, fdb, spec))
            assert rows, result.stderr
            actions[settle(scenario, fdb, spec, rows[0], result, folder)] += 1
            snap = snapshot(fdb)
            continue
        applied = sum(1 for r in snap.history.values() if r["state"] == "applied")
        left = max(1, len(spec.migrations) - applied)
        # Spread the kills over the whole run: aim, on average, at an even share of what is left.
        delay = min(1.0, rng.uniform(0, 2 * per_migration * max(1.0, left / (kills - done))))
        time.sleep(delay)
        inside = inside_migration(list(live.lines))
        live.proc.kill()
        result = finish_live(scenario, live)
        resumed += len(result.find("migration_resumed"))
        if result.returncode == 0:
            inside = False  # it finished before the kill arrived
        else:
            assert -9 == result.returncode, f"seed {SEED}: {result.stderr}"
            done += 1
            landed_inside += inside
        fdb.quiesce()
        snap = check_invariant(scenario, fdb, spec)
        newly = len(result.find("migration_applied"))
        if result.returncode != 0:
            per_migration = 0.5 * per_migration + 0.5 * delay / (newly + 0.5)
    final = converge(scenario, fdb, spec, folder, actions=actions)
    snap = check_invariant(scenario, fdb, spec)
    assert all_applied(spec, snap)
    assert all(n == 1 for n in snap.marks.values()) and len(spec.migrations) - 1 == len(snap.marks)
    assert 0 == final.returncode
    LEDGER.note(scenario, f"{done} kills over {len(spec.migrations)} migrations, {landed_inside} inside a "
                          f"migration; {resumed} resumed automatically; settled: {dict(actions) or 'nothing in doubt'}")
    # The kills must land mid-migration, not only between runs: the pauses inside each migration make that likely.
    assert landed_inside >= done // 2, f"only {landed_inside} of {done} kills hit a running migration"
