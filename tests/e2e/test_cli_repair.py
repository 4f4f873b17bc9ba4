"""`premigrate repair`: the report and the three ways out of a failed or interrupted run, on the real servers."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from premigrate.drivers import driver_class
from premigrate.drivers.base import DriverSettings, lock_key_text
from premigrate.model.dsn import parse_url
from tests.e2e.helpers import LIVENESS_S, LiveCli, cmd, db_env, endless_sql, file_checksum, up, write
from tests.support import CliResult, TestDatabase

BASE = "CREATE TABLE base (id INTEGER PRIMARY KEY);\n"
# Five statements; the third reads a table that does not exist yet (MariaDB errno 1146), line 5 of the file.
FIVE = """-- five statements, the third fails until the table `source_rows` exists
CREATE TABLE r1 (id INTEGER PRIMARY KEY);
INSERT INTO r1 (id) VALUES (1);
INSERT INTO r1 (id) SELECT id + 100 FROM source_rows;
CREATE TABLE r4 (id INTEGER PRIMARY KEY);
CREATE TABLE r5 (id INTEGER PRIMARY KEY);
"""
# Outside a transaction everywhere, so that PostgreSQL and SQLite record progress as MariaDB does; statement 2 is a
# syntax error on every database.
THREE = """-- premigrate:no-transaction
CREATE TABLE s1 (id INTEGER PRIMARY KEY);
CREATE TABLE s2 (id INTEGER PRIMARY KEY,);
CREATE TABLE s3 (id INTEGER PRIMARY KEY);
"""
THREE_FIXED = THREE.replace("PRIMARY KEY,)", "PRIMARY KEY)")


def repair(db: TestDatabase, migrations_dir: Path, *args: str) -> CliResult:
    result = cmd("repair", db, migrations_dir, *args)
    assert "Traceback" not in result.stderr + result.stdout
    return result


def rows(db: TestDatabase) -> dict[str, dict]:
    return {r["migration_id"]: r for r in db.history()}


def progress(row: dict) -> tuple:
    return row["state"], row["statements_done"], row["statement_started"], row["statements_total"]


@contextmanager
def runner_lock_held(db: TestDatabase) -> Iterator[None]:
    """Hold premigrate's runner lock from this process, as another premigrate run would."""
    dsn = parse_url(db.url)
    session = driver_class(db.dialect).connect(dsn, DriverSettings(table=db.table))
    key = lock_key_text(dsn.database or "", f".{db.table}")
    try:
        assert session.try_lock(key)
        yield
    finally:
        session.unlock(key)
        session.close()


# -- a MariaDB migration failing at statement 3 of 5 ---------------------------------------------------------------

@pytest.fixture
def failed_at_3(db: TestDatabase, migrations_dir: Path) -> CliResult:
    write(migrations_dir, "001_base.sql", BASE)
    assert 0 == up(db, migrations_dir).returncode
    write(migrations_dir, "002_five.sql", FIVE)
    return up(db, migrations_dir)


