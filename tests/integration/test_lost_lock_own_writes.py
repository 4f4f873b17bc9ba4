"""The runner lock is lost between the moment a command takes it and the moment it writes the history: `repair`
(--forget, --mark-applied, --realign-checksums) and `baseline` stop with exit 8 and write nothing, as `up` does
before each migration and each history write (tests/faults/test_lost_lock.py).

The lock session is ended (pg_terminate_backend / KILL, as an idle timeout, a reaper or a proxy would end it) right
after the command reads the history under the lock: the only reads between taking the lock and writing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from premigrate.cli import main
from premigrate.drivers import driver_class
from tests.support import TestDatabase

LOCK_LOST = 8


@pytest.fixture(params=["postgresql", "mysql"])
def db(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    database = TestDatabase.create(request.param, tmp_path)
    yield database
    database.drop()


def _lock_holders(db: TestDatabase) -> list[int]:
    if db.dialect == "postgresql":
        rows = db.query("SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                        "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s", (db.name,))
    else:
        key = f"premigrate:{db.name}:.premigrate_history"
        name = f"premigrate:{db.name[:35]}:{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        rows = [r for r in db.query("SELECT IS_USED_LOCK(%s)", (name,)) if r[0] is not None]
    return [int(r[0]) for r in rows]


def _end_lock_session(db: TestDatabase) -> None:
    holders = _lock_holders(db)
    assert len(holders) == 1, holders  # the command holds the lock now
    if db.dialect == "postgresql":
        db.query("SELECT pg_terminate_backend(%s, 5000)", (holders[0],))
    else:
        db.execute(f"KILL {holders[0]}")


def _run(db: TestDatabase, monkeypatch: pytest.MonkeyPatch, *args: str, lose_lock: bool) -> int:
    """`premigrate ARGS` in this process; with lose_lock, the lock session ends right after the first history read
    made while the command holds the runner lock."""
    cls: Any = driver_class(db.dialect)
    original = cls.read_history
    ended: list[bool] = []

    def read_history(self: Any, *a: Any, **k: Any) -> Any:
        rows = original(self, *a, **k)
        if lose_lock and not ended and _lock_holders(db):
            _end_lock_session(db)
            ended.append(True)
        return rows

    with monkeypatch.context() as patch:
        patch.setattr(cls, "read_history", read_history)
        return main(list(args) + ["--log-format", "json"], {"DATABASE_URL": db.url})


def _history(db: TestDatabase) -> list[tuple[str, str, str]]:
    return [(r["migration_id"], r["state"], r["checksum"]) for r in db.history()]


def _failed_run(db: TestDatabase, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A history with migration 2 recorded as failed (statement 2 of 2 failed; on PostgreSQL outside a transaction,
    where the row records it)."""
    head = "-- premigrate:no-transaction\n" if db.dialect == "postgresql" else ""
    (folder / "001_a.sql").write_text("CREATE TABLE a (id int);\n")
    (folder / "002_b.sql").write_text(head + "CREATE TABLE b (id int);\nINSERT INTO missing VALUES (1);\n")
    assert 4 == _run(db, monkeypatch, "up", "--dir", str(folder), lose_lock=False)
    assert ["applied", "failed"] == [state for _, state, _ in _history(db)]


@pytest.mark.parametrize("action", [["--forget", "2"], ["--mark-applied", "2"]])
def test_repair_of_a_failed_row(action: list[str], db: TestDatabase, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    _failed_run(db, tmp_path, monkeypatch)
    before = _history(db)

    code = _run(db, monkeypatch, "repair", *action, "--dir", str(tmp_path), lose_lock=True)

    assert (LOCK_LOST, before) == (code, _history(db))
    # With the lock kept, the same repair goes through: the refusal above was the lost lock's.
    assert 0 == _run(db, monkeypatch, "repair", *action, "--dir", str(tmp_path), lose_lock=False)
    assert before != _history(db)


def test_repair_realign_checksums(db: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (id int);\n")
    assert 0 == _run(db, monkeypatch, "up", "--dir", str(tmp_path), lose_lock=False)
    (tmp_path / "001_a.sql").write_text("-- a comment: the statements are unchanged\nCREATE TABLE a (id int);\n")
    before = _history(db)

    code = _run(db, monkeypatch, "repair", "--realign-checksums", "--dir", str(tmp_path), lose_lock=True)

    assert (LOCK_LOST, before) == (code, _history(db))
    assert 0 == _run(db, monkeypatch, "repair", "--realign-checksums", "--dir", str(tmp_path), lose_lock=False)
    assert before != _history(db)


def test_baseline(db: TestDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "001_a.sql").write_text("CREATE TABLE a (id int);\n")
    (tmp_path / "002_b.sql").write_text("CREATE TABLE b (id int);\n")
    db.execute("CREATE TABLE a (id int)")

    code = _run(db, monkeypatch, "baseline", "--version", "1", "--dir", str(tmp_path), lose_lock=True)

    assert LOCK_LOST == code
    assert [] == (_history(db) if db.table in db.tables() else [])
    assert 0 == _run(db, monkeypatch, "baseline", "--version", "1", "--dir", str(tmp_path), lose_lock=False)
    assert ["1"] == [migration_id for migration_id, _, _ in _history(db)]
