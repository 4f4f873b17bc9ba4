"""SIGTERM/SIGINT: stop the running statement, let the runner roll back and release the lock, exit 143/130.

Two parts, because a statement can block the main thread inside C code where no Python signal handler runs:
- the Python handler raises Interrupted (a KeyboardInterrupt: psycopg answers it by cancelling the query);
- a watcher thread woken through signal.set_wakeup_fd calls the registered cancel hooks at once (sqlite3's
  interrupt(), MySQL's KILL QUERY from a second connection), so the blocked call returns and the handler runs.
A second signal exits immediately. If the clean-up after the first one has not finished within GRACE_S (a database
that stopped answering mid-run), the process exits anyway: the runner lock dies with its session.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType, TracebackType

from premigrate.errors import Interrupted

HANDLED = (signal.SIGTERM, signal.SIGINT)
# Below Kubernetes' default 30 s grace period, so the exit code (and the log line saying why) is ours, not SIGKILL's.
GRACE_S = 20.0
RECANCEL_S = 0.05  # how often a cancel is repeated while the signal's handler has not run yet


class SignalGuard:
    def __init__(self, on_give_up: Callable[[int, float], None] | None = None, grace_s: float = GRACE_S) -> None:
        self.received: int | None = None
        self._on_give_up = on_give_up
        self._grace_s = grace_s
        self._hooks: list[Callable[[], None]] = []
        self.exit_hooks: list[Callable[[], None]] = []  # before an immediate exit: leave the terminal tidy
        self._previous: dict[int, object] = {}
        self._previous_fd: int | None = None
        self._pipe: tuple[int, int] | None = None
        self._hooks_done = threading.Event()
        self._grace_timer: threading.Timer | None = None

    def add_cancel_hook(self, hook: Callable[[], None]) -> None:
        self._hooks.append(hook)

    def remove_cancel_hook(self, hook: Callable[[], None]) -> None:
        if hook in self._hooks:
            self._hooks.remove(hook)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is not None:
            self._before_exit()
            os._exit(128 + signum)  # second signal: the operator insists
        self.received = signum
        self._grace_timer = threading.Timer(self._grace_s, self._give_up, args=(signum,))
        self._grace_timer.daemon = True
        self._grace_timer.start()
        raise Interrupted(signum)

    def _give_up(self, signum: int) -> None:
        try:
            if self._on_give_up is not None:
                self._on_give_up(signum, self._grace_s)
        finally:
            self._before_exit()
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001 - exiting regardless
                    pass
            os._exit(128 + signum)

    def _before_exit(self) -> None:
        for hook in list(self.exit_hooks):
            try:
                hook()
            except Exception:  # noqa: BLE001 - exiting regardless
                pass

    def _watch(self, read_fd: int) -> None:
        while True:
            try:
                data = os.read(read_fd, 16)
            except OSError:
                return
            if not data:
                return
            if any(b in (int(s) for s in HANDLED) for b in data):
                self._call_hooks()
                self._hooks_done.set()
                # A cancel that reaches the statement before it has begun is lost (SQLite clears its interrupt flag
                # when a statement starts), and then the main thread stays inside the statement, where the Python
                # handler cannot run: cancel again until the handler has run. Never after: the clean-up's own
                # statements (rollback, the history row) must not be cancelled.
                while self.received is None and self._pipe is not None:
                    time.sleep(RECANCEL_S)
                    if self.received is None:
                        self._call_hooks()

    def _call_hooks(self) -> None:
        for hook in list(self._hooks):
            try:
                hook()
            except Exception:  # noqa: BLE001 - a failing hook must not kill the watcher
                pass

    def wait_for_cancel(self, timeout: float) -> None:
        """After a signal, give the cancel hooks time to finish: the process must not exit (and release the runner
        lock) while the server still runs the statement it was asked to stop."""
        if self.received is not None and self._pipe is not None:
            self._hooks_done.wait(timeout)

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        self._pipe = (read_fd, write_fd)
        self._previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, args=(read_fd,), name="premigrate-signals", daemon=True).start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # The clean-up the grace period bounds ended with the guard: a process that goes on (serve under a test, a
        # program embedding premigrate) must not be ended later by this run's timer.
        if self._grace_timer is not None:
            self._grace_timer.cancel()
        if self._pipe is None:
            return
        signal.set_wakeup_fd(self._previous_fd if self._previous_fd is not None else -1)
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        os.close(self._pipe[1])
        self._pipe = None
