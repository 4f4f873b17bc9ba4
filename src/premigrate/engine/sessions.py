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

from premigrate.config import Config
from premigrate.drivers import driver_class
from premigrate.drivers.base import Capabilities, Driver, DriverSettings, lock_key_text
from premigrate.engine.interrupts import SignalGuard
from premigrate.engine.lockwait import BlockerWatch
from premigrate.engine.tracing import NOOP, Tracer
from premigrate.engine.waiting import wait_for_database
from premigrate.eventlog import EventLog

LOCK_SESSION_CONNECT_TIMEOUT_S = 10.0


@dataclass
class HeldLock:
    """The runner lock, held. `session` is the lock's own session; `watch` looks up blockers from it."""

    session: Driver
    watch: BlockerWatch = field(init=False)

    def __post_init__(self) -> None:
        self.watch = BlockerWatch(self.session)

    @property
    def usable(self) -> bool:
        """False once a blocker lookup never came back: the session must not be used again."""
        return not self.watch.stuck


class Sessions:
    """Opens the sessions of one command run to the configured database."""

    def __init__(self, config: Config, log: EventLog, guard: SignalGuard | None = None,
                 tracer: Tracer = NOOP) -> None:
        self.config = config
        self.log = log
        self.guard = guard
        self.tracer = tracer
        self.host = socket.gethostname()
        self.capabilities = Capabilities.of(driver_class(config.dsn.dialect))

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
            return cls.connect(self.config.dsn, self.settings(read_only=read_only, connect_timeout=connect_timeout))

        with self.tracer.wait():
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
        return cls.connect(self.config.dsn, self.settings(read_only=read_only, connect_timeout=connect_timeout))

    @contextmanager
    def session(self, *, read_only: bool) -> Iterator[Driver]:
        driver = self.connect(read_only=read_only)
        try:
            yield driver
        finally:
            driver.close()

    @contextmanager
    def runner_lock(self) -> Iterator[HeldLock]:
        """Hold the runner lock on a session of its own for the duration of the block."""
        cfg = self.config
        key = lock_key_text(cfg.dsn.database or "", f"{cfg.history_schema or ''}.{cfg.history_table_name}")
        lock_session = self.connect_once(read_only=False, connect_timeout=LOCK_SESSION_CONNECT_TIMEOUT_S)
        held: HeldLock | None = None
        try:
            from premigrate.engine import locking  # only once there is work: a no-op `up` never loads it

            with self.tracer.lock(key):
                locking.acquire(lock_session, key, cfg.lock_timeout, self.log)
            held = HeldLock(lock_session)
            yield held
        finally:
            self._release(lock_session, key, held)

    @contextmanager
    def locked_session(self) -> Iterator[tuple[Driver, HeldLock]]:
        """A writable session, under the runner lock."""
        with self.session(read_only=False) as driver, self.runner_lock() as lock:
            yield driver, lock

    def _release(self, lock_session: Driver, key: str, held: HeldLock | None) -> None:
        """Release the runner lock. After a signal the session is just closed, which releases the lock too and
        cannot hang on a database that stopped answering; a session stuck in a query is left to the exit."""
        if held is not None:
            held.watch.close()
            if not held.usable:
                self.log.warning("lock_release_skipped", error="the lock session stopped answering",
                                 note="the lock ends with that session when this process exits")
                return
        interrupted = self.guard is not None and self.guard.received is not None
        locked = held is not None
        if locked and not interrupted:
            try:
                lock_session.unlock(key)
            except Exception as exc:  # noqa: BLE001 - closing the session below releases it anyway
                self.log.warning("lock_release_failed", error=str(exc))
                locked = False
        lock_session.close()
        if locked:
            self.log.info("lock_released", how="session closed" if interrupted else "unlocked")
