"""`premigrate up`: wait for the database, take the runner lock, apply what is pending, record it.

A lock-free first look comes first: a restarting old pod must never queue behind a long run by a newer one, and the
usual case (nothing to do) costs one read. Bad input fails before any change, the history table included.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from premigrate.commands import adopt
from premigrate.commands.common import (
    EXIT_OK, CommandRun, refuse_problems, require_target, warn_missing,
)
from premigrate.drivers.base import Driver, HistoryRow, SqlError
from premigrate.engine.sessions import HeldLock
from premigrate.errors import MigrationFailed, UsageError, ValidationFailed
from premigrate.model.migrations import MigrationSet
from premigrate.model.planner import Policy, Reason, Step
from premigrate.model.versions import Version

if TYPE_CHECKING:
    from premigrate.commands.lint.ahead import LintWhileRunning


# Lint parses every statement and keeps the file's lines: for a file near the 64 MiB limit that is several times its
# size in memory, more than the 256 MiB the shipped manifests give the container. Larger files are applied unlinted.
LINT_MAX_CHARS = 8 * 1024 * 1024


def run(command: CommandRun) -> int:
    config, log = command.config, command.log
    files = command.load()
    require_target(config, files)
    refuse_unsupported_single_transaction(command)
    if config.apply.baseline_on_empty_history is not None:
        from premigrate.commands import baseline

        version = config.apply.baseline_on_empty_history
        baseline.require_version_in_folder(files, version, config.option_text("baseline_on_empty_history", version))
    adopting = config.baseline.source is not None
    mapping = adopt.check_options(command)
    if config.apply.dry_run:
        from premigrate.commands import plan

        return plan.show(command, files)
    with command.sessions.session(read_only=False) as driver:
        history = driver.read_history()
        if adopting:
            # Planned as if adopted (lint, refusals and the quick exit see the files that will run); a refusal of
            # the tool's history comes here, before the runner lock.
            history, preview = adopt.preview(command, driver, files, history, mapping)
            adopting = preview is not None
        plan_now = command.plan(files, history, driver.owed_callbacks)
        callbacks = command.callbacks
        # --callbacks-always: beforeMigrate/afterMigrate on every run, which then takes the lock even with nothing
        # to apply. Otherwise a run with nothing to do stays lock-free and runs no callback.
        always = bool(config.callbacks.always and callbacks and callbacks.has("beforeMigrate", "afterMigrate"))
        if plan_now.clean and not always and not adopting:
            if config.baseline.source is not None:
                adopt.skipped(command, len(history))
            warn_missing(log, plan_now)
            log.info("nothing_to_do", applied=len([e for e in plan_now.entries if e.state == "applied"]))
            return EXIT_OK
        prepared = prepare(command.policy, plan_now.steps)
        refuse_unrunnable(command, prepared)
        if any(s.migration.verify_sql is not None for s in prepared):
            from premigrate.engine.change_verify import refuse_missing_checkit

            refuse_missing_checkit(driver, [s.migration for s in prepared], config.apply.verify)
        if callbacks is not None:
            callbacks.prepare()  # unreadable scripts and unknown placeholders fail here, before any change
        lint = lint_gate(command, driver, plan_now.steps)
        try:
            with command.sessions.runner_lock(probe=driver) as lock:
                # Matched before anything is created: a refusal leaves the database as it was.
                adoption = adopt.adopt(command, driver, files, mapping) if config.baseline.source else None
                # Re-read under the lock: the usual case for replica two is "nothing left to do". ([] while the
                # history table does not exist: it is created only once the run is not refused, below.)
                history = driver.read_history()
                baseline_version = config.apply.baseline_on_empty_history
                if not history and adoption is not None:
                    ensure_history_table(command, driver)
                    history = adopt.record(command, driver, lock, files, adoption)
                elif not history and baseline_version is not None:
                    ensure_history_table(command, driver)
                    history = _baseline_on_empty(command, driver, lock, files, baseline_version)
                plan_now = command.plan(files, history, driver.owed_callbacks)
                warn_missing(log, plan_now)
                refuse_problems(log, plan_now)
                ensure_history_table(command, driver)
                if not plan_now.steps:
                    log.info("nothing_to_do")
                    if not always and not plan_now.owed:
                        return EXIT_OK
                steps = prepare(command.policy, plan_now.steps)
                if steps:
                    log.info("plan", pending=len(steps), versions=[s.migration.id for s in steps])
                migrate(command, driver, lock, steps, owed=plan_now.owed, always=always, lint=lint)
        finally:
            if lint is not None:
                lint.stop()  # a run that ends early (nothing left under the lock, a failure) lints no further
    return EXIT_OK


def ensure_history_table(command: CommandRun, driver: Driver) -> None:
    """The history table (and the schemas it and --schema name), created if missing: under the runner lock, and only
    for a run that was not refused, so that bad input leaves the database as it was."""
    try:
        driver.ensure_schema()
        created = driver.ensure_history_table()
    except SqlError as exc:
        if not exc.lacks_privilege:
            raise
        config = command.config
        raise UsageError(f"the database user {config.dsn.user or '(default)'} may not create premigrate's history "
                         f"table {config.table!r} ({exc.message.split(' LINE ', 1)[0]}): grant it CREATE where the "
                         "table goes (PostgreSQL: GRANT CREATE ON SCHEMA <schema> TO <user>, or ON DATABASE <database> "
                         "when --schema names a schema that does not exist yet; MySQL: GRANT CREATE ON <database>.* TO "
                         "<user>), "
                         "create the table ahead as its owner, or run premigrate as that owner") from exc
    if created:
        command.log.info("history_table_created", table=command.config.table)


def migrate(command: CommandRun, driver: Driver, lock: HeldLock, steps: list[Step], *,
            owed: tuple[HistoryRow, ...] = (), always: bool = True, lint: LintWhileRunning | None = None) -> None:
    """Under the lock: beforeMigrate, the steps (with their per-migration callbacks), afterMigrate; on a failure,
    afterMigrateError. With nothing to apply and not `always`, only the afterMigrate a run still owes. `lint`: the
    findings of --lint=warn, each file's logged just before it runs."""
    from premigrate.engine.after_migrate import AfterMigrateDebt

    callbacks = command.callbacks
    executor = command.executor(driver, lock, callbacks=callbacks)
    if lint is not None:
        executor.announce = lint.report
    debt = AfterMigrateDebt(command, executor, driver, owed)
    debt.refuse_unpayable()
    measured = bool(steps) and command.measures_size
    if measured:
        command.stats.size_before = measure_size(command, driver)
    try:
        debt.record()
        # The callbacks' statements (afterMigrateError's below too) are stopped by a signal as the migrations' are
        # (SQLite's cancel is a hook that only running() registers).
        with executor.running():
            if callbacks is not None and (steps or always):
                callbacks.run(driver, "beforeMigrate")
            if steps:
                executor.apply(steps)
            debt.pay()
    except MigrationFailed:
        if callbacks is not None:
            with executor.running():
                callbacks.run_after_error(driver, "afterMigrateError")
        raise
    if measured:
        command.stats.size_after = measure_size(command, driver)


