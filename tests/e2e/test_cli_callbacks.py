"""Callback scripts end to end on PostgreSQL, MariaDB and SQLite: the order they run in (events show it), failures
(exit 4 naming the script, the *Error callbacks), placeholders, --callbacks-always, --callbacks DIR, down, and the
names that are refused."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import cmd, up, write
from tests.support import CliResult, TestDatabase, run_cli

LOG_TABLE = "CREATE TABLE IF NOT EXISTS cb_log (e VARCHAR(100));\n"


def log_sql(text: str) -> str:
    return LOG_TABLE + f"INSERT INTO cb_log VALUES ('{text}');\n"


def two_migrations(migrations_dir: Path) -> None:
    write(migrations_dir, "001_a.sql", "-- migrate:up\nCREATE TABLE a (id INTEGER);\n-- migrate:down\nDROP TABLE a;\n")
    write(migrations_dir, "002_b.sql", "-- migrate:up\nCREATE TABLE b (id INTEGER);\n-- migrate:down\nDROP TABLE b;\n")


def sequence(result: CliResult) -> list[str]:
    """The run as callbacks and migrations, in event order."""
    out = []
    for event in result.events:
        if event["event"] == "callback_started":
            out.append(f"{event['script']}" + (f"@{event['migration_id']}" if "migration_id" in event else ""))
        elif event["event"] in ("migration_applied", "migration_failed", "rolled_back"):
            out.append(f"{event['event']}:{event['version']}")
    return out


def logged(db: TestDatabase) -> list[str]:
    return sorted(str(r[0]) for r in db.query("SELECT e FROM cb_log"))


class TestCallbackOrder:
    def test_up_runs_each_event_in_order(self, db: TestDatabase, migrations_dir: Path) -> None:
        """beforeMigrate, per migration before/afterEachMigrate, then afterMigrate scripts in Flyway's order."""
        two_migrations(migrations_dir)
        write(migrations_dir, "beforeMigrate.sql", log_sql("before"))
        write(migrations_dir, "beforeEachMigrate.sql", "INSERT INTO cb_log VALUES ('each-before');\n")
        write(migrations_dir, "afterEachMigrate.sql", "INSERT INTO cb_log VALUES ('each-after');\n")
        write(migrations_dir, "afterMigrate__grants.sql", "INSERT INTO cb_log VALUES ('after-grants');\n")
        write(migrations_dir, "afterMigrate.sql", "INSERT INTO cb_log VALUES ('after');\n")
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        assert ["beforeMigrate.sql", "beforeEachMigrate.sql@1", "afterEachMigrate.sql@1", "migration_applied:1",
                "beforeEachMigrate.sql@2", "afterEachMigrate.sql@2", "migration_applied:2", "afterMigrate.sql",
                "afterMigrate__grants.sql"] == sequence(result)
        assert ["after", "after-grants", "before", "each-after", "each-after", "each-before", "each-before"] == \
            logged(db)
        assert ["1", "2"] == [r["migration_id"] for r in db.history()], "a callback was recorded as a migration"

    def test_nothing_pending_runs_no_callback(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A second run with nothing to do runs no callback and takes no lock; --callbacks-always runs both."""
        two_migrations(migrations_dir)
        write(migrations_dir, "beforeMigrate.sql", log_sql("before"))
        write(migrations_dir, "afterMigrate.sql", log_sql("after"))
        assert 0 == up(db, migrations_dir).returncode
        quiet = up(db, migrations_dir)
        assert (0, [], []) == (quiet.returncode, sequence(quiet), quiet.find("lock_acquired"))
        always = up(db, migrations_dir, "--callbacks-always")
        assert 0 == always.returncode, always.stderr
        assert ["beforeMigrate.sql", "afterMigrate.sql"] == sequence(always)
        assert 1 == len(always.find("lock_acquired"))
        assert ["after", "after", "before", "before"] == logged(db)

    def test_callbacks_folder(self, db: TestDatabase, migrations_dir: Path, tmp_path: Path) -> None:
        """--callbacks DIR adds that folder's scripts to the migrations folder's."""
        two_migrations(migrations_dir)
        extra = tmp_path / "callbacks"
        extra.mkdir()
        write(migrations_dir, "afterMigrate.sql", log_sql("in-folder"))
        write(extra, "afterMigrate__extra.sql", log_sql("extra"))
        result = up(db, migrations_dir, "--callbacks", str(extra))
        assert 0 == result.returncode, result.stderr
        assert ["afterMigrate.sql", "afterMigrate__extra.sql"] == [e["script"] for e in result.find("callback_started")]

    def test_callbacks_folder_refuses_other_sql_files(self, db: TestDatabase, migrations_dir: Path,
                                                      tmp_path: Path) -> None:
        """A misspelt callback in --callbacks DIR (wrong case, snake case) is refused by name, exit 5, as it is in
        the migrations folder: nothing runs, nothing is skipped in silence."""
        two_migrations(migrations_dir)
        extra = tmp_path / "callbacks"
        extra.mkdir()
        for name in ("AfterMigrate.sql", "aftermigrate__b.sql", "after_migrate__c.sql"):
            write(extra, name, log_sql("never"))
        result = up(db, migrations_dir, "--callbacks", str(extra))
        assert 5 == result.returncode, result.stderr
        refused = [e["error"] for e in result.find("callback_refused")]
        assert ["AfterMigrate.sql", "after_migrate__c.sql", "aftermigrate__b.sql"] == sorted(
            r.split(" ")[0] for r in refused)
        assert any("did you mean afterMigrate.sql?" in r for r in refused), refused
        assert set() == db.tables()

    def test_down_runs_before_and_after_down(self, db: TestDatabase, migrations_dir: Path) -> None:
        """down runs beforeDown, the down parts, then afterDown; up's callbacks do not run."""
        two_migrations(migrations_dir)
        write(migrations_dir, "beforeDown.sql", log_sql("before-down"))
        write(migrations_dir, "afterDown.sql", log_sql("after-down"))
        write(migrations_dir, "beforeEachMigrate.sql", "SELECT 1;\n")
        assert 0 == up(db, migrations_dir).returncode
        result = cmd("down", db, migrations_dir, "--steps", "2", "--yes")
        assert 0 == result.returncode, result.stderr
        assert ["beforeDown.sql", "rolled_back:2", "rolled_back:1", "afterDown.sql"] == sequence(result)


class TestCallbackFailures:
    def test_failing_callback_fails_the_run(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A failing beforeMigrate: exit 4 naming the script, no migration applied, afterMigrateError runs."""
        two_migrations(migrations_dir)
        write(migrations_dir, "beforeMigrate.sql", "INSERT INTO no_such_table VALUES (1);\n")
        write(migrations_dir, "afterMigrateError.sql", log_sql("error"))
        write(migrations_dir, "afterMigrate.sql", log_sql("after"))
        result = up(db, migrations_dir)
        assert 4 == result.returncode, result.stderr
        error = result.find("error")[0]
        assert ("CallbackFailed", "beforeMigrate.sql") == (error["error_type"], error["script"])
        assert "beforeMigrate.sql" in error["error"]
        assert ["beforeMigrate.sql", "afterMigrateError.sql"] == sequence(result)
        assert [] == [r for r in db.history() if r["state"] == "applied"]
        assert ["error"] == logged(db)

    def test_failing_after_migrate_says_how_to_finish(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A failing afterMigrate: exit 4 after the migrations were recorded, and the message says how to finish:
        fix it, then `up` again, which runs it with nothing to apply (only afterMigrate: tests/e2e/
        test_owed_after_migrate.py has the rest)."""
        two_migrations(migrations_dir)
        write(migrations_dir, "beforeMigrate.sql", log_sql("before"))
        write(migrations_dir, "afterMigrate.sql", "INSERT INTO no_such_table VALUES (1);\n")
        result = up(db, migrations_dir)
        assert 4 == result.returncode, result.stderr
        assert "fix the callback, then run `premigrate up` again" in result.find("error")[0]["error"]
        assert ["1", "2"] == [r["migration_id"] for r in db.history() if r["state"] == "applied"]
        write(migrations_dir, "afterMigrate.sql", log_sql("after"))
        finished = up(db, migrations_dir)
        assert 0 == finished.returncode, finished.stderr
        assert ["afterMigrate.sql"] == sequence(finished)
        assert ["after", "before"] == logged(db)

    def test_failing_migration_runs_error_callbacks(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A failing migration: afterEachMigrateError after its rollback, then afterMigrateError; no afterMigrate."""
        two_migrations(migrations_dir)
        write(migrations_dir, "003_bad.sql", "INSERT INTO no_such_table VALUES (1);\n")
        write(migrations_dir, "afterEachMigrateError.sql", log_sql("each-error"))
        write(migrations_dir, "afterMigrateError.sql", log_sql("error"))
        write(migrations_dir, "afterMigrate.sql", log_sql("after"))
        result = up(db, migrations_dir)
        assert 4 == result.returncode, result.stderr
        assert ["migration_applied:1", "migration_applied:2", "migration_failed:3",
                "afterEachMigrateError.sql@3", "afterMigrateError.sql"] == sequence(result)
        assert "003_bad.sql" in result.find("error")[0]["error"]
        assert ["each-error", "error"] == logged(db)

    def test_placeholders(self, db: TestDatabase, migrations_dir: Path) -> None:
        """${NAME} is filled in from PREMIGRATE_PLACEHOLDER_NAME; an unknown one is exit 2 with nothing changed."""
        two_migrations(migrations_dir)
        write(migrations_dir, "afterMigrate.sql", log_sql("${WHO}"))
        missing = up(db, migrations_dir)
        assert 2 == missing.returncode, missing.stderr
        assert "${WHO}" in missing.find("error")[0]["error"]
        assert set() == db.tables()
        result = up(db, migrations_dir, env={"PREMIGRATE_PLACEHOLDER_WHO": "ops"})
        assert 0 == result.returncode, result.stderr
        assert ["ops"] == logged(db)

    def test_refused_names(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A Flyway callback premigrate does not run, and a name that is not a callback name, are refused by name."""
        two_migrations(migrations_dir)
        write(migrations_dir, "beforeValidate.sql", "SELECT 1;\n")
        write(migrations_dir, "afterMigrateGrants.sql", "SELECT 1;\n")
        result = run_cli("up", "--dir", str(migrations_dir), env={"DATABASE_URL": db.url}, cwd=migrations_dir.parent)
        assert 5 == result.returncode, result.stderr
        refused = " ".join(e["error"] for e in result.find("callback_refused"))
        assert "beforeValidate.sql" in refused and "afterMigrateGrants.sql" in refused
        assert set() == db.tables()


def test_callbacks_beside_a_liquibase_changelog(db: TestDatabase, migrations_dir: Path) -> None:
    """A changelog folder read as includeAll would read it: the callback scripts premigrate sets aside are not taken
    for changelogs (they were refused as 'not a Liquibase formatted SQL changelog')."""
    write(migrations_dir, "changelog.sql", "--liquibase formatted sql\n\n--changeset a:1\nCREATE TABLE t1 (id INT);\n")
    write(migrations_dir, "afterMigrate.sql", log_sql("after"))
    result = up(db, migrations_dir)
    assert 0 == result.returncode, result.stderr[-2000:]
    assert ["after"] == logged(db)
