"""PostgresDriver's one-message migrations (engine/together.py): a migration's statements, held back after BEGIN
with the checks and the history write that follow them, go out with COMMIT as one batch; a failure names the
statement that failed. The next migration's batch may go out before this one's results are back.

Each batch is a segment of libpq's pipeline mode (PostgreSQL docs, libpq-pipeline-mode.html): one extended-protocol
query per held-back item, then a Sync. The server runs a segment's queries in order; after the first that fails it
skips the rest up to the Sync (protocol-flow.html, "Pipelining"), so a failure commits nothing. Within the segment
BEGIN makes what came before it part of the transaction, as in a multi-statement simple query. Each item's result
comes back on its own: a failed result is its statement's, and its error position is inside that statement.

Two segments in flight: while the server runs migration N, the client builds and sends N+1, so the client's work
overlaps the server's instead of adding to it. N+1's segment holds, before its BEGIN, a guard that fails unless N's
history row is there (guard_committed): if N did not commit (a failed statement, a failed COMMIT, a lost lock),
N+1's segment is skipped whole, whether the session was left in a failed transaction or not. A failure of N drains
the segments behind it before it is raised, and nothing of them ran.

premigrate's own SQL in a batch (the guard, the lock check, the history INSERT) goes as named prepared statements
on a direct connection (drivers/postgres_prepared.py): the server plans them once per session, not once per
migration.

A mixin of its own so that PostgresDriver (drivers/postgres.py) fits in the size limits; it reads the held-back
SQL of PostgresSessionMixin (drivers/postgres_session.py).
"""

from __future__ import annotations

import re
import select
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg
from psycopg import errors as pg_errors, pq, sql as pg_sql

from premigrate.drivers.base import HISTORY_COLUMNS, HistoryRow, SqlError
from premigrate.drivers.postgres_prepared import INVALID_STATEMENT_NAME, Call, Parse, PreparedNames, drops_prepared
from premigrate.drivers.postgres_session import LOCK_NOT_HELD

_SYNC, _FAILED = pq.ExecStatus.PIPELINE_SYNC, pq.ExecStatus.FATAL_ERROR
# The guard's failure text, carried the way the lock check carries its own (an invalid integer literal).
PREVIOUS_NOT_COMMITTED = "premigrate: the migration before this one did not commit"
# What the server says of an item that holds two commands (extended protocol): the statement splitter read as one
# statement what the server reads as two. The migration then runs statement by statement (engine/together.py).
_TWO_COMMANDS = "cannot insert multiple commands into a prepared statement"


class _Stalled(Exception):
    """No answer before the deadline of settle_together."""


class Flight:
    """One segment sent and not yet read: its items, where the migration's statements are among them, and the
    results read so far."""

    __slots__ = ("items", "lost", "restore_in_transaction", "results", "synced", "together")

    def __init__(self, items: list[str | Call | Parse], together: list[int], lost: Callable[[], Exception] | None,
                 restore_in_transaction: bool) -> None:
        self.items, self.together, self.lost = items, together, lost
        self.restore_in_transaction = restore_in_transaction
        self.results: list[pq.abc.PGresult] = []
        self.synced = False

    def failed(self) -> int | None:
        """The index of the item that failed, None when none did."""
        return next((i for i, result in enumerate(self.results) if result.status == _FAILED), None)