def measure_size(command: CommandRun, driver: Driver) -> dict[str, object]:
    """The database size where it is cheap to read (engine/measurements.py), or why it was skipped."""
    from premigrate.engine.measurements import database_size

    connection = getattr(driver, "conn", None)
    if connection is None:
        return {"bytes": None, "skipped": "not measured: the driver has no connection to ask"}
    return database_size(connection, command.config.dsn.dialect).as_dict()


def prepare(policy: Policy, steps: list[Step]) -> list[Step]:
    """Steps with placeholders resolved, checked before anything changes (an unknown one is exit 2).
    A resumed file was resolved for planning already."""
    return [step if step.reason == Reason.RESUME else replace(step, migration=policy.resolve(step.migration))
            for step in steps]


def refuse_unsupported_single_transaction(command: CommandRun) -> None:
    if command.config.apply.single_transaction:
        from premigrate.model.modes import refuse_single_transaction_unsupported

        refuse_single_transaction_unsupported(command.sessions.capabilities.transactional_ddl,
                                              command.config.dsn.dialect, command.config.named("single_transaction"))


def refuse_unrunnable(command: CommandRun, steps: list[Step]) -> None:
    """What cannot run as the run would wrap it: refused before anything changes."""
    # Imported only now, as the executor is: a run with nothing to do never loads how files are wrapped.
    from premigrate.model.modes import (
        StepShapes, refuse_database_switch, refuse_single_transaction_steps, refuse_transaction_incompatible,
    )

    shapes: StepShapes = command.shapes
    single = bool(command.config.apply.single_transaction)
    if single:
        named = command.config.named("single_transaction")
        refuse_single_transaction_steps(shapes, steps, named)
        verified = [s.migration for s in steps if s.migration.verify_sql is not None]
        if verified and command.config.apply.verify:
            raise UsageError(f"{named} cannot run {verified[0].verify_script} after its change: a verify "
                             f"script that fails reverts its change alone; pass --no-verify, or leave out {named}")
    refuse_transaction_incompatible(shapes, steps, single_transaction=single)
    refuse_database_switch(shapes, steps)


