"""Sessions to the database: connect (waiting for it), and the runner lock held on a session of its own.

The lock session is polled for the lock, never awaited inside a transaction (see engine/locking.py). While the lock
is held it is also the spare session: it records a failure when the migration session is broken, and it looks up
who blocks a waiting statement (engine/lockwait.BlockerWatch).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from premigrate.config import Config
from premigrate.drivers import driver_class
from premigrate.drivers.base import Capabilities, ConnectFailed, Driver, DriverSettings, HistoryRow, lock_key_text
from premigrate.engine.credentials import PasswordCommand
from premigrate.engine.interrupts import SignalGuard
from premigrate.engine.topology import read_only_reason
from premigrate.engine.tracing import NOOP, Tracer
from premigrate.engine.waiting import wait_for_database
from premigrate.errors import ConnectionLost, LockLost, PremigrateError
from premigrate.eventlog import EventLog
from premigrate.model.dsn import Dsn
from premigrate.model.durations import format_duration

if TYPE_CHECKING:
    from premigrate.engine.lockwait import BlockerWatch
    from premigrate.engine.tablelock import TableLock

# engine/lockwait.LOOKUP_WAIT_S: lockwait is loaded only once a lock is held (a no-op `up` takes none).
LOOKUP_WAIT_S = 3.0

LOCK_SESSION_CONNECT_TIMEOUT_S = 10.0
# Well inside the idle timeouts met in practice (proxies and reapers: 60 s and up; PgBouncer's server_idle_timeout:
# 600 s), and a query a second would be noise in the server's logs.
KEEPALIVE_S = 15.0
# How long a write of the lock session stands in for the check before the next migration (HeldLock.vouch): well
# under any idle timeout, well over the moment between a migration's last history write and the next one's start.
VOUCH_S = 1.0


@dataclass
class HeldLock:
    """The runner lock, held. `session` is the lock's own session: it never runs migration SQL, so its state is
    premigrate's own. It also writes the progress rows (engine/stepwise.py) and, from `watch`, looks up blockers.

    advisory mode: a lock session left idle for a long run dies of an idle timeout (PostgreSQL
    idle_session_timeout, MySQL wait_timeout, a proxy or reaper), and its lock with it: a keepalive thread asks "do
    we still hold the lock?" every KEEPALIVE_S while nobody else uses the session, and check() asks before each
    migration. Every history update is conditional on the lock in the same statement (Driver.guard_writes).
    table mode (`table`): the lease's heartbeat renews it on a session of its own, and every history write of the
    protected sessions is fenced (Driver.fence). A lost lock is LockLost (exit 8) in both modes.
    """

    session: Driver
    key: str = ""
    keepalive_s: float | None = None
    table: TableLock | None = None
    watch: BlockerWatch = field(init=False)
    lost: str | None = field(init=False, default=None)  # why the lock is known to be lost
    protected: list[Driver] = field(init=False, default_factory=list)
    # The migration session, and how many statements it had sent, when the lock session last answered a write of
    # premigrate's own (vouch): until that session sends more, the lock needs no check of its own.
    _vouched: tuple[Driver, int, float] | None = field(init=False, default=None)
    _stop: threading.Event = field(init=False, default_factory=threading.Event)
    _thread: threading.Thread | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        from premigrate.engine.lockwait import BlockerWatch

        self.watch = BlockerWatch(self.session)
        if self.keepalive_s:
            self._thread = threading.Thread(target=self._keepalive, name="premigrate-lock-keepalive", daemon=True)
            self._thread.start()

    @property
    def usable(self) -> bool:
        """False once a blocker lookup never came back: the session must not be used again."""
        return not self.watch.stuck

    def protect(self, driver: Driver) -> None:
        """Tie `driver`'s history writes to the lock. Table mode: every write is fenced with the lease while it is
        held. Advisory mode: every history update is conditional on the lock session still holding the lock, and
        check_with() can send its check with the driver's next SQL (Driver.guard_writes, Driver.check_later)."""
        if self.table is not None and driver not in self.protected:
            driver.guard_writes(self.key, None)  # no session to condition on; pins the history table's schema
            driver.fence = self.table.fence_for(driver)
            self.protected.append(driver)
        elif self.table is None and self.keepalive_s is not None:
            driver.guard_writes(self.key, self.session.session_id())

    def check_with(self, driver: Driver | None = None) -> None:
        """Before a history write that is not conditional on the lock (an insert, a delete, a migration's first
        statement): LockLost if the lock is lost. With `driver` (protected), the check goes out with the next SQL
        that driver sends, on the session that would write, so nothing it sends after a failed check takes effect;
        else the lock session is asked. Nothing to check where the lock has no session to lose (SQLite)."""
        if self.table is None and self.keepalive_s is None:
            return
        vouched, self._vouched = self._vouched, None
        if (driver is not None and vouched is not None and vouched[0] is driver
                and vouched[1] == driver.statements_sent and self.lost is None
                and time.monotonic() - vouched[2] < VOUCH_S):
            return
        if (driver is not None and self.table is None and self.lost is None
                and driver.check_later(self.lost_on_check)):
            return
        self.check()

    def vouch(self, driver: Driver) -> None:
        """The lock is known held right now: the lock session has just answered a write of premigrate's own (it is
        alive, so the lock is held: a PostgreSQL session advisory lock and a MySQL GET_LOCK end only with a release
        of that session or with the session itself), or `driver` has just committed a transaction whose history
        write was checked against the lock in the same message. The check before `driver`'s next statement can
        then be skipped, as long as `driver` sends nothing else first and no more than VOUCH_S has passed (a
        process paused past an idle timeout must find its lock gone): the check would have found what this one
        found, a moment later (advisory mode only; a lease has a heartbeat of its own)."""
        if self.table is None and self.keepalive_s is not None and self.lost is None:
            self._vouched = (driver, driver.statements_sent, time.monotonic())

    def lease_lost(self) -> bool:
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

    @contextmanager
    def using(self) -> Iterator[Driver]:
        """The lock session, for this thread alone (the keepalive and the blocker lookups wait meanwhile)."""
        if not self.watch.busy.acquire(timeout=LOOKUP_WAIT_S):
            self.lost = "the lock session stopped answering"
            raise self.lost_error()
        try:
            yield self.session
        except ConnectionLost as exc:
            self.lost = f"the lock session ended ({exc.message})"
            raise self.lost_error() from exc
        finally:
            self.watch.busy.release()

    def check(self) -> None:
        """Raise LockLost unless the lock session still holds the lock (one cheap query), or (table mode) unless
        the heartbeat still holds the lease."""
        if self.table is not None:
            self.table.check()
            return
        if self.lost is None:
            with self.using() as session:
                if not session.lock_held(self.key):
                    self.lost = "the lock session no longer holds the lock"
        if self.lost is not None:
            raise self.lost_error()

    def lost_on_check(self) -> LockLost:
        """A check of the lock from another session (Driver.check_later) found it not held."""
        self.lost = "the lock session no longer holds the lock"
        return self.lost_error()

    def lost_error(self) -> LockLost:
        return LockLost(f"the runner lock was lost mid-run: {self.lost}; another premigrate may have taken it and "
                        "be migrating now, so this run stopped before starting another statement. A lock session "
                        "ends with an idle timeout, a reaper or a proxy (keep their timeouts above a minute: the "
                        f"lock session sends a keepalive every {format_duration(self.keepalive_s or KEEPALIVE_S)}), "
                        "or with the server (a restart, a failover); `premigrate status` shows where the history "
                        "stands once no run holds the lock", reason=self.lost)

    def _keepalive(self) -> None:
        assert self.keepalive_s is not None
        while not self._stop.wait(self.keepalive_s):
            if self.lost is not None or not self.watch.busy.acquire(blocking=False):
                continue  # in use right now: alive (and its user sees a loss itself)
            try:
                if not self.session.lock_held(self.key):
                    self.lost = "the lock session no longer holds the lock"
            except Exception as exc:  # noqa: BLE001 - any failure of the lock session means the lock is gone
                self.lost = f"the lock session ended ({exc})"
            finally:
                self.watch.busy.release()

    def close(self) -> None:
        self.unprotect()
        if self.table is not None:
            self.table.stop()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=LOOKUP_WAIT_S)
        self.watch.close()


