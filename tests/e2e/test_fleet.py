"""Fleets: `up`, `status` and `check` over many PostgreSQL schemas and databases, MariaDB databases, SQLite files."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import LIVENESS_S, LiveCli, endless_sql, write
from tests.support import CliResult, _mysql_connect, run_cli, server_url, with_database

KINDS = ("pg-schemas", "pg-databases", "mysql-databases", "sqlite-files")
# Every kind, PostgreSQL databases included (a minute: each DROP DATABASE writes a checkpoint), has 200 targets.
BIG: dict[str, int] = {}
FIRST = "CREATE TABLE a (id INTEGER);\nINSERT INTO a VALUES (1);\n"
SECOND = "CREATE TABLE b (id INTEGER);\nINSERT INTO a VALUES (2);\n"


class FleetOf:
    """`n` targets of one kind, created for the test and dropped after it, with ways to look inside each."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.prefix = f"pmf_{uuid.uuid4().hex[:8]}"
        self.dialect = {"pg": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}[kind.split("-")[0]]
        self.admin_url = server_url(self.dialect) if self.dialect != "sqlite" else ""
        self.names: list[str] = []
        self.created_databases: list[str] = []
        self.schema_db: str | None = None

    # -- setting up ----------------------------------------------------------------------------------------------

    def make(self, n: int) -> list[str]:
        """Create the fleet; return its target lines."""
        self.names = [f"{self.prefix}_{i:03d}" for i in range(n)]
        if self.kind == "pg-schemas":
            self.schema_db = self.prefix
            self._admin([f"CREATE DATABASE {self.schema_db}"])
            return [f"schema={name}" for name in self.names]
        if self.kind == "sqlite-files":
            return [f"sqlite:///{self.tmp_path / (name + '.db')}" for name in self.names]
        self._admin([f"CREATE DATABASE {name}" for name in self.names])
        self.created_databases = list(self.names)
        return [f"database={name}" for name in self.names]

    @property
    def env(self) -> dict[str, str]:
        if self.kind == "pg-schemas":
            assert self.schema_db is not None
            return {"DATABASE_URL": with_database(self.admin_url, self.schema_db)}
        if self.kind == "sqlite-files":
            return {}
        return {"DATABASE_URL": self.admin_url}

    def unreachable_line(self) -> str:
        """A target nobody answers for: a closed port, or a SQLite file in a folder that does not exist."""
        if self.dialect == "sqlite":
            return f"sqlite:///{self.tmp_path / 'no-such-folder' / 'x.db'}"
        return {"postgresql": "postgresql://postgres@127.0.0.1:1/nowhere", "mysql": "mysql://root@127.0.0.1:1/nowhere"
                }[self.dialect]

    def drop(self) -> None:
        if self.schema_db is not None:
            self._admin([f"DROP DATABASE IF EXISTS {self.schema_db} WITH (FORCE)"])
        drop = "DROP DATABASE IF EXISTS {} WITH (FORCE)" if self.dialect == "postgresql" else "DROP DATABASE IF EXISTS {}"
        self._admin([drop.format(name) for name in self.created_databases])

    def _admin(self, statements: list[str]) -> None:
        if not statements:
            return
        if self.dialect == "postgresql":
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                for sql in statements:
                    conn.execute(sql)
            return
        conn = _mysql_connect(self.admin_url)
        try:
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
        finally:
            conn.close()

    # -- looking inside one target -------------------------------------------------------------------------------

    def query(self, i: int, sql: str) -> list[tuple[Any, ...]]:
        """Run `sql` in target i (its schema on PostgreSQL schemas); [] when the statement returns no rows."""
        name = self.names[i]
        if self.kind == "sqlite-files":
            with sqlite3.connect(self.tmp_path / f"{name}.db", isolation_level=None) as conn:
                return conn.execute(sql).fetchall()
        if self.dialect == "postgresql":
            import psycopg

            url = with_database(self.admin_url, self.schema_db or name)
            with psycopg.connect(url, autocommit=True) as conn:
                if self.kind == "pg-schemas":
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
                    conn.execute(f'SET search_path TO "{name}"')
                cur = conn.execute(sql)
                return cur.fetchall() if cur.description else []
        conn = _mysql_connect(with_database(self.admin_url, name))
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()

    def has_table(self, i: int, table: str) -> bool:
        try:
            self.query(i, f"SELECT 1 FROM {table}")
        except Exception:  # noqa: BLE001 - each driver has its own "no such table" error
            return False
        return True

    def rows_of_a(self, i: int) -> list[int]:
        """The values migrations inserted into table `a` of target i: [1, 2] once both ran exactly once."""
        return sorted(r[0] for r in self.query(i, "SELECT id FROM a"))

    def applied(self, i: int) -> list[str]:
        return sorted(r[0] for r in self.query(i, "SELECT version FROM premigrate_history WHERE state = 'applied'"))


