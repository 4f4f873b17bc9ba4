"""An afterMigrate that fails, or is stopped, after its run's migrations were recorded is recorded as owed
(model/owed.py): the next plain `up` runs it instead of exiting 0 with nothing to do, and `check`, `status`, `plan`
and serve's /ready say so until it has run. PostgreSQL, MariaDB and SQLite."""

from __future__ import annotations

import json
import signal

import pytest
from pathlib import Path

from tests.e2e.helpers import LiveCli, cmd, db_env, endless_sql, up, write
from tests.support import CliResult, TestDatabase

OWED = "premigrate:afterMigrate"
LOG = "CREATE TABLE IF NOT EXISTS cb_log (e VARCHAR(100));\nINSERT INTO cb_log VALUES ('after');\n"


def one_migration(migrations_dir: Path) -> None:
    write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER);\n")


def owed_rows(db: TestDatabase) -> list[tuple[str, str]]:
    return [(r["kind"], r["state"]) for r in db.history() if r["migration_id"] == OWED]


def ran(db: TestDatabase) -> int:
    return len(db.query("SELECT e FROM cb_log")) if "cb_log" in db.tables() else 0


def test_a_failed_after_migrate_is_run_by_the_next_plain_up(db: TestDatabase, migrations_dir: Path) -> None:
    one_migration(migrations_dir)
    write(migrations_dir, "afterMigrate.sql", "INSERT INTO no_such_table VALUES (1);\n")
    failed = up(db, migrations_dir)
    assert 4 == failed.returncode, failed.stderr[-2000:]
    assert "recorded as owed" in failed.find("error")[0]["error"]
    assert [("callback", "failed")] == owed_rows(db)
    stored = [r["error"] for r in db.history() if r["migration_id"] == OWED][0]
    assert "no_such_table" in stored and "recorded as owed" not in stored  # what failed, not the advice
    assert ["1"] == [r["migration_id"] for r in db.history() if r["kind"] != "callback"]

    check = cmd("check", db, migrations_dir)
    assert 7 == check.returncode, check.stderr[-2000:]
    assert "afterMigrate failed" in check.find("callback_owed")[0]["error"]
    assert not check.find("pending")  # no migration is pending: the event says what is
    status = cmd("status", db, migrations_dir, "--json")
    assert 0 == status.returncode, status.stderr[-2000:]
    document = json.loads(status.stdout)
    assert ["afterMigrate"] == [o["callback"] for o in document["callbacks_owed"]]
    assert ["1"] == [m["id"] for m in document["migrations"]]  # the debt is not a migration
    plan = cmd("plan", db, migrations_dir)
    assert 7 == plan.returncode, plan.stderr[-2000:]
    assert "owed: afterMigrate failed" in plan.stdout

    still_broken = up(db, migrations_dir)  # nothing to apply, but the debt is not paid: not a silent exit 0
    assert 4 == still_broken.returncode, still_broken.stderr[-2000:]
    assert [("callback", "failed")] == owed_rows(db)

    write(migrations_dir, "afterMigrate.sql", LOG)
    fixed = up(db, migrations_dir)
    assert 0 == fixed.returncode, fixed.stderr[-2000:]
    assert fixed.find("callback_owed")
    assert 1 == ran(db)
    assert [] == owed_rows(db)
    assert 0 == cmd("check", db, migrations_dir).returncode
    quiet = up(db, migrations_dir)  # paid: the next run is a no-op again and runs no callback
    assert (0, 1) == (quiet.returncode, ran(db))
    assert quiet.find("nothing_to_do")


def test_a_debt_without_its_script_is_refused_not_dropped(db: TestDatabase, migrations_dir: Path) -> None:
    """A run given no afterMigrate script (the wrong --callbacks folder, or none) cannot pay the debt: exit 5,
    naming the way out, and the debt stays."""
    one_migration(migrations_dir)
    write(migrations_dir, "afterMigrate.sql", "INSERT INTO no_such_table VALUES (1);\n")
    assert 4 == up(db, migrations_dir).returncode
    (migrations_dir / "afterMigrate.sql").unlink()
    result = up(db, migrations_dir)
    assert 5 == result.returncode, result.stderr[-2000:]
    assert f"repair --forget {OWED}" in result.find("error")[0]["error"]
    assert [("callback", "failed")] == owed_rows(db)
    assert 7 == cmd("check", db, migrations_dir).returncode


def test_a_run_stopped_between_migrations_owes_after_migrate(db: TestDatabase, migrations_dir: Path) -> None:
    """The debt is written before the run's first change: a failing afterEachMigrate after a migration recorded on
    its own (no transaction) leaves the run owing afterMigrate, which the next plain `up` runs."""
    write(migrations_dir, "001_a.sql", "-- premigrate:no-transaction\nCREATE TABLE a (id INTEGER);\n")
    write(migrations_dir, "afterEachMigrate.sql", "SELECT * FROM no_such_table;\n")
    write(migrations_dir, "afterMigrate.sql", LOG)
    failed = up(db, migrations_dir)
    assert 4 == failed.returncode, failed.stderr[-2000:]
    assert ["1"] == [r["migration_id"] for r in db.history() if r["kind"] != "callback"]
    assert [("callback", "in_progress")] == owed_rows(db)
    (migrations_dir / "afterEachMigrate.sql").unlink()
    again = up(db, migrations_dir)
    assert 0 == again.returncode, again.stderr[-2000:]
    assert (1, []) == (ran(db), owed_rows(db))


