"""goose `-- +goose ENVSUB ON` end to end: values from premigrate's environment, never drift, never logged."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import db_env, up
from tests.support import TestDatabase, run_cli

FILE = (
    "-- +goose ENVSUB ON\n"
    "-- +goose Up\n"
    "CREATE TABLE ${TABLE_PREFIX}items (id INTEGER PRIMARY KEY, note VARCHAR(40));\n"
    "INSERT INTO ${TABLE_PREFIX}items (id, note) VALUES (1, '${NOTE:-none}');\n"
    "-- +goose ENVSUB OFF\n"
    "INSERT INTO ${TABLE_PREFIX}items (id, note) VALUES (2, '$NOTE');\n"
    "-- +goose Down\n"
    "-- +goose ENVSUB ON\n"
    "DROP TABLE ${TABLE_PREFIX}items;\n"
)


def write(migrations_dir: Path, text: str) -> None:
    (migrations_dir / "00001_items.sql").write_text(text, encoding="utf-8")


class TestEnvsub:
    def test_apply_rerun_with_other_values_and_down(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Values are substituted between ON and OFF only; another value later is not drift; down substitutes too."""
        write(migrations_dir, FILE.replace("${TABLE_PREFIX}items (id, note) VALUES (2", "eu_items (id, note) VALUES (2"))
        result = up(db, migrations_dir, env={"TABLE_PREFIX": "eu_", "NOTE": "hello"})
        assert 0 == result.returncode, result.stderr
        assert [(1, "hello"), (2, "$NOTE")] == [tuple(r) for r in db.query("SELECT id, note FROM eu_items ORDER BY id")]
        again = up(db, migrations_dir, env={"TABLE_PREFIX": "us_", "NOTE": "other"})
        assert 0 == again.returncode, again.stderr
        assert '"applied": 0' in again.stderr.replace('"applied":0', '"applied": 0')
        down = run_cli("down", "--dir", str(migrations_dir), "--steps", "1", "--yes",
                       env={**db_env(db), "TABLE_PREFIX": "eu_"}, cwd=migrations_dir.parent)
        assert 0 == down.returncode, down.stderr
        assert "eu_items" not in db.tables()

    def test_required_variable_unset(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`${VAR?message}` with VAR unset is exit 2 naming the file, line and message; nothing changes."""
        write(migrations_dir, "-- +goose Up\n-- +goose ENVSUB ON\nCREATE TABLE ${TABLE_NAME?set the table} (id INT);\n")
        result = up(db, migrations_dir)
        assert 2 == result.returncode
        assert "00001_items.sql: line 3: variable substitution failed: $TABLE_NAME: set the table" in result.stderr
        assert set() == {t for t in db.tables() if t != "premigrate_history"}

    def test_syntax_error_before_connecting(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A `$1` under ENVSUB ON is what goose rejects: exit 5 naming the line, no history table created."""
        write(migrations_dir, "-- +goose Up\n-- +goose ENVSUB ON\nSELECT $1;\n")
        result = up(db, migrations_dir)
        assert 5 == result.returncode
        assert "00001_items.sql: line 3: variable substitution failed" in result.stderr
        assert set() == db.tables()

    def test_secret_value_never_logged(self, db: TestDatabase, migrations_dir: Path, tmp_path: Path) -> None:
        """A value whose name looks secret is scrubbed from the failing statement's log lines and history row."""
        secret = "Zq8-very-secret-value"
        write(migrations_dir, "-- +goose Up\n-- +goose ENVSUB ON\n"
                              "INSERT INTO no_such_table (v) VALUES ('${APP_DB_PASSWORD}');\n")
        result = up(db, migrations_dir, env={"APP_DB_PASSWORD": secret})
        assert 4 == result.returncode, result.stderr
        assert "no_such_table" in result.stderr
        assert secret not in result.stdout + result.stderr
        assert secret not in repr(db.history())
        # The same value under a name that does not look secret reaches the log: the check above can fail.
        (tmp_path / "control").mkdir()
        other = TestDatabase.create(db.dialect, tmp_path / "control")
        try:
            write(migrations_dir, "-- +goose Up\n-- +goose ENVSUB ON\n"
                                  "INSERT INTO no_such_table (v) VALUES ('${APP_DB_NOTE}');\n")
            assert secret in up(other, migrations_dir, env={"APP_DB_NOTE": secret}).stderr
        finally:
            other.drop()
