"""PostgresDriver's session restore between migrations (restore_session, own_identity_local), its runner lock (a
session advisory lock, with the condition that guards history writes), and the SQL it holds back to send with the
next message.

Held back (_hold_back): what needs no answer before the next statement: the session restore between migrations,
BEGIN and its SET LOCAL timeouts, the runner-lock check before a migration (check_later), the identity reset and
lock check before the history write, and that write itself inside a transaction of ours. It all goes out, in order,
in one simple-query message with the next SQL the driver sends: premigrate's own parameterless SQL (COMMIT) at the
end of that message, a migration's first statement after it when the message opens the migration's transaction,
anything else (a query with parameters, a statement outside our transaction) alone right after it. A migration of
two statements in a transaction run statement by statement is three round trips: [restore; BEGIN; SET LOCAL;
statement 1], statement 2, [identity; lock check; history INSERT; COMMIT]; sent in one batch, with its statements
held back too, it is one (drivers/postgres_together.py). Each held-back item is one statement. (The lock check
before the migration is left out after a migration whose COMMIT carried one a moment before:
engine/sessions.HeldLock.vouch.) A failing statement of a simple-query message skips the rest of it (PostgreSQL
docs, protocol-flow.html, "Multiple Statements in a Simple Query"), so a failed lock check starts no statement and
commits nothing. The same section: a BEGIN in the message turns what came before it into part of that transaction,
so the session restore rolls back with a failed migration; it is then held back again (rollback()).

A mixin of its own so that PostgresDriver (drivers/postgres.py) fits in the size limits; it holds SQL only, and
reads the driver's settings and statement helpers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import psycopg
from psycopg import pq, sql as pg_sql

from premigrate.drivers.base import DriverSettings, SqlError, lock_key_int64
from premigrate.drivers.postgres_prepared import Call, PreparedNames
from premigrate.model.sql import ROWS_CHUNK

# The lock check as a statement that fails unless the lock is held: an invalid integer literal carrying this text.
# The condition is not a constant (a pg_locks subquery), so the planner cannot fold the cast ahead of it.
LOCK_NOT_HELD = "premigrate: the runner lock is not held"
_COPY_ROW = re.compile(r"^COPY [^,]+, line (\d+)")


class PostgresSessionMixin:
    """The session and runner-lock methods of PostgresDriver (see the module docstring)."""

    conn: psycopg.Connection[Any]
    settings: DriverSettings
    database_oid: int | None  # this session's database, read with its pid (PostgresDriver.session_id)
    statements_sent: int
    fence: Callable[[], None] | None
    _held_back: list[str | Call]  # a Call only in a batch held for send_together (drivers/postgres_prepared.py)
    _begin_held_at: int | None  # where BEGIN is in _held_back, until it is sent
    _literal_batch: bool  # see PostgresTogetherMixin
    _lost: Callable[[], Exception] | None  # the error of a held-back lock check that fails
    _restore_at: int | None = None  # where the session restore is in _held_back
    _restore_in_transaction = False  # the restore went out in the open transaction: undone if it rolls back
    _write_guard: tuple[str, tuple[Any, ...]] | None
    _fenced_transaction_open: bool
    _client: psycopg.ClientCursor[Any] | None = None
    _together: list[int] | None = None  # where held-back migration statements are (drivers/postgres_together.py)
    _check_sql: tuple[tuple[str, tuple[Any, ...]], str] | None = None  # the guard, and its check as SQL text

    if TYPE_CHECKING:  # provided by PostgresDriver and SqlHistoryMixin
        def _exec(self, query: Any, params: tuple[Any, ...] | None = None) -> None: ...
        def map_error(self, exc: psycopg.Error) -> Exception: ...
        def _search_path_sql(self) -> pg_sql.Composed: ...
        def _fetchall(self, query: Any, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]: ...
        def prepare_session(self) -> None: ...
        def session_id(self) -> int | None: ...
        def prepared_names(self) -> PreparedNames | None: ...

    def restore_session(self) -> bool:
        # RESET ALL leaves the role and the session user alone (they are not reset by it): those first. SET SESSION
        # AUTHORIZATION DEFAULT resets both the session user and the current role (sql-set-session-authorization.html:
        # it "resets the session and current user identifiers"; a role set at connect time, by ALTER ROLE/DATABASE
        # ... SET role, comes back); it is how DISCARD ALL resets them (sql-discard.html), with no RESET ROLE: one
        # pipeline item fewer per migration. Then every setting is back at its connect-time value, and the
        # search_path of --schema is set again.
        self._restore_at = len(self._held_back)
        for statement in ("SET SESSION AUTHORIZATION DEFAULT", "RESET ALL"):
            self._hold_back(statement)
        if self.settings.search_path:
            self._hold_back(self._search_path_sql())
        return True

    def own_identity_local(self) -> None:
        # As in restore_session, SET SESSION AUTHORIZATION DEFAULT resets the current role too: back to the identity
        # the session had at connect (the login user, or the role ALTER ROLE/DATABASE ... SET role gives it), the one
        # that created and reads the history table, with no SET LOCAL ROLE NONE after it (which would make the write
        # the login user's instead): one pipeline item fewer per migration.
        self._hold_back("SET LOCAL SESSION AUTHORIZATION DEFAULT")

    # -- SQL held back for the next message (see the module docstring) ------------------------------------------

    def begin(self) -> None:
        # Held back: BEGIN goes out with what the transaction sends first (drivers/postgres_session.py); sent now
        # when a fence runs in the transaction, which uses the connection directly.
        self._begin_held_at = len(self._held_back)
        self._hold_back("BEGIN")
        if self.settings.search_path:
            # Also transaction-local: behind a transaction pooler the session's SET of prepare_session() stays on a
            # backend this transaction may not get.
            self._hold_back(pg_sql.SQL("SET LOCAL search_path TO {}").format(
                pg_sql.Identifier(self.settings.search_path)))
        if self.fence is not None:
            self._send_held_back()

    def commit(self) -> None:
        self._exec("COMMIT")
        self._after_commit()

    def rollback(self) -> None:
        if not self._drop_transaction_held_back():
            return  # BEGIN was never sent: nothing to roll back (what came before it goes with the next message)
        if self.conn.closed or self.conn.broken:
            return
        if self.conn.info.transaction_status != pq.TransactionStatus.IDLE:  # a failed message may have ended it
            self._exec("ROLLBACK")
        self._after_rollback()

    def _hold_back(self, query: str | pg_sql.Composable) -> None:
        self._held_back.append(query if isinstance(query, str) else query.as_string(self.conn))

    def _send_held_back(self, then: str | None = None, *, statement: str | None = None) -> int | None:
        """Send what was held back, with `then` (parameterless SQL of premigrate's own) or a migration's
        `statement` at the end, in one message. With `statement`: its row count, and the server's error position
        made the statement's own (None when the error is in what went before it)."""
        if self._together:
            raise RuntimeError("internal: held-back migration statements would go out without send_together")
        held = cast(list[str], self._held_back)  # a Call is held only with _together (drivers/postgres_prepared.py)
        prefix = "; ".join(held + ([then] if then is not None else []))
        if statement is not None:
            prefix += ";\n"
        lost = self._lost
        if self._restore_at is not None and self._begin_held_at is not None:
            self._restore_in_transaction = self._restore_at < self._begin_held_at
        self._held_back, self._begin_held_at, self._lost, self._restore_at = [], None, None, None
        self.statements_sent += 1
        try:
            cursor = self.conn.execute(prefix + statement if statement is not None else prefix)
            while cursor.nextset():  # the statement's result is the last one
                pass
        except psycopg.Error as exc:
            if lost is not None and exc.sqlstate == "22P02" and LOCK_NOT_HELD in str(exc):
                raise lost() from None
            error = self.map_error(exc)
            if isinstance(error, SqlError):
                # 1-based, in this message: past the prefix it points into the statement; else into premigrate's
                # own SQL, which is no position in any migration.
                inside = statement is not None and error.position is not None and error.position > len(prefix)
                error.position = error.position - len(prefix) if inside and error.position is not None else None
            raise error from exc
        return cursor.rowcount if cursor.rowcount >= 0 else None

    def copy_rows(self, command: str, rows: str) -> int | None:
        """COPY ... FROM STDIN, with `rows` (the lines a file gives after it) as its data (drivers/base.CopiesRows).
        COPY goes to the server alone: what was held back goes first, in a message of its own."""
        if self._held_back:
            self._send_held_back()
        self.statements_sent += 1
        try:
            with self.conn.cursor() as cursor:
                with cursor.copy(command) as copy:
                    for at in range(0, len(rows), ROWS_CHUNK):  # encoded a chunk at a time (model/sql.py)
                        copy.write(rows[at:at + ROWS_CHUNK])
                return cursor.rowcount if cursor.rowcount >= 0 else None
        except psycopg.Error as exc:
            error = self.map_error(exc)
            # The server names the row it refused in its error context: "COPY t, line 2, column id: ...".
            row = _COPY_ROW.search(exc.diag.context or "")
            if isinstance(error, SqlError) and row:
                error.message += f" (row {row.group(1)} of the COPY's data)"
            raise error from exc

    def _drop_transaction_held_back(self) -> bool:
        """Before a rollback: forget what the transaction held back. False when its BEGIN was never sent."""
        self._together, self._literal_batch = None, False
        if self._begin_held_at is None:
            self._held_back, self._lost, self._restore_at = [], None, None
            return True
        self._held_back, self._begin_held_at, self._lost = self._held_back[:self._begin_held_at], None, None
        return False

    def _after_rollback(self) -> None:
        """The session restore that went out inside the rolled-back transaction was undone with it: again."""
        if self._restore_in_transaction:
            self._restore_in_transaction = False
            self.restore_session()

    def _after_commit(self) -> None:
        self._restore_in_transaction = False

    def check_later(self, lost: Callable[[], Exception]) -> bool:
        if self._write_guard is None:
            return False
        if self._check_sql is None or self._check_sql[0] != self._write_guard:  # rendered once per guard
            condition, params = self._write_guard
            literal = pg_sql.SQL(condition.replace("%s", "{}")).format(*(pg_sql.Literal(p) for p in params))
            check = pg_sql.SQL("SELECT (CASE WHEN {} THEN '1' ELSE {} END)::int").format(
                literal, pg_sql.Literal(LOCK_NOT_HELD))
            self._check_sql = (self._write_guard, check.as_string(self.conn))
        names = self.prepared_names()  # in a batch on a direct connection: a prepared statement
        self._held_back.append(Call(self._check_sql[1], ()) if names is not None else self._check_sql[1])
        self._lost = lost
        return True

    def _write_history(self, sql: str, params: tuple[Any, ...]) -> None:
        """Inside a transaction of ours and unfenced, a history write needs no answer before the COMMIT: held back
        (bound on the client) and sent with it; its failure fails the COMMIT's message, and the transaction rolls
        back."""
        if self._fenced_transaction_open and self.fence is None:
            names = self.prepared_names()
            call = names.call(sql, params, self.conn.info.encoding) if names is not None else None
            if call is not None:
                self._held_back.append(call)
                return
            if self._client is None:
                self._client = psycopg.ClientCursor(self.conn)
            self._held_back.append(self._client.mogrify(sql, params))
            return
        super()._write_history(sql, params)  # type: ignore[misc]

    # -- runner lock: a session advisory lock, polled, on an autocommit session of its own ------------------------

    def try_lock(self, key: str) -> bool:
        return bool(self._fetchall("SELECT pg_try_advisory_lock(%s)", (lock_key_int64(key),))[0][0])

    def unlock(self, key: str) -> None:
        self._exec("SELECT pg_advisory_unlock(%s)", (lock_key_int64(key),))

    def _lock_condition(self, key: str, holder: int) -> tuple[str, tuple[Any, ...]]:
        """The lock is held by the session `holder`. The database is this session's, as an oid read once
        (session_id): the condition rides with every migration's history write, and looking the oid up in
        pg_database each time was a third of its planning and running on the server."""
        k = lock_key_int64(key) & 0xFFFFFFFFFFFFFFFF
        self.session_id()
        return ("""EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %s
                   AND database = %s::oid AND classid = %s::int8::oid AND objid = %s::int8::oid AND objsubid = 1)""",
                (holder, self.database_oid, (k >> 32) & 0xFFFFFFFF, k & 0xFFFFFFFF))

    def lock_held(self, key: str) -> bool:
        condition, params = self._lock_condition(key, self.session_id() or 0)
        return bool(self._fetchall(f"SELECT {condition}", params)[0][0])

    def lock_holder(self, key: str) -> dict[str, Any] | None:
        k = lock_key_int64(key) & 0xFFFFFFFFFFFFFFFF
        rows = self._fetchall(
            """SELECT a.pid, a.application_name, host(a.client_addr), a.usename,
                      extract(epoch FROM now() - coalesce(a.backend_start, now()))::int
               FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
               WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
                     SELECT oid FROM pg_database WHERE datname = current_database())
                 AND l.classid = %s::int8::oid AND l.objid = %s::int8::oid AND l.objsubid = 1""",
            ((k >> 32) & 0xFFFFFFFF, k & 0xFFFFFFFF),
        )
        if not rows:
            return None
        pid, app, addr, user, seconds = rows[0]
        return {"pid": pid, "application_name": app, "client_addr": addr, "user": user, "connected_s": seconds}