def lint_gate(command: CommandRun, driver: Driver, steps: list[Step]) -> LintWhileRunning | None:
    """--lint error: the pending files through lint before anything runs. --lint warn: linted while the run waits for
    the database (commands/lint/ahead.py: in the driver's waits, else on a thread), each file's findings logged
    before it runs; the LintWhileRunning is returned."""
    log = command.log
    mode = command.config.apply.lint or "off"
    if mode == "off" or not steps:
        return None
    for step in steps:
        if len(step.migration.up_sql) > LINT_MAX_CHARS:
            log.warning("lint_skipped", script=step.migration.script, characters=len(step.migration.up_sql),
                        note=f"over {LINT_MAX_CHARS // (1024 * 1024)} Mi characters: not linted, so that the run "
                             "stays within its memory limit; lint it apart with `premigrate lint`")
    steps = [s for s in steps if len(s.migration.up_sql) <= LINT_MAX_CHARS]
    if not steps:
        return None
    from premigrate.commands import lint  # imported only now: a no-op run pays nothing for the SQL parsers

    from premigrate.commands.lint.ahead import UNLINTED, LintAhead, LintInWaits, log_finding

    if mode == "warn" and command.lints_ahead and not command.config.apply.single_transaction:
        way = LintInWaits if getattr(driver, "releases_held_events", False) else LintAhead
        return way([s.migration for s in steps], command.lint, log)
    try:
        findings = command.lint([s.migration for s in steps])
    except lint.LintUnavailable as exc:
        if mode == "error":
            raise
        log.warning("lint_unavailable", error=str(exc), note=UNLINTED)
        return None
    for finding in findings:
        log_finding(log.error if mode == "error" and finding.severity == "error" else log.warning, finding)
    if mode == "error" and lint.has_errors(findings):
        raise ValidationFailed(
            f"lint found {sum(f.severity == 'error' for f in findings)} error-level problem(s) in the pending "
            "migrations (see the lint_finding events); fix them, silence one on purpose with "
            "'-- premigrate:allow RULE', or run with --lint=warn")
    return None


def _baseline_on_empty(command: CommandRun, driver: Driver, lock: HeldLock, files: MigrationSet,
                       version: Version) -> list[HistoryRow]:
    from premigrate.commands import baseline

    log = command.log
    tables = [t for t in driver.list_tables() if t != command.config.history_table_name]
    if not tables:
        log.info("baseline_skipped", reason="the schema has no tables of its own: migrating normally")
        return []
    log.info("baseline_on_empty_history", version=str(version), existing_tables=len(tables))
    baseline.record(command, driver, lock, baseline.up_to(files, version), {})
    return driver.read_history()
