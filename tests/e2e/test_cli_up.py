"""`up` applies pending migrations once; a second run is a no-op; `status --json` and `check` agree with the history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import cmd, up, write
from tests.support import TestDatabase, run_cli

FIRST = """-- the first migration: portable SQL
CREATE TABLE widgets (
    id INTEGER PRIMARY KEY,
    name VARCHAR(100) NOT NULL
);
INSERT INTO widgets (id, name) VALUES (1, 'first');
"""
SECOND = """CREATE TABLE gadgets (id INTEGER PRIMARY KEY);
CREATE INDEX gadgets_id_index ON gadgets (id);
"""
THIRD = "CREATE TABLE doohickeys (id INTEGER PRIMARY KEY);\n"


def _two_migrations(migrations_dir: Path) -> None:
    write(migrations_dir, "001_create_widgets.sql", FIRST)
    write(migrations_dir, "002_create_gadgets.sql", SECOND)


def _applied_at(db: TestDatabase) -> list[tuple[str, str]]:
    return sorted((str(r[0]), str(r[1])) for r in db.query("SELECT migration_id, applied_at FROM premigrate_history"))


def _status_states(db: TestDatabase, migrations_dir: Path) -> dict[str, str]:
    result = cmd("status", db, migrations_dir, "--json")
    assert 0 == result.returncode, result.stderr
    document = json.loads(result.stdout)
    return {m["id"]: m["state"] for m in document["migrations"]}


class TestFirstUpApplies:
    def test_first_up_creates_tables_and_history(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A first `up` applies every file: their tables exist and each has an applied history row."""
        _two_migrations(migrations_dir)

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert {"widgets", "gadgets", "premigrate_history"} <= db.tables()
        assert [("1", "applied", "001_create_widgets.sql"), ("2", "applied", "002_create_gadgets.sql")] == [
            (r["migration_id"], r["state"], r["script"]) for r in db.history()]
        assert [(1, "first")] == [tuple(r) for r in db.query("SELECT id, name FROM widgets")]

    def test_first_up_logs_each_migration(self, db: TestDatabase, migrations_dir: Path) -> None:
        """The run logs a plan of two, then started/applied events for versions 1 and 2 in order."""
        _two_migrations(migrations_dir)

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert [2] == [e["pending"] for e in result.find("plan")]
        assert ["1", "2"] == [e["version"] for e in result.find("migration_applied")]
        assert ["1", "2"] == [e["version"] for e in result.find("migration_started")]
        assert 2 == result.find("summary")[0]["applied"]