@pytest.mark.parametrize("dialect", [pytest.param("mysql", id="mysql")])
class TestMariaDbFailureAtStatement3:
    def test_failed_row_and_next_up_names_repair(self, db: TestDatabase, migrations_dir: Path,
                                                 failed_at_3: CliResult) -> None:
        """Exit 4 leaves a failed row at statement 3 of 5; the next `up` exits 5 naming the repair commands."""
        assert 4 == failed_at_3.returncode, failed_at_3.stderr
        assert ("failed", 2, 3, 5) == progress(rows(db)["2"])

        result = up(db, migrations_dir)

        assert 5 == result.returncode, result.stderr
        [error] = result.find("error")
        message = error["error"]
        assert "statement 3 of 5" in message and "1146" in message and "statements 1-2 took effect" in message
        for command in ("premigrate repair --resume", "premigrate repair --mark-applied 2",
                        "premigrate repair --forget 2"):
            assert f"`{command}`" in message
        assert "UPDATE" not in message and "DELETE" not in message

    def test_report_says_what_happened(self, db: TestDatabase, migrations_dir: Path, failed_at_3: CliResult) -> None:
        """`repair` alone exits 5 and prints the statement, its line, the error, what took effect and the commands."""
        history = db.history()

        text = repair(db, migrations_dir)
        as_json = repair(db, migrations_dir, "--json")

        assert (5, 5) == (text.returncode, as_json.returncode), text.stderr
        assert "failed at statement 3 of 5 (line 4)" in text.stdout
        assert "1146" in text.stdout and "statements 1-2 took effect" in text.stdout
        [item] = json.loads(as_json.stdout)["unfinished"]
        assert ("2", "failed", 3, 4, 2, 5) == (item["id"], item["state"], item["statement"], item["line"],
                                               item["statements_done"], item["statements_total"])
        assert ["premigrate repair --resume", "premigrate repair --resume --skip-current",
                "premigrate repair --mark-applied 2", "premigrate repair --forget 2"] == [
            c["command"] for c in item["commands"]]
        assert [] == text.find("lock_acquired")
        assert history == db.history()

    def test_resume_after_fixing_the_cause(self, db: TestDatabase, migrations_dir: Path,
                                           failed_at_3: CliResult) -> None:
        """Once the missing table exists, --resume retries statement 3 and runs 4-5, statements 1-2 only once."""
        db.execute("CREATE TABLE source_rows (id INTEGER PRIMARY KEY)")
        db.execute("INSERT INTO source_rows (id) VALUES (7)")

        result = repair(db, migrations_dir, "--resume")

        assert 0 == result.returncode, result.stderr
        assert ("applied", 5, 5, 5) == progress(rows(db)["2"])
        assert [(1,), (107,)] == sorted(tuple(r) for r in db.query("SELECT id FROM r1"))
        assert {"r4", "r5"} <= db.tables()
        [event] = result.find("repair_resumed")
        assert ("2", "failed", 3, 3, "retried") == (event["version"], event["previous_state"],
                                                    event["from_statement"], event["current_statement"],
                                                    event["current"])
        assert [3] == [e["from_statement"] for e in result.find("migration_resumed")]
        assert 0 == cmd("check", db, migrations_dir).returncode
        assert [] == up(db, migrations_dir).find("migration_started")

    def test_resume_without_the_fix_fails_again(self, db: TestDatabase, migrations_dir: Path,
                                                failed_at_3: CliResult) -> None:
        """A resume whose statement still fails exits 4 and leaves the row failed at statement 3 again."""
        result = repair(db, migrations_dir, "--resume")

        assert 4 == result.returncode, result.stderr
        assert ("failed", 2, 3, 5) == progress(rows(db)["2"])
        assert [(1,)] == [tuple(r) for r in db.query("SELECT id FROM r1")]

    def test_mark_applied_after_finishing_by_hand(self, db: TestDatabase, migrations_dir: Path,
                                                  failed_at_3: CliResult) -> None:
        """--mark-applied records the row applied with the file's checksum; nothing of the file runs again."""
        db.execute("CREATE TABLE r4 (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TABLE r5 (id INTEGER PRIMARY KEY)")

        result = repair(db, migrations_dir, "--mark-applied", "2")

        assert 0 == result.returncode, result.stderr
        row = rows(db)["2"]
        assert ("applied", 5, 5, 5, file_checksum(FIVE), None) == progress(row) + (row["checksum"], row["error"])
        [event] = result.find("repair_marked_applied")
        assert ("2", "002_five.sql", "failed") == (event["version"], event["script"], event["previous_state"])
        assert [] == result.find("migration_started")
        assert 0 == cmd("check", db, migrations_dir).returncode

    def test_forget_then_up_runs_the_whole_file(self, db: TestDatabase, migrations_dir: Path,
                                                failed_at_3: CliResult) -> None:
        """--forget drops the row; after undoing statements 1-2 and fixing the cause, `up` applies the whole file."""
        db.execute("DROP TABLE r1")

        result = repair(db, migrations_dir, "--forget", "002")

        assert 0 == result.returncode, result.stderr
        assert ["1"] == list(rows(db))
        [event] = result.find("repair_forgotten")
        assert ("2", "failed", 2) == (event["version"], event["previous_state"], event["statements_done"])
        db.execute("CREATE TABLE source_rows (id INTEGER PRIMARY KEY)")
        again = up(db, migrations_dir)
        assert 0 == again.returncode, again.stderr
        assert ("applied", 5, 5, 5) == progress(rows(db)["2"])
        assert [(1,)] == [tuple(r) for r in db.query("SELECT id FROM r1")]

    def test_resume_refuses_a_changed_done_statement(self, db: TestDatabase, migrations_dir: Path,
                                                     failed_at_3: CliResult) -> None:
        """Statement 2 already ran; editing it makes --resume exit 5 naming it, with nothing changed."""
        write(migrations_dir, "002_five.sql", FIVE.replace("VALUES (1)", "VALUES (2)"))
        history = db.history()

        result = repair(db, migrations_dir, "--resume")

        assert 5 == result.returncode, result.stderr
        [error] = result.find("error")
        assert "statement 2 of 002_five.sql (version 2) already ran" in error["error"]
        assert history == db.history()
        assert [] == result.find("migration_started")

    def test_waits_for_the_runner_lock(self, db: TestDatabase, migrations_dir: Path,
                                       failed_at_3: CliResult) -> None:
        """While another run holds the runner lock, a repair action waits, then exits 6 with the row untouched."""
        history = db.history()
        with runner_lock_held(db):
            result = repair(db, migrations_dir, "--forget", "2", "--lock-timeout", "1s")

        assert 6 == result.returncode, result.stderr
        assert result.find("lock_waiting")
        assert history == db.history()


