"""Sessions to the database: connect (waiting for it), and the runner lock held on a session of its own.

The lock session is polled for the lock, never awaited inside a transaction (see engine/locking.py). While the lock
is held it is also the spare session: it records a failure when the migration session is broken, and it looks up
who blocks a waiting statement (engine/lockwait.BlockerWatch).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from premigrate.config import Config
from premigrate.drivers import driver_class
from premigrate.drivers.base import Capabilities, ConnectFailed, Driver, DriverSettings, lock_key_text
from premigrate.engine.credentials import PasswordCommand
from premigrate.engine.interrupts import SignalGuard
from premigrate.engine.lockwait import BlockerWatch
from premigrate.engine.topology import read_only_reason
from premigrate.engine.waiting import wait_for_database
from premigrate.errors import LockLost, PremigrateError
from premigrate.eventlog import EventLog
from premigrate.model.dsn import Dsn

if TYPE_CHECKING:
    from premigrate.engine.tablelock import TableLock

LOCK_SESSION_CONNECT_TIMEOUT_S = 10.0


@dataclass
class HeldLock:
    """The runner lock, held. `session` is the lock's own session; `watch` looks up blockers from it.
    `table`: the lease and its heartbeat, in --lock-mode table."""

    session: Driver
    table: TableLock | None = None
    watch: BlockerWatch = field(init=False)
    protected: list[Driver] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.watch = BlockerWatch(self.session)

    @property
    def usable(self) -> bool:
        """False once a blocker lookup never came back: the session must not be used again."""
        return not self.watch.stuck

    def protect(self, driver: Driver) -> None:
        """Fence every history write of `driver` with the lease while it is held (table mode; else nothing)."""
        if self.table is not None and driver not in self.protected:
            driver.fence = self.table.fence_for(driver)
            self.protected.append(driver)

    def check(self) -> None:
        """Between steps: raise LockLost when the heartbeat found the lease gone."""
        if self.table is not None:
            self.table.check()

    def lost(self) -> bool:
        """After a failure: whether the lease is gone (then the failure is reported as the lost lock)."""
        if self.table is None:
            return False
        if isinstance(self.table.heartbeat.error, LockLost):
            return True
        try:
            return not self.table.lock.still_held()
        except PremigrateError:
            return False

    def unprotect(self) -> None:
        for driver in self.protected:
            driver.fence = None
        self.protected.clear()


class Sessions:
    """Opens the sessions of one command run to the configured database."""

    def __init__(self, config: Config, log: EventLog, guard: SignalGuard | None = None) -> None:
        self.config = config
        self.log = log
        self.guard = guard
        self.host = socket.gethostname()
        self.capabilities = Capabilities.of(driver_class(config.dsn.dialect))
        command = config.connection.password_command
        self.password_command = PasswordCommand.parse(command) if command else None

    def dsn(self) -> Dsn:
        """The URL for one new connection: with a fresh password from --password-command, when there is one."""
        if self.password_command is None:
            return self.config.dsn
        return self.config.dsn.with_password(self.password_command())

    def settings(self, *, read_only: bool, connect_timeout: float | None) -> DriverSettings:
        cfg = self.config
        return DriverSettings(
            table=cfg.history_table_name,
            schema=cfg.history_schema,
            search_path=cfg.schema,
            application_name=f"premigrate@{self.host}"[:63],
            connect_timeout=connect_timeout,
            read_only=read_only,
        )

    def database_missing(self) -> bool:
        """Whether the database does not exist yet (a SQLite file `up` would create); servers: False."""
        return driver_class(self.config.dsn.dialect).database_missing(self.config.dsn)

    def connect(self, *, read_only: bool) -> Driver:
        """A prepared session, after waiting for the database up to --wait-timeout."""
        cls = driver_class(self.config.dsn.dialect)

        def open_driver(connect_timeout: float | None) -> Driver:
            driver = cls.connect(self.dsn(), self.settings(read_only=read_only, connect_timeout=connect_timeout))
            if not read_only:
                try:
                    reason = read_only_reason(self.config.dsn.dialect, driver.fetch)
                except BaseException:
                    driver.close()
                    raise
                if reason is not None:
                    # A hot standby or read-only server: a failover may be in progress, so wait (see waiting.py).
                    driver.close()
                    raise ConnectFailed(f"the server cannot take writes: {reason}", transient=True,
                                        reason="read_only")
            return driver

        driver = wait_for_database(open_driver, self.config.dsn, self.config.wait_timeout, self.log)
        try:
            driver.prepare_session()
        except BaseException:
            driver.close()
            raise
        return driver

    def connect_once(self, *, read_only: bool, connect_timeout: float) -> Driver:
        """One connection attempt, no waiting loop, not yet prepared (serve's health probe)."""
        cls = driver_class(self.config.dsn.dialect)
        return cls.connect(self.dsn(), self.settings(read_only=read_only, connect_timeout=connect_timeout))

    @contextmanager
    def session(self, *, read_only: bool) -> Iterator[Driver]:
        driver = self.connect(read_only=read_only)
        try:
            yield driver
        finally:
            driver.close()

    @contextmanager
    def runner_lock(self, probe: Driver | None = None) -> Iterator[HeldLock]:
        """Hold the runner lock on a session of its own for the duration of the block. `probe`, an idle session to
        the same database, makes the pooler test of --lock-mode auto certain (engine/topology.py)."""
        cfg = self.config
        key = lock_key_text(cfg.dsn.database or "", f"{cfg.history_schema or ''}.{cfg.history_table_name}")
        lock_session = self.connect_once(read_only=False, connect_timeout=LOCK_SESSION_CONNECT_TIMEOUT_S)
        held: HeldLock | None = None
        try:
            # Only once there is work: a no-op `up` never loads them.
            from premigrate.engine import locking, tablelock

            mode = tablelock.choose_mode(cfg, lock_session, probe, self.log)
            if mode == "table":
                held = self._take_lease(lock_session, key)
            else:
                locking.acquire(lock_session, key, cfg.lock_timeout, self.log)
                held = HeldLock(lock_session)
            held.protect(lock_session)
            if probe is not None:
                held.protect(probe)
            yield held
        finally:
            self._release(lock_session, key, held)

    def _take_lease(self, lock_session: Driver, key: str) -> HeldLock:
        """--lock-mode table: the lease row, then its heartbeat on a session of its own (the lock session stays
        free for blocker lookups and failure records)."""
        from premigrate.engine import locking, tablelock
        from premigrate.engine.lease import Heartbeat

        lease = tablelock.LeaseOnSession(tablelock.lease_for(self.config), lock_session)
        lease.ensure_table()
        locking.acquire(lease, key, self.config.lock_timeout, self.log)
        try:
            beat_session = self.connect_once(read_only=False, connect_timeout=LOCK_SESSION_CONNECT_TIMEOUT_S)
        except BaseException:
            lease.unlock(key)
            raise
        heartbeat = Heartbeat(lease.lease, tablelock.connection_of(beat_session)).start()
        self.log.info("lock_lease_held", lock_table=lease.lease.table, lease_s=lease.lease.duration_s,
                      holder=lease.lease.holder.id, renew_every_s=round(heartbeat.interval_s, 3))
        return HeldLock(lock_session, table=tablelock.TableLock(lease, heartbeat, beat_session))

    @contextmanager
    def locked_session(self) -> Iterator[tuple[Driver, HeldLock]]:
        """A writable session, under the runner lock; its history writes are fenced in table mode."""
        with self.session(read_only=False) as driver, self.runner_lock(probe=driver) as lock:
            yield driver, lock

    def _release(self, lock_session: Driver, key: str, held: HeldLock | None) -> None:
        """Release the runner lock. After a signal the session is just closed, which releases the lock too and
        cannot hang on a database that stopped answering; a session stuck in a query is left to the exit."""
        if held is not None:
            held.unprotect()
            if held.table is not None:
                held.table.stop()
            held.watch.close()
            if not held.usable:
                self.log.warning("lock_release_skipped", error="the lock session stopped answering",
                                 note="the lock ends with that session when this process exits")
                return
        interrupted = self.guard is not None and self.guard.received is not None
        locked = held is not None
        # A lease does not end with the session: it is expired now even after a signal (else the next runner waits
        # out the lease).
        if locked and (not interrupted or (held is not None and held.table is not None)):
            try:
                if held is not None and held.table is not None:
                    held.table.lock.unlock(key)
                else:
                    lock_session.unlock(key)
            except Exception as exc:  # noqa: BLE001 - closing the session below releases it anyway
                self.log.warning("lock_release_failed", error=str(exc))
                locked = False
        lock_session.close()
        if locked:
            self.log.info("lock_released", how="session closed" if interrupted else "unlocked")
