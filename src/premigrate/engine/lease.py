"""The `table` runner lock: a lease row in a lock table beside the history table.

Session locks (PostgreSQL advisory locks, MySQL GET_LOCK) cannot be trusted behind a transaction pooler (the lock
stays on a pooled backend that another client gets next) or on Galera (GET_LOCK is local to one node). A lease is an
ordinary row instead, so it is replicated and pooled like any data:

    lock_key | holder | host | pid | acquired_at | expires_at | renewed_at | version

- acquire: take the row when it is free (no row, an expired lease, or our own) with one conditional statement;
- renew: the heartbeat moves expires_at forward while the holder still holds the lease;
- fence: the conditional UPDATE that a runner puts in the same transaction as each history write, just before its
  COMMIT. It matches only our holder id and an unexpired lease, so a runner that was paused past its lease and lost
  it commits nothing: 0 rows -> LockLost, and the caller rolls back. The row lock it takes makes a takeover wait for
  that COMMIT (PostgreSQL, MySQL, SQLite); on Galera a takeover committed on another node in between makes the
  COMMIT fail certification (errno 1213), which rolls the transaction back just the same;
- release: expire the lease now (the row stays, naming the last holder).

Time is the database's clock, never the client's (a client's clock may jump, and two clients' clocks disagree):
clock_timestamp() on PostgreSQL (now() would be the start of a possibly long transaction), UTC_TIMESTAMP(6) on MySQL
(UTC whatever the session's time zone), strftime('now') on SQLite. On Galera each node reads its own clock: keep the
nodes' clocks far closer together than the lease (NTP does).

Every write bumps `version`, so each one really changes the row: MySQL skips writing (and Galera replicating) an
UPDATE that changes nothing, and a fence that Galera did not certify would not conflict with a takeover.

acquire/renew/release run on the lock session, in autocommit mode; fence runs on the session that writes the
history, inside its transaction. The module takes DB-API connections (psycopg, PyMySQL, sqlite3) and raises their
own errors for anything it does not classify: the caller maps them at its boundary.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Self

from premigrate.errors import LockLost, PremigrateError

__all__ = ["DEFAULT_LEASE_S", "Heartbeat", "Holder", "Lease", "LeaseLock", "LeaseState", "LockLost",
           "lock_table_name"]

Dialect = Literal["postgresql", "mysql", "sqlite"]
DEFAULT_LEASE_S = 30.0
# The heartbeat renews three times per lease: two renewals can fail (a slow server, a lost packet) before it expires.
RENEWALS_PER_LEASE = 3


def lock_table_name(history_table: str) -> str:
    """The lock table that sits beside a history table: `premigrate_history` -> `premigrate_history_lock`."""
    return f"{history_table}_lock"


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: a fresh id per runner, and where it runs (for the log line of whoever waits)."""

    id: str
    host: str
    pid: int

    @classmethod
    def this_process(cls) -> Holder:
        return cls(os.urandom(16).hex(), socket.gethostname()[:255], os.getpid())  # 32 hex digits: no uuid import


@dataclass(frozen=True)
class LeaseState:
    """The lease row as the database sees it now; expires_in_s is computed by the database's clock."""

    holder: str
    host: str
    pid: int
    acquired_at: datetime
    expires_at: datetime
    version: int
    expires_in_s: float

    @property
    def expired(self) -> bool:
        return self.expires_in_s <= 0

    def fields(self) -> dict[str, Any]:
        """For log lines and error fields (the shape of Driver.lock_holder)."""
        return {"holder": self.holder, "host": self.host, "pid": self.pid,
                "acquired_at": self.acquired_at.isoformat(), "expires_in_s": round(self.expires_in_s, 3)}


