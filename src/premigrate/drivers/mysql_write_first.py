"""MySQLDriver's history write that goes out in one message with the statement after it.

A migration run statement by statement writes "statement k done, k+1 started" between statements k and k+1, and on
MySQL that write used to be a round trip of its own on the lock session. Here it goes out on the migration's session,
in front of statement k+1, in one COM_QUERY of several statements (the session has CLIENT.MULTI_STATEMENTS):

    SET SESSION sql_mode = IF(<the lock is held>, @@session.sql_mode, '<refused>');
    UPDATE <history> SET statements_done = ..., statement_started = ..., statement_hashes = ... WHERE ...;
    <statement k+1>

The server runs a message's statements in order and stops at the first that fails (MySQL docs, "Multiple Statement
Execution Support"), so statement k+1 runs only when the lock was held and the row said "k+1 started" first; with
autocommit on, that UPDATE is committed before the statement starts, as it was when it had a round trip of its own.
Each statement's answer comes back on its own: a failure of the check is the lost lock, a failure of the UPDATE is
premigrate's own (SqlError.own_write: the statement did not run), and the statement's answer is read as execute()
reads it.

The write is held only where this session writes it exactly as the lock session would: no fence (table lock mode),
a lock to check it against, autocommit on with no transaction open (the server's status after the last answer), and
no statement since the last restore that may have changed the session (sql_mode, time_zone, character set) or the
current database. Anything else the session sends before that statement sends the held SQL first, on its own
(_send_held), so the write is never reordered after a later statement.

A mixin of its own so that MySQLDriver (drivers/mysql.py) fits in the size limits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import pymysql
from pymysql.constants import SERVER_STATUS

from premigrate.drivers.base import HISTORY_COLUMNS, HistoryRow, SqlError
from premigrate.drivers.mysql_literals import KeptLiterals
from premigrate.drivers.mysql_send import execute_releasing
from premigrate.drivers.mysql_session import LOCK_NOT_HELD

_AUTOCOMMIT, _IN_TRANS = SERVER_STATUS.SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS.SERVER_STATUS_IN_TRANS


class First(NamedTuple):
    """What goes out in front of a statement: the text, how many answers it gets (two when a held SET leads it,
    else the write's alone), and the held lock check's error."""
    text: str
    answers: int
    lost: Callable[[], Exception] | None


class UpdateDraft(NamedTuple):
    """hold_update's UPDATE made ahead (prepare_update): for these rows, under this quoting rule."""
    row: HistoryRow
    since: HistoryRow
    text: str | None
    mode: int


class MySQLWriteFirstMixin:
    """The held history write of MySQLDriver (see the module docstring)."""

    conn: pymysql.connections.Connection
    fence: Callable[[], None] | None
    statements_sent: int
    _held_set: list[str]
    _lost: Callable[[], Exception] | None
    _literals: KeptLiterals
    _write_guard: tuple[str, tuple[Any, ...]] | None
    _database_unsure: bool
    _session_touched: bool
    _held_write: str | None = None  # the bound UPDATE, waiting for the next statement

    if TYPE_CHECKING:  # provided by MySQLDriver, MySQLSessionMixin and SqlHistoryMixin
        @property
        def history_ref(self) -> str: ...
        def _row_params(self, row: HistoryRow) -> tuple[Any, ...]: ...
        def _send_set(self, assignments: list[str]) -> None: ...
        def _screen(self, statement: str) -> None: ...
        def check_later(self, lost: Callable[[], Exception]) -> bool: ...
        def map_error(self, exc: BaseException) -> Exception: ...

    def hold_update(self, row: HistoryRow, since: HistoryRow, lost: Callable[[], Exception],
                    prepared: object | None = None) -> bool:
        """Hold the write of `row`, whose last write was `since`, to go out in front of the next statement with
        the lock check (the module docstring says when it can). Only its changed columns are written: `since` is
        the row as the history table holds it (as this run last wrote it, or read it before a resume).
        `prepared`: prepare_update's text for these rows, used when it was bound under this session's quoting
        rule. False, with nothing held, when it cannot be held."""
        self._send_held()  # a write held before is never left by the executor; were it, it goes first, in its order
        status = self.conn.server_status  # type: ignore[attr-defined]
        if (self.fence is not None or self._write_guard is None or self._session_touched or self._database_unsure
                or not status & _AUTOCOMMIT or status & _IN_TRANS):
            return False
        if (isinstance(prepared, UpdateDraft) and (prepared.row is row or prepared.row == row)
                and (prepared.since is since or prepared.since == since)
                and prepared.mode == self._literals.mode(self.conn)):
            text = prepared.text
        else:
            text = self._update_text(row, since)
        if text is None:
            return False
        self.check_later(lost)
        self._held_write = text
        return True

    def prepare_update(self, row: HistoryRow, since: HistoryRow) -> UpdateDraft:
        """hold_update's UPDATE bound now (no I/O), while the statement before it runs; hold_update uses it only
        if the session's quoting rule is still the one it was bound under."""
        return UpdateDraft(row, since, self._update_text(row, since), self._literals.mode(self.conn))

    def _update_text(self, row: HistoryRow, since: HistoryRow) -> str | None:
        """The UPDATE of `row`'s columns that changed since `since`; None when none did, or the key differs."""
        new, old = self._row_params(row), self._row_params(since)
        changed = [i for i in range(1, len(HISTORY_COLUMNS)) if new[i] != old[i]]
        if not changed or new[0] != old[0]:
            return None
        assignments = ", ".join(f"{HISTORY_COLUMNS[i]} = %s" for i in changed)
        return self._literals.bind(self.conn, f"UPDATE {self.history_ref} SET {assignments} WHERE migration_id = %s",
                                   tuple(new[i] for i in changed) + (new[0],))

    def drop_held_write(self) -> None:
        """Forget a held write whose statement will not be sent: the run records that row itself, whole."""
        self._held_write = None

    def _send_held(self) -> None:
        """What is held, sent on its own before other SQL: the SET (with a lock check), then the write. Nothing is
        sent when nothing is held. The write is taken out before the SET goes: the SET's own send comes back here,
        and must not find the write there and send it ahead of its check; a failed check drops it."""
        write, self._held_write = self._held_write, None
        if self._held_set:
            self._send_set([])
        if write is not None:
            self.statements_sent += 1
            try:
                with self.conn.cursor() as cur:
                    cur.execute(write)
            except (pymysql.err.MySQLError, OSError) as exc:
                raise self.map_error(exc) from exc

    def _take_first(self) -> First | None:
        """The held SET and write to send in front of the next statement; None when no write is held (a held
        SET alone is sent on its own first, as before)."""
        if self._held_write is None:
            self._send_held()
            return None
        write, self._held_write = self._held_write, None
        held, lost, self._held_set, self._lost = self._held_set, self._lost, [], None
        text = ("SET " + ", ".join(held) + ";\n" if held else "") + write + ";\n"
        return First(text, 2 if held else 1, lost)

    def _execute_after(self, cur: pymysql.cursors.Cursor, first: First, statement: str) -> Exception | None:
        """`first` and `statement` in one message (execute_releasing's contract); returns with the statement's own
        answer read. A failure of what went first raises its own error: the statement did not run."""
        at = 0  # the answer being read: the SET's, the write's, then the statement's
        try:
            failed = execute_releasing(self.conn, cur, first.text + statement, lambda: self._screen(statement))
            while at < first.answers:
                at += 1
                if not cur.nextset():
                    raise SqlError("the server sent no answer for the statement sent after premigrate's history "
                                   "write in one message; it may not have run")
        except pymysql.err.MySQLError as exc:
            if at >= first.answers:
                raise
            error = self.map_error(exc)
            if isinstance(error, SqlError):
                if at == 0 and first.answers == 2:  # the held SET's answer
                    if first.lost is not None and error.code == "1231" and LOCK_NOT_HELD in error.message:
                        raise first.lost() from None
                else:
                    error.own_write = True
            raise error from exc
        return failed

