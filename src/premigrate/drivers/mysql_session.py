"""MySQLDriver's session checks between migrations and its runner lock: COM_RESET_CONNECTION (restore_session),
`USE` detection (database_changed), and GET_LOCK with the condition that guards history writes.

A mixin of its own so that MySQLDriver (drivers/mysql.py) fits in the size limits; it holds SQL only, and reads the
driver's connection, URL and statement helpers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import pymysql

from premigrate.drivers.base import HISTORY_COLUMNS, HistoryRow, SqlError
from premigrate.drivers.mysql_literals import KeptLiterals
from premigrate.errors import LockLost
from premigrate.model.dsn import Dsn

COM_RESET_CONNECTION = 0x1F  # MySQL client/server protocol, COM_RESET_CONNECTION
# finish_and_start's statements, but for the table and the lock condition: built once, not per migration. Where the
# writes are conditional on the lock, the rows are selected only while it is held; else (the lock's own session
# writes, history.guard_writes) they are plain VALUES, which spares the server a derived table per migration.
_ON_DUPLICATE = f"ON DUPLICATE KEY UPDATE {', '.join(f'{name} = VALUES({name})' for name in HISTORY_COLUMNS[1:])}"
_TWO_ROWS_IF = (
    f"INSERT INTO {{table}} ({', '.join(HISTORY_COLUMNS)}) "
    f"SELECT * FROM (SELECT {', '.join(f'%s AS {name}' for name in HISTORY_COLUMNS)} "
    f"UNION ALL SELECT {', '.join(['%s'] * len(HISTORY_COLUMNS))}) AS premigrate_rows WHERE {{condition}} "
    f"{_ON_DUPLICATE}")
_ROW = f"({', '.join(['%s'] * len(HISTORY_COLUMNS))})"
_TWO_ROWS = f"INSERT INTO {{table}} ({', '.join(HISTORY_COLUMNS)}) VALUES {_ROW}, {_ROW} {_ON_DUPLICATE}"
LOCK_NOT_HELD = "premigrate: the runner lock is not held"
_APPLIED_AT, _EXECUTION_MS = HISTORY_COLUMNS.index("applied_at"), HISTORY_COLUMNS.index("execution_ms")


class FinishDraft(NamedTuple):
    """finish_and_start's statement bound while the migration's last statement runs (prepare_finish): every literal
    but the final row's applied_at and execution_ms, known only once that statement is done. The statement is kept
    in three pieces around those two literals, joined when it is sent."""
    final: HistoryRow  # as drafted: the row sent must equal it but for those two values
    ahead: HistoryRow
    pieces: tuple[str, str, str]  # before applied_at, between it and execution_ms, after execution_ms
    mode: int  # the quoting rule the literals were written under (KeptLiterals.mode)
    guarded: bool


class MySQLSessionMixin:
    """The session and runner-lock methods of MySQLDriver (see the module docstring)."""

    conn: pymysql.connections.Connection
    dsn: Dsn

    _held_set: list[str]
    _lost: Callable[[], Exception] | None = None  # the error of a held-back lock check that fails
    statements_sent: int
    fence: Callable[[], None] | None
    _write_guard: tuple[str, tuple[Any, ...]] | None
    _database_unsure: bool = False  # a statement since the last check may have switched the current database
    _session_touched: bool = False  # a statement since the last restore may have changed the session's state
    _held_write: str | None
    _literals: KeptLiterals
    _guard_set: tuple[Any, int, str] | None = None  # check_later's assignment: (guard, quoting rule, text)

    if TYPE_CHECKING:  # provided by MySQLDriver and SqlHistoryMixin
        @property
        def history_ref(self) -> str: ...
        def _row_params(self, row: HistoryRow) -> tuple[Any, ...]: ...
        def _exec_count(self, sql: str, params: tuple[Any, ...] | None = ()) -> int: ...
        def _from_datetime(self, value: Any) -> Any: ...
        def _exec(self, sql: str, params: tuple[Any, ...] | None = None) -> None: ...
        def _fetchall(self, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]: ...
        def map_error(self, exc: BaseException) -> Exception: ...
        def _send_held(self) -> None: ...

    def database_changed(self) -> str | None:
        """The current database when a statement switched it; asked of the server only after a statement that
        may have (execute() marks them: model/session_effects.may_switch_database), so that the check before each
        history write costs a round trip only where it can find something."""
        expected = self.dsn.database
        if not expected or not self._database_unsure:
            return None
        current = self._fetchall("SELECT DATABASE()")[0][0]
        if current == expected:
            self._database_unsure = False
            return None
        return str(current)

    def restore_session(self) -> bool:
        """COM_RESET_CONNECTION (MySQL 5.7.3+, MariaDB 10.2.4+; PyMySQL has no call for it): session variables,
        user variables, temporary tables, prepared statements and the transaction state go back to a fresh
        session's, without a new login. The character set comes from the session variables it resets: set again,
        with autocommit, in the SET of the next migration's session timeouts (one round trip for all of them), or
        on its own before any other statement (mysql_write_first._send_held). Nothing to undo, and no round trip,
        when every statement since the last restore left the session as it was (execute() tells; the timeouts
        premigrate sets are tracked by engine/attempts.SessionTimeouts, which keeps them in force when nothing was
        reset)."""
        if not self._session_touched:
            return False
        self._send_held()  # a held write: never the case between migrations; in its order if it were
        self._session_touched = False
        self.statements_sent += 1
        try:
            self.conn._execute_command(COM_RESET_CONNECTION, b"")  # type: ignore[attr-defined]
            self.conn._read_ok_packet()  # type: ignore[attr-defined]
        except (pymysql.err.MySQLError, OSError) as exc:
            raise self.map_error(exc) from exc
        collation = getattr(self.conn, "collation", None)
        self._held_set += [f"NAMES {self.conn.charset}" + (f" COLLATE {collation}" if collation else ""),
                           "autocommit = 1"]
        return True

    def finish_and_start(self, final: HistoryRow, ahead: HistoryRow, draft: object | None = None) -> None:
        """One statement, one round trip and one commit, where START TRANSACTION, UPDATE, INSERT and COMMIT took
        four round trips: an INSERT of both rows that updates the existing one (ON DUPLICATE KEY UPDATE; the
        primary key is migration_id), its rows selected only while the runner lock is held where the writes are
        guarded (history.guard_writes). A single statement is atomic in InnoDB, so both rows are written or
        neither. Fenced writes (table lock mode) take the transaction of the shared path, which ends with the
        fence. `draft`: prepare_finish's, used when it still fits these rows and this session."""
        if self.fence is not None:
            super().finish_and_start(final, ahead)  # type: ignore[misc]
            return
        guard = self._write_guard
        text = self._from_draft(draft, final, ahead)
        if text is None:
            text = self._literals.bind(self.conn, *self._finish_sql(final, ahead))
        if guard is None:
            self._exec(text)
            return
        condition, guard_params = guard
        if self._exec_count(text, None) == 0 and not self._fetchall(f"SELECT {condition}", guard_params)[0][0]:
            raise LockLost(f"the runner lock is no longer held (its session ended); the history row of "
                           f"{final.script} was not updated")

    def prepare_finish(self, final: HistoryRow, ahead: HistoryRow) -> FinishDraft | None:
        """finish_and_start's statement for these rows, bound now: no I/O, so that it is made while the
        migration's last statement runs, off the time between its answer and this write. None where
        finish_and_start takes the fenced path."""
        if self.fence is not None:
            return None
        sql, params = self._finish_sql(final, ahead)
        literals = self._literals.literals(self.conn, params)
        # NUL marks the two places. No identifier holds one, nor does a literal written with backslash escapes
        # (\0); under NO_BACKSLASH_ESCAPES a string could, and then there is no draft (the write is bound as usual).
        literals[_APPLIED_AT], literals[_EXECUTION_MS] = "\0", "\0"
        pieces = (sql % tuple(literals)).split("\0")
        if len(pieces) != 3:
            return None
        return FinishDraft(final, ahead, (pieces[0], pieces[1], pieces[2]), self._literals.mode(self.conn),
                           self._write_guard is not None)

    def _finish_sql(self, final: HistoryRow, ahead: HistoryRow) -> tuple[str, tuple[Any, ...]]:
        """finish_and_start's statement and its parameters: with the lock condition where writes are guarded."""
        params = self._row_params(final) + self._row_params(ahead)
        guard = self._write_guard
        if guard is None:
            return _TWO_ROWS.format(table=self.history_ref), params
        condition, guard_params = guard
        return _TWO_ROWS_IF.format(table=self.history_ref, condition=condition), params + guard_params

    def _from_draft(self, draft: object | None, final: HistoryRow, ahead: HistoryRow) -> str | None:
        """The draft's statement with final's applied_at and execution_ms; None when the draft does not fit: other
        rows, another quoting rule, or the guard came or went since. Runs between a statement's answer and the
        write, so the comparisons are the cheap ones: identity first, then the rows' fields as dicts."""
        if not isinstance(draft, FinishDraft) or draft.guarded != (self._write_guard is not None) or \
                draft.mode != self._literals.mode(self.conn):
            return None
        if draft.ahead is not ahead and draft.ahead != ahead:
            return None
        times = {"applied_at": final.applied_at, "execution_ms": final.execution_ms}
        if type(final) is not type(draft.final) or final.__dict__ != {**draft.final.__dict__, **times}:
            return None
        head, middle, tail = draft.pieces
        return (head + self.conn.escape(self._from_datetime(final.applied_at)) + middle + str(int(final.execution_ms))
                + tail)

    def begin(self) -> None:
        self._exec("START TRANSACTION")

    def commit(self) -> None:
        self._exec("COMMIT")

    def rollback(self) -> None:
        if self.conn.open:
            self._exec("ROLLBACK")

    def _send_set(self, assignments: list[str]) -> None:
        """One SET: what was held back (a lock check first), then `assignments`. A failed lock check fails the
        whole statement (MariaDB and MySQL apply a SET's assignments all or none) and raises the lost-lock error."""
        held, lost, self._held_set, self._lost = self._held_set, self._lost, [], None
        try:
            self._exec("SET " + ", ".join(held + assignments))
        except SqlError as exc:
            if lost is not None and exc.code == "1231" and LOCK_NOT_HELD in exc.message:
                raise lost() from None
            raise

    def check_later(self, lost: Callable[[], Exception]) -> bool:
        """The runner-lock check as the first assignment of the next SET this session sends (the one of the
        migration's session timeouts, or one of its own before any other statement): sql_mode set to itself while
        the lock session holds the lock, else to a value the server refuses (errno 1231, naming that value), which
        fails the SET before any statement of the migration runs."""
        guard = self._write_guard
        if guard is None:
            return False
        mode = self._literals.mode(self.conn)
        kept = self._guard_set  # made once per guard and quoting rule: a run checks before every statement
        if kept is None or kept[0] is not guard or kept[1] != mode:
            condition, params = guard
            literal = condition.replace("%s", "{}").format(*(self.conn.escape(p) for p in params))
            kept = self._guard_set = (
                guard, mode, f"SESSION sql_mode = IF({literal}, @@session.sql_mode, '{LOCK_NOT_HELD}')")
        self._held_set.insert(0, kept[2])
        self._lost = lost
        return True

    # -- runner lock: GET_LOCK on a session of its own --------------------------------------------------------

    def _lock_name(self, key: str) -> str:
        # MySQL lock names are at most 64 characters; keep the database readable, make the rest a hash.
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return f"premigrate:{(self.dsn.database or '')[:35]}:{digest}"

    def try_lock(self, key: str) -> bool:
        return bool(self._fetchall("SELECT GET_LOCK(%s, 0)", (self._lock_name(key),))[0][0] == 1)

    def unlock(self, key: str) -> None:
        self._exec("SELECT RELEASE_LOCK(%s)", (self._lock_name(key),))

    def _lock_condition(self, key: str, holder: int) -> tuple[str, tuple[Any, ...]]:
        return "COALESCE(IS_USED_LOCK(%s) = %s, 0)", (self._lock_name(key), holder)

    def lock_held(self, key: str) -> bool:
        return bool(self._fetchall("SELECT COALESCE(IS_USED_LOCK(%s) = CONNECTION_ID(), 0)",
                                   (self._lock_name(key),))[0][0])

    def lock_holder(self, key: str) -> dict[str, Any] | None:
        rows = self._fetchall("SELECT IS_USED_LOCK(%s)", (self._lock_name(key),))
        holder = rows[0][0] if rows else None
        if holder is None:
            return None
        detail = self._fetchall(
            "SELECT id, user, host, time, command FROM information_schema.processlist WHERE id = %s", (holder,)
        )
        if not detail:
            return {"connection_id": holder}
        cid, user, host, seconds, command = detail[0]
        return {"connection_id": cid, "user": user, "host": host, "time_s": seconds, "command": command}
