"""Log events held back for a moment, so that they are written while the database works rather than between two
round trips.

A MySQL run waits for the server after each statement and each history write, and nothing else happens meanwhile:
every microsecond the client spends between a reply and its next command adds to the run. Two events per migration
fall in that gap: migration_applied for the migration just recorded, migration_started for the next one. The
executor holds them (hold), and the MySQL driver writes them (release) once the next statement has been sent, while
the server runs it (drivers/mysql_send.py).

The order of the log stays the order of the run:
- every event that goes through premigrate's processor chain first writes what is held (log.py puts
  release_first at the head of the chain): an event of any logger, any thread, a signal's handler;
- the executor's own log releases before each of its events (ReleasingLog), for a log that is not the chain
  (a test's recorder);
- what is held is written at the latest when the executor's run ends, and before the process exits (cli.run).
A held event's fields are taken when it is held; its timestamp when it is written, at most one round trip later.

The same wait serves bookkeeping that needs nothing the statement changes (Later): the history rows to write once it
is done are made while it runs, on the run's own thread, and asked for when its answer is back. After them, one
piece of the thread's idle work (set_idle): `up --lint=warn` lints the next file there (commands/lint/ahead.py).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, MutableMapping
from typing import Any, Generic, TypeVar, cast

from premigrate.eventlog import EventLog

T = TypeVar("T")

_held: deque[tuple[Callable[..., Any], str, dict[str, Any]]] = deque()
_lock = threading.RLock()  # hold() on a thread that is releasing (a held event's own code) must not wait on itself
_releasing = threading.local()


def hold(method: Callable[..., Any], event: str, fields: dict[str, Any]) -> None:
    """`method(event, **fields)` later: at the next release."""
    with _lock:
        _held.append((method, event, fields))


def pending() -> bool:
    return bool(_held)


def release() -> None:
    """Write what is held, oldest first, one writer at a time, so that the events come out in the order they were
    held. Each is taken off the queue as it is written: one that fails (a signal arriving mid-write) is not written
    twice, and the rest stay for the next release. An event's own trip through the chain (release_first) does not
    release again on this thread, which would write a later event before it."""
    if not _held or getattr(_releasing, "on", False):
        return
    with _lock:
        _releasing.on = True
        try:
            while _held:
                method, event, fields = _held.popleft()
                method(event, **fields)
        finally:
            _releasing.on = False


def release_first(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The first processor of log.py's chain: what is held is written before the event at hand."""
    if _held:
        release()
    return event


class ReleasingLog:
    """The executor's log: each event first releases what is held; hold() holds an info event where `holding`
    (the driver writes held events once its next statement is sent), and logs it at once elsewhere."""

    def __init__(self, log: EventLog, *, holding: bool) -> None:
        self.inner = log
        self.holding = holding

    def hold(self, event: str, **fields: Any) -> None:
        if self.holding:
            hold(self.inner.info, event, fields)
        else:
            self.info(event, **fields)

    def debug(self, event: str, **fields: Any) -> Any:
        release()
        return self.inner.debug(event, **fields)

    def info(self, event: str, **fields: Any) -> Any:
        release()
        return self.inner.info(event, **fields)

    def warning(self, event: str, **fields: Any) -> Any:
        release()
        return self.inner.warning(event, **fields)

    def error(self, event: str, **fields: Any) -> Any:
        release()
        return self.inner.error(event, **fields)

    def log(self, level: int, event: str, **fields: Any) -> Any:
        release()
        return self.inner.log(level, event, **fields)


def hold_or_log(log: EventLog, event: str, **fields: Any) -> None:
    """An info event held where `log` holds (a ReleasingLog), logged at once elsewhere."""
    if isinstance(log, ReleasingLog):
        log.hold(event, **fields)
    else:
        log.info(event, **fields)


# -- work for the next wait ---------------------------------------------------------------------------------------

_work = threading.local()  # .queue: this thread's Later values not computed yet, oldest first


class Later(Generic[T]):
    """`compute()`, done while the next statement runs where the driver writes held events once it has sent one
    (run_work), else when first asked for (get). For bookkeeping that needs nothing the statement changes (the
    history rows to write after it), so that it is off the time between the answer and the next write. Raises from
    get() what compute() raised, as if computed there."""

    def __init__(self, compute: Callable[[], T], *, overlap: bool) -> None:
        self._compute: Callable[[], T] | None = compute
        self._value: T | None = None
        self._error: Exception | None = None
        if overlap:
            queue: list[Later[Any]] | None = getattr(_work, "queue", None)
            if queue is None:
                queue = _work.queue = []
            queue.append(self)

    def run(self) -> None:
        compute, self._compute = self._compute, None
        if compute is None:
            return
        try:
            self._value = compute()
        except Exception as exc:  # noqa: BLE001 - raised by get(), where the caller would have computed it
            self._error = exc
        except BaseException:  # a signal: computed again when asked for
            self._compute = compute
            raise

    def get(self) -> T:
        self.run()
        if self._error is not None:
            raise self._error
        return cast(T, self._value)

    def drop(self) -> None:
        """Not needed after all (the statement failed): never computed."""
        self._compute = None


def has_work() -> bool:
    return bool(getattr(_work, "queue", None))


def run_work() -> None:
    """This thread's Later values, computed now (the driver has just sent a statement and waits for it); then one
    piece of its idle work, if it has some (set_idle)."""
    queue: list[Later[Any]] | None = getattr(_work, "queue", None)
    while queue:
        queue.pop(0).run()
    idle: Callable[[], None] | None = getattr(_work, "idle", None)
    if idle is not None:
        idle()


def set_idle(work: Callable[[], None] | None) -> None:
    """Work this thread does in each of its waits for the database, after its Later values: `work()` is called once
    per wait, and should do a small piece (commands/lint/ahead.py lints one file). None: no more."""
    _work.idle = work


def idle_work() -> Callable[[], None] | None:
    return cast("Callable[[], None] | None", getattr(_work, "idle", None))
