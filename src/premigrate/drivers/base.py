"""The driver contract: one session to one database, holding SQL and error mapping only (no ordering, no policy).

Capability flags, not dialect checks, tell the runner what a database can do:
- transactional_ddl: DDL can be rolled back, so a migration and its history row commit in one transaction
  (PostgreSQL, SQLite). MySQL/MariaDB commit DDL implicitly: progress is recorded statement by statement.
- supports_schema: --schema means something (PostgreSQL).
- local_timeouts: timeouts can be set for one transaction only (PostgreSQL SET LOCAL); elsewhere they are session
  values, set before the transaction begins (SQLite's busy timeout bounds BEGIN IMMEDIATE) and reset afterwards.
- invalid_indexes: a failed concurrent index build leaves an invalid index behind that must be dropped (PostgreSQL).
- table_names_fold_case: `Users` and `users` name the same table (MySQL on most systems, SQLite); on PostgreSQL an
  unquoted name is folded to lower case but a quoted "Users" is another table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from premigrate.model.dsn import Dsn
from premigrate.errors import PremigrateError

if TYPE_CHECKING:
    from premigrate.model.sql import Statement

class State(StrEnum):
    """A history row's state, as stored in its `state` column."""

    APPLIED = "applied"
    IN_PROGRESS = "in_progress"  # a stepwise run is under way, or stopped (statement_started says where)
    FAILED = "failed"
    ROLLING_BACK = "rolling_back"  # a `down` of a no-transaction or MySQL migration is under way or stopped


STATE_APPLIED = State.APPLIED
STATE_IN_PROGRESS = State.IN_PROGRESS
STATE_FAILED = State.FAILED
STATE_ROLLING_BACK = State.ROLLING_BACK

HISTORY_COLUMNS = (
    "migration_id", "version", "description", "kind", "script", "checksum", "applied_at", "execution_ms",
    "applied_by", "state", "statements_done", "statements_total", "statement_started", "statement_hashes", "error",
    "premigrate_version",
)


@dataclass(frozen=True)
class HistoryRow:
    """One row of the history table: a migration applied, or where a run of it stands."""
    migration_id: str
    version: str | None
    description: str
    kind: str  # versioned | repeatable | baseline
    script: str
    checksum: str
    applied_at: datetime
    execution_ms: int
    applied_by: str
    state: str  # a State value (a row written by another version may hold one this one does not know)
    statements_done: int = 0
    statements_total: int = 0
    # 1-based index of the last statement started. Greater than statements_done while a statement runs: if the
    # process dies then, nobody knows whether that statement took effect ("in doubt").
    statement_started: int = 0
    statement_hashes: tuple[str, ...] = ()
    error: str | None = None
    premigrate_version: str = ""

    @property
    def in_doubt(self) -> bool:
        return self.state == STATE_IN_PROGRESS and self.statement_started > self.statements_done

    def evolve(self, **changes: Any) -> HistoryRow:
        """A copy with `changes`, as dataclasses.replace makes it (unknown names refused the same way), at under half
        its cost: a MySQL run evolves a row about six times per migration, between round trips. The fields are
        plain values with no __post_init__, so a copy of the instance dict is a complete row."""
        if not _ROW_FIELDS.issuperset(changes):
            raise TypeError(f"HistoryRow has no field {', '.join(sorted(changes.keys() - _ROW_FIELDS))}")
        row = object.__new__(self.__class__)
        row.__dict__.update(self.__dict__, **changes)
        return row

    def values(self) -> tuple[Any, ...]:
        return (
            self.migration_id, self.version, self.description, self.kind, self.script, self.checksum,
            self.applied_at, self.execution_ms, self.applied_by, str(self.state), self.statements_done,
            self.statements_total, self.statement_started, " ".join(self.statement_hashes), self.error,
            self.premigrate_version,
        )


_ROW_FIELDS = frozenset(f.name for f in fields(HistoryRow))


@dataclass(frozen=True)
class DriverSettings:
    """What a driver needs to know besides the URL: the history table, the schema, timeouts."""
    table: str  # unqualified history table name
    schema: str | None = None  # schema of the history table (PostgreSQL)
    search_path: str | None = None  # --schema (PostgreSQL)
    application_name: str = "premigrate"
    connect_timeout: float | None = 10.0
    read_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # --password-command: a fresh password for a helper connection the driver opens itself (MySQL's KILL QUERY
    # session), since the one it connected with may have expired by then.
    password_source: Callable[[], str] | None = field(default=None, repr=False)


