"""Table-lock waits of migration statements: the timeouts a migration runs with, retries with growing jittered
pauses after a lock timeout or deadlock, and naming the session that blocked it.

A short lock timeout with retries is what keeps an ALTER TABLE queued behind a long query from blocking every other
request to that table for minutes: the ALTER gives up quickly, lets the queue drain, and tries again.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from premigrate.settings import StatementSettings
from premigrate.drivers.base import Driver, SqlError

T = TypeVar("T")
# Pauses between attempts: 0.5 s, 1 s, 2 s ... up to 10 s, each plus up to 0.5 s of jitter so that replicas and
# the blocking application do not fall into lockstep.
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 10.0
BACKOFF_JITTER_S = 0.5
# How long a finished statement waits for a blocker lookup still in flight before giving up on the lock session
# (a connection that stopped answering must not hang the run, least of all after SIGTERM).
LOOKUP_WAIT_S = 3.0


@dataclass(frozen=True)
class Timeouts:
    """What one migration runs with. lock/statement: seconds, 0.0 = no limit, None = the session's own setting."""

    lock: float | None
    statement: float | None
    retries: int

    def describe(self) -> dict[str, Any]:
        return {"ddl_lock_timeout_s": self.lock, "statement_timeout_s": self.statement, "lock_retries": self.retries}


def timeouts_for(run: StatementSettings, settings: tuple[tuple[str, float | int], ...]) -> Timeouts:
    """The run's options, overridden by the file's own directives (by option name, see SETTING_DIRECTIVES)."""
    own = dict(settings)
    lock = own.get("ddl_lock_timeout", run.ddl_lock_timeout)
    statement = own.get("statement_timeout", run.statement_timeout)
    retries = own.get("lock_retries", run.lock_retries)
    return Timeouts(
        lock=0.0 if lock is None else float(lock),  # the option's "0" (None) is an explicit "no limit"
        statement=None if statement is None else float(statement),
        retries=int(retries if retries is not None else 0),
    )


class LockBusy(Exception):
    """A statement gave up waiting for a lock (or lost a deadlock); nothing of it took effect."""

    def __init__(self, error: SqlError, index: int, blockers: list[dict[str, Any]], migration: Any = None,
                 statements: Sequence[Any] = ()) -> None:
        super().__init__(str(error))
        self.error = error
        self.index = index
        self.blockers = blockers
        self.migration = migration  # the file and its statements, so whoever retries can name what was blocked
        self.statements = statements


def backoff(retry: int) -> float:
    """Pause before retry number `retry` (1-based)."""
    base: float = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (retry - 1))
    return base + random.uniform(0, BACKOFF_JITTER_S)


