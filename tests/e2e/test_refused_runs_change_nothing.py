"""A run refused for its input changes nothing in the database, the history table included; and `check --wait`
waits for an unreachable database within its own --timeout, not --wait-timeout."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.helpers import up, write
from tests.support import TestDatabase, run_cli, server_url, with_database


def test_a_refused_plan_creates_no_history_table(db: TestDatabase, migrations_dir: Path) -> None:
    """A draft that `new` created and nobody wrote is refused (exit 5) before the history table exists."""
    write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n")
    assert 0 == run_cli("new", "second", "--dir", str(migrations_dir), cwd=migrations_dir.parent).returncode
    result = up(db, migrations_dir)
    assert 5 == result.returncode, result.stderr[-2000:]
    assert not result.find("history_table_created")
    assert db.table not in db.tables() and "a" not in db.tables()


def test_check_wait_gives_up_at_its_timeout(tmp_path: Path, migrations_dir: Path) -> None:
    """An unreachable database is waited for within --timeout: with --timeout 1s and --wait-timeout 120s the run
    ended after --wait-timeout."""
    write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n")
    result = run_cli("check", "--wait", "--timeout", "1s", "--wait-timeout", "120s", "--dir", str(migrations_dir),
                     env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}, cwd=tmp_path, timeout=100)
    assert 3 == result.returncode, result.stderr[-2000:]
    assert result.find("summary")[0]["duration_ms"] < 100_000


def test_a_mysql_url_without_a_database_is_a_usage_error(tmp_path: Path, migrations_dir: Path) -> None:
    """MySQL keeps the history table in a database: a URL naming none is exit 2 at once (it was exit 4, the server's
    'No database selected', even for the read-only status)."""
    write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n")
    url = with_database(server_url("mysql"), "")
    for command in ("status", "up"):
        result = run_cli(command, "--dir", str(migrations_dir), env={"DATABASE_URL": url}, cwd=tmp_path)
        assert 2 == result.returncode, result.stderr[-2000:]
        assert "names no database" in result.find("error")[0]["error"]


@pytest.mark.parametrize("dialect", [pytest.param("postgresql", id="postgresql"), pytest.param("mysql", id="mysql")])
def test_a_user_who_may_not_create_the_history_table_is_told_the_grant(db: TestDatabase,
                                                                       migrations_dir: Path) -> None:
    """A user without CREATE where the history table goes: exit 2 naming the grant (it was exit 4, 'a migration
    failed', with the server's text), and then, with the table there, a migration the user may not run says that a
    privilege is missing."""
    write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n")
    user, password = f"pm_ro_{uuid.uuid4().hex[:8]}", "Ro-pass-123"
    if db.dialect == "postgresql":
        db.admin(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        db.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT USAGE ON SCHEMA public TO {user}")
        drop = [f"DROP OWNED BY {user}", f"DROP ROLE {user}"]
    else:
        db.admin(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        db.admin(f"GRANT SELECT ON {db.name}.* TO '{user}'@'%'")
        drop = [f"DROP USER '{user}'@'%'"]
    url = urlunsplit(urlsplit(db.url)._replace(netloc=f"{user}:{password}@" + urlsplit(db.url).netloc.split("@")[-1]))
    try:
        result = run_cli("up", "--dir", str(migrations_dir), env={"DATABASE_URL": url}, cwd=migrations_dir.parent)
        assert 2 == result.returncode, result.stderr[-2000:]
        error = result.find("error")[0]["error"]
        assert f"{user} may not create premigrate's history table" in error and "GRANT CREATE" in error, error
        assert db.table not in db.tables()
        if db.dialect == "postgresql":
            assert 0 == up(db, migrations_dir).returncode  # the admin creates the history table, applies 001
            write(migrations_dir, "002_b.sql", "CREATE TABLE b (id INTEGER);\n")
            db.execute(f"GRANT ALL ON {db.table} TO {user}")
            failed = run_cli("up", "--dir", str(migrations_dir), env={"DATABASE_URL": url},
                             cwd=migrations_dir.parent)
            assert 4 == failed.returncode, failed.stderr[-2000:]
            assert "lacks a privilege" in failed.find("error")[0]["error"]
    finally:
        for statement in drop:
            (db.execute if statement.startswith("DROP OWNED") else db.admin)(statement)


def test_baseline_refusals_change_nothing(tmp_path: Path, migrations_dir: Path) -> None:
    """A table of another tool's shape is exit 5 saying so (it was exit 4, the server's 'no such column', as if a
    migration had failed), and nothing is recorded."""
    write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n")
    dbmate_shaped = tmp_path / "tool.db"
    with sqlite3.connect(dbmate_shaped) as conn:
        conn.execute("CREATE TABLE schema_migrations (version VARCHAR(128) PRIMARY KEY)")
        conn.execute("INSERT INTO schema_migrations VALUES ('1')")
    result = run_cli("baseline", "--from", "golang-migrate", "--dir", str(migrations_dir),
                     env={"DATABASE_URL": f"sqlite:///{dbmate_shaped}"}, cwd=tmp_path)
    assert 5 == result.returncode, result.stderr[-2000:]
    assert "does not read as golang-migrate's" in result.find("error")[0]["error"]
    with sqlite3.connect(dbmate_shaped) as conn:
        assert [("schema_migrations",)] == conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()


def test_repair_report_refuses_a_missing_history_table(tmp_path: Path, migrations_dir: Path) -> None:
    """`repair` said 'Nothing to repair' (exit 0) for a mistyped --table; the actions refuse it with exit 5."""
    write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}"}
    assert 0 == run_cli("up", "--dir", str(migrations_dir), env=env, cwd=tmp_path).returncode
    result = run_cli("repair", "--dir", str(migrations_dir), "--table", "premigrate_histroy", env=env, cwd=tmp_path)
    assert 5 == result.returncode, result.stderr[-2000:]
    assert "no history table premigrate_histroy" in result.find("error")[0]["error"]
