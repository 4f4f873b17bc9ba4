"""The history-table SQL the drivers share (SqlHistoryMixin), with the fenced history write and transaction().

It lives apart from base.py, which holds only the driver contract (the Driver protocol, Capabilities, HistoryRow,
the errors), so that both stay within the size limits; this module imports base.py, never the other way round.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, ClassVar

from premigrate import log
from premigrate.drivers.base import HISTORY_COLUMNS, HistoryRow, SqlError
from premigrate.errors import LockLost
from premigrate.model import owed
from premigrate.model.dsn import Dsn


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


# A fenced history write outside a transaction of ours commits in a small transaction of its own; a certification
# conflict at its COMMIT (Galera errno 1213) or a deadlock is retried this many times (it fences again each time).
FENCED_WRITE_ATTEMPTS = 5


_APPLIED_AT, _ERROR = HISTORY_COLUMNS.index("applied_at"), HISTORY_COLUMNS.index("error")


class SqlHistoryMixin:
    """History-table SQL shared by the drivers; each sets `param` and provides _exec/_fetchall and `_history_ref`.

    `fence`, set by the engine while a `table` runner lock is held (engine/tablelock.py), proves in the same
    transaction as every history write, just before its COMMIT, that the lease is still this runner's (it raises
    LockLost otherwise, and the transaction rolls back). A history write outside a transaction gets a small fenced
    transaction of its own; inside a transaction the file opened itself, the fence joins that transaction.
    """

    param: ClassVar[str] = "%s"
    _history_ref: str
    fence: Callable[[], None] | None = None
    statements_sent: int = 0  # see Driver.statements_sent; each driver's statement helpers count
    _fenced_transaction_open: bool = False

    def _in_open_transaction(self) -> bool:  # pragma: no cover - provided by drivers
        raise NotImplementedError

    def _write_history(self, sql: str, params: tuple[Any, ...]) -> None:
        """One history write, fenced when a lease is held (see the class docstring)."""
        fence = self.fence
        if fence is None or self._fenced_transaction_open:
            self._exec(sql, params)
            return
        if self._in_open_transaction():
            self._exec(sql, params)
            fence()
            return
        for attempt in range(1, FENCED_WRITE_ATTEMPTS + 1):
            try:
                with self.transaction():
                    self._exec(sql, params)
                return
            except SqlError as exc:
                if not exc.lock_contention or attempt == FENCED_WRITE_ATTEMPTS:
                    raise
                time.sleep(0.05 * attempt)

    @property
    def history_ref(self) -> str:
        """The history table's fully qualified name: never resolved through session state a migration can change
        (MySQL `USE`, PostgreSQL search_path)."""
        return self._history_ref

    @classmethod
    def database_missing(cls, dsn: Dsn) -> bool:
        """True when the database does not exist yet and `up` would create it (a SQLite file); servers: False."""
        return False

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> None:  # pragma: no cover - provided by drivers
        raise NotImplementedError

    def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:  # pragma: no cover
        raise NotImplementedError

    def session_id(self) -> int | None:  # pragma: no cover - provided by drivers
        raise NotImplementedError

    def _to_datetime(self, value: Any) -> datetime:
        return utc(value)

    def _from_datetime(self, value: datetime) -> Any:
        return value

    def read_history(self) -> list[HistoryRow]:
        select = f"SELECT {', '.join(HISTORY_COLUMNS)} FROM {self.history_ref}"
        if not self._may_probe_history():
            if not self.history_exists():  # type: ignore[attr-defined]
                self.owed_callbacks = ()
                return []
            return self._migration_rows([self._row(r) for r in self._fetchall(select)])
        # One round trip where a no-op `up` (every pod start) used two: select, and take "no such table" for an
        # empty history rather than asking first whether the table exists.
        try:
            rows = self._fetchall(select)
        except SqlError as exc:
            if self._history_missing(exc):
                self.owed_callbacks = ()
                return []
            raise
        return self._migration_rows([self._row(r) for r in rows])

    owed_callbacks: tuple[HistoryRow, ...] = ()  # set by read_history (model/owed.py)

    def _migration_rows(self, rows: list[HistoryRow]) -> list[HistoryRow]:
        """The migration rows; the rows of owed callbacks go to `owed_callbacks` (model/owed.py), which every
        other reader of the history would take for a migration's row."""
        migrations, self.owed_callbacks = owed.split(rows)
        return migrations

    def _may_probe_history(self) -> bool:
        """Whether read_history may simply try its SELECT: only where a failing statement leaves the session as it
        was (drivers that can tell a missing table apart say so)."""
        return False

    def _history_missing(self, exc: SqlError) -> bool:
        """Whether the history SELECT failed because the table does not exist (and for no other reason)."""
        return False

    def _row(self, r: tuple[Any, ...]) -> HistoryRow:
        data = dict(zip(HISTORY_COLUMNS, r))
        data["applied_at"] = self._to_datetime(data["applied_at"])
        data["statement_hashes"] = tuple((data["statement_hashes"] or "").split())
        for name in ("execution_ms", "statements_done", "statements_total", "statement_started"):
            data[name] = int(data[name] or 0)
        # A row written before its text was scrubbed (or by another tool) must not bring a secret back to a log line.
        data["error"] = log.scrub(data["error"])
        return HistoryRow(**data)

    def _row_params(self, row: HistoryRow) -> tuple[Any, ...]:
        values = list(row.values())
        values[_APPLIED_AT] = self._from_datetime(row.applied_at)
        # The error column holds what the server said, and servers echo statements (a MySQL syntax error quotes
        # `IDENTIFIED BY '<placeholder value>'`): it is scrubbed like a log line before it is stored. The other text
        # columns are identities compared on every run (ids, versions, file names, checksums) and come from the
        # folder, not from the database or the environment; scrubbing them would corrupt the history.
        values[_ERROR] = log.scrub(row.error)
        return tuple(values)

    def insert_row(self, row: HistoryRow) -> None:
        placeholders = ", ".join([self.param] * len(HISTORY_COLUMNS))
        self._write_history(
            f"INSERT INTO {self.history_ref} ({', '.join(HISTORY_COLUMNS)}) VALUES ({placeholders})",
            self._row_params(row),
        )

    _update_sql_built: tuple[str, str] | None = None  # (history_ref, the UPDATE for it)

    def _update_sql(self) -> str:
        """UPDATE of every column but the key, by key: built once per table name (a run writes it per statement
        on MySQL); the caller appends the lock condition where writes are guarded."""
        ref = self.history_ref
        built = self._update_sql_built
        if built is None or built[0] != ref:
            assignments = ", ".join(f"{c} = {self.param}" for c in HISTORY_COLUMNS[1:])
            built = self._update_sql_built = (ref, f"UPDATE {ref} SET {assignments} WHERE migration_id = {self.param}")
        return built[1]

    def update_row(self, row: HistoryRow) -> None:
        params = self._row_params(row)
        guard = self._write_guard
        if guard is None:
            self._write_history(self._update_sql(), params[1:] + params[:1])
            return
        condition, guard_params = guard
        matched = self._exec_count(f"{self._update_sql()} AND {condition}", params[1:] + params[:1] + guard_params)
        if matched == 0 and not self._fetchall(f"SELECT {condition}", guard_params)[0][0]:
            raise LockLost(f"the runner lock is no longer held (its session ended); the history row of "
                           f"{row.script} was not updated")

    _write_guard: tuple[str, tuple[Any, ...]] | None = None

    def _exec_count(self, sql: str, params: tuple[Any, ...] = ()) -> int:  # pragma: no cover - provided by drivers
        raise NotImplementedError

    def guard_writes(self, key: str, holder: int | None) -> None:
        # The lock's own session writes without the condition: its lock ends only with a release by this session
        # or with the session itself (the reasoning of engine/sessions.HeldLock.vouch), so a write that reaches
        # the server on it is made under the lock, and one on a session that ended fails anyway. The condition
        # would cost the server work on every progress row (MariaDB: a derived table per migration) for nothing.
        self._write_guard = None if holder is None or holder == self.session_id() else self._lock_condition(key, holder)

    def _lock_condition(self, key: str, holder: int) -> tuple[str, tuple[Any, ...]]:
        """SQL that is true while session `holder` holds the runner lock `key`, and its parameters."""
        raise NotImplementedError  # pragma: no cover - servers provide it; SQLite never guards

    def finish_and_start(self, final: HistoryRow, ahead: HistoryRow, draft: object | None = None) -> None:
        with self.transaction():
            self.update_row(final)
            self.insert_row(ahead)

    def prepare_finish(self, final: HistoryRow, ahead: HistoryRow) -> object | None:
        return None

    def check_later(self, lost: Callable[[], Exception]) -> bool:
        return False

    def hold_update(self, row: HistoryRow, since: HistoryRow, lost: Callable[[], Exception],
                    prepared: object | None = None) -> bool:
        return False

    def prepare_update(self, row: HistoryRow, since: HistoryRow) -> object | None:
        return None

    def drop_held_write(self) -> None:
        pass

    def restore_session(self) -> bool:
        return False

    def database_changed(self) -> str | None:
        return None

    def own_identity_local(self) -> None:
        pass

    def delete_row(self, migration_id: str) -> None:
        self._write_history(f"DELETE FROM {self.history_ref} WHERE migration_id = {self.param}", (migration_id,))

    def begin(self) -> None:  # pragma: no cover - provided by drivers
        raise NotImplementedError

    def commit(self) -> None:  # pragma: no cover - provided by drivers
        raise NotImplementedError

    def rollback(self) -> None:  # pragma: no cover - provided by drivers
        raise NotImplementedError

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """See Driver.transaction. With a fence, the fence is the last statement before COMMIT."""
        self.begin()
        self._fenced_transaction_open = True
        try:
            yield
            if self.fence is not None:
                self.fence()
            try:
                self.commit()
            except SqlError as exc:
                exc.at_commit = True
                raise
        except BaseException:
            try:
                self.rollback()
            except BaseException:  # noqa: BLE001 - the original error is the one to report
                pass
            raise
        finally:
            self._fenced_transaction_open = False

    def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (e.g. another tool's history table for `baseline --from`)."""
        return self._fetchall(sql, params)
