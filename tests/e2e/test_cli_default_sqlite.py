"""No database configured: `up` migrates ./migrations into ./premigrate.db with a warning; entrypoint.py is the same."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import run_entrypoint, write
from tests.support import CliResult, run_cli

MIGRATION = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);\nINSERT INTO notes (id, body) VALUES (1, 'hi');\n"


def _premigrate(*args: str, cwd: Path) -> CliResult:
    return run_cli(*args, cwd=cwd)


def _entrypoint(*args: str, cwd: Path) -> CliResult:
    return run_entrypoint(*args, cwd=cwd)


RUNNERS = [
    pytest.param(_premigrate, id="python-m-premigrate"),
    pytest.param(_entrypoint, id="entrypoint-py"),
]


def _sqlite_rows(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


@pytest.mark.parametrize("runner", RUNNERS)
class TestNoDatabaseConfigured:
    def test_up_creates_local_sqlite_file(self, tmp_path: Path, migrations_dir: Path,
                                          runner: Callable[..., CliResult]) -> None:
        """`up` with nothing configured exits 0 and applies ./migrations into ./premigrate.db."""
        write(migrations_dir, "001_notes.sql", MIGRATION)

        result = runner("up", cwd=tmp_path)

        assert 0 == result.returncode, result.stderr
        database = tmp_path / "premigrate.db"
        assert database.is_file()
        assert [(1, "hi")] == _sqlite_rows(database, "SELECT id, body FROM notes")
        assert [("1", "applied")] == _sqlite_rows(database, "SELECT migration_id, state FROM premigrate_history")

    def test_up_warns_about_the_fallback(self, tmp_path: Path, migrations_dir: Path,
                                         runner: Callable[..., CliResult]) -> None:
        """The run logs one `no_database_configured` warning naming premigrate.db."""
        write(migrations_dir, "001_notes.sql", MIGRATION)

        result = runner("up", cwd=tmp_path)

        assert 0 == result.returncode, result.stderr
        [warning] = result.find("no_database_configured")
        assert "warning" == warning["level"]
        assert "premigrate.db" in warning["database"]
        assert ("summary", 0) == (result.events[-1]["event"], result.events[-1]["exit_code"])

    def test_second_up_is_a_no_op(self, tmp_path: Path, migrations_dir: Path,
                                  runner: Callable[..., CliResult]) -> None:
        """A second `up` in the same folder finds the file it created and has nothing to do."""
        write(migrations_dir, "001_notes.sql", MIGRATION)
        assert 0 == runner("up", cwd=tmp_path).returncode

        result = runner("up", cwd=tmp_path)

        assert 0 == result.returncode, result.stderr
        assert 1 == len(result.find("nothing_to_do"))
        assert [(1,)] == _sqlite_rows(tmp_path / "premigrate.db", "SELECT count(*) FROM notes")


class TestEntrypointExitCodes:
    def test_entrypoint_passes_failure_exit_code(self, tmp_path: Path, migrations_dir: Path) -> None:
        """`python entrypoint.py up` exits with premigrate's code: 4 for a failing migration."""
        write(migrations_dir, "001_broken.sql", "CREATE TABLE broken (id INTEGER,);\n")

        result = run_entrypoint("up", cwd=tmp_path)

        assert 4 == result.returncode, result.stderr
        assert 4 == result.events[-1]["exit_code"]
