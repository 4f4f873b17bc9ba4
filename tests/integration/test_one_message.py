"""A PostgreSQL migration in one message (engine/together.py, drivers/postgres_together.py): its statements, the
lock check, its history row and COMMIT go to the server together, and what the run reports is what statement by
statement reported: the failed statement and its line, the rows per statement, how long it ran, what committed.

Each test also checks that the migration did go in one batch (send_together was called), so that it tests that
path and not the statement-by-statement one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from premigrate.cli import main
from tests.support import TestDatabase


@pytest.fixture
def db(pg_db: TestDatabase) -> TestDatabase:
    return pg_db


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

@contextmanager
def _table_t_locked_for_a_while(db: TestDatabase) -> Iterator[None]:
    """Table t, created, and held in ACCESS EXCLUSIVE mode by another session for 1.5 s."""
    db.execute("CREATE TABLE t (id int)")
    holder = db.connect()
    holder.autocommit = False
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    release = threading.Timer(1.5, holder.rollback)
    release.start()
    try:
        yield
    finally:
        release.join()
        holder.close()



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
    # A syntax error in statement 3, after statements 1 and 2 ran: the result that failed is statement 3's, its
    # position inside it names the line, and statements 1 and 2 roll back with it.
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
    with _table_t_locked_for_a_while(db):
        folder = _folder(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\nALTER TABLE t ADD COLUMN c int;\n"})
        started = time.monotonic()
        code, events = _up(db, folder, capfd, "--ddl-lock-timeout", "300ms", "--lock-retries", "20")
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


# -- the next migration sent ahead of the answer (drivers/postgres_together.py) ----------------------------------

def _started_and_applied(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["event"], e["version"]) for e in events if e["event"] in ("migration_started", "migration_applied")]


def test_the_next_migration_goes_out_before_the_answer(db: TestDatabase, tmp_path: Path,
                                                       capfd: pytest.CaptureFixture[str],
                                                       sent_together: list[int]) -> None:
    """Migrations 2 and 3 are each sent while the one before them is in flight; the log still tells them one
    after the other, and each history row has its own server-taken time, in order."""
    folder = _folder(tmp_path, {f"00{i}_t{i}.sql": f"CREATE TABLE t{i} (id int);\n" for i in (1, 2, 3)})
    code, events = _up(db, folder, capfd)
    assert (0, [0, 1, 1]) == (code, sent_together)
    assert [("migration_started", "1"), ("migration_applied", "1"), ("migration_started", "2"),
            ("migration_applied", "2"), ("migration_started", "3"), ("migration_applied", "3")] == \
        _started_and_applied(events)
    rows = db.query(f"SELECT migration_id, applied_at FROM {db.table} ORDER BY applied_at")
    assert ["1", "2", "3"] == [r[0] for r in rows]


def test_a_failed_statement_stops_the_migration_sent_behind_it(db: TestDatabase, tmp_path: Path,
                                                                capfd: pytest.CaptureFixture[str],
                                                                sent_together: list[int]) -> None:
    """Migration 3 is in flight when migration 2's statement 2 fails: the failure names that statement, and
    nothing of migration 3 ran (no table, no row, no migration_started)."""
    folder = _folder(tmp_path, {
        "001_a.sql": "CREATE TABLE a (id int);\n",
        "002_b.sql": "CREATE TABLE b (id int);\nINSERT INTO a VALUES ('not a number');\n",
        "003_c.sql": "CREATE TABLE c (id int);\n",
    })
    code, events = _up(db, folder, capfd)
    failed = _event(events, "migration_failed")
    assert (4, "2", 2, 2, "22P02") == (code, failed["version"], failed["statement"], failed["line"],
                                        failed["sqlstate"])
    assert [1, 1] == sent_together[1:]  # 2 and 3 each went out behind another
    assert (["1"], {"a"}) == ([r["migration_id"] for r in db.history()], db.tables() - {db.table})
    assert ("migration_started", "3") not in _started_and_applied(events)


def test_a_failed_commit_stops_the_migration_sent_behind_it(db: TestDatabase, tmp_path: Path,
                                                             capfd: pytest.CaptureFixture[str],
                                                             sent_together: list[int]) -> None:
    """Migration 2 fails at its COMMIT (a deferred foreign key): that ends its transaction, so the session is
    idle again when migration 3's batch, already sent, comes up. Its guard finds no row of migration 2, and
    migration 3 does not run: its table is not there and it has no row."""
    folder = _folder(tmp_path, {
        "001_p.sql": "CREATE TABLE p (id int PRIMARY KEY);\n",
        "002_child.sql": "CREATE TABLE child (p int REFERENCES p DEFERRABLE INITIALLY DEFERRED);\n"
                         "INSERT INTO child VALUES (42);\n",
        "003_c.sql": "CREATE TABLE c (id int);\n",
    })
    code, events = _up(db, folder, capfd)
    assert 3 == len(sent_together)  # migration 3 was sent
    assert 4 == code
    assert "child_p_fkey" in json.dumps(events)  # the COMMIT failed: premigrate's own SQL, reported as it is
    assert (["1"], {"p"}) == ([r["migration_id"] for r in db.history()], db.tables() - {db.table})
    assert ("migration_started", "3") not in _started_and_applied(events)


def test_a_lock_timeout_with_the_next_migration_in_flight(db: TestDatabase, tmp_path: Path,
                                                          capfd: pytest.CaptureFixture[str],
                                                          sent_together: list[int]) -> None:
    """Migration 1 meets a lock timeout while migration 2 is in flight behind it: migration 2 does not run then;
    migration 1 is retried statement by statement, and migration 2 is sent again after it: each applied once."""
    with _table_t_locked_for_a_while(db):
        folder = _folder(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);\nALTER TABLE t ADD COLUMN c int;\n",
                                    "002_b.sql": "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n"})
        code, events = _up(db, folder, capfd, "--ddl-lock-timeout", "300ms", "--lock-retries", "20")
    assert (0, "1", 2) == (code, _event(events, "lock_retry")["version"], _event(events, "lock_retry")["statement"])
    assert [0, 1, 0] == sent_together  # 1, then 2 ahead of its answer; 2 again after 1's retry
    assert ["1", "2"] == [r["migration_id"] for r in db.history()]
    assert [(1,)] == db.query("SELECT count(*) FROM b")


def test_a_statement_the_server_reads_as_two_runs_statement_by_statement(db: TestDatabase, tmp_path: Path,
                                                                         capfd: pytest.CaptureFixture[str],
                                                                         sent_together: list[int],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch item may hold one command only. Should the splitter ever read two commands as one statement, the
    server refuses that item before it runs; the migration then runs again statement by statement (each a
    message of its own, which may hold two) and applies once."""
    import premigrate.model.modes as modes
    from premigrate.model.sql import Statement

    def whole_file(migration: Any, dialect: str, *, down: bool = False) -> list[Statement]:
        return [Statement(text=migration.up_sql.strip().rstrip(";"), line=1)]

    monkeypatch.setattr(modes, "split_migration", whole_file)
    folder = _folder(tmp_path, {"001_a.sql": "CREATE TABLE a (id int); INSERT INTO a VALUES (1); "
                                             "CREATE TABLE b (id int);\n"})
    code, events = _up(db, folder, capfd)
    assert (0, 1) == (code, len(sent_together))
    assert ({"a", "b"}, [(1,)]) == (db.tables() - {db.table}, db.query("SELECT count(*) FROM a"))
    assert ["1"] == [r["migration_id"] for r in db.history()]
    assert [] == [e for e in events if e["event"] == "migration_failed"]


