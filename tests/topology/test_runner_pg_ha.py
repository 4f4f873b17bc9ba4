"""`premigrate up` against PostgreSQL high availability and short-lived passwords: a multi-host URL finds the
primary, a standby alone is read-only (waited for, then exit 3), a failover mid-run leaves nothing half-applied and
the rerun converges; --password-command gives every connection a fresh password that never shows."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import run_cli
from tests.topology.pgha import PgServer
from tests.topology.runs import Runner, counted_migration

pytestmark = pytest.mark.topology

ROTATE = '''\
import secrets, sys
import psycopg
from psycopg import sql
port, role, seen = sys.argv[1], sys.argv[2], sys.argv[3]
token = "tok-" + secrets.token_urlsafe(24)
with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(token)))
with open(seen, "a") as f:
    f.write(token + "\\n")
print(token)
'''


def _database(server: PgServer, owner: str = "postgres") -> str:
    name = f"pm_ha_{uuid.uuid4().hex[:10]}"
    server.query(f"CREATE DATABASE {name} OWNER {owner}")
    return name


def _counts(server: PgServer, database: str) -> dict[str, int]:
    rows = server.query("SELECT version, count(*) FROM applied_log GROUP BY version", database=database)
    return {str(v): int(n) for v, n in rows}


class TestStandby:
    def test_multi_host_url_with_the_standby_first_picks_the_primary(
            self, pg_primary: PgServer, pg_standby: PgServer, tmp_path: Path) -> None:
        """postgresql://standby,primary/db?target_session_attrs=read-write: applied on the primary."""
        database = _database(pg_primary)
        counted_migration(tmp_path, 1)
        url = (f"postgresql://postgres@127.0.0.1:{pg_standby.port},127.0.0.1:{pg_primary.port}/{database}"
               "?target_session_attrs=read-write")
        result = run_cli("up", "--dir", str(tmp_path), "--wait-timeout", "20s", env={"DATABASE_URL": url})
        assert 0 == result.returncode, result.stderr[-3000:]
        assert {"1": 1} == _counts(pg_primary, database)

    def test_db_host_list_reaches_libpq(
            self, pg_primary: PgServer, tmp_path: Path) -> None:
        """DB_HOST=127.0.0.1:1,127.0.0.1:<primary> (comma-separated): the list reaches libpq, which skips the
        host that refuses and connects to the next."""
        database = _database(pg_primary)
        counted_migration(tmp_path, 1)
        result = run_cli("up", "--dir", str(tmp_path), "--wait-timeout", "20s", env={
            "DB_DIALECT": "postgresql", "DB_HOST": f"127.0.0.1:1,127.0.0.1:{pg_primary.port}", "DB_NAME": database,
            "DB_USER": "postgres"})
        assert 0 == result.returncode, result.stderr[-3000:]
        assert {"1": 1} == _counts(pg_primary, database)

    def test_standby_alone_is_waited_for_then_exit_3_read_only(
            self, pg_primary: PgServer, pg_standby: PgServer, tmp_path: Path) -> None:
        """Only the standby: retried as transient (reason read_only) until --wait-timeout, then exit 3 naming the
        server as read-only and suggesting target_session_attrs=read-write; nothing written."""
        database = _database(pg_primary)
        pg_standby.wait_replayed(pg_primary)
        counted_migration(tmp_path, 1)
        result = run_cli("up", "--dir", str(tmp_path), "--wait-timeout", "3s",
                         env={"DATABASE_URL": pg_standby.url(database)})
        assert 3 == result.returncode, result.stderr[-3000:]
        assert "read_only" in {e.get("reason") for e in result.find("wait_retrying")}
        summary = result.find("summary")[-1]
        assert "read-only" in result.stderr and "target_session_attrs=read-write" in result.stderr, summary
        assert [] == pg_primary.query("SELECT 1 FROM pg_tables WHERE tablename = 'applied_log'", database=database)


