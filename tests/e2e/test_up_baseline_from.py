"""up --baseline-from TOOL (issue 13): the first run adopts the tool's history as `baseline --from TOOL` does and
applies the rest; later runs do nothing more; the tool's refusals change nothing; a fresh database is migrated.

The tool tables are built with the columns and rows each tool writes (sources cited in tests/e2e/test_baseline_tools.py
and beside FOREIGN in premigrate.commands.foreign_history). The folder's first two files create tables the tool
already created, so running either of them again would fail the run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import test_baseline_tools as built  # the module, not its Test classes: pytest would run them here too
from tests.e2e.test_baseline_tools import BOOL, V1, V2, V3, existing_schema, versioned
from tests.support import CliResult, TestDatabase, run_cli

TOOLS = ("golang-migrate", "goose", "flyway")
TOOL_TABLE = {"golang-migrate": "schema_migrations", "goose": "goose_db_version", "flyway": "flyway_schema_history"}


def tool_history(db: TestDatabase, tool: str, *, broken: bool = False, table: str | None = None) -> None:
    """The tool's table after it applied V1 and V2; `broken`: the state the tool itself calls dirty or failed."""
    true, false = BOOL[db.dialect]
    name = table or TOOL_TABLE[tool]
    if tool == "golang-migrate":
        # golang-migrate database/{postgres,mysql,sqlite3}: schema_migrations(version bigint, dirty boolean), one row.
        db.execute(f"CREATE TABLE {name} (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)")
        db.execute(f"INSERT INTO {name} VALUES ({V2}, {true if broken else false})")
    elif tool == "goose":
        built.TestGoose().make(db)
        if table:
            db.execute(f"ALTER TABLE goose_db_version RENAME TO {name}")
        db.execute(f"INSERT INTO {name} (version_id, is_applied) VALUES (0, {true}), ({V1}, {true}), ({V2}, {true})")
    else:
        # flyway core/internal/schemahistory JdbcTableSchemaHistory (createSql.sql per database).
        db.execute(f"CREATE TABLE {name} (installed_rank INTEGER NOT NULL PRIMARY KEY, version VARCHAR(50), "
                   "description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, script VARCHAR(1000) NOT NULL, "
                   "checksum INTEGER, installed_by VARCHAR(100) NOT NULL, execution_time INTEGER NOT NULL, "
                   "success BOOLEAN NOT NULL)")
        db.execute(f"INSERT INTO {name} VALUES (1, '{V1}', 'a', 'SQL', 'V{V1}__a.sql', 1, 'me', 5, {true}), "
                   f"(2, '{V2}', 'b', 'SQL', 'V{V2}__b.sql', 2, 'me', 5, {false if broken else true})")


