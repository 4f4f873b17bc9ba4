"""MySQLDriver's session checks between migrations and its runner lock: COM_RESET_CONNECTION (restore_session),
`USE` detection (database_changed), and GET_LOCK with the condition that guards history writes.

A mixin of its own so that MySQLDriver (drivers/mysql.py) fits in the size limits; it holds SQL only, and reads the
driver's connection, URL and statement helpers.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pymysql

from premigrate.model.dsn import Dsn

COM_RESET_CONNECTION = 0x1F  # MySQL client/server protocol, COM_RESET_CONNECTION


class MySQLSessionMixin:
    """The session and runner-lock methods of MySQLDriver (see the module docstring)."""

    conn: pymysql.connections.Connection
    dsn: Dsn

    if TYPE_CHECKING:  # provided by MySQLDriver
        def _exec(self, sql: str, params: tuple[Any, ...] | None = None) -> None: ...
        def _fetchall(self, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]: ...
        def map_error(self, exc: BaseException) -> Exception: ...

    def database_changed(self) -> str | None:
        expected = self.dsn.database
        if not expected:
            return None
        current = self._fetchall("SELECT DATABASE()")[0][0]
        return None if current == expected else str(current)

    def restore_session(self) -> None:
        """COM_RESET_CONNECTION (MySQL 5.7.3+, MariaDB 10.2.4+; PyMySQL has no call for it): session variables,
        user variables, temporary tables, prepared statements and the transaction state go back to a fresh
        session's, without a new login. The character set comes from the session variables it resets: set again."""
        try:
            self.conn._execute_command(COM_RESET_CONNECTION, b"")  # type: ignore[attr-defined]
            self.conn._read_ok_packet()  # type: ignore[attr-defined]
            self.conn.set_character_set(self.conn.charset)
        except (pymysql.err.MySQLError, OSError) as exc:
            raise self.map_error(exc) from exc
        self._exec("SET autocommit = 1")

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