def wait_budget(wait_timeout: float | None, limit: float | None) -> float | None:
    """How long to wait for the database: --wait-timeout (None: no limit), or `limit` when that is shorter."""
    if limit is None:
        return wait_timeout
    return limit if wait_timeout is None else min(wait_timeout, limit)


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
        command = config.connection.password_command
        self.password_command = (PasswordCommand.parse(command, source=config.named("password_command"))
                                 if command else None)
        # MySQL family: whether the server is MariaDB, once a session has connected (formats that tell MariaDB from
        # MySQL, as Liquibase's dbms does, read it); None before.
        self.mariadb: bool | None = None

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
            password_source=self.password_command,
        )

    def database_missing(self) -> bool:
        """Whether the database does not exist yet (a SQLite file `up` would create); servers: False."""
        return driver_class(self.config.dsn.dialect).database_missing(self.config.dsn)

    def connect(self, *, read_only: bool, wait_limit: float | None = None) -> Driver:
        """A prepared session, after waiting for the database up to --wait-timeout, or `wait_limit` seconds when
        that is shorter (check --wait: what is left of its --timeout)."""
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

        with self.tracer.wait():
            driver = wait_for_database(open_driver, self.config.dsn, wait_budget(self.config.wait_timeout, wait_limit),
                                       self.log)
        if self.config.dsn.dialect == "mysql":  # the client library holds it: no query
            self.mariadb = "mariadb" in driver.server_version().lower()
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
    def session(self, *, read_only: bool, wait_limit: float | None = None) -> Iterator[Driver]:
        driver = self.connect(read_only=read_only, wait_limit=wait_limit)
        try:
            yield driver
        finally:
            driver.close()

    @contextmanager
    def runner_lock(self, probe: Driver | None = None) -> Iterator[HeldLock]:
        """Hold the runner lock on a session of its own for the duration of the block. `probe`, an idle session to
        the same database, makes the pooler test of --lock-mode auto certain (engine/topology.py)."""
        cfg = self.config
        key = self.lock_key()
        lock_session = self.connect_once(read_only=False, connect_timeout=LOCK_SESSION_CONNECT_TIMEOUT_S)
        held: HeldLock | None = None
        try:
            # Only once there is work: a no-op `up` never loads them.
            from premigrate.engine import locking, tablelock

            with self.tracer.lock(key):
                mode = tablelock.choose_mode(cfg, lock_session, probe, self.log)
                if mode == "table":
                    held = self._take_lease(lock_session, key)
                else:
                    exclusive = tablelock.SessionLockBesideLease(tablelock.lease_for(cfg), lock_session)
                    locking.acquire(exclusive, key, cfg.lock_timeout, self.log)
                    holder = lock_session.session_id()
                    lock_session.guard_writes(key, holder)
                    held = HeldLock(lock_session, key, KEEPALIVE_S if holder is not None else None)
            held.protect(lock_session)
            if probe is not None:
                held.protect(probe)
            yield held
        finally:
            self._release(lock_session, key, held)

    def lock_key(self) -> str:
        """The runner lock's key: one per database and history table."""
        cfg = self.config
        return lock_key_text(cfg.dsn.database or "", f"{cfg.history_schema or ''}.{cfg.history_table_name}")

    def lock_holder(self, driver: Driver) -> dict[str, Any] | None:
        """Who holds the runner lock now, looked at on `driver` without taking it: the session lock or an unexpired
        lease (either --lock-mode), with what the driver tells of its holder; None when nobody holds it."""
        from premigrate.engine import tablelock

        return tablelock.SessionLockBesideLease(tablelock.lease_for(self.config), driver).lock_holder(self.lock_key())

    def history_and_holder(self, driver: Driver, *, ask_first: bool = False,
                           ) -> tuple[list[HistoryRow], dict[str, Any] | None]:
        """The history, and who holds the runner lock (looked at, never taken): before and after the read, so that
        a run that starts or ends meanwhile is still named, and its own unfinished row is not taken for one that a
        stopped run left behind (repair's report, serve). `ask_first`: ask whether the history table exists before
        reading it, so that polling an unmigrated database does not fill the server's log with errors."""
        holder = self.lock_holder(driver)
        history = driver.read_history() if not ask_first or driver.history_exists() else []
        return history, holder or self.lock_holder(driver)

    def _take_lease(self, lock_session: Driver, key: str) -> HeldLock:
        """--lock-mode table: the lease row, then its heartbeat on a session of its own (the lock session stays
        free for blocker lookups and failure records)."""
        from premigrate.engine import locking, tablelock
        from premigrate.engine.lease import Heartbeat

        lease = tablelock.LeaseOnSession(tablelock.lease_for(self.config), lock_session)
        tablelock.ensure_schema(lock_session)  # the lock table sits beside the history table, in its schema
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
        return HeldLock(lock_session, key, table=tablelock.TableLock(lease, heartbeat, beat_session))

    @contextmanager
    def locked_session(self) -> Iterator[tuple[Driver, HeldLock]]:
        """A writable session, under the runner lock; its history writes are fenced in table mode."""
        with self.session(read_only=False) as driver, self.runner_lock(probe=driver) as lock:
            yield driver, lock

    def _release(self, lock_session: Driver, key: str, held: HeldLock | None) -> None:
        """Release the runner lock. After a signal the session is just closed, which releases the lock too and
        cannot hang on a database that stopped answering; a session stuck in a query is left to the exit."""
        if held is not None:
            held.close()
            if held.lost is not None:
                self.log.warning("lock_release_skipped", error=held.lost,
                                 note="the lock ended with its session; another run may hold it now")
                lock_session.close()
                return
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
