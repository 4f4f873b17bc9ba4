"""A migration with an SQL error: exit 4, rolled back on PostgreSQL/SQLite, recorded as failed on MariaDB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import cmd, up, write
from tests.support import TestDatabase

GOOD = "CREATE TABLE t1 (id INTEGER PRIMARY KEY);\n"
# Statements 1 and 2 are fine; statement 3 (line 6 of the file) is a syntax error on every database.
BROKEN = """-- version 2: two good statements, then a broken one

CREATE TABLE t2 (id INTEGER PRIMARY KEY);
INSERT INTO t2 (id) VALUES (1);

CREATE TABLE broken (id INTEGER,);
"""
BROKEN_LINE = 6
FIXED = BROKEN.replace("CREATE TABLE broken (id INTEGER,);", "CREATE TABLE fixed (id INTEGER);")
CODE_FIELDS = {
    "postgresql": ("sqlstate", "42601"),
    "mysql": ("errno", "1064"),
    "sqlite": ("code", "SQLITE_ERROR"),
}


@pytest.fixture
def failed_run(db: TestDatabase, migrations_dir: Path):
    """Apply file 1, then run `up` with the broken file 2 added; returns the failing run's result."""
    write(migrations_dir, "001_t1.sql", GOOD)
    assert 0 == up(db, migrations_dir).returncode
    write(migrations_dir, "002_t2.sql", BROKEN)
    return up(db, migrations_dir)


class TestFailingMigrationExitCode:
    def test_exits_4(self, failed_run) -> None:
        """`up` exits 4 when a statement of a migration fails."""
        assert 4 == failed_run.returncode, failed_run.stderr

    def test_failed_event_names_statement_and_line(self, failed_run) -> None:
        """The migration_failed event names version 2, statement 3 and its line in the file."""
        [event] = failed_run.find("migration_failed")
        assert ("2", "002_t2.sql", 3, BROKEN_LINE) == (event["version"], event["script"], event["statement"],
                                                       event["line"])
        assert event["error"]

    def test_failed_event_carries_database_code(self, db: TestDatabase, failed_run) -> None:
        """migration_failed carries the sqlstate (PostgreSQL), errno (MySQL) or code (SQLite) of the error."""
        field, expected = CODE_FIELDS[db.dialect]
        [event] = failed_run.find("migration_failed")
        assert expected == str(event.get(field))

    def test_single_error_and_summary(self, failed_run) -> None:
        """The run ends with one `error` event and a summary with exit_code 4 and applied 0."""
        assert 1 == len(failed_run.find("error"))
        summary = failed_run.events[-1]
        assert ("summary", 4, 0) == (summary["event"], summary["exit_code"], summary["applied"])
        assert "Traceback" not in failed_run.stderr


@pytest.mark.parametrize("dialect", [pytest.param("postgresql", id="postgresql"), pytest.param("sqlite", id="sqlite")])
class TestRolledBackOnTransactionalDdl:
    def test_database_unchanged(self, db: TestDatabase, failed_run) -> None:
        """The good statements of the failing file are rolled back: no t2, no row for version 2, t1 stays."""
        assert 4 == failed_run.returncode
        tables = db.tables()
        assert "t2" not in tables
        assert "t1" in tables
        assert [("1", "applied")] == [(r["migration_id"], r["state"]) for r in db.history()]

    def test_next_up_retries_and_fails_again(self, db: TestDatabase, migrations_dir: Path, failed_run) -> None:
        """Nothing was recorded, so the next `up` runs the file again and fails the same way (exit 4)."""
        result = up(db, migrations_dir)

        assert 4 == result.returncode, result.stderr
        assert [3] == [e["statement"] for e in result.find("migration_failed")]

    def test_fixed_file_applies(self, db: TestDatabase, migrations_dir: Path, failed_run) -> None:
        """After fixing the file, `up` exits 0 and applies version 2 whole."""
        write(migrations_dir, "002_t2.sql", FIXED)

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert {"t1", "t2", "fixed"} <= db.tables()
        assert [("1", "applied"), ("2", "applied")] == [(r["migration_id"], r["state"]) for r in db.history()]
        assert [(1,)] == [tuple(r) for r in db.query("SELECT id FROM t2")]


@pytest.mark.parametrize("dialect", [pytest.param("mysql", id="mysql")])
class TestRecordedOnMariaDb:
    def test_row_is_failed_at_statement_3(self, db: TestDatabase, failed_run) -> None:
        """The history row of version 2 is `failed` with statements 1-2 done and statement 3 started."""
        assert 4 == failed_run.returncode
        row = {r["migration_id"]: r for r in db.history()}["2"]
        assert ("failed", 2, 3, 3) == (row["state"], row["statements_done"], row["statement_started"],
                                       row["statements_total"])
        assert "1064" in (row["error"] or "")

    def test_good_statements_took_effect(self, db: TestDatabase, failed_run) -> None:
        """DDL commits implicitly on MariaDB: the statements before the failing one took effect."""
        assert "t2" in db.tables()
        assert [(1,)] == [tuple(r) for r in db.query("SELECT id FROM t2")]

    def test_next_up_refuses_naming_version_and_statement(self, db: TestDatabase, migrations_dir: Path,
                                                         failed_run) -> None:
        """The next `up` exits 5 and its error names the file, version 2 and statement 3, and applies nothing."""
        history = db.history()

        result = up(db, migrations_dir)

        assert 5 == result.returncode, result.stderr
        [error] = result.find("error")
        message = error["error"]
        assert "002_t2.sql" in message
        assert "version 2" in message
        assert "statement 3" in message
        assert [] == result.find("migration_started")
        assert history == db.history()

    def test_check_and_status_report_failed_row(self, db: TestDatabase, migrations_dir: Path, failed_run) -> None:
        """After the failure, `check` exits 5 and `status --json` shows version 2 as failed."""
        check = cmd("check", db, migrations_dir)
        status = cmd("status", db, migrations_dir, "--json")

        assert 5 == check.returncode, check.stderr
        assert 0 == status.returncode, status.stderr
        assert {"1": "applied", "2": "failed"} == {m["id"]: m["state"] for m in json.loads(status.stdout)["migrations"]}


@pytest.mark.parametrize("dialect", ["postgresql"])
@pytest.mark.parametrize("error", ["syntax", "runtime"])
def test_an_error_in_the_first_statement_names_its_own_line(db: TestDatabase, migrations_dir: Path,
                                                            error: str) -> None:
    """PostgreSQL sends a migration's first statement in the message that opens its transaction (after the
    session restore, the lock check and BEGIN): the line reported is still the one in the file where the error is
    (the server's position, counted past premigrate's own SQL), and nothing of the migration stays."""
    bad = "oops oops" if error == "syntax" else "x integer DEFAULT no_such_function()"
    write(migrations_dir, "001_t1.sql", GOOD)
    write(migrations_dir, "002_t2.sql", f"-- two lines of comment\n--\nCREATE TABLE t2 (\n  ok integer,\n  {bad}\n);\n"
                                        "CREATE TABLE t3 (id integer);\n")

    result = up(db, migrations_dir)

    assert 4 == result.returncode, result.stderr
    [event] = result.find("migration_failed")
    assert (1, 5) == (event["statement"], event["line"]), event
    assert {"t1"} == db.tables() - {db.table}
