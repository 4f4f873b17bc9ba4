"""A PostgreSQL migration in one message (engine/together.py, drivers/postgres_together.py): its statements, the
lock check, its history row and COMMIT go to the server together, and what the run reports is what statement by
statement reported: the failed statement and its line, the rows per statement, how long it ran, what committed.

Each test also checks that the migration did go in one message (commit_together was called), so that it tests that
path and not the statement-by-statement one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from premigrate.cli import main
from premigrate.drivers.postgres import PostgresDriver
from tests.support import TestDatabase


@pytest.fixture
def db(tmp_path: Path) -> Iterator[TestDatabase]:
    database = TestDatabase.create("postgresql", tmp_path)
    yield database
    database.drop()


@pytest.fixture
def sent_together(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many messages went out through commit_together."""
    calls: list[int] = []
    original = PostgresDriver.commit_together

    def counting(self: PostgresDriver) -> list[int | None]:
        calls.append(1)
        return original(self)

    monkeypatch.setattr(PostgresDriver, "commit_together", counting)
    return calls


def _up(db: TestDatabase, folder: Path, capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(["up", "--dir", str(folder), "--log-format", "json", *args], {"DATABASE_URL": db.url})
    events = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    return code, events


def _folder(tmp_path: Path, files: dict[str, str]) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _event(events: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [e for e in events if e["event"] == name]
    assert found, f"no {name} event in {[e['event'] for e in events]}"
    return found[-1]


def test_a_failed_statement_is_named_by_the_results_before_it(db: TestDatabase, tmp_path: Path,
                                                              capfd: pytest.CaptureFixture[str],
                                                              sent_together: list[int]) -> None:
    """A unique violation carries no position: the number of results before the error names statement 3 (line
    5), and nothing of the migration is left (statement 1's table is gone with the rollback)."""
    folder = _folder(tmp_path, {
        "001_a.sql": "CREATE TABLE a (id int PRIMARY KEY);\n",
        "002_b.sql": "CREATE TABLE b (id int PRIMARY KEY);\nINSERT INTO a\n  VALUES (1);\n\n"
                     "INSERT INTO a VALUES (1);\nCREATE TABLE c (id int);\n",
    })
    code, events = _up(db, folder, capfd)
    failed = _event(events, "migration_failed")
    assert (4, 3, 4, 5, "23505") == (code, failed["statement"], failed["statements"], failed["line"],
                                      failed["sqlstate"])
    assert "LINE" not in failed["error"]
    assert (["1"], {"a"}) == ([r["migration_id"] for r in db.history()], db.tables() - {db.table})
    assert [] == db.query("SELECT id FROM a")
    assert 2 == len(sent_together)


@pytest.mark.parametrize(("text", "statement", "line", "sqlstate"), [
    # An unknown column, found before the statement runs, with a position in the whole message: statement 2, and
    # the line of the file the column is on (line 4; the statement starts on line 2).
    pytest.param("CREATE TABLE a (id int);\nSELECT id\n  FROM a\n  WHERE nope = 1;\n", 2, 4, "42703",
                 id="analysis"),
    # The server parses the whole message first: a syntax error in statement 3 fails the message with no result
    # before it, and only its position names statement 3 and its line.
    pytest.param("CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\nINSERT INTO a\nVALUES (2,;\n", 3, 4, "42601",
                 id="syntax"),
])
def test_an_error_with_a_position_is_placed_in_its_statement(db: TestDatabase, tmp_path: Path,
                                                             capfd: pytest.CaptureFixture[str],
                                                             sent_together: list[int], text: str, statement: int,
                                                             line: int, sqlstate: str) -> None:
    """An error the server places in the message is placed in its statement, with that statement's line."""
    code, events = _up(db, _folder(tmp_path, {"001_a.sql": text}), capfd)
    failed = _event(events, "migration_failed")
    assert (4, statement, line, sqlstate) == (code, failed["statement"], failed["line"], failed["sqlstate"])
    assert (set(), 1) == (db.tables() - {db.table}, len(sent_together))


def test_rows_per_statement_and_the_server_measured_time(db: TestDatabase, tmp_path: Path,
                                                         capfd: pytest.CaptureFixture[str],
                                                         sent_together: list[int]) -> None:
    """The rows each statement affected come from its own result; execution_ms is the server's measure of the
    message (it holds a 0.3 s sleep), not the time before it was sent."""
    folder = _folder(tmp_path, {
        "001_a.sql": "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1), (2), (3);\nUPDATE a SET id = id + 1 "
                     "WHERE id > 1;\nSELECT pg_sleep(0.3);\n",
    })
    code, events = _up(db, folder, capfd)
    applied = _event(events, "migration_applied")
    assert (0, [None, 3, 2, 1], 6) == (code, applied["rows_affected_per_statement"], applied["rows_affected"])
    [(execution_ms,)] = db.query(f"SELECT execution_ms FROM {db.table}")
    assert 300 <= execution_ms < 30_000
    assert 1 == len(sent_together)


def test_a_trailing_line_comment_does_not_swallow_the_next_statement(db: TestDatabase, tmp_path: Path,
                                                                     capfd: pytest.CaptureFixture[str],
                                                                     sent_together: list[int]) -> None:
    """A statement that ends in a `--` comment is followed by a newline before the separator: the next statement
    is not commented out."""
    folder = _folder(tmp_path, {
        "001_a.sql": "CREATE TABLE a (id int) -- the first\n;\nCREATE TABLE b (id int); -- the second\n"
                     "CREATE TABLE c (id int) -- the last, at the end of the file",
    })
    code, events = _up(db, folder, capfd)
    assert (0, {"a", "b", "c"}) == (code, db.tables() - {db.table})
    assert 3 == _event(events, "migration_applied")["statements"]
    assert 1 == len(sent_together)


def test_a_lock_timeout_names_the_blocked_statement_and_the_retry_applies(db: TestDatabase, tmp_path: Path,
                                                                          capfd: pytest.CaptureFixture[str],
                                                                          sent_together: list[int]) -> None:
    """Statement 2 waits for a lock another session holds: the lock timeout fails the message, the retry event
    names statement 2 (by the results before the error), and the retry, statement by statement once the lock is
    free, applies the migration once."""
    db.execute("CREATE TABLE t (id int)")
    holder = db.connect()
    holder.autocommit = False
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    release = threading.Timer(1.5, holder.rollback)
    release.start()
    try:
        folder = _folder(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\nALTER TABLE t ADD COLUMN c int;\n"})
        started = time.monotonic()
        code, events = _up(db, folder, capfd, "--ddl-lock-timeout", "300ms", "--lock-retries", "20")
    finally:
        release.join()
        holder.close()
    retry = _event(events, "lock_retry")
    assert (0, 2, "55P03") == (code, retry["statement"], retry["sqlstate"])
    assert time.monotonic() - started >= 1.0  # it did wait for the holder
    assert ["1"] == [r["migration_id"] for r in db.history()]
    assert {"a", "t"} == db.tables() - {db.table}
    assert 1 == len(sent_together)  # the first attempt only


def test_callbacks_keep_a_migration_statement_by_statement(db: TestDatabase, tmp_path: Path,
                                                           capfd: pytest.CaptureFixture[str],
                                                           sent_together: list[int]) -> None:
    """A callback script runs between a migration's statements on the client: such a run sends nothing together."""
    folder = _folder(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\n"})
    callbacks = tmp_path / "callbacks"
    callbacks.mkdir()
    (callbacks / "beforeEachMigrate.sql").write_text("CREATE TABLE IF NOT EXISTS seen (id int);\n")
    code, _ = _up(db, folder, capfd, "--callbacks", str(callbacks))
    assert (0, {"a", "seen"}, 0) == (code, db.tables() - {db.table}, len(sent_together))


def test_a_large_migration_runs_statement_by_statement(db: TestDatabase, tmp_path: Path,
                                                       capfd: pytest.CaptureFixture[str],
                                                       sent_together: list[int]) -> None:
    """Over MAX_STATEMENTS statements, a migration is not sent in one message (the server parses a message whole
    before it runs any of it, and a large file's progress reports should name the running statement)."""
    from premigrate.engine.together import MAX_STATEMENTS

    small = "CREATE TABLE a (id int);\n" + "INSERT INTO a VALUES (1);\n" * (MAX_STATEMENTS - 1)
    large = "CREATE TABLE b (id int);\n" + "INSERT INTO b VALUES (1);\n" * MAX_STATEMENTS
    code, _ = _up(db, _folder(tmp_path, {"001_small.sql": small, "002_large.sql": large}), capfd)
    assert (0, 1) == (code, len(sent_together))
    assert [(MAX_STATEMENTS - 1,), (MAX_STATEMENTS,)] == [
        db.query("SELECT count(*) FROM a")[0], db.query("SELECT count(*) FROM b")[0]]


def test_the_table_lock_keeps_a_migration_statement_by_statement(db: TestDatabase, tmp_path: Path,
                                                                 capfd: pytest.CaptureFixture[str],
                                                                 sent_together: list[int]) -> None:
    """Under the table runner lock each history write is fenced by a query of its own in the transaction: such a
    run sends nothing together, and applies as before."""
    folder = _folder(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"})
    code, _ = _up(db, folder, capfd, "--lock-mode", "table")
    assert (0, {"a", "b"}, 0) == (code, db.tables() - {db.table, f"{db.table}_lock"}, len(sent_together))
