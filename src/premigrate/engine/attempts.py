"""Running one statement of a migration: the blocker watch around it, its errors mapped to what ends the run, and
retries of a whole attempt after a lock timeout or deadlock. Used by the executor for every direction and mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from premigrate.engine.measurements import StatementRows, rows_affected
from premigrate.engine.tracing import NOOP, Tracer
from premigrate.drivers.base import Driver, SqlError, execute_statement
from premigrate.engine.progress import ProgressReport
from premigrate.engine.lockwait import BlockerWatch, LockBusy, Timeouts, describe_blockers, with_lock_retries
from premigrate.engine.runstats import RunStats
from premigrate.errors import ConnectionLost, MigrationFailed
from premigrate.eventlog import EventLog
from premigrate.held_events import hold_or_log
from premigrate.log import learn_credentials
from premigrate.model.durations import format_duration
from premigrate.model.history import migration_fields
from premigrate.model.migrations import Migration
from premigrate.model.sql import Statement

T = TypeVar("T")
EVENT_UP_FAILED, EVENT_DOWN_FAILED = "migration_failed", "rollback_failed"
SQL_LOG_LIMIT = 300  # characters of a failed statement in its log event


class SessionTimeouts:
    """The session-wide timeouts in force on the migration session, set only when they change."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self._in_force: tuple[float | None, float | None] | None = None

    def apply(self, timeouts: Timeouts) -> None:
        wanted = (timeouts.lock, timeouts.statement)
        if self._in_force == wanted:
            return
        if self._in_force is not None and self._in_force[1] is not None and timeouts.statement is None:
            self.driver.reset_timeouts()  # the previous file's own statement timeout must not leak into this one
        self.driver.set_timeouts(timeouts.lock, timeouts.statement, local=False)
        self._in_force = wanted

    def forget(self) -> None:
        """The session's settings were reset by other means (Driver.restore_session): nothing is in force."""
        self._in_force = None

    def reset(self) -> None:
        if self._in_force is not None:
            self._in_force = None
            try:
                self.driver.reset_timeouts()
            except BaseException:  # noqa: BLE001 - best effort: the session is closed next anyway
                pass


