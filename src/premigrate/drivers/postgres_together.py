"""PostgresDriver's one-message migration (engine/together.py): a migration's statements, held back after BEGIN
with the checks and the history write that follow them, go out with COMMIT in one simple-query message; a failure
names the statement that failed.

A mixin of its own so that PostgresDriver (drivers/postgres.py) fits in the size limits; it reads the held-back
SQL of PostgresSessionMixin (drivers/postgres_session.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg
from psycopg import pq

from premigrate.drivers.base import HISTORY_COLUMNS, HistoryRow, SqlError
from premigrate.drivers.postgres_session import LOCK_NOT_HELD


class PostgresTogetherMixin:
    """The one-message methods of PostgresDriver (drivers/base.SendsTogether)."""

    sends_together: ClassVar[bool] = True  # engine/together.py checks for it; can_send_together() says when

    conn: psycopg.Connection[Any]
    statements_sent: int
    fence: Callable[[], None] | None
    param: ClassVar[str]
    _held_back: list[str]
    _begin_held_at: int | None
    _lost: Callable[[], Exception] | None
    _restore_at: int | None
    _restore_in_transaction: bool
    _together: list[int] | None
    _committed_together: bool

    if TYPE_CHECKING:  # provided by PostgresDriver and SqlHistoryMixin
        @property
        def history_ref(self) -> str: ...
        def map_error(self, exc: psycopg.Error) -> Exception: ...
        def _row_params(self, row: HistoryRow) -> tuple[Any, ...]: ...
        def _write_history(self, sql: str, params: tuple[Any, ...]) -> None: ...

    def can_send_together(self) -> bool:
        # A fence (table lock) runs its own query in the transaction, and BEGIN goes out at once for it.
        return self.fence is None

    def hold_statement(self, text: str) -> None:
        """Hold back a statement of the migration whose transaction is open, to go out with the rest of the
        transaction in one message (commit_together). The newline ends a `--` comment at the statement's end
        before the separator that follows it."""
        if self._together is None:
            self._together = []
        self._together.append(len(self._held_back))
        self._held_back.append(text + "\n")

    def commit_together(self) -> list[int | None]:
        """Send everything held back, then COMMIT, in one simple-query message, and return the row counts of the
        held-back migration statements (None where the server gives none). The server runs the message's
        statements in order and stops at the first that fails (protocol-flow.html, "Multiple Statements in a
        Simple Query"), so a failure commits nothing. The error then names the migration statement that failed
        (SqlError.statement, None when it was premigrate's own SQL), its position made the statement's own: by the
        server's error position when it gives one (a syntax error anywhere fails the whole message before any
        statement runs), else by the number of results that came back before the error, one per statement (each
        held-back item is one statement)."""
        items, together, lost = self._held_back + ["COMMIT"], self._together or [], self._lost
        offsets, at = [], 0
        for item in items:
            offsets.append(at)
            at += len(item) + 2  # "; "
        if self._restore_at is not None and self._begin_held_at is not None:
            self._restore_in_transaction = self._restore_at < self._begin_held_at
        self._held_back, self._begin_held_at, self._lost, self._restore_at, self._together = [], None, None, None, None
        self.statements_sent += 1
        cursor = _ResultsKept(self.conn)
        try:
            cursor.execute("; ".join(items))
        except psycopg.Error as exc:
            if lost is not None and exc.sqlstate == "22P02" and LOCK_NOT_HELD in str(exc):
                raise lost() from None
            error = self.map_error(exc)
            if isinstance(error, SqlError):
                _attribute(error, offsets, together, len(cursor.kept) - 1 if cursor.kept else None)
                error.message = _without_excerpt(str(exc))
            raise error from exc
        self._committed_together = True
        results = cursor.kept
        if len(results) != len(items):  # a statement the server read as two (or none): counts cannot be matched
            return [None] * len(together)
        return [results[i].command_tuples for i in together]

    def insert_row_timed(self, row: HistoryRow) -> None:
        """insert_row, with execution_ms measured by the server: the time since the message that carries the write
        arrived (statement_timestamp() is "the time of receipt of the latest command message from the client",
        functions-datetime.html), which is the migration's own message when it is sent in one (commit_together)."""
        values = [self.param] * len(HISTORY_COLUMNS)
        params = list(self._row_params(row))
        at = HISTORY_COLUMNS.index("execution_ms")
        values[at] = "(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::bigint"
        del params[at]
        self._write_history(
            f"INSERT INTO {self.history_ref} ({', '.join(HISTORY_COLUMNS)}) VALUES ({', '.join(values)})",
            tuple(params),
        )


_EXCERPT = re.compile(r"LINE \d+: ")


class _ResultsKept(psycopg.Cursor[Any]):
    """A cursor that keeps every result of its last message, the failed one included: psycopg raises for the first
    failed result of a multi-statement message and keeps none, and their number says which statement failed."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        super().__init__(connection)
        self.kept: list[pq.abc.PGresult] = []

    def _check_results(self, results: list[pq.abc.PGresult]) -> None:
        self.kept = list(results)
        super()._check_results(results)


def _without_excerpt(text: str) -> str:
    """The server's error text on one line, without its `LINE n:` excerpt and caret: they quote the lines of the
    whole message, where the error names its statement and that statement's line itself."""
    lines = (line.strip() for line in text.splitlines())
    return " ".join(line for line in lines if line and not _EXCERPT.match(line) and set(line) != {"^"})


def _attribute(error: SqlError, offsets: list[int], together: list[int], failed_result: int | None) -> None:
    """Which item of a commit_together message failed: by the error's position (1-based, in the message) when the
    server gives one, else by the index of the failed result. A migration statement's number and the position in
    its own text go on the error; premigrate's own SQL is no statement of the migration (statement None)."""
    if error.position is not None:
        item = max(i for i, start in enumerate(offsets) if start < error.position)
    else:
        item = failed_result if failed_result is not None and 0 <= failed_result < len(offsets) else -1
    if item in together:
        error.statement = together.index(item) + 1
        error.position = error.position - offsets[item] if error.position is not None else None
    else:
        error.statement, error.position = None, None
