"""`premigrate verify`: prove every down part of the folder on a scratch database (engine/verify.py).

The database verify works in is a scratch one: created beside the configured database and always dropped
(engine/scratch.py), or the one --scratch-url names. Each migration goes up and down through the executor, the path
`up` and `down` take, with its history row; schemas are compared through engine/schema_snapshot.py.

Refused, with nothing created: a configured database that has premigrate history (verify is for CI and development
servers, never beside a migrated database), and a --scratch-url database that holds tables or premigrate history
unless --yes lets verify empty it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from premigrate.commands.common import CommandRun
from premigrate.commands.report import write_stdout
from premigrate.config import Config
from premigrate.drivers.base import Driver
from premigrate.engine.executor import Executor, RunStats
from premigrate.engine.schema_snapshot import snapshot
from premigrate.engine.scratch import Scratch, recreate, scratch_database
from premigrate.engine.verify import EXIT_APPLY_FAILED, FAILURES, MigrationResult, Step, VerifyReport, verify
from premigrate.errors import PremigrateError, UsageError
from premigrate.log import SecretScrubber
from premigrate.model.dsn import Dsn
from premigrate.model.migrations import Migration
from premigrate.model.planner import Reason
from premigrate.model.planner import Step as PlanStep
from premigrate.model.schema_diff import Schema


class StepFailed(Exception):
    """An up or down that failed in the scratch database, its message rephrased for verify (in_scratch)."""


_SCRATCH_ONLY = ("verify's history rows are in its scratch database, not in the configured one: there is nothing "
                 "to repair; fix the file and run verify again")


def in_scratch(message: str) -> str:
    """The executor's error without its advice to run `premigrate repair`: that advice is about a history row, and
    verify's history rows live in its scratch database (dropped, or emptied by the next verify), never in the
    configured database an operator would repair."""
    clauses = message.split("; ")
    kept = [clause for clause in clauses if "premigrate repair" not in clause]
    return message if len(kept) == len(clauses) else "; ".join([*kept, _SCRATCH_ONLY])


class ExecutorTarget:
    """verify's four operations on the scratch database: up and down through the executor, one migration each."""

    def __init__(self, command: CommandRun, scratch: Scratch, migrations: dict[str, Migration]) -> None:
        self.command = command
        self.scratch = scratch
        self.migrations = migrations
        self.stats = RunStats()
        self.driver: Driver | None = None
        self._connect()

    def _connect(self) -> None:
        driver = self.command.sessions.connect(read_only=False)
        try:
            driver.ensure_schema()
            driver.ensure_history_table()
        except BaseException:
            driver.close()
            raise
        self.driver = driver

    def _session(self) -> Driver:
        if self.driver is None:
            self._connect()
        assert self.driver is not None
        return self.driver

    def _executor(self) -> Executor:
        command = self.command
        return Executor(self._session(), command.shapes, command.config, command.log,
                        applied_by=command.sessions.host, guard=command.guard, stats=self.stats)

    def up(self, migration_id: str) -> None:
        migration = self.migrations[migration_id]
        reason = Reason.PENDING if migration.kind == "versioned" else Reason.NEW
        try:
            self._executor().apply([PlanStep(migration, reason)])
        except PremigrateError as exc:
            raise StepFailed(in_scratch(exc.message)) from exc

    def down(self, migration_id: str) -> None:
        row = next((r for r in self._session().read_history() if r.migration_id == migration_id), None)
        if row is None:
            raise RuntimeError(f"{migration_id} is not recorded as applied")
        try:
            self._executor().roll_back([(row, self.migrations[migration_id])])
        except PremigrateError as exc:
            raise StepFailed(in_scratch(exc.message)) from exc

    def snapshot(self) -> Schema:
        return snapshot(self._session(), self.scratch.dsn.dialect, self.scratch.schema,
                        history_table=self.command.config.history_table_name)

    def reset(self) -> None:
        self.close()
        recreate(self.scratch)
        self._connect()

    def close(self) -> None:
        if self.driver is not None:
            driver, self.driver = self.driver, None
            driver.close()


def run(command: CommandRun) -> int:
    config, log = command.config, command.log
    files = command.load()
    # Placeholders resolved (an unknown one is exit 2) and down parts read before anything is created.
    # A changeset this run's filters leave out (model/listed.py: skip_reason) is no more verified than applied.
    migrations = {m.id: command.policy.resolve(m) for m in files.all if m.skip_reason is None}
    given = config.verify.scratch
    if given is None:
        steps = _steps(command, migrations)
        _refuse_migrated(command)
        with scratch_database(config.dsn) as scratch:
            # A signal from here on stops a statement in the scratch database, which the `with` drops on the way out.
            command.stats.stopped_note = (f"stopped; verify worked in its scratch database {scratch.name}, which was "
                                          "dropped; the configured database was not touched")
            return _verify_in(command, scratch, migrations, steps)
    _refuse_other_dialect(given, config)
    scratch = _given_scratch(given, config)
    scratch_run = CommandRun(_config_for(config, scratch), log, command.guard, command.stats)
    steps = _steps(scratch_run, migrations)  # split as the scratch database's dialect splits them
    command.stats.stopped_note = (f"stopped; verify worked in the {config.named('scratch_url')} database "
                                  f"{scratch.dsn.redacted()}, "
                                  "which is left as the signal found it (a later verify empties it only with --yes)")
    _prepare_given(scratch_run, scratch)
    return _verify_in(command, scratch, migrations, steps)


