"""premigrate's server sessions terminated mid-run (pg_terminate_backend / KILL, as a failover or an administrator
does; the shared servers themselves are never restarted): exit 3 when nothing was recorded, 4 when a row was, one
clear line, and the next run converges."""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.e2e.helpers import LiveCli
from tests.faults.harness import (
    LEDGER, MARKS, SEED, Spec, all_applied, check_invariant, converge, finish_live, single_error, snapshot,
    traced_migration, unsettled, wait_for_work, write_spec,
)

ROUNDS = 6


def statement_session(fdb) -> list[int]:
    """The premigrate session that is running a migration's pause right now (not the lock session)."""
    if fdb.dialect == "postgresql":
        rows = fdb.q("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name LIKE 'premigrate@%%' "
                     "AND state = 'active' AND query LIKE '%%pg_sleep%%'", (fdb.db.name,))
    else:
        rows = fdb.q("SELECT id FROM information_schema.processlist WHERE user = %s AND db = %s "
                     "AND info LIKE '%%SLEEP%%'", (fdb.user, fdb.db.name))
    return [int(r[0]) for r in rows]


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_sessions_terminated_mid_run(dialect: str, fault_db_factory, tmp_path: Path) -> None:
    """Each round terminates premigrate's sessions at a random moment: exit 3 or 4 as documented (8 when the lock
    session was among them and the run saw the lock lost first), then convergence."""
    scenario = f"sessions terminated: {dialect}"
    rng = random.Random(f"{SEED}:{scenario}")
    fdb = fault_db_factory(dialect)
    folder = tmp_path / "migrations"
    folder.mkdir()
    spec = Spec(dialect)
    spec.migrations[1] = [MARKS]
    write_spec(folder, spec, [1])
    actions: Counter[str] = Counter()
    codes: Counter[int] = Counter()
    for round_ in range(ROUNDS):
        versions = list(range(2 + 3 * round_, 5 + 3 * round_))
        for version in versions:
            spec.migrations[version] = traced_migration(dialect, version, 0.3, index=False)
        write_spec(folder, spec, versions)
        live = LiveCli("up", "--dir", str(folder), env=fdb.env(), cwd=tmp_path)
        assert wait_for_work(live), "".join(live.lines)
        time.sleep(rng.uniform(0.0, 0.6))
        # Alternate: every session premigrate has (the application name / the login tells them apart), or only
        # the one running the statement, leaving the lock session alive.
        everything = round_ % 2 == 0
        deadline = time.monotonic() + 5
        while True:
            ids = fdb.premigrate_sessions() if everything else statement_session(fdb)
            if ids or live.proc.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        assert ids, "premigrate's sessions were not found on the server"
        fdb.terminate_sessions(ids)
        result = finish_live(scenario, live)
        codes[result.returncode] += 1
        message = single_error(result)
        fdb.quiesce()
        snap = check_invariant(scenario, fdb, spec)
        recorded = [r for r in snap.history.values() if r["state"] != "applied"]
        if everything and result.returncode == 8:
            # The lock session went too, and the run noticed that first: it stops as a lost lock (exit 8), starting
            # no other statement; what it leaves is settled below like any interrupted run.
            assert "lock" in message, message
        else:
            assert result.returncode in (3, 4), f"seed {SEED}: {result.stderr}"
            assert "lost the connection" in message, message
            # 3: nothing recorded (rolled back); 4: a row says where it stopped.
            assert (result.returncode == 4) == bool(recorded), (result.returncode, recorded, message)
            if dialect == "postgresql":
                assert 3 == result.returncode
        converge(scenario, fdb, spec, folder, actions=actions)
        snap = check_invariant(scenario, fdb, spec)
        assert all_applied(spec, snap) and not unsettled(snapshot(fdb))
    LEDGER.note(scenario, f"{ROUNDS} rounds, exit codes {dict(codes)}, settled: {dict(actions) or 'nothing'}")
