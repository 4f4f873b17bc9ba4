"""`up`, `status` and `check` over a fleet: many schemas, databases or servers in one process (docs/fleet.md).

The folder is read and checked once; the drivers are imported once; N worker threads take targets from one queue.
Each target runs exactly the single-target command (its own history table, its own runner lock), on a copy of the
configuration that points at it, with a log that carries its `target` field. Threads, not processes: a target's
time is spent waiting on its server, and bench/ measures how far that carries on this interpreter.

Failure policy: a failing target does not stop the others; --fail-fast stops starting new ones. SIGTERM/SIGINT stop
every running target the way they stop a single run (the statement is cancelled, its transaction rolled back or its
row recorded): the signal guard's cancel hooks reach every worker's session, and a worker checks the stop before
each statement, so none starts a new one.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from premigrate.commands.common import EXIT_OK, CommandRun, load_callbacks
from premigrate.config import Config
from premigrate.commands.fleet_targets import check_targets, read_targets, target_config
from premigrate.engine.fleet_sessions import FleetStop, TargetSessions, WorkerSessions
from premigrate.errors import Interrupted, PremigrateError, UsageError
from premigrate.eventlog import EventLog
from premigrate.model.fleet import (
    FleetSummary, Progress, Target, TargetResult, outcome_name, progress,
)
from premigrate.model.migrations import Migration, MigrationSet
from premigrate.settings import default_concurrency

if TYPE_CHECKING:
    from premigrate.commands.lint.rules import Finding
    from premigrate.model.modes import StepShapes
    from premigrate.log import SecretScrubber

PROGRESS_EVERY_S = 5.0
LIVE_EVERY_S = 0.25  # the live line at a terminal: redrawn at most four times a second


class SharedWork:
    """What every target of a fleet would otherwise work out again from the same folder: how each file splits (per
    dialect and transactional-DDL capability) and lint's findings for a set of pending files. Computed once, by
    whichever worker asks first; the others wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.linting = threading.Lock()
        self.shapes: dict[tuple[str, bool], StepShapes] = {}
        self.findings: dict[tuple[str, tuple[Migration, ...]], list[Finding]] = {}

    def shapes_for(self, dialect: str, transactional_ddl: bool) -> StepShapes:
        from premigrate.model.modes import StepShapes

        with self._lock:
            return self.shapes.setdefault((dialect, transactional_ddl), StepShapes(dialect, transactional_ddl))


class TargetRun(CommandRun):
    """One target's run: the fleet's folder (read once), the target's configuration and log."""

    files: MigrationSet | None = None
    target: str = ""
    shared: SharedWork | None = None
    measures_size = False  # see CommandRun.measures_size
    lints_ahead = False  # see CommandRun.lints_ahead

    def load(self) -> MigrationSet:
        if self.files is None:
            return super().load()
        # The folder is read once for the fleet; the callbacks runner is each target's own, as its log is (the
        # scripts are read and checked again per target: a folder without callbacks costs nothing).
        self.callbacks = load_callbacks(self, self.files)
        return self.files

    @cached_property
    def shapes(self) -> StepShapes:
        if self.shared is None:
            from premigrate.model.modes import StepShapes

            return StepShapes(self.config.dsn.dialect, self.sessions.capabilities.transactional_ddl)
        return self.shared.shapes_for(self.config.dsn.dialect, self.sessions.capabilities.transactional_ddl)

    def lint(self, migrations: Sequence[Migration]) -> list[Finding]:
        if self.shared is None:
            return super().lint(migrations)
        key = (self.config.dsn.dialect, tuple(migrations))
        with self.shared.linting:
            found = self.shared.findings.get(key)
            if found is None:
                found = self.shared.findings[key] = super().lint(migrations)
        return list(found)


# -- running -----------------------------------------------------------------------------------------------------------

TargetAction = Callable[[CommandRun], int]


