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
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, ClassVar, Protocol

from premigrate import log
from premigrate.model.dsn import Dsn
from premigrate.errors import PremigrateError

STATE_APPLIED = "applied"
STATE_IN_PROGRESS = "in_progress"
STATE_FAILED = "failed"
STATE_ROLLING_BACK = "rolling_back"  # a `down` of a no-transaction or MySQL migration is under way or stopped

HISTORY_COLUMNS = (
    "migration_id", "version", "description", "kind", "script", "checksum", "applied_at", "execution_ms",
    "applied_by", "state", "statements_done", "statements_total", "statement_started", "statement_hashes", "error",
    "premigrate_version",
)


@dataclass(frozen=True)
class HistoryRow:
    migration_id: str
    version: str | None
    description: str
    kind: str  # versioned | repeatable | baseline
    script: str
    checksum: str
    applied_at: datetime
    execution_ms: int
    applied_by: str
    state: str  # applied | in_progress | failed
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
        return replace(self, **changes)

    def values(self) -> tuple[Any, ...]:
        return (
            self.migration_id, self.version, self.description, self.kind, self.script, self.checksum,
            self.applied_at, self.execution_ms, self.applied_by, self.state, self.statements_done,
            self.statements_total, self.statement_started, " ".join(self.statement_hashes), self.error,
            self.premigrate_version,
        )


@dataclass(frozen=True)
class DriverSettings:
    table: str  # unqualified history table name
    schema: str | None = None  # schema of the history table (PostgreSQL)
    search_path: str | None = None  # --schema (PostgreSQL)
    application_name: str = "premigrate"
    connect_timeout: float | None = 10.0
    read_only: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


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


class ConnectFailed(PremigrateError):
    """A connection attempt failed. `transient` failures are retried until --wait-timeout; the others are final."""

    exit_code = 3

    def __init__(self, message: str, *, transient: bool, reason: str) -> None:
        super().__init__(message)
        self.transient = transient
        self.reason = reason  # refused | dns | timeout | starting_up | too_many_connections | auth | unknown_database | ...


class Driver(Protocol):
    dialect: ClassVar[str]
    transactional_ddl: ClassVar[bool]
    invalid_indexes: ClassVar[bool]
    local_timeouts: ClassVar[bool]
    supports_schema: ClassVar[bool]
    table_names_fold_case: ClassVar[bool]
    code_field: ClassVar[str]

    @classmethod
    def connect(cls, dsn: Dsn, settings: DriverSettings) -> Driver: ...
    @classmethod
    def database_missing(cls, dsn: Dsn) -> bool: ...
    def limit_statement_time(self, seconds: float) -> None: ...
    def set_timeouts(self, lock_timeout: float | None, statement_timeout: float | None, *, local: bool) -> None:
        """Bound the next statements' wait for locks and their run time (None: leave as is; 0: no limit).
        local: only until the end of the open transaction."""
    def reset_timeouts(self) -> None: ...
    def session_id(self) -> int | None: ...
    def blockers(self, session_id: int) -> list[dict[str, Any]]:
        """Sessions that hold what `session_id` is waiting for (best effort; empty when unknown)."""
    def drop_invalid_index(self, name: str) -> str | None:
        """Drop index `name` if a failed concurrent build left it invalid; returns the dropped name."""
    def close(self) -> None: ...
    def server_version(self) -> str: ...
    def prepare_session(self) -> None: ...
    def history_exists(self) -> bool: ...
    def ensure_history_table(self) -> bool: ...
    def read_history(self) -> list[HistoryRow]: ...
    def begin(self) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def execute(self, statement: str) -> None: ...
    def insert_row(self, row: HistoryRow) -> None: ...
    def update_row(self, row: HistoryRow) -> None: ...
    def delete_row(self, migration_id: str) -> None: ...
    def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...
    def ensure_schema(self) -> None: ...
    def try_lock(self, key: str) -> bool: ...
    def unlock(self, key: str) -> None: ...
    def lock_holder(self, key: str) -> dict[str, Any] | None: ...
    def interrupt(self) -> None: ...
    def abort(self) -> None:
        """Cut the session's network connection at once, from any thread: a call blocked on a stalled network (a
        proxy that holds traffic) fails right away. The session is unusable afterwards; close() still works."""
    def list_tables(self) -> list[str]: ...


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


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class SqlHistoryMixin:
    """History-table SQL shared by the drivers; each sets `param` and provides _exec/_fetchall and `history_ref`."""

    param: ClassVar[str] = "%s"
    history_ref: str

    @classmethod
    def database_missing(cls, dsn: Dsn) -> bool:
        """True when the database does not exist yet and `up` would create it (a SQLite file); servers: False."""
        return False

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> None:  # pragma: no cover - provided by drivers
        raise NotImplementedError

    def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:  # pragma: no cover
        raise NotImplementedError

    def _to_datetime(self, value: Any) -> datetime:
        return utc(value)

    def _from_datetime(self, value: datetime) -> Any:
        return value

    def read_history(self) -> list[HistoryRow]:
        select = f"SELECT {', '.join(HISTORY_COLUMNS)} FROM {self.history_ref}"
        if not self._may_probe_history():
            if not self.history_exists():  # type: ignore[attr-defined]
                return []
            return [self._row(r) for r in self._fetchall(select)]
        # One round trip where a no-op `up` (every pod start) used two: select, and take "no such table" for an
        # empty history rather than asking first whether the table exists.
        try:
            rows = self._fetchall(select)
        except SqlError as exc:
            if self._history_missing(exc):
                return []
            raise
        return [self._row(r) for r in rows]

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
        values[HISTORY_COLUMNS.index("applied_at")] = self._from_datetime(row.applied_at)
        # The error column holds what the server said, and servers echo statements (a MySQL syntax error quotes
        # `IDENTIFIED BY '<placeholder value>'`): it is scrubbed like a log line before it is stored. The other text
        # columns are identities compared on every run (ids, versions, file names, checksums) and come from the
        # folder, not from the database or the environment; scrubbing them would corrupt the history.
        values[HISTORY_COLUMNS.index("error")] = log.scrub(row.error)
        return tuple(values)

    def insert_row(self, row: HistoryRow) -> None:
        placeholders = ", ".join([self.param] * len(HISTORY_COLUMNS))
        self._exec(
            f"INSERT INTO {self.history_ref} ({', '.join(HISTORY_COLUMNS)}) VALUES ({placeholders})",
            self._row_params(row),
        )

    def update_row(self, row: HistoryRow) -> None:
        assignments = ", ".join(f"{c} = {self.param}" for c in HISTORY_COLUMNS[1:])
        params = self._row_params(row)
        self._exec(f"UPDATE {self.history_ref} SET {assignments} WHERE migration_id = {self.param}",
                   params[1:] + params[:1])

    def delete_row(self, migration_id: str) -> None:
        self._exec(f"DELETE FROM {self.history_ref} WHERE migration_id = {self.param}", (migration_id,))

    def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only query (e.g. another tool's history table for `baseline --from`)."""
        return self._fetchall(sql, params)
