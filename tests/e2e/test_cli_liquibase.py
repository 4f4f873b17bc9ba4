"""Liquibase formatted SQL changelogs applied on PostgreSQL, MariaDB/MySQL and SQLite: one listed migration per
changeset, in changelog order; drift, runOnChange/runAlways, dbms/context/label filters, preconditions under each
onFail, failOnError:false, rollback as the down part, a master changelog."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.helpers import cmd, up, write
from tests.support import TestDatabase

HEADER = "--liquibase formatted sql\n\n"
BASE = HEADER + """--changeset ann:1
CREATE TABLE person (id INT PRIMARY KEY, name VARCHAR(50));
INSERT INTO person (id, name) VALUES (1, 'ann');
--rollback DROP TABLE person;

--changeset bob:2 comment-is-ignored:x
--comment add a city table
CREATE TABLE city (id INT PRIMARY KEY);
--rollback DROP TABLE city;
"""


def ids(db: TestDatabase) -> list[str]:
    return [r["migration_id"] for r in db.history()]


def count(db: TestDatabase, table: str) -> int:
    return int(db.query(f"SELECT COUNT(*) FROM {table}")[0][0])


def server_dbms(db: TestDatabase) -> str:
    if db.dialect != "mysql":
        return db.dialect
    return "mariadb" if "mariadb" in str(db.query("SELECT VERSION()")[0][0]).lower() else "mysql"


class TestApply:
    def test_apply_then_noop_in_changelog_order(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Each changeset is one migration keyed path::id::author; a second run applies nothing."""
        write(migrations_dir, "changelog.sql", BASE)
        first = up(db, migrations_dir)
        assert 0 == first.returncode, first.stderr
        assert ["changelog.sql::1::ann", "changelog.sql::2::bob"] == [
            e["migration_id"] for e in first.find("migration_applied")]
        assert {"person", "city"} <= db.tables()
        assert {"listed"} == {r["kind"] for r in db.history()}
        assert all(r["checksum"].startswith("9:") for r in db.history())  # Liquibase's checksum v9
        again = up(db, migrations_dir)
        assert 0 == again.returncode, again.stderr
        assert [] == again.find("migration_started")
        assert again.find("nothing_to_do")

    def test_files_in_name_order_as_include_all(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Without a master changelog the files run in path order, sub-folders included."""
        write(migrations_dir, "b.sql", HEADER + "--changeset x:1\nCREATE TABLE tb (id INT);\n")
        (migrations_dir / "a").mkdir()
        write(migrations_dir / "a", "z.sql", HEADER + "--changeset x:1\nCREATE TABLE taz (id INT);\n")
        write(migrations_dir, "a.sql", HEADER + "--changeset x:1\nCREATE TABLE ta (id INT);\n")
        result = up(db, migrations_dir, "--format", "liquibase")
        assert 0 == result.returncode, result.stderr
        assert ["a.sql::1::x", "a/z.sql::1::x", "b.sql::1::x"] == [
            e["migration_id"] for e in result.find("migration_applied")]

    def test_master_changelog_order_and_refusal(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A master changelog's include entries set the order; another change type in it is refused."""
        write(migrations_dir, "2.sql", HEADER + "--changeset x:two\nCREATE TABLE t2 (id INT);\n")
        write(migrations_dir, "1.sql", HEADER + "--changeset x:one\nCREATE TABLE t1 (id INT);\n")
        master = ('<?xml version="1.0"?>\n<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/dbchangelog">\n'
                  '  <include file="2.sql"/>\n  <include file="1.sql"/>\n</databaseChangeLog>\n')
        write(migrations_dir, "changelog.xml", master)
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        assert ["2.sql::two::x", "1.sql::one::x"] == [e["migration_id"] for e in result.find("migration_applied")]
        write(migrations_dir, "changelog.xml", master.replace(
            "</databaseChangeLog>", '  <changeSet id="3" author="x"><createTable tableName="t3"/></changeSet>\n'
                                    "</databaseChangeLog>"))
        refused = up(db, migrations_dir)
        assert 5 == refused.returncode
        assert "createTable" in refused.stderr and "changelog.xml" in refused.stderr

    @pytest.mark.parametrize("dialect", ["postgresql"])  # dollar quotes are PostgreSQL's
    def test_dollar_quoted_body_runs_on_postgresql(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A plpgsql body with BEGIN/END and inner semicolons runs whole (premigrate's splitter where Liquibase's
        would cut the dollar quote)."""
        write(migrations_dir, "changelog.sql", HEADER + """--changeset ann:fn
CREATE TABLE counter (n INT);
CREATE FUNCTION bump() RETURNS trigger AS $$
BEGIN
  UPDATE counter SET n = n + 1;
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
INSERT INTO counter VALUES (0);
""")
        strict = up(db, migrations_dir, "--liquibase-strict")  # Liquibase's split only: refused, nothing runs
        assert 5 == strict.returncode, strict.stderr
        assert "splitStatements:false" in strict.stderr and "changelog.sql::fn::ann" in strict.stderr
        assert "counter" not in db.tables()
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        assert [(0,)] == db.query("SELECT n FROM counter")
        assert db.query("SELECT 1 FROM pg_proc WHERE proname = 'bump'")

    def test_run_in_transaction_false(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql", HEADER + "--changeset a:1 runInTransaction:false\n"
                                                        "CREATE TABLE nt (id INT);\nINSERT INTO nt VALUES (1);\n")
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        [started] = result.find("migration_started")
        assert started["transaction"].startswith("none")
        assert 1 == count(db, "nt")


def docs_example(name: str) -> str:
    page = (Path(__file__).resolve().parents[2] / "docs" / "liquibase.md").read_text()
    match = re.search(rf"<!-- example: {name} -->\n```[a-z]*\n(.*?)```", page, re.DOTALL)
    assert match, name
    return match.group(1)


def test_docs_example_runs(db: TestDatabase, migrations_dir: Path) -> None:
    """docs/liquibase.md's "liquibase-run" example: applied, the index only on PostgreSQL, runAlways again."""
    write(migrations_dir, "changelog.sql", docs_example("liquibase-run"))
    first = up(db, migrations_dir, "--contexts", "prod")
    assert 0 == first.returncode, first.stderr
    expected = ["changelog.sql::1::alice", *(["changelog.sql::pg-only::alice"] if db.dialect == "postgresql" else []),
                "changelog.sql::grants::alice"]
    assert sorted(expected) == ids(db)
    again = up(db, migrations_dir, "--contexts", "prod")
    assert ["changelog.sql::grants::alice"] == [e["migration_id"] for e in again.find("migration_applied")]
    down = cmd("down", db, migrations_dir, "--steps", "1", "--yes")
    assert 0 == down.returncode, down.stderr


class TestDrift:
    def test_edited_changeset_exits_5(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql", BASE)
        assert 0 == up(db, migrations_dir).returncode
        write(migrations_dir, "changelog.sql", BASE.replace("VARCHAR(50)", "VARCHAR(60)"))
        result = up(db, migrations_dir)
        assert 5 == result.returncode, result.stderr
        assert "changelog.sql::1::ann" in result.stderr and "was changed after it was applied" in result.stderr

    def test_valid_checksum_any_accepts_the_edit(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql", BASE)
        assert 0 == up(db, migrations_dir).returncode
        edited = BASE.replace("VARCHAR(50)", "VARCHAR(60)").replace("--changeset ann:1\n",
                                                                      "--changeset ann:1\n--validCheckSum: ANY\n")
        write(migrations_dir, "changelog.sql", edited)
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        assert [] == result.find("migration_started")

    def test_run_on_change_is_reapplied(self, db: TestDatabase, migrations_dir: Path) -> None:
        text = BASE + "\n--changeset ann:3 runOnChange:true\nINSERT INTO person (id, name) VALUES (10, 'x');\n"
        write(migrations_dir, "changelog.sql", text)
        assert 0 == up(db, migrations_dir).returncode
        assert 0 == up(db, migrations_dir).returncode  # unchanged: not again
        assert 2 == count(db, "person")
        write(migrations_dir, "changelog.sql", text.replace("(10, 'x')", "(11, 'y')"))
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        assert ["changed"] == [e["reason"] for e in result.find("migration_started")]
        assert 3 == count(db, "person")
        assert 3 == len(ids(db))

    def test_run_always_runs_every_time(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql", BASE + "\n--changeset ann:3 runAlways:true\n"
              "UPDATE person SET name = 'again' WHERE id = 1;\n"
              "INSERT INTO city (id) SELECT COALESCE(MAX(id), 0) + 1 FROM city;\n")
        for _ in range(3):
            assert 0 == up(db, migrations_dir).returncode
        assert 3 == count(db, "city")
        # applied once, it is current: check (and check --wait, serve's readiness) do not wait for its next run
        assert 0 == cmd("check", db, migrations_dir).returncode


class TestFilters:
    def test_dbms_picks_this_database(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A changeset for another database is skipped and not recorded; `!` negates; MariaDB is not mysql."""
        mine = server_dbms(db)
        others = [d for d in ("postgresql", "mysql", "mariadb", "sqlite") if d != mine]
        text = HEADER + "".join(f"--changeset a:{d} dbms:{d}\nCREATE TABLE only_{d} (id INT);\n\n"
                                for d in (mine, *others))
        text += f"--changeset a:not-mine dbms:!{mine}\nCREATE TABLE not_mine (id INT);\n"
        write(migrations_dir, "changelog.sql", text)
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        tables = db.tables()
        assert f"only_{mine}" in tables
        assert not any(f"only_{d}" in tables for d in others) and "not_mine" not in tables
        assert [f"changelog.sql::{mine}::a"] == ids(db)
        status = cmd("status", db, migrations_dir, "--json")
        assert 4 == status.stdout.count('"state": "skipped"')

    def test_contexts_and_labels(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql", HEADER + """--changeset a:1 context:test
CREATE TABLE ctx_test (id INT);

--changeset a:2 contextFilter:"prod and !eu"
CREATE TABLE ctx_prod (id INT);

--changeset a:3 labels:v1,beta
CREATE TABLE lbl (id INT);

--changeset a:4
CREATE TABLE always_there (id INT);
""")
        result = up(db, migrations_dir, "--contexts", "prod", "--labels", "v2")
        assert 0 == result.returncode, result.stderr
        assert {"ctx_prod", "always_there"} <= db.tables()
        assert not {"ctx_test", "lbl"} & db.tables()
        # a later run whose filters take them in applies them: skipped ones were not recorded
        later = up(db, migrations_dir, "--contexts", "test", "--labels", "beta")
        assert 0 == later.returncode, later.stderr
        assert {"ctx_test", "lbl"} <= db.tables()
        assert 4 == len(ids(db))

    def test_ignore_true(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql", HEADER + "--changeset a:1 ignore:true\nCREATE TABLE ign (id INT);\n\n"
                                                        "--changeset a:2\nCREATE TABLE kept (id INT);\n")
        assert 0 == up(db, migrations_dir).returncode
        assert "kept" in db.tables() and "ign" not in db.tables()


PRE = HEADER + """--changeset a:1
CREATE TABLE base (id INT);

--changeset a:2
--preconditions onFail:{on_fail}
--precondition-table-exists table:missing_table
CREATE TABLE guarded (id INT);

--changeset a:3
CREATE TABLE after_it (id INT);
"""


class TestPreconditions:
    @pytest.mark.parametrize(("on_fail", "recorded", "created", "code"), [
        ("HALT", False, False, 4), ("CONTINUE", False, False, 0), ("MARK_RAN", True, False, 0),
        ("WARN", True, True, 0)])
    def test_failing_precondition(self, db: TestDatabase, migrations_dir: Path, on_fail: str, recorded: bool,
                                  created: bool, code: int) -> None:
        write(migrations_dir, "changelog.sql", PRE.format(on_fail=on_fail))
        result = up(db, migrations_dir)
        assert code == result.returncode, result.stderr
        [failed] = result.find("precondition_failed")
        assert on_fail == failed["outcome"] and "missing_table" in failed["error"]
        assert recorded == ("changelog.sql::2::a" in ids(db))
        assert created == ("guarded" in db.tables())
        assert ("after_it" in db.tables()) == (on_fail != "HALT")
        if on_fail == "CONTINUE":  # judged again next run: once the table exists it runs
            db.execute("CREATE TABLE missing_table (id INT)")
            assert 0 == up(db, migrations_dir).returncode
            assert "guarded" in db.tables()

    def test_on_error_when_the_check_cannot_run(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A check whose SQL fails is onError's case (here CONTINUE): skipped, and the session stays usable."""
        write(migrations_dir, "changelog.sql", HEADER + """--changeset a:1
--preconditions onFail:HALT onError:CONTINUE
--precondition-sql-check expectedResult:0 SELECT COUNT(*) FROM no_such_table
CREATE TABLE guarded (id INT);

--changeset a:2
CREATE TABLE after_it (id INT);
""")
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        [failed] = result.find("precondition_failed")
        assert "CONTINUE" == failed["outcome"]
        assert ["changelog.sql::2::a"] == ids(db)
        assert "after_it" in db.tables() and "guarded" not in db.tables()

    def test_passing_sql_check_and_view(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql", HEADER + """--changeset a:1
CREATE TABLE base (id INT);
INSERT INTO base VALUES (1);
CREATE VIEW base_view AS SELECT id FROM base;

--changeset a:2
--preconditions onFail:HALT
--precondition-sql-check expectedResult:1 SELECT COUNT(*) FROM base
--precondition-view-exists view:base_view
--precondition-table-exists table:base
CREATE TABLE checked (id INT);
""")
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        assert [] == result.find("precondition_failed")
        assert "checked" in db.tables()


class TestFailuresAndRollback:
    def test_fail_on_error_false_goes_on_unrecorded(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql", HEADER + "--changeset a:1 failOnError:false\n"
                                                        "INSERT INTO no_such_table VALUES (1);\n\n"
                                                        "--changeset a:2\nCREATE TABLE next_one (id INT);\n")
        result = up(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        assert result.find("migration_failed_ignored")
        assert ["changelog.sql::2::a"] == ids(db)
        assert "next_one" in db.tables()

    def test_failing_changeset_stops_the_run(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql", HEADER + "--changeset a:1\nINSERT INTO no_such_table VALUES (1);\n\n"
                                                        "--changeset a:2\nCREATE TABLE next_one (id INT);\n")
        assert 4 == up(db, migrations_dir).returncode
        assert "next_one" not in db.tables()

    def test_down_runs_the_rollback(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql",
              BASE + "\n--changeset c:3\nCREATE TABLE IF NOT EXISTS noop_rb (id INT);\n--rollback empty\n")
        assert 0 == up(db, migrations_dir).returncode
        result = cmd("down", db, migrations_dir, "--steps", "2", "--yes")
        assert 0 == result.returncode, result.stderr
        assert ["changelog.sql::1::ann"] == ids(db)
        assert "city" not in db.tables() and "person" in db.tables()
        assert "noop_rb" in db.tables()  # `--rollback empty`: nothing to undo, on purpose
        assert 0 == up(db, migrations_dir).returncode
        assert 3 == len(ids(db))

    def test_down_refused_without_rollback(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "changelog.sql", HEADER + "--changeset a:1\nCREATE TABLE kept (id INT);\n")
        assert 0 == up(db, migrations_dir).returncode
        result = cmd("down", db, migrations_dir, "--steps", "1", "--yes")
        assert 5 == result.returncode
        assert "no down part" in result.stderr
        assert "kept" in db.tables()


def test_verify_leaves_out_skipped_changesets(db: TestDatabase, migrations_dir: Path) -> None:
    """verify rolls each changeset back and forward in a scratch database; one for another database is not there."""
    other = "postgresql" if db.dialect != "postgresql" else "sqlite"
    write(migrations_dir, "changelog.sql", BASE + f"\n--changeset c:other dbms:{other}\nSELECT 1;\n")
    result = cmd("verify", db, migrations_dir)
    assert 0 == result.returncode, result.stderr
    assert "2 verified" in result.stdout and "c:other" not in result.stdout and "::other::" not in result.stdout


class TestBaselineFromLiquibase:
    """A database Liquibase migrated: `baseline --from liquibase` adopts the changesets DATABASECHANGELOG records,
    by path, id and author and with Liquibase's checksum, and `up` goes on with the rest."""

    def liquibase_ran(self, db: TestDatabase, migrations_dir: Path, sums: dict[str, str] | None = None) -> None:
        from premigrate.model.formats.liquibase import parse_formatted_sql

        stamp = "TIMESTAMP" if db.dialect == "postgresql" else "DATETIME"
        db.execute(f"CREATE TABLE DATABASECHANGELOG (ID VARCHAR(255) NOT NULL, AUTHOR VARCHAR(255) NOT NULL, "
                   f"FILENAME VARCHAR(255) NOT NULL, DATEEXECUTED {stamp} NOT NULL, ORDEREXECUTED INT NOT NULL, "
                   "EXECTYPE VARCHAR(10) NOT NULL, MD5SUM VARCHAR(35), DESCRIPTION VARCHAR(255))")
        for order, changeset in enumerate(parse_formatted_sql(BASE, "changelog.sql"), 1):
            for statement in changeset.statements:
                db.execute(statement)
            md5 = (sums or {}).get(changeset.id, changeset.checksum)
            db.execute("INSERT INTO DATABASECHANGELOG (ID, AUTHOR, FILENAME, DATEEXECUTED, ORDEREXECUTED, EXECTYPE, "
                       f"MD5SUM, DESCRIPTION) VALUES ('{changeset.id}', '{changeset.author}', 'changelog.sql', "
                       f"CURRENT_TIMESTAMP, {order}, 'EXECUTED', '{md5}', 'sql')")
        write(migrations_dir, "changelog.sql", BASE + "\n--changeset ann:3\nCREATE TABLE later (id INT);\n")

    def test_adopted_then_up_runs_the_rest(self, db: TestDatabase, migrations_dir: Path) -> None:
        self.liquibase_ran(db, migrations_dir)
        result = cmd("baseline", db, migrations_dir, "--from", "liquibase")
        assert 0 == result.returncode, result.stderr
        assert ["changelog.sql::1::ann", "changelog.sql::2::bob"] == ids(db)
        applied = up(db, migrations_dir)
        assert 0 == applied.returncode, applied.stderr
        assert ["changelog.sql::3::ann"] == [e["migration_id"] for e in applied.find("migration_applied")]
        assert "later" in db.tables() and 1 == count(db, "person")

    def test_up_baseline_from_in_one_deploy(self, db: TestDatabase, migrations_dir: Path) -> None:
        """`up --baseline-from liquibase`: adopted and the rest applied in one run."""
        self.liquibase_ran(db, migrations_dir)
        result = up(db, migrations_dir, "--baseline-from", "liquibase")
        assert 0 == result.returncode, result.stderr
        assert ["changelog.sql::3::ann"] == [e["migration_id"] for e in result.find("migration_applied")]
        assert 3 == len(ids(db)) and 1 == count(db, "person")

    def test_changed_since_liquibase_ran_it_is_refused(self, db: TestDatabase, migrations_dir: Path) -> None:
        self.liquibase_ran(db, migrations_dir, sums={"1": "9:00000000000000000000000000000000"})
        result = cmd("baseline", db, migrations_dir, "--from", "liquibase")
        assert 5 == result.returncode
        assert "changelog.sql::1::ann" in result.stderr and "changed since Liquibase ran" in result.stderr
        assert db.table not in db.tables()
