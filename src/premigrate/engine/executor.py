"""The executor: the one path that applies steps, in either direction, on a session under the runner lock.

    up, repair --resume   apply(steps)   each step in its mode (model/modes.py): in a transaction with its history
                                         row, or statement by statement with progress rows; --single-transaction:
                                         every step and its row in one transaction
    down                  roll_back(targets)  each down part in a transaction with the removal of its row, or
                                         statement by statement with progress rows (state rolling_back)

Every statement runs through engine/attempts.py (blocker watch, error mapping); every attempt is retried there after
a lock timeout; every transaction is the driver's transaction().
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from premigrate.config import Config
from premigrate.drivers.base import Driver, HistoryRow, SqlError
from premigrate.engine.runstats import RunStats as RunStats  # the name's old home
from premigrate.engine.progress import FIRST_AT_A_TERMINAL_S, INTERVAL_S, ProgressReport
from premigrate.engine.attempts import EVENT_DOWN_FAILED, SessionTimeouts, StatementAttempts
from premigrate.engine.change_verify import ChangeVerify
from premigrate.engine.changesets import apply_changeset, refuse_in_single_transaction
from premigrate.engine.own_writes import OwnWrites
from premigrate.engine.interrupts import SignalGuard
from premigrate.engine.lockwait import LockBusy, Timeouts, timeouts_for
from premigrate.engine.sessions import HeldLock
from premigrate.engine.stepwise import StepwiseRun
from premigrate.engine.together import OneMessage
from premigrate.engine.tracing import NOOP, Span, Tracer
from premigrate.errors import ConnectionLost, LockLost, MigrationFailed, PremigrateError
from premigrate.eventlog import EventLog
from premigrate.held_events import ReleasingLog, hold_or_log, release as release_held
from premigrate.model.history import digests, migration_fields, row_for
from premigrate.model.migrations import Migration
from premigrate.model.modes import MODE_TEXT, Mode, StepShapes
from premigrate.model.planner import Step
from premigrate.model.sql import Statement

if TYPE_CHECKING:
    from premigrate.engine.callbacks import CallbackRunner

CANCEL_WAIT_S = 10.0  # how long a signal's cancel of the running statement may take before the clean-up goes on


class Executor(OwnWrites):
    """Applies steps on `driver`; the caller holds the runner lock (`lock`), whose session doubles as the spare."""

    def __init__(self, driver: Driver, shapes: StepShapes, config: Config, log: EventLog, *, applied_by: str,
                 lock: HeldLock | None = None, guard: SignalGuard | None = None,
                 clock: Callable[[], float] = time.monotonic, stats: RunStats | None = None,
                 callbacks: CallbackRunner | None = None, tracer: Tracer = NOOP) -> None:
        self.driver = driver
        self.shapes = shapes
        self.config = config
        # Where the driver makes room once it has sent a statement, some events and bookkeeping wait for that moment
        # and are done while the server runs it (held_events.py): here the log, the stepwise rows (StepwiseRun).
        self.overlaps = bool(getattr(driver, "releases_held_events", False))
        self.log = ReleasingLog(log, holding=self.overlaps)
        self.lock = lock
        self.guard = guard
        self.clock = clock
        self.applied_by = applied_by
        self.callbacks = callbacks  # beforeEachMigrate, afterEachMigrate, afterEachMigrateError (up only)
        self.stats = stats if stats is not None else RunStats()
        self.tracer = tracer
        self.announce: Callable[[str], None] | None = None  # see OwnWrites.before_step
        self._timeouts: dict[tuple[tuple[str, float | int], ...], Timeouts] = {}  # by a file's own directives
        # A person reading console output hears of a long statement sooner than a log pipeline does.
        progress = ProgressReport(self.log, first_after_s=FIRST_AT_A_TERMINAL_S if config.log_format == "console"
                                  else INTERVAL_S)
        self.attempts = StatementAttempts(driver, self.log, clock, self.timeouts,
                                          lock.watch if lock is not None else None, tracer, progress)
        self.session_timeouts = SessionTimeouts(driver)
        self.stepwise = StepwiseRun(self)
        self.change_verify = ChangeVerify(self)  # sqitch verify scripts, after a change's deploy
        self.one_message = OneMessage(self)  # a migration's statements, record and COMMIT in one message
        # The lock session does premigrate's own writes outside a migration's transaction (its state is never a
        # migration's); the writes that must commit with a migration's transaction run on the migration session,
        # conditional on the lock session still holding the lock.
        self.own_session = lock is not None and lock.keepalive_s is not None
        if lock is not None:
            lock.protect(driver)  # its history writes conditional on the lock (advisory) or fenced (table mode)

    # -- the run around the steps -------------------------------------------------------------------------------

    def timeouts(self, migration: Migration) -> Timeouts:
        """The run's options, overridden by the file's own directives; worked out once per set of directives (most
        files have none), not once per migration between two round trips."""
        settings = migration.settings
        known = self._timeouts.get(settings)
        if known is None:
            known = self._timeouts[settings] = timeouts_for(self.config.statements, settings)
        return known

    @contextmanager
    def running(self) -> Iterator[None]:
        """While statements run: a signal cancels the running statement, and the session's timeouts are reset
        after. A failure after the runner lock was lost is reported as the lost lock (exit 8): whatever failed
        (a statement meeting the other runner's work, a history write) failed because of it."""
        if self.guard is not None:
            self.guard.add_cancel_hook(self.driver.interrupt)
        self.stats.statements_began = True
        try:
            yield
        except (PremigrateError, SqlError) as exc:
            if isinstance(exc, LockLost) or self.lock is None or not self.lock.lease_lost():
                raise
            self.log.error("lock_lost", error=str(exc))
            raise LockLost("runner lock lost during the run: the lease expired and is no longer ours (this run was"
                           f" paused or cut off past --lock-lease); nothing was committed after the loss ({exc});"
                           " run premigrate again") from exc
        finally:
            if self.guard is not None:
                self.guard.wait_for_cancel(CANCEL_WAIT_S)
                self.guard.remove_cancel_hook(self.driver.interrupt)
            self.session_timeouts.reset()

    @contextmanager
    def transaction(self, timeouts: Timeouts) -> Iterator[None]:
        """The migration's transaction with its timeouts: transaction-local where the database has that; elsewhere
        session values set before it begins (SQLite's busy timeout bounds BEGIN IMMEDIATE)."""
        local = self.driver.local_timeouts
        if not local:
            self.session_timeouts.apply(timeouts)
        with self.driver.transaction():
            if local:
                self.driver.set_timeouts(timeouts.lock, timeouts.statement, local=True)
            yield

    def _callback(self, event: str, migration: Migration, *, in_transaction: bool = False) -> None:
        if self.callbacks is not None:
            self.callbacks.run(self.driver, event, in_transaction=in_transaction, migration_id=migration.id)

    def row(self, migration: Migration, statements: Sequence[Statement], **changes: object) -> HistoryRow:
        return row_for(migration, statements, self.applied_by, **changes)

    # -- up -----------------------------------------------------------------------------------------------------

    def apply(self, steps: Sequence[Step]) -> None:
        """Apply planned steps. Signals cancel the running statement."""
        with self.running():
            if self.config.apply.single_transaction:
                self._apply_single_transaction(steps)
                return
            try:
                for index, step in enumerate(steps):
                    if self.one_message.ahead is not step:  # a step sent ahead had this done when it was sent
                        self.before_step(step, first=not index)
                    self.attempts.progress.position = (index + 1, len(steps))
                    following = steps[index + 1] if index + 1 < len(steps) else None
                    with self.migration_span(step.migration, "up") as span:
                        # A changeset with its format's run rules (preconditions, failOnError) may not run.
                        rows = self.apply_step(step, following) if step.migration.source is None else \
                            apply_changeset(self, step, following)
                        span.set("premigrate.rows_affected", rows or 0)
                        if rows is not None and self.change_verify.wanted(step.migration):
                            self.change_verify.run(step.migration)
            except BaseException as exc:
                # Batches sent ahead: what committed is reported; on a lost connection there is nothing to cancel.
                self.one_message.settle(cancel=not isinstance(exc, ConnectionLost))
                self.stepwise.withdraw_row_ahead(exc)
                raise
            finally:
                release_held()  # the last migration's migration_applied: no statement follows it

    def migration_span(self, migration: Migration, direction: str) -> AbstractContextManager[Span]:
        version = str(migration.version) if migration.version is not None else None
        return self.tracer.migration(migration.id, version=version, description=migration.description,
                                     direction=direction, kind=migration.kind)

    def apply_step(self, step: Step, following: Step | None) -> int:
        """Apply one step; the rows it affected."""
        migration = step.migration
        statements = self.shapes.statements(migration)
        fields = migration_fields(migration)
        mode = self.shapes.mode(step)
        timeouts = self.timeouts(migration)
        if not statements:
            self.log.warning("migration_empty", **fields, note="the up part has no statements; recorded as applied")
        hold_or_log(self.log, "migration_started", **fields, statements=len(statements),
                    transaction=MODE_TEXT[mode], reason=step.reason)
        started = self.clock()
        self.attempts.rows.clear()
        try:
            if mode == Mode.TRANSACTION:
                self._apply_in_transaction(step, statements, started, timeouts, following)
            else:
                # No transaction to share: each callback script runs on its own, before and after the migration.
                self._callback("beforeEachMigrate", migration)
                self.stepwise.apply(step, statements, started, timeouts, following)
                try:
                    self._callback("afterEachMigrate", migration)
                except BaseException:  # recorded applied before its callback ran: the run's figures say so
                    self.attempts.report_applied(migration, len(statements), started, self.stats)
                    raise
        except MigrationFailed:
            if self.callbacks is not None:  # after the rollback (or the failed row), on the same session
                self.callbacks.run_after_error(self.driver, "afterEachMigrateError", migration.id)
            raise
        return self.attempts.report_applied(migration, len(statements), started, self.stats)

    def _run_and_record(self, step: Step, statements: Sequence[Statement], started: float, rolled_back: str,
                        timeouts: Timeouts) -> None:
        """Inside an open transaction: the migration's statements, then its history row."""
        migration = step.migration
        self._callback("beforeEachMigrate", migration, in_transaction=True)
        for index in range(1, len(statements) + 1):
            self.attempts.execute(migration, statements, index, started, recorded=False, rolled_back=rolled_back,
                                  lock_timeout=timeouts.lock)
        self._callback("afterEachMigrate", migration, in_transaction=True)
        row = self.row(migration, statements, execution_ms=self.attempts.ms(started),
                       statements_done=len(statements), statement_started=len(statements),
                       statement_hashes=digests(statements))
        self.own_write_in_transaction(migration)
        if step.row is not None:
            self.driver.update_row(row)
        else:
            self.driver.insert_row(row)

    def _apply_in_transaction(self, step: Step, statements: Sequence[Statement], started: float,
                              timeouts: Timeouts, following: Step | None) -> None:
        """Statements and history row commit together: a crash leaves the old state or the new one.
        A lock timeout or deadlock rolls the whole migration back and runs it again."""
        rolled_back = "the migration was rolled back"
        # The first attempt in one batch where it can (engine/together.py): sent ahead already, or now; a retry
        # statement by statement.
        together = self.one_message.ahead is step or self.one_message.applies(step, statements)
        attempted = False

        def attempt() -> None:
            nonlocal attempted
            first, attempted = not attempted, True
            try:
                if together and first:
                    try:
                        self.one_message.land(step, statements, started, rolled_back, timeouts, following)
                        return
                    except SqlError as exc:
                        if not (exc.two_commands or exc.prepared_gone):
                            raise
                        # An item the server reads as two commands, refused in a batch before it ran, or a prepared
                        # statement of premigrate's that the migration dropped (the rest rolled back): the migration
                        # runs again statement by statement, each in a message.
                with self.transaction(timeouts):
                    self._run_and_record(step, statements, started, rolled_back, timeouts)
            except SqlError as exc:
                # A conflict at COMMIT (Galera certification, errno 1213) or on the history row: retried whole.
                if exc.lock_contention and statements:
                    raise LockBusy(exc, len(statements), [], step.migration, statements) from exc
                if exc.at_commit:
                    raise self.attempts.commit_failure(exc, step.migration, len(statements), started,
                                                       rolled_back) from exc
                raise

        self.attempts.with_retries(attempt, timeouts.retries, started, recorded=False, rolled_back=rolled_back)
        if self.lock is not None:
            # The lock was checked with the history write (own_write_in_transaction), in the batch that committed:
            # the commit is the check's answer, and the next migration's check would repeat it a moment later.
            self.lock.vouch(self.driver)

    def _apply_single_transaction(self, steps: Sequence[Step]) -> None:
        """--single-transaction: every pending migration and its history row in one transaction, all or nothing."""
        refuse_in_single_transaction(list(steps), self.config.named("single_transaction"))
        started = self.clock()
        rolled_back = "the whole --single-transaction run was rolled back"
        run_timeouts = timeouts_for(self.config.statements, ())
        done: list[tuple[Step, int, tuple[int, list[int | None]]]] = []

        def attempt() -> None:
            done.clear()
            with self.transaction(run_timeouts):
                for step in steps:
                    statements = self.shapes.statements(step.migration)
                    timeouts = self.timeouts(step.migration)
                    if self.driver.local_timeouts and timeouts != run_timeouts:
                        self.driver.set_timeouts(timeouts.lock, timeouts.statement, local=True)
                    self.log.info("migration_started", **migration_fields(step.migration),
                                  statements=len(statements), transaction="single", reason=step.reason)
                    step_started = self.clock()
                    self.attempts.rows.clear()
                    with self.migration_span(step.migration, "up") as span:
                        self._run_and_record(step, statements, step_started, rolled_back, timeouts)
                        counts = self.attempts.row_counts(len(statements))
                        span.set("premigrate.rows_affected", counts[0])
                    done.append((step, self.attempts.ms(step_started), counts))

        # The whole run is retried, with the run's retry count.
        try:
            self.attempts.with_retries(attempt, run_timeouts.retries, started, recorded=False,
                                       rolled_back=rolled_back, transaction="single")
        except SqlError as exc:
            if not exc.at_commit:
                raise
            raise self.attempts.commit_failure(exc, None, len(done), started, rolled_back) from exc
        for step, duration, (rows, per_statement) in done:
            self.log.info("migration_applied", **migration_fields(step.migration), duration_ms=duration,
                          transaction="single", rows_affected=rows, rows_affected_per_statement=per_statement)
            self.stats.applied += 1
            self.stats.rows_affected += rows
        self.log.info("single_transaction_committed", migrations=len(done), duration_ms=self.attempts.ms(started))

    # -- down ---------------------------------------------------------------------------------------------------

    def roll_back(self, targets: Sequence[tuple[HistoryRow, Migration]]) -> None:
        """Run the down parts of `targets` (newest first), each removing its row. Signals cancel the statement."""
        with self.running():
            for index, (row, migration) in enumerate(targets):
                if index:
                    self.between_migrations()
                self.check_lock()
                with self.migration_span(migration, "down"):
                    self.roll_back_one(row, migration)
                self.stats.rolled_back += 1

    def roll_back_one(self, row: HistoryRow, migration: Migration) -> None:
        statements = self.shapes.down_statements(migration)
        fields = migration_fields(migration) | {"script": migration.down_script}
        transactional = self.shapes.down_in_transaction(migration)
        timeouts = self.timeouts(migration)
        self.log.info("rollback_started", **fields, statements=len(statements),
                      transaction="per-migration" if transactional else "none (progress recorded per statement)")
        started = self.clock()
        # Failures name the down part's file.
        down_view = replace(migration, script=migration.down_script or migration.script)
        rolled_back = "the rollback was rolled back"
        if transactional:
            def attempt() -> None:
                with self.transaction(timeouts):
                    for index in range(1, len(statements) + 1):
                        self.attempts.execute(down_view, statements, index, started, recorded=False,
                                              rolled_back=rolled_back, event=EVENT_DOWN_FAILED,
                                              lock_timeout=timeouts.lock)
                    self.own_write_in_transaction(down_view)
                    self.driver.delete_row(row.migration_id)

            self.attempts.with_retries(attempt, timeouts.retries, started, recorded=False, rolled_back=rolled_back,
                                       event=EVENT_DOWN_FAILED)
        else:
            self.stepwise.roll_back(row, down_view, statements, started, timeouts)
        self.log.info("rolled_back", **fields, duration_ms=self.attempts.ms(started), statements=len(statements))