@dataclass
class Fleet:
    """One fleet run: the command, what it does to each target, the folder, the targets and their summary."""
    command: CommandRun
    action: TargetAction
    files: MigrationSet
    targets: list[tuple[Target, Config]]
    summary: FleetSummary = field(init=False)
    stop: FleetStop = field(init=False)

    def __post_init__(self) -> None:
        self.summary = FleetSummary(total=len(self.targets))
        self.stop = FleetStop(self.command.guard)
        self._next = iter(self.targets)
        self._lock = threading.Lock()
        self._running = 0  # workers not yet finished
        self._all_done = threading.Event()
        self.shared = SharedWork()

    def _take(self) -> tuple[Target, Config] | None:
        with self._lock:
            if self.stop.no_new_targets or self.stop.stopping:
                return None
            return next(self._next, None)

    def _work(self) -> None:
        pool = WorkerSessions()
        try:
            while (item := self._take()) is not None:
                result = self._run_target(*item, pool)
                with self._lock:
                    self.summary.add(result)
                    if self.command.config.fleet.fail_fast and result.exit_code not in (0, 7):
                        self.stop.no_new_targets = True
        finally:
            pool.close()
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    self._all_done.set()

    def _run_target(self, target: Target, config: Config, pool: WorkerSessions) -> TargetResult:
        log: EventLog = cast(Any, self.command.log).bind(target=target.name)
        run = TargetRun(config, log, self.command.guard)
        run.files = self.files
        run.target = target.name
        run.shared = self.shared
        sessions = TargetSessions(config, log, self.command.guard)
        sessions.stop = self.stop
        sessions.pool = pool
        run.sessions = sessions
        started = time.monotonic()
        message: str | None = None
        from premigrate import log as logging_setup

        logging_setup.bind_thread(target=target.name)  # a driver library's warning in this thread names it too
        try:
            code = self.action(run)
        except Interrupted as exc:
            code, message = exc.exit_code, f"stopped by {exc}"
        except PremigrateError as exc:
            code, message = exc.exit_code, exc.message
            log.error("error", error=exc.message, error_type=type(exc).__name__, exit_code=code, **exc.fields)
        except Exception as exc:  # noqa: BLE001 - a bug in one target is reported, the others go on
            code, message = 1, f"{type(exc).__name__}: {exc}"
            log.error("internal_error", error=message, exc_info=True)
        if self.stop.stopping and code not in (0, 7):
            # The statement the signal cancelled fails with the server's "canceled" error: it was the signal.
            signum = self.stop.signal_number()
            code, message = 128 + signum, f"stopped by {signal.Signals(signum).name}"
        logging_setup.bind_thread()
        duration_ms = round((time.monotonic() - started) * 1000)
        log.info("target_done", outcome=outcome_name(code), exit_code=code, applied=run.stats.applied,
                 duration_ms=duration_ms)
        return TargetResult(target.name, code, run.stats.applied, message, duration_ms,
                            rows_affected=run.stats.rows_affected, statements_began=run.stats.statements_began)

    def run(self, concurrency: int) -> None:
        """Run the workers; the main thread reports progress and takes the signals.

        The main thread waits on an Event, never in Thread.join(): a signal's exception raised inside join()
        marks the joined thread as finished while it still runs (the bpo-45274 clean-up in CPython's
        Thread._wait_for_tstate_lock releases the lock the running thread holds), and its target
        would go unrecorded. At a terminal it also keeps the live progress line (liveline.py) up to date.
        """
        from premigrate import log as logging_setup

        log = self.command.log
        started = time.monotonic()
        count = min(concurrency, len(self.targets))
        self._running = count
        if count == 0:
            self._all_done.set()
        live = logging_setup.live_line()
        guard = self.command.guard
        if guard is not None:
            guard.add_cancel_hook(self.stop.arriving)  # first: before any statement is cancelled
            if live is not None:
                guard.exit_hooks.append(live.clear)
        for n in range(count):
            threading.Thread(target=self._work, name=f"premigrate-fleet-{n}", daemon=True).start()
        reported = started
        try:
            while not self._all_done.wait(timeout=LIVE_EVERY_S if live is not None else PROGRESS_EVERY_S):
                if live is not None:
                    live.show(self._figures(started).line())
                if time.monotonic() - reported >= PROGRESS_EVERY_S - LIVE_EVERY_S / 2:
                    self._report(log, started)
                    reported = time.monotonic()
        except Interrupted as exc:
            self.stop.signum = exc.signum
            log.warning("fleet_stopping", signal=str(exc), running=self._running,
                        note="every running target stops at its statement: rolled back or recorded")
            while not self._all_done.wait(timeout=LIVE_EVERY_S if live is not None else None):
                if live is not None:
                    live.show(self._figures(started).line(stopping=True))
            raise
        finally:
            if guard is not None:
                guard.remove_cancel_hook(self.stop.arriving)
            if live is not None:
                # The final figures, then the line erased: the log's fleet_progress and fleet_done say the rest.
                live.show(self._figures(started).line(stopping=self.stop.stopping))
                live.clear()
                if guard is not None and live.clear in guard.exit_hooks:
                    guard.exit_hooks.remove(live.clear)
            self._report(log, started)

    def _figures(self, started: float) -> Progress:
        with self._lock:
            return progress(self.summary, time.monotonic() - started)

    def _report(self, log: EventLog, started: float) -> None:
        figures = self._figures(started)
        log.info("fleet_progress", done=figures.done, failed=figures.failed, remaining=figures.remaining,
                 rate_per_s=figures.rate_per_s, eta_s=figures.eta_s)


def run(command: CommandRun, action: TargetAction) -> int:
    """Run `action` (a single-target command) over the fleet; print and record the fleet's summary."""
    config, log = command.config, command.log
    files = command.load()
    targets = [(t, target_config(config, t)) for t in read_targets(command)]
    check_targets(config, targets)
    from premigrate import log as logging_setup

    extra_secrets = [s for _, c in targets for s in c.secrets if s not in config.secrets]
    secrets = config.secrets + tuple(extra_secrets)
    for secret in extra_secrets:  # widens the configured scrubber: the log's format, level and stream stay
        logging_setup.add_secret(secret)
    if not targets:  # an empty ConfigMap or query, or more shards than targets: said, not silently done
        log.warning("fleet_empty", shard=str(config.fleet.shard) if config.fleet.shard else None,
                    note="the list of targets is empty" + (" for this shard" if config.fleet.shard else "")
                    + ": nothing to do")
    concurrency = config.fleet.concurrency or default_concurrency()
    log.info("fleet_started", targets=len(targets), shard=str(config.fleet.shard) if config.fleet.shard else None,
             concurrency=concurrency, fail_fast=config.fleet.fail_fast)
    fleet = Fleet(command, action, files, targets)
    try:
        fleet.run(concurrency)
    finally:
        _conclude(command, fleet, logging_setup.SecretScrubber(secrets))
    return fleet.summary.exit_code if targets else EXIT_OK


