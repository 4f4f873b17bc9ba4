"""Operator commands end to end on all three databases: plan, --to, --single-transaction, placeholders, baseline,
down, new and the run summary files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import TestDatabase, run_cli

MIGRATIONS = {
    "001_users.sql": "-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100));\n"
                     "-- migrate:down\nDROP TABLE users;\n",
    "002_orders.up.sql": "CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER);\n"
                         "CREATE INDEX orders_user ON orders (user_id);\n",
    "002_orders.down.sql": "DROP TABLE orders;\n",
    "003_notes.sql": "-- migrate:up\nCREATE TABLE notes (id INTEGER PRIMARY KEY);\n-- migrate:down\nDROP TABLE notes;\n",
    "004_tags.sql": "CREATE TABLE tags (id INTEGER PRIMARY KEY);\n",  # no down part: irreversible
}


def write(directory: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        (directory / name).write_text(content)
    return directory


def up(db: TestDatabase, directory: Path, *args: str, env: dict[str, str] | None = None):
    return run_cli("up", "--dir", str(directory), *args, env={"DATABASE_URL": db.url, **(env or {})})


def cli(db: TestDatabase, command: str, directory: Path, *args: str, env: dict[str, str] | None = None,
        input: str | None = None):
    return run_cli(command, "--dir", str(directory), *args, env={"DATABASE_URL": db.url, **(env or {})},
                   input=input)


def own_tables(db: TestDatabase) -> set[str]:
    return db.tables() - {db.table}


def schema_dump(db: TestDatabase) -> dict[str, list[str]]:
    """Tables and their columns, for comparing a schema before and after."""
    dump = {}
    for table in sorted(own_tables(db)):
        if db.dialect == "sqlite":
            columns = [r[1] for r in db.query(f"PRAGMA table_info({table})")]
        elif db.dialect == "postgresql":
            columns = [r[0] for r in db.query(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (table,))]
        else:
            columns = [r[0] for r in db.query(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
                "AND table_name = %s ORDER BY ordinal_position", (table,))]
        dump[table] = columns
    return dump


class TestPlan:
    def test_plan_shows_exactly_what_up_applies(self, db: TestDatabase, migrations_dir: Path) -> None:
        """plan --json lists, in order, the migrations up then applies; afterwards plan exits 0."""
        write(migrations_dir, MIGRATIONS)
        planned = cli(db, "plan", migrations_dir, "--json")
        assert 7 == planned.returncode, planned.stderr
        document = json.loads(planned.stdout)
        applied = up(db, migrations_dir)
        assert 0 == applied.returncode, applied.stderr
        assert [p["id"] for p in document["pending"]] == [e["version"] for e in applied.find("migration_applied")]
        assert ["1", "2", "3", "4"] == [p["id"] for p in document["pending"]]
        assert 2 == len(document["pending"][1]["statements"])
        after = cli(db, "plan", migrations_dir, "--json")
        assert (0, 0) == (after.returncode, json.loads(after.stdout)["count"])

    def test_plan_changes_nothing(self, db: TestDatabase, migrations_dir: Path) -> None:
        """plan and up --dry-run create nothing, not even the history table."""
        write(migrations_dir, MIGRATIONS)
        assert 7 == cli(db, "plan", migrations_dir).returncode
        assert 7 == up(db, migrations_dir, "--dry-run").returncode
        assert set() == db.tables()

    def test_plan_text_has_sql_and_modes(self, db: TestDatabase, migrations_dir: Path) -> None:
        """The text plan shows each migration's transaction mode, timeouts and SQL."""
        write(migrations_dir, MIGRATIONS)
        result = cli(db, "plan", migrations_dir)
        assert "CREATE INDEX orders_user ON orders (user_id)" in result.stdout
        assert "runner lock 600s" in result.stdout
        expected_mode = "none (statement by statement" if db.dialect == "mysql" else "per-migration"
        assert expected_mode in result.stdout

    def test_plan_text_does_not_call_a_blocked_database_up_to_date(self, db: TestDatabase,
                                                                    migrations_dir: Path) -> None:
        """Drift blocks the run (exit 5): the text says nothing can be applied, not that the database is up to
        date."""
        write(migrations_dir, {"001_a.sql": "CREATE TABLE a (id INTEGER);\n"})
        assert 0 == up(db, migrations_dir).returncode
        write(migrations_dir, {"001_a.sql": "CREATE TABLE a (id INTEGER, v INTEGER);\n"})
        result = cli(db, "plan", migrations_dir)
        assert 5 == result.returncode, result.stderr[-2000:]
        assert "up to date" not in result.stdout and "until the problems below are resolved" in result.stdout

    def test_plan_text_does_not_promise_pending_migrations_a_refusal_blocks(self, db: TestDatabase,
                                                                            migrations_dir: Path) -> None:
        """A pending file that `up` refuses (out of order) blocks the others too: the text lists what would run
        after the fix, under a first line saying nothing can be applied yet."""
        write(migrations_dir, {"002_b.sql": "CREATE TABLE b (id INTEGER);\n"})
        assert 0 == up(db, migrations_dir).returncode
        write(migrations_dir, {"001_a.sql": "CREATE TABLE a (id INTEGER);\n",
                               "003_c.sql": "CREATE TABLE c (id INTEGER);\n"})
        result = cli(db, "plan", migrations_dir)
        assert 5 == result.returncode, result.stderr[-2000:]
        first = result.stdout.splitlines()[0]
        assert first.startswith("Nothing can be applied until the problems below are resolved"), result.stdout
        assert "REFUSED:" in result.stdout


