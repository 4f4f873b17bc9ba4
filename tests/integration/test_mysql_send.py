"""drivers/mysql_send.execute_releasing on MariaDB: the events a run held back are written after the statement is
sent and before its answer is read, while the server runs it; the answer is read as PyMySQL reads it, and a failure
to write them neither loses the answer nor leaves the session out of step. And `up` writes every event of a run once,
in the run's order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from premigrate import held_events
from premigrate.cli import main
from premigrate.drivers.mysql_send import execute_releasing
from tests.support import TestDatabase

LIVENESS_S = 30.0


@pytest.fixture
def mysql_db(tmp_path: Path) -> Iterator[TestDatabase]:
    db = TestDatabase.create("mysql", tmp_path)
    try:
        yield db
    finally:
        db.drop()


def _running(watcher: Any, thread_id: int) -> str | None:
    with watcher.cursor() as cur:
        cur.execute("SELECT info FROM information_schema.processlist WHERE id = %s", (thread_id,))
        row = cur.fetchone()
    return row[0] if row else None


def test_held_events_are_written_while_the_server_runs_the_statement(mysql_db: TestDatabase) -> None:
    conn, watcher = mysql_db.connect(), mysql_db.connect()
    try:
        seen: list[str | None] = []
        screened: list[int] = []

        def look(event: str) -> None:  # the held event: what is the session running right now?
            deadline = time.monotonic() + LIVENESS_S
            while (info := _running(watcher, conn.thread_id())) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            seen.append(info)

        held_events.hold(look, "migration_started", {})
        later = held_events.Later(lambda: _running(watcher, conn.thread_id()), overlap=True)
        with conn.cursor() as cur:
            assert execute_releasing(conn, cur, "SELECT SLEEP(1), 42", lambda: screened.append(len(seen))) is None
            assert ((0, 42),) == cur.fetchall()  # the answer, read as PyMySQL reads it
        assert ["SELECT SLEEP(1), 42"] == seen
        assert [0] == screened  # the driver's look at the statement: once, after the send, before the events
        assert "SELECT SLEEP(1), 42" == later.get()  # the run's Later work, done while the statement ran
        assert not held_events.pending()
    finally:
        conn.close()
        watcher.close()


def test_a_failure_to_write_them_is_returned_and_the_session_stays_in_step(mysql_db: TestDatabase) -> None:
    conn = mysql_db.connect()
    try:
        def broken(event: str) -> None:
            raise OSError("stderr closed")

        held_events.hold(broken, "migration_applied", {})
        with conn.cursor() as cur:
            failed = execute_releasing(conn, cur, "SELECT 7", lambda: None)
            assert ((7,),) == cur.fetchall()
            assert isinstance(failed, OSError)
            cur.execute("SELECT 8")  # the next statement is answered as usual
            assert ((8,),) == cur.fetchall()
        assert "_read_query_result" not in conn.__dict__
    finally:
        conn.close()


def test_a_statement_that_is_never_sent_is_still_looked_at(mysql_db: TestDatabase) -> None:
    """The session is gone before the send: the driver's look at the statement still happens, once."""
    conn = mysql_db.connect()
    screened: list[str] = []
    conn.close()
    with pytest.raises(pymysql.err.InterfaceError), conn.cursor() as cur:
        execute_releasing(conn, cur, "USE other", lambda: screened.append("looked"))
    assert ["looked"] == screened


def test_up_writes_each_event_once_in_the_runs_order(mysql_db: TestDatabase, tmp_path: Path,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    for i in range(1, 4):
        (folder / f"{i:03d}_t{i}.sql").write_text(f"CREATE TABLE t{i} (id int);\nCREATE INDEX t{i}_id ON t{i} (id);\n")
    (folder / "004_bad.sql").write_text("CREATE TABLE t4 (id int);\nSELEC 1;\n")
    assert 4 == main(["up", "--dir", str(folder), "--log-format", "json"], {"DATABASE_URL": mysql_db.url})
    events = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    flow = [(e["event"], e.get("version")) for e in events
            if e["event"] in ("migration_started", "migration_applied", "migration_failed")]
    assert [("migration_started", "1"), ("migration_applied", "1"), ("migration_started", "2"),
            ("migration_applied", "2"), ("migration_started", "3"), ("migration_applied", "3"),
            ("migration_started", "4"), ("migration_failed", "4")] == flow
    assert not held_events.pending()


def test_the_last_migration_applied_comes_before_the_lock_is_released(mysql_db: TestDatabase, tmp_path: Path,
                                                                       capfd: pytest.CaptureFixture[str]) -> None:
    """No statement follows the last migration: its held migration_applied is written when the run's steps end."""
    folder = tmp_path / "m"
    folder.mkdir()
    for i in range(1, 3):
        (folder / f"{i:03d}_t{i}.sql").write_text(f"CREATE TABLE t{i} (id int);\n")
    assert 0 == main(["up", "--dir", str(folder), "--log-format", "json"], {"DATABASE_URL": mysql_db.url})
    names = [json.loads(line)["event"] for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    assert ["migration_started", "migration_applied", "migration_started", "migration_applied", "lock_released"] == [
        n for n in names if n.startswith("migration_") or n == "lock_released"]
    assert not held_events.pending()


def test_the_rows_after_a_statement_are_made_while_the_server_runs_it(
        mysql_db: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """engine/stepwise.py: the history rows to write once statement k is done (k done, k+1 started; after the last
    one the final row's hashes and the next migration's first row) are made while the server runs statement k."""
    from premigrate.engine.stepwise import StepwiseRun

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001_slow.sql").write_text("DO SLEEP(0.5);\nCREATE TABLE t1 (id int);\n")
    (folder / "002_next.sql").write_text("CREATE TABLE t2 (id int);\n")
    watcher = mysql_db.connect()
    running: list[str | None] = []
    original = StepwiseRun._after

    def after(self: StepwiseRun, *args: Any, **kwargs: Any) -> Any:
        if not running:  # statement 1 of the first migration: is the server running it right now?
            session = self.executor.driver.session_id()
            deadline = time.monotonic() + 5
            while (info := _running(watcher, session)) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            running.append(info)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StepwiseRun, "_after", after)
    try:
        assert 0 == main(["up", "--dir", str(folder), "--log-format", "json"], {"DATABASE_URL": mysql_db.url})
    finally:
        watcher.close()
    assert ["DO SLEEP(0.5)"] == running
    assert ["1", "2"] == [r["version"] for r in mysql_db.history()]
