"""SQLite through the standard library: SQL and error mapping only.

Transactions are managed explicitly (isolation_level=None): sqlite3's own implicit transactions and
executescript() (which commits first) would commit migrations behind our back.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from premigrate.drivers.base import ConnectFailed, DriverSettings, SqlError
from premigrate.drivers.history import SqlHistoryMixin
from premigrate.model.dsn import Dsn

BUSY_TIMEOUT_S = 30.0


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class SQLiteDriver(SqlHistoryMixin):
    dialect: ClassVar[str] = "sqlite"
    transactional_ddl: ClassVar[bool] = True
    local_timeouts: ClassVar[bool] = False
    invalid_indexes: ClassVar[bool] = False
    supports_schema: ClassVar[bool] = False
    table_names_fold_case: ClassVar[bool] = True
    code_field: ClassVar[str] = "code"
    param: ClassVar[str] = "?"

    def __init__(self, conn: sqlite3.Connection, dsn: Dsn, settings: DriverSettings) -> None:
        self.conn = conn
        self.dsn = dsn
        self.settings = settings
        self.path = Path(dsn.database or "")
        self._history_ref = _quote_ident(settings.table)
        self._lock_file: int | None = None
        self._statement_timeout: float | None = None
        self._deadline = 0.0

    @classmethod
    def connect(cls, dsn: Dsn, settings: DriverSettings) -> SQLiteDriver:
        path = Path(dsn.database or "")
        if settings.read_only:
            if not path.is_file():
                raise ConnectFailed(
                    f"SQLite database file {str(path)!r} does not exist (read-only commands never create it)",
                    transient=False, reason="unknown_database",
                )
            target, uri = f"file:{quote(str(path.resolve()))}?mode=ro", True
        else:
            if not path.parent.is_dir():
                raise ConnectFailed(
                    f"cannot create SQLite database {str(path)!r}: folder {str(path.parent)!r} does not exist",
                    transient=False, reason="unknown_database",
                )
            target, uri = str(path), False
        try:
            conn = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchall()  # fails here on a file that is not SQLite
        except sqlite3.Error as exc:
            raise ConnectFailed(f"cannot open SQLite database {str(path)!r}: {exc}", transient=False,
                                reason="other") from None
        return cls(conn, dsn, settings)

    @classmethod
    def check_url(cls, dsn: Dsn) -> None:
        pass  # a path: what is wrong with it (a missing folder) is the target's own failure, at connect

    @classmethod
    def database_missing(cls, dsn: Dsn) -> bool:
        return not Path(dsn.database or "").exists()

    def limit_statement_time(self, seconds: float) -> None:
        pass  # a local file: the busy timeout bounds waiting for locks, and there is no server to protect

    def set_timeouts(self, lock_timeout: float | None, statement_timeout: float | None, *, local: bool) -> None:
        # Connection settings, not transaction ones: reset_timeouts() undoes them.
        if lock_timeout is not None:
            self.statements_sent += 1
            self.conn.execute(f"PRAGMA busy_timeout = {0 if lock_timeout <= 0 else max(1, round(lock_timeout * 1000))}")
        if statement_timeout is not None:
            self._statement_timeout = statement_timeout if statement_timeout > 0 else None
            # Checked every 10,000 virtual machine steps: a few microseconds, and only while a limit is set.
            self.conn.set_progress_handler(self._over_time if self._statement_timeout else None, 10000)

    def reset_timeouts(self) -> None:
        self.statements_sent += 1
        self.conn.execute(f"PRAGMA busy_timeout = {round(BUSY_TIMEOUT_S * 1000)}")
        self._statement_timeout = None
        self.conn.set_progress_handler(None, 10000)

    def _over_time(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def session_id(self) -> int | None:
        return None

    def blockers(self, session_id: int) -> list[dict[str, Any]]:
        return []

    def drop_invalid_index(self, name: str) -> str | None:
        return None

    def close(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None
        self.conn.close()

    def server_version(self) -> str:
        return f"SQLite {sqlite3.sqlite_version}"

    def prepare_session(self) -> None:
        pass

    def ensure_schema(self) -> None:
        pass

    # -- statements ---------------------------------------------------------------------------------------------

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.statements_sent += 1
        try:
            self.conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise self.map_error(exc) from exc

    def _fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        self.statements_sent += 1
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self.map_error(exc) from exc

    def execute(self, statement: str) -> int | None:
        if self._statement_timeout:
            self._deadline = time.monotonic() + self._statement_timeout
        self.statements_sent += 1
        try:
            cursor = self.conn.execute(statement)
            cursor.fetchall()  # a statement that returns rows runs to completion only when they are read
        except sqlite3.Error as exc:
            raise self.map_error(exc) from exc
        return cursor.rowcount if cursor.rowcount >= 0 else None  # sqlite3_changes() after INSERT/UPDATE/DELETE

    def map_error(self, exc: sqlite3.Error) -> Exception:
        code = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
        # SQLITE_BUSY: another process holds the write lock past the busy timeout; nothing took effect.
        return SqlError(str(exc), code=code, code_field=self.code_field,
                        lock_contention=code.startswith("SQLITE_BUSY") or "database is locked" in str(exc))

    def _in_open_transaction(self) -> bool:
        return self.conn.in_transaction

    def begin(self) -> None:
        # IMMEDIATE takes the write lock up front: no deadlock-prone upgrade from a read lock later.
        self._exec("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self._exec("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self._exec("ROLLBACK")


    def abort(self) -> None:
        self.interrupt()  # a local file: no network to cut, only the running statement to stop
    def rebound(self, dsn: Dsn, settings: DriverSettings) -> None:
        return None  # a file: opening it costs next to nothing, and a fresh connection carries nothing over

    def interrupt(self) -> None:
        """Abort the running statement. sqlite3's interrupt() is safe to call from another thread."""
        try:
            self.conn.interrupt()
        except sqlite3.Error:
            pass

    # -- history ------------------------------------------------------------------------------------------------

    def _to_datetime(self, value: Any) -> datetime:
        return datetime.fromisoformat(value)

    def _from_datetime(self, value: datetime) -> Any:
        return value.isoformat()

    def _may_probe_history(self) -> bool:
        return True  # a failed statement leaves an open transaction as it was

    def _history_missing(self, exc: SqlError) -> bool:
        # SQLite has no error code of its own for this (SQLITE_ERROR): the message is all there is.
        return str(exc).startswith("no such table:")

    def history_exists(self) -> bool:
        rows = self._fetchall("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (self.settings.table,))
        return bool(rows)

    def ensure_history_table(self) -> bool:
        if self.history_exists():
            return False
        self._exec(
            f"""CREATE TABLE IF NOT EXISTS {self.history_ref} (
                migration_id TEXT NOT NULL PRIMARY KEY,
                version TEXT,
                description TEXT NOT NULL,
                kind TEXT NOT NULL,
                script TEXT NOT NULL,
                checksum TEXT NOT NULL,
                applied_at TEXT NOT NULL,
                execution_ms INTEGER NOT NULL,
                applied_by TEXT NOT NULL,
                state TEXT NOT NULL,
                statements_done INTEGER NOT NULL,
                statements_total INTEGER NOT NULL,
                statement_started INTEGER NOT NULL,
                statement_hashes TEXT NOT NULL,
                error TEXT,
                premigrate_version TEXT NOT NULL
            )"""
        )
        return True

    def list_tables(self) -> list[str]:
        rows = self._fetchall(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY 1"
        )
        return [r[0] for r in rows]

    # -- runner lock: flock on a file beside the database; the kernel releases it when the process dies -----------

    def lock_path(self, key: str) -> Path:
        return self.path.with_name(f"{self.path.name}.{self.settings.table}.lock")

    def try_lock(self, key: str) -> bool:
        path = self.lock_path(key)
        if self._lock_file is None:
            try:
                self._lock_file = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise ConnectFailed(f"cannot open lock file {str(path)!r}: {exc.strerror}", transient=False,
                                    reason="lock_file") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        os.ftruncate(self._lock_file, 0)
        os.pwrite(self._lock_file, holder.encode(), 0)
        self._locked = True
        return True

    def _lock_free(self, key: str) -> bool:
        try:
            probe = os.open(self.lock_path(key), os.O_RDONLY)
        except OSError:
            return True  # no lock file: nobody has ever taken the lock
        try:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(probe)  # closing the descriptor releases a lock taken on it
        return True

    def unlock(self, key: str) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._locked = False

    def lock_held(self, key: str) -> bool:
        # A file lock of this process: it ends only with the process (or unlock()), never under us.
        return bool(getattr(self, "_locked", False))

    def lock_holder(self, key: str) -> dict[str, Any] | None:
        # The file keeps its last holder's note after the lock is released: a lock taken here at once (on a
        # descriptor of its own, so this process's own lock counts too) means nobody holds it.
        if not getattr(self, "_locked", False) and self._lock_free(key):
            return None
        try:
            data = json.loads(self.lock_path(key).read_text() or "null")
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        since = data.pop("since", None)
        if isinstance(since, (int, float)):
            data["held_s"] = round(time.time() - since, 1)
        return data