class TestTo:
    def test_up_to_stops_after_version(self, db: TestDatabase, migrations_dir: Path) -> None:
        """up --to 2 applies 1 and 2 only; a later full run applies the rest."""
        write(migrations_dir, MIGRATIONS)
        assert 0 == up(db, migrations_dir, "--to", "2").returncode
        assert ["1", "2"] == [r["migration_id"] for r in db.history()]
        plan = cli(db, "plan", migrations_dir, "--to", "3", "--json")
        assert ["3"] == [p["id"] for p in json.loads(plan.stdout)["pending"]]
        assert 0 == up(db, migrations_dir).returncode
        assert ["1", "2", "3", "4"] == [r["migration_id"] for r in db.history()]

    def test_unknown_target_is_usage_error(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--to a version that is not in the folder is exit 2 and changes nothing."""
        write(migrations_dir, MIGRATIONS)
        result = up(db, migrations_dir, "--to", "99")
        assert (2, set()) == (result.returncode, db.tables())
        assert "--to 99" in result.find("error")[0]["error"]


class TestSingleTransaction:
    def test_all_or_nothing(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A failure in the third migration rolls back all three (PostgreSQL, SQLite); MySQL refuses the flag."""
        write(migrations_dir, {"001_a.sql": "CREATE TABLE a (id INTEGER);", "002_b.sql": "CREATE TABLE b (id INTEGER);",
                               "003_c.sql": "CREATE TABLE c (id INTEGER); SELECT * FROM no_such_table;"})
        result = up(db, migrations_dir, "--single-transaction")
        if db.dialect == "mysql":
            assert (2, set()) == (result.returncode, db.tables())
            return
        assert 4 == result.returncode, result.stderr
        assert set() == own_tables(db)
        assert [] == db.history()
        assert "the whole --single-transaction run was rolled back" in result.find("error")[0]["error"]

    def test_success_applies_everything(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Without a failure every pending migration is applied and recorded (MySQL refuses the flag: exit 2)."""
        write(migrations_dir, MIGRATIONS)
        result = up(db, migrations_dir, "--single-transaction")
        if db.dialect == "mysql":
            assert (2, set()) == (result.returncode, db.tables())
            assert "transactional DDL" in result.find("error")[0]["error"]
            return
        assert 0 == result.returncode, result.stderr
        assert ["1", "2", "3", "4"] == [r["migration_id"] for r in db.history()]
        assert 1 == len(result.find("single_transaction_committed"))

    def test_refuses_no_transaction_file(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A pending no-transaction file cannot join a single transaction: exit 2, nothing changed."""
        write(migrations_dir, {"001_a.sql": "CREATE TABLE a (id INTEGER);",
                               "002_b.sql": "-- premigrate:no-transaction\nCREATE TABLE b (id INTEGER);"})
        result = up(db, migrations_dir, "--single-transaction")
        assert (2, set()) == (result.returncode, db.tables())


class TestPlaceholders:
    FILES = {"001_a.sql": "-- premigrate:placeholders\nCREATE TABLE ${TABLE} (id INTEGER);\n"}

    def test_substituted_from_environment(self, db: TestDatabase, migrations_dir: Path) -> None:
        """${TABLE} is replaced from PREMIGRATE_PLACEHOLDER_TABLE."""
        write(migrations_dir, self.FILES)
        result = up(db, migrations_dir, env={"PREMIGRATE_PLACEHOLDER_TABLE": "widgets"})
        assert 0 == result.returncode, result.stderr
        assert {"widgets"} == own_tables(db)

    def test_checksum_is_before_substitution(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Another value on a later run is not drift: the checksum is of the file as written."""
        write(migrations_dir, self.FILES)
        assert 0 == up(db, migrations_dir, env={"PREMIGRATE_PLACEHOLDER_TABLE": "widgets"}).returncode
        again = up(db, migrations_dir, env={"PREMIGRATE_PLACEHOLDER_TABLE": "gadgets"})
        assert (0, ["nothing_to_do"]) == (again.returncode, [e for e in again.event_names() if e == "nothing_to_do"])

    def test_unknown_placeholder_changes_nothing(self, db: TestDatabase, migrations_dir: Path) -> None:
        """An unset placeholder is exit 2 naming it, before anything is created."""
        write(migrations_dir, self.FILES)
        result = up(db, migrations_dir)
        assert (2, set()) == (result.returncode, db.tables())
        assert "${TABLE}" in result.find("error")[0]["error"]

    def test_off_without_directive_or_flag(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Without the directive or --placeholders, ${...} is left alone (here: inside a string)."""
        write(migrations_dir, {"001_a.sql": "CREATE TABLE t (v VARCHAR(20));\nINSERT INTO t VALUES ('${KEEP}');\n"})
        assert 0 == up(db, migrations_dir).returncode
        assert [("${KEEP}",)] == [tuple(r) for r in db.query("SELECT v FROM t")]

    def test_flag_turns_on_everywhere_and_secrets_stay_out_of_logs(self, db: TestDatabase,
                                                                   migrations_dir: Path) -> None:
        """--placeholders substitutes in every file; a value named like a password never reaches a log line."""
        write(migrations_dir, {"001_a.sql": "CREATE TABLE t (v VARCHAR(40));\n"
                                            "INSERT INTO t VALUES ('${APP_PASSWORD}');\nSELECT * FROM missing_t;\n"})
        result = up(db, migrations_dir, "--placeholders", env={"PREMIGRATE_PLACEHOLDER_APP_PASSWORD": "s3cr3t-v4lue"})
        assert 4 == result.returncode
        assert "s3cr3t-v4lue" not in result.stderr + result.stdout


class TestBaseline:
    def test_baseline_then_up_applies_only_later(self, db: TestDatabase, migrations_dir: Path) -> None:
        """baseline --version 2 records 1 and 2 without running them; up then applies 3 and 4."""
        write(migrations_dir, MIGRATIONS)
        db.execute("CREATE TABLE legacy (id INTEGER)")
        result = cli(db, "baseline", migrations_dir, "--version", "2", "--description", "adopted")
        assert 0 == result.returncode, result.stderr
        history = db.history()
        assert [("1", "baseline"), ("2", "baseline")] == [(r["migration_id"], r["kind"]) for r in history]
        assert {"legacy"} == own_tables(db)  # nothing ran
        assert 0 == up(db, migrations_dir).returncode
        assert {"legacy", "notes", "tags"} == own_tables(db)

    def test_refuses_existing_history(self, db: TestDatabase, migrations_dir: Path) -> None:
        """baseline on a database premigrate already migrated is exit 5."""
        write(migrations_dir, MIGRATIONS)
        assert 0 == up(db, migrations_dir, "--to", "1").returncode
        assert 5 == cli(db, "baseline", migrations_dir, "--version", "2").returncode

    def test_version_and_from_together_are_refused(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--version and --from on one command line: exit 2, nothing recorded."""
        write(migrations_dir, MIGRATIONS)
        result = cli(db, "baseline", migrations_dir, "--version", "1", "--from", "flyway")
        assert 2 == result.returncode
        assert "exactly one of --version VERSION or --from TOOL" in result.stderr
        assert [] == db.history()

    def test_version_flag_beats_the_from_variable(self, db: TestDatabase, migrations_dir: Path) -> None:
        """PREMIGRATE_BASELINE_FROM (up --baseline-from's variable too) in the environment does not turn
        `baseline --version 1` into a conflict: the flag on the command line wins."""
        write(migrations_dir, MIGRATIONS)
        db.ensure_exists()
        result = cli(db, "baseline", migrations_dir, "--version", "1", env={"PREMIGRATE_BASELINE_FROM": "flyway"})
        assert 0 == result.returncode, result.stderr
        assert ["1"] == [r["migration_id"] for r in db.history()]

    def test_version_must_be_in_folder(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A baseline version with no file is exit 2."""
        write(migrations_dir, MIGRATIONS)
        assert 2 == cli(db, "baseline", migrations_dir, "--version", "7").returncode

    def test_baseline_on_empty_history_with_existing_tables(self, db: TestDatabase, migrations_dir: Path) -> None:
        """up --baseline-on-empty-history 2 adopts a schema that already has tables."""
        write(migrations_dir, MIGRATIONS)
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100))")
        result = up(db, migrations_dir, "--baseline-on-empty-history", "2")
        assert 0 == result.returncode, result.stderr
        kinds = {r["migration_id"]: r["kind"] for r in db.history()}
        assert {"1": "baseline", "2": "baseline", "3": "versioned", "4": "versioned"} == kinds

    def test_baseline_on_empty_history_on_empty_database(self, db: TestDatabase, migrations_dir: Path) -> None:
        """On an empty database --baseline-on-empty-history migrates normally."""
        write(migrations_dir, MIGRATIONS)
        assert 0 == up(db, migrations_dir, "--baseline-on-empty-history", "2").returncode
        assert {"versioned"} == {r["kind"] for r in db.history()}
        assert {"users", "orders", "notes", "tags"} == own_tables(db)

    def test_missing_sqlite_file_is_refused_and_not_created(self, migrations_dir: Path, tmp_path: Path) -> None:
        """baseline on a SQLite path that names no file: exit 3 and nothing created, as for down and repair. Created,
        it would be an empty database whose history says migration 1 ran, and `up` would then skip it."""
        write(migrations_dir, MIGRATIONS)
        typo = tmp_path / "typo.db"
        result = run_cli("baseline", "--dir", str(migrations_dir), "--version", "1", "--database-url",
                         f"sqlite:///{typo}")
        assert 3 == result.returncode, result.stderr
        assert "(`baseline` never creates it)" in result.find("error")[0]["error"]
        assert [] == sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("typo"))


BOOL = {"postgresql": ("true", "false"), "mysql": ("1", "0"), "sqlite": ("1", "0")}


class TestBaselineFrom:
    def test_golang_migrate(self, db: TestDatabase, migrations_dir: Path) -> None:
        """golang-migrate's single row means every version up to it."""
        write(migrations_dir, MIGRATIONS)
        true, false = BOOL[db.dialect]
        db.execute("CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)")
        db.execute(f"INSERT INTO schema_migrations VALUES (3, {false})")
        result = cli(db, "baseline", migrations_dir, "--from", "golang-migrate")
        assert 0 == result.returncode, result.stderr
        assert ["1", "2", "3"] == [r["migration_id"] for r in db.history()]
        assert "next `up` applies them): 4" in result.stdout

    def test_golang_migrate_dirty_refused(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A dirty golang-migrate version is refused (exit 5) and nothing is recorded."""
        write(migrations_dir, MIGRATIONS)
        true, _ = BOOL[db.dialect]
        db.execute("CREATE TABLE schema_migrations (version BIGINT NOT NULL PRIMARY KEY, dirty BOOLEAN NOT NULL)")
        db.execute(f"INSERT INTO schema_migrations VALUES (3, {true})")
        result = cli(db, "baseline", migrations_dir, "--from", "golang-migrate")
        assert (5, []) == (result.returncode, db.history())
        assert "dirty" in result.find("error")[0]["error"]

    def test_dbmate(self, db: TestDatabase, migrations_dir: Path) -> None:
        """dbmate lists versions; one not in the folder is reported, not recorded."""
        write(migrations_dir, MIGRATIONS)
        db.execute("CREATE TABLE schema_migrations (version VARCHAR(128) NOT NULL PRIMARY KEY)")
        db.execute("INSERT INTO schema_migrations VALUES ('001'), ('2'), ('9')")
        result = cli(db, "baseline", migrations_dir, "--from", "dbmate")
        assert 0 == result.returncode, result.stderr
        assert ["1", "2"] == [r["migration_id"] for r in db.history()]
        assert "not in the folder (not recorded): 9" in result.stdout

    def test_flyway(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Flyway's successful versioned rows and repeatables (by description) are matched."""
        write(migrations_dir, {"V1__users.sql": "CREATE TABLE users (id INTEGER);",
                               "V1_1__more.sql": "CREATE TABLE more_t (id INTEGER);",
                               "V2__later.sql": "CREATE TABLE later_t (id INTEGER);",
                               "R__user_view.sql": "SELECT 1;"})
        true, _ = BOOL[db.dialect]
        db.execute("CREATE TABLE flyway_schema_history (installed_rank INTEGER NOT NULL PRIMARY KEY, "
                   "version VARCHAR(50), description VARCHAR(200) NOT NULL, type VARCHAR(20) NOT NULL, "
                   "script VARCHAR(1000) NOT NULL, checksum INTEGER, installed_by VARCHAR(100) NOT NULL, "
                   "execution_time INTEGER NOT NULL, success BOOLEAN NOT NULL)")
        db.execute("INSERT INTO flyway_schema_history VALUES "
                   f"(1, '1', 'users', 'SQL', 'V1__users.sql', 1, 'me', 5, {true}), "
                   f"(2, '1.1', 'more', 'SQL', 'V1_1__more.sql', 2, 'me', 5, {true}), "
                   f"(3, NULL, 'user view', 'SQL', 'R__user_view.sql', 3, 'me', 5, {true})")
        result = cli(db, "baseline", migrations_dir, "--from", "flyway")
        assert 0 == result.returncode, result.stderr
        assert ["1", "1.1", "R:user_view"] == [r["migration_id"] for r in db.history()]
        assert 0 == up(db, migrations_dir).returncode
        assert {"later_t", "flyway_schema_history"} == own_tables(db)

    def test_laravel(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Laravel's migrations table lists file names, matched by their timestamp version."""
        write(migrations_dir, {"2026_01_13_155307_create_cache_table.sql": "CREATE TABLE cache (k INTEGER);",
                               "2026_02_01_000000_create_jobs_table.sql": "CREATE TABLE jobs (k INTEGER);"})
        db.execute("CREATE TABLE migrations (id INTEGER PRIMARY KEY, migration VARCHAR(255) NOT NULL, batch INTEGER)")
        db.execute("INSERT INTO migrations VALUES (1, '2026_01_13_155307_create_cache_table', 1)")
        result = cli(db, "baseline", migrations_dir, "--from", "laravel")
        assert 0 == result.returncode, result.stderr
        assert ["20260113155307"] == [r["migration_id"] for r in db.history()]

    def test_alembic_needs_map(self, db: TestDatabase, migrations_dir: Path, tmp_path: Path) -> None:
        """alembic revisions carry no order: --map gives each one's version; without it, exit 2."""
        write(migrations_dir, MIGRATIONS)
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('d0a601a63b16')")
        assert 2 == cli(db, "baseline", migrations_dir, "--from", "alembic").returncode
        mapping = tmp_path / "map.txt"
        mapping.write_text("# revision version\nabcfdb12222b 1\nd0a601a63b16 2\n")
        result = cli(db, "baseline", migrations_dir, "--from", "alembic", "--map", str(mapping))
        assert 0 == result.returncode, result.stderr
        assert ["1", "2"] == [r["migration_id"] for r in db.history()]

    def test_missing_tool_table(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A tool whose table is not there is refused with exit 5, naming the table, and nothing is created."""
        write(migrations_dir, MIGRATIONS)
        db.ensure_exists()
        result = cli(db, "baseline", migrations_dir, "--from", "flyway")
        assert (5, set()) == (result.returncode, db.tables())
        assert "flyway_schema_history" in result.find("error")[0]["error"]

    def test_unmapped_alembic_revision_changes_nothing(self, db: TestDatabase, migrations_dir: Path,
                                                       tmp_path: Path) -> None:
        """An alembic head missing from --map is refused (exit 5) before the history table is created."""
        write(migrations_dir, MIGRATIONS)
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('d0a601a63b16')")
        mapping = tmp_path / "map.txt"
        mapping.write_text("abcfdb12222b 1\n")
        result = cli(db, "baseline", migrations_dir, "--from", "alembic", "--map", str(mapping))
        assert (5, {"alembic_version"}) == (result.returncode, db.tables())


class TestDown:
    def test_restores_previous_schema(self, db: TestDatabase, migrations_dir: Path) -> None:
        """down --steps 2 after up restores the schema that up --to 1 produced."""
        write(migrations_dir, {k: v for k, v in MIGRATIONS.items() if not k.startswith("004")})
        assert 0 == up(db, migrations_dir, "--to", "1").returncode
        before = schema_dump(db)
        assert 0 == up(db, migrations_dir).returncode
        result = cli(db, "down", migrations_dir, "--steps", "2", "--yes")
        assert 0 == result.returncode, result.stderr
        assert before == schema_dump(db)
        assert ["1"] == [r["migration_id"] for r in db.history()]
        assert ["3", "2"] == [e["version"] for e in result.find("rolled_back")]

    def test_down_to_version(self, db: TestDatabase, migrations_dir: Path) -> None:
        """down --to 1 rolls back everything after version 1."""
        write(migrations_dir, {k: v for k, v in MIGRATIONS.items() if not k.startswith("004")})
        assert 0 == up(db, migrations_dir).returncode
        assert 0 == cli(db, "down", migrations_dir, "--to", "1", "--yes").returncode
        assert {"users"} == own_tables(db)

    def test_down_to_unknown_version_is_usage_error(self, db: TestDatabase, migrations_dir: Path) -> None:
        """down --to a version that is not in the folder is exit 2, as for up --to, and rolls back nothing."""
        write(migrations_dir, {k: v for k, v in MIGRATIONS.items() if not k.startswith("004")})
        assert 0 == up(db, migrations_dir).returncode
        before = (schema_dump(db), db.history())
        result = cli(db, "down", migrations_dir, "--to", "99", "--yes")
        assert 2 == result.returncode, result.stderr
        assert "--to 99: no migration with that version in" in result.find("error")[0]["error"]
        assert before == (schema_dump(db), db.history())

    def test_down_to_0_rolls_back_everything(self, db: TestDatabase, migrations_dir: Path) -> None:
        """down --to 0, the point before every migration, rolls back all of them."""
        write(migrations_dir, {k: v for k, v in MIGRATIONS.items() if not k.startswith("004")})
        assert 0 == up(db, migrations_dir).returncode
        assert 0 == cli(db, "down", migrations_dir, "--to", "0", "--yes").returncode
        assert (set(), []) == (own_tables(db), db.history())

    def test_refuses_irreversible_and_touches_nothing(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A migration without a down part is refused (exit 5) before anything is rolled back."""
        write(migrations_dir, MIGRATIONS)
        assert 0 == up(db, migrations_dir).returncode
        before = (schema_dump(db), db.history())
        result = cli(db, "down", migrations_dir, "--steps", "2", "--yes")
        assert 5 == result.returncode
        assert ("004_tags.sql (version 4) has no down part: write a .down.sql file beside it (or `-- migrate:up` and "
                "`-- migrate:down` sections in it) to roll it back") in result.find("error")[0]["error"]
        assert before == (schema_dump(db), db.history())
        write(migrations_dir, {"004_tags.down.sql": "DROP TABLE tags;\n"})  # the way out the refusal names
        assert 0 == cli(db, "down", migrations_dir, "--steps", "2", "--yes").returncode
        assert {"users", "orders"} == own_tables(db)

    def test_refuses_drifted(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A migration whose file changed since it was applied is not reversible."""
        write(migrations_dir, {k: v for k, v in MIGRATIONS.items() if not k.startswith("004")})
        assert 0 == up(db, migrations_dir).returncode
        (migrations_dir / "003_notes.sql").write_text("-- migrate:up\nCREATE TABLE notes (id INTEGER, x INTEGER);\n"
                                                      "-- migrate:down\nDROP TABLE notes;\n")
        result = cli(db, "down", migrations_dir, "--steps", "1", "--yes")
        assert 5 == result.returncode
        error = result.find("error")[0]["error"]
        assert "changed since it was applied: restore the file as it was applied (from version control)" in error
        assert "after a comments-only edit, record its new checksum with `premigrate repair --realign-checksums`" \
            in error
        assert "notes" in own_tables(db)

    def test_refuses_a_file_not_in_the_folder(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A migration whose file is gone is refused (exit 5), saying to restore it or to point --dir elsewhere."""
        write(migrations_dir, {k: v for k, v in MIGRATIONS.items() if not k.startswith("004")})
        assert 0 == up(db, migrations_dir).returncode
        (migrations_dir / "003_notes.sql").unlink()
        before = (schema_dump(db), db.history())
        result = cli(db, "down", migrations_dir, "--steps", "1", "--yes")
        assert 5 == result.returncode, result.stderr
        assert (f"003_notes.sql (version 3) is not in the folder {str(migrations_dir)!r} (its down part is in that "
                "file): restore it from version control, or point --dir at the folder that has it"
                ) in result.find("error")[0]["error"]
        assert before == (schema_dump(db), db.history())

    def test_missing_history_table_is_refused(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A --table that names no history table is exit 5 naming it (a typo must not pass for a rollback), and
        nothing is created."""
        write(migrations_dir, {k: v for k, v in MIGRATIONS.items() if not k.startswith("004")})
        assert 0 == up(db, migrations_dir).returncode
        before = (db.tables(), db.history())
        result = cli(db, "down", migrations_dir, "--steps", "1", "--yes", "--table", "premigrate_histroy")
        assert 5 == result.returncode, result.stderr
        [error] = result.find("error")
        assert error["error"].startswith("down refused: there is no history table premigrate_histroy in ")
        assert "--table" in error["error"] and "\n" not in error["error"]
        assert ([], before) == (result.find("nothing_to_do"), (db.tables(), db.history()))

    def test_empty_history_is_nothing_to_do(self, db: TestDatabase, migrations_dir: Path) -> None:
        """An existing history with nothing applied: --steps N finds nothing to roll back, exit 0."""
        write(migrations_dir, {k: v for k, v in MIGRATIONS.items() if not k.startswith("004")})
        assert 0 == up(db, migrations_dir).returncode
        assert 0 == cli(db, "down", migrations_dir, "--to", "0", "--yes").returncode
        result = cli(db, "down", migrations_dir, "--steps", "1", "--yes")
        assert (0, 1) == (result.returncode, len(result.find("nothing_to_do"))), result.stderr

    def test_missing_sqlite_file_is_refused_and_not_created(self, migrations_dir: Path, tmp_path: Path) -> None:
        """A SQLite path that names no file is exit 3, as for status, and neither the file nor its lock is created."""
        write(migrations_dir, MIGRATIONS)
        typo = tmp_path / "typo.db"
        result = run_cli("down", "--dir", str(migrations_dir), "--steps", "1", "--yes", "--database-url",
                         f"sqlite:///{typo}")
        assert 3 == result.returncode, result.stderr
        assert f"SQLite database file {str(typo)!r} does not exist" in result.find("error")[0]["error"]
        assert [] == sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("typo"))

    def test_steps_flag_wins_over_the_to_variable(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--steps on the command line beats PREMIGRATE_TO (set for a staged `up --to`), and --to beats
        PREMIGRATE_DOWN_STEPS; both variables at once are exit 2 naming them."""
        write(migrations_dir, {k: v for k, v in MIGRATIONS.items() if not k.startswith("004")})
        assert 0 == up(db, migrations_dir).returncode
        result = cli(db, "down", migrations_dir, "--steps", "1", "--yes", env={"PREMIGRATE_TO": "1"})
        assert (0, ["1", "2"]) == (result.returncode, [r["migration_id"] for r in db.history()]), result.stderr
        result = cli(db, "down", migrations_dir, "--to", "1", "--yes", env={"PREMIGRATE_DOWN_STEPS": "2"})
        assert (0, ["1"]) == (result.returncode, [r["migration_id"] for r in db.history()]), result.stderr
        result = cli(db, "down", migrations_dir, "--yes", env={"PREMIGRATE_DOWN_STEPS": "1", "PREMIGRATE_TO": "0"})
        assert 2 == result.returncode, result.stderr
        assert "PREMIGRATE_DOWN_STEPS=1 and PREMIGRATE_TO=0 are both given" in result.find("error")[0]["error"]
        assert ["1"] == [r["migration_id"] for r in db.history()]

    def test_needs_yes_without_terminal(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Without a terminal, down refuses to run without --yes (exit 2)."""
        write(migrations_dir, MIGRATIONS)
        assert 0 == up(db, migrations_dir, "--to", "1").returncode
        result = cli(db, "down", migrations_dir, "--steps", "1", input="y\n")
        assert 2 == result.returncode
        assert "users" in own_tables(db)


class TestNew:
    @pytest.mark.parametrize("style", ["plain", "dbmate", "golang-migrate", "flyway", "goose"])
    def test_created_file_is_refused_until_written(self, db: TestDatabase, migrations_dir: Path, style: str) -> None:
        """Each format creates the next file; up refuses it while it holds no SQL (exit 5, naming it) and accepts
        it once the draft line is gone (an empty migration on purpose)."""
        write(migrations_dir, {"001_a.sql": "CREATE TABLE a (id INTEGER);"} if style != "flyway"
              else {"V1__a.sql": "CREATE TABLE a (id INTEGER);"})
        result = run_cli("new", "Add widgets table", "--dir", str(migrations_dir), "--format", style)
        assert 0 == result.returncode, result.stderr
        created = [Path(p).name for p in result.stdout.split()]
        expected = {"plain": ["002_add_widgets_table.sql"], "dbmate": ["002_add_widgets_table.sql"],
                    "goose": ["002_add_widgets_table.sql"],
                    "golang-migrate": ["002_add_widgets_table.up.sql", "002_add_widgets_table.down.sql"],
                    "flyway": ["V2__add_widgets_table.sql"]}[style]
        assert expected == created
        refused = up(db, migrations_dir)
        assert 5 == refused.returncode, refused.stderr
        assert f"{created[0]} was created by `premigrate new` and holds no SQL yet: write its SQL" in refused.stderr
        assert [] == db.history()
        path = migrations_dir / created[0]
        path.write_text(path.read_text().replace("-- premigrate:draft\n", ""))
        applied = up(db, migrations_dir)
        assert 0 == applied.returncode, applied.stderr
        assert ["1", "2"] == [r["migration_id"] for r in db.history()]

    def test_timestamp_numbering_detected(self, migrations_dir: Path) -> None:
        """A folder numbered by timestamps gets a newer timestamp."""
        write(migrations_dir, {"20260113155307_a.sql": "SELECT 1;"})
        result = run_cli("new", "b", "--dir", str(migrations_dir))
        name = Path(result.stdout.strip()).name
        assert name.endswith("_b.sql") and len(name.split("_")[0]) == 14 and name > "20260113155307"

    def test_invalid_description(self, migrations_dir: Path) -> None:
        """A description that would make an invalid name is exit 2, and no file is created."""
        result = run_cli("new", "drop; table/x", "--dir", str(migrations_dir))
        assert (2, []) == (result.returncode, list(migrations_dir.iterdir()))


class TestSummaryFiles:
    def test_termination_log_and_summary_file(self, db: TestDatabase, migrations_dir: Path, tmp_path: Path) -> None:
        """up writes a one-line JSON summary to the termination log (when it exists) and to --summary-file."""
        write(migrations_dir, MIGRATIONS)
        termination = tmp_path / "termination-log"
        termination.write_text("")
        summary = tmp_path / "out" / "summary.json"
        summary.parent.mkdir()
        result = up(db, migrations_dir, "--termination-log", str(termination), "--summary-file", str(summary))
        assert 0 == result.returncode
        for path in (termination, summary):
            lines = path.read_text().splitlines()
            assert 1 == len(lines)
            assert {"command": "up", "exit_code": 0, "applied": 4} == {
                k: json.loads(lines[0])[k] for k in ("command", "exit_code", "applied")}

    def test_missing_termination_log_is_not_created(self, db: TestDatabase, migrations_dir: Path,
                                                    tmp_path: Path) -> None:
        """A termination log path that does not exist is left alone (outside Kubernetes)."""
        write(migrations_dir, MIGRATIONS)
        assert 0 == up(db, migrations_dir, "--termination-log", str(tmp_path / "nope")).returncode
        assert not (tmp_path / "nope").exists()


UNSAFE = {"001_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY, legacy INTEGER);\n",
          "002_drop.sql": "ALTER TABLE users DROP COLUMN legacy;\n"}


class TestLintInUp:
    def test_warn_logs_and_applies(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--lint=warn (the default) logs each finding and applies anyway."""
        write(migrations_dir, UNSAFE)
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        assert [("drop-column", "002_drop.sql", 1)] == [
            (e["rule"], e["script"], e["line"]) for e in result.find("lint_finding")]

    def test_warn_logs_a_files_findings_just_before_it_runs(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--lint=warn does not hold up the run: the files are linted while it applies (commands/lint/ahead.py), and
        a file's findings are logged once the run is under way, before that file starts. (On PostgreSQL the next
        file is sent while the previous one's result is on its way, so only that order is fixed.)"""
        write(migrations_dir, UNSAFE)
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        seen = [(e["event"], e.get("script")) for e in result.events]
        at = seen.index(("lint_finding", "002_drop.sql"))
        assert seen.index(("lock_acquired", None)) < seen.index(("migration_started", "001_users.sql")) < at
        assert at < seen.index(("migration_started", "002_drop.sql"))

    def test_error_refuses_before_any_change(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--lint=error refuses an error-level finding with exit 5 before anything is created."""
        write(migrations_dir, UNSAFE)
        result = up(db, migrations_dir, "--lint", "error")
        assert (5, set()) == (result.returncode, db.tables())

    def test_allow_comment_silences(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A '-- premigrate:allow RULE' comment lets the statement through --lint=error."""
        write(migrations_dir, {**UNSAFE, "002_drop.sql": "-- premigrate:allow drop-column\n"
                                                         "ALTER TABLE users DROP COLUMN legacy;\n"})
        result = up(db, migrations_dir, "--lint", "error")
        assert (0, []) == (result.returncode, result.find("lint_finding"))


class TestLintCommand:
    def test_needs_no_database(self, migrations_dir: Path) -> None:
        """lint runs with no database configured, even where one is required (the image), and exits 5 on errors."""
        write(migrations_dir, UNSAFE)
        result = run_cli("lint", "--dir", str(migrations_dir), "--json",
                         env={"PREMIGRATE_REQUIRE_DATABASE": "1"})
        assert 5 == result.returncode, result.stderr
        document = json.loads(result.stdout)
        assert ({"error": 1, "warning": 0}, "drop-column") == (document["counts"], document["findings"][0]["rule"])

    @pytest.mark.parametrize(("args", "env", "dialect"), [
        pytest.param([], {}, "postgresql", id="no-database"),
        pytest.param(["--dialect", "mysql"], {}, "mysql", id="flag"),
        pytest.param([], {"DATABASE_URL": "mysql://u@127.0.0.1:1/x"}, "mysql", id="configured-database"),
    ])
    def test_config_loaded_names_the_dialect_lint_reads(self, migrations_dir: Path, args: list[str],
                                                        env: dict[str, str], dialect: str) -> None:
        """config_loaded never names a dialect lint does not use (it said sqlite, the fallback database's, while
        lint read PostgreSQL); with no database and no --dialect it names none, and lint_done says which."""
        write(migrations_dir, UNSAFE)
        result = run_cli("lint", "--dir", str(migrations_dir), "--log-level", "info", *args, env=env)
        (loaded,), (done,) = result.find("config_loaded"), result.find("lint_done")
        assert (loaded.get("dialect", dialect), dialect) == (dialect, done["dialect"])

    @pytest.mark.parametrize(("layout", "dialect"), [
        pytest.param({"meta/_journal.json": '{"version": "7", "dialect": "sqlite", "entries": [{"idx": 0, '
                                            '"version": "6", "when": 1700000000000, "tag": "0000_init", '
                                            '"breakpoints": true}]}',
                      "0000_init.sql": "CREATE TABLE `a` (`id` integer);\n--> statement-breakpoint\n"
                                       "DROP TABLE `b`;\n"}, "sqlite", id="drizzle-journal"),
        pytest.param({"migration_lock.toml": 'provider = "mysql"\n',
                      "20240101000000_init/migration.sql": "CREATE TABLE `a` (`id` INT);\nDROP TABLE `b`;\n"},
                     "mysql", id="prisma-lock"),
    ])
    def test_without_a_database_the_folder_names_its_dialect(self, migrations_dir: Path,
                                                             layout: dict[str, str], dialect: str) -> None:
        """With no database, lint reads the SQL for the database the folder declares (a Drizzle journal's dialect,
        a Prisma lock's provider), as `up` would run it: backquoted names parse, and the DROP TABLE is found."""
        for name, text in layout.items():
            (migrations_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (migrations_dir / name).write_text(text)
        result = run_cli("lint", "--dir", str(migrations_dir), "--json")
        assert 5 == result.returncode, result.stdout + result.stderr[-2000:]
        assert dialect == result.find("lint_done")[0]["dialect"]
        assert ["drop-table"] == [f["rule"] for f in json.loads(result.stdout)["findings"]]

    @pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
    def test_clean_exits_zero(self, migrations_dir: Path, dialect: str) -> None:
        """A clean folder exits 0 for each dialect."""
        write(migrations_dir, {"001_users.sql": "CREATE TABLE users (id INTEGER PRIMARY KEY);\n"
                                                "CREATE INDEX users_id ON users (id);\n"})
        result = run_cli("lint", "--dir", str(migrations_dir), "--dialect", dialect)
        assert (0, True) == (result.returncode, "0 findings" in result.stdout or "no findings" in result.stdout.lower())


class TestBaselineOnEmptyHistoryValidation:
    def test_unknown_version_refused_even_with_history(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--baseline-on-empty-history with a version not in the folder is exit 2, whatever the history holds."""
        write(migrations_dir, MIGRATIONS)
        assert 0 == up(db, migrations_dir, "--to", "1").returncode
        result = up(db, migrations_dir, "--baseline-on-empty-history", "9")
        assert (2, ["1"]) == (result.returncode, [r["migration_id"] for r in db.history()])