def _conclude(command: CommandRun, fleet: Fleet, scrubber: SecretScrubber) -> None:
    # The summary leaves through stdout and files, past the log's scrubber: a driver's error may echo a password.
    summary: dict[str, object] = scrubber.scrub(fleet.summary.as_dict())
    command.stats.applied = sum(r.applied for r in fleet.summary.results)
    command.stats.rows_affected = sum(r.rows_affected for r in fleet.summary.results)
    command.stats.statements_began = any(r.statements_began for r in fleet.summary.results)
    command.fleet_summary = summary
    command.log.info("fleet_done", **{k: v for k, v in summary.items() if k != "failed"},
                     failed_targets=[f["target"] for f in cast(list[dict[str, object]], summary["failed"])])
    if command.config.command == "status":
        return
    from premigrate.commands.report import write_stdout

    write_stdout(json.dumps(summary))


# -- the commands ------------------------------------------------------------------------------------------------------

def run_command(command: CommandRun) -> int:
    """`up`, `status` or `check` with --targets or --targets-query."""
    name = command.config.command
    if name == "up":
        from premigrate.commands import up

        if command.config.apply.dry_run:
            raise UsageError(f"{command.config.named('dry_run')} does not take a fleet; run `premigrate plan` on one "
                             "target, or `premigrate check --targets ...` to see which targets have work")
        return run(command, up.run)
    from premigrate.commands import status
    from premigrate.commands.report import owed_json

    if name == "check":
        return run(command, _check_action(command))
    details: dict[str, dict[str, object]] = {}

    def status_of(target_run: CommandRun) -> int:
        plan = status.current_plan(target_run)
        state = "problem" if plan.problems else "pending" if plan.outstanding or plan.owed else "current"
        details[cast(TargetRun, target_run).target] = {
            "state": state,
            # Recorded as applied, the file changed since (drift) or gone from the folder included.
            "applied": sum(1 for e in plan.entries if e.state in ("applied", "changed", "missing")),
            "pending": len(plan.outstanding),
            "problems": [p.message for p in plan.problems],
            **({"callbacks_owed": owed_json(plan)} if plan.owed else {}),
        }
        return EXIT_OK

    code = run(command, status_of)
    _print_status(command, details)
    return code


def _check_action(command: CommandRun) -> TargetAction:
    """`check` on each target; with --wait and --timeout, one deadline for the whole fleet: a target checked after
    it is read once, as a plain `check` would, instead of each target waiting its own --timeout in turn."""
    from premigrate.commands import status

    check = command.config.check
    if not check.wait or check.timeout is None:
        return status.check
    deadline = time.monotonic() + check.timeout

    def until_deadline(target_run: CommandRun) -> int:
        left = max(0.0, deadline - time.monotonic())
        target_run.config = replace(target_run.config, check=replace(target_run.config.check, timeout=left))
        return status.check(target_run)

    return until_deadline


def _print_status(command: CommandRun, details: dict[str, dict[str, object]]) -> None:
    from premigrate.commands.report import write_stdout

    summary = command.fleet_summary or {}
    failed = {cast(str, f["target"]): f for f in cast(list[dict[str, object]], summary.get("failed", []))}
    rows: list[dict[str, object]] = []
    for name in sorted(set(details) | set(failed)):
        if name in details:
            rows.append({"target": name, **details[name]})
        else:
            rows.append({"target": name, "state": "error", "exit_code": failed[name]["exit_code"],
                         "error": failed[name]["error"]})
    states = [cast(str, r["state"]) for r in rows]
    total = {"targets": summary.get("targets", len(rows)),
             **{state: states.count(state) for state in ("current", "pending", "problem", "error")},
             "exit_code": summary.get("exit_code", 0)}
    if command.config.json_output:
        write_stdout(json.dumps({"targets": rows, "total": total}, default=str))
        return
    width = max([len(r["target"]) for r in rows if isinstance(r["target"], str)] + [6])
    lines = [f"{'TARGET':<{width}}  {'STATE':<8}  APPLIED  PENDING"]
    for row in rows:
        note = row.get("error") or ("afterMigrate owed" if row.get("callbacks_owed") else "")
        lines.append(f"{row['target']!s:<{width}}  {row['state']!s:<8}  {row.get('applied', '-')!s:>7}  "
                     f"{row.get('pending', '-')!s:>7}" + (f"  {note}" if note else ""))
    lines.append(", ".join(f"{k}: {v}" for k, v in total.items()))
    write_stdout("\n".join(lines))
