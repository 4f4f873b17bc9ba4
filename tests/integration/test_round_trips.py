"""What one migration costs on the wire: the round trips of `premigrate up` per migration (the drivers' public
statements_sent counter, over every session of the run), and the runner-lock checks that ride along with them.

The figure per migration is the difference between a run of 2N and a run of N migrations, divided by N, so the
run's fixed cost (connect, lock, history table, size measurements) drops out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from premigrate.cli import main
from premigrate.drivers import driver_class
from tests.support import TestDatabase

MIGRATION = "CREATE TABLE t{i} (id BIGINT PRIMARY KEY, name VARCHAR(100));\nCREATE INDEX t{i}_name ON t{i} (name);\n"


def _up(db: TestDatabase, folder: Path, monkeypatch: pytest.MonkeyPatch, *, checks: bool = False) -> tuple[int, int]:
    """Run `up` in this process; its exit code and the statements all its sessions sent (with `checks`: the
    runner-lock checks instead, held back to ride with other SQL or asked of the lock session)."""
    cls: Any = driver_class(db.dialect)
    drivers: list[Any] = []
    original = cls.connect.__func__
    original_check_later, original_lock_held = cls.check_later, cls.lock_held
    lock_checks = [0]

    def connect(klass: Any, *args: Any, **kwargs: Any) -> Any:
        driver = original(klass, *args, **kwargs)
        drivers.append(driver)
        return driver

    def check_later(self: Any, lost: Any) -> bool:
        held_back = bool(original_check_later(self, lost))
        lock_checks[0] += held_back
        return held_back

    def lock_held(self: Any, key: str) -> bool:
        lock_checks[0] += 1
        return bool(original_lock_held(self, key))

    with monkeypatch.context() as patch:
        patch.setattr(cls, "connect", classmethod(connect))
        patch.setattr(cls, "check_later", check_later)
        patch.setattr(cls, "lock_held", lock_held)
        code = main(["up", "--dir", str(folder), "--log-format", "json"], {"DATABASE_URL": db.url})
    return code, lock_checks[0] if checks else sum(d.statements_sent for d in drivers)


def _per_migration(db_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int = 3, *,
                   checks: bool = False) -> float:
    sent = []
    for count in (n, 2 * n):
        folder = tmp_path / f"m{count}"
        folder.mkdir()
        for i in range(1, count + 1):
            (folder / f"{i:03d}_t{i}.sql").write_text(MIGRATION.format(i=i))
        db = db_factory()
        code, statements = _up(db, folder, monkeypatch, checks=checks)
        assert 0 == code
        assert count == len(db.history())
        sent.append(statements)
    return (sent[1] - sent[0]) / n


def _factory(dialect: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    made: list[TestDatabase] = []

    def make() -> TestDatabase:
        made.append(TestDatabase.create(dialect, tmp_path))
        return made[-1]

    yield make
    for db in made:
        db.drop()


@pytest.fixture
def pg_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from _factory("postgresql", tmp_path)


@pytest.fixture
def mysql_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield from _factory("mysql", tmp_path)


def test_postgresql_migration_in_a_transaction_is_one_round_trip(pg_factory: Any, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Two statements in a transaction, in one message (engine/together.py): [session restore; BEGIN; SET LOCAL
    timeouts; statement 1; statement 2; identity reset; lock check; history INSERT; COMMIT] (the first migration's
    first message also carries a lock check; later ones rely on the previous COMMIT's). Statement by statement, with
    the record and COMMIT in a message of their own, it was three; sent one by one, with the lock checked on the
    lock session, ten."""
    assert 1 == _per_migration(pg_factory, tmp_path, monkeypatch)


def test_postgresql_lock_is_checked_once_per_migration(pg_factory: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The check that rides with the history write and COMMIT also stands for the check before the next
    migration's first statement (HeldLock.vouch): the commit answered it a moment before. A check is a pg_locks
    scan, a quarter of a millisecond of server time and more inside a transaction holding locks; it was two per
    migration."""
    assert 1 == _per_migration(pg_factory, tmp_path, monkeypatch, checks=True)


def test_postgresql_lost_lock_before_the_history_write_commits_nothing(pg_factory: Any, tmp_path: Path) -> None:
    """The runner lock's session is terminated while a migration's transaction is open: the check sent with the
    history write fails, the migration rolls back (its table and row are not there), no later migration starts,
    and the run ends with exit 8. (pg_terminate_backend waits until the session is gone: until then it still
    holds the lock, and a check that sees it held is right.)"""
    db = pg_factory()
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001_a.sql").write_text("CREATE TABLE a (id int);\n")
    (folder / "002_b.sql").write_text(
        "CREATE TABLE b (id int);\n"
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database());\n")
    (folder / "003_c.sql").write_text("CREATE TABLE c (id int);\n")

    code = main(["up", "--dir", str(folder), "--log-format", "json"], {"DATABASE_URL": db.url})

    assert (8, ["1"], {"a"}) == (code, [r["migration_id"] for r in db.history()], db.tables() - {db.table})


def test_mysql_migration_statement_by_statement_is_three_round_trips(mysql_factory: Any, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Two DDL statements, each recorded as it starts and ends: statement 1, "1 done, 2 started", statement 2, and
    the final row written together with the next migration's first row in one statement. That write, answered by
    the lock session, is the lock check before the next migration (HeldLock.vouch); plain DDL leaves nothing to
    restore in the session and cannot switch the current database, so neither COM_RESET_CONNECTION with its SET
    nor SELECT DATABASE() is sent (model/session_effects.py). It was seven with those three, and thirteen with
    SET NAMES, SET autocommit, the timeouts and the lock check sent apart and the final write as START
    TRANSACTION, UPDATE, INSERT, COMMIT."""
    assert 3 == _per_migration(mysql_factory, tmp_path, monkeypatch)


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_a_held_back_lock_check_fails_the_next_message(dialect: str, tmp_path: Path) -> None:
    """Driver.check_later: while the lock session holds the lock, the check goes out with the next SQL and passes;
    once that session is gone, the next SQL raises the caller's lost-lock error instead of running."""
    from premigrate.drivers.base import DriverSettings
    from premigrate.errors import LockLost
    from premigrate.model.dsn import parse_url

    db = TestDatabase.create(dialect, tmp_path)
    opened: list[Any] = []
    try:
        def connect() -> Any:
            opened.append(driver_class(dialect).connect(parse_url(db.url), DriverSettings(table="premigrate_history")))
            return opened[-1]

        holder, runner = connect(), connect()
        assert holder.try_lock("k")
        runner.guard_writes("k", holder.session_id())
        assert runner.check_later(lambda: LockLost("lost"))
        runner.set_timeouts(5, None, local=False)  # sent with the check: the lock is held
        holder.close()
        assert runner.check_later(lambda: LockLost("lost"))
        with pytest.raises(LockLost):
            for _ in range(50):  # the server drops a closed session's locks as soon as it notices the close
                runner.set_timeouts(5, None, local=False)
                assert runner.check_later(lambda: LockLost("lost"))
                import time
                time.sleep(0.1)
        assert [(1,)] == runner.fetch("SELECT 1")  # the session is usable after the failed check
    finally:
        for driver in opened:
            driver.close()
        db.drop()
