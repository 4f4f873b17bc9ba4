"""Wait for the database: retry what is transient, fail at once on what is not.

The first attempt runs without tenacity (imported only when a retry is needed: a no-op run pays nothing).
While the port refuses connections, a cheap TCP probe runs every 25 ms, so a database that comes up is noticed
within a tenth of a second; "starting up" and "too many connections" back off exponentially with jitter (cap 2 s)
so that many replicas do not hammer a busy server.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from premigrate.drivers.base import ConnectFailed, Driver
from premigrate.model.durations import format_duration
from premigrate.model.dsn import Dsn
from premigrate.errors import DatabaseUnavailable
from premigrate.eventlog import EventLog

PROBE_INTERVAL_S = 0.025
BACKOFF_CAP_S = 2.0
MAX_CONNECT_TIMEOUT_S = 10.0
_FINAL_REASONS = {"auth": "authentication failed", "unknown_database": "the database does not exist"}


def retry_delay(reason: str, attempt: int, rng: Callable[[], float] | None = None) -> float:
    """Seconds to wait before the next attempt, given why the last one failed. `rng`: random.random, imported
    only here (a database that answers the first probe never needs it)."""
    if reason == "refused":
        return PROBE_INTERVAL_S
    if reason == "timeout":
        return 0.0  # the attempt itself already waited
    base = 0.1 if reason in ("dns", "connection_reset", "other") else 0.2
    ceiling: float = min(BACKOFF_CAP_S, base * 2 ** min(attempt - 1, 10))
    if rng is None:
        import random

        rng = random.random
    return ceiling / 2 + rng() * ceiling / 2  # "equal jitter": never zero, never in lock-step with other replicas


def tcp_endpoint(dsn: Dsn) -> tuple[str, int] | None:
    """Where a cheap TCP probe can knock, or None (SQLite, Unix sockets, several hosts)."""
    if dsn.dialect == "sqlite":
        return None
    host = dsn.params_dict.get("host", dsn.host) or ""
    if not host or host.startswith("/") or "," in host:
        return None
    port = dsn.params_dict.get("port", dsn.port)
    try:
        return host, int(port or {"postgresql": 5432, "mysql": 3306}[dsn.dialect])
    except ValueError:
        return None


def tcp_probe(endpoint: tuple[str, int], timeout: float) -> None:
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            pass
    except socket.gaierror as exc:
        raise ConnectFailed(f"cannot resolve host {endpoint[0]!r}: {exc.strerror}", transient=True,
                            reason="dns") from None
    except ConnectionRefusedError:
        raise ConnectFailed(f"connection to {endpoint[0]}:{endpoint[1]} refused", transient=True,
                            reason="refused") from None
    except TimeoutError:
        raise ConnectFailed(f"connection to {endpoint[0]}:{endpoint[1]} timed out", transient=True,
                            reason="timeout") from None
    except OSError as exc:
        raise ConnectFailed(f"connection to {endpoint[0]}:{endpoint[1]} failed: {exc.strerror}", transient=True,
                            reason="refused") from None


@dataclass
class _WaitState:
    """What the retry loop remembers between attempts."""

    last: ConnectFailed  # the latest failure
    logged_at: float | None = None
    attempts: int = 1


def wait_for_database(
    open_driver: Callable[[float | None], Driver],
    dsn: Dsn,
    timeout: float | None,
    log: EventLog,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Driver:
    """Connect, waiting up to `timeout` seconds (None: forever). Raises DatabaseUnavailable (exit 3)."""
    started = clock()
    connect_timeout = MAX_CONNECT_TIMEOUT_S if timeout is None else min(MAX_CONNECT_TIMEOUT_S, timeout)
    try:
        driver = open_driver(connect_timeout)
    except ConnectFailed as exc:
        if not exc.transient:
            raise _final(exc, dsn) from None
        first_failure = exc
    else:
        _ready(driver, log, attempts=1, waited=clock() - started)
        return driver
    return _retry(open_driver, dsn, timeout, log, first_failure, started, clock, sleep)


def _retry(open_driver: Callable[[float | None], Driver], dsn: Dsn, timeout: float | None, log: EventLog,
           first_failure: ConnectFailed, started: float, clock: Callable[[], float],
           sleep: Callable[[float], None]) -> Driver:
    import tenacity

    endpoint = tcp_endpoint(dsn)
    state = _WaitState(last=first_failure)

    def remaining() -> float | None:
        return None if timeout is None else max(0.0, timeout - (clock() - started))

    def attempt() -> Driver:
        state.attempts += 1
        left = remaining()
        per_attempt = MAX_CONNECT_TIMEOUT_S if left is None else max(0.2, min(MAX_CONNECT_TIMEOUT_S, left))
        if endpoint is not None and state.last.reason in ("refused", "dns"):
            tcp_probe(endpoint, timeout=min(per_attempt, 1.0))  # cheap: no handshake until the port answers
        return open_driver(per_attempt)

    def next_delay(retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else state.last
        if isinstance(exc, ConnectFailed):  # only ConnectFailed is retried
            state.last = exc
        delay = retry_delay(state.last.reason, retry_state.attempt_number)
        left = remaining()
        return delay if left is None else min(delay, left)

    def report(upcoming_sleep: float) -> None:
        """Log the first failure, then at most one line a second."""
        now = clock()
        if state.logged_at is None or now - state.logged_at >= 1.0:
            state.logged_at = now
            exc = state.last
            hint = {"hint": f"the host name does not resolve: check it; retried up to --wait-timeout "
                            f"({format_duration(timeout)}) in case it is not registered yet"} \
                if exc.reason == "dns" else {}
            log.warning("wait_retrying", attempt=state.attempts, reason=exc.reason, error=exc.message,
                        waited_ms=round((now - started) * 1000), next_delay_ms=round(upcoming_sleep * 1000), **hint)

    first_delay = retry_delay(first_failure.reason, 1)
    report(first_delay)
    sleep(first_delay)
    retrying = tenacity.Retrying(
        # Our own deadline, measured from the first attempt (tenacity's clock would start later).
        stop=lambda retry_state: remaining() == 0.0,
        wait=next_delay,
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, ConnectFailed) and e.transient),
        before_sleep=lambda retry_state: report(retry_state.upcoming_sleep),
        sleep=sleep,
        reraise=True,
    )
    try:
        driver = retrying(attempt)
    except ConnectFailed as exc:
        if not exc.transient:
            raise _final(exc, dsn) from None
        if exc.reason == "read_only":
            from premigrate.engine.topology import read_only_error

            raise read_only_error(dsn.redacted()) from None
        raise DatabaseUnavailable(
            f"database {dsn.redacted()} not ready after {format_duration(timeout)} "
            f"({state.attempts} attempts); last error: {exc.message}",
            reason=exc.reason, attempts=state.attempts,
        ) from None
    _ready(driver, log, attempts=state.attempts, waited=clock() - started)
    return driver


def _final(exc: ConnectFailed, dsn: Dsn) -> DatabaseUnavailable:
    what = _FINAL_REASONS.get(exc.reason, "cannot connect")
    return DatabaseUnavailable(f"{what} for {dsn.redacted()}: {exc.message}", reason=exc.reason)


def _ready(driver: Driver, log: EventLog, *, attempts: int, waited: float) -> None:
    log.info("database_ready", attempts=attempts, waited_ms=round(waited * 1000), server=driver.server_version())