def with_lock_retries(attempt: Callable[[], T], retries: int, on_retry: Callable[[LockBusy, int, float], None],
                      sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `attempt`; after LockBusy, pause and run it again, up to `retries` more times; then LockBusy propagates.

    on_retry(busy, next_attempt_number, pause) is called before each pause. A signal during the pause interrupts it.
    """
    retry = 0
    while True:
        try:
            return attempt()
        except LockBusy as busy:
            retry += 1
            if retry > retries:
                raise
            pause = backoff(retry)
            on_retry(busy, retry + 1, pause)
            sleep(pause)


class BlockerWatch:
    """While a statement runs with a lock timeout, look up once, from another session, who blocks it.

    The lookup has to happen while the statement still waits: once the lock timeout fires, the database no longer
    knows what it was waiting for. It runs halfway through the lock timeout, so a statement that is merely slow costs
    one cheap query and one that is blocked gets its blocker named. One thread serves the whole run, started on the
    first statement that needs it: a thread per statement would cost more than the bookkeeping of a migration.

    A statement does not wake the thread unless it must: the thread sleeps until a time it records (`_wakes_at`),
    idle ones for half the last lock timeout, so a statement's lookup time is never sooner than that wake. Waking it
    for every statement cost a thread switch per statement, on a machine whose other core runs the database.
    """

    def __init__(self, watcher: Driver | None) -> None:
        self._watcher = watcher
        self._cond = threading.Condition()
        self.busy = threading.Lock()  # held while a lookup uses the watcher session
        self._job: tuple[int, float, list[dict[str, Any]]] | None = None  # session, when to look, result
        self._thread: threading.Thread | None = None
        self._closed = False
        self.stuck = False  # a lookup never came back: the watcher session must not be used again
        self._wakes_at = 0.0  # when the thread wakes by itself; 0 while it is awake
        self._idle_s: float | None = None  # how long it sleeps with no statement: half the last lock timeout

    @contextmanager
    def watching(self, waiting: Driver, lock_timeout: float | None) -> Iterator[list[dict[str, Any]]]:
        """Yields the list the blockers will be put in, if the statement is still running halfway through."""
        found: list[dict[str, Any]] = []
        armed = self.arm(waiting, lock_timeout, found)
        try:
            yield found
        finally:
            if armed:
                self.disarm()

    def arm(self, waiting: Driver, lock_timeout: float | None, found: list[dict[str, Any]]) -> bool:
        """watching()'s start, for a caller that runs a statement with no context manager around it (one less per
        statement, between round trips: engine/attempts.py): the blockers go into `found`. True when a lookup
        is due, and disarm() must follow the statement."""
        session = waiting.session_id() if self._watcher is not None and lock_timeout and not self.stuck else None
        if session is None or not lock_timeout:
            return False
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="premigrate-blocker-watch", daemon=True)
                self._thread.start()
            due = time.monotonic() + lock_timeout / 2
            self._job = (session, due, found)
            self._idle_s = lock_timeout / 2
            if due < self._wakes_at:
                self._cond.notify()
        return True

    def disarm(self) -> None:
        """watching()'s end: no lookup for the statement any more, and none still using the watcher session."""
        with self._cond:
            self._job = None
        self._wait_for_lookup()

    def _wait_for_lookup(self) -> None:
        """A lookup in flight ends before the caller uses the watcher session again, or the session is written off."""
        if self.stuck:
            return
        if self.busy.acquire(timeout=LOOKUP_WAIT_S):
            self.busy.release()
        else:
            self.stuck = True

    def _run(self) -> None:
        assert self._watcher is not None
        while True:
            with self._cond:
                while not self._closed and (self._job is None or time.monotonic() < self._job[1]):
                    # One clock reading: a wake computed from two could land after a statement's due time (when
                    # the thread is preempted in between) and cost that statement a needless notify.
                    now = time.monotonic()
                    pause = self._idle_s if self._job is None else self._job[1] - now
                    self._wakes_at = math.inf if pause is None else now + pause
                    self._cond.wait(pause)
                    self._wakes_at = 0.0
                if self._closed:
                    return
                assert self._job is not None
                session, _, found = self._job
                self._job = None
                self.busy.acquire()
            try:
                found[:] = self._watcher.blockers(session)
            except Exception:  # noqa: BLE001 - naming the blocker is best effort; the migration's error matters
                pass
            finally:
                self.busy.release()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._wait_for_lookup()


def describe_blockers(blockers: list[dict[str, Any]]) -> str:
    """One line naming the blocking sessions, for the final error message."""
    if not blockers:
        return "the blocking session could not be identified"
    described = []
    for b in blockers[:3]:
        if "pid" in b:
            who = f"pid {b['pid']}"
            extra = [f"application_name {b['application_name']!r}" if b.get("application_name") else "",
                     f"client {b['client_addr']}" if b.get("client_addr") else "",
                     f"user {b['user']}" if b.get("user") else "",
                     f"{b['state']} for {b['transaction_s']} s" if b.get("state") else ""]
        else:
            who = f"connection {b['connection_id']}"
            extra = [f"user {b['user']}" if b.get("user") else "", f"host {b['host']}" if b.get("host") else "",
                     f"transaction open since {b['transaction_started']}" if b.get("transaction_started")
                     else f"{b.get('command', '')} for {b.get('time_s')} s"]
        query = f", last query: {b['query']!r}" if b.get("query") else ""
        described.append(f"{who} ({', '.join(e for e in extra if e)}{query})")
    more = f" and {len(blockers) - 3} more" if len(blockers) > 3 else ""
    return ("blocked by " if "pid" in blockers[0] else "sessions with open transactions or running statements: ") \
        + "; ".join(described) + more
