"""drivers/mysql_send.execute_releasing on MariaDB: the events a run held back are written after the statement is
sent and before its answer is read, while the server runs it; the answer is read as PyMySQL reads it, and a failure
to write them neither loses the answer nor leaves the session out of step. And `up` writes every event of a run once,
in the run's order."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pymysql
import pytest

from premigrate import held_events
from premigrate.cli import main
from premigrate.drivers.mysql_send import execute_releasing
from tests.support import TestDatabase

LIVENESS_S = 30.0


def _running(watcher: Any, thread_id: int) -> str | None:
    with watcher.cursor() as cur:
        cur.execute("SELECT info FROM information_schema.processlist WHERE id = %s", (thread_id,))
        row = cur.fetchone()
    return row[0] if row else None


def test_held_events_are_written_while_the_server_runs_the_statement(mariadb: TestDatabase) -> None:
    conn, watcher = mariadb.connect(), mariadb.connect()
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


def test_a_failure_to_write_them_is_returned_and_the_session_stays_in_step(mariadb: TestDatabase) -> None:
    conn = mariadb.connect()
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


def test_a_statement_that_is_never_sent_is_still_looked_at(mariadb: TestDatabase) -> None:
    """The session is gone before the send: the driver's look at the statement still happens, once."""
    conn = mariadb.connect()
    screened: list[str] = []
    conn.close()
    with pytest.raises(pymysql.err.InterfaceError), conn.cursor() as cur:
        execute_releasing(conn, cur, "USE other", lambda: screened.append("looked"))
    assert ["looked"] == screened


def _up(db: TestDatabase, tmp_path: Path, capfd: pytest.CaptureFixture[str], files: dict[str, str]
        ) -> tuple[int, list[dict[str, Any]]]:
    """`up` in this process over a folder of `files`: its exit code and its JSON events."""
    folder = tmp_path / "m"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    code = main(["up", "--dir", str(folder), "--log-format", "json"], {"DATABASE_URL": db.url})
    return code, [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]


def test_up_writes_each_event_once_in_the_runs_order(mariadb: TestDatabase, tmp_path: Path,
                                                     capfd: pytest.CaptureFixture[str]) -> None:
    files = {f"{i:03d}_t{i}.sql": f"CREATE TABLE t{i} (id int);\nCREATE INDEX t{i}_id ON t{i} (id);\n"
             for i in range(1, 4)}
    code, events = _up(mariadb, tmp_path, capfd, files | {"004_bad.sql": "CREATE TABLE t4 (id int);\nSELEC 1;\n"})
    assert 4 == code
    flow = [(e["event"], e.get("version")) for e in events
            if e["event"] in ("migration_started", "migration_applied", "migration_failed")]
    assert [("migration_started", "1"), ("migration_applied", "1"), ("migration_started", "2"),
            ("migration_applied", "2"), ("migration_started", "3"), ("migration_applied", "3"),
            ("migration_started", "4"), ("migration_failed", "4")] == flow
    assert not held_events.pending()


def test_the_last_migration_applied_comes_before_the_lock_is_released(mariadb: TestDatabase, tmp_path: Path,
                                                                       capfd: pytest.CaptureFixture[str]) -> None:
    """No statement follows the last migration: its held migration_applied is written when the run's steps end."""
    code, events = _up(mariadb, tmp_path, capfd, {f"{i:03d}_t{i}.sql": f"CREATE TABLE t{i} (id int);\n"
                                                   for i in range(1, 3)})
    assert 0 == code
    names = [e["event"] for e in events]
    assert ["migration_started", "migration_applied", "migration_started", "migration_applied", "lock_released"] == [
        n for n in names if n.startswith("migration_") or n == "lock_released"]
    assert not held_events.pending()


def test_the_rows_after_a_statement_are_made_while_the_server_runs_it(
        mariadb: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """engine/stepwise.py: the history rows to write once statement k is done (k done, k+1 started; after the last
    one the final row's hashes and the next migration's first row) are made while the server runs statement k."""
    from premigrate.engine.stepwise import StepwiseRun

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001_slow.sql").write_text("DO SLEEP(0.5);\nCREATE TABLE t1 (id int);\n")
    (folder / "002_next.sql").write_text("CREATE TABLE t2 (id int);\n")
    watcher = mariadb.connect()
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
        assert 0 == main(["up", "--dir", str(folder), "--log-format", "json"], {"DATABASE_URL": mariadb.url})
    finally:
        watcher.close()
    assert ["DO SLEEP(0.5)"] == running
    assert ["1", "2"] == [r["version"] for r in mariadb.history()]
