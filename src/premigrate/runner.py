"""The runner: the only place that orders side effects (connect, lock, create, apply, record, release)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from premigrate import __version__
from premigrate.config import Config
from premigrate.drivers import driver_class
from premigrate.drivers.base import (
    STATE_APPLIED, STATE_FAILED, STATE_IN_PROGRESS, Driver, DriverSettings, HistoryRow, SqlError, lock_key_text,
)
from premigrate.errors import ConnectionLost, Interrupted, MigrationFailed, ValidationFailed
from premigrate.interrupts import SignalGuard
from premigrate import locking
from premigrate.planner import Plan, Policy, Step, make_plan
from premigrate.source import Migration, MigrationSet, load_migrations
from premigrate.statements import SplitError, Statement, split_statements
from premigrate.waiting import wait_for_database

EXIT_OK = 0
EXIT_PENDING = 7


@dataclass
class RunStats:
    applied: int = 0


class Runner:
    def __init__(self, config: Config, log: Any, guard: SignalGuard | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.log = log
        self.guard = guard
        self.clock = clock
        self.stats = RunStats()
        self.policy = Policy(config.dsn.dialect, config.allow_out_of_order, config.strict, config.table)
        self.host = socket.gethostname()
        self._spare: Driver | None = None

    # -- sessions -----------------------------------------------------------------------------------------------

    def _settings(self, *, read_only: bool, connect_timeout: float | None) -> DriverSettings:
        cfg = self.config
        return DriverSettings(
            table=cfg.history_table_name,
            schema=cfg.history_schema,
            search_path=cfg.schema,
            application_name=f"premigrate@{self.host}"[:63],
            connect_timeout=connect_timeout,
            read_only=read_only,
        )

    def connect(self, *, read_only: bool) -> Driver:
        cls = driver_class(self.config.dsn.dialect)

        def open_driver(connect_timeout: float | None) -> Driver:
            return cls.connect(self.config.dsn, self._settings(read_only=read_only, connect_timeout=connect_timeout))

        driver = wait_for_database(open_driver, self.config.dsn, self.config.wait_timeout, self.log)
        try:
            driver.prepare_session()
        except BaseException:
            driver.close()
            raise
        return driver

    @contextmanager
    def session(self, *, read_only: bool) -> Iterator[Driver]:
        driver = self.connect(read_only=read_only)
        try:
            yield driver
        finally:
            driver.close()

    @contextmanager
    def runner_lock(self) -> Iterator[Driver]:
        """Hold the runner lock on a session of its own for the duration of the block; yields that session."""
        cfg = self.config
        key = lock_key_text(cfg.dsn.database or "", f"{cfg.history_schema or ''}.{cfg.history_table_name}")
        cls = driver_class(cfg.dsn.dialect)
        lock_session = cls.connect(cfg.dsn, self._settings(read_only=False, connect_timeout=10.0))
        try:
            locking.acquire(lock_session, key, cfg.lock_timeout, self.log)
            try:
                yield lock_session
            finally:
                try:
                    lock_session.unlock(key)
                    self.log.info("lock_released")
                except Exception as exc:  # noqa: BLE001 - closing the session below releases it anyway
                    self.log.warning("lock_release_failed", error=str(exc))
        finally:
            lock_session.close()

    # -- commands -----------------------------------------------------------------------------------------------

    def load(self) -> MigrationSet:
        files = load_migrations(self.config.dir)
        self.log.debug("migrations_loaded", count=len(files.all), dir=str(self.config.dir))
        return files

    def wait(self) -> int:
        with self.session(read_only=True):
            return EXIT_OK

    def up(self) -> int:
        files = self.load()
        with self.session(read_only=False) as driver:
            # Lock-free first look: a restarting old pod must never queue behind a long run by a newer one.
            plan = make_plan(files, driver.read_history(), self.policy)
            if plan.clean:
                self._warn(plan)
                self.log.info("nothing_to_do", applied=len([e for e in plan.entries if e.state == "applied"]))
                return EXIT_OK
            with self.runner_lock() as lock_session:
                # The lock session is also the fallback for bookkeeping when the migration session breaks.
                self._spare = lock_session
                driver.ensure_schema()
                if driver.ensure_history_table():
                    self.log.info("history_table_created", table=self.config.table)
                # Re-read under the lock: the usual case for replica two is "nothing left to do".
                plan = make_plan(files, driver.read_history(), self.policy)
                self._warn(plan)
                self._refuse_problems(plan)
                if not plan.steps:
                    self.log.info("nothing_to_do")
                    return EXIT_OK
                self.log.info("plan", pending=len(plan.steps),
                              versions=[s.migration.id for s in plan.steps])
                self._apply_all(driver, plan)
        return EXIT_OK

    def status_plan(self) -> tuple[Plan, list[HistoryRow]]:
        files = self.load()
        with self.session(read_only=True) as driver:
            history = driver.read_history()
        return make_plan(files, history, self.policy), history

    def check(self) -> int:
        plan, _ = self.status_plan()
        self._warn(plan)
        if plan.problems:
            for problem in plan.problems:
                self.log.error("check_failed", kind=problem.kind, migration_id=problem.migration_id,
                               error=problem.message)
            raise ValidationFailed(self._problem_summary(plan))
        if plan.steps:
            self.log.warning("pending", pending=len(plan.steps), versions=[s.migration.id for s in plan.steps])
            return EXIT_PENDING
        self.log.info("up_to_date")
        return EXIT_OK

    # -- applying -----------------------------------------------------------------------------------------------

    def _warn(self, plan: Plan) -> None:
        for warning in plan.warnings:
            self.log.warning("migration_missing", migration_id=warning.migration_id, script=warning.script,
                             error=warning.message)

    def _problem_summary(self, plan: Plan) -> str:
        first = plan.problems[0].message
        more = len(plan.problems) - 1
        return first + (f" (and {more} more problem{'s' if more > 1 else ''}: see the validation_failed events)"
                        if more else "")

    def _refuse_problems(self, plan: Plan) -> None:
        if not plan.problems:
            return
        for problem in plan.problems:
            self.log.error("validation_failed", kind=problem.kind, migration_id=problem.migration_id,
                           script=problem.script, error=problem.message)
        raise ValidationFailed(self._problem_summary(plan))

    def _apply_all(self, driver: Driver, plan: Plan) -> None:
        if self.guard is not None:
            self.guard.add_cancel_hook(driver.interrupt)
        try:
            for step in plan.steps:
                self._apply(driver, step)
                self.stats.applied += 1
        finally:
            if self.guard is not None:
                self.guard.wait_for_cancel(10.0)
                self.guard.remove_cancel_hook(driver.interrupt)

    def _split(self, migration: Migration) -> list[Statement]:
        try:
            return split_statements(migration.up_sql, self.config.dsn.dialect, first_line=migration.up_first_line)
        except SplitError as exc:
            raise ValidationFailed(f"{migration.script}: line {exc.line}: {exc}", script=migration.script) from None

    def _fields(self, migration: Migration) -> dict[str, Any]:
        return {"version": str(migration.version) if migration.version is not None else None,
                "description": migration.description, "script": migration.script}

    def _row(self, migration: Migration, statements: list[Statement], **changes: Any) -> HistoryRow:
        row = HistoryRow(
            migration_id=migration.id,
            version=str(migration.version) if migration.version is not None else None,
            description=migration.description,
            kind=migration.kind,
            script=migration.script,
            checksum=migration.checksum,
            applied_at=datetime.now(timezone.utc),
            execution_ms=0,
            applied_by=self.host,
            state=STATE_APPLIED,
            statements_total=len(statements),
            premigrate_version=__version__,
        )
        return row.evolve(**changes)

    def _apply(self, driver: Driver, step: Step) -> None:
        migration = step.migration
        statements = self._split(migration)
        fields = self._fields(migration)
        transactional = driver.transactional_ddl and not migration.no_transaction
        if not statements:
            self.log.warning("migration_empty", **fields,
                             note="the up part has no statements; recorded as applied")
        self.log.info("migration_started", **fields, statements=len(statements),
                      transaction="per-migration" if transactional else "none (progress recorded per statement)",
                      reason=step.reason)
        started = self.clock()
        if transactional:
            self._apply_in_transaction(driver, step, statements, started)
        else:
            self._apply_stepwise(driver, step, statements, started)
        self.log.info("migration_applied", **fields, duration_ms=self._ms(started), statements=len(statements))

    def _ms(self, started: float) -> int:
        return round((self.clock() - started) * 1000)

    def _apply_in_transaction(self, driver: Driver, step: Step, statements: list[Statement],
                              started: float) -> None:
        """Statements and history row commit together: a crash leaves the old state or the new one."""
        migration = step.migration
        driver.begin()
        try:
            for index, statement in enumerate(statements, 1):
                self._execute(driver, migration, statements, index, statement, started, recorded=False)
            row = self._row(migration, statements, execution_ms=self._ms(started),
                            statements_done=len(statements), statement_started=len(statements),
                            statement_hashes=tuple(s.digest for s in statements))
            if step.row is not None:
                driver.update_row(row)
            else:
                driver.insert_row(row)
            driver.commit()
        except BaseException:
            _quietly(driver.rollback)
            raise

    def _apply_stepwise(self, driver: Driver, step: Step, statements: list[Statement], started: float) -> None:
        """No transaction around the file: record "statement k started" before and "done" after each statement."""
        migration = step.migration
        fields = self._fields(migration)
        if step.reason == "resume" and step.row is not None:
            row = step.row.evolve(statements_total=len(statements), checksum=migration.checksum, error=None)
            self.log.info("migration_resumed", **fields, from_statement=row.statements_done + 1,
                          statements=len(statements))
        else:
            row = self._row(migration, statements, state=STATE_IN_PROGRESS, statements_done=0, statement_started=0)
            if step.row is not None:
                driver.update_row(row)
            else:
                driver.insert_row(row)
        try:
            self._run_statements(driver, migration, statements, row, started)
        except ConnectionLost as exc:
            if exc.recorded:
                raise
            raise ConnectionLost(f"{exc.message}; the history row of {migration.script} records where it stopped",
                                 recorded=True) from exc

    def _run_statements(self, driver: Driver, migration: Migration, statements: list[Statement], row: HistoryRow,
                        started: float) -> None:
        hashes = tuple(s.digest for s in statements)
        for index in range(row.statements_done + 1, len(statements) + 1):
            statement = statements[index - 1]
            row = row.evolve(statement_started=index)
            driver.update_row(row)
            try:
                self._execute(driver, migration, statements, index, statement, started, recorded=True)
            except MigrationFailed as exc:
                failed = row.evolve(state=STATE_FAILED, error=exc.fields.get("error_summary") or str(exc))
                self._record_quietly(driver, failed)
                raise
            except Interrupted as exc:
                self._record_quietly(driver, row.evolve(
                    error=f"interrupted by {exc} during statement {index}; it may or may not have taken effect"))
                raise
            row = row.evolve(statements_done=index, statement_hashes=hashes[:index])
            driver.update_row(row)
        driver.update_row(row.evolve(state=STATE_APPLIED, applied_at=datetime.now(timezone.utc),
                                     execution_ms=self._ms(started), statements_done=len(statements),
                                     statement_started=len(statements), statement_hashes=hashes, error=None))

    def _record_quietly(self, driver: Driver, row: HistoryRow) -> None:
        """Record a failure, through the lock session if the migration session is broken."""
        for session in (driver, self._spare):
            if session is None:
                continue
            try:
                session.update_row(row)
                return
            except BaseException as exc:  # noqa: BLE001 - the statement's error matters more than this one
                self.log.warning("history_update_failed", migration_id=row.migration_id, error=str(exc))

    def _execute(self, driver: Driver, migration: Migration, statements: list[Statement], index: int,
                 statement: Statement, started: float, *, recorded: bool) -> None:
        try:
            driver.execute(statement.text)
        except SqlError as exc:
            line = statement.line
            if exc.position:
                line += statement.text[: exc.position - 1].count("\n")
            fields = self._fields(migration)
            error_summary = f"statement {index} (line {line}): [{exc.code}] {exc.message}"
            self.log.error(
                "migration_failed", **fields, duration_ms=self._ms(started), statement=index,
                statements=len(statements), line=line, **{exc.code_field: exc.code}, error=exc.message,
                sql=_abbreviate(statement.text),
                outcome="recorded as failed" if recorded else "rolled back",
            )
            raise MigrationFailed(
                f"{migration.script}: statement {index} of {len(statements)} (line {line}) failed: "
                f"[{exc.code}] {exc.message}"
                + ("" if recorded else "; the migration was rolled back")
                + ("; recorded as failed: fix the problem, then see the next run's message for how to recover"
                   if recorded else ""),
                line=line, error_summary=error_summary, **{exc.code_field: exc.code},
            ) from exc
        except ConnectionLost as exc:
            self.log.error("migration_failed", **self._fields(migration), duration_ms=self._ms(started),
                           statement=index, line=statement.line, error=exc.message,
                           outcome="in progress row recorded" if recorded else "rolled back by the server")
            raise ConnectionLost(
                f"{migration.script}: {exc.message} while running statement {index} (line {statement.line})"
                + ("; its history row records where it stopped" if recorded else "; nothing was committed"),
                recorded=recorded,
            ) from exc


def _abbreviate(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _quietly(action: Callable[[], None]) -> None:
    try:
        action()
    except BaseException:  # noqa: BLE001 - best effort: the original error is re-raised by the caller
        pass
