"""The executor's own writes and checks around a migration: which session writes premigrate's history rows, the
runner-lock and session checks before them, and the session restore between migrations.

A mixin of its own so that Executor (engine/executor.py) fits in the size limits; Executor sets the attributes it
reads in its __init__.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

from typing import TYPE_CHECKING

from premigrate.drivers.base import Driver, HistoryRow
from premigrate.engine.attempts import SessionTimeouts, StatementAttempts
from premigrate.engine.sessions import HeldLock
from premigrate.errors import ConnectionLost
from premigrate.eventlog import EventLog
from premigrate.model.migrations import Migration
from premigrate.model.planner import Step

if TYPE_CHECKING:
    from premigrate.engine.stepwise import StepwiseRun


class OwnWrites:
    """premigrate's own writes and the checks around them (see the module docstring)."""

    driver: Driver
    log: EventLog
    lock: HeldLock | None
    own_session: bool
    attempts: StatementAttempts
    session_timeouts: SessionTimeouts
    stepwise: StepwiseRun
    # What is said of a step just before it starts: up's lint findings under --lint=warn (commands/lint/ahead.py).
    announce: Callable[[str], None] | None

    # -- premigrate's own writes --------------------------------------------------------------------------------

    @contextmanager
    def bookkeeping(self) -> Iterator[Driver]:
        """The session for premigrate's own writes outside a migration's transaction."""
        if self.lock is None or not self.own_session:
            yield self.driver
            return
        with self.lock.using() as session:
            yield session
        self.lock.vouch(self.driver)  # the write went through on the lock session: the lock was held

    def update_row(self, row: HistoryRow) -> None:
        with self.bookkeeping() as book:
            book.update_row(row)

    def update_row_before_statement(self, row: HistoryRow, since: HistoryRow, prepared: object | None = None) -> None:
        """The row's write just before a statement of its migration: where the migration's session can carry it
        in one message with that statement, checked against the lock in the same message (MySQL,
        drivers/mysql_write_first.py), it goes out with it; else now, as update_row(). `prepared`: the driver's
        write made ahead for these rows (Driver.prepare_update)."""
        lock = self.lock
        if (lock is not None and self.own_session and lock.table is None and lock.lost is None
                and self.driver.hold_update(row, since, lock.lost_on_check, prepared)):
            return
        self.update_row(row)

    def prepare_finish(self, final: HistoryRow, ahead: HistoryRow) -> object | None:
        """finish_and_start's write made ahead (Driver.prepare_finish) by the session bookkeeping() will yield. It
        makes SQL text only: no I/O on the lock session, which the keepalive may be using."""
        session = self.lock.session if self.lock is not None and self.own_session else self.driver
        return session.prepare_finish(final, ahead)

    def insert_row(self, row: HistoryRow) -> None:
        self.check_lock()
        with self.bookkeeping() as book:
            book.insert_row(row)

    def delete_row(self, migration_id: str) -> None:
        self.check_lock()
        with self.bookkeeping() as book:
            book.delete_row(migration_id)

    def record_quietly(self, row: HistoryRow) -> None:
        """Record a failure: through the lock session (premigrate's own), else through the migration session. A
        write held for a statement that was not sent is dropped: this row supersedes it."""
        self.driver.drop_held_write()
        lock = self.lock if self.lock is not None and self.lock.usable and self.lock.lost is None else None
        attempts: list[Callable[[], None]] = [partial(self.driver.update_row, row)]
        if lock is not None and self.own_session:
            attempts.insert(0, partial(self.update_row, row))
        elif lock is not None:
            attempts.append(partial(lock.session.update_row, row))
        for attempt in attempts:
            try:
                attempt()
                return
            except BaseException as exc:  # noqa: BLE001 - the statement's error matters more than this one
                self.log.warning("history_update_failed", migration_id=row.migration_id, error=str(exc))

    def check_lock(self, *, with_next_statement: bool = False) -> None:
        """Before each migration and each history write that is not conditional on the lock: LockLost if lost
        (HeldLock.check_with). with_next_statement: the check goes out with the migration session's next SQL,
        before any statement of the migration and on the session that would run it."""
        if self.lock is not None:
            self.lock.check_with(self.driver if with_next_statement else None)

    def check_session(self, migration: Migration) -> None:
        """Before a migration's final history write: refuse to record a migration that switched the current
        database (MySQL `USE` hidden where the check before the run cannot see it)."""
        current = self.driver.database_changed()
        if current is not None:
            raise self.attempts.switched(migration, current)

    def own_write_in_transaction(self, migration: Migration) -> None:
        """Before a history write inside a migration's transaction, on the migration's session."""
        self.check_session(migration)
        self.driver.own_identity_local()
        self.check_lock(with_next_statement=True)

    def between_migrations(self) -> None:
        """What a migration did to its session's state does not leak into the next one."""
        if self.driver.restore_session():
            self.session_timeouts.forget()

    def before_step(self, step: Step, *, first: bool = False) -> None:
        """The session restore and the lock check before a step. A connection lost here after the step's first row
        was written ahead (with the previous migration's final row) leaves a recorded state: reported as such."""
        if self.announce is not None:
            self.announce(step.migration.id)
        try:
            if not first:
                self.between_migrations()
            self.check_lock(with_next_statement=True)
        except ConnectionLost as exc:
            ahead = self.stepwise.written_ahead
            if exc.recorded or ahead is None or ahead.migration_id != step.migration.id:
                raise
            raise ConnectionLost(f"{exc.message}; the history row of {step.migration.script} records where it "
                                 "stopped", recorded=True) from exc