def test_a_callback_row_of_a_newer_premigrate_is_refused(db: TestDatabase, migrations_dir: Path) -> None:
    """Only premigrate:afterMigrate is a debt this premigrate can pay; another row of kind `callback` is one it does
    not know, refused as such (exit 5) rather than taken for the afterMigrate debt."""
    one_migration(migrations_dir)
    assert 0 == up(db, migrations_dir).returncode
    db.execute(f"INSERT INTO {db.table} SELECT 'premigrate:afterDown', version, description, kind, script, checksum, "
               "applied_at, execution_ms, applied_by, state, statements_done, statements_total, statement_started, "
               f"statement_hashes, error, '99.0' FROM {db.table} WHERE migration_id = '1'")
    db.execute(f"UPDATE {db.table} SET kind = 'callback' WHERE migration_id = 'premigrate:afterDown'")
    result = up(db, migrations_dir)
    assert 5 == result.returncode, result.stderr[-2000:]
    assert "kind 'callback'" in result.find("error")[0]["error"]


def stopped_inside(callback: str, db: TestDatabase, migrations_dir: Path) -> CliResult:
    """`up`, sent SIGTERM while `callback` runs a statement that never ends: only the signal stops it (SQLite's
    through the cancel hook, which the callbacks around the migrations once lacked, so that the run waited)."""
    write(migrations_dir, f"{callback}.sql", endless_sql(db.dialect) + "\n")
    live = LiveCli("up", "--dir", str(migrations_dir), env=db_env(db), cwd=migrations_dir.parent)
    try:
        live.wait_for_event("callback_started", where=lambda e: e.get("callback") == callback)
        live.proc.send_signal(signal.SIGTERM)
        return live.finish()
    finally:
        live.kill()


def test_a_stop_inside_after_migrate_leaves_it_owed(db: TestDatabase, migrations_dir: Path) -> None:
    one_migration(migrations_dir)
    stopped = stopped_inside("afterMigrate", db, migrations_dir)
    assert 143 == stopped.returncode, stopped.stderr[-2000:]
    assert [("callback", "in_progress")] == owed_rows(db)
    assert 7 == cmd("check", db, migrations_dir).returncode
    write(migrations_dir, "afterMigrate.sql", LOG)
    again = up(db, migrations_dir)
    assert 0 == again.returncode, again.stderr[-2000:]
    assert (1, []) == (ran(db), owed_rows(db))


def test_a_stop_inside_after_migrate_error_stops_its_statement(db: TestDatabase, migrations_dir: Path) -> None:
    """afterMigrateError runs after a failed migration: a signal stops its statement too."""
    one_migration(migrations_dir)
    write(migrations_dir, "002_bad.sql", "INSERT INTO no_such_table VALUES (1);\n")
    stopped = stopped_inside("afterMigrateError", db, migrations_dir)
    assert 143 == stopped.returncode, stopped.stderr[-2000:]


def test_repair_forget_drops_the_debt(db: TestDatabase, migrations_dir: Path) -> None:
    """The operator ran the callback's work by hand: `repair --forget premigrate:afterMigrate` drops the debt, and the
    next `up` runs nothing."""
    one_migration(migrations_dir)
    write(migrations_dir, "afterMigrate.sql", "INSERT INTO no_such_table VALUES (1);\n")
    assert 4 == up(db, migrations_dir).returncode
    forgot = cmd("repair", db, migrations_dir, "--forget", OWED)
    assert 0 == forgot.returncode, forgot.stderr[-2000:]
    assert "forgot the owed afterMigrate" in forgot.stdout
    assert [] == owed_rows(db)
    quiet = up(db, migrations_dir)
    assert (0, []) == (quiet.returncode, quiet.find("callback_started"))


@pytest.mark.parametrize("dialect", [pytest.param("mysql", id="mysql")])
def test_a_callback_that_leaves_a_transaction_open_is_refused(db: TestDatabase, migrations_dir: Path) -> None:
    """MySQL runs a callback statement by statement on the migration session: a transaction it opens and never ends
    would be rolled back when the session closes, after the run reported the callback done. Refused before any
    change."""
    one_migration(migrations_dir)
    write(migrations_dir, "afterMigrate.sql", "START TRANSACTION;\nCREATE TABLE IF NOT EXISTS cb_log (e INT);\n")
    result = up(db, migrations_dir)
    assert 5 == result.returncode, result.stderr[-2000:]
    assert "opens a transaction that the file never commits" in result.find("error")[0]["error"]
    assert [] == db.history()


def test_repair_report_names_the_debt(db: TestDatabase, migrations_dir: Path) -> None:
    """`repair` (the report) said "Nothing to repair" while check said 7: it names the debt and both ways out."""
    one_migration(migrations_dir)
    write(migrations_dir, "afterMigrate.sql", "INSERT INTO no_such_table VALUES (1);\n")
    assert 4 == up(db, migrations_dir).returncode
    text = cmd("repair", db, migrations_dir)
    assert 0 == text.returncode, text.stderr[-2000:]
    assert "Owed: afterMigrate failed" in text.stdout and f"repair --forget {OWED}" in text.stdout
    assert "Nothing to repair" not in text.stdout  # the debt is not nothing: it is up's to run
    document = json.loads(cmd("repair", db, migrations_dir, "--json").stdout)
    assert ["afterMigrate"] == [o["callback"] for o in document["callbacks_owed"]]
