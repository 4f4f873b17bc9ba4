"""The runner: the only place that orders side effects (connect, lock, create, apply, record, release)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

from premigrate import __version__
from premigrate.config import Config
from premigrate.drivers import driver_class
from premigrate.drivers.base import (
    STATE_APPLIED, STATE_FAILED, STATE_IN_PROGRESS, STATE_ROLLING_BACK, Driver, DriverSettings, HistoryRow, SqlError,
    lock_key_text,
)
from premigrate.model.durations import format_duration
from premigrate.errors import (
    ConnectionLost, Interrupted, MigrationFailed, MigrationFileError, UsageError, ValidationFailed,
)
from premigrate.engine.interrupts import SignalGuard
# baseline, locking, placeholders and report are imported where used: a no-op `up` never loads them.
from premigrate.model import transactions
from premigrate.engine.lockwait import BlockerWatch, LockBusy, Timeouts, describe_blockers, timeouts_for, with_lock_retries
from premigrate.model.versions import Version
from premigrate.model.planner import Plan, Policy, Step, make_plan
from premigrate.model.migrations import Migration, MigrationSet, load_migrations
from premigrate.model.sql import SplitError, Statement, split_migration
from premigrate.model.transactions import Block
from premigrate.engine.waiting import wait_for_database

if TYPE_CHECKING:
    from premigrate.commands import report

EXIT_OK = 0
EXIT_PENDING = 7
T = TypeVar("T")

MODE_TRANSACTION, MODE_SELF_MANAGED, MODE_NONE = "transaction", "self-managed", "none"
MODE_TEXT = {
    MODE_TRANSACTION: "per-migration (statements and history row commit together)",
    MODE_SELF_MANAGED: "as written (the file opens and commits its own transaction; progress recorded around it)",
    MODE_NONE: "none (statement by statement, progress recorded after each)",
}


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
        self.policy = Policy(config.dsn.dialect, config.allow_out_of_order, config.strict, config.table,
                             target=config.option("to") if config.command in ("up", "plan") else None)
        self.host = socket.gethostname()
        self._spare: Driver | None = None
        self._session_set: tuple[float | None, float | None] | None = None  # session-wide timeouts in force
        self._watch = BlockerWatch(None)  # names lock blockers; a real one while migrations run under the lock
        self._written_ahead: HistoryRow | None = None  # the next migration's first row, already written
        self._splits: dict[tuple[str, int], list[Statement]] = {}

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
        held = False
        try:
            from premigrate.engine import locking

            locking.acquire(lock_session, key, cfg.lock_timeout, self.log)
            held = True
            yield lock_session
        finally:
            self._release(lock_session, key, held)

    def _release(self, lock_session: Driver, key: str, held: bool) -> None:
        """Release the runner lock. After a signal the session is just closed, which releases the lock too and
        cannot hang on a database that stopped answering; a session stuck in a query is left to the exit."""
        if self._watch.stuck:
            self.log.warning("lock_release_skipped", error="the lock session stopped answering",
                             note="the lock ends with that session when this process exits")
            return
        interrupted = self.guard is not None and self.guard.received is not None
        if held and not interrupted:
            try:
                lock_session.unlock(key)
            except Exception as exc:  # noqa: BLE001 - closing the session below releases it anyway
                self.log.warning("lock_release_failed", error=str(exc))
                held = False
        lock_session.close()
        if held:
            self.log.info("lock_released", how="session closed" if interrupted else "unlocked")

    # -- commands -----------------------------------------------------------------------------------------------

    def load(self) -> MigrationSet:
        config = self.config
        offline = config.command in ("new", "lint")  # no database to check a format's provider against
        # `new --format` names the layout of the file to write; the folder itself is read as it is.
        files = load_migrations(config.dir, format="auto" if offline and config.command == "new" else
                                config.option("format") or "auto",
                                dialect=None if offline else config.dsn.dialect,
                                allow_empty=bool(config.option("allow_empty")) or config.command == "new")
        for note in files.notes:
            self.log.warning("migration_file_ignored", note=note)
        self.log.debug("migrations_loaded", count=len(files.all), dir=str(self.config.dir))
        return files

    def wait(self) -> int:
        with self.session(read_only=True):
            return EXIT_OK

    def _target(self, files: MigrationSet) -> None:
        """--to must name a version in the folder: a typo must not silently migrate everything."""
        target = self.config.option("to")
        if target is not None and target not in {m.version for m in files.versioned}:
            raise UsageError(f"--to {target}: no migration with that version in {str(self.config.dir)!r}")

    def _plan(self, files: MigrationSet, history: list[HistoryRow]) -> Plan:
        # An interrupted file's recorded statement hashes are of its placeholder-resolved text: compare like with like.
        unfinished = {r.migration_id for r in history if r.state == STATE_IN_PROGRESS}
        if unfinished:
            files = MigrationSet(
                versioned=[self.resolved(m) if m.id in unfinished else m for m in files.versioned],
                repeatable=[self.resolved(m) if m.id in unfinished else m for m in files.repeatable])
        return make_plan(files, history, self.policy)

    def resolved(self, migration: Migration) -> Migration:
        """The migration with its placeholders filled in (when they are on for it)."""
        from premigrate.model import placeholders

        return placeholders.resolve(migration, self.config.placeholder_values,
                                    everywhere=bool(self.config.option("placeholders")))

    def prepared(self, steps: list[Step]) -> list[Step]:
        """Steps with placeholders resolved, checked before anything changes (an unknown one is exit 2).
        A resumed file was resolved for planning already."""
        return [step if step.reason == "resume" else replace(step, migration=self.resolved(step.migration))
                for step in steps]

    def _check_single_transaction(self, driver: type[Driver] | Driver, steps: list[Step]) -> None:
        if not self.config.option("single_transaction"):
            return
        self._check_single_transaction_supported()
        stepwise = [s.migration.script for s in steps
                    if s.migration.no_transaction or s.reason == "resume"
                    or self._blocks(s.migration, self._split(s.migration))]
        if stepwise:
            raise UsageError(f"--single-transaction cannot include {', '.join(stepwise)}: it must run outside a "
                             "transaction; apply it in a run of its own")

    def _check_single_transaction_supported(self) -> None:
        """A flag the database cannot honour is refused whatever the history holds, even with nothing pending."""
        if self.config.option("single_transaction") and not driver_class(self.config.dsn.dialect).transactional_ddl:
            raise UsageError(f"--single-transaction needs transactional DDL (PostgreSQL or SQLite); "
                             f"{self.config.dsn.dialect} commits DDL statement by statement")

    def _lint(self, steps: list[Step]) -> None:
        mode = self.config.option("lint") or "off"
        if mode == "off" or not steps:
            return
        from premigrate.commands import lint  # imported only now: a no-op run pays nothing for the SQL parsers

        try:
            findings = lint.lint_migrations([s.migration for s in steps], self.config.dsn.dialect)
        except lint.LintUnavailable as exc:
            if mode == "error":
                raise
            self.log.warning("lint_unavailable", error=str(exc), note="applying without linting (--lint=warn)")
            return
        for finding in findings:
            level = "error" if mode == "error" and finding.severity == "error" else "warning"
            getattr(self.log, level)("lint_finding", rule=finding.rule, severity=finding.severity,
                                     script=finding.script, line=finding.line, error=finding.message, fix=finding.fix)
        if mode == "error" and lint.has_errors(findings):
            raise ValidationFailed(
                f"lint found {sum(f.severity == 'error' for f in findings)} error-level problem(s) in the pending "
                "migrations (see the lint_finding events); fix them, silence one on purpose with "
                "'-- premigrate:allow RULE', or run with --lint=warn")

    def up(self) -> int:
        files = self.load()
        self._target(files)
        self._check_single_transaction_supported()
        if self.config.option("baseline_on_empty_history") is not None:
            from premigrate.commands import baseline

            baseline.require_version_in_folder(files, self.config.option("baseline_on_empty_history"),
                                               "--baseline-on-empty-history")
        if self.config.option("dry_run"):
            return self.plan(files)
        with self.session(read_only=False) as driver:
            # Lock-free first look: a restarting old pod must never queue behind a long run by a newer one.
            plan = self._plan(files, driver.read_history())
            if plan.clean:
                self._warn(plan)
                self.log.info("nothing_to_do", applied=len([e for e in plan.entries if e.state == "applied"]))
                return EXIT_OK
            # Bad input fails before any change, the history table included.
            prepared = self.prepared(plan.steps)
            self._check_single_transaction(driver, prepared)
            self._check_transactions(driver, prepared)
            self._lint(plan.steps)
            with self.runner_lock() as lock_session:
                # The lock session is also the fallback for bookkeeping when the migration session breaks.
                self._spare = lock_session
                driver.ensure_schema()
                if driver.ensure_history_table():
                    self.log.info("history_table_created", table=self.config.table)
                # Re-read under the lock: the usual case for replica two is "nothing left to do".
                history = driver.read_history()
                if not history and self.config.option("baseline_on_empty_history") is not None:
                    history = self._baseline_on_empty(driver, files)
                plan = self._plan(files, history)
                self._warn(plan)
                self._refuse_problems(plan)
                if not plan.steps:
                    self.log.info("nothing_to_do")
                    return EXIT_OK
                steps = self.prepared(plan.steps)
                self.log.info("plan", pending=len(steps), versions=[s.migration.id for s in steps])
                self._apply_all(driver, steps)
        return EXIT_OK

    def plan(self, files: MigrationSet | None = None) -> int:
        if files is None:
            files = self.load()
            self._target(files)
        self._check_single_transaction_supported()
        capabilities = driver_class(self.config.dsn.dialect)
        if capabilities.database_missing(self.config.dsn):
            # `up` would create this file and apply everything; the plan says so without creating it.
            return self.print_plan(self._plan(files, []), capabilities)
        with self.session(read_only=True) as driver:
            return self.print_plan(self._plan(files, driver.read_history()), capabilities)

    def print_plan(self, plan: Plan, driver: type[Driver] | Driver) -> int:
        """`plan` and `up --dry-run`: what up would run now, on stdout. Takes no lock, changes nothing."""
        self._warn(plan)
        steps = self.prepared(plan.steps)
        self._check_single_transaction(driver, steps)
        self._check_transactions(driver, steps)
        views = [self._step_view(driver, step) for step in steps]
        from premigrate.commands import report

        text = (report.plan_json(views, plan, database=self.config.dsn.redacted(), secrets=self.config.secrets)
                if self.config.json else report.plan_text(views, plan, secrets=self.config.secrets))
        report.write_stdout(text)
        if plan.problems:
            self._refuse_problems(plan)
        self.log.info("plan", pending=len(steps), versions=[s.migration.id for s in steps], dry_run=True)
        return EXIT_PENDING if steps else EXIT_OK

    def _step_view(self, driver: type[Driver] | Driver, step: Step) -> report.StepView:
        migration = step.migration
        statements = self._split(migration)
        timeouts = self._timeouts(migration)
        if self.config.option("single_transaction"):
            mode = "single (one transaction for the whole run)"
        else:
            mode = MODE_TEXT[self._mode(driver, step, statements)]
        from premigrate.commands import report

        return report.StepView(
            migration=migration,
            reason=step.reason,
            transaction=mode,
            timeouts={"runner_lock_timeout_s": self.config.lock_timeout, **timeouts.describe(),
                      "note": "statement timeout: the database's own setting" if timeouts.statement is None
                      else "0 means no limit"},
            statements=statements,
            resume_from=step.row.statements_done + 1 if step.reason == "resume" and step.row else None,
        )

    # -- baseline -----------------------------------------------------------------------------------------------

    def _record_baseline(self, driver: Driver, migrations: list[Migration], description_for: dict[str, str]) -> None:
        """Rows for migrations that are already in the schema, written in one transaction."""
        driver.begin()
        try:
            for migration in migrations:
                statements = self._split(migration)
                driver.insert_row(self._row(
                    migration, statements, kind="baseline" if migration.kind == "versioned" else migration.kind,
                    description=description_for.get(migration.id, migration.description),
                    statements_done=len(statements), statement_started=len(statements),
                    statement_hashes=tuple(s.digest for s in statements)))
            driver.commit()
        except BaseException:
            _quietly(driver.rollback)
            raise
        self.log.info("baseline_recorded", count=len(migrations), versions=[m.id for m in migrations])

    def _own_tables(self, driver: Driver) -> list[str]:
        return [t for t in driver.list_tables() if t != self.config.history_table_name]

    def _baseline_on_empty(self, driver: Driver, files: MigrationSet) -> list[HistoryRow]:
        version = self.config.option("baseline_on_empty_history")
        tables = self._own_tables(driver)
        if not tables:
            self.log.info("baseline_skipped", reason="the schema has no tables of its own: migrating normally")
            return []
        self.log.info("baseline_on_empty_history", version=str(version), existing_tables=len(tables))
        from premigrate.commands import baseline

        self._record_baseline(driver, baseline.up_to(files, version), {})
        return driver.read_history()

    def baseline(self) -> int:
        from premigrate.commands import baseline, report

        files = self.load()
        version = self.config.option("baseline_version")
        tool = self.config.option("baseline_from")
        if (version is None) == (tool is None):
            raise UsageError("baseline needs exactly one of --version VERSION or --from TOOL")
        if version is not None:
            baseline.require_version_in_folder(files, version, "--version")
        elif self.config.option("baseline_map") and tool != "alembic":
            raise UsageError("--map is only for baseline --from alembic")
        mapping = baseline.read_map(self.config.option("baseline_map")) if self.config.option("baseline_map") \
            else None  # read before connecting: a bad map changes nothing
        with self.session(read_only=False) as driver, self.runner_lock():
            history = driver.read_history()
            if history:
                raise ValidationFailed(
                    f"baseline refused: the history table already has {len(history)} row(s); baseline is for a "
                    "database premigrate has never migrated")
            # Match first (read-only): a refusal leaves the database exactly as it was, with no history table.
            if version is not None:
                result = baseline.Match("version", baseline.up_to(files, version))
                described = {str(version): self.config.option("baseline_description")}
            else:
                result = baseline.match_tool(tool, driver.fetch, driver.list_tables(), files, mapping)
                described = {}
            driver.ensure_schema()
            driver.ensure_history_table()
            self._record_baseline(driver, result.matched, {k: v for k, v in described.items() if v})
        report.write_stdout(report.baseline_text(result, files))
        self.log.info("baseline_done", source=result.tool, recorded=len(result.matched),
                      not_in_folder=result.not_in_folder, pending=result.pending(files))
        return EXIT_OK

    # -- down -------------------------------------------------------------------------------------------------

    def down(self, confirm: Callable[[str], bool] | None = None) -> int:
        files = self.load()
        steps, target = self.config.option("steps"), self.config.option("to")
        if (steps is None) == (target is None):
            raise UsageError("down needs exactly one of --steps N or --to VERSION")
        if not self.config.option("yes") and (not self.config.stdin_is_tty or confirm is None):
            raise UsageError("down rolls back applied migrations: pass --yes to confirm (required when stdin is not "
                             "a terminal)")
        by_id = {m.id: m for m in files.versioned}
        with self.session(read_only=False) as driver, self.runner_lock() as lock_session:
            self._spare = lock_session
            history = driver.read_history()
            # An unfinished run (failed, in doubt, interrupted, half rolled back) must be settled first.
            unfinished = [r for r in history if r.state != STATE_APPLIED]
            if unfinished:
                plan = make_plan(files, history, self.policy)
                problems = [p for p in plan.problems if p.migration_id in {r.migration_id for r in unfinished}]
                if problems:
                    self._refuse_problems(Plan(problems=problems))
                raise ValidationFailed(
                    f"down refused: {unfinished[0].script} (version {unfinished[0].migration_id}) is "
                    f"{unfinished[0].state}; run `premigrate up` to finish it first")
            applied = sorted((r for r in history if r.version is not None and r.state == STATE_APPLIED),
                             key=lambda r: Version.parse(r.version or "0"), reverse=True)
            if target is not None:
                targets = [r for r in applied if Version.parse(r.version or "0") > target]
            else:
                targets = applied[:steps]
            if not targets:
                self.log.info("nothing_to_do", note="no applied migration to roll back")
                return EXIT_OK
            reversible = self._check_reversible(targets, by_id)
            ids = ", ".join(r.migration_id for r in targets)
            if not self.config.option("yes") and confirm is not None and not confirm(
                    f"Roll back {len(targets)} migration(s), newest first: {ids}? [y/N] "):
                raise UsageError("down cancelled: nothing was rolled back")
            self.log.info("rollback_plan", count=len(targets), versions=[r.migration_id for r in targets])
            with self._running(driver):
                for row, migration in zip(targets, reversible):
                    self._roll_back(driver, row, migration)
                    self.stats.applied += 1
        return EXIT_OK

    def _check_reversible(self, targets: list[HistoryRow], by_id: dict[str, Migration]) -> list[Migration]:
        """Every target must have a non-empty down part and an unchanged file; otherwise nothing is touched."""
        reasons = []
        migrations = []
        everywhere = bool(self.config.option("placeholders"))
        from premigrate.model import placeholders

        for row in targets:
            migration = by_id.get(row.migration_id)
            if migration is None:
                reasons.append(f"{row.script} (version {row.migration_id}) is not in the folder")
                continue
            if row.checksum != migration.checksum:
                reasons.append(f"{migration.script} (version {migration.id}) changed since it was applied")
                continue
            if migration.down_sql is None:
                reasons.append(f"{migration.script} (version {migration.id}) has no down part")
                continue
            migration = placeholders.resolve(migration, self.config.placeholder_values, everywhere=everywhere)
            statements = self._split_down(migration)
            if not statements and not self.config.option("allow_empty_down"):
                reasons.append(f"{migration.down_script} (version {migration.id}) has an empty down part; if undoing "
                               "nothing is right for it (its up part is safe to run again), pass --allow-empty-down "
                               "(PREMIGRATE_ALLOW_EMPTY_DOWN=1) to record it as rolled back without running anything")
                continue
            if self._down_transactional(driver_class(self.config.dsn.dialect), migration, statements):
                blocked = [(i, r) for i, st in enumerate(statements, 1)
                           if (r := transactions.outside_transaction_only(st, self.config.dsn.dialect))]
                if blocked:
                    index, reason = blocked[0]
                    reasons.append(f"{migration.down_script} (version {migration.id}): statement {index} of its down "
                                   f"part {reason}, which cannot run inside a transaction; add "
                                   "'-- premigrate:no-transaction' to the down part")
                    continue
            migrations.append(migration)
        if reasons:
            for reason in reasons:
                self.log.error("rollback_refused", error=reason)
            raise ValidationFailed(f"down refused, nothing was rolled back: {'; '.join(reasons)}")
        return migrations

    def _split_down(self, migration: Migration) -> list[Statement]:
        try:
            return split_migration(migration, self.config.dsn.dialect, down=True)
        except SplitError as exc:
            raise ValidationFailed(f"{migration.down_script}: line {exc.line}: {exc}") from None

    def _roll_back(self, driver: Driver, row: HistoryRow, migration: Migration) -> None:
        statements = self._split_down(migration)
        fields = self._fields(migration) | {"script": migration.down_script}
        transactional = self._down_transactional(driver, migration, statements)
        timeouts = self._timeouts(migration)
        self.log.info("rollback_started", **fields, statements=len(statements),
                      transaction="per-migration" if transactional else "none (progress recorded per statement)")
        started = self.clock()
        down_view = replace(migration, script=migration.down_script or migration.script)
        rolled_back = "the rollback was rolled back"
        if transactional:
            def attempt() -> None:
                self._begin(driver, timeouts)
                try:
                    for index, statement in enumerate(statements, 1):
                        self._execute(driver, down_view, statements, index, statement, started, recorded=False,
                                      rolled_back=rolled_back, event="rollback_failed", lock_timeout=timeouts.lock)
                    driver.delete_row(row.migration_id)
                    driver.commit()
                except BaseException:
                    _quietly(driver.rollback)
                    raise

            self._with_retries(attempt, timeouts.retries, started, recorded=False, rolled_back=rolled_back,
                               event="rollback_failed")
        else:
            progress = row.evolve(state=STATE_ROLLING_BACK, statements_total=len(statements), statements_done=0,
                                  statement_started=0, statement_hashes=(), error=None)
            driver.update_row(progress)
            self._session_timeouts(driver, timeouts)
            try:
                for index, statement in enumerate(statements, 1):
                    progress = progress.evolve(statement_started=index)
                    driver.update_row(progress)
                    try:
                        self._with_retries(
                            lambda: self._execute(driver, down_view, statements, index, statement, started,
                                                  recorded=True, event="rollback_failed",
                                                  lock_timeout=timeouts.lock),
                            timeouts.retries, started, recorded=True, rolled_back="", event="rollback_failed")
                    except MigrationFailed as exc:
                        self._record_quietly(driver, progress.evolve(error=exc.fields.get("error_summary")))
                        raise
                    progress = progress.evolve(statements_done=index)
                    driver.update_row(progress)
                driver.delete_row(row.migration_id)
            except ConnectionLost as exc:
                raise ConnectionLost(exc.message, recorded=True) from exc
        self.log.info("rolled_back", **fields, duration_ms=self._ms(started), statements=len(statements))

    def _down_transactional(self, driver: type[Driver] | Driver, migration: Migration,
                            statements: list[Statement]) -> bool:
        # A down part that opens its own transaction runs as written, statement by statement.
        return (driver.transactional_ddl and not migration.down_no_transaction
                and not self._blocks(migration, statements, migration.down_script))

    def status_plan(self) -> Plan:
        files = self.load()
        with self.session(read_only=True) as driver:
            history = driver.read_history()
        return self._plan(files, history)

    def check(self) -> int:
        plan = self.status_plan()
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

    def apply_steps(self, driver: Driver, steps: list[Step]) -> None:
        """Apply planned steps on `driver`; the caller holds the runner lock. Signals cancel the running statement."""
        self._apply_all(driver, steps)

    def _apply_all(self, driver: Driver, steps: list[Step]) -> None:
        with self._running(driver):
            if self.config.option("single_transaction"):
                self._apply_single_transaction(driver, steps)
            else:
                for index, step in enumerate(steps):
                    self._apply(driver, step, steps[index + 1] if index + 1 < len(steps) else None)
                    self.stats.applied += 1

    @contextmanager
    def _running(self, driver: Driver) -> Iterator[None]:
        """While migration statements run on `driver` under the runner lock: a signal cancels the running
        statement, blockers are looked up from the lock session, and the session's timeouts are reset after."""
        if self.guard is not None:
            self.guard.add_cancel_hook(driver.interrupt)
        self._watch = BlockerWatch(self._spare)
        try:
            yield
        finally:
            if self.guard is not None:
                self.guard.wait_for_cancel(10.0)
                self.guard.remove_cancel_hook(driver.interrupt)
            self._reset_session_timeouts(driver)
            self._watch.close()

    def _split(self, migration: Migration) -> list[Statement]:
        """The up part's statements. Split once per text: checks, plan, mode and run all ask for them."""
        key = (migration.up_sql, migration.up_first_line)
        if key not in self._splits:
            try:
                self._splits[key] = split_migration(migration, self.config.dsn.dialect)
            except SplitError as exc:
                raise ValidationFailed(f"{migration.script}: line {exc.line}: {exc}",
                                       script=migration.script) from None
        return self._splits[key]

    def _blocks(self, migration: Migration, statements: list[Statement], script: str | None = None) -> list[Block]:
        try:
            return transactions.blocks(statements)
        except transactions.TransactionSyntaxError as exc:
            raise MigrationFileError(f"{script or migration.script}: line {exc.line}: {exc}",
                                     file=script or migration.script) from None

    def _mode(self, driver: type[Driver] | Driver, step: Step, statements: list[Statement]) -> str:
        """transaction | self-managed | none: how the runner wraps the file."""
        if self._blocks(step.migration, statements):
            return MODE_SELF_MANAGED
        if driver.transactional_ddl and not step.migration.no_transaction and step.reason != "resume":
            return MODE_TRANSACTION
        return MODE_NONE

    def _check_transactions(self, driver: type[Driver] | Driver, steps: list[Step]) -> None:
        """Refuse, before anything runs, a file the runner would wrap in a transaction that cannot run in one."""
        single = bool(self.config.option("single_transaction"))
        for step in steps:
            statements = self._split(step.migration)
            mode = self._mode(driver, step, statements)
            if mode != MODE_TRANSACTION and not (single and mode == MODE_NONE and driver.transactional_ddl):
                continue
            for index, statement in enumerate(statements, 1):
                reason = transactions.outside_transaction_only(statement, self.config.dsn.dialect)
                if reason:
                    raise MigrationFileError(
                        f"{step.migration.script}: statement {index} (line {statement.line}) {reason}, which cannot "
                        "run inside a transaction; add the line '-- premigrate:no-transaction' to the file so that "
                        "it runs statement by statement, with its progress recorded after each one",
                        file=step.migration.script)

    def _timeouts(self, migration: Migration) -> Timeouts:
        return timeouts_for(self.config.option, migration.settings)

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

    def _apply(self, driver: Driver, step: Step, following: Step | None = None) -> None:
        migration = step.migration
        statements = self._split(migration)
        fields = self._fields(migration)
        mode = self._mode(driver, step, statements)
        timeouts = self._timeouts(migration)
        if not statements:
            self.log.warning("migration_empty", **fields,
                             note="the up part has no statements; recorded as applied")
        self.log.info("migration_started", **fields, statements=len(statements), transaction=MODE_TEXT[mode],
                      reason=step.reason)
        started = self.clock()
        if mode == MODE_TRANSACTION:
            self._apply_in_transaction(driver, step, statements, started, timeouts)
        else:
            self._apply_stepwise(driver, step, statements, started, timeouts, following)
        self.log.info("migration_applied", **fields, duration_ms=self._ms(started), statements=len(statements))

    def _ms(self, started: float) -> int:
        return round((self.clock() - started) * 1000)

    # -- timeouts -----------------------------------------------------------------------------------------------

    def _begin(self, driver: Driver, timeouts: Timeouts) -> None:
        """Open the migration's transaction with its timeouts: transaction-local where the database has that."""
        if driver.local_timeouts:
            driver.begin()
            driver.set_timeouts(timeouts.lock, timeouts.statement, local=True)
        else:
            self._session_timeouts(driver, timeouts)
            driver.begin()

    def _session_timeouts(self, driver: Driver, timeouts: Timeouts) -> None:
        """Session-wide timeouts for statements that run outside a transaction, set only when they change."""
        wanted = (timeouts.lock, timeouts.statement)
        if self._session_set == wanted:
            return
        if self._session_set is not None and self._session_set[1] is not None and timeouts.statement is None:
            driver.reset_timeouts()  # the previous file's own statement timeout must not leak into this one
        driver.set_timeouts(timeouts.lock, timeouts.statement, local=False)
        self._session_set = wanted

    def _reset_session_timeouts(self, driver: Driver) -> None:
        if self._session_set is not None:
            self._session_set = None
            _quietly(driver.reset_timeouts)

    def _with_retries(self, attempt: Callable[[], T], retries: int, started: float, *, recorded: bool,
                      rolled_back: str, event: str = "migration_failed", **extra: Any) -> T:
        """Run `attempt` again after a lock timeout or deadlock, up to `retries` times; when they run out, fail
        naming the blocked statement (carried by LockBusy) and its blocker."""

        def on_retry(busy: LockBusy, attempt_number: int, pause: float) -> None:
            self.log.warning("lock_retry", **self._fields(busy.migration), attempt=attempt_number,
                             attempts=retries + 1, statement=busy.index,
                             **{busy.error.code_field: busy.error.code}, error=busy.error.message,
                             blockers=busy.blockers, pause_s=round(pause, 2),
                             ddl_lock_timeout_s=self._timeouts(busy.migration).lock, **extra)

        try:
            return with_lock_retries(attempt, retries, on_retry)
        except LockBusy as busy:
            statements = list(busy.statements)
            raise self._failure(
                busy.error, busy.migration, statements, busy.index, statements[busy.index - 1], started,
                recorded=recorded, rolled_back=rolled_back, event=event, blockers=busy.blockers,
                gave_up=f"gave up after {retries + 1} attempt(s) with a lock timeout of "
                        f"{format_duration(self._timeouts(busy.migration).lock or None)}; "
                        f"{describe_blockers(busy.blockers)}",
            ) from busy.error

    # -- the three ways to run a file ---------------------------------------------------------------------------

    def _run_and_record(self, driver: Driver, step: Step, statements: list[Statement], started: float,
                        rolled_back: str, timeouts: Timeouts) -> None:
        """Inside an open transaction: the migration's statements, then its history row."""
        migration = step.migration
        for index, statement in enumerate(statements, 1):
            self._execute(driver, migration, statements, index, statement, started, recorded=False,
                          rolled_back=rolled_back, lock_timeout=timeouts.lock)
        row = self._row(migration, statements, execution_ms=self._ms(started), statements_done=len(statements),
                        statement_started=len(statements), statement_hashes=tuple(s.digest for s in statements))
        if step.row is not None:
            driver.update_row(row)
        else:
            driver.insert_row(row)

    def _apply_in_transaction(self, driver: Driver, step: Step, statements: list[Statement],
                              started: float, timeouts: Timeouts) -> None:
        """Statements and history row commit together: a crash leaves the old state or the new one.
        A lock timeout or deadlock rolls the whole migration back and runs it again."""
        rolled_back = "the migration was rolled back"

        def attempt() -> None:
            self._begin(driver, timeouts)
            try:
                self._run_and_record(driver, step, statements, started, rolled_back, timeouts)
                driver.commit()
            except BaseException:
                _quietly(driver.rollback)
                raise

        self._with_retries(attempt, timeouts.retries, started, recorded=False, rolled_back=rolled_back)

    def _apply_single_transaction(self, driver: Driver, steps: list[Step]) -> None:
        """--single-transaction: every pending migration and its history row in one transaction, all or nothing."""
        started = self.clock()
        rolled_back = "the whole --single-transaction run was rolled back"
        run_timeouts = timeouts_for(self.config.option, ())
        done: list[tuple[Step, int]] = []

        def attempt() -> None:
            done.clear()
            self._begin(driver, run_timeouts)
            try:
                for step in steps:
                    statements = self._split(step.migration)
                    timeouts = self._timeouts(step.migration)
                    if driver.local_timeouts and timeouts != run_timeouts:
                        driver.set_timeouts(timeouts.lock, timeouts.statement, local=True)
                    self.log.info("migration_started", **self._fields(step.migration), statements=len(statements),
                                  transaction="single", reason=step.reason)
                    step_started = self.clock()
                    self._run_and_record(driver, step, statements, step_started, rolled_back, timeouts)
                    done.append((step, self._ms(step_started)))
                driver.commit()
            except BaseException:
                _quietly(driver.rollback)
                raise

        # The whole run is retried, with the run's retry count.
        self._with_retries(attempt, run_timeouts.retries, started, recorded=False, rolled_back=rolled_back,
                           transaction="single")
        for step, duration in done:
            self.log.info("migration_applied", **self._fields(step.migration), duration_ms=duration,
                          transaction="single")
            self.stats.applied += 1
        self.log.info("single_transaction_committed", migrations=len(done), duration_ms=self._ms(started))

    def _apply_stepwise(self, driver: Driver, step: Step, statements: list[Statement], started: float,
                        timeouts: Timeouts, following: Step | None = None) -> None:
        """No transaction around the file: record "statement k started" before and "done" after each statement."""
        migration = step.migration
        fields = self._fields(migration)
        if step.reason == "resume" and step.row is not None:
            row = step.row.evolve(statements_total=len(statements), checksum=migration.checksum, error=None)
            self.log.info("migration_resumed", **fields, from_statement=row.statements_done + 1,
                          statements=len(statements))
            recorded: HistoryRow | None = step.row
        elif self._written_ahead is not None and self._written_ahead.migration_id == migration.id:
            row = recorded = self._written_ahead  # inserted together with the previous migration's final write
            self._written_ahead = None
        else:
            # The first statement's "started" mark goes in with the row: one write fewer per migration. (A file
            # that opens its own transaction first gets its mark from _run_block.)
            opens_block = any(b.first == 1 for b in self._blocks(migration, statements))
            row = self._row(migration, statements, state=STATE_IN_PROGRESS, statements_done=0,
                            statement_started=1 if statements and not opens_block else 0)
            if step.row is not None:
                driver.update_row(row)
            else:
                driver.insert_row(row)
            recorded = row
        self._session_timeouts(driver, timeouts)
        try:
            self._run_statements(driver, migration, statements, row, recorded, started, timeouts, following)
        except ConnectionLost as exc:
            if exc.recorded:
                raise
            raise ConnectionLost(f"{exc.message}; the history row of {migration.script} records where it stopped",
                                 recorded=True) from exc

    def _run_statements(self, driver: Driver, migration: Migration, statements: list[Statement], row: HistoryRow,
                        recorded: HistoryRow | None, started: float, timeouts: Timeouts,
                        following: Step | None = None) -> None:
        """Statement by statement, one history write per statement: "k done and k+1 started" in the same write."""
        hashes = tuple(s.digest for s in statements)
        blocks = {b.first: b for b in self._blocks(migration, statements)}
        index = row.statements_done + 1
        while index <= len(statements):
            block = blocks.get(index)
            if block is not None:
                row = self._run_block(driver, migration, statements, row, recorded, block, started, timeouts, hashes)
                recorded = row
                index = block.last + 1
                continue
            wanted = row.evolve(statement_started=index)
            if wanted != recorded:
                driver.update_row(wanted)
            row = recorded = wanted
            statement = statements[index - 1]
            try:
                self._with_retries(
                    lambda: self._execute_with_index_cleanup(driver, migration, statements, index, statement, started,
                                                             timeouts),
                    timeouts.retries, started, recorded=True, rolled_back="")
            except MigrationFailed as exc:
                self._record_quietly(driver, row.evolve(state=STATE_FAILED,
                                                        error=exc.fields.get("error_summary") or str(exc)))
                raise
            except Interrupted as exc:
                self._record_quietly(driver, row.evolve(
                    error=f"interrupted by {exc} during statement {index}; it may or may not have taken effect"))
                raise
            row = row.evolve(statements_done=index, statement_hashes=hashes[:index])
            index += 1
        final = row.evolve(state=STATE_APPLIED, applied_at=datetime.now(timezone.utc), execution_ms=self._ms(started),
                           statements_done=len(statements), statement_started=len(statements),
                           statement_hashes=hashes, error=None)
        ahead = self._row_ahead(driver, following)
        if ahead is None:
            driver.update_row(final)
            return
        # One commit instead of two: where every write is its own commit (MySQL), commits are what a run costs.
        driver.begin()
        try:
            driver.update_row(final)
            driver.insert_row(ahead)
            driver.commit()
        except BaseException:
            _quietly(driver.rollback)
            raise
        self._written_ahead = ahead

    def _row_ahead(self, driver: Driver, following: Step | None) -> HistoryRow | None:
        """The next migration's first row ("statement 1 started"), when it runs statement by statement from the
        start, so that it can be written together with this migration's final row."""
        if following is None or following.row is not None or following.reason == "resume":
            return None
        statements = self._split(following.migration)
        if not statements or self._mode(driver, following, statements) != MODE_NONE:
            return None
        return self._row(following.migration, statements, state=STATE_IN_PROGRESS, statements_done=0,
                         statement_started=1)

    def _run_block(self, driver: Driver, migration: Migration, statements: list[Statement], row: HistoryRow,
                   recorded: HistoryRow | None, block: Block, started: float, timeouts: Timeouts,
                   hashes: tuple[str, ...]) -> HistoryRow:
        """A transaction the file opens and ends itself, run as written. Its "done" mark is written inside that
        transaction, just before the COMMIT, so the row commits (or not) together with the block: a crash around
        the COMMIT is never mistaken for "not applied". Where DDL commits implicitly (MySQL), the block is marked
        started first, so an interruption inside it reads as "in doubt"."""
        before = row.evolve(statement_started=block.first if not driver.transactional_ddl else row.statements_done)
        if before != recorded:
            driver.update_row(before)
        after = row.evolve(statements_done=block.last, statement_started=block.last,
                           statement_hashes=hashes[:block.last])

        def attempt() -> None:
            try:
                for index in range(block.first, block.last):
                    self._execute(driver, migration, statements, index, statements[index - 1], started,
                                  recorded=True, lock_timeout=timeouts.lock)
                if block.ends_with == transactions.COMMIT:
                    driver.update_row(after)
                self._execute(driver, migration, statements, block.last, statements[block.last - 1], started,
                              recorded=True, lock_timeout=timeouts.lock)
            except (MigrationFailed, LockBusy):
                _quietly(driver.rollback)
                raise
            if block.ends_with == transactions.ROLLBACK:
                driver.update_row(after)

        try:
            self._with_retries(attempt, timeouts.retries, started, recorded=True, rolled_back="")
        except MigrationFailed as exc:
            note = "" if driver.transactional_ddl else (
                "; DDL in the block may have committed implicitly before the failure")
            self._record_quietly(driver, before.evolve(
                state=STATE_FAILED, statement_started=block.first,
                error=(exc.fields.get("error_summary") or str(exc)) + f" (in the transaction block of statements "
                      f"{block.first}-{block.last}, rolled back){note}"))
            raise
        # Interrupted or a lost connection: the row already says what is true (the block committed with its mark,
        # or it did not), so it is left alone.
        return after

    def _execute_with_index_cleanup(self, driver: Driver, migration: Migration, statements: list[Statement],
                                    index: int, statement: Statement, started: float, timeouts: Timeouts) -> None:
        """A failed CREATE INDEX CONCURRENTLY leaves an invalid index behind, which would make every retry fail
        (or, with IF NOT EXISTS, succeed without an index): drop it before each attempt and after a failure."""
        name = transactions.concurrent_index_name(statement) if driver.invalid_indexes else None
        if name is None:
            self._execute(driver, migration, statements, index, statement, started, recorded=True,
                          lock_timeout=timeouts.lock)
            return
        self._drop_invalid_index(driver, migration, name)
        try:
            self._execute(driver, migration, statements, index, statement, started, recorded=True,
                          lock_timeout=timeouts.lock)
        except (MigrationFailed, LockBusy):
            self._drop_invalid_index(driver, migration, name)
            raise

    def _drop_invalid_index(self, driver: Driver, migration: Migration, name: str) -> None:
        try:
            dropped = driver.drop_invalid_index(name)
        except (SqlError, ConnectionLost) as exc:
            self.log.warning("invalid_index_drop_failed", **self._fields(migration), index=name, error=str(exc))
            return
        if dropped:
            self.log.info("invalid_index_dropped", **self._fields(migration), index=dropped,
                          note="left behind by a failed CREATE INDEX CONCURRENTLY")

    def _record_quietly(self, driver: Driver, row: HistoryRow) -> None:
        """Record a failure, through the lock session if the migration session is broken."""
        for session in (driver, None if self._watch.stuck else self._spare):
            if session is None:
                continue
            try:
                session.update_row(row)
                return
            except BaseException as exc:  # noqa: BLE001 - the statement's error matters more than this one
                self.log.warning("history_update_failed", migration_id=row.migration_id, error=str(exc))

    def _execute(self, driver: Driver, migration: Migration, statements: list[Statement], index: int,
                 statement: Statement, started: float, *, recorded: bool,
                 rolled_back: str = "the migration was rolled back", event: str = "migration_failed",
                 lock_timeout: float | None = None) -> None:
        try:
            with self._watch.watching(driver, lock_timeout) as blockers:
                driver.execute(statement.text)
        except SqlError as exc:
            if exc.lock_contention:
                raise LockBusy(exc, index, blockers, migration, statements) from exc
            raise self._failure(exc, migration, statements, index, statement, started, recorded=recorded,
                                rolled_back=rolled_back, event=event) from exc
        except ConnectionLost as exc:
            self.log.error(event, **self._fields(migration), duration_ms=self._ms(started),
                           statement=index, line=statement.line, error=exc.message,
                           outcome="in progress row recorded" if recorded else "rolled back by the server")
            raise ConnectionLost(
                f"{migration.script}: {exc.message} while running statement {index} (line {statement.line})"
                + ("; its history row records where it stopped" if recorded else "; nothing was committed"),
                recorded=recorded,
            ) from exc

    def _failure(self, exc: SqlError, migration: Migration, statements: list[Statement], index: int,
                 statement: Statement, started: float, *, recorded: bool, rolled_back: str,
                 event: str = "migration_failed", blockers: list[dict[str, Any]] | None = None,
                 gave_up: str = "") -> MigrationFailed:
        """Log the failed statement and build the error that ends the run (exit 4)."""
        line = statement.line
        if exc.position:
            line += statement.text[: exc.position - 1].count("\n")
        error_summary = f"statement {index} (line {line}): [{exc.code}] {exc.message}"
        extra = {"blockers": blockers} if blockers is not None else {}
        self.log.error(
            event, **self._fields(migration), duration_ms=self._ms(started), statement=index,
            statements=len(statements), line=line, **{exc.code_field: exc.code}, error=exc.message,
            sql=_abbreviate(statement.text), outcome="recorded as failed" if recorded else "rolled back", **extra,
        )
        return MigrationFailed(
            f"{migration.script}: statement {index} of {len(statements)} (line {line}) failed: "
            f"[{exc.code}] {exc.message}"
            + (f"; {gave_up}" if gave_up else "")
            + (f"; {rolled_back}" if not recorded and rolled_back else "")
            + ("; recorded as failed: fix the cause, then run `premigrate repair` to see the ways to finish it"
               if recorded else ""),
            line=line, error_summary=error_summary, **{exc.code_field: exc.code},
        )


def _abbreviate(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _quietly(action: Callable[[], None]) -> None:
    try:
        action()
    except BaseException:  # noqa: BLE001 - best effort: the original error is re-raised by the caller
        pass
