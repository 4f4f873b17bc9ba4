"""The runner lock: polled on a session of its own, never awaited inside a transaction.

A lock awaited inside a transaction deadlocks CREATE INDEX CONCURRENTLY (it waits for every open transaction),
and a blocking wait could not be bounded or reported. Polling gives both: --lock-timeout, and a log line every
few seconds naming who holds the lock.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, Protocol
from premigrate.model.durations import format_duration
from premigrate.errors import LockTimeout
from premigrate.eventlog import EventLog

POLL_MIN_S = 0.05
POLL_MAX_S = 0.5
REPORT_EVERY_S = 5.0


class Lockable(Protocol):
    """A session lock (Driver) or a lease (engine/tablelock.LeaseOnSession): what acquire polls."""

    def try_lock(self, key: str) -> bool: ...
    def lock_holder(self, key: str) -> dict[str, Any] | None: ...


def acquire(
    session: Lockable,
    key: str,
    timeout: float | None,
    log: EventLog,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Take the lock or raise LockTimeout (exit 6). Returns the seconds spent waiting."""
    started = clock()
    delay = POLL_MIN_S
    reported_at: float | None = None
    while not session.try_lock(key):
        now = clock()
        waited = now - started
        if timeout is not None and waited >= timeout:
            holder = session.lock_holder(key)
            raise LockTimeout(
                f"runner lock not acquired within {format_duration(timeout)}: another premigrate is still running"
                f"{_describe(holder)}; raise --lock-timeout or wait for it to finish",
                holder=holder,
            )
        if reported_at is None or now - reported_at >= REPORT_EVERY_S:
            reported_at = now
            log.info("lock_waiting", waited_ms=round(waited * 1000), holder=session.lock_holder(key))
        pause = delay * (0.5 + random.random() / 2)
        if timeout is not None:
            pause = min(pause, max(0.0, timeout - waited))
        sleep(pause)
        delay = min(POLL_MAX_S, delay * 1.5)
    waited = clock() - started
    log.info("lock_acquired", waited_ms=round(waited * 1000))
    return waited


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder:
        return ""
    return " (held by " + ", ".join(f"{k}={v}" for k, v in holder.items() if v is not None) + ")"
