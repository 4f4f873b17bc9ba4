"""What the commands share: one run's context (configuration, log, signals, sessions), loading the folder, the
plan, and the refusals every command words the same way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from typing import TYPE_CHECKING, ClassVar

from premigrate.config import Config
from premigrate.drivers.base import Driver, HistoryRow
from premigrate.engine.runstats import RunStats
from premigrate.engine.interrupts import SignalGuard
from premigrate.engine.sessions import HeldLock, Sessions
from premigrate.engine.tracing import NOOP, Tracer
from premigrate.errors import DatabaseUnavailable, MigrationFileError, UsageError, ValidationFailed
from premigrate.eventlog import EventLog
from premigrate.model.migrations import Migration, MigrationSet, load_migrations
from premigrate.model.planner import Plan, Policy, plan_for

if TYPE_CHECKING:
    from premigrate.commands.lint.rules import Finding
    from premigrate.engine.callbacks import CallbackRunner
    from premigrate.engine.executor import Executor
    from premigrate.engine.lockwait import Timeouts
    from premigrate.model.modes import StepShapes

EXIT_OK = 0
EXIT_PENDING = 7


@dataclass
class CommandRun:
    """One command's run: built once by the CLI, passed to the command's run()."""

    config: Config
    log: EventLog
    guard: SignalGuard | None = None
    stats: RunStats = field(default_factory=RunStats)
    fleet_summary: dict[str, object] | None = None  # a fleet run's summary, for the summary file
    tracer: Tracer = NOOP

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.config, self.log, self.guard, self.tracer)
        self.policy = policy_for(self.config)

    @cached_property
    def shapes(self) -> StepShapes:
        """How each step is wrapped: built on first use, so that a run with nothing to do never loads it."""
        from premigrate.model.modes import StepShapes

        return StepShapes(self.config.dsn.dialect, self.sessions.capabilities.transactional_ddl)

    callbacks: CallbackRunner | None = field(default=None, init=False)
    # The last plan(): the files it was planned from (the same object), the rest of what it was planned from (the
    # server kind, the history, owed), and the plan.
    _last_plan: tuple[MigrationSet, tuple[bool | None, list[HistoryRow], tuple[HistoryRow, ...]], Plan] | None = \
        field(default=None, init=False, repr=False)
    # The database size before and after `up` feeds the run summary. A fleet target has no summary of its own (its
    # `target_done` event carries its outcome and count), and on PostgreSQL the size walks every file of the
    # database -- a schema fleet's shared database is the largest there is -- so a fleet target does not measure it.
    measures_size: ClassVar[bool] = True
    # `up --lint=warn` lints on a thread of its own while the run applies (commands/lint/ahead.py). A fleet target
    # does not: the fleet lints each folder once for all its targets (fleet.py), so a target's lint is a lookup.
    lints_ahead: ClassVar[bool] = True

    def lint(self, migrations: Sequence[Migration]) -> list[Finding]:
        """Lint's findings for these files, split as the run splits them (one split per file and run)."""
        from premigrate.commands import lint

        return lint.lint_migrations(migrations, self.config.dsn.dialect, split=self.shapes.shared_statements)

    def load(self) -> MigrationSet:
        files = load_files(self.config, self.log)
        self.callbacks = load_callbacks(self, files)
        return files

    def plan(self, files: MigrationSet, history: Sequence[HistoryRow], owed: tuple[HistoryRow, ...] = ()) -> Plan:
        """The plan of `files` against `history`; `owed`: the callbacks the history says a run still owes
        (Driver.owed_callbacks, read with it)."""
        # `up` plans before the lock and again under it; usually the history read under the lock is the one read
        # before, and planning 1,000 files again would cost milliseconds of the run's start for the same plan.
        server = self.sessions.mariadb
        inputs = (server, list(history), owed)
        last = self._last_plan
        if last is not None and last[0] is files and last[1] == inputs:
            return last[2]
        given = files
        if files.listed and server is not None:
            files = self._for_server(files, "mariadb" if server else "mysql")
        plan = plan_for(files, history, self.policy)
        plan = replace(plan, owed=owed) if owed else plan
        self._last_plan = (given, inputs, plan)
        return plan

    def _for_server(self, files: MigrationSet, dbms: str) -> MigrationSet:
        """The changesets' dbms skips judged for the server connected to: Liquibase tells MariaDB from MySQL by the
        server (MariaDBDatabase.isCorrectDatabaseImplementation), whatever the URL's scheme."""
        from premigrate.model.formats.liquibase.reader import refiltered
        from premigrate.model.listed import Filters

        filters = Filters(dbms=dbms, contexts=self.config.folder.contexts, labels=self.config.folder.labels,
                          strict=self.config.folder.liquibase_strict)
        return MigrationSet(listed=refiltered(files.listed, filters), notes=files.notes,
                            callback_files=files.callback_files)

    def executor_timeouts(self, migration: Migration) -> Timeouts:
        """What the executor would run `migration` with: the run's options, overridden by the file's directives."""
        from premigrate.engine.lockwait import timeouts_for

        return timeouts_for(self.config.statements, migration.settings)

    def executor(self, driver: Driver, lock: HeldLock, *, callbacks: CallbackRunner | None = None) -> Executor:
        from premigrate.engine.executor import Executor  # only once there is work: a no-op run never loads it

        return Executor(driver, self.shapes, self.config, self.log, applied_by=self.sessions.host, lock=lock,
                        guard=self.guard, stats=self.stats, callbacks=callbacks, tracer=self.tracer)


