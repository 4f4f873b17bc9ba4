"""`premigrate status` (every migration with its state) and `premigrate check` (exit 0 up to date, 7 pending or an
afterMigrate still owed, 5 on drift or an unfinished run). Read-only, no lock."""

from __future__ import annotations

import time
from collections.abc import Callable

from premigrate.commands.common import EXIT_OK, EXIT_PENDING, CommandRun, problem_summary, warn_missing
from premigrate.errors import DatabaseUnavailable, ValidationFailed
from premigrate.eventlog import EventLog
from premigrate.model.planner import Plan


POLL_S = 2.0  # check --wait: how often the history is read again


def current_plan(command: CommandRun, wait_limit: float | None = None) -> Plan:
    """The plan against the history as it is now; `wait_limit`: wait for the database no longer than that."""
    files = command.load()
    with command.sessions.session(read_only=True, wait_limit=wait_limit) as driver:
        history = driver.read_history()
        owed = driver.owed_callbacks
    return command.plan(files, history, owed)


def run(command: CommandRun) -> int:
    """status: the table (or JSON) of every migration."""
    from premigrate.commands.report import status_json, status_table, write_stdout

    config = command.config
    plan = current_plan(command)
    write_stdout(status_json(plan, database=config.dsn.redacted(), table=config.table) if config.json_output
                 else status_table(plan))
    return EXIT_OK


def check(command: CommandRun) -> int:
    if command.config.check.wait:
        return wait_until_current(command.log, lambda left: current_plan(command, wait_limit=left),
                                  command.config.check.timeout)
    return judge(command.log, current_plan(command))


def judge(log: EventLog, plan: Plan) -> int:
    """check's verdict on one reading: 0 current, 7 pending; drift or an unfinished run raises (exit 5)."""
    warn_missing(log, plan)
    if plan.problems:
        for problem in plan.problems:
            log.error("check_failed", kind=problem.kind, migration_id=problem.migration_id, script=problem.script,
                      error=problem.message)
        raise ValidationFailed(problem_summary(plan, "check_failed"))
    if plan.owed:
        from premigrate.model.owed import describe

        for row in plan.owed:
            log.warning("callback_owed", callback=row.description, error=describe(row),
                        fix="run `premigrate up` with the afterMigrate script: it runs it")
    if plan.outstanding:
        log.warning("pending", pending=len(plan.outstanding), versions=[s.migration.id for s in plan.outstanding])
    if plan.outstanding or plan.owed:
        return EXIT_PENDING
    log.info("up_to_date")
    return EXIT_OK


def wait_until_current(log: EventLog, read: Callable[[float | None], Plan], timeout: float | None, *,
                       clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """check --wait: read the history (read-only, no lock) every POLL_S until nothing is pending, then exit 0.

    At the timeout the last reading decides, as a plain `check` would (7 pending, 5 drift or an unfinished run, 3
    unreachable). Until then a pending migration, a run in progress (its row is in doubt while a statement runs) and
    an unreachable database are all worth waiting for: a migration Job may be starting, running or retrying.
    """
    deadline = None if timeout is None else clock() + timeout
    last: tuple[str, ...] | None = None
    while True:
        try:
            # The time left: a database that does not answer is waited for within --timeout, not --wait-timeout.
            plan: Plan | None = read(None if deadline is None else max(0.0, deadline - clock()))
        except DatabaseUnavailable:
            if deadline is not None and clock() >= deadline:
                raise
            plan = None
        if plan is not None and not plan.problems and not plan.outstanding and not plan.owed:
            return judge(log, plan)
        if plan is not None and deadline is not None and clock() >= deadline:
            log.warning("check_wait_timed_out", timeout_s=timeout)
            return judge(log, plan)
        reading = ("unreachable",) if plan is None else tuple(
            [f"pending {s.migration.id}" for s in plan.outstanding]
            + [f"{p.kind} {p.migration_id}" for p in plan.problems] + [f"owed {r.description}" for r in plan.owed])
        if reading != last:
            log.info("check_waiting", pending=0 if plan is None else len(plan.outstanding),
                     problems=0 if plan is None else len(plan.problems), reachable=plan is not None,
                     timeout_s=timeout)
            last = reading
        sleep(POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - clock())))
