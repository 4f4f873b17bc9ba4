"""Which runner lock a run takes (--lock-mode), and the `table` lock put to work on premigrate's sessions.

auto looks at what stands between premigrate and the database once, on the lock session, when there is work to do
(engine/topology.py): behind a transaction pooler, on Galera and on a Group Replication member a session lock does
not exclude other runners, so the lease row of engine/lease.py is used there; elsewhere the session lock.
Topologies where migrations cannot run safely at all (statement pooling, Galera RSU unless allowed) are refused.

The lease module works on DB-API connections and raises their errors; here they are mapped by the session's driver
(SqlError, ConnectionLost), so a lease failure reads like any other database failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from premigrate.config import Config
from premigrate.drivers.base import Driver, SqlError
from premigrate.engine.lease import Heartbeat, Lease, lock_table_name
from premigrate.engine.topology import Topology, detect_mysql, detect_postgres, read_only_error, refuse
from premigrate.errors import LockLost, PremigrateError
from premigrate.eventlog import EventLog

T = TypeVar("T")


def connection_of(driver: Driver) -> Any:
    """The DB-API connection under a driver (every driver keeps it as `conn`)."""
    return cast(Any, driver).conn


def mapped(driver: Driver, call: Callable[..., T], *args: Any) -> T:
    """Run a lease or detection call, mapping the database library's errors with the driver's own mapping."""
    try:
        return call(*args)
    except PremigrateError:
        raise
    except Exception as exc:
        mapper = getattr(driver, "map_error", None)
        if mapper is None:
            raise
        raise mapper(exc) from exc


def choose_mode(config: Config, lock_session: Driver, probe: Driver | None, log: EventLog) -> str:
    """advisory or table, from --lock-mode and (for auto, and for the refusals) the detected topology."""
    requested = config.locking.mode
    dialect = config.dsn.dialect
    topology: Topology | None = None
    if dialect == "postgresql":
        probe_conn = connection_of(probe) if probe is not None else None
        topology = mapped(lock_session, detect_postgres, connection_of(lock_session), probe_conn)
    elif dialect == "mysql":
        topology = mapped(lock_session, detect_mysql, connection_of(lock_session))
    if topology is None:
        mode = "advisory" if requested == "auto" else requested
        reason = "SQLite: a file lock on the database file holds for every process on this machine"
    else:
        refusal = refuse(topology, allow_rsu=config.locking.allow_galera_rsu)
        if refusal is not None:
            raise refusal
        if not topology.writable:
            raise read_only_error(config.dsn.redacted(), topology)
        mode = topology.lock_mode if requested == "auto" else requested
        reason = topology.reason
        if mode == "advisory" and not topology.session_lock_trusted:
            log.warning("lock_mode_untrusted", mode=mode, reason=reason,
                        note="--lock-mode advisory was asked for although a session lock does not exclude other"
                             " runners here; use --lock-mode table or auto")
    log.info("lock_mode_chosen", mode=mode, requested=requested, reason=reason)
    return mode


class LeaseOnSession:
    """A Lease on a driver's session, in the shape engine/locking.acquire polls (try_lock/lock_holder/unlock)."""

    def __init__(self, lease: Lease, session: Driver) -> None:
        self.lease = lease
        self.session = session
        self.conn = connection_of(session)

    def ensure_table(self) -> None:
        mapped(self.session, self.lease.ensure_table, self.conn)

    def try_lock(self, key: str) -> bool:
        """The lease, unless a runner in advisory mode holds the session lock (a read of the server's lock table,
        which a pooler does not hide): each mode checks the other's lock after taking its own, so two runners with
        different --lock-mode never both go on (see SessionLockBesideLease)."""
        if not mapped(self.session, self.lease.try_acquire, self.conn):
            return False
        if self.session.lock_holder(key) is not None:
            self.unlock(key)
            return False
        return True

    def lock_holder(self, key: str) -> dict[str, Any] | None:
        return mapped(self.session, self.lease.holder_fields, self.conn) or self.session.lock_holder(key)

    def unlock(self, key: str) -> None:
        mapped(self.session, self.lease.release, self.conn)

    def still_held(self) -> bool:
        """Whether the lease is still ours and unexpired (read on this autocommit session)."""
        state = mapped(self.session, self.lease.current, self.conn)
        return state is not None and state.holder == self.lease.holder.id and not state.expired


class SessionLockBesideLease:
    """--lock-mode advisory, in the shape engine/locking.acquire polls: the session lock, given back at once while a
    runner in table mode holds an unexpired lease on the same history table. With LeaseOnSession.try_lock's check
    of the session lock, whichever takes its lock second sees the other's and lets go, so runners started with
    different modes (a Job behind a pooler in table mode, an operator's `up` on the primary in advisory mode) still
    exclude each other."""

    def __init__(self, lease: Lease, session: Driver) -> None:
        self.lease = lease
        self.session = session
        self.conn = connection_of(session)

    def try_lock(self, key: str) -> bool:
        if not self.session.try_lock(key):
            return False
        if mapped(self.session, self._lease_holder) is not None:
            self.session.unlock(key)
            return False
        return True

    def lock_holder(self, key: str) -> dict[str, Any] | None:
        return self.session.lock_holder(key) or mapped(self.session, self._lease_holder)

    def _lease_holder(self) -> dict[str, Any] | None:
        """Who holds an unexpired lease now: None when no lock table exists yet (no runner ever took a lease here)
        or the lease expired."""
        try:
            return self.lease.holder_fields(self.conn)
        except Exception as exc:
            if self.lease.table_missing(exc):
                return None
            raise


def ensure_schema(session: Driver) -> None:
    """The history table's schema, before the lock table goes in it. Runners creating it at once: the loser's
    duplicate (23505, PostgreSQL's catalogue race despite IF NOT EXISTS) means it is there."""
    try:
        session.ensure_schema()
    except SqlError as exc:
        if exc.code != "23505":
            raise


def lease_for(config: Config) -> Lease:
    return Lease(config.dsn.dialect, lock_table_name(config.history_table_name),  # type: ignore[arg-type]
                 duration_s=config.locking.lease,
                 schema=config.history_schema if config.dsn.dialect == "postgresql" else None)


@dataclass
class TableLock:
    """A held lease: the session it was taken on, and the heartbeat renewing it on a session of its own."""

    lock: LeaseOnSession
    heartbeat: Heartbeat
    beat_session: Driver

    def fence_for(self, driver: Driver) -> Callable[[], None]:
        conn = connection_of(driver)
        lease = self.lock.lease
        return lambda: mapped(driver, lease.fence, conn)

    def check(self) -> None:
        """Raise what the heartbeat met: LockLost, or the error of its session."""
        error = self.heartbeat.error
        if isinstance(error, LockLost):
            raise error
        if error is not None:
            if not self.lock.still_held():
                raise LockLost(f"runner lock lost: the lease could not be renewed ({error}) and is no longer ours;"
                               " nothing was committed after the loss; run premigrate again")

    def stop(self) -> None:
        self.heartbeat.stop()
        self.beat_session.close()