def load_callbacks(command: CommandRun, files: MigrationSet) -> CallbackRunner | None:
    """The callback scripts of the folder (and --callbacks DIR); names premigrate will not run are refused, each
    named. Nothing is imported for a folder without callback-shaped names."""
    config = command.config
    extra = config.callbacks.dir
    if not files.callback_files and extra is None:
        return None
    from premigrate.engine.callbacks import runner_for
    from premigrate.model.callbacks import EVENTS, discover, merge

    if extra is not None and not extra.is_dir():
        raise UsageError(f"{config.option_text('callbacks', repr(str(extra)))} is not a folder; create it or point "
                         f"{config.named('callbacks')} at it")
    found = merge(discover(config.migrations_dir), discover(extra) if extra is not None else None)
    problems = [why for _, why in found.invalid] + [
        f"{path.name}: a Flyway callback for an event premigrate does not run; remove it or rename it to one of "
        f"{', '.join(EVENTS)}" for path in found.unsupported]
    if problems:
        for problem in problems:
            command.log.error("callback_refused", error=problem)
        raise MigrationFileError(problems[0] + (f" (and {len(problems) - 1} more: see the callback_refused events)"
                                                if len(problems) > 1 else ""))
    return runner_for(found, config.dsn.dialect, config.placeholder_values, command.log,
                      transactional_ddl=command.sessions.capabilities.transactional_ddl)


def policy_for(config: Config) -> Policy:
    """The planning policy of a configuration: the one every command and `serve` plan with."""
    return Policy(config.dsn.dialect, config.allow_out_of_order, config.strict, config.table,
                  target=config.apply.to if config.command in ("up", "plan") else None,
                  placeholder_values=config.placeholder_values,
                  placeholders_everywhere=bool(config.statements.placeholders),
                  environment=config.environment)


def load_files(config: Config, log: EventLog) -> MigrationSet:
    offline = config.command in ("new", "lint")  # no database to check a format's provider against
    from premigrate.model.formats.markers import liquibase_dbms_name as dbms_name
    from premigrate.model.listed import Filters

    filters = Filters(dbms=None if offline else dbms_name(config.dsn.dialect, config.dsn.flavor),
                      contexts=config.folder.contexts, labels=config.folder.labels,
                      strict=config.folder.liquibase_strict)
    # `new --format` names the layout of the file to write; the folder itself is read as it is.
    files = load_migrations(config.migrations_dir,
                            format="auto" if config.command == "new" else config.folder.file_format,
                            dialect=None if offline else config.dsn.dialect,
                            allow_empty=config.folder.allow_empty or config.command == "new", filters=filters,
                            option=config.named("dir"))
    for note in files.notes:
        log.warning("migration_file_ignored", note=note)
    log.debug("migrations_loaded", count=len(files.all), dir=str(config.migrations_dir))
    return files


def require_target(config: Config, files: MigrationSet) -> None:
    """--to must name a version in the folder: a typo must not silently migrate everything, nor make `down` roll
    back nothing (or everything after it). `down --to 0` names the point before every migration: all of them."""
    down = config.command == "down"
    target = config.down.to if down else config.apply.to
    if target is None or (down and not target.parts):
        return
    if target not in {m.version for m in files.versioned}:
        raise UsageError(f"{config.option_text('to', target)}: no migration with that version in "
                         f"{str(config.migrations_dir)!r}")


def warn_missing(log: EventLog, plan: Plan) -> None:
    for warning in plan.warnings:
        log.warning("migration_missing", migration_id=warning.migration_id, script=warning.script,
                    error=warning.message)


def problem_summary(plan: Plan, event: str = "validation_failed") -> str:
    """The first problem, and how many more there are: `event` names the events that list each one (the command's
    own: `check` logs check_failed)."""
    first = plan.problems[0].message
    more = len(plan.problems) - 1
    return first + (f" (and {more} more problem{'s' if more > 1 else ''}: see the {event} events)" if more else "")


def refuse_missing_database(command: CommandRun) -> None:
    """A SQLite file that does not exist is refused (exit 3, as `status` refuses it) by a command that acts on an
    existing history: its write session would create the file, and a mistyped path would pass for a database with
    nothing to do."""
    config = command.config
    if not command.sessions.database_missing():
        return
    fix = ("no database is configured: set DATABASE_URL or --database-url" if config.default_sqlite
           else f"check the path in {config.dsn_source}")
    raise DatabaseUnavailable(
        f"the database does not exist for {config.dsn.redacted()}: SQLite database file "
        f"{config.dsn.database or ''!r} does not exist (`{config.command}` never creates it); {fix}",
        reason="unknown_database")


def missing_history(command: CommandRun, refused: str, driver: Driver | None = None) -> ValidationFailed | None:
    """The refusal of a command that acts on what premigrate applied, when the history table does not exist (None
    when it does): far more often a mistyped setting than a database where nothing was ever applied. `driver`: a
    session to look on, else a read-only one of its own."""
    if driver is None:
        with command.sessions.session(read_only=True) as own:
            exists = own.history_exists()
    else:
        exists = driver.history_exists()
    if exists:
        return None
    config = command.config
    schema = config.history_schema
    table = f"{schema}.{config.history_table_name}" if schema else config.table
    names = ["DATABASE_URL" if config.default_sqlite else config.dsn_source, config.named("table")] + (
        [config.named("schema")] if config.dsn.dialect == "postgresql" else [])
    settings = f"{', '.join(names[:-1])} and {names[-1]}"
    return ValidationFailed(
        f"{refused}: there is no history table {table} in {config.dsn.redacted()}, so there is nothing premigrate "
        f"applied there; check that {settings} name the database and history table that `premigrate up` migrated")


def refuse_problems(log: EventLog, plan: Plan) -> None:
    if not plan.problems:
        return
    for problem in plan.problems:
        log.error("validation_failed", kind=problem.kind, migration_id=problem.migration_id,
                  script=problem.script, error=problem.message)
    raise ValidationFailed(problem_summary(plan))