_NO_PRIVILEGE = frozenset({"42501", "25006", "1142", "1143", "1044", "1227", "1290", "1036"})


class SqlError(PremigrateError):
    """A statement failed on the server. `code` is the SQLSTATE (PostgreSQL), errno (MySQL) or error name (SQLite)."""

    exit_code = 4

    def __init__(self, message: str, *, code: str | None = None, code_field: str = "code", position: int | None = None,
                 lock_contention: bool = False):
        super().__init__(message)
        self.code = code
        # A lock timeout or deadlock: the statement did not take effect and can be retried once the lock is free.
        self.lock_contention = lock_contention
        self.code_field = code_field  # how the log names the code: sqlstate | errno | code
        self.position = position  # 1-based character offset in the statement, when the server gives one
        # Which statement of a migration sent in one message with others failed (1-based; drivers/postgres_together
        # send_together), None when it was premigrate's own SQL or the statement was sent alone.
        self.statement: int | None = None
        # That statement holds two commands for the server, sent where one is allowed (a batch's item): it runs
        # again statement by statement, as a message of its own can hold two (engine/together.py).
        self.two_commands = False
        # premigrate's own prepared statement in that batch was gone, dropped by the migration (a DEALLOCATE inside
        # a function): nothing committed, and the migration runs again statement by statement, as literal SQL
        # (drivers/postgres_prepared.py).
        self.prepared_gone = False
        # The COMMIT of a migration's transaction failed (a deferred constraint, a serialization failure): every
        # statement ran, and the transaction was rolled back. The executor names the migration (exit 4).
        self.at_commit = False
        # premigrate's own history write, sent in one message in front of a migration's statement, failed: the
        # statement did not run (drivers/mysql_write_first.py). Raised as it is, as the write on its own would be.
        self.own_write = False

    @property
    def lacks_privilege(self) -> bool:
        """The user may not do this, or the database takes no writes: a grant (or another user) is the fix, not the
        SQL. PostgreSQL insufficient_privilege and read_only_sql_transaction; MySQL's access-denied errors and
        --read-only; SQLite's read-only file."""
        return self.code in _NO_PRIVILEGE or (self.code or "").startswith(("SQLITE_READONLY", "SQLITE_PERM"))


class ConnectFailed(PremigrateError):
    """A connection attempt failed. `transient` failures are retried until --wait-timeout; the others are final."""

    exit_code = 3

    def __init__(self, message: str, *, transient: bool, reason: str) -> None:
        super().__init__(message)
        self.transient = transient
        # refused | dns | timeout | starting_up | too_many_connections | auth | unknown_database | ...
        self.reason = reason


@dataclass(frozen=True)
class Capabilities:
    """What a database can do, read once from its driver class (see the module docstring for each flag)."""

    dialect: str
    transactional_ddl: bool
    local_timeouts: bool
    invalid_indexes: bool
    supports_schema: bool
    table_names_fold_case: bool

    @classmethod
    def of(cls, driver: type[Driver] | Driver) -> Capabilities:
        return cls(dialect=driver.dialect, transactional_ddl=driver.transactional_ddl,
                   local_timeouts=driver.local_timeouts, invalid_indexes=driver.invalid_indexes,
                   supports_schema=driver.supports_schema, table_names_fold_case=driver.table_names_fold_case)