class TestSecondUpIsNoOp:
    def test_second_up_changes_nothing(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A second `up` exits 0 with `nothing_to_do`, applies nothing and leaves the history exactly as it was."""
        _two_migrations(migrations_dir)
        assert 0 == up(db, migrations_dir).returncode
        history, applied_at = db.history(), _applied_at(db)

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert 1 == len(result.find("nothing_to_do"))
        assert [] == result.find("migration_started")
        assert 0 == result.find("summary")[0]["applied"]
        assert history == db.history()
        assert applied_at == _applied_at(db)

    @pytest.mark.parametrize("callbacks", [pytest.param(False, id="plain"), pytest.param(True, id="callbacks")])
    def test_second_up_takes_no_lock(self, db: TestDatabase, migrations_dir: Path, callbacks: bool) -> None:
        """With nothing pending, `up` answers from a lock-free read: no lock_acquired event, callbacks or not."""
        _two_migrations(migrations_dir)
        if callbacks:
            write(migrations_dir, "beforeMigrate.sql", "SELECT 1;\n")
            write(migrations_dir, "afterMigrate.sql", "SELECT 1;\n")
        assert 0 == up(db, migrations_dir).returncode

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert [] == result.find("lock_acquired")

    def test_new_file_after_first_run_is_applied_alone(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A file added after the first run is the only one the next `up` applies."""
        _two_migrations(migrations_dir)
        assert 0 == up(db, migrations_dir).returncode
        write(migrations_dir, "003_create_doohickeys.sql", THIRD)

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert ["3"] == [e["version"] for e in result.find("migration_applied")]
        assert ["1", "2", "3"] == [r["migration_id"] for r in db.history()]
        assert "doohickeys" in db.tables()


class TestStatusJson:
    def test_status_before_up_lists_pending(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Before any run, `status --json` prints parseable JSON listing both migrations as pending."""
        _two_migrations(migrations_dir)
        if db.dialect == "sqlite":
            db.query("SELECT 1")  # read-only commands never create the file: give them an empty one

        assert {"1": "pending", "2": "pending"} == _status_states(db, migrations_dir)

    def test_status_after_up_lists_applied(self, db: TestDatabase, migrations_dir: Path) -> None:
        """After `up`, `status --json` lists both migrations as applied, with applied_at and pending empty."""
        _two_migrations(migrations_dir)
        assert 0 == up(db, migrations_dir).returncode

        result = cmd("status", db, migrations_dir, "--json")

        assert 0 == result.returncode, result.stderr
        document = json.loads(result.stdout)
        assert {"1": "applied", "2": "applied"} == {m["id"]: m["state"] for m in document["migrations"]}
        assert [] == document["pending"]
        assert all(m["applied_at"] for m in document["migrations"])

    def test_status_mixes_applied_and_pending(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A file added after `up` shows as pending next to the applied ones."""
        _two_migrations(migrations_dir)
        assert 0 == up(db, migrations_dir).returncode
        write(migrations_dir, "003_create_doohickeys.sql", THIRD)

        assert {"1": "applied", "2": "applied", "3": "pending"} == _status_states(db, migrations_dir)

    def test_status_is_read_only(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`status` on a fresh database creates no history table."""
        _two_migrations(migrations_dir)
        if db.dialect == "sqlite":
            db.query("SELECT 1")

        result = cmd("status", db, migrations_dir, "--json")

        assert 0 == result.returncode, result.stderr
        assert set() == db.tables()


class TestCheck:
    def test_check_before_up_reports_pending(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`check` on a database that has not been migrated exits 7."""
        _two_migrations(migrations_dir)
        if db.dialect == "sqlite":
            db.query("SELECT 1")

        result = cmd("check", db, migrations_dir)

        assert 7 == result.returncode, result.stderr
        assert set() == db.tables()

    def test_check_after_up_is_clean(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`check` exits 0 once `up` has applied everything."""
        _two_migrations(migrations_dir)
        assert 0 == up(db, migrations_dir).returncode

        result = cmd("check", db, migrations_dir)

        assert 0 == result.returncode, result.stderr

    def test_check_with_new_file_reports_pending(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`check` exits 7 when a file was added after the last `up`, and applies nothing."""
        _two_migrations(migrations_dir)
        assert 0 == up(db, migrations_dir).returncode
        write(migrations_dir, "003_create_doohickeys.sql", THIRD)

        result = cmd("check", db, migrations_dir)

        assert 7 == result.returncode, result.stderr
        assert "doohickeys" not in db.tables()
        assert ["1", "2"] == [r["migration_id"] for r in db.history()]


class TestReadOnlyOnMissingSqliteFile:
    @pytest.mark.parametrize("command", [pytest.param("check", id="check"), pytest.param("status", id="status")])
    def test_missing_file_is_unavailable(self, tmp_path: Path, migrations_dir: Path, command: str) -> None:
        """A read-only command on a SQLite file that does not exist exits 3 and does not create it."""
        write(migrations_dir, "001_create_widgets.sql", FIRST)
        path = tmp_path / "absent.db"

        result = run_cli(command, "--dir", str(migrations_dir), env={"DATABASE_URL": f"sqlite:///{path}"},
                         cwd=tmp_path)

        assert 3 == result.returncode, result.stderr
        assert not path.exists()