@pytest.fixture(params=KINDS)
def fleet(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FleetOf]:
    of = FleetOf(request.param, tmp_path)
    try:
        yield of
    finally:
        of.drop()


@pytest.fixture
def folder(migrations_dir: Path) -> Path:
    write(migrations_dir, "001_a.sql", FIRST)
    write(migrations_dir, "002_b.sql", SECOND)
    return migrations_dir


def targets_file(path: Path, lines: list[str]) -> Path:
    path.write_text("# the fleet\n\n" + "\n".join(lines) + "\n")
    return path


def run_fleet(fleet: FleetOf, command: str, folder: Path, targets: Path, *args: str,
              env: dict[str, str] | None = None) -> CliResult:
    return run_cli(command, "--dir", str(folder), "--targets", str(targets), "--wait-timeout", "1s", *args,
                   env={**fleet.env, **(env or {})}, cwd=folder.parent, timeout=600)


def summary_of(result: CliResult) -> dict[str, Any]:
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def done_targets(result: CliResult) -> list[str]:
    return [e["target"] for e in result.find("target_done")]


def target_name(line: str) -> str:
    from premigrate.model.fleet import parse_targets

    return parse_targets(line, source="test")[0].name


class TestFleetWithBrokenTargets:
    def test_two_hundred_targets_three_broken(self, fleet: FleetOf, folder: Path, tmp_path: Path) -> None:
        """200 targets, 3 broken (unreachable, a failing migration, drift): the 197 others are migrated, the exit
        code is the most severe (4), the summary is exact, status/check report it, and a rerun converges."""
        total = BIG.get(fleet.kind, 200)
        made = total - 1  # and the unreachable one
        lines = fleet.make(made)
        failing, drifted = 7, 11
        fleet.query(failing, "CREATE TABLE b (id INTEGER)")  # migration 2 of this target fails
        other = tmp_path / "other"
        other.mkdir()
        write(other, "001_a.sql", "CREATE TABLE a (id INTEGER);\nINSERT INTO a VALUES (1), (1);\n")
        first = run_fleet(fleet, "up", other, targets_file(tmp_path / "one.txt", [lines[drifted]]))
        assert 0 == first.returncode, first.stderr
        unreachable = fleet.unreachable_line()
        listed = targets_file(tmp_path / "targets.txt", lines[:made // 2] + [unreachable] + lines[made // 2:])
        summary_file = tmp_path / "summary.json"

        result = run_fleet(fleet, "up", folder, listed, "--concurrency", "4", "--summary-file", str(summary_file))

        assert 4 == result.returncode, result.stderr[-3000:]
        summary = summary_of(result)
        broken = {target_name(unreachable): (3, "unavailable"), target_name(lines[failing]): (4, "migration_failed"),
                  target_name(lines[drifted]): (5, "refused")}
        assert {"targets": total,
                "outcomes": {"succeeded": total - 3, "unavailable": 1, "migration_failed": 1, "refused": 1},
                "applied": (total - 3) * 2 + 1, "exit_code": 4} == {k: v for k, v in summary.items() if k != "failed"}
        assert broken == {f["target"]: (f["exit_code"], f["outcome"]) for f in summary["failed"]}
        assert all(f["error"] for f in summary["failed"])
        assert summary == json.loads(summary_file.read_text())["fleet"]
        assert sorted(done_targets(result)) == sorted([target_name(line) for line in lines] + [target_name(unreachable)])
        assert all("target" in e for e in result.find("migration_applied"))
        last = result.find("fleet_progress")[-1]
        assert (total, 3, 0) == (last["done"], last["failed"], last["remaining"])
        if fleet.kind in ("pg-schemas", "mysql-databases"):
            # A worker's sessions serve its next target on the same server: a few connections, not two per target.
            assert len(result.find("database_ready")) <= 4 * 2 + 4
        healthy = [i for i in range(made) if i not in (failing, drifted)]
        assert all([1, 2] == fleet.rows_of_a(i) for i in healthy)
        assert all(["1", "2"] == fleet.applied(i) for i in healthy)
        assert ["1"] == fleet.applied(failing)
        assert ["1"] == fleet.applied(drifted)

        status = run_fleet(fleet, "status", folder, listed, "--json")
        assert 3 == status.returncode, status.stderr[-2000:]
        report = json.loads(status.stdout)
        # MariaDB records the failed migration (DDL commits on its own): a problem until repaired. Elsewhere the
        # failed migration was rolled back: pending.
        failed_state = "problem" if fleet.dialect == "mysql" else "pending"
        assert {"targets": total, "current": total - 3, "pending": 0, "problem": 1, "error": 1, "exit_code": 3,
                failed_state: 1 + (failed_state == "problem")} == report["total"]
        states = {r["target"]: r["state"] for r in report["targets"]}
        # The drifted target's migration 1 is applied (its file changed since): counted, with 002 still pending.
        drift_row = next(r for r in report["targets"] if r["target"] == target_name(lines[drifted]))
        assert (1, 1) == (drift_row["applied"], drift_row["pending"]), drift_row
        assert (failed_state, "problem", "error") == (states[target_name(lines[failing])],
                                                      states[target_name(lines[drifted])],
                                                      states[target_name(unreachable)])
        assert 5 == run_fleet(fleet, "check", folder, listed).returncode

        # The operator fixes the failing target and takes the other two out: the rerun converges.
        fleet.query(failing, "DROP TABLE b")
        if fleet.dialect == "mysql":
            one = targets_file(tmp_path / "failing.txt", [lines[failing]])
            repair = run_cli("repair", "--forget", "2", "--dir", str(folder), "--targets", str(one), env=fleet.env)
            assert 2 == repair.returncode  # repair takes no fleet: one target at a time
            repaired = run_cli("repair", "--forget", "2", "--dir", str(folder),
                               env={"DATABASE_URL": with_database(fleet.admin_url, fleet.names[failing])})
            assert 0 == repaired.returncode, repaired.stderr[-2000:]
        fixed = targets_file(tmp_path / "fixed.txt", [line for i, line in enumerate(lines) if i != drifted])
        rerun = run_fleet(fleet, "up", folder, fixed)
        assert 0 == rerun.returncode, rerun.stderr[-3000:]
        assert {"targets": made - 1, "outcomes": {"succeeded": made - 1}, "applied": 1, "exit_code": 0,
                "failed": []} == summary_of(rerun)
        assert [1, 2] == fleet.rows_of_a(failing)
        check = run_fleet(fleet, "check", folder, fixed)
        assert 0 == check.returncode, check.stderr[-2000:]


@pytest.mark.parametrize("fleet", ["pg-schemas", "mysql-databases", "sqlite-files"], indirect=True)
class TestFleetPolicies:
    def test_fail_fast_starts_no_new_target(self, fleet: FleetOf, folder: Path, tmp_path: Path) -> None:
        """--fail-fast with one worker: after the third target fails, the other 17 are not started."""
        lines = fleet.make(20)
        fleet.query(2, "CREATE TABLE b (id INTEGER)")
        result = run_fleet(fleet, "up", folder, targets_file(tmp_path / "t.txt", lines), "--concurrency", "1",
                           "--fail-fast")
        assert 4 == result.returncode, result.stderr[-3000:]
        summary = summary_of(result)
        assert {"succeeded": 2, "migration_failed": 1, "not_started": 17} == summary["outcomes"]
        assert not fleet.has_table(3, "a")
        assert [target_name(line) for line in lines[:3]] == done_targets(result)

    def test_shards_cover_every_target_once(self, fleet: FleetOf, folder: Path, tmp_path: Path) -> None:
        """Four runs with --shard 0/4 .. 3/4 (the last through JOB_COMPLETION_INDEX) take every target exactly once."""
        lines = fleet.make(40)
        listed = targets_file(tmp_path / "t.txt", lines)
        taken: list[str] = []
        for index in range(4):
            if index < 3:
                result = run_fleet(fleet, "up", folder, listed, "--shard", f"{index}/4")
            else:
                result = run_fleet(fleet, "up", folder, listed,
                                   env={"JOB_COMPLETION_INDEX": "3", "PREMIGRATE_SHARDS": "4"})
            assert 0 == result.returncode, result.stderr[-3000:]
            assert f"{index}/4" == result.find("fleet_started")[0]["shard"]
            taken += done_targets(result)
        assert sorted(target_name(line) for line in lines) == sorted(taken)
        assert all([1, 2] == fleet.rows_of_a(i) for i in range(40))

    def test_two_fleets_at_once_apply_each_migration_once(self, fleet: FleetOf, folder: Path, tmp_path: Path) -> None:
        """Two fleets started together over the same 30 targets: every migration ran exactly once per target."""
        lines = fleet.make(30)
        listed = targets_file(tmp_path / "t.txt", lines)
        args = ("up", "--dir", str(folder), "--targets", str(listed), "--concurrency", "4")
        runs = [LiveCli(*args, env=fleet.env, cwd=folder.parent) for _ in range(2)]
        try:
            results = [run.finish(timeout=300) for run in runs]
        finally:
            for run in runs:
                run.kill()
        assert [0, 0] == [r.returncode for r in results], results[0].stderr[-2000:] + results[1].stderr[-2000:]
        assert 60 == sum(summary_of(r)["applied"] for r in results)
        assert all([1, 2] == fleet.rows_of_a(i) for i in range(30))
        assert all(["1", "2"] == fleet.applied(i) for i in range(30))

    def test_sigterm_mid_fleet(self, fleet: FleetOf, migrations_dir: Path, tmp_path: Path) -> None:
        """SIGTERM while four targets run an endless statement: each is rolled back or recorded, no new target
        starts, exit 143 with the summary counting them."""
        write(migrations_dir, "001_a.sql", FIRST)
        write(migrations_dir, "002_slow.sql", "CREATE TABLE before_sleep (id INTEGER);\n"
              + endless_sql(fleet.dialect) + "\n")
        lines = fleet.make(12)
        live = LiveCli("up", "--dir", str(migrations_dir), "--targets", str(targets_file(tmp_path / "t.txt", lines)),
                       "--concurrency", "4", env=fleet.env, cwd=tmp_path)
        try:
            started: set[str] = set()
            deadline = time.monotonic() + LIVENESS_S
            while len(started) < 4 and time.monotonic() < deadline:
                event = live.wait_for_event("migration_started", where=lambda e: e.get("version") == "2"
                                            and e["target"] not in started)
                started.add(event["target"])
            time.sleep(0.5)
            live.proc.send_signal(signal.SIGTERM)
            result = live.finish(timeout=LIVENESS_S)
        finally:
            live.kill()
        assert 143 == result.returncode, result.stderr[-3000:]
        summary = summary_of(result)
        assert {"interrupted": 4, "not_started": 8} == summary["outcomes"]
        assert 143 == summary["exit_code"]
        interrupted = {f["target"] for f in summary["failed"]}
        assert started == interrupted
        for i, line in enumerate(lines):
            if target_name(line) not in interrupted:
                continue
            assert ["1"] == fleet.applied(i)
            rows = fleet.query(i, "SELECT state, statements_done, statement_started, error FROM premigrate_history "
                                  "WHERE version = '2'")
            if fleet.dialect == "mysql":
                # Recorded as a single run records it: statement 2 (the one cancelled) in doubt, not "failed".
                assert [("in_progress", 1, 2)] == [r[:3] for r in rows], rows
                assert "interrupted by SIGTERM during statement 2" in rows[0][3]
            else:
                assert [] == rows  # rolled back with its transaction
        assert [] == result.find("migration_failed")
        assert Counter(e["event"] for e in result.events)["interrupted"] == 1
        assert "nothing was changed" not in result.find("interrupted")[0]["note"]
        # Migration 1 inserted one row in each of the four targets: the run's summary adds them up.
        assert 4 == result.find("summary")[0]["rows_affected"]


class TestFleetInput:
    def test_bad_line_refused_before_any_change(self, folder: Path, tmp_path: Path) -> None:
        """A bad line anywhere in the list is exit 2 and no target is touched."""
        good = tmp_path / "good.db"
        listed = targets_file(tmp_path / "t.txt", [f"sqlite:///{good}", "tenant_without_a_key"])
        result = run_cli("up", "--dir", str(folder), "--targets", str(listed), cwd=tmp_path)
        assert 2 == result.returncode
        assert "line 4" in result.find("error")[0]["error"]
        assert not good.exists()

    def test_one_target_written_two_ways_is_refused(self, folder: Path, tmp_path: Path) -> None:
        """A SQLite file beside a symbolic link to it, and (PostgreSQL) a URL beside schema=public of the same
        database: each is one target, which would run twice under two runner locks at once."""
        real = tmp_path / "real.db"
        (tmp_path / "alias.db").symlink_to(real)
        listed = targets_file(tmp_path / "t.txt", [f"sqlite:///{real}", f"sqlite:///{tmp_path / 'alias.db'}"])
        result = run_cli("up", "--dir", str(folder), "--targets", str(listed), cwd=tmp_path)
        assert 2 == result.returncode, result.stderr[-2000:]
        assert "written another way" in result.find("error")[0]["error"]
        assert not real.exists()
        url = with_database(server_url("postgresql"), "pm_no_such_db")
        listed = targets_file(tmp_path / "p.txt", ["schema=public", url])
        result = run_cli("up", "--dir", str(folder), "--targets", str(listed), env={"DATABASE_URL": url},
                         cwd=tmp_path)
        assert 2 == result.returncode, result.stderr[-2000:]
        assert "written another way" in result.find("error")[0]["error"]

    def test_fleet_settings_without_a_fleet_are_refused(self, folder: Path, tmp_path: Path) -> None:
        for args in (["--shard", "0/2"], ["--concurrency", "3"], ["--fail-fast"]):
            result = run_cli("check", "--dir", str(folder), *args, cwd=tmp_path)
            assert 2 == result.returncode, (args, result.stderr[-2000:])
            assert "applies to a fleet only" in result.find("error")[0]["error"]

    def test_targets_from_stdin_and_query(self, folder: Path, tmp_path: Path) -> None:
        """`--targets -` reads the list from standard input; --targets-query reads schema names from the database."""
        fleet = FleetOf("pg-schemas", tmp_path)
        try:
            lines = fleet.make(3)
            result = run_cli("up", "--dir", str(folder), "--targets", "-", env=fleet.env, cwd=tmp_path,
                             input="\n".join(lines[:2]) + "\n")
            assert 0 == result.returncode, result.stderr[-2000:]
            assert 2 == summary_of(result)["targets"]
            query = (f"SELECT nspname FROM pg_namespace WHERE nspname LIKE '{fleet.prefix}%' "
                     f"UNION SELECT '{fleet.names[2]}' ORDER BY 1")
            result = run_cli("check", "--dir", str(folder), "--targets-query", query, env=fleet.env, cwd=tmp_path)
            assert 7 == result.returncode, result.stderr[-2000:]
            assert {"succeeded": 2, "pending": 1} == summary_of(result)["outcomes"]
        finally:
            fleet.drop()

    def test_password_in_a_line_never_shown(self, folder: Path, tmp_path: Path) -> None:
        """A target's password appears in no log line, summary or summary file, even when the target fails."""
        listed = targets_file(tmp_path / "t.txt", ["postgresql://app:pw-in-the-list-42@127.0.0.1:1/app",
                                                   f"sqlite:///{tmp_path / 'ok.db'}"])
        summary_file = tmp_path / "summary.json"
        result = run_cli("up", "--dir", str(folder), "--targets", str(listed), "--wait-timeout", "1s",
                         "--summary-file", str(summary_file), cwd=tmp_path)
        assert 3 == result.returncode, result.stderr[-2000:]
        assert {"succeeded": 1, "unavailable": 1} == summary_of(result)["outcomes"]
        for text in (result.stdout, result.stderr, summary_file.read_text()):
            assert "pw-in-the-list-42" not in text


class TestFleetCheckWait:
    def test_one_deadline_for_the_whole_fleet(self, folder: Path, tmp_path: Path) -> None:
        """check --wait --timeout T over four pending targets, one at a time: the targets share T (the first waits
        it out, the others are read once), rather than each waiting T in turn."""
        fleet = FleetOf("pg-schemas", tmp_path)
        try:
            lines = fleet.make(4)
            result = run_fleet(fleet, "check", folder, targets_file(tmp_path / "t.txt", lines), "--wait",
                               "--timeout", "2s", "--concurrency", "1")
            assert 7 == result.returncode, result.stderr[-2000:]
            given = [e["timeout_s"] for e in result.find("check_wait_timed_out")]
            assert 4 == len(given) and given[0] > 1.5, given
            assert sum(given) < 3.0, given  # each waiting its own 2 s would be 8
        finally:
            fleet.drop()


class TestFleetStopsWaiting:
    def test_sigterm_while_a_target_waits_for_an_unreachable_server(self, folder: Path, tmp_path: Path) -> None:
        """A target retrying a port that refuses stops at SIGTERM like the others: 143 at once, with the fleet's
        summary, not the give-up path after the grace period."""
        listed = targets_file(tmp_path / "t.txt", ["postgresql://postgres@127.0.0.1:1/nowhere",
                                                   f"sqlite:///{tmp_path / 'ok.db'}"])
        summary_file = tmp_path / "summary.json"
        live = LiveCli("up", "--dir", str(folder), "--targets", str(listed), "--concurrency", "2", "--wait-timeout",
                       "10m", "--summary-file", str(summary_file), cwd=tmp_path)
        try:
            live.wait_for_event("wait_retrying")
            signalled = time.monotonic()
            live.proc.send_signal(signal.SIGTERM)
            result = live.finish(timeout=LIVENESS_S)
        finally:
            live.kill()
        assert 143 == result.returncode, result.stderr[-3000:]
        assert time.monotonic() - signalled < 10, "the waiting target held the exit"
        assert [] == result.find("cleanup_timed_out")
        summary = summary_of(result)
        assert 2 == summary["targets"] and 143 == summary["exit_code"]
        assert "postgresql://postgres@127.0.0.1:1/nowhere" in {f["target"] for f in summary["failed"]}
        assert summary == json.loads(summary_file.read_text())["fleet"]

    def test_sigterm_while_a_target_waits_for_its_lock(self, migrations_dir: Path, tmp_path: Path) -> None:
        """A target waiting for a runner lock another runner holds stops waiting at SIGTERM: 143 within the grace
        period, not the give-up path."""
        fleet = FleetOf("pg-schemas", tmp_path)
        holder: LiveCli | None = None
        live: LiveCli | None = None
        try:
            lines = fleet.make(1)
            write(migrations_dir, "001_slow.sql", endless_sql("postgresql") + "\n")
            holder = LiveCli("up", "--dir", str(migrations_dir), "--schema", fleet.names[0], env=fleet.env,
                             cwd=tmp_path)
            holder.wait_for_event("migration_started")
            live = LiveCli("up", "--dir", str(migrations_dir), "--targets",
                           str(targets_file(tmp_path / "t.txt", lines)), env=fleet.env, cwd=tmp_path)
            live.wait_for_event("lock_waiting")
            live.proc.send_signal(signal.SIGTERM)
            result = live.finish(timeout=LIVENESS_S)
            assert 143 == result.returncode, result.stderr[-3000:]
            assert [] == result.find("cleanup_timed_out")
            assert {"interrupted": 1} == summary_of(result)["outcomes"]
        finally:
            for proc in (live, holder):
                if proc is not None:
                    proc.kill()
            fleet.drop()


class TestFleetCallbacks:
    def test_after_migrate_runs_per_target_and_an_owed_one_is_paid(self, fleet: FleetOf, folder: Path,
                                                                  tmp_path: Path) -> None:
        """Each target runs the folder's afterMigrate after its migrations; a target whose afterMigrate failed owes
        it (model/owed.py): `check --targets` says 7, and the next fleet run pays the debt there and only there."""
        lines = fleet.make(4)
        for i in (0, 2):
            fleet.query(i, "CREATE TABLE cb (id INTEGER)")
        write(folder, "afterMigrate.sql", "INSERT INTO cb VALUES (1);\n")
        targets = targets_file(tmp_path / "t.txt", lines)
        first = run_fleet(fleet, "up", folder, targets, "--concurrency", "2")
        assert 4 == first.returncode, first.stderr[-3000:]
        assert {"succeeded": 2, "migration_failed": 2} == summary_of(first)["outcomes"]
        assert [["1", "2"]] * 4 == [fleet.applied(i) for i in range(4)]
        assert 7 == run_fleet(fleet, "check", folder, targets).returncode
        for i in (1, 3):
            fleet.query(i, "CREATE TABLE cb (id INTEGER)")
        second = run_fleet(fleet, "up", folder, targets, "--concurrency", "2")
        assert 0 == second.returncode, second.stderr[-3000:]
        assert sorted(target_name(lines[i]) for i in (1, 3)) == sorted(
            e["target"] for e in second.find("callback_owed"))
        assert [[(1,)]] * 4 == [fleet.query(i, "SELECT id FROM cb") for i in range(4)]
        assert 0 == run_fleet(fleet, "check", folder, targets).returncode