def _steps(command: CommandRun, migrations: dict[str, Migration]) -> list[Step]:
    return [Step(m.id, m.down_sql is not None and bool(command.shapes.down_statements(m)))
            for m in migrations.values()]


def _config_for(config: Config, scratch: Scratch) -> Config:
    """The run's configuration pointed at the scratch database."""
    return replace(config, dsn=scratch.dsn, schema=scratch.schema if scratch.schema else config.schema)


def _verify_in(command: CommandRun, scratch: Scratch, migrations: dict[str, Migration], steps: list[Step]) -> int:
    log = command.log
    log.info("verify_started", scratch=scratch.name, scratch_kind=scratch.kind, migrations=len(steps))
    scratch_run = CommandRun(_config_for(command.config, scratch), log, command.guard, command.stats)
    target = ExecutorTarget(scratch_run, scratch, migrations)
    try:
        report = verify(steps, target, on_result=lambda result: _log_result(command, result))
    finally:
        target.close()
    _print(command, report)
    if report.exit_code == EXIT_APPLY_FAILED:
        log.error("verify_apply_failed", migration_id=report.apply_failed, error=report.apply_error,
                  exit_code=report.exit_code)
    counts = {status: sum(1 for r in report.results if r.status == status) for status in ("verified", "no_down")}
    (log.info if report.exit_code == 0 else log.error)(
        "verify_finished", exit_code=report.exit_code, verified=counts["verified"],
        not_verified=sum(1 for r in report.results if not r.ok), no_down=counts["no_down"], scratch=scratch.name)
    return report.exit_code


def _log_result(command: CommandRun, result: MigrationResult) -> None:
    fields = {"migration_id": result.migration_id, "status": result.status, "note": result.message,
              "differences": [d.render() for d in result.differences]}
    if result.status in FAILURES:
        command.log.error("verify_migration_failed", **fields)
    else:
        command.log.info("verify_migration", **fields)


def _print(command: CommandRun, report: VerifyReport) -> None:
    text = json.dumps(report.as_dict()) if command.config.json_output else "\n".join(report.lines())
    write_stdout(str(SecretScrubber(command.config.secrets).scrub(text)))


def _refuse_migrated(command: CommandRun) -> None:
    """No scratch database beside a migrated database: verify is for CI and development servers."""
    if command.sessions.database_missing():
        return
    with command.sessions.session(read_only=True) as driver:
        history = driver.read_history() if driver.history_exists() else []
    if history:
        raise UsageError(
            f"verify refused: {command.config.dsn.redacted()} has premigrate history ({len(history)} rows): verify "
            "creates its scratch database beside the configured one and never does so next to a migrated "
            "database; point DATABASE_URL at a CI or development server, or name a scratch database with "
            "--scratch-url")


def _refuse_other_dialect(scratch: Dsn, config: Config) -> None:
    """A scratch database of another type proves nothing about the configured one: a folder that fails on
    PostgreSQL may well verify on SQLite. With no database configured (the SQLite default) any type is accepted."""
    if config.default_sqlite or scratch.dialect == config.dsn.dialect:
        return
    raise UsageError(
        f"verify refused: {config.named('scratch_url')} is a {scratch.dialect} database "
        f"({scratch.redacted()}) but the configured database ({config.dsn_source} {config.dsn.redacted()}) is "
        f"{config.dsn.dialect}: a folder verified on one database type proves nothing on another; name a scratch "
        f"database of the configured type")


def _given_scratch(dsn: Dsn, config: Config) -> Scratch:
    """The --scratch-url database as a Scratch that recreate() can empty (it is never dropped at the end)."""
    if dsn.dialect == "sqlite":
        return Scratch(dsn, Path(dsn.database or "").name, "file", dsn)
    if dsn.dialect == "mysql":
        if not dsn.database:
            raise UsageError(f"{config.named('scratch_url')} names no database; add it to the URL "
                             "(mysql://user@host/scratch)")
        return Scratch(dsn, dsn.database, "database", dsn)
    # PostgreSQL: the schema migrations run in (--schema, else public) is what verify empties.
    schema = config.schema or "public"
    return Scratch(dsn, schema, "schema", dsn, schema=schema)


def _prepare_given(scratch_run: CommandRun, scratch: Scratch) -> None:
    """A --scratch-url database that holds tables or premigrate history is emptied only with --yes."""
    sessions = scratch_run.sessions
    if scratch.kind == "file" and sessions.database_missing():
        Path(scratch.dsn.database or "").touch()
        return
    with sessions.session(read_only=True) as driver:
        tables = driver.list_tables()
        history = driver.read_history() if driver.history_exists() else []
    if not tables:
        return
    what = f"premigrate history ({len(history)} rows)" if history else f"{len(tables)} tables"
    if not scratch_run.config.verify.yes:
        raise UsageError(
            f"verify refused: the {scratch_run.config.named('scratch_url')} database {scratch.dsn.redacted()} holds "
            f"{what}; verify empties the database it works in "
            f"({'schema ' + scratch.name if scratch.kind == 'schema' else scratch.name}): "
            "pass --yes to let it, or name an empty database")
    scratch_run.log.warning("verify_emptying_scratch", scratch=scratch.dsn.redacted(), holds=what)
    recreate(scratch)
