"""A migration whose COMMIT fails (a deferred constraint, checked only then): the failure names the migration, as a
failing statement's does, whichever way its transaction was sent; nothing of it, and nothing after it, is applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import up, write
from tests.support import CliResult, TestDatabase

PARENT_CHILD = """CREATE TABLE p (id int PRIMARY KEY);
CREATE TABLE c (pid int REFERENCES p (id) DEFERRABLE INITIALLY DEFERRED);
"""
# Accepted by the INSERT, refused by the COMMIT: the deferred foreign key is checked at the end of the transaction.
ORPHAN = "INSERT INTO c VALUES (42);\nINSERT INTO c VALUES (43);\n"


@pytest.fixture
def dialect() -> str:
    return "postgresql"


def _folder(migrations_dir: Path) -> None:
    write(migrations_dir, "001_parent_child.sql", PARENT_CHILD)
    write(migrations_dir, "002_orphan.sql", ORPHAN)
    write(migrations_dir, "003_after.sql", "CREATE TABLE after_it (id int);\n")


def _assert_only_the_first_applied(db: TestDatabase, result: CliResult) -> None:
    assert 4 == result.returncode, result.stderr
    assert ["1"] == [e["version"] for e in result.find("migration_applied")]
    assert ["1"] == [r["migration_id"] for r in db.history()]
    assert {"p", "c"} == db.tables() - {db.table}
    assert [(0,)] == db.query("SELECT count(*) FROM c")


@pytest.mark.parametrize("callbacks", [False, True], ids=["one batch", "statement by statement"])
def test_commit_failure_names_the_migration(db: TestDatabase, migrations_dir: Path, tmp_path: Path,
                                            callbacks: bool) -> None:
    """Exit 4; `migration_failed` for 002_orphan.sql with at=COMMIT, the SQLSTATE and outcome `rolled back`; the
    error line names the file. One batch: the migration's statements, history row and COMMIT sent together (and
    migration 3's behind it); statement by statement: a callback makes the executor send each on its own."""
    _folder(migrations_dir)
    args: list[str] = []
    if callbacks:
        folder = tmp_path / "callbacks"
        folder.mkdir()
        write(folder, "beforeEachMigrate.sql", "SELECT 1;\n")
        args = ["--callbacks", str(folder)]
    result = up(db, migrations_dir, *args)
    _assert_only_the_first_applied(db, result)
    [failed] = result.find("migration_failed")
    assert ("2", "002_orphan.sql", "COMMIT", 2, "23503", "rolled back") == (
        failed["version"], failed["script"], failed["at"], failed["statements"], failed["sqlstate"],
        failed["outcome"])
    assert "violates foreign key constraint" in failed["error"]
    [error] = result.find("error")
    assert error["error_type"] == "MigrationFailed"
    assert error["error"].startswith("002_orphan.sql: its COMMIT failed after its 2 statement(s) ran: [23503] ")
    assert error["error"].endswith("; the migration was rolled back")


def test_commit_failure_of_a_single_transaction_run(db: TestDatabase, migrations_dir: Path) -> None:
    """--single-transaction: the run's one COMMIT fails; the error says so (no migration is to blame alone), exit
    4, and nothing is applied."""
    _folder(migrations_dir)
    result = up(db, migrations_dir, "--single-transaction")
    assert 4 == result.returncode, result.stderr
    assert [] == result.find("migration_applied")
    assert ([], set()) == ([r["migration_id"] for r in db.history()], db.tables() - {db.table})
    [error] = result.find("error")
    assert error["error_type"] == "MigrationFailed"
    assert error["error"].startswith("the COMMIT of the --single-transaction run failed after its 3 migration(s) "
                                     "ran: [23503] ")
    assert error["error"].endswith("; the whole --single-transaction run was rolled back")