# -- a statement in doubt, on every database ------------------------------------------------------------------------

@pytest.fixture
def in_doubt(db: TestDatabase, migrations_dir: Path) -> None:
    """Version 1 stopped while statement 2 of 3 ran: the row a kill in the middle of that statement leaves."""
    write(migrations_dir, "001_three.sql", THREE)
    assert 4 == up(db, migrations_dir).returncode
    db.execute(f"UPDATE {db.table} SET state = 'in_progress', error = NULL WHERE migration_id = '1'")
    assert ("in_progress", 1, 2, 3) == progress(rows(db)["1"])


class TestInDoubt:
    def test_resume_needs_a_choice(self, db: TestDatabase, migrations_dir: Path, in_doubt: None) -> None:
        """--resume alone exits 2 asking for --retry-current or --skip-current, and changes nothing."""
        history = db.history()

        result = repair(db, migrations_dir, "--resume")

        assert 2 == result.returncode, result.stderr
        [error] = result.find("error")
        assert "--retry-current" in error["error"] and "--skip-current" in error["error"]
        assert history == db.history()

    def test_up_names_both_choices(self, db: TestDatabase, migrations_dir: Path, in_doubt: None) -> None:
        """`up` refuses the in-doubt row with exit 5 naming both repair commands."""
        result = up(db, migrations_dir)

        assert 5 == result.returncode, result.stderr
        message = result.find("error")[0]["error"]
        assert "`premigrate repair --resume --retry-current` if statement 2 did not take effect" in message
        assert "`premigrate repair --resume --skip-current` if it did" in message

    def test_retry_current_runs_it_again(self, db: TestDatabase, migrations_dir: Path, in_doubt: None) -> None:
        """It did not take effect: --retry-current runs statement 2 (fixed in the file) and 3."""
        write(migrations_dir, "001_three.sql", THREE_FIXED)

        result = repair(db, migrations_dir, "--resume", "--retry-current")

        assert 0 == result.returncode, result.stderr
        assert ("applied", 3, 3, 3) == progress(rows(db)["1"])
        assert {"s1", "s2", "s3"} <= db.tables()
        assert [2] == [e["from_statement"] for e in result.find("repair_resumed")]

    def test_retry_current_is_refused_for_a_failed_row(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A failed statement is not in doubt: --retry-current exits 2 saying --resume retries it by itself, and
        changes nothing; --resume alone then retries it."""
        write(migrations_dir, "001_three.sql", THREE)
        assert 4 == up(db, migrations_dir).returncode
        history = db.history()

        refused = repair(db, migrations_dir, "--resume", "--retry-current")

        assert 2 == refused.returncode, refused.stderr
        [error] = refused.find("error")
        assert "failed at statement 2, which --resume runs again by itself" in error["error"]
        assert "only for a statement in doubt" in error["error"]
        assert history == db.history()
        write(migrations_dir, "001_three.sql", THREE_FIXED)
        assert 0 == repair(db, migrations_dir, "--resume").returncode

    def test_skip_current_counts_it_as_done(self, db: TestDatabase, migrations_dir: Path, in_doubt: None) -> None:
        """It did take effect: --skip-current runs only statement 3 (running 2 again would fail: s2 exists)."""
        db.execute("CREATE TABLE s2 (id INTEGER PRIMARY KEY)")

        result = repair(db, migrations_dir, "--resume", "--skip-current")

        assert 0 == result.returncode, result.stderr
        assert ("applied", 3, 3, 3) == progress(rows(db)["1"])
        assert "s3" in db.tables()
        [event] = result.find("repair_resumed")
        assert (3, 2, "skipped") == (event["from_statement"], event["current_statement"], event["current"])


# -- checksums --------------------------------------------------------------------------------------------------------

TWO = "CREATE TABLE c1 (id INTEGER PRIMARY KEY);\nCREATE TABLE c2 (id INTEGER PRIMARY KEY);\n"
TWO_COSMETIC = "-- creates the two tables\n\nCREATE TABLE c1 (id INTEGER PRIMARY KEY);\n\n\n-- and the second\nCREATE TABLE c2 (id INTEGER PRIMARY KEY);\n"
VIEW = "DROP VIEW IF EXISTS v;\nCREATE VIEW v AS SELECT 1 AS one;\n"
TWO_CHANGED = TWO.replace("CREATE TABLE c2 (id INTEGER PRIMARY KEY)", "CREATE TABLE c2 (id INTEGER PRIMARY KEY, x INTEGER)")


@pytest.fixture
def applied_two(db: TestDatabase, migrations_dir: Path) -> None:
    write(migrations_dir, "001_two.sql", TWO)
    write(migrations_dir, "R__view.sql", VIEW)
    assert 0 == up(db, migrations_dir).returncode


class TestRealignChecksums:
    def test_cosmetic_edit_is_realigned(self, db: TestDatabase, migrations_dir: Path, applied_two: None) -> None:
        """Comments and blank lines only: realigned, listed old -> new, logged, and `up` is clean again."""
        write(migrations_dir, "001_two.sql", TWO_COSMETIC)
        write(migrations_dir, "R__view.sql", VIEW.replace("1 AS one", "2 AS two"))
        assert 5 == up(db, migrations_dir).returncode
        report = repair(db, migrations_dir, "--json")
        assert 5 == report.returncode
        assert [("1", True)] == [(c["id"], c["statements_unchanged"])
                                 for c in json.loads(report.stdout)["checksum_changes"]]

        result = repair(db, migrations_dir, "--realign-checksums")

        assert 0 == result.returncode, result.stderr
        assert f"1  001_two.sql  {file_checksum(TWO)} -> {file_checksum(TWO_COSMETIC)}" in result.stdout
        [event] = result.find("checksum_realigned")
        assert ("1", file_checksum(TWO), file_checksum(TWO_COSMETIC), True) == (
            event["version"], event["old_checksum"], event["new_checksum"], event["statements_unchanged"])
        assert file_checksum(TWO_COSMETIC) == rows(db)["1"]["checksum"]
        assert file_checksum(VIEW) == rows(db)["R:view"]["checksum"]
        assert 0 == up(db, migrations_dir).returncode

    def test_sql_change_is_refused_unless_named(self, db: TestDatabase, migrations_dir: Path,
                                                applied_two: None) -> None:
        """A real SQL change is refused (exit 5, nothing written) until named with --version."""
        write(migrations_dir, "001_two.sql", TWO_CHANGED)

        refused = repair(db, migrations_dir, "--realign-checksums")
        assert 5 == refused.returncode, refused.stderr
        assert "statement 2" in refused.find("error")[0]["error"]
        assert ["1"] == [e["version"] for e in refused.find("checksum_realign_refused")]
        assert file_checksum(TWO) == rows(db)["1"]["checksum"]

        named = repair(db, migrations_dir, "--realign-checksums", "--version", "1")
        assert 0 == named.returncode, named.stderr
        assert [False] == [e["statements_unchanged"] for e in named.find("checksum_realigned")]
        assert file_checksum(TWO_CHANGED) == rows(db)["1"]["checksum"]

    def test_nothing_to_realign(self, db: TestDatabase, migrations_dir: Path, applied_two: None) -> None:
        """With every checksum as recorded, the report and the action both exit 0 and change nothing."""
        history = db.history()
        assert (0, 0) == (repair(db, migrations_dir).returncode,
                          repair(db, migrations_dir, "--realign-checksums").returncode)
        assert history == db.history()


# -- an interrupted `down` ---------------------------------------------------------------------------------------------

REVERSIBLE = """-- migrate:up
CREATE TABLE d1 (id INTEGER PRIMARY KEY);
CREATE TABLE d2 (id INTEGER PRIMARY KEY);
-- migrate:down
DROP TABLE d2;
DROP TABLE d1_misspelt;
"""


@pytest.fixture
def stopped_down(db: TestDatabase, migrations_dir: Path) -> None:
    """`down` of version 1 dropped d2, then failed on its second statement: a rolling_back row."""
    write(migrations_dir, "001_d.sql", REVERSIBLE)
    assert 0 == up(db, migrations_dir).returncode
    assert 4 == cmd("down", db, migrations_dir, "--steps", "1", "--yes").returncode
    assert ("rolling_back", 1, 2, 2) == progress(rows(db)["1"])


@pytest.mark.parametrize("dialect", [pytest.param("mysql", id="mysql")])
class TestRollingBack:
    def test_up_and_resume_refuse(self, db: TestDatabase, migrations_dir: Path, stopped_down: None) -> None:
        """`up` exits 5 naming --forget and --mark-applied; --resume exits 5: a `down` is not resumed."""
        refused = up(db, migrations_dir)
        assert 5 == refused.returncode
        message = refused.find("error")[0]["error"]
        assert "`premigrate repair --forget 1`" in message and "`premigrate repair --mark-applied 1`" in message
        result = repair(db, migrations_dir, "--resume")
        assert 5 == result.returncode, result.stderr
        assert "cannot be resumed" in result.find("error")[0]["error"]

    def test_mark_applied_keeps_the_migration(self, db: TestDatabase, migrations_dir: Path,
                                              stopped_down: None) -> None:
        """Changes put back by hand: --mark-applied makes the row applied and `check` clean."""
        db.execute("CREATE TABLE d2 (id INTEGER PRIMARY KEY)")

        result = repair(db, migrations_dir, "--mark-applied", "1")

        assert 0 == result.returncode, result.stderr
        assert ("applied", 2, 2, 2) == progress(rows(db)["1"])
        assert 0 == cmd("check", db, migrations_dir).returncode

    def test_forget_completes_the_rollback(self, db: TestDatabase, migrations_dir: Path, stopped_down: None) -> None:
        """Rollback finished by hand: --forget drops the row and `up` applies the migration again."""
        db.execute("DROP TABLE d1")

        result = repair(db, migrations_dir, "--forget", "1")

        assert 0 == result.returncode, result.stderr
        assert {} == rows(db)
        assert 0 == up(db, migrations_dir).returncode
        assert {"d1", "d2"} <= db.tables()


# -- refusals -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect", [pytest.param("sqlite", id="sqlite")])
class TestRefusals:
    @pytest.mark.parametrize(("args", "code", "words"), [
        pytest.param(("--forget", "1"), 5, "`premigrate down`", id="forget-applied"),
        pytest.param(("--mark-applied", "1"), 5, "applied already", id="mark-applied-applied"),
        pytest.param(("--mark-applied", "2"), 5, "pending", id="mark-applied-pending"),
        pytest.param(("--forget", "9"), 2, "no migration 9", id="forget-unknown"),
        pytest.param(("--resume",), 5, "nothing to resume", id="resume-nothing"),
        pytest.param(("--resume", "--forget", "1"), 2, "one thing at a time", id="two-actions"),
        pytest.param(("--skip-current",), 2, "goes with --resume", id="skip-without-resume"),
        pytest.param(("--resume", "--retry-current", "--skip-current"), 2, "contradict", id="retry-and-skip"),
        pytest.param(("--forget", "abc"), 2, "--forget abc: 'abc' is not a version", id="forget-not-a-version"),
        pytest.param(("--realign-checksums", "--version", "2"), 5, "it is pending, not applied, so it has no recorded "
                     "checksum to realign", id="realign-pending"),
    ])
    def test_refused(self, db: TestDatabase, migrations_dir: Path, args: tuple[str, ...], code: int,
                     words: str) -> None:
        """Actions the history does not allow exit 5, nonsense exits 2; one line, nothing changed."""
        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n")
        assert 0 == up(db, migrations_dir).returncode
        write(migrations_dir, "002_b.sql", "CREATE TABLE b (id INTEGER);\n")
        history = db.history()

        result = repair(db, migrations_dir, *args)

        assert code == result.returncode, result.stderr
        [error] = result.find("error")
        assert words in error["error"] and "\n" not in error["error"]
        assert history == db.history()


@pytest.mark.parametrize("dialect", [pytest.param("sqlite", id="sqlite")])
class TestMissingSqliteFile:
    @pytest.mark.parametrize("args", [("--realign-checksums",), ("--forget", "1")], ids=["realign", "forget"])
    def test_action_is_refused_and_creates_nothing(self, db: TestDatabase, migrations_dir: Path,
                                                   args: tuple[str, ...]) -> None:
        """An action on a SQLite file that does not exist is exit 3, as for status; neither the file nor its lock is
        created (a mistyped path must not pass for a database with nothing to repair)."""
        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n")
        assert db.path is not None and not db.path.exists()

        result = repair(db, migrations_dir, *args)

        assert 3 == result.returncode, result.stderr
        assert f"SQLite database file {str(db.path)!r} does not exist" in result.find("error")[0]["error"]
        assert [] == [p.name for p in db.path.parent.iterdir() if p.name.startswith(db.path.name)]


class TestMissingHistoryTable:
    @pytest.mark.parametrize("args", [("--realign-checksums",), ("--forget", "1"), ("--resume",)],
                             ids=["realign", "forget", "resume"])
    def test_action_is_refused(self, db: TestDatabase, migrations_dir: Path, args: tuple[str, ...]) -> None:
        """An action where the history table does not exist (a mistyped --table): exit 5 naming the table, as down
        refuses it, not "nothing to realign" with exit 0; nothing is created."""
        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n")
        assert 0 == up(db, migrations_dir).returncode
        tables = db.tables()

        result = repair(db, migrations_dir, *args, "--table", "premigrate_histroy")

        assert 5 == result.returncode, result.stderr
        [error] = result.find("error")
        assert "there is no history table premigrate_histroy" in error["error"] and "\n" not in error["error"]
        assert tables == db.tables()


# -- a no-transaction file on PostgreSQL ----------------------------------------------------------------------------

CONCURRENT = """-- premigrate:no-transaction
CREATE TABLE nt_a (id INTEGER);
CREATE INDEX CONCURRENTLY nt_b_idx ON nt_b (id);
CREATE INDEX CONCURRENTLY nt_a_idx ON nt_a (id);
"""


@pytest.mark.parametrize("dialect", [pytest.param("postgresql", id="postgresql")])
class TestPostgresNoTransaction:
    def test_failed_at_statement_2_resumes(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A no-transaction file failing at statement 2 is resumed by --resume once its cause is fixed."""
        write(migrations_dir, "001_idx.sql", CONCURRENT)
        assert 4 == up(db, migrations_dir).returncode
        assert ("failed", 1, 2, 3) == progress(rows(db)["1"])
        db.execute("CREATE TABLE nt_b (id INTEGER)")

        result = repair(db, migrations_dir, "--resume")

        assert 0 == result.returncode, result.stderr
        assert ("applied", 3, 3, 3) == progress(rows(db)["1"])
        valid = db.query("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                         "WHERE c.relname IN ('nt_a_idx', 'nt_b_idx') ORDER BY 1")
        assert [("nt_a_idx", True), ("nt_b_idx", True)] == [tuple(r) for r in valid]


# -- rows this premigrate cannot read (a state or kind a newer premigrate may write) ----------------------------------

KEPT = """-- migrate:up
CREATE TABLE k1 (id INTEGER PRIMARY KEY);
CREATE TABLE k2 (id INTEGER PRIMARY KEY);
-- migrate:down
DROP TABLE k2;
DROP TABLE k1;
"""


@pytest.fixture
def applied_kept(db: TestDatabase, migrations_dir: Path) -> None:
    write(migrations_dir, "001_k.sql", KEPT)
    assert 0 == up(db, migrations_dir).returncode


class TestUnknownRows:
    def test_unknown_state_needs_repair_and_forget_drops_it(self, db: TestDatabase, migrations_dir: Path,
                                                            applied_kept: None) -> None:
        """A state this premigrate does not know: the report exits 5 naming it and the premigrate that wrote it;
        --mark-applied and --resume refuse; --forget drops the row, and `up` then applies the file as pending."""
        db.execute(f"UPDATE {db.table} SET state = 'reverted', premigrate_version = '9.1.0' WHERE migration_id = '1'")

        text = repair(db, migrations_dir)
        as_json = repair(db, migrations_dir, "--json")

        assert (5, 5) == (text.returncode, as_json.returncode), text.stderr
        assert "state: 'reverted', which this premigrate" in text.stdout
        assert "premigrate 9.1.0 wrote it" in text.stdout and "resumes it by itself" not in text.stdout
        document = json.loads(as_json.stdout)
        [item] = document["unfinished"]
        assert (True, "state 'reverted'", "9.1.0", ["premigrate repair --forget 1"]) == (
            document["needs_repair"], item["unknown"], item["premigrate_version"],
            [c["command"] for c in item["commands"]])
        for args in (("--mark-applied", "1"), ("--resume",)):
            refused = repair(db, migrations_dir, *args)
            assert 5 == refused.returncode, refused.stderr
            assert "state 'reverted'" in refused.find("error")[0]["error"]
        assert 5 == up(db, migrations_dir).returncode

        forgot = repair(db, migrations_dir, "--forget", "1")

        assert 0 == forgot.returncode, forgot.stderr
        assert {} == rows(db)
        assert ["reverted"] == [e["previous_state"] for e in forgot.find("repair_forgotten")]
        db.execute("DROP TABLE k2")
        db.execute("DROP TABLE k1")
        assert 0 == up(db, migrations_dir).returncode
        assert "applied" == rows(db)["1"]["state"]

    def test_unknown_kind_is_refused_by_check_down_and_repair(self, db: TestDatabase, migrations_dir: Path,
                                                              applied_kept: None) -> None:
        """An applied row of a kind this premigrate does not know: check and down refuse (nothing rolled back),
        status shows the row's kind, repair needs it settled; --forget drops it."""
        db.execute(f"UPDATE {db.table} SET kind = 'undo' WHERE migration_id = '1'")
        history = db.history()

        check = cmd("check", db, migrations_dir)
        down = cmd("down", db, migrations_dir, "--steps", "1", "--yes")
        status = cmd("status", db, migrations_dir, "--json")
        report = repair(db, migrations_dir)

        assert (5, 5, 5) == (check.returncode, down.returncode, report.returncode), down.stderr
        for result in (check, down):
            assert "has kind 'undo' in the history table" in result.find("error")[0]["error"]
        assert {"k1", "k2"} <= db.tables() and history == db.history()
        assert ["undo"] == [m["kind"] for m in json.loads(status.stdout)["migrations"] if m["id"] == "1"]
        assert "applied, of kind 'undo', which this premigrate" in report.stdout
        assert 0 == repair(db, migrations_dir, "--forget", "1").returncode
        assert {} == rows(db)


# -- a `down` stopped part-way through a statement-by-statement down part -------------------------------------------

STOPPING_DOWN = """-- migrate:up
CREATE TABLE k1 (id INTEGER PRIMARY KEY);
CREATE TABLE k2 (id INTEGER PRIMARY KEY);
-- migrate:down
-- premigrate:no-transaction
DROP TABLE k2;
{second}
DROP TABLE k1;
"""


def _end_server_statement(db: TestDatabase) -> None:
    """Stop the endless statement the killed process left running on the server (SQLite: it died with it)."""
    if db.dialect == "postgresql":
        db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                 "AND query LIKE '%%pg_sleep%%' AND pid <> pg_backend_pid()", (db.name,))
    elif db.dialect == "mysql":
        for (thread,) in db.query("SELECT id FROM information_schema.processlist WHERE db = %s "
                                  "AND info LIKE 'SELECT SLEEP%%'", (db.name,)):
            db.execute(f"KILL {int(thread)}")


class TestDownStopped:
    @pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
    def test_stopped_in_a_statement_is_in_doubt(self, db: TestDatabase, migrations_dir: Path, signum: int) -> None:
        """`down` stopped while statement 2 of its down part ran: repair (text and JSON) says statement 2 may or may
        not have taken effect, as for `up`, and what to do by hand for --forget and --mark-applied."""
        write(migrations_dir, "001_k.sql", STOPPING_DOWN.format(second=endless_sql(db.dialect)))
        assert 0 == up(db, migrations_dir).returncode
        live = LiveCli("down", "--dir", str(migrations_dir), "--steps", "1", "--yes", env=db_env(db),
                       cwd=migrations_dir.parent)
        try:
            deadline = time.monotonic() + LIVENESS_S
            while progress(rows(db)["1"])[:3] != ("rolling_back", 1, 2) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)  # into statement 2 itself, past the write that marked it started
            assert live.proc.poll() is None, "down ended before it could be stopped"
            live.proc.send_signal(signum)
            live.finish()
        finally:
            live.kill()
            _end_server_statement(db)
        assert ("rolling_back", 1, 2, 3) == progress(rows(db)["1"])

        text = repair(db, migrations_dir)
        as_json = repair(db, migrations_dir, "--json")

        assert (5, 5) == (text.returncode, as_json.returncode), text.stderr
        assert "`down` interrupted during statement 2 of 3 of its down part" in text.stdout
        assert ("its down part: statement 1 took effect; statement 2 may or may not have taken effect; statement 3 "
                "has not run") in text.stdout
        [item] = json.loads(as_json.stdout)["unfinished"]
        assert (True, 2, 1) == (item["in_doubt"], item["statement"], item["statements_done"])
        forget, mark = item["commands"]
        assert ("premigrate repair --forget 1", "premigrate repair --mark-applied 1") == (forget["command"],
                                                                                       mark["command"])
        assert "statement 2 if it did not take effect, and statement 3" in forget["when"]
        assert "statement 1, and statement 2 if it took effect" in mark["when"]

    def test_failed_statement_says_what_the_row_is(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A down statement that fails leaves a rolling_back row: the error says so (not "recorded as failed"),
        --resume refuses without claiming there is nothing unfinished, and repair reports the statement as failed."""
        write(migrations_dir, "001_k.sql", STOPPING_DOWN.format(second="DROP TABLE k1_misspelt;"))
        assert 0 == up(db, migrations_dir).returncode

        down = cmd("down", db, migrations_dir, "--steps", "1", "--yes")

        assert 4 == down.returncode, down.stderr
        error = down.find("error")[0]["error"]
        assert "recorded as failed" not in error and "stays rolling_back" in error
        assert "`premigrate repair`" in error
        assert ("rolling_back", 1, 2, 3) == progress(rows(db)["1"])
        resume = repair(db, migrations_dir, "--resume")
        assert 5 == resume.returncode, resume.stderr
        refusal = resume.find("error")[0]["error"]
        assert "cannot be resumed" in refusal and "no failed or interrupted migration" not in refusal
        report = repair(db, migrations_dir, "--json")
        [item] = json.loads(report.stdout)["unfinished"]
        assert (False, "its down part: statement 1 took effect; statement 2 failed; statement 3 has not run") == (
            item["in_doubt"], item["took_effect"])


# -- a run in progress ----------------------------------------------------------------------------------------------

class TestRunInProgress:
    def test_report_names_the_run_that_holds_the_lock(self, db: TestDatabase, migrations_dir: Path,
                                                      in_doubt: None) -> None:
        """While a runner holds the lock, the report says first that a run is in progress, with its holder, and
        that the row may be its own; without a holder it says nothing of the kind. Nothing is written."""
        history = db.history()
        with runner_lock_held(db):
            text = repair(db, migrations_dir)
            as_json = repair(db, migrations_dir, "--json")
        alone = repair(db, migrations_dir, "--json")

        assert (5, 5, 5) == (text.returncode, as_json.returncode, alone.returncode), text.stderr
        assert text.stdout.startswith("A premigrate run is in progress: it holds the runner lock (held by ")
        assert "may be that run's own: wait for it to end" in text.stdout
        assert "in_progress, running or interrupted during statement 2 of 3" in text.stdout
        assert json.loads(as_json.stdout)["run_in_progress"]
        assert None is json.loads(alone.stdout)["run_in_progress"]
        assert [] == text.find("lock_acquired") + text.find("lock_waiting")
        assert history == db.history()