class Driver(Protocol):
    """One session to one database. Holds SQL and error mapping only: no ordering, no policy (that is the engine's).

    Every method maps the database library's errors at the boundary: a failed statement raises SqlError (with the
    server's code and, when known, whether it was lock contention), a broken connection ConnectionLost, a failed
    connect ConnectFailed. The class attributes below are read once into a Capabilities value.
    """

    dialect: ClassVar[str]
    transactional_ddl: ClassVar[bool]
    invalid_indexes: ClassVar[bool]
    local_timeouts: ClassVar[bool]
    supports_schema: ClassVar[bool]
    table_names_fold_case: ClassVar[bool]
    code_field: ClassVar[str]
    # Set by the engine while a `table` runner lock is held: run in the same transaction as every history write,
    # just before its COMMIT (SqlHistoryMixin in drivers/history.py); raises LockLost when the lease is no longer
    # this runner's.
    fence: Callable[[], None] | None
    # Round trips this session has made: migration statements (execute) and the driver's own SQL (history, locks,
    # timeouts), one per message whether it carries one statement or several (PostgreSQL sends what it held back
    # in one message). Only counted, never reset; tests assert round trips with it.
    statements_sent: int
    # The rows of callbacks a run still owes (model/owed.py), as the last read_history found them: that method
    # returns migration rows only.
    owed_callbacks: tuple[HistoryRow, ...]

    @classmethod
    def connect(cls, dsn: Dsn, settings: DriverSettings) -> Driver:
        """One connection attempt (engine/sessions.py; engine/waiting.py retries it). Raises ConnectFailed saying
        whether the failure is transient (refused, starting up) or final (bad password, unknown database), or
        UsageError for a URL parameter the driver does not know. The session is in autocommit mode."""
    @classmethod
    def check_url(cls, dsn: Dsn) -> None:
        """Raise UsageError for a URL parameter connect() would refuse, without connecting or loading anything
        (a fleet checks every target's URL before any target runs)."""
    @classmethod
    def database_missing(cls, dsn: Dsn) -> bool:
        """Whether the database does not exist yet and `up` would create it (a SQLite file); servers: False.
        Asked by `plan`, which must not create it."""
    def limit_statement_time(self, seconds: float) -> None:
        """Bound every later statement of this session to `seconds` (serve's health probe, read-only queries)."""
    def set_timeouts(self, lock_timeout: float | None, statement_timeout: float | None, *, local: bool) -> None:
        """Bound the next statements' wait for locks and their run time (None: leave as is; 0: no limit). Called by
        the executor before a migration's statements. local: only until the end of the open transaction, where
        the database has that (Capabilities.local_timeouts); elsewhere session values until reset_timeouts()."""
    def reset_timeouts(self) -> None:
        """Back to the session's defaults after set_timeouts(local=False) (the executor, after the run or before a
        file without its own statement timeout)."""
    def session_id(self) -> int | None:
        """This session's id as the server's activity views show it (None: the database has none). The blocker
        watch passes it to blockers() on another session."""
    def blockers(self, session_id: int) -> list[dict[str, Any]]:
        """Sessions that hold what `session_id` is waiting for, called from another session (the lock session)
        while a statement waits. Best effort, read-only, quick; empty when unknown."""
    def drop_invalid_index(self, name: str) -> str | None:
        """Drop index `name` if a failed concurrent build left it invalid and return its name; None (nothing
        dropped) when the index is valid, absent, or the database has no such thing. Called by the executor
        before retrying and after failing a CREATE INDEX CONCURRENTLY."""
    def close(self) -> None:
        """End the session; a runner lock it holds ends with it. Never raises."""
    def server_version(self) -> str:
        """The server's product and version, for log lines."""
    def prepare_session(self) -> None:
        """Session settings a migration session needs (PostgreSQL: the search_path of --schema); called once
        after connect()."""
    def history_exists(self) -> bool:
        """Whether the history table exists (read-only)."""
    def ensure_history_table(self) -> bool:
        """Create the history table if it does not exist; True when it was created. Called under the runner lock."""
    def read_history(self) -> list[HistoryRow]:
        """Every migration's history row; [] when the table does not exist (creating nothing). Safe inside an open
        transaction: a missing table does not abort it. The rows of owed callbacks go to owed_callbacks."""
    def begin(self) -> None:
        """Open a transaction (SQLite: BEGIN IMMEDIATE, taking the write lock up front). Use transaction()."""
    def commit(self) -> None: ...
    def rollback(self) -> None:
        """Roll back the open transaction; a no-op without one."""
    def transaction(self) -> AbstractContextManager[None]:
        """begin(), then commit() when the block ends normally; on any exception (a signal included) a quiet
        rollback() and the exception propagates. Every transaction premigrate opens goes through here."""
    def execute(self, statement: str) -> int | None:
        """Run one migration statement as written (no parameters: % and {} pass unchanged). Raises SqlError with
        the server's code, the 1-based position when known, and lock_contention for a lock timeout or deadlock
        (the executor retries those). Returns the rows affected as the library reports them (cursor.rowcount),
        None where it reports no count."""
    def insert_row(self, row: HistoryRow) -> None:
        """Insert a history row; a second row for the same migration id is refused (SqlError)."""
    def update_row(self, row: HistoryRow) -> None:
        """Rewrite the history row of row.migration_id, every column."""
    def delete_row(self, migration_id: str) -> None:
        """Remove a history row (`down`, `repair --forget`)."""
    def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (another tool's history table, for `baseline --from`)."""
    def ensure_schema(self) -> None:
        """Create the schemas the history table and --schema name, if missing (PostgreSQL); elsewhere nothing."""
    def try_lock(self, key: str) -> bool:
        """Take the runner lock `key` without waiting; True when taken. Session-scoped: it ends with the session.
        Polled by engine/locking.py on a session of its own, never inside a transaction."""
    def unlock(self, key: str) -> None:
        """Release the runner lock `key` held by this session."""
    def lock_holder(self, key: str) -> dict[str, Any] | None:
        """Who holds the runner lock `key` (pid, host, application...), None when nobody; for the waiting logs."""
    def interrupt(self) -> None:
        """Stop the statement running on this session; called from another thread (a signal's cancel hook).
        The statement then raises SqlError (or Interrupted)."""
    def abort(self) -> None:
        """Cut the session's network connection at once, from any thread: a call blocked on a stalled network (a
        proxy that holds traffic) fails right away. The session is unusable afterwards; close() still works."""
    def list_tables(self) -> list[str]:
        """The tables of the migrated schema (baseline, serve's expected tables)."""
    def lock_held(self, key: str) -> bool:
        """Whether this session still holds the runner lock `key` (the lock session's keepalive and check: one
        cheap query). Raises ConnectionLost when the session is gone, which ends the lock too."""
    def guard_writes(self, key: str, holder: int | None) -> None:
        """Make every later update_row() conditional on session `holder` (a session_id()) still holding the runner
        lock `key`, in the same statement: a row is never written by a run that lost its lock (update_row then
        raises LockLost). None: no guard (SQLite: the lock is a file lock of this process, it cannot be lost); nor
        when `holder` is this session (its lock ends only with this session or its own release)."""
    def finish_and_start(self, final: HistoryRow, ahead: HistoryRow, draft: object | None = None) -> None:
        """update_row(final) and insert_row(ahead) in one transaction, both or neither (a migration's last row and
        the next one's "statement 1 started"), conditional on the runner lock like update_row. `draft`: what
        prepare_finish made for them, used where it still fits."""
    def prepare_finish(self, final: HistoryRow, ahead: HistoryRow) -> object | None:
        """finish_and_start's SQL for these rows made now, with no I/O, while the migration's last statement runs
        on another session; `final`'s applied_at and execution_ms are filled in when it is sent. None where
        nothing is made ahead."""
    def check_later(self, lost: Callable[[], Exception]) -> bool:
        """Check the guard of guard_writes() (the runner lock still held by its session) on this session, sent
        with the SQL this session sends next and before any statement of a migration: a failed check raises
        `lost()` there and nothing sent after the check in the same message takes effect. False: this driver
        does not defer (the caller checks on the lock session itself)."""
    def hold_update(self, row: HistoryRow, since: HistoryRow, lost: Callable[[], Exception],
                    prepared: object | None = None) -> bool:
        """Hold update_row(row) to go out with the next statement execute() sends, in the same message and before
        it, checked against the runner lock like check_later(lost); `since` is the row as last written;
        `prepared`: prepare_update's for them, used where it still fits. False when this session cannot carry it
        (the caller writes it as usual); then nothing is held."""
    def prepare_update(self, row: HistoryRow, since: HistoryRow) -> object | None:
        """hold_update's write made now, with no I/O, while the statement before it runs; None where nothing is
        made ahead."""
    def drop_held_write(self) -> None:
        """Forget a write held by hold_update() whose statement will not be sent."""
    def restore_session(self) -> bool:
        """Undo what a migration may have changed in this session's state (role, search_path, timeouts, session
        variables), so that it does not leak into the next migration; the executor calls it between migrations.
        True when the session's settings were reset (the timeouts premigrate set are gone with them); False when
        there was nothing to undo and nothing was sent."""
    def database_changed(self) -> str | None:
        """The current database when a migration switched it (MySQL `USE`), else None (no query where a
        statement cannot switch it)."""
    def own_identity_local(self) -> None:
        """Inside an open transaction, before premigrate's own write on a migration's session: act as the identity
        the session had when premigrate connected again until the transaction ends (a migration's SET ROLE must not
        make the history write fail). A no-op where a migration cannot change it."""
    def rebound(self, dsn: Dsn, settings: DriverSettings) -> Driver | None:
        """This session reset to the state of a new connection (nothing a migration set survives: variables,
        temporary tables, locks) and pointed at `dsn` with `settings`, not yet prepared: a fleet worker moving on
        to its next target on the same server. None when it cannot serve that target (another server, user or
        password; another database where the session cannot switch; a session not idle, or the reset failed): the
        caller closes it and connects anew. The old driver object must not be used afterwards."""


def shutdown_socket(fd: int) -> None:
    """shutdown() the socket behind `fd` (on a duplicate, so the owner's descriptor stays its own): a thread blocked
    reading or writing it returns at once, where close() from another thread would not wake it."""
    import os
    import socket

    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


def lock_key_text(database: str, table: str) -> str:
    return f"premigrate:{database}:{table}"


def lock_key_int64(text: str) -> int:
    """A stable signed 64-bit key (PostgreSQL advisory locks take a bigint)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


class SendsTogether(Driver, Protocol):
    """A driver that can send a migration's statements, the runner-lock check, the history row and COMMIT to the
    server in one message (PostgreSQL: drivers/postgres_together.py; used by engine/together.py)."""

    def can_send_together(self) -> bool:
        """Whether this session's history writes can go in the same message (not while a table lock fences them)."""
        ...

    def hold_statement(self, text: str) -> None:
        """Hold back a statement of the open transaction, to go out with send_together."""
        ...

    def insert_row_timed(self, row: HistoryRow) -> None:
        """insert_row, with the row's applied_at and execution_ms taken by the server when the write runs."""
        ...

    def begin_together(self) -> None:
        """BEGIN a transaction that send_together ends, outside the transaction() block."""
        ...

    def guard_committed(self, migration_id: str) -> None:
        """Hold back, first, a check that fails unless `migration_id`'s history row is there (a batch sent ahead)."""
        ...

    def send_together(self) -> None:
        """Send what is held back and COMMIT as one batch, without waiting for its results."""
        ...

    def finish_together(self) -> list[int | None]:
        """Wait for the oldest batch in flight; the held-back statements' row counts. A failure ends the transaction
        and names the failed statement in SqlError.statement (None: premigrate's own SQL)."""
        ...

    def settle_together(self, timeout_s: float | None = None) -> list[bool]:
        """Read every batch in flight to its end (a session silent for `timeout_s` is cut off); for each, whether it
        committed."""
        ...

    @property
    def in_flight(self) -> int:
        """Batches sent whose results are not read yet."""
        ...


class CopiesRows(Driver, Protocol):
    """A driver that runs COPY ... FROM STDIN with the rows a file gives it (PostgreSQL: drivers/postgres.py)."""

    def copy_rows(self, command: str, rows: str) -> int | None:
        """Run the COPY `command`, sending `rows` (psql's text, one row per line) as its data; the rows copied."""
        ...


def execute_statement(driver: Driver, statement: Statement) -> int | None:
    """A migration's statement through its driver: as written (Driver.execute), or, for COPY ... FROM STDIN, with the
    rows that follow it in the file (model/client_commands.py; only PostgreSQL's splitter finds such rows)."""
    if statement.rows is None:
        return driver.execute(statement.text)
    if getattr(driver, "copy_rows", None) is None:
        raise PremigrateError(f"COPY ... FROM STDIN with rows needs PostgreSQL, not {driver.dialect}")
    return cast(CopiesRows, driver).copy_rows(statement.text, statement.rows)