class PostgresTogetherMixin:
    """The one-message methods of PostgresDriver (drivers/base.SendsTogether)."""

    sends_together: ClassVar[bool] = True  # engine/together.py checks for it; can_send_together() says when

    conn: psycopg.Connection[Any]
    statements_sent: int
    fence: Callable[[], None] | None
    param: ClassVar[str]
    _held_back: list[str | Call]  # a Call only while a batch is held (_together)
    _begin_held_at: int | None
    _lost: Callable[[], Exception] | None
    _restore_at: int | None
    _restore_in_transaction: bool
    _together: list[int] | None
    _fenced_transaction_open: bool
    _backend_pid: int | None
    _flights: deque[Flight] | None = None
    _sending = False  # a segment is being sent: if that is cut short, the session cannot be trusted (settle)
    # The session's prepared statements (drivers/postgres_prepared.py): None until the session is known to be a
    # direct connection, and for good when it is not (_direct False).
    _prepared: PreparedNames | None = None
    _direct: bool | None = None
    _literal_batch = False  # the batch held holds a statement that may drop prepared statements

    if TYPE_CHECKING:  # provided by PostgresDriver and SqlHistoryMixin
        @property
        def history_ref(self) -> str: ...
        def map_error(self, exc: psycopg.Error) -> Exception: ...
        def _row_params(self, row: HistoryRow) -> tuple[Any, ...]: ...
        def _write_history(self, sql: str, params: tuple[Any, ...]) -> None: ...
        def begin(self) -> None: ...
        def commit(self) -> None: ...
        def rollback(self) -> None: ...
        def abort(self) -> None: ...
        def _after_commit(self) -> None: ...

    def can_send_together(self) -> bool:
        # A fence (table lock) runs its own query in the transaction, and BEGIN goes out at once for it.
        return self.fence is None

    def hold_statement(self, text: str) -> None:
        """Hold back a statement of the migration whose transaction is open, to go out with the rest of the
        transaction (send_together). The newline ends a `--` comment at the statement's end."""
        if self._together is None:
            self._together = []
        self._together.append(len(self._held_back))
        self._held_back.append(text + "\n")
        if self._direct is not False and drops_prepared(text):
            self._literal_batch = True

    def begin_together(self) -> None:
        """BEGIN, for a transaction whose end goes out with its statements (send_together), outside the driver's
        transaction() block: the history write is held back as inside one."""
        self.begin()
        self._fenced_transaction_open = True

    def guard_committed(self, migration_id: str) -> None:
        """Hold back, just before the next segment's BEGIN, a check that fails unless `migration_id`'s history row is
        there: the segment is sent before the one that writes the row has answered (see the module docstring).
        After the session restore, so that it runs as the user premigrate connected as, whatever role the
        migration before it set; the restore before it only resets session settings, and a failed check rolls
        them back with it (what precedes BEGIN in the segment is part of its implicit transaction)."""
        def guard(value: str) -> str:
            return (f"SELECT (CASE WHEN EXISTS (SELECT 1 FROM {self.history_ref} WHERE migration_id = {value}) "
                    f"THEN '1' ELSE '{PREVIOUS_NOT_COMMITTED}' END)::int")

        at = self._begin_held_at if self._begin_held_at is not None else 0
        names = self.prepared_names()
        call = names.call(guard("%s"), (migration_id,), self.conn.info.encoding) if names is not None else None
        self._held_back.insert(at, call or guard(pg_sql.Literal(migration_id).as_string(self.conn)))
        if self._begin_held_at is not None:
            self._begin_held_at += 1
        if self._restore_at is not None and self._restore_at >= at:
            self._restore_at += 1
        if self._together is not None:
            self._together = [i + 1 if i >= at else i for i in self._together]

    def prepared_names(self) -> PreparedNames | None:
        """Where premigrate's own SQL in the batch being held goes as prepared statements: the session's names;
        None for literal SQL (no batch held, a batch that may drop them, not a direct connection, or not known yet
        to be one: its server pid is read by the first lock condition or blocker watch, never here, where a query
        would send what is held back)."""
        if self._together is None or self._literal_batch:
            return None
        if self._direct is None:
            if self._backend_pid is None:
                return None
            self._direct = self._backend_pid == self.conn.info.backend_pid
            if self._direct:
                self._prepared = PreparedNames()
        return self._prepared

    def forget_prepared_if_dropped(self, statement: str) -> None:
        """Before a migration's statement that runs on its own: one that may drop prepared statements has them
        prepared again, under new names, when next needed."""
        if self._prepared is not None and drops_prepared(statement):
            self._prepared.forget()

    @property
    def in_flight(self) -> int:
        """Segments sent whose results are not read yet."""
        return len(self._flights) if self._flights else 0

    def send_together(self) -> None:
        """Send what is held back, then COMMIT, as one pipeline segment, without waiting for its results."""
        items: list[str | Call | Parse] = [*self._held_back, "COMMIT"]
        together = self._together or []
        prepared = self._prepared
        if prepared is not None:
            if self._literal_batch:  # its statements may drop what was prepared: prepared again when next needed
                prepared.forget()
            parses = prepared.parses(items)
            if parses:  # first in the batch, where nothing before them can fail
                items[:0] = parses
                together = [i + len(parses) for i in together]
        restore_in_transaction = (self._restore_at is not None and self._begin_held_at is not None
                                  and self._restore_at < self._begin_held_at)
        flight = Flight(items, together, self._lost, restore_in_transaction)
        self._held_back, self._begin_held_at, self._lost, self._restore_at, self._together = [], None, None, None, None
        self._fenced_transaction_open = self._literal_batch = False
        self.statements_sent += 1
        pgconn, encoding = self.conn.pgconn, self.conn.info.encoding
        self._sending = True
        try:
            if pgconn.pipeline_status == pq.PipelineStatus.OFF:
                pgconn.enter_pipeline_mode()
            for item in items:
                if type(item) is str:
                    pgconn.send_query_params(item.encode(encoding), None)
                elif type(item) is Call:
                    assert prepared is not None  # a Call is held only with names (prepared_names)
                    pgconn.send_query_prepared(prepared.name(item), item.params)
                else:
                    assert type(item) is Parse
                    pgconn.send_prepare(item.name, item.sql.encode(encoding))
            pgconn.pipeline_sync()
            while pgconn.flush():  # non-blocking: read while the server answers, so that neither side stalls
                if self._wait(write=True):
                    pgconn.consume_input()
        except psycopg.Error as exc:
            raise self.map_error(exc) from exc
        self._sending = False
        if self._flights is None:
            self._flights = deque()
        self._flights.append(flight)

    def finish_together(self) -> list[int | None]:
        """Wait for the oldest segment in flight; the row counts of its migration statements (None where the
        server gives none). A failure drains the segments behind it (nothing of them ran), ends the transaction
        (rollback()) and names the migration statement that failed (SqlError.statement; None when it was
        premigrate's own SQL), its position inside it."""
        assert self._flights, "internal: no segment in flight"
        flight = self._flights[0]
        try:
            self._read(flight)
        except psycopg.Error as exc:
            raise self.map_error(exc) from exc
        self._flights.popleft()
        self._restore_in_transaction = flight.restore_in_transaction
        failed = flight.failed()
        if failed is None:
            self._leave_pipeline()
            self._after_commit()
            results = flight.results
            if len(results) != len(flight.items):  # an item the server read as none: counts cannot be matched
                return [None] * len(flight.together)
            return [results[i].command_tuples for i in flight.together]
        self.settle_together()  # which forgets the prepared names: what ran of the batches is not known
        error = self._failure(flight, failed)
        try:
            self.rollback()
        except Exception:  # noqa: BLE001 - a session that cannot even roll back: the failure is still the news
            pass
        raise error

    def settle_together(self, timeout_s: float | None = None) -> list[bool]:
        """Read every segment in flight to its end and leave pipeline mode: for each, whether it committed. A
        session that gives no answer within `timeout_s` (a stalled network), or whose segment's sending was cut
        short (a signal), cannot be trusted: it is aborted, which rolls back what the server has not committed;
        the history rows say what it had."""
        committed: list[bool] = []
        if self._prepared is not None:
            self._prepared.forget()
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while self._flights:
                flight = self._flights[0]
                self._read(flight, deadline)
                self._flights.popleft()
                committed.append(flight.failed() is None and len(flight.results) == len(flight.items))
            if self._sending:
                self.abort()
            else:
                self._leave_pipeline()
        except (psycopg.Error, _Stalled):
            self._flights = None
            self.abort()
        return committed

    def _failure(self, flight: Flight, failed: int) -> Exception:
        exc = pg_errors.error_from_result(flight.results[failed], encoding=self.conn.info.encoding)
        if exc.sqlstate == "22P02" and flight.lost is not None and LOCK_NOT_HELD in str(exc):
            return flight.lost()
        error = self.map_error(exc)
        if isinstance(error, SqlError):
            if failed in flight.together:
                error.statement = flight.together.index(failed) + 1
                error.two_commands = _TWO_COMMANDS in str(exc)
            else:
                error.statement, error.position = None, None
                error.at_commit = failed == len(flight.items) - 1  # COMMIT is the segment's last item
                # A prepared statement of premigrate's dropped by the migration (drivers/postgres_prepared.py).
                error.prepared_gone = (exc.sqlstate == INVALID_STATEMENT_NAME
                                       and type(flight.items[failed]) in (Call, Parse))
            error.message = _without_excerpt(str(exc))
        return error

    def _read(self, flight: Flight, deadline: float | None = None) -> None:
        """Read `flight`'s results up to its Sync: one per item (a failed one, then `aborted` ones after it)."""
        pgconn = self.conn.pgconn
        ended = False
        while not flight.synced:
            while pgconn.is_busy():
                self._wait(write=False, deadline=deadline)
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is None:  # the end of one item's results; twice in a row: nothing more will come
                if ended or pgconn.status == pq.ConnStatus.BAD:
                    raise psycopg.OperationalError("the connection ended before the batch's results")
                ended = True
                continue
            ended = False
            if result.status == _SYNC:
                flight.synced = True
            else:
                flight.results.append(result)

    def _wait(self, *, write: bool, deadline: float | None = None) -> bool:
        """Block (the GIL released) until the socket can be read, or written when `write`; True when readable.
        A signal's handler runs here (PEP 475) and its exception ends the wait; so does `deadline` (_Stalled)."""
        poller = select.poll()
        poller.register(self.conn.pgconn.socket, select.POLLIN | (select.POLLOUT if write else 0))
        timeout_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        events = poller.poll(timeout_ms)
        if not events:
            raise _Stalled()
        return any(event & (select.POLLIN | select.POLLERR | select.POLLHUP) for _, event in events)

    def _leave_pipeline(self) -> None:
        pgconn = self.conn.pgconn
        if not self._flights and pgconn.pipeline_status != pq.PipelineStatus.OFF:
            pgconn.exit_pipeline_mode()

    def insert_row_timed(self, row: HistoryRow) -> None:
        """insert_row, with applied_at and execution_ms taken by the server when the write runs: execution_ms is
        the time since the segment's transaction began (transaction_timestamp(), functions-datetime.html), which
        is the migration's own segment when it is sent in one; applied_at is that moment, not when the client built
        the row (a segment sent ahead is built while the migration before it runs)."""
        values = [self.param] * len(HISTORY_COLUMNS)
        params = list(self._row_params(row))
        server = {"execution_ms": "(extract(epoch FROM clock_timestamp() - transaction_timestamp()) * 1000)::bigint",
                  "applied_at": "clock_timestamp()"}
        for column in ("execution_ms", "applied_at"):  # the later column first: deleting shifts what follows
            at = HISTORY_COLUMNS.index(column)
            values[at] = server[column]
            del params[at]
        self._write_history(
            f"INSERT INTO {self.history_ref} ({', '.join(HISTORY_COLUMNS)}) VALUES ({', '.join(values)})",
            tuple(params),
        )


_EXCERPT = re.compile(r"LINE \d+: ")


def _without_excerpt(text: str) -> str:
    """The server's error text on one line, without libpq's `LINE n:` excerpt and caret: the error names its
    statement and that statement's line itself."""
    lines = (line.strip() for line in text.splitlines())
    return " ".join(line for line in lines if line and not _EXCERPT.match(line) and set(line) != {"^"})
