"""A fleet's sessions: why and when it stops, and a worker's idle sessions reused from one target to the next.

commands/fleet.py runs each target's command on a TargetSessions: the single-target Sessions, whose drivers check
the fleet's stop before each transaction and statement and go back to their worker when the target is done.
"""

from __future__ import annotations

import signal
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, cast

from premigrate.drivers import driver_class
from premigrate.drivers.base import Driver, DriverSettings, SqlError
from premigrate.engine.interrupts import SignalGuard
from premigrate.engine.sessions import Sessions, wait_budget
from premigrate.engine.waiting import wait_for_database
from premigrate.errors import ConnectionLost, Interrupted
from premigrate.model.dsn import Dsn


# -- stopping ----------------------------------------------------------------------------------------------------------

_STOP_POLL_S = 0.05  # how often a target waiting between connection attempts looks at the fleet's stop

@dataclass
class FleetStop:
    """Why the fleet stops: a signal (every running target stops at its next statement) or --fail-fast (no new
    target starts, running ones finish).

    The guard's watcher thread calls `arriving` (a cancel hook) the moment a signal arrives, before it cancels the
    running statements, so a worker whose statement was cancelled already knows why; the signal's number is set by
    the Python handler in the main thread a moment later.
    """

    guard: SignalGuard | None = None
    signum: int | None = None
    signalled: bool = False
    no_new_targets: bool = False

    def arriving(self) -> None:
        self.signalled = True

    def signal_number(self) -> int:
        deadline = time.monotonic() + 2.0
        while self.signum is None and (self.guard is None or self.guard.received is None):
            if time.monotonic() > deadline:
                return int(signal.SIGTERM)
            time.sleep(0.01)
        return self.signum if self.signum is not None else cast(int, cast(SignalGuard, self.guard).received)

    @property
    def stopping(self) -> bool:
        return self.signalled or self.signum is not None

    def check(self, *, before_statement: bool = False) -> None:
        """Raise Interrupted in the calling worker once a signal arrived: the executor answers it as it answers a
        signal in a single run. `before_statement`: the check stands before a statement that is then not sent."""
        if self.stopping:
            raise Interrupted(self.signal_number(), before_statement=before_statement)

    def sleep(self, seconds: float) -> None:
        """time.sleep for a target waiting for its server between attempts: it ends, with Interrupted, as soon as
        the fleet stops (an unreachable target must not hold the fleet's exit for the signal's grace period)."""
        deadline = time.monotonic() + seconds
        while True:
            self.check()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, _STOP_POLL_S))


class WorkerSessions:
    """A worker's idle sessions, kept from one target to the next on the same server (a connection costs a
    process or thread on the server, and an authentication): `Driver.rebound` resets one to the state of a new
    connection and points it at the next target, or says it cannot."""

    KEEP = 2  # a target's session and its runner lock's

    def __init__(self) -> None:
        self.idle: list[Driver] = []

    def take(self, dsn: Dsn, settings: DriverSettings) -> Driver | None:
        while self.idle:
            driver = self.idle.pop()
            rebound = driver.rebound(dsn, settings)
            if rebound is not None:
                return rebound
            driver.close()
        return None

    def give(self, driver: Driver) -> None:
        if len(self.idle) < self.KEEP:
            self.idle.append(driver)
        else:
            driver.close()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


class StoppableDriver:
    """A target's session: checks the fleet's stop before each transaction and statement, and goes back to its
    worker's idle sessions when the target is done with it (closed, once the fleet stops)."""

    def __init__(self, driver: Driver, stop: FleetStop, pool: WorkerSessions) -> None:
        self._driver = driver
        self._stop = stop
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    def transaction(self) -> AbstractContextManager[None]:
        self._stop.check()
        return self._driver.transaction()

    def begin(self) -> None:
        self._stop.check()
        self._driver.begin()

    def execute(self, statement: str) -> int | None:
        self._stop.check(before_statement=True)
        try:
            return self._driver.execute(statement)
        except (SqlError, ConnectionLost) as exc:
            self._raise_if_signalled(exc)
            raise

    def finish_together(self) -> list[int | None]:
        try:
            return cast(Any, self._driver).finish_together()  # type: ignore[no-any-return]
        except (SqlError, ConnectionLost) as exc:
            self._raise_if_signalled(exc)
            raise

    def _raise_if_signalled(self, exc: BaseException) -> None:
        """A statement that failed once the fleet is stopping was stopped by the signal's cancel hook (PostgreSQL:
        "canceling statement due to user request", MySQL: "Query execution was interrupted"): that is the signal,
        recorded as a single run records it (rolled back, or in doubt where it ran outside a transaction), not a
        failure of the migration to fix."""
        if self._stop.stopping:
            raise Interrupted(self._stop.signal_number()) from exc

    def try_lock(self, key: str) -> bool:
        self._stop.check()  # a target polling for its runner lock (another runner has it) stops polling too
        return self._driver.try_lock(key)

    def close(self) -> None:
        if self._stop.stopping:
            self._driver.close()
        else:
            self._pool.give(self._driver)


class TargetSessions(Sessions):
    """Sessions of one target: a worker's idle session when one can serve it; connecting gives up at once when the
    fleet stops; sessions check the stop."""

    stop: FleetStop
    pool: WorkerSessions

    def connect(self, *, read_only: bool, wait_limit: float | None = None) -> Driver:
        cls = driver_class(self.config.dsn.dialect)
        stop = self.stop
        settings = self.settings(read_only=read_only, connect_timeout=None)
        driver = self.pool.take(self.config.dsn, settings)
        if driver is None:
            def open_driver(connect_timeout: float | None) -> Driver:
                stop.check()  # a target still waiting for its server must not hold the fleet's exit
                return cls.connect(self.config.dsn, replace(settings, connect_timeout=connect_timeout))

            driver = wait_for_database(open_driver, self.config.dsn, wait_budget(self.config.wait_timeout, wait_limit),
                                       self.log, sleep=stop.sleep)
        try:
            driver.prepare_session()
        except BaseException:
            driver.close()
            raise
        return cast(Driver, StoppableDriver(driver, stop, self.pool))

    def connect_once(self, *, read_only: bool, connect_timeout: float) -> Driver:
        settings = self.settings(read_only=read_only, connect_timeout=connect_timeout)
        driver = self.pool.take(self.config.dsn, settings)
        if driver is None:
            driver = driver_class(self.config.dsn.dialect).connect(self.config.dsn, settings)
        return cast(Driver, StoppableDriver(driver, self.stop, self.pool))
