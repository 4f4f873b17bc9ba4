"""`premigrate plan` and `up --dry-run`: what `up` would run now, on stdout. Takes no lock, changes nothing.

Exit 7 when there is work, 0 when there is none, 5 when `up` would refuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from premigrate.commands.common import EXIT_OK, EXIT_PENDING, CommandRun, refuse_problems, require_target, \
    warn_missing
from premigrate.commands.up import prepare, refuse_unrunnable, refuse_unsupported_single_transaction
from premigrate.model.migrations import MigrationSet
from premigrate.model.modes import MODE_TEXT
from premigrate.model.planner import Plan, Reason, Step

if TYPE_CHECKING:
    from premigrate.commands import report


def run(command: CommandRun) -> int:
    files = command.load()
    require_target(command.config, files)
    return show(command, files)


def show(command: CommandRun, files: MigrationSet) -> int:
    refuse_unsupported_single_transaction(command)
    if command.sessions.database_missing():
        # `up` would create this file and apply everything; the plan says so without creating it.
        return _print(command, command.plan(files, []))
    with command.sessions.session(read_only=True) as driver:
        history, owed = driver.read_history(), driver.owed_callbacks
        if command.config.command == "up" and command.config.baseline.source is not None:
            from premigrate.commands import adopt

            # up --dry-run --baseline-from: planned as if the tool's history were adopted (the rows are not written).
            history, _ = adopt.preview(command, driver, files, history, adopt.check_options(command))
        return _print(command, command.plan(files, history, owed))


def _print(command: CommandRun, plan: Plan) -> int:
    from premigrate.commands import report

    config, log = command.config, command.log
    warn_missing(log, plan)
    steps = prepare(command.policy, plan.steps)
    refuse_unrunnable(command, steps)
    views = [_step_view(command, step) for step in steps]
    text = (report.plan_json(views, plan, database=config.dsn.redacted(), secrets=config.secrets)
            if config.json_output else report.plan_text(views, plan, secrets=config.secrets))
    report.write_stdout(text)
    refuse_problems(log, plan)
    log.info("plan", pending=len(steps), versions=[s.migration.id for s in steps], dry_run=True)
    return EXIT_PENDING if steps or plan.owed else EXIT_OK


def _step_view(command: CommandRun, step: Step) -> report.StepView:
    from premigrate.commands import report

    migration = step.migration
    statements = command.shapes.statements(migration)
    timeouts = command.executor_timeouts(migration)
    if command.config.apply.single_transaction:
        mode = "single (one transaction for the whole run)"
    else:
        mode = MODE_TEXT[command.shapes.mode(step)]
    return report.StepView(
        migration=migration,
        reason=step.reason,
        transaction=mode,
        timeouts={"runner_lock_timeout_s": command.config.lock_timeout, **timeouts.describe(),
                  "note": "statement timeout: the database's own setting" if timeouts.statement is None
                  else "0 means no limit"},
        statements=statements,
        resume_from=step.row.statements_done + 1 if step.reason == Reason.RESUME and step.row else None,
    )