class TestFailover:
    def test_failover_mid_run_then_rerun_on_the_promoted_server_converges(self, topology_dir: Path,
                                                                          tmp_path: Path) -> None:
        """200 migrations; the primary is killed mid-run and the standby promoted: the run exits with a documented
        code, every recorded migration is wholly there and nothing else is, and a rerun applies the rest."""
        name = uuid.uuid4().hex[:6]
        primary = PgServer.primary(topology_dir, f"fo_primary_{name}")
        standby: PgServer | None = None
        try:
            standby = primary.standby(topology_dir, f"fo_standby_{name}")
            database = _database(primary)
            for version in range(1, 201):
                counted_migration(tmp_path, version)
            url = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/{database}"
                   "?target_session_attrs=read-write")
            runner = Runner("up", "--dir", str(tmp_path), "--wait-timeout", "30s", env={"DATABASE_URL": url})
            try:
                runner.wait_for(lambda e: e.get("event") == "migration_applied" and e.get("version") == "40",
                                timeout=120)
                primary.kill()
                code = runner.finish()
            finally:
                runner.kill()
            # 8: the lock's session was found gone first (docs/topologies.md)
            assert code in (3, 4, 8), runner.output()[-3000:]
            standby.promote()
            history = standby.query("SELECT version, state FROM premigrate_history", database=database)
            applied = {str(v) for v, s in history if s == "applied"}
            assert {str(v) for v, _ in history} == applied  # nothing in progress: each commits with its row
            assert {v: 1 for v in applied} == _counts(standby, database)
            tables = {r[0] for r in standby.query("SELECT tablename FROM pg_tables WHERE tablename ~ '^t[0-9]+$'",
                                                  database=database)}
            assert {f"t{v}" for v in applied} == tables
            rerun = run_cli("up", "--dir", str(tmp_path), env={"DATABASE_URL": url})
            assert 0 == rerun.returncode, rerun.stderr[-3000:]
            assert 200 - len(applied) == len(rerun.find("migration_applied"))
            assert {str(v): 1 for v in range(1, 201)} == _counts(standby, database)
        finally:
            if standby is not None:
                standby.stop()
            primary.stop()


@pytest.fixture
def rotating_role(pg_primary: PgServer, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """A login role whose password the command replaces on every call; the command; the file of tokens issued."""
    role = f"pm_iam_{uuid.uuid4().hex[:8]}"
    pg_primary.query(f"CREATE ROLE {role} LOGIN")
    script = tmp_path / "rotate.py"
    script.write_text(ROTATE)
    seen = tmp_path / "tokens.txt"
    try:
        yield role, f"{sys.executable} {script} {pg_primary.port} {role} {seen}", seen
    finally:
        owned = pg_primary.query("SELECT datname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba"
                                 " WHERE r.rolname = %s", (role,))
        for (name,) in owned:
            pg_primary.query(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        pg_primary.query(f"DROP ROLE IF EXISTS {role}")


class TestPasswordCommand:
    def test_every_connection_gets_a_fresh_password_that_never_shows(
            self, pg_primary: PgServer, rotating_role: tuple[str, str, Path], tmp_path: Path) -> None:
        """A run with several connections (runner, lock, heartbeat: --lock-mode table) and a password that changes
        on every call: exit 0, one token per connection, and no token in any output."""
        role, command, seen = rotating_role
        database = _database(pg_primary, owner=role)
        folder = tmp_path / "m"
        folder.mkdir()
        for version in (1, 2):
            counted_migration(folder, version)
        result = run_cli("up", "--dir", str(folder), "--lock-mode", "table", "--log-level", "debug",
                         "--password-command", command,
                         env={"DATABASE_URL": f"postgresql://{role}@127.0.0.1:{pg_primary.port}/{database}"})
        assert 0 == result.returncode, result.stderr[-3000:]
        tokens = seen.read_text().split()
        assert len(tokens) >= 3 and len(set(tokens)) == len(tokens)
        output = result.stdout + result.stderr
        assert [] == [t for t in tokens if t in output]
        assert {"1": 1, "2": 1} == _counts(pg_primary, database)

    def test_failing_command_is_exit_3_naming_the_command(self, pg_primary: PgServer, tmp_path: Path) -> None:
        """A command that fails: exit 3, the message names the program, not its arguments or output."""
        counted_migration(tmp_path, 1)
        script = tmp_path / "fail.sh"
        script.write_text("#!/bin/sh\necho secret-output-xyz\nexit 7\n")
        script.chmod(0o755)
        result = run_cli("up", "--dir", str(tmp_path), "--password-command", f"{script} --arg secret-arg-xyz",
                         env={"DATABASE_URL": f"postgresql://someone@127.0.0.1:{pg_primary.port}/postgres"})
        assert 3 == result.returncode, result.stderr[-3000:]
        assert str(script) in result.stderr and "exited with status 7" in result.stderr
        assert "secret-output-xyz" not in result.stderr and "secret-arg-xyz" not in result.stderr