class StatementAttempts:
    """Executes statements on the migration session and turns their failures into the error that ends the run."""

    def __init__(self, driver: Driver, log: EventLog, clock: Callable[[], float],
                 timeouts_of: Callable[[Migration], Timeouts], watch: BlockerWatch | None = None,
                 tracer: Tracer = NOOP, progress: ProgressReport | None = None) -> None:
        self.driver = driver
        self.tracer = tracer
        self.log = log
        self.clock = clock
        self.timeouts_of = timeouts_of
        self.watch = watch if watch is not None else BlockerWatch(None)
        # Rows affected by statement index of the migration running now (the executor clears it per migration).
        self.rows = StatementRows()
        self.progress = progress if progress is not None else ProgressReport(log)

    def row_counts(self, total: int) -> tuple[int, list[int | None]]:
        """Rows affected by a migration of `total` statements: the sum of the known counts, and per statement."""
        per_statement = self.rows.first(total)
        return sum(c for c in per_statement if c is not None), per_statement

    def ms(self, started: float) -> int:
        return round((self.clock() - started) * 1000)

    def report_applied(self, migration: Migration, statements: int, started: float, stats: RunStats) -> int:
        """The migration_applied event of a migration of `statements` statements, counted in the run's figures
        (from here on, whatever follows: a failing afterEachMigrate or verify script does not undo the record);
        the rows it affected."""
        rows, per_statement = self.row_counts(statements)
        stats.applied += 1
        stats.rows_affected += rows
        hold_or_log(self.log, "migration_applied", **migration_fields(migration), duration_ms=self.ms(started),
                    statements=statements, rows_affected=rows, rows_affected_per_statement=per_statement)
        return rows

    def execute(self, migration: Migration, statements: Sequence[Statement], index: int, started: float, *,
                recorded: bool, rolled_back: str = "the migration was rolled back",
                event: str = EVENT_UP_FAILED, lock_timeout: float | None = None) -> None:
        """Run statement `index` (1-based). A lock timeout or deadlock raises LockBusy (for with_retries); any
        other SQL error MigrationFailed (logged); a lost connection ConnectionLost naming the statement."""
        statement = statements[index - 1]
        blockers: list[dict[str, Any]] = []
        try:
            if self.tracer.enabled:
                with self.tracer.statement(statement.text, index=index) as span:
                    span.set("premigrate.rows_affected",
                             self._run(migration, statements, index, statement, lock_timeout, blockers))
            else:  # no span: one context manager less per statement, between round trips
                self._run(migration, statements, index, statement, lock_timeout, blockers)
            # Asks the server only after a statement that may have switched it (the driver tracks that).
            current = self.driver.database_changed()
            if current is not None:
                raise self.switched(migration, current, index, statement.line)
        except SqlError as exc:
            if exc.own_write:
                raise  # premigrate's write in front of the statement: the statement did not run
            if exc.lock_contention:
                raise LockBusy(exc, index, blockers, migration, statements) from exc
            raise self.failure(exc, migration, statements, index, started, recorded=recorded,
                               rolled_back=rolled_back, event=event) from exc
        except ConnectionLost as exc:
            self.log.error(event, **migration_fields(migration), duration_ms=self.ms(started),
                           statement=index, line=statement.line, error=exc.message,
                           outcome="in progress row recorded" if recorded else "rolled back by the server")
            raise ConnectionLost(
                f"{migration.script}: {exc.message} while running statement {index} (line {statement.line})"
                + ("; its history row records where it stopped" if recorded else "; nothing was committed"),
                recorded=recorded,
            ) from exc

    def _run(self, migration: Migration, statements: Sequence[Statement], index: int, statement: Statement,
             lock_timeout: float | None, blockers: list[dict[str, Any]]) -> int | None:
        """Statement `index` with the blocker watch (its findings put in `blockers`) and the progress report around
        it, as watching() and running() put them, without their context managers; its rows affected."""
        armed = self.watch.arm(self.driver, lock_timeout, blockers)
        try:
            self.progress.begin(migration, index, len(statements), statement)
            try:
                reported = execute_statement(self.driver, statement)
            finally:
                self.progress.end()
        finally:
            if armed:
                self.watch.disarm()
        self.rows[index] = count = rows_affected(statement.text, reported)
        return count

    def execute_together(self, migration: Migration, statements: Sequence[Statement], started: float,
                         hold: Callable[[], None], send: Callable[[], list[int | None]], *, rolled_back: str,
                         lock_timeout: float | None, behind: Callable[[], bool] = lambda: False) -> None:
        """Run all of a migration's statements in one batch (engine/together.py): `hold` holds them back with
        what goes after them (and sends them), `send` waits for the answer and returns the statements' row
        counts. A failed statement is reported as execute() reports it (the driver names it: SqlError.statement);
        a failure of premigrate's own SQL in the batch is raised as it is, as it would be from its own message.
        `behind`: whether the next migration's batch was sent ahead of this one's answer (a lost connection leaves
        both in doubt)."""
        # The watch asks the session's id first (one query, the first time): before anything is held back.
        with self.watch.watching(self.driver, lock_timeout) as blockers, \
                self.progress.running(migration, 1, len(statements), statements[0], last=len(statements)):
            hold()  # a failure here is premigrate's own or the connection's, raised as it is
            counts = self._send_together(migration, statements, started, send, blockers, rolled_back, behind)
        for index, (statement, reported) in enumerate(zip(statements, counts), 1):
            self.rows[index] = rows_affected(statement.text, reported)

    def _send_together(self, migration: Migration, statements: Sequence[Statement], started: float,
                       send: Callable[[], list[int | None]], blockers: list[dict[str, Any]],
                       rolled_back: str, behind: Callable[[], bool]) -> list[int | None]:
        try:
            return send()
        except SqlError as exc:
            if exc.statement is None or exc.two_commands:
                raise
            if exc.lock_contention:
                raise LockBusy(exc, exc.statement, blockers, migration, statements) from exc
            raise self.failure(exc, migration, statements, exc.statement, started, recorded=False,
                               rolled_back=rolled_back) from exc
        except ConnectionLost as exc:
            self.log.error(EVENT_UP_FAILED, **migration_fields(migration), duration_ms=self.ms(started),
                           statements=len(statements), error=exc.message,
                           outcome="its history row says whether it committed")
            also = (" (so did the next migration's, sent ahead of this one's answer: it ran only if this one "
                    "committed)") if behind() else ""
            raise ConnectionLost(
                f"{migration.script}: {exc.message} while its statements, history row and COMMIT were running (sent "
                f"in one batch): it committed whole or not at all, and its history row says which{also}",
                recorded=False,
            ) from exc

    def switched(self, migration: Migration, current: str, index: int | None = None,
                 line: int | None = None) -> MigrationFailed:
        """A migration switched the session's current database: it ends the run, before another statement."""
        where = f"statement {index} (line {line})" if index is not None else "a statement"
        error = (f"{where} switched the current database to {current!r} (USE): the statements after it would run "
                 "there; premigrate stops here. Qualify the other database's names instead (other_db.table)")
        self.log.error(EVENT_UP_FAILED, **migration_fields(migration), statement=index, line=line, error=error,
                       outcome="recorded as failed")
        return MigrationFailed(f"{migration.script}: {error}; recorded as failed: settle it with `premigrate repair`",
                               line=line, error_summary=error)

    def failure(self, exc: SqlError, migration: Migration, statements: Sequence[Statement], index: int,
                started: float, *, recorded: bool, rolled_back: str, event: str = EVENT_UP_FAILED,
                blockers: list[dict[str, Any]] | None = None, gave_up: str = "") -> MigrationFailed:
        """Log the failed statement and build the error that ends the run (exit 4)."""
        statement = statements[index - 1]
        learn_credentials(statement.text)
        line = statement.line
        if exc.position:
            line += statement.text[: exc.position - 1].count("\n")
        error_summary = f"statement {index} (line {line}): [{exc.code}] {exc.message}"
        extra = {"blockers": blockers} if blockers is not None else {}
        # A down part run statement by statement has no failed state: its row stays rolling_back, recording which
        # statements of the down part ran, and is settled with --forget or --mark-applied, never resumed.
        down = event == EVENT_DOWN_FAILED
        self.log.error(
            event, **migration_fields(migration), duration_ms=self.ms(started), statement=index,
            statements=len(statements), line=line, **{exc.code_field: exc.code}, error=exc.message,
            sql=abbreviate(statement.text),
            outcome=("recorded as rolling_back" if down else "recorded as failed") if recorded else "rolled back",
            **extra,
        )
        return MigrationFailed(
            f"{migration.script}: statement {index} of {len(statements)} (line {line}) failed: "
            f"[{exc.code}] {exc.message}"
            + (f"; {gave_up}" if gave_up else "")
            + (f"; {rolled_back}" if not recorded and rolled_back else "")
            + ("; the database user lacks a privilege this statement needs (or the database takes no writes): grant "
               "it, or run premigrate as a user that has it" if exc.lacks_privilege else "")
            + ("" if not recorded else
               "; its history row stays rolling_back and records which statements of the down part ran: run "
               "`premigrate repair` to see the ways out" if down else
               "; recorded as failed: fix the cause, then run `premigrate repair` to see the ways to finish it"),
            line=line, error_summary=error_summary, **{exc.code_field: exc.code},
        )

    def commit_failure(self, exc: SqlError, migration: Migration | None, ran: int, started: float,
                       rolled_back: str) -> MigrationFailed:
        """Log a COMMIT that failed (a deferred constraint, a serialization failure) and build the error that ends
        the run (exit 4): the statements all ran, none of them is to blame alone. `migration`: the one whose
        transaction it was; None for the transaction of a --single-transaction run, of `ran` migrations."""
        if migration is None:
            what = f"the COMMIT of the --single-transaction run failed after its {ran} migration(s) ran"
        else:
            what = f"{migration.script}: its COMMIT failed after its {ran} statement(s) ran"
            self.log.error(EVENT_UP_FAILED, **migration_fields(migration), duration_ms=self.ms(started),
                           at="COMMIT", statements=ran, **{exc.code_field: exc.code}, error=exc.message,
                           outcome="rolled back")
        return MigrationFailed(f"{what}: [{exc.code}] {exc.message}" + (f"; {rolled_back}" if rolled_back else ""),
                               error_summary=f"COMMIT: [{exc.code}] {exc.message}", **{exc.code_field: exc.code})

    def with_retries(self, attempt: Callable[[], T], retries: int, started: float, *, recorded: bool,
                     rolled_back: str, event: str = EVENT_UP_FAILED, **extra: Any) -> T:
        """Run `attempt` again after a lock timeout or deadlock, up to `retries` times; when they run out, fail
        naming the blocked statement (carried by LockBusy) and its blocker."""

        def on_retry(busy: LockBusy, attempt_number: int, pause: float) -> None:
            self.log.warning("lock_retry", **migration_fields(busy.migration), attempt=attempt_number,
                             attempts=retries + 1, statement=busy.index,
                             **{busy.error.code_field: busy.error.code}, error=busy.error.message,
                             blockers=busy.blockers, pause_s=round(pause, 2),
                             ddl_lock_timeout_s=self.timeouts_of(busy.migration).lock, **extra)

        try:
            return with_lock_retries(attempt, retries, on_retry)
        except LockBusy as busy:
            raise self.failure(
                busy.error, busy.migration, list(busy.statements), busy.index, started,
                recorded=recorded, rolled_back=rolled_back, event=event, blockers=busy.blockers,
                gave_up=f"gave up after {retries + 1} attempt(s) with a lock timeout of "
                        f"{format_duration(self.timeouts_of(busy.migration).lock or None)}; "
                        f"{describe_blockers(busy.blockers)}",
            ) from busy.error


def abbreviate(text: str, limit: int = SQL_LOG_LIMIT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
