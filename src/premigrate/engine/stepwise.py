"""A migration, or a down part, run statement by statement outside a transaction of ours (MySQL, no-transaction
files, resumes, files that open their own transactions): its history row says, at every moment, exactly where it
stands.

Before statement k runs the row says "k started"; after it, "k done" (written together with "k+1 started"). A run
that dies in between leaves k "in doubt", and the next run refuses to guess (see model/planner.py). A down part's
row (state rolling_back) gets its "done" mark in a write of its own, and is deleted after the last statement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, NamedTuple

from premigrate.drivers.base import (
    STATE_APPLIED, STATE_FAILED, STATE_IN_PROGRESS, STATE_ROLLING_BACK, HistoryRow, SqlError,
)
from premigrate.engine.attempts import EVENT_DOWN_FAILED
from premigrate.engine.lockwait import LockBusy, Timeouts
from premigrate.errors import ConnectionLost, Interrupted, LockLost, MigrationFailed
from premigrate.held_events import Later
from premigrate.model import transactions
from premigrate.model.history import PrefixHasher, migration_fields
from premigrate.model.migrations import Migration
from premigrate.model.modes import Mode
from premigrate.model.planner import Reason, Step
from premigrate.model.sql import Statement
from premigrate.model.transactions import Block

if TYPE_CHECKING:
    from premigrate.engine.executor import Executor


class _After(NamedTuple):
    """StepwiseRun._after's rows (see there), and their writes where the driver makes them ahead."""
    done: HistoryRow
    next: HistoryRow | None
    hashes: tuple[str, ...] | None = None
    ahead: Later[HistoryRow | None] | None = None
    prepared: object | None = None  # next's write (Driver.prepare_update), or the final one (prepare_finish)


def _optional(prepare: Callable[[HistoryRow, HistoryRow], object | None], row: HistoryRow,
              other: HistoryRow) -> object | None:
    """A write made ahead, or None if making it failed: it only saves time, and its failure must not fail a
    statement that succeeded (the write is then made as usual, where a real failure is reported)."""
    try:
        return prepare(row, other)
    except Exception:  # noqa: BLE001 - see the docstring
        return None


def _finished(row: HistoryRow, total: int, hashes: tuple[str, ...], **times: Any) -> HistoryRow:
    """A migration's final row, and with `times` its applied_at and execution_ms (known once its last statement is
    done): one rule for the row written and for the one its write is made ahead from (_prepare_finish)."""
    return row.evolve(state=STATE_APPLIED, statements_done=total, statement_started=total, error=None,
                      statement_hashes=hashes, **times)


