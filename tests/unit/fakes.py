"""An in-memory database for the executor's unit tests (pip-tools' FakeRepository idea): a driver that keeps its
history rows and the statements that took effect in lists, with transactions, and fails the statements it is told to.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from premigrate.drivers.base import HistoryRow, SqlError


def lock_timeout() -> SqlError:
    return SqlError("canceling statement due to lock timeout", code="55P03", code_field="sqlstate",
                    lock_contention=True)


def syntax_error() -> SqlError:
    return SqlError('relation "nope" does not exist', code="42P01", code_field="sqlstate")


class FakeDriver:
    """One session to an in-memory database.

    `effects` lists the statements that took effect, `rows` the history table (by migration id), `writes` every
    history write in order. `fail` maps a statement's text to what running it raises next (one entry per
    attempt, used up in order). `ddl_commits` (MySQL): a rollback keeps the statements' effects.
    """

    dialect = "postgresql"
    code_field = "sqlstate"
    supports_schema = True
    table_names_fold_case = False

    def __init__(self, *, transactional_ddl: bool = True, local_timeouts: bool = True,
                 invalid_indexes: bool = False) -> None:
        self.transactional_ddl = transactional_ddl
        self.local_timeouts = local_timeouts
        self.invalid_indexes = invalid_indexes
        self.effects: list[str] = []
        self.rows: dict[str, HistoryRow] = {}
        self.writes: list[tuple[str, HistoryRow | str]] = []
        self.fail: dict[str, list[BaseException]] = {}
        self.broken = False  # every call raises, as on a session whose connection is gone
        self.timeouts: list[tuple[float | None, float | None, bool]] = []
        self.resets = 0
        self.dropped_indexes: list[str] = []
        self.switched_to: str | None = None  # what database_changed() reports (MySQL `USE`)
        self._snapshot: tuple[list[str], dict[str, HistoryRow]] | None = None

    # -- transactions -------------------------------------------------------------------------------------------

    def begin(self) -> None:
        assert self._snapshot is None, "a transaction is already open"
        self._snapshot = (list(self.effects), dict(self.rows))
        self.writes.append(("begin", ""))

    def commit(self) -> None:
        self._snapshot = None
        self.writes.append(("commit", ""))

    def rollback(self) -> None:
        if self._snapshot is None:
            return
        effects, rows = self._snapshot
        if self.transactional_ddl:
            self.effects = effects
        self.rows = rows
        self._snapshot = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.begin()
        try:
            yield
            self.commit()
        except BaseException:
            self.rollback()
            raise

    @property
    def in_transaction(self) -> bool:
        return self._snapshot is not None

    # -- statements ---------------------------------------------------------------------------------------------

    def execute(self, statement: str) -> None:
        self._check()
        queued = self.fail.get(statement)
        if queued:
            raise queued.pop(0)
        upper = statement.strip().upper()
        if upper in ("BEGIN", "START TRANSACTION"):
            self.begin()
            return
        if upper == "COMMIT":
            self.commit()
            return
        if upper == "ROLLBACK":
            self.rollback()
            return
        self.effects.append(statement)

    def set_timeouts(self, lock_timeout: float | None, statement_timeout: float | None, *, local: bool) -> None:
        self.timeouts.append((lock_timeout, statement_timeout, local))

    def reset_timeouts(self) -> None:
        self.resets += 1

    def session_id(self) -> int | None:
        return 1

    def blockers(self, session_id: int) -> list[dict[str, Any]]:
        return []

    def drop_invalid_index(self, name: str) -> str | None:
        self.dropped_indexes.append(name)
        return None

    def interrupt(self) -> None:
        pass

    def restore_session(self) -> bool:
        self.writes.append(("restore", ""))
        return True

    def database_changed(self) -> str | None:
        return self.switched_to

    def own_identity_local(self) -> None:
        pass

    def guard_writes(self, key: str, holder: int | None) -> None:
        pass

    def hold_update(self, row: HistoryRow, since: HistoryRow, lost: Any, prepared: object | None = None) -> bool:
        return False

    def prepare_update(self, row: HistoryRow, since: HistoryRow) -> object | None:
        return None

    def prepare_finish(self, final: HistoryRow, ahead: HistoryRow) -> object | None:
        return None

    def drop_held_write(self) -> None:
        pass

    def lock_held(self, key: str) -> bool:
        return not self.broken

    # -- history ------------------------------------------------------------------------------------------------

    def _check(self) -> None:
        if self.broken:
            from premigrate.errors import ConnectionLost

            raise ConnectionLost("server closed the connection unexpectedly")

    def insert_row(self, row: HistoryRow) -> None:
        self._check()
        assert row.migration_id not in self.rows, f"duplicate row {row.migration_id}"
        self.rows[row.migration_id] = row
        self.writes.append(("insert", row))

    def update_row(self, row: HistoryRow) -> None:
        self._check()
        assert row.migration_id in self.rows, f"no row {row.migration_id} to update"
        self.rows[row.migration_id] = row
        self.writes.append(("update", row))

    def finish_and_start(self, final: HistoryRow, ahead: HistoryRow, draft: object | None = None) -> None:
        with self.transaction():
            self.update_row(final)
            self.insert_row(ahead)

    def delete_row(self, migration_id: str) -> None:
        self._check()
        del self.rows[migration_id]
        self.writes.append(("delete", migration_id))

    def read_history(self) -> list[HistoryRow]:
        return list(self.rows.values())
