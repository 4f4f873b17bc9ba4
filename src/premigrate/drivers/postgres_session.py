"""PostgresDriver's session restore between migrations (restore_session, own_identity_local) and its runner lock:
a session advisory lock, with the condition that guards history writes.

A mixin of its own so that PostgresDriver (drivers/postgres.py) fits in the size limits; it holds SQL only, and
reads the driver's settings and statement helpers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from premigrate.drivers.base import lock_key_int64


class PostgresSessionMixin:
    """The session and runner-lock methods of PostgresDriver (see the module docstring)."""

    if TYPE_CHECKING:  # provided by PostgresDriver
        def _exec(self, query: Any, params: tuple[Any, ...] | None = None) -> None: ...
        def _fetchall(self, query: Any, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]: ...
        def prepare_session(self) -> None: ...
        def session_id(self) -> int | None: ...

    def restore_session(self) -> None:
        # RESET ALL leaves the role and the session user alone (they are not reset by it): those first. Then
        # every setting is back at its connect-time value, and the search_path of --schema is set again.
        self._exec("RESET ROLE; SET SESSION AUTHORIZATION DEFAULT; RESET ALL")
        self.prepare_session()

    def own_identity_local(self) -> None:
        self._exec("SET LOCAL SESSION AUTHORIZATION DEFAULT; SET LOCAL ROLE NONE")

    # -- runner lock: a session advisory lock, polled, on an autocommit session of its own ------------------------

    def try_lock(self, key: str) -> bool:
        return bool(self._fetchall("SELECT pg_try_advisory_lock(%s)", (lock_key_int64(key),))[0][0])

    def unlock(self, key: str) -> None:
        self._exec("SELECT pg_advisory_unlock(%s)", (lock_key_int64(key),))

    def _lock_condition(self, key: str, holder: int) -> tuple[str, tuple[Any, ...]]:
        k = lock_key_int64(key) & 0xFFFFFFFFFFFFFFFF
        return ("""EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = %s
                   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                   AND classid = %s::int8::oid AND objid = %s::int8::oid AND objsubid = 1)""",
                (holder, (k >> 32) & 0xFFFFFFFF, k & 0xFFFFFFFF))

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
