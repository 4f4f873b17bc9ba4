"""The history table honours --table (every database) and --schema / schema.table (PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import up, write
from tests.support import TestDatabase

MIGRATION = "CREATE TABLE widgets (id INTEGER PRIMARY KEY);\n"


def _pg_tables(db: TestDatabase) -> set[tuple[str, str]]:
    rows = db.query("SELECT schemaname, tablename FROM pg_tables "
                    "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
    return {(r[0], r[1]) for r in rows}


class TestCustomTable:
    def test_table_flag(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`up --table my_history` records into my_history and creates no premigrate_history."""
        write(migrations_dir, "001_widgets.sql", MIGRATION)

        result = up(db, migrations_dir, "--table", "my_history")

        assert 0 == result.returncode, result.stderr
        tables = db.tables()
        assert {"my_history", "widgets"} <= tables
        assert "premigrate_history" not in tables
        db.table = "my_history"
        assert [("1", "applied")] == [(r["migration_id"], r["state"]) for r in db.history()]

    def test_table_env_var_second_run_is_no_op(self, db: TestDatabase, migrations_dir: Path) -> None:
        """PREMIGRATE_TABLE works like --table, and a second run reading that table has nothing to do."""
        write(migrations_dir, "001_widgets.sql", MIGRATION)
        assert 0 == up(db, migrations_dir, env={"PREMIGRATE_TABLE": "my_history"}).returncode

        result = up(db, migrations_dir, env={"PREMIGRATE_TABLE": "my_history"})

        assert 0 == result.returncode, result.stderr
        assert 1 == len(result.find("nothing_to_do"))
        assert "premigrate_history" not in db.tables()

    def test_separate_tables_are_separate_histories(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Another --table is read as an empty history, so the migration runs again and fails on its existing table."""
        write(migrations_dir, "001_widgets.sql", MIGRATION)
        assert 0 == up(db, migrations_dir, "--table", "history_a").returncode

        result = up(db, migrations_dir, "--table", "history_b")

        assert 4 == result.returncode, result.stderr
        assert ["1"] == [e["version"] for e in result.find("migration_failed")]


@pytest.mark.parametrize("dialect", [pytest.param("postgresql", id="postgresql")])
class TestPostgresSchema:
    def test_schema_flag(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`up --schema app` creates schema app, its history table there, and runs migrations with that search_path."""
        write(migrations_dir, "001_widgets.sql", MIGRATION)

        result = up(db, migrations_dir, "--schema", "app")

        assert 0 == result.returncode, result.stderr
        tables = _pg_tables(db)
        assert {("app", "premigrate_history"), ("app", "widgets")} <= tables
        assert set() == {t for t in tables if t[0] == "public"}
        rows = db.query("SELECT migration_id, state FROM app.premigrate_history")
        assert [("1", "applied")] == [tuple(r) for r in rows]

    def test_schema_second_run_is_no_op(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A second `up --schema app` reads the history in schema app and has nothing to do."""
        write(migrations_dir, "001_widgets.sql", MIGRATION)
        assert 0 == up(db, migrations_dir, "--schema", "app").returncode

        result = up(db, migrations_dir, "--schema", "app")

        assert 0 == result.returncode, result.stderr
        assert 1 == len(result.find("nothing_to_do"))

    def test_schema_qualified_table(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`--table audit.migrations` creates schema audit with the history there; migrations stay in public."""
        write(migrations_dir, "001_widgets.sql", MIGRATION)

        result = up(db, migrations_dir, "--table", "audit.migrations")

        assert 0 == result.returncode, result.stderr
        tables = _pg_tables(db)
        assert {("audit", "migrations"), ("public", "widgets")} <= tables
        assert ("public", "premigrate_history") not in tables
        rows = db.query("SELECT migration_id, state FROM audit.migrations")
        assert [("1", "applied")] == [tuple(r) for r in rows]

    def test_schema_and_qualified_table(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`--schema app --table audit.migrations`: migrations run in app, the history lives in audit."""
        write(migrations_dir, "001_widgets.sql", MIGRATION)

        result = up(db, migrations_dir, "--schema", "app", "--table", "audit.migrations")

        assert 0 == result.returncode, result.stderr
        tables = _pg_tables(db)
        assert {("audit", "migrations"), ("app", "widgets")} <= tables
        assert set() == {t for t in tables if t[0] == "public"}