class StepwiseRun:
    """The stepwise mode of one executor. Holds the next migration's first row when it was written ahead."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.driver = executor.driver
        self.attempts = executor.attempts
        self.written_ahead: HistoryRow | None = None  # the next migration's first row, already written
        self.prefix = PrefixHasher(())  # the prefix hash of the migration being run (model/history.py)

    def apply(self, step: Step, statements: Sequence[Statement], started: float, timeouts: Timeouts,
              following: Step | None = None) -> None:
        """Record "statement k started" before and "done" after each statement."""
        migration = step.migration
        recorded: HistoryRow | None
        if step.reason == Reason.RESUME and step.row is not None:
            row = step.row.evolve(statements_total=len(statements), checksum=migration.checksum, error=None)
            self.executor.log.info("migration_resumed", **migration_fields(migration),
                                   from_statement=row.statements_done + 1, statements=len(statements))
            recorded = step.row
        elif self.written_ahead is not None and self.written_ahead.migration_id == migration.id:
            row = recorded = self.written_ahead  # inserted together with the previous migration's final write
            self.written_ahead = None
        else:
            # The first statement's "started" mark goes in with the row: one write fewer per migration. (A file
            # that opens its own transaction first gets its mark from _run_block.)
            opens_block = any(b.first == 1 for b in self.executor.shapes.blocks(migration, statements))
            row = self.executor.row(migration, statements, state=STATE_IN_PROGRESS, statements_done=0,
                                    statement_started=1 if statements and not opens_block else 0)
            if step.row is not None:
                self.executor.update_row(row)
            else:
                self.executor.insert_row(row)
            recorded = row
        try:
            self.executor.session_timeouts.apply(timeouts)  # the first SQL after the row: a loss here is recorded
            self._run_statements(migration, statements, row, recorded, started, timeouts, following)
        except ConnectionLost as exc:
            if exc.recorded:
                raise
            raise ConnectionLost(f"{exc.message}; the history row of {migration.script} records where it stopped",
                                 recorded=True) from exc

    def withdraw_row_ahead(self, exc: BaseException) -> None:
        """The next migration's first row ("statement 1 started"), written with the previous one's final row, when
        the run ends before that migration starts (a failing afterEachMigrate, a signal, a lock check): removed, so
        the next run finds the migration pending instead of a statement in doubt that never ran. The row was
        inserted fresh, so removing it restores exactly what was there. Not on a lost connection or a lost lock:
        no write can be made then, or none may (another runner may own the history now); the row stays, and reads
        as in doubt, which is safe."""
        ahead = self.written_ahead
        if ahead is None or isinstance(exc, (ConnectionLost, LockLost)):
            return
        self.written_ahead = None
        try:
            self.executor.delete_row(ahead.migration_id)
        except BaseException as failed:  # noqa: BLE001 - the run's own error is the one to report
            self.executor.log.warning("history_update_failed", migration_id=ahead.migration_id, error=str(failed),
                                      note="its row says statement 1 started, although it never ran")

    def roll_back(self, row: HistoryRow, down_view: Migration, statements: Sequence[Statement],
                  started: float, timeouts: Timeouts) -> None:
        """No transaction around the down part: the row, in state rolling_back, records each statement's start
        and end; it is removed when the last statement is done."""
        progress = row.evolve(state=STATE_ROLLING_BACK, statements_total=len(statements), statements_done=0,
                              statement_started=0, statement_hashes=(), error=None)
        self.executor.update_row(progress)
        self.executor.session_timeouts.apply(timeouts)
        try:
            for index in range(1, len(statements) + 1):
                progress = progress.evolve(statement_started=index)
                self.executor.update_row(progress)
                try:
                    self.attempts.with_retries(
                        partial(self.attempts.execute, down_view, statements, index, started, recorded=True,
                                event=EVENT_DOWN_FAILED, lock_timeout=timeouts.lock),
                        timeouts.retries, started, recorded=True, rolled_back="", event=EVENT_DOWN_FAILED)
                except MigrationFailed as exc:
                    self.executor.record_quietly(progress.evolve(error=exc.fields.get("error_summary")))
                    raise
                progress = progress.evolve(statements_done=index)
                self.executor.update_row(progress)
            self.executor.check_session(down_view)
            self.executor.delete_row(row.migration_id)
        except ConnectionLost as exc:
            raise ConnectionLost(exc.message, recorded=True) from exc

    def _run_statements(self, migration: Migration, statements: Sequence[Statement], row: HistoryRow,
                        recorded: HistoryRow | None, started: float, timeouts: Timeouts,
                        following: Step | None) -> None:
        """Statement by statement, one history write per statement: "k done and k+1 started" in the same write."""
        # Progress rows carry one hash of the done part, advanced statement by statement: constant-size writes.
        self.prefix = PrefixHasher(statements)
        blocks = {b.first: b for b in self.executor.shapes.blocks(migration, statements)}
        index = row.statements_done + 1
        after: _After | None = None
        while index <= len(statements):
            block = blocks.get(index)
            if block is not None:
                row = self._run_block(migration, statements, row, recorded, block, started, timeouts)
                recorded, after = row, None
                index = block.last + 1
                continue
            wanted = after.next if after is not None and after.next is not None else row.evolve(statement_started=index)
            if wanted != recorded:
                if recorded is not None and index > 1:
                    self.executor.update_row_before_statement(
                        wanted, recorded, after.prepared if after is not None and after.next is wanted else None)
                else:
                    self.executor.update_row(wanted)
            row = recorded = wanted
            # The rows to write after the statement, made while the server runs it (held_events.Later).
            later = Later(partial(self._after, row, index, len(statements), blocks, following),
                          overlap=self.executor.overlaps)
            try:
                self._run_one(migration, statements, index, row, started, timeouts)
            except BaseException:
                later.drop()
                self.driver.drop_held_write()  # its statement was never sent, or the write went with it
                raise
            after = later.get()
            row = after.done
            index += 1
        hashes = after.hashes if after is not None and after.hashes is not None else \
            self.prefix.recorded(len(statements))
        final = _finished(row, len(statements), hashes, applied_at=datetime.now(timezone.utc),
                          execution_ms=self.attempts.ms(started))
        try:
            self.executor.check_session(migration)
        except MigrationFailed as exc:
            self._record(row.evolve(state=STATE_FAILED, error=str(exc)))
            raise
        # A change with a verify script to run is not final yet: the next one's row waits (engine/change_verify.py).
        ahead = None if self.executor.change_verify.wanted(migration) else (
            after.ahead.get() if after is not None and after.ahead is not None else self._row_ahead(following))
        if ahead is None:
            self.executor.update_row(final)
            return
        # One commit instead of two: where every write is its own commit (MySQL), commits are what a run costs.
        with self.executor.bookkeeping() as book:
            book.finish_and_start(final, ahead, after.prepared if after is not None else None)
        self.written_ahead = ahead

    def _after(self, row: HistoryRow, index: int, total: int, blocks: dict[int, Block],
               following: Step | None) -> _After:
        """What _run_statements writes once statement `index` is done: the row saying so, the next statement's
        "started" row, or after the last one its statements' hashes and the next migration's first row (its
        failure, if making it fails, raised where it is asked for)."""
        done = row.evolve(statements_done=index, statement_hashes=self.prefix.progress(index))
        if index < total:
            if index + 1 in blocks:
                return _After(done, None)
            following_row = done.evolve(statement_started=index + 1)
            return _After(done, following_row, prepared=_optional(self.driver.prepare_update, following_row, row))
        ahead = Later(partial(self._row_ahead, following), overlap=False)
        ahead.run()
        hashes = self.prefix.recorded(total)
        return _After(done, None, hashes, ahead, self._prepare_finish(done, hashes, ahead, total))

    def _prepare_finish(self, done: HistoryRow, hashes: tuple[str, ...], ahead: Later[HistoryRow | None],
                        total: int) -> object | None:
        """The final write made ahead (Driver.prepare_finish), as _run_statements will write it; its applied_at
        and execution_ms are the driver's to fill in when it is sent."""
        try:
            following = ahead.get()
        except Exception:  # noqa: BLE001 - raised again where _run_statements asks for it
            return None
        if following is None:
            return None
        return _optional(self.executor.prepare_finish, _finished(done, total, hashes), following)

    def _record(self, row: HistoryRow) -> None:
        """A failure's row, written once: with the full list of the done statements' hashes (not the prefix hash
        of the progress writes), so that a resume can name the statement that changed since."""
        self.executor.record_quietly(row.evolve(statement_hashes=self.prefix.recorded(row.statements_done)))

    def _run_one(self, migration: Migration, statements: Sequence[Statement], index: int, row: HistoryRow,
                 started: float, timeouts: Timeouts) -> None:
        """Statement `index`, retried after lock timeouts; a failure or a signal is recorded on its row."""
        try:
            self.attempts.with_retries(
                lambda: self._execute_with_index_cleanup(migration, statements, index, started, timeouts),
                timeouts.retries, started, recorded=True, rolled_back="")
        except MigrationFailed as exc:
            self._record(row.evolve(state=STATE_FAILED,
                                                    error=exc.fields.get("error_summary") or str(exc)))
            raise
        except Interrupted as exc:
            if exc.before_statement:
                # A fleet's worker stopped before sending it (engine/fleet_sessions.py): nothing is in doubt, and
                # the row goes back to "statement index-1 done", which the next run resumes from on its own.
                self._record(row.evolve(
                    statement_started=row.statements_done,
                    error=f"interrupted by {exc} before statement {index} was sent; the next run resumes at it"))
                raise
            self._record(row.evolve(
                error=f"interrupted by {exc} during statement {index}; it may or may not have taken effect"))
            raise

    def _row_ahead(self, following: Step | None) -> HistoryRow | None:
        """The next migration's first row ("statement 1 started"), when it runs statement by statement from the
        start, so that it can be written together with this migration's final row."""
        if following is None or following.row is not None or following.reason == Reason.RESUME:
            return None
        if getattr(following.migration.source, "preconditions", None) is not None:
            return None  # its preconditions, judged just before it, may keep it from running or record it otherwise
        statements = self.executor.shapes.statements(following.migration)
        if not statements or self.executor.shapes.mode(following) != Mode.NONE:
            return None
        return self.executor.row(following.migration, statements, state=STATE_IN_PROGRESS, statements_done=0,
                                 statement_started=1)

    def _run_block(self, migration: Migration, statements: Sequence[Statement], row: HistoryRow,
                   recorded: HistoryRow | None, block: Block, started: float, timeouts: Timeouts) -> HistoryRow:
        """A transaction the file opens and ends itself, run as written. Its "done" mark is written inside that
        transaction, just before the COMMIT, so the row commits (or not) together with the block: a crash around
        the COMMIT is never mistaken for "not applied". Where DDL commits implicitly (MySQL), the block is marked
        started first, so an interruption inside it reads as "in doubt"."""
        transactional_ddl = self.driver.transactional_ddl
        before = row.evolve(statement_started=block.first if not transactional_ddl else row.statements_done)
        if before != recorded:
            self.executor.update_row(before)
        after = row.evolve(statements_done=block.last, statement_started=block.last,
                           statement_hashes=self.prefix.progress(block.last))

        sent = [0]  # statements of the block that reached the server (or were about to), over every attempt

        def attempt() -> None:
            try:
                for index in range(block.first, block.last):
                    sent[0] += 1
                    self.attempts.execute(migration, statements, index, started, recorded=True,
                                          lock_timeout=timeouts.lock)
                if block.ends_with == transactions.COMMIT:
                    self.driver.own_identity_local()
                    self.driver.update_row(after)
                self.attempts.execute(migration, statements, block.last, started, recorded=True,
                                      lock_timeout=timeouts.lock)
            except (MigrationFailed, LockBusy):
                try:
                    self.driver.rollback()
                except BaseException:  # noqa: BLE001 - the statement's error is the one to report
                    pass
                raise
            if block.ends_with == transactions.ROLLBACK:
                self.executor.update_row(after)

        try:
            self.attempts.with_retries(attempt, timeouts.retries, started, recorded=True, rolled_back="")
        except MigrationFailed as exc:
            note = "" if transactional_ddl else "; DDL in the block may have committed implicitly before the failure"
            self._record(before.evolve(
                state=STATE_FAILED, statement_started=block.first,
                error=f"{exc.fields.get('error_summary') or exc} (in the transaction block of statements "
                      f"{block.first}-{block.last}, rolled back){note}"))
            raise
        except Interrupted as exc:
            if exc.before_statement and sent[0] == 1 and not transactional_ddl:
                # A fleet's worker stopped before the block's first statement was sent: nothing of it ran, and the
                # row goes back to "statement first-1 done", which the next run resumes from on its own.
                self._record(before.evolve(
                    statement_started=row.statements_done,
                    error=f"interrupted by {exc} before statement {block.first} was sent; the next run resumes "
                          f"at it"))
            raise
        # Otherwise (interrupted, a lost connection) the row already says what is true: the block committed with
        # its mark or it did not (PostgreSQL, SQLite), or it is in doubt from its first statement on (MySQL).
        return after

    def _execute_with_index_cleanup(self, migration: Migration, statements: Sequence[Statement], index: int,
                                    started: float, timeouts: Timeouts) -> None:
        """A failed CREATE INDEX CONCURRENTLY leaves an invalid index behind, which would make every retry fail
        (or, with IF NOT EXISTS, succeed without an index): drop it before each attempt and after a failure."""
        statement = statements[index - 1]
        name = transactions.concurrent_index_name(statement) if self.driver.invalid_indexes else None
        if name is None:
            self.attempts.execute(migration, statements, index, started, recorded=True, lock_timeout=timeouts.lock)
            return
        self._drop_invalid_index(migration, name)
        try:
            self.attempts.execute(migration, statements, index, started, recorded=True, lock_timeout=timeouts.lock)
        except (MigrationFailed, LockBusy):
            self._drop_invalid_index(migration, name)
            raise

    def _drop_invalid_index(self, migration: Migration, name: str) -> None:
        try:
            dropped = self.driver.drop_invalid_index(name)
        except (SqlError, ConnectionLost) as exc:
            self.executor.log.warning("invalid_index_drop_failed", **migration_fields(migration), index=name,
                                      error=str(exc))
            return
        if dropped:
            self.executor.log.info("invalid_index_dropped", **migration_fields(migration), index=dropped,
                                   note="left behind by a failed CREATE INDEX CONCURRENTLY")