def test_a_migration_sent_ahead_that_committed_is_reported_when_the_run_stops(
        db: TestDatabase, tmp_path: Path, capfd: pytest.CaptureFixture[str], sent_together: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The run stops (here: a lost connection, simulated as the run turns to migration 2) while migration 2's
    batch is in flight: its answer is read, and as it committed, it is logged applied and counted, with a note."""
    from premigrate.engine.executor import Executor
    from premigrate.errors import ConnectionLost

    original = Executor.apply_step
    calls: list[str] = []

    def stop_at_the_second(self: Executor, step: Any, following: Any) -> int:
        calls.append(step.migration.id)
        if len(calls) == 2:
            raise ConnectionLost("simulated: lost the connection as migration 2 comes up")
        return original(self, step, following)

    monkeypatch.setattr(Executor, "apply_step", stop_at_the_second)
    folder = _folder(tmp_path, {f"00{i}_t{i}.sql": f"CREATE TABLE t{i} (id int);\n" for i in (1, 2, 3)})
    code, events = _up(db, folder, capfd)
    assert (3, [0, 1]) == (code, sent_together)
    applied = [e for e in events if e["event"] == "migration_applied"]
    assert [("1", None), ("2", "committed before the run stopped")] == [(e["version"], e.get("note")) for e in applied]
    assert 2 == _event(events, "summary")["applied"]
    assert (["1", "2"], {"t1", "t2"}) == ([r["migration_id"] for r in db.history()], db.tables() - {db.table})