class _Dialect:
    """SQL that differs between databases. `now` and `later` are SQL expressions; `later` takes one parameter."""

    param = "%s"
    now = ""
    later = ""
    expires_in = ""
    column_types: ClassVar[dict[str, str]] = {}
    table_suffix = ""
    duplicate_key: tuple[object, ...] = ()
    contention: tuple[object, ...] = ()
    missing_table: tuple[object, ...] = ()

    def quote(self, name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    def later_param(self, seconds: float) -> object:
        return seconds

    def error_code(self, exc: BaseException) -> object:
        return None

    def to_datetime(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class _Postgres(_Dialect):
    now = "clock_timestamp()"
    later = "clock_timestamp() + make_interval(secs => %s)"
    expires_in = "extract(epoch FROM expires_at - clock_timestamp())"
    column_types: ClassVar[dict[str, str]] = {"time": "timestamptz", "pid": "bigint", "version": "bigint"}
    # unique_violation; lock_not_available (lock_timeout), deadlock_detected, serialization_failure
    duplicate_key = ("23505",)
    contention = ("55P03", "40P01", "40001")
    missing_table = ("42P01", "3F000")  # undefined_table, invalid_schema_name

    def later_param(self, seconds: float) -> object:
        return float(seconds)

    def error_code(self, exc: BaseException) -> object:
        return getattr(exc, "sqlstate", None)


class _MySQL(_Dialect):
    now = "UTC_TIMESTAMP(6)"
    later = "UTC_TIMESTAMP(6) + INTERVAL %s MICROSECOND"
    expires_in = "TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at) / 1000000"
    column_types: ClassVar[dict[str, str]] = {"time": "DATETIME(6)", "pid": "BIGINT", "version": "BIGINT"}
    # A replicated InnoDB row: Galera replicates InnoDB only, and requires the primary key it has.
    table_suffix = " ENGINE=InnoDB"
    duplicate_key = (1062,)
    # 1205 lock wait timeout; 1213 deadlock, which is also how Galera reports a certification conflict
    contention = (1205, 1213)
    missing_table = (1146,)  # ER_NO_SUCH_TABLE

    def quote(self, name: str) -> str:
        return "`" + name.replace("`", "``") + "`"

    def later_param(self, seconds: float) -> object:
        return round(seconds * 1_000_000)

    def error_code(self, exc: BaseException) -> object:
        args = getattr(exc, "args", ())
        return args[0] if args and isinstance(args[0], int) else None


class _SQLite(_Dialect):
    param = "?"
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    later = "strftime('%Y-%m-%d %H:%M:%f', 'now', ?)"
    expires_in = "(julianday(expires_at) - julianday('now')) * 86400.0"
    # Fixed-width text compares in time order.
    column_types: ClassVar[dict[str, str]] = {"time": "TEXT", "pid": "INTEGER", "version": "INTEGER"}
    duplicate_key = ("duplicate",)
    contention = ("busy",)
    missing_table = ("no_table",)

    def later_param(self, seconds: float) -> object:
        return f"+{seconds:.3f} seconds"

    def error_code(self, exc: BaseException) -> object:
        import sqlite3  # only a SQLite lease reads it: a PostgreSQL or MySQL run never loads the module

        if isinstance(exc, sqlite3.IntegrityError):
            return "duplicate"
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
            return "busy"
        if isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc):
            return "no_table"
        return None

    def to_datetime(self, value: Any) -> datetime:
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


_DIALECTS: dict[str, _Dialect] = {"postgresql": _Postgres(), "mysql": _MySQL(), "sqlite": _SQLite()}


class Lease:
    """One lease (one `lock_key`) in one lock table, held by one Holder."""

    def __init__(self, dialect: Dialect, table: str, *, key: str = "runner", duration_s: float = DEFAULT_LEASE_S,
                 holder: Holder | None = None, schema: str | None = None) -> None:
        if dialect not in _DIALECTS:
            raise ValueError(f"no lease SQL for dialect {dialect!r}")
        if not duration_s > 0:
            raise ValueError(f"a lease lasts more than 0 seconds, not {duration_s!r}")
        self.dialect = dialect
        self.key = key
        self.duration_s = float(duration_s)
        self.holder = holder or Holder.this_process()
        self._sql = _DIALECTS[dialect]
        q = self._sql.quote
        self.table = (q(schema) + "." if schema else "") + q(table)
        self._table_label = (schema + "." if schema else "") + table

    # -- SQL ----------------------------------------------------------------------------------------------------

    def _statement(self, text: str) -> str:
        """The statement with {p} as the dialect's placeholder and {now}/{later}/{table} filled in."""
        return text.format(p=self._sql.param, now=self._sql.now, later=self._sql.later, table=self.table,
                           expires_in=self._sql.expires_in)

    @staticmethod
    def _run(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Rows the statement matched. PyMySQL counts matched rows only with CLIENT.FOUND_ROWS (the driver sets it);
        without it, changed rows, which is the same here: every write bumps `version`."""
        cur = conn.cursor()
        try:
            if params:
                cur.execute(sql, params)
            else:
                cur.execute(sql)
            return int(cur.rowcount)
        finally:
            cur.close()

    @staticmethod
    def _rows(conn: Any, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
            return list(cur.fetchall())
        finally:
            cur.close()

    def _is(self, exc: BaseException, codes: tuple[object, ...]) -> bool:
        return self._sql.error_code(exc) in codes

    # -- operations ---------------------------------------------------------------------------------------------

    def ensure_table(self, conn: Any) -> None:
        """Create the lock table when it does not exist (autocommit session)."""
        _require_autocommit(conn)
        t = self._sql.column_types
        sql = (f"CREATE TABLE IF NOT EXISTS {self.table} ("
               "lock_key VARCHAR(191) NOT NULL PRIMARY KEY, "
               "holder VARCHAR(64) NOT NULL, "
               "host VARCHAR(255) NOT NULL, "
               f"pid {t['pid']} NOT NULL, "
               f"acquired_at {t['time']} NOT NULL, "
               f"expires_at {t['time']} NOT NULL, "
               f"renewed_at {t['time']} NOT NULL, "
               f"version {t['version']} NOT NULL)" + self._sql.table_suffix)
        try:
            self._run(conn, sql)
        except Exception as exc:
            # Two runners creating the table at once on PostgreSQL: the loser gets a duplicate pg_type row (23505)
            # or "already exists" (42P07) although the statement said IF NOT EXISTS. The table is there: fine.
            if self._sql.error_code(exc) not in ("23505", "42P07"):
                raise

    def try_acquire(self, conn: Any) -> bool:
        """One attempt to take the lease (autocommit session): True when this holder now holds it.

        Free means: no row yet, an expired lease, or one this holder already holds (then it is simply extended).
        A concurrent attempt that conflicts (a deadlock, a lock wait timeout, a Galera certification failure) is
        "not this time": the caller polls, as it polls a session lock.
        """
        _require_autocommit(conn)
        h = self.holder
        # Assignments in this order: MySQL evaluates them left to right, each seeing the ones before it, so
        # acquired_at must read the old holder before `holder` is overwritten.
        take = self._statement(
            "UPDATE {table} SET "
            "acquired_at = CASE WHEN holder = {p} AND expires_at > {now} THEN acquired_at ELSE {now} END, "
            "holder = {p}, host = {p}, pid = {p}, expires_at = {later}, renewed_at = {now}, version = version + 1 "
            "WHERE lock_key = {p} AND (expires_at <= {now} OR holder = {p})")
        insert = self._statement(
            "INSERT INTO {table} (lock_key, holder, host, pid, acquired_at, expires_at, renewed_at, version) "
            "VALUES ({p}, {p}, {p}, {p}, {now}, {later}, {now}, 1)")
        later = self._sql.later_param(self.duration_s)
        try:
            if self._run(conn, take, (h.id, h.id, h.host, h.pid, later, self.key, h.id)) == 1:
                return True
            self._run(conn, insert, (self.key, h.id, h.host, h.pid, later))
            return True
        except Exception as exc:
            if self._is(exc, self._sql.duplicate_key + self._sql.contention):
                return False
            raise

    def renew(self, conn: Any) -> bool:
        """Extend the lease by its duration from now (autocommit lock session).

        True: renewed. False: a conflicting write got in the way (lock wait, deadlock, Galera certification) and
        nothing changed; try again soon. Raises LockLost when the lease is no longer ours or has expired.
        """
        _require_autocommit(conn)
        sql = self._statement(
            "UPDATE {table} SET expires_at = {later}, renewed_at = {now}, version = version + 1 "
            "WHERE lock_key = {p} AND holder = {p} AND expires_at > {now}")
        try:
            matched = self._run(conn, sql, (self._sql.later_param(self.duration_s), self.key, self.holder.id))
        except Exception as exc:
            if self._is(exc, self._sql.contention):
                return False
            raise
        if matched != 1:
            raise self._lost(conn, "renewing")
        return True

    def fence(self, conn: Any) -> None:
        """Inside the caller's transaction, just before COMMIT: proves the lease is still ours and unexpired, and
        holds its row until the COMMIT so that no takeover can slip in between. Raises LockLost (roll back!)."""
        sql = self._statement(
            "UPDATE {table} SET renewed_at = {now}, version = version + 1 "
            "WHERE lock_key = {p} AND holder = {p} AND expires_at > {now}")
        if self._run(conn, sql, (self.key, self.holder.id)) != 1:
            raise self._lost(conn, "writing the history", in_transaction=True)

    def release(self, conn: Any) -> bool:
        """Expire the lease now, if it is still ours (autocommit lock session). False: it was not ours any more."""
        _require_autocommit(conn)
        sql = self._statement(
            "UPDATE {table} SET expires_at = {now}, renewed_at = {now}, version = version + 1 "
            "WHERE lock_key = {p} AND holder = {p} AND expires_at > {now}")
        return self._run(conn, sql, (self.key, self.holder.id)) == 1

    def current(self, conn: Any) -> LeaseState | None:
        """The lease row as it stands, with the seconds left by the database's clock; None when there is none."""
        rows = self._rows(conn, self._statement(
            "SELECT holder, host, pid, acquired_at, expires_at, version, {expires_in} FROM {table} "
            "WHERE lock_key = {p}"), (self.key,))
        if not rows:
            return None
        holder, host, pid, acquired_at, expires_at, version, expires_in = rows[0]
        return LeaseState(str(holder), str(host), int(pid), self._sql.to_datetime(acquired_at),
                          self._sql.to_datetime(expires_at), int(version), float(expires_in))

    def table_missing(self, exc: BaseException) -> bool:
        """Whether `exc` says the lock table (or its schema) does not exist."""
        return self._is(exc, self._sql.missing_table)

    def holder_fields(self, conn: Any) -> dict[str, Any] | None:
        """Who holds the lease now (for `lock_waiting` lines and LockTimeout), or None when it is free."""
        state = self.current(conn)
        return None if state is None or state.expired else state.fields()

    def _lost(self, conn: Any, doing: str, *, in_transaction: bool = False) -> LockLost:
        state = None
        if not in_transaction:  # inside the caller's transaction one more read would only add to what rolls back
            try:
                state = self.current(conn)
            except Exception:  # noqa: BLE001 - the message is best effort; the loss itself is certain
                state = None
        fields: dict[str, Any] = {"holder": self.holder.id, "lock_table": self._table_label}
        if state is None:
            now = "it expired or was taken over"
        elif state.holder != self.holder.id:
            now = f"it is now held by {state.host} pid {state.pid}"
            fields["now_held_by"] = state.fields()
        else:
            now = f"it expired {max(0.0, -state.expires_in_s):.1f} s ago"
        return LockLost(
            f"runner lock lost while {doing}: the lease in {self._table_label} is no longer ours ({now}); this run"
            " was paused or cut off for longer than the lease and committed nothing after the loss; run premigrate"
            " again", **fields)


class LeaseLock:
    """A Lease on one connection, in the shape engine.locking.acquire polls (try_lock / lock_holder / unlock).

    The `key` arguments are accepted for that shape; the lease's own key names the row.
    """

    def __init__(self, lease: Lease, conn: Any) -> None:
        self.lease = lease
        self.conn = conn

    def try_lock(self, key: str) -> bool:
        return self.lease.try_acquire(self.conn)

    def lock_holder(self, key: str) -> dict[str, Any] | None:
        return self.lease.holder_fields(self.conn)

    def unlock(self, key: str) -> None:
        self.lease.release(self.conn)


class Heartbeat:
    """Renews a held lease every duration/3 on the lock session, in a thread of its own.

    The runner calls check() between steps: it raises the LockLost (or the connection error) the heartbeat met.
    The fence is what guarantees safety; the heartbeat keeps the lease alive and stops a runner early.
    Nothing else may use the lock session while the heartbeat runs: stop() it before release().
    """

    def __init__(self, lease: Lease, conn: Any, *, interval_s: float | None = None) -> None:
        self.lease = lease
        self.conn = conn
        self.interval_s = interval_s if interval_s is not None else lease.duration_s / RENEWALS_PER_LEASE
        self.renewals = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="premigrate-lease-heartbeat", daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if self.lease.renew(self.conn):
                    self.renewals += 1
            except BaseException as exc:  # noqa: BLE001 - handed to the runner thread by check()
                self.error = exc
                return

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _require_autocommit(conn: Any) -> None:
    """acquire/renew/release must commit at once: inside an open transaction a lease would be invisible to others
    (and its row lock held) until that transaction ends."""
    sqlite3 = sys.modules.get("sqlite3")  # not loaded: conn is no SQLite connection
    if sqlite3 is not None and isinstance(conn, sqlite3.Connection):
        autocommit = conn.isolation_level is None and not conn.in_transaction
    elif hasattr(conn, "get_autocommit"):  # PyMySQL
        autocommit = bool(conn.get_autocommit())
    else:  # psycopg
        autocommit = bool(getattr(conn, "autocommit", True))
    if not autocommit:
        raise PremigrateError("internal error: the lease is taken, renewed and released on an autocommit session")
