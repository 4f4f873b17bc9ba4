"""Eight runners started at once: all exit 0 and every migration is applied exactly once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import db_env, sleep_sql, write
from tests.support import CliResult, TestDatabase, popen_cli

RUNNERS = 8
MIGRATIONS = 10


def _write_counting_migrations(directory: Path, dialect: str) -> None:
    """Ten migrations; each creates a table and inserts its own version into `applied_counter`.

    The first one also keeps the database busy for a moment, so that the other runners see pending work and queue
    on the runner lock instead of finding everything done already.
    """
    write(directory, "001_counter.sql",
          "CREATE TABLE applied_counter (version INTEGER NOT NULL);\n"
          "INSERT INTO applied_counter (version) VALUES (1);\n"
          f"{sleep_sql(dialect, 1.0)}\n")
    for n in range(2, MIGRATIONS + 1):
        write(directory, f"{n:03d}_table_{n}.sql",
              f"CREATE TABLE table_{n} (id INTEGER PRIMARY KEY);\n"
              f"INSERT INTO applied_counter (version) VALUES ({n});\n")


@pytest.fixture
def stampede(db: TestDatabase, migrations_dir: Path) -> list[CliResult]:
    """Start eight `up` runs at once against one fresh database and collect their results."""
    _write_counting_migrations(migrations_dir, db.dialect)
    procs = [popen_cli("up", "--dir", str(migrations_dir), "--lock-timeout", "90s", env=db_env(db),
                       cwd=migrations_dir.parent) for _ in range(RUNNERS)]
    results = []
    try:
        for proc in procs:
            stdout, stderr = proc.communicate(timeout=120)
            results.append(CliResult(proc.returncode, stdout, stderr))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.communicate()
        raise AssertionError("a runner was still running 120 s after the start")
    return results


class TestConcurrentRunners:
    def test_eight_runners_apply_each_migration_once(self, db: TestDatabase, stampede: list[CliResult]) -> None:
        """Eight simultaneous `up` runs all exit 0 and apply each of the ten migrations exactly once."""
        assert [0] * RUNNERS == [r.returncode for r in stampede], "\n".join(
            r.stderr for r in stampede if r.returncode)
        # Each migration's INSERT ran exactly once: the counter holds each version once.
        rows = db.query("SELECT version, COUNT(*) FROM applied_counter GROUP BY version")
        assert {n: 1 for n in range(1, MIGRATIONS + 1)} == {int(v): int(c) for v, c in rows}
        # One applied history row per version, and every migration's table exists.
        assert [(str(n), "applied") for n in range(1, MIGRATIONS + 1)] == sorted(
            ((r["migration_id"], r["state"]) for r in db.history()), key=lambda r: int(r[0]))
        assert {f"table_{n}" for n in range(2, MIGRATIONS + 1)} <= db.tables()
        # The runners' own accounts agree: each version applied by exactly one of them.
        assert MIGRATIONS == sum(r.find("summary")[0]["applied"] for r in stampede)
        versions = sorted(int(e["version"]) for r in stampede for e in r.find("migration_applied"))
        assert list(range(1, MIGRATIONS + 1)) == versions
        # At least two runners saw pending work and went for the lock: the race was really exercised.
        assert 2 <= sum(1 for r in stampede if r.find("lock_acquired")), "\n".join(r.stderr for r in stampede)


class TestMixedLockModes:
    @pytest.mark.parametrize(("first", "second"), [("advisory", "table"), ("table", "advisory")])
    def test_runners_with_different_modes_exclude_each_other(self, db: TestDatabase, migrations_dir: Path,
                                                             first: str, second: str) -> None:
        """A runner in one --lock-mode holds the lock while its migration runs: a runner in the other mode waits for
        it (here: times out, exit 6) instead of applying the same migration beside it (which fails, exit 4, on the
        table the first one created). On SQLite the second may instead wait on the database's own write lock until
        the first commits, then find nothing to do (exit 0)."""
        from tests.e2e.helpers import LiveCli

        write(migrations_dir, "001_slow.sql", f"CREATE TABLE once (id INTEGER);\n{sleep_sql(db.dialect, 4.0)}\n")
        holder = LiveCli("up", "--dir", str(migrations_dir), "--lock-mode", first, env=db_env(db),
                         cwd=migrations_dir.parent)
        try:
            holder.wait_for_event("migration_started")
            other = popen_cli("up", "--dir", str(migrations_dir), "--lock-mode", second, "--lock-timeout", "1s",
                              env=db_env(db), cwd=migrations_dir.parent)
            stdout, stderr = other.communicate(timeout=120)
            assert other.returncode in ((6,) if db.dialect != "sqlite" else (0, 6)), stderr[-2000:]
            assert 0 == holder.finish(timeout=120).returncode
        finally:
            holder.kill()
        assert [("1", "applied")] == db.query("SELECT version, state FROM premigrate_history")