def up(db: TestDatabase, directory: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
    return run_cli("up", "--dir", str(directory), *args, env={"DATABASE_URL": db.url, **(env or {})})


def kinds(db: TestDatabase) -> dict[str, str]:
    return {r["migration_id"]: r["kind"] for r in db.history()}


@pytest.mark.parametrize("tool", TOOLS)
class TestAdoptsOnTheFirstRun:
    def test_first_run_adopts_second_does_nothing(self, db: TestDatabase, migrations_dir: Path, tool: str) -> None:
        """First run: V1 and V2 recorded as baseline (not run: their tables exist), V3 applied. Second run (the
        variable instead of the flag): nothing adopted, nothing applied, the history as it was."""
        versioned(migrations_dir)
        existing_schema(db)
        tool_history(db, tool)

        first = up(db, migrations_dir, "--baseline-from", tool)

        assert 0 == first.returncode, first.stderr[-3000:]
        assert {V1: "baseline", V2: "baseline", V3: "versioned"} == kinds(db)
        assert "c_t" in db.tables()
        done = first.find("baseline_done")
        assert [(tool, [V1, V2], [], [V3])] == [(d["source"], d["matched"], d["not_in_folder"], d["pending"])
                                                for d in done]
        assert [V3] == [e["version"] for e in first.find("migration_applied")]
        history = db.history()

        second = up(db, migrations_dir, env={"PREMIGRATE_BASELINE_FROM": tool})

        assert 0 == second.returncode, second.stderr[-3000:]
        assert ([], [], history) == (second.find("baseline_done"), second.find("migration_applied"), db.history())
        assert "already has 3 row(s)" in second.find("baseline_skipped")[0]["reason"]

    def test_new_file_after_adoption(self, db: TestDatabase, migrations_dir: Path, tool: str) -> None:
        """premigrate's history has rows and a file is pending: the option does nothing (logged) and up applies it."""
        versioned(migrations_dir)
        existing_schema(db)
        tool_history(db, tool)
        assert 0 == up(db, migrations_dir, "--baseline-from", tool, "--to", V2).returncode
        assert {V1: "baseline", V2: "baseline"} == kinds(db)
        result = up(db, migrations_dir, "--baseline-from", tool)
        assert (0, [V3]) == (result.returncode, [e["version"] for e in result.find("migration_applied")])
        assert ([], 1) == (result.find("baseline_done"), len(result.find("baseline_skipped")))

    def test_dry_run_plans_the_rest_and_writes_nothing(self, db: TestDatabase, migrations_dir: Path,
                                                        tool: str) -> None:
        """up --dry-run --baseline-from: the plan is the files the tool did not apply; nothing is created."""
        versioned(migrations_dir)
        existing_schema(db)
        tool_history(db, tool)
        before = db.tables()
        result = up(db, migrations_dir, "--baseline-from", tool, "--dry-run")
        assert (7, [V3], before) == (result.returncode, result.find("plan")[0]["versions"], db.tables())


@pytest.mark.parametrize("tool", ("golang-migrate", "flyway"))
def test_broken_tool_history_refused_with_no_change(db: TestDatabase, migrations_dir: Path, tool: str) -> None:
    """golang-migrate dirty, a failed flyway row: exit 5 naming up's flag, and the database as it was (premigrate's
    history table not even created)."""
    versioned(migrations_dir)
    existing_schema(db)
    tool_history(db, tool, broken=True)
    before = db.tables()
    result = up(db, migrations_dir, "--baseline-from", tool)
    assert (5, before) == (result.returncode, db.tables()), result.stderr[-3000:]
    error = result.find("error")[0]["error"]
    assert error.startswith(f"up --baseline-from {tool}:") and ("dirty" in error or "failed" in error), error
    assert "Traceback" not in result.stderr


def test_fresh_database_is_migrated(db: TestDatabase, migrations_dir: Path) -> None:
    """No goose table and no table at all: a fresh database, migrated from the first file (logged)."""
    versioned(migrations_dir)
    result = up(db, migrations_dir, "--baseline-from", "goose")
    assert 0 == result.returncode, result.stderr[-3000:]
    assert {V1: "versioned", V2: "versioned", V3: "versioned"} == kinds(db)
    assert "a fresh database" in result.find("baseline_skipped")[0]["reason"]


def test_missing_tool_table_beside_other_tables_refused(db: TestDatabase, migrations_dir: Path) -> None:
    """No flyway table while the schema has tables: exit 5 naming them, nothing created."""
    versioned(migrations_dir)
    existing_schema(db)
    result = up(db, migrations_dir, "--baseline-from", "flyway")
    assert (5, {"a_t", "b_t"}) == (result.returncode, db.tables()), result.stderr[-3000:]
    error = result.find("error")[0]["error"]
    assert "flyway_schema_history" in error and "a_t, b_t" in error


def test_from_table(db: TestDatabase, migrations_dir: Path) -> None:
    """--from-table names the table goose was configured to use."""
    versioned(migrations_dir)
    existing_schema(db)
    tool_history(db, "goose", table="my_goose")
    result = up(db, migrations_dir, "--baseline-from", "goose", "--from-table", "my_goose")
    assert 0 == result.returncode, result.stderr[-3000:]
    assert {V1: "baseline", V2: "baseline", V3: "versioned"} == kinds(db)


@pytest.mark.parametrize("args", [("--baseline-from", "goose", "--baseline-on-empty-history", "1"),
                                  ("--from-table", "my_goose"), ("--map", "map.txt"),
                                  ("--baseline-from", "goose", "--map", "map.txt"),
                                  ("--baseline-from", "alembic")])
def test_options_that_do_not_go_together(tmp_path: Path, migrations_dir: Path, args: tuple[str, ...]) -> None:
    """Exit 2 before any connection: nothing is created."""
    versioned(migrations_dir)
    database = tmp_path / "db.sqlite"
    result = run_cli("up", "--dir", str(migrations_dir), *args, env={"DATABASE_URL": f"sqlite:///{database}"},
                     cwd=tmp_path)
    assert (2, False) == (result.returncode, database.exists()), result.stderr[-2000:]
