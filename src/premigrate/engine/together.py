"""A migration in one batch (PostgreSQL): its statements, the runner-lock check, its history row and COMMIT go to
the server together: one round trip, where statement by statement takes one per statement and one more for the
record. And the next migration's batch goes out before this one's answer is back (drivers/postgres_together.py):
while the server runs one migration the client builds and sends the next, so the client's work per migration
overlaps the server's instead of adding to it. On a server across a network the round trips are most of what a
short migration costs; on the same machine it is the client's work.

Used for a migration in a transaction of its own, on its first attempt, up to MAX_STATEMENTS statements and
MAX_CHARS characters, when nothing has to happen on the client between its statements: no callback scripts (they run
between the statements), no trace spans (one per statement), no history row to update (a failed migration run
again), no table-lock fence (its check is a query of its own), and a driver that can (drivers/base.SendsTogether). A
retry after a lock timeout or deadlock runs statement by statement, so that its blocker lookup names the blocked
statement. A migration is sent ahead only when the one before it needs nothing on the client after its COMMIT (no
sqitch verify script) and the next one goes in one batch too.

What is the same as statement by statement: the server runs the statements in order, stops at the first that
fails and commits nothing then; statement_timeout and lock_timeout apply to each statement; the failed statement is
named, with its line. A migration sent ahead runs only if the one before it committed (the batch's guard), and
its migration_started event comes when that one is applied, which is when the server starts it. What differs, and
is said: the history row's applied_at and execution_ms are taken by the server, execution_ms from the start of the
migration's transaction to the history write; a progress report while it runs names statements 1 to n (which of
them runs is not known on the client); the blocker watch looks once, halfway through the lock timeout from the
wait's start. After a signal or a lost connection the batches in flight are read to their end: a migration that
committed is reported applied, and its history row says so.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from premigrate.drivers.base import SendsTogether
from premigrate.engine.lockwait import Timeouts
from premigrate.engine.tracing import NOOP
from premigrate.model.history import digests, migration_fields
from premigrate.model.modes import Mode
from premigrate.model.planner import Step
from premigrate.model.sql import Statement

if TYPE_CHECKING:
    from premigrate.engine.executor import Executor

# A larger migration runs statement by statement: its round trips are a small part of its time, its progress
# reports can then name the running statement, and neither the client (the message and a result per statement,
# within the 256 MiB of the example manifests) nor the server (which parses the whole message before it runs any of
# it) holds a large file's text twice.
MAX_STATEMENTS, MAX_CHARS = 100, 1 << 20
# After a failure with batches in flight, how long their answers may take (their running statement cancelled)
# before the session is cut off: a stalled network must not hold up the exit.
SETTLE_S = 5.0


class OneMessage:
    """The one-message way of one executor (see the module docstring)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        driver = executor.driver
        self.driver = cast(SendsTogether, driver) if getattr(driver, "sends_together", False) else None
        self.ahead: Step | None = None  # the next step, its batch sent before this one's answer came
        self.flying: deque[Step] = deque()  # the steps whose batches are in flight, oldest first

    def applies(self, step: Step, statements: Sequence[Statement]) -> bool:
        """Whether `step` (in a transaction of its own) can go in one message on its first attempt."""
        executor = self.executor
        if not (self.driver is not None and 0 < len(statements) <= MAX_STATEMENTS and step.row is None
                and executor.callbacks is None and executor.tracer is NOOP and self.driver.can_send_together()):
            return False
        size = 0
        for statement in statements:  # one pass: each Statement of a file is built anew on access
            if statement.rows is not None:  # COPY's rows go as its data, in a message of their own
                return False
            size += len(statement.text)
        return size <= MAX_CHARS

    def start(self, step: Step, statements: Sequence[Statement], timeouts: Timeouts, *,
              after: Step | None = None) -> None:
        """BEGIN with the migration's timeouts, its statements, the checks before the history write, the write and
        COMMIT, sent as one batch; nothing waits for it. `after`: the step whose batch is still unanswered, which
        this one's guard asks about (held last, so that nothing that fails before the send leaves it held)."""
        driver = self.driver
        assert driver is not None  # applies() said so
        executor = self.executor
        migration = step.migration
        row = executor.row(migration, statements, execution_ms=0, statements_done=len(statements),
                           statement_started=len(statements), statement_hashes=digests(statements))
        driver.begin_together()
        try:
            driver.set_timeouts(timeouts.lock, timeouts.statement, local=True)
            for statement in statements:
                driver.hold_statement(statement.text)
            executor.own_write_in_transaction(migration)
            driver.insert_row_timed(row)
        except BaseException:
            driver.rollback()  # BEGIN was never sent: this forgets what was held back
            raise
        if after is not None:
            driver.guard_committed(after.migration.id)
        driver.send_together()
        self.flying.append(step)

    def land(self, step: Step, statements: Sequence[Statement], started: float, rolled_back: str,
             timeouts: Timeouts, following: Step | None) -> None:
        """The migration's batch (sent ahead, else sent now), the next migration's sent ahead, then the answer to
        this one: the run goes on when it committed; a failure is reported as a statement's failure is."""
        driver = self.driver
        assert driver is not None  # applies() said so
        sent, self.ahead = self.ahead is step, None

        def hold() -> None:
            if not sent:
                self.start(step, statements, timeouts)

        def finish() -> list[int | None]:
            try:
                self._send_ahead(step, following)  # a connection lost meanwhile is this migration's to report
                return driver.finish_together()
            finally:
                # The steps in flight are the driver's batches in flight, in order: the answered ones leave, and
                # with a failure the ones drained behind it.
                while len(self.flying) > driver.in_flight:
                    self.flying.popleft()
                if not self.flying:
                    self.ahead = None

        self.executor.attempts.execute_together(step.migration, statements, started, hold, finish,
                                                rolled_back=rolled_back, lock_timeout=timeouts.lock,
                                                behind=lambda: any(s is not step for s in self.flying))

    def _send_ahead(self, step: Step, following: Step | None) -> None:
        """Send `following` now, if it goes in one batch and nothing must happen on the client between the two
        migrations; it runs only if `step` commits (guard_committed)."""
        executor, driver = self.executor, self.driver
        if (following is None or driver is None or following.migration.source is not None
                or executor.change_verify.wanted(step.migration)
                or (executor.guard is not None and executor.guard.received is not None)):
            return
        statements = executor.shapes.statements(following.migration)
        if executor.shapes.mode(following) != Mode.TRANSACTION or not self.applies(following, statements):
            return
        if executor.lock is not None:
            # The check before `following` is the one that goes out with `step`'s history write: `following`
            # runs only after `step` committed, and `step` commits only if its check passed (HeldLock.vouch).
            executor.lock.vouch(driver)
        executor.before_step(following)
        self.start(following, statements, executor.timeouts(following.migration), after=step)
        self.ahead = following

    def settle(self, *, cancel: bool) -> None:
        """After a failure that left batches in flight (a signal, a lost connection): cancel what still runs, read
        them to their end (within SETTLE_S), report each migration that committed as applied, and end the
        session's transaction."""
        driver = self.driver
        if driver is None or not driver.in_flight:
            self.flying.clear()
            self.ahead = None
            return
        if cancel and (self.executor.guard is None or self.executor.guard.received is None):
            driver.interrupt()  # (a signal's hook did so already) what still runs is cancelled, not waited for
        committed = driver.settle_together(SETTLE_S)
        for step, done in zip(list(self.flying), committed):
            if done:
                self.executor.log.info("migration_applied", **migration_fields(step.migration),
                                       statements=len(self.executor.shapes.statements(step.migration)),
                                       note="committed before the run stopped")
                self.executor.stats.applied += 1
        self.flying.clear()
        self.ahead = None
        try:
            driver.rollback()
        except BaseException:  # noqa: BLE001 - the failure that stopped the run is the one to report
            pass
