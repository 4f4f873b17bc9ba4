"""`premigrate down`: roll back applied migrations newest first, with their down parts (--steps N or --to V).

Refused, with nothing touched, while an earlier run is unfinished, and when any target has no down part, changed
since it was applied, or has a down part that cannot run the way it would be wrapped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from premigrate.commands.common import (
    EXIT_OK, CommandRun, missing_history, refuse_missing_database, refuse_problems, require_target,
)
from premigrate.drivers.base import STATE_APPLIED, Driver, HistoryRow
from premigrate.errors import UsageError, ValidationFailed
from premigrate.model.listed import checksum_accepted
from premigrate.model.migrations import Migration, MigrationSet
from premigrate.model.modes import down_blocked_statement
from premigrate.model.planner import Plan
from premigrate.model.unknown_rows import unknown_value
from premigrate.model.versions import Version

# How each format writes a down part (docs/formats-reference.md), for the refusal of a migration that has none.
DOWN_PART = {
    "plain": "a .down.sql file beside it (or `-- migrate:up` and `-- migrate:down` sections in it)",
    "dbmate": "a `-- migrate:down` section", "golang-migrate": "its .down.sql file", "sqlx": "its .down.sql file",
    "flyway": "its undo file (U<version>__<description>.sql)", "goose": "a `-- +goose Down` section",
    "sql-migrate": "a `-- +migrate Down` section", "diesel": "its down.sql", "sqitch": "its revert script",
    "liquibase": "`--rollback` lines in the changeset",
}
NO_DOWN_FORMATS = ("atlas", "prisma", "drizzle")  # their tools have no down migrations


def run(command: CommandRun, confirm: Callable[[str], bool] | None = None) -> int:
    config, log = command.config, command.log
    files = command.load()
    steps, target = _steps_or_target(command)
    if not files.listed:  # a changelog's changes have no versions at all: _listed_targets says so
        require_target(config, files)
    if not config.down.yes and (not config.stdin_is_tty or confirm is None):
        raise UsageError("down rolls back applied migrations: pass --yes to confirm (required when stdin is not "
                         "a terminal)")
    # Read without the lock first: a question nobody answers must not block every other runner (what was confirmed
    # is checked again under the lock), and a database, --table or --schema that names no history is refused before
    # a write session or the runner lock creates anything (a SQLite file, a lease table).
    refuse_missing_database(command)
    with command.sessions.session(read_only=True) as driver:
        history = _history(command, driver)
    targets = _targets(command, files, history, steps, target)
    if not targets:
        log.info("nothing_to_do", note="no applied migration to roll back")
        return EXIT_OK
    _reversible(command, targets, {m.id: m for m in files.all})
    confirmed: list[str] | None = None
    if not config.down.yes and confirm is not None:
        ids = ", ".join(r.migration_id for r in targets)
        if not confirm(f"Roll back {len(targets)} migration(s), newest first: {ids}? [y/N] "):
            raise UsageError("down cancelled: nothing was rolled back")
        confirmed = [r.migration_id for r in targets]
    with command.sessions.locked_session() as (driver, lock):
        history = _history(command, driver)
        targets = _targets(command, files, history, steps, target)
        if not targets:
            log.info("nothing_to_do", note="no applied migration to roll back")
            return EXIT_OK
        reversible = _reversible(command, targets, {m.id: m for m in files.all})
        if confirmed is not None and confirmed != [r.migration_id for r in targets]:
            raise ValidationFailed(
                f"down refused, nothing was rolled back: the history changed while the question was asked (now "
                f"{', '.join(r.migration_id for r in targets)}, confirmed {', '.join(confirmed)}); run down again")
        callbacks = command.callbacks
        if callbacks is not None:
            callbacks.prepare()
        log.info("rollback_plan", count=len(targets), versions=[r.migration_id for r in targets])
        executor = command.executor(driver, lock)
        with executor.running():  # a signal stops the callbacks' statements too (SQLite's cancel is a hook)
            if callbacks is not None:
                callbacks.run(driver, "beforeDown")
            executor.roll_back(list(zip(targets, reversible)))
            if callbacks is not None:
                callbacks.run(driver, "afterDown")
    return EXIT_OK


def _steps_or_target(command: CommandRun) -> tuple[int | None, Version | None]:
    """--steps N or --to V, exactly one. A flag has already beaten the other option's variable (settings.py:
    _exclusive), so both here were given the same way: named by what set them, the fix is plain."""
    config = command.config
    steps, target = config.down.steps, config.down.to
    if steps is not None and target is not None:
        raise UsageError(f"down takes one of --steps N or --to VERSION, but {config.option_text('steps', steps)} and "
                         f"{config.option_text('to', target)} are both given; keep only one of them")
    if steps is None and target is None:
        raise UsageError("down needs --steps N (roll back the N newest migrations) or --to VERSION (roll back every "
                         "migration after VERSION; --to 0 rolls back all of them)")
    return steps, target


def _history(command: CommandRun, driver: Driver) -> list[HistoryRow]:
    """The history to roll back from. No history table at all means premigrate never migrated this database with
    this table and schema: far more often a mistyped setting than a wish to roll back nothing, so it is refused
    where an existing history with nothing applied is nothing to do."""
    refusal = missing_history(command, "down refused", driver)
    if refusal is not None:
        raise refusal
    return driver.read_history()


def _targets(command: CommandRun, files: MigrationSet, history: Sequence[HistoryRow], steps: int | None,
             target: Version | None) -> list[HistoryRow]:
    """The applied rows to roll back, newest first; refused while an earlier run is unfinished."""
    _refuse_unfinished(command, files, history)
    if files.listed:
        return _listed_targets(files, history, steps, target, command.config.option_text("to", target))
    from premigrate.model.ordering import Ordering

    order = Ordering(files)  # newest by the folder's order: a diesel folder's is its versions' text order
    applied = sorted((r for r in history if r.version is not None and r.state == STATE_APPLIED),
                     key=order.of_row, reverse=True)
    return [r for r in applied if order.of_row(r) > order.of_version(target)] if target is not None \
        else applied[:steps]


def _listed_targets(files: MigrationSet, history: Sequence[HistoryRow], steps: int | None,
                    target: Version | None, target_text: str) -> list[HistoryRow]:
    """A changelog's applied changes, last executed first (Liquibase's rollback-count order: ORDEREXECUTED,
    which a rerun moves to the end); changes applied in one instant by their listing order. `target_text`: the --to
    option as it was given (Config.option_text), for its refusal."""
    if target is not None:
        raise UsageError(f"{target_text}: the changes of a changelog have no versions; roll back with --steps N")
    position = {m.id: m.position for m in files.listed}
    applied = sorted((r for r in history if r.state == STATE_APPLIED),
                     key=lambda r: (r.applied_at, position.get(r.migration_id, 0)), reverse=True)
    return applied[:steps]


def _refuse_unfinished(command: CommandRun, files: MigrationSet, history: Sequence[HistoryRow]) -> None:
    """An unfinished run (failed, in doubt, interrupted, half rolled back) must be settled first."""
    # A row this premigrate cannot read may say anything, an applied state included: the planner refuses it.
    unfinished = [r for r in history if r.state != STATE_APPLIED or unknown_value(r) is not None]
    if not unfinished:
        return
    plan = command.plan(files, history)
    problems = [p for p in plan.problems if p.migration_id in {r.migration_id for r in unfinished}]
    if problems:
        refuse_problems(command.log, Plan(problems=problems))
    raise ValidationFailed(
        f"down refused: {unfinished[0].script} (version {unfinished[0].migration_id}) is "
        f"{unfinished[0].state}; run `premigrate up` to finish it first")


def _reversible(command: CommandRun, targets: Sequence[HistoryRow], by_id: dict[str, Migration]) -> list[Migration]:
    """Every target must have a non-empty down part and an unchanged file; otherwise nothing is touched."""
    reasons = []
    migrations = []
    for row in targets:
        migration = by_id.get(row.migration_id)
        if migration is None:
            reasons.append(f"{row.script} (version {row.migration_id}) is not in the folder "
                           f"{str(command.config.migrations_dir)!r} (its down part is in that file): restore it from "
                           f"version control, or point {command.config.named('dir')} at the folder that has it")
            continue
        if not checksum_accepted(migration, row.checksum):
            reasons.append(f"{migration.script} (version {migration.id}) changed since it was applied: restore the "
                           "file as it was applied (from version control) to roll it back, or, after a comments-only "
                           "edit, record its new checksum with `premigrate repair --realign-checksums`")
            continue
        if migration.down_sql is None:
            reasons.append(_no_down_part(migration))
            continue
        migration = command.policy.resolve(migration)
        allow_empty = command.config.down.allow_empty_down
        if not command.shapes.down_statements(migration) and not allow_empty and not _declared_empty(migration):
            reasons.append(f"{migration.down_script} (version {migration.id}) has an empty down part; if undoing "
                           "nothing is right for it (its up part is safe to run again), pass --allow-empty-down "
                           "(PREMIGRATE_ALLOW_EMPTY_DOWN=1) to record it as rolled back without running anything")
            continue
        blocked = down_blocked_statement(command.shapes, migration)
        if blocked:
            reasons.append(blocked)
            continue
        migrations.append(migration)
    if reasons:
        for reason in reasons:
            command.log.error("rollback_refused", error=reason)
        raise ValidationFailed(f"down refused, nothing was rolled back: {'; '.join(reasons)}")
    return migrations


def _no_down_part(migration: Migration) -> str:
    """Why `migration` cannot be rolled back, and what would let it: the way its format writes a down part."""
    where = f"{migration.script} (version {migration.id})"
    if migration.format in NO_DOWN_FORMATS:
        return (f"{where} has no down part, and {migration.format} migrations have none: undo it with a new "
                "migration instead")
    how = DOWN_PART.get(migration.format or "", "a down part in its format (a down section or a down file)")
    return f"{where} has no down part: write {how} to roll it back"


def _declared_empty(migration: Migration) -> bool:
    """A Liquibase changeset whose rollback says `--rollback empty` (or `not required`): nothing to undo, on purpose."""
    return migration.format == "liquibase" and getattr(migration.source, "rollback", None) == ()
