"""`premigrate status` (every migration with its state) and `premigrate check` (exit 0 up to date, 7 pending, 5 on
drift or an unfinished run). Read-only, no lock."""

from __future__ import annotations

from premigrate.commands.common import EXIT_OK, EXIT_PENDING, CommandRun, problem_summary, warn_missing
from premigrate.errors import ValidationFailed
from premigrate.model.planner import Plan


def current_plan(command: CommandRun) -> Plan:
    files = command.load()
    with command.sessions.session(read_only=True) as driver:
        history = driver.read_history()
    return command.plan(files, history)


def run(command: CommandRun) -> int:
    """status: the table (or JSON) of every migration."""
    from premigrate.commands.report import status_json, status_table, write_stdout

    config = command.config
    plan = current_plan(command)
    write_stdout(status_json(plan, database=config.dsn.redacted(), table=config.table) if config.json_output
                 else status_table(plan))
    return EXIT_OK


def check(command: CommandRun) -> int:
    log = command.log
    plan = current_plan(command)
    warn_missing(log, plan)
    if plan.problems:
        for problem in plan.problems:
            log.error("check_failed", kind=problem.kind, migration_id=problem.migration_id, error=problem.message)
        raise ValidationFailed(problem_summary(plan))
    if plan.steps:
        log.warning("pending", pending=len(plan.steps), versions=[s.migration.id for s in plan.steps])
        return EXIT_PENDING
    log.info("up_to_date")
    return EXIT_OK
