"""`premigrate repair`: what an unfinished run left behind, and the explicit ways out of it.

Without an action it reports (read-only, no lock): each failed, interrupted or half rolled back migration, with the
statement it stopped at, its error, what took effect and the exact commands that settle it; and each applied file
whose checksum changed since. Each action takes the runner lock, re-reads the history under it (another runner may
have settled or changed the row meanwhile), writes its change and logs it:

    --resume [--retry-current | --skip-current] [--version V]   continue where it stopped, stepwise, as `up` does
    --mark-applied V                                            the operator finished it by hand
    --forget V                                                  drop the row: the next `up` runs the whole file
    --realign-checksums [--version V]                           record the checksum of edited applied files

Exit codes: 0 done, or nothing to repair; 2 a flag combination that does not make sense, a version that names
nothing, or an in-doubt statement without --retry-current/--skip-current; 5 the history does not allow the action
(nothing unfinished, an applied row, a statement that ran has changed, a realignment whose SQL changed);
6 the runner lock was not acquired in time.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from premigrate import __version__
from premigrate.commands import report
from premigrate.commands.common import CommandRun, missing_history, refuse_missing_database
from premigrate.commands.repair.survey import (
    ChecksumChange, row_order, split, survey, survey_json, survey_text,
)
from premigrate.config import Config
from premigrate.drivers.base import STATE_APPLIED, STATE_FAILED, STATE_IN_PROGRESS, STATE_ROLLING_BACK, HistoryRow
from premigrate.errors import UsageError, ValidationFailed
from premigrate.model import owed
from premigrate.model.migrations import MigrationSet
from premigrate.model.planner import (
    Reason, Step, changed_statement_text, first_changed_statement, resumable_rows, took_effect,
)
from premigrate.model.unknown_rows import unknown_message, unknown_value
from premigrate.model.versions import Version, is_version

# -- the command ------------------------------------------------------------------------------------------------------

def run(command: CommandRun) -> int:
    config = command.config
    action = _action(config)
    files = command.load()
    if action is None:
        return _report(command, files)
    refuse_missing_database(command)  # each action's write session would create a missing SQLite file
    refusal = missing_history(command, f"repair {_flag(action)} refused")
    if refusal is not None:
        raise refusal
    if action == "resume":
        return _resume(command, files)
    if action == "mark_applied":
        return _mark_applied(command, files)
    if action == "forget":
        return _forget(command, files)
    return _realign(command, files)


def _action(config: Config) -> str | None:
    """The one action asked for; flag combinations that do not make sense are exit 2 before anything connects."""
    chosen = [name for name, given in (
        ("resume", config.repair.resume),
        ("mark_applied", config.repair.mark_applied is not None),
        ("forget", config.repair.forget is not None),
        ("realign_checksums", config.repair.realign_checksums),
    ) if given]
    # Each option is named by what set it: a PREMIGRATE_REPAIR_* variable is not blamed on a flag nobody passed.
    named = config.named
    if len(chosen) > 1:
        raise UsageError(f"repair does one thing at a time: choose one of "
                         f"{', '.join(named('repair_' + c) for c in chosen)}")
    action = chosen[0] if chosen else None
    retry, skip = config.repair.retry_current, config.repair.skip_current
    if (retry or skip) and action != "resume":
        raise UsageError(f"{named('repair_retry_current' if retry else 'repair_skip_current')} goes with --resume")
    if retry and skip:
        raise UsageError(f"{named('repair_retry_current')} and {named('repair_skip_current')} contradict each other: "
                         "choose the one that says whether the statement took effect")
    if config.repair.version is not None and action not in ("resume", "realign_checksums"):
        raise UsageError(f"{named('repair_version')} goes with --resume or --realign-checksums (--mark-applied and "
                         "--forget name their version themselves)")
    return action


def _flag(action: str) -> str:
    return action.replace("_", "-")


def _report(command: CommandRun, files: MigrationSet) -> int:
    config = command.config
    refuse_missing_database(command)
    with command.sessions.session(read_only=True) as driver:
        # No history table: a mistyped --table, schema or database far more often than a database never migrated;
        # "nothing to repair" would pass it (the actions refuse it the same way).
        refusal = missing_history(command, "repair", driver)
        if refusal is not None:
            raise refusal
        history, holder = command.sessions.history_and_holder(driver)  # the report does not wait for the lock
        owed = driver.owed_callbacks
    result = replace(survey(files, history, config.dsn.dialect, command.policy.resolve), run_in_progress=holder,
                     owed=owed)
    report.write_stdout(survey_json(result, database=config.dsn.redacted(), table=config.table) if config.json_output
                        else survey_text(result))
    command.log.info("repair_report", unfinished=[u.row.migration_id for u in result.unfinished],
                    checksum_changes=[c.row.migration_id for c in result.checksum_changes],
                    needs_repair=result.needs_repair, run_in_progress=holder)
    return 5 if result.needs_repair else 0


def _same_id(given: str, row_or_id: HistoryRow | str) -> bool:
    """`3`, `003` and `3.0` name the same version; a repeatable is named by its id, `R:<description>`."""
    migration_id = row_or_id if isinstance(row_or_id, str) else row_or_id.migration_id
    if given.strip() == migration_id:
        return True
    try:
        return Version.parse(given.strip()) == Version.parse(migration_id)
    except ValueError:
        return False


def _find(history: Sequence[HistoryRow], files: MigrationSet, given: str, flag: str,
          pending: str = "it is pending, not unfinished") -> HistoryRow:
    """The row `given` names; exit 2 when it names nothing at all, 5 when it names a migration without a row
    (`pending` says why that row is not one the action works on)."""
    for row in history:
        if _same_id(given, row):
            return row
    for migration in files.all:
        if _same_id(given, migration.id):
            raise ValidationFailed(f"{flag} {given}: {migration.script} has no row in the history table: {pending}; "
                                   "`premigrate up` applies it")
    if not is_version(given.strip()):
        raise UsageError(f"{flag} {given}: {given!r} is not a version (digits, optionally dotted: 3, 20260113155307, "
                         "1.2), nor the id of a migration in the history table or in the folder (a repeatable's is "
                         "R:<description>)")
    raise UsageError(f"{flag} {given}: no migration {given} in the history table or in the folder")


def _where(row: HistoryRow) -> str:
    return f"{row.script} (version {row.migration_id})" if row.version else row.script


def _status(row: HistoryRow) -> str:
    k = row.statement_started if row.statement_started > row.statements_done else None
    at = f"statement {k} of {row.statements_total}" if k else \
        f"after statement {row.statements_done} of {row.statements_total}"
    described = {str(STATE_FAILED): f"failed at {at}", str(STATE_IN_PROGRESS): f"interrupted at {at}",
                 str(STATE_ROLLING_BACK): f"its `down` stopped at {at}"}
    return described.get(row.state, row.state)


def _output(config: Config, text: str, document: dict[str, Any]) -> None:
    report.write_stdout(json.dumps(document, indent=2) if config.json_output else text)


def _resume(command: CommandRun, files: MigrationSet) -> int:
    config = command.config
    by_id = {m.id: m for m in files.all}
    with command.sessions.locked_session() as (driver, lock):
        history = driver.read_history()
        row = _resume_target(history, files, config.repair.version)
        migration = by_id.get(row.migration_id)
        if migration is None:
            raise ValidationFailed(f"repair --resume: {_where(row)} is not in the migrations folder: restore the "
                                   f"file to resume it, or drop its row with `premigrate repair --forget "
                                   f"{row.migration_id}`")
        step = Step(command.policy.resolve(migration), Reason.RESUME, row)
        statements = split(step.migration, config.dsn.dialect)
        changed = first_changed_statement(statements, row)
        if changed is not None:
            now = (f"is now line {statements[changed - 1].line}" if changed <= len(statements)
                   else "is no longer in the file")
            raise ValidationFailed(
                f"repair --resume refused: {changed_statement_text(changed, row)} of {_where(row)} already ran, but "
                f"the file's statement {changed} ({now}) is not the one that ran (its hash differs from the recorded "
                "one); restore the "
                f"file as it was, or settle it by hand with `premigrate repair --mark-applied {row.migration_id}` or "
                f"`premigrate repair --forget {row.migration_id}`", script=row.script)
        done, current, decision = _decide(row, len(statements), config)
        resumed = row.evolve(state=STATE_IN_PROGRESS, statements_done=done, statement_started=done,
                             statement_hashes=tuple(s.digest for s in statements[:done]), error=None)
        command.log.info("repair_resumed", **_fields(row), previous_state=row.state, status=_status(row),
                        current_statement=current, current=decision, from_statement=done + 1,
                        statements=len(statements))
        command.executor(driver, lock).apply([replace(step, row=resumed)])
    _output(config, f"resumed {_where(row)} at statement {done + 1} of {len(statements)}: applied. Run "
                    "`premigrate up` to apply what else is pending.",
            {"action": "resume", "id": row.migration_id, "script": row.script, "from_statement": done + 1,
             "statements": len(statements), "current_statement": current, "current": decision,
             "state": STATE_APPLIED})
    return 0


def _resume_target(history: Sequence[HistoryRow], files: MigrationSet, wanted: str | None) -> HistoryRow:
    candidates = resumable_rows(history)
    if wanted is not None:
        row = _find(history, files, wanted, "--version")
        if row not in candidates:
            raise ValidationFailed(f"repair --resume --version {wanted}: {_not_resumable(row)}")
        return row
    if not candidates:
        stuck = [r for r in sorted(history, key=row_order) if r.state != STATE_APPLIED or unknown_value(r) is not None]
        raise ValidationFailed("repair --resume: nothing to resume: " + (
            _not_resumable(stuck[0]) if stuck else "no failed or interrupted migration in the history"))
    if len(candidates) > 1:
        ids = ", ".join(r.migration_id for r in sorted(candidates, key=row_order))
        raise UsageError(f"repair --resume: {len(candidates)} unfinished migrations ({ids}); name the one to "
                         "resume with --version V")
    return candidates[0]


def _not_resumable(row: HistoryRow) -> str:
    """Why --resume does not continue this row, and what settles it instead."""
    if unknown_value(row) is not None:
        return unknown_message(row, _where(row))
    if row.state == STATE_ROLLING_BACK:
        return (f"{_where(row)} is a `down` that stopped part-way (rolling_back), which cannot be resumed: settle it "
                f"with `premigrate repair --forget {row.migration_id}` if the rollback is complete or `premigrate "
                f"repair --mark-applied {row.migration_id}` if the migration's changes are in place (`premigrate "
                "repair` shows which statements of its down part ran)")
    return f"{_where(row)} is {row.state}: there is nothing to resume"


def _decide(row: HistoryRow, total: int, config: Config) -> tuple[int, int | None, str | None]:
    """(statements done, the current statement, "retried" or "skipped") once the operator has said whether the
    statement that failed or was running took effect."""
    retry, skip = config.repair.retry_current, config.repair.skip_current
    k = row.statement_started if row.statement_started > row.statements_done else None
    if k is None:
        if retry or skip:
            raise UsageError(f"{_where(row)} stopped between statements {row.statements_done} and "
                             f"{row.statements_done + 1}: no statement is in doubt; drop "
                             f"--{'retry' if retry else 'skip'}-current")
        return row.statements_done, None, None
    if retry and row.state == STATE_FAILED:
        # The database said the statement failed, so nobody has to say whether it took effect: accepting the flag
        # would suggest it changes something.
        raise UsageError(f"{_where(row)} failed at statement {k}, which --resume runs again by itself: "
                         "--retry-current is only for a statement in doubt (a run stopped while it ran); drop it")
    if k > total:
        raise ValidationFailed(f"repair --resume refused: {_where(row)} stopped at statement {k}, but the file now "
                               f"has {total}; restore the file as it was")
    if row.state == STATE_IN_PROGRESS and not (retry or skip):
        raise UsageError(f"{_where(row)}: statement {k} is in doubt (the run stopped while it ran); check the "
                         f"database and choose: --retry-current if statement {k} did not take effect, "
                         "--skip-current if it did")
    if skip:
        return k, k, "skipped"
    return row.statements_done, k, "retried"


def _fields(row: HistoryRow) -> dict[str, Any]:
    return {"version": row.version, "migration_id": row.migration_id, "script": row.script}


def _unfinished_row(history: Sequence[HistoryRow], files: MigrationSet, given: str, flag: str) -> HistoryRow:
    row = _find(history, files, given, flag)
    if unknown_value(row) is not None:
        if flag == "--forget":  # dropping a row needs no understanding of it: the operator answers for it
            return row
        raise ValidationFailed(f"{flag} {given}: {unknown_message(row, _where(row))}")
    if row.state == STATE_APPLIED:
        if flag == "--forget":
            raise ValidationFailed(
                f"--forget {given}: {_where(row)} is applied; --forget only drops an unfinished row. Rolling back an "
                "applied migration is `premigrate down`'s job")
        raise ValidationFailed(f"--mark-applied {given}: {_where(row)} is applied already: nothing to mark")
    return row


def _mark_applied(command: CommandRun, files: MigrationSet) -> int:
    config = command.config
    given = str(config.repair.mark_applied)
    by_id = {m.id: m for m in files.all}
    with command.sessions.locked_session() as (driver, _lock):
        row = _unfinished_row(driver.read_history(), files, given, "--mark-applied")
        migration = by_id.get(row.migration_id)
        if migration is None:
            raise ValidationFailed(f"--mark-applied {given}: {_where(row)} is not in the migrations folder, so its "
                                   "checksum cannot be recorded; restore the file first (or drop the row with "
                                   f"`premigrate repair --forget {row.migration_id}`)")
        resolved = command.policy.resolve(migration)
        statements = split(resolved, config.dsn.dialect)
        n = len(statements)
        now = datetime.now(timezone.utc)
        marked = row.evolve(
            state=STATE_APPLIED, checksum=migration.checksum, statements_total=n, statements_done=n,
            statement_started=n, statement_hashes=tuple(s.digest for s in statements), error=None,
            premigrate_version=__version__,
            # An interrupted `down` settled this way: the migration stays applied since it first was.
            **({} if row.state == STATE_ROLLING_BACK else {"applied_at": now, "applied_by": command.sessions.host}))
        driver.update_row(marked)  # conditional on the lock (advisory) or fenced (table mode): HeldLock.protect
        command.log.info("repair_marked_applied", **_fields(row), previous_state=row.state, status=_status(row),
                        statements=n, checksum=migration.checksum,
                        checksum_before=row.checksum if row.checksum != migration.checksum else None)
    _output(config, f"marked {_where(row)} applied (it was {row.state}: {_status(row)}); its checksum is now "
                    f"{migration.checksum}",
            {"action": "mark_applied", "id": row.migration_id, "script": row.script, "previous_state": row.state,
             "state": STATE_APPLIED, "checksum": migration.checksum})
    return 0


def _forget(command: CommandRun, files: MigrationSet) -> int:
    config = command.config
    given = str(config.repair.forget)
    with command.sessions.locked_session() as (driver, lock):
        history = driver.read_history()
        # An owed afterMigrate (model/owed.py) is forgotten by its id like a row: the operator ran it by hand.
        row = _unfinished_row(history + list(driver.owed_callbacks), files, given, "--forget")
        lock.check_with(driver)
        driver.delete_row(row.migration_id)
        command.log.info("repair_forgotten", **_fields(row), previous_state=row.state, status=_status(row),
                        statements_done=row.statements_done, statements_total=row.statements_total)
    unknown = unknown_value(row)
    if row.kind == owed.KIND:
        text = f"forgot the owed {row.description}: the next `premigrate up` does not run it"
    elif unknown is not None:
        text = (f"forgot {_where(row)} (it had {unknown}, unknown to this premigrate): the next `premigrate up` "
                "treats the file as pending")
    elif row.state == STATE_ROLLING_BACK:
        text = (f"forgot {_where(row)} ({_status(row)}): it is no longer recorded as applied; the next "
                "`premigrate up` applies it again")
    else:
        text = (f"forgot {_where(row)} ({_status(row)}; {took_effect(row.statements_done)}): the next "
                "`premigrate up` runs the whole file again")
    _output(config, text, {"action": "forget", "id": row.migration_id, "script": row.script,
                           "previous_state": row.state, "statements_done": row.statements_done})
    return 0


def _realign(command: CommandRun, files: MigrationSet) -> int:
    config = command.config
    wanted = config.repair.version
    with command.sessions.locked_session() as (driver, _lock):
        history = driver.read_history()
        changes = survey(files, history, config.dsn.dialect, command.policy.resolve).checksum_changes
        if wanted is not None:
            changes = [_realign_target(history, files, changes, wanted)]
        elif not changes:
            _output(config, "Nothing to realign: every applied file has its recorded checksum.",
                    {"action": "realign_checksums", "realigned": []})
            return 0
        else:
            refused = [c for c in changes if not c.statements_unchanged]
            if refused:
                for change in refused:
                    command.log.error("checksum_realign_refused", **_fields(change.row), error=change.describe(),
                                     old_checksum=change.row.checksum, new_checksum=change.migration.checksum)
                first = refused[0]
                raise ValidationFailed(
                    f"realign refused, nothing was changed: {_where(first.row)}: {first.describe()}"
                    + (f" (and {len(refused) - 1} more: see the checksum_realign_refused events)"
                       if len(refused) > 1 else "")
                    + "; restore the file and put the change in a new migration, or, if the database already has "
                    f"what the new text does, name it: `premigrate repair --realign-checksums --version "
                    f"{first.row.migration_id}`")
        with driver.transaction():  # each update conditional on the lock or fenced (HeldLock.protect)
            for change in changes:
                n = len(change.statements)
                driver.update_row(change.row.evolve(
                    checksum=change.migration.checksum, statements_total=n, statements_done=n, statement_started=n,
                    statement_hashes=tuple(s.digest for s in change.statements)))
        for change in changes:
            command.log.info("checksum_realigned", **_fields(change.row), old_checksum=change.row.checksum,
                            new_checksum=change.migration.checksum, statements_unchanged=change.statements_unchanged,
                            changed_statement=change.changed)
    lines = [f"realigned {len(changes)} checksum{'s' if len(changes) != 1 else ''}:"]
    lines += [f"  {c.row.migration_id}  {c.migration.script}  {c.row.checksum} -> {c.migration.checksum}  "
              f"({c.describe()})" for c in changes]
    _output(config, "\n".join(lines), {"action": "realign_checksums", "realigned": [
        {"id": c.row.migration_id, "script": c.migration.script, "old": c.row.checksum, "new": c.migration.checksum,
         "statements_unchanged": c.statements_unchanged} for c in changes]})
    return 0


def _realign_target(history: Sequence[HistoryRow], files: MigrationSet, changes: Sequence[ChecksumChange],
                    wanted: str) -> ChecksumChange:
    for change in changes:
        if _same_id(wanted, change.row):
            return change
    row = _find(history, files, wanted, "--version",
                "it is pending, not applied, so it has no recorded checksum to realign")
    if unknown_value(row) is not None:
        raise ValidationFailed(f"--version {wanted}: {unknown_message(row, _where(row))}")
    if row.kind == "repeatable":
        raise ValidationFailed(f"--version {wanted}: {row.script} is repeatable: a changed repeatable is not drift, "
                               "`premigrate up` applies it again")
    if row.state != STATE_APPLIED:
        raise ValidationFailed(f"--version {wanted}: {_where(row)} is {row.state}, not applied: settle it first "
                               "(`premigrate repair` shows how)")
    if not any(_same_id(wanted, m.id) for m in files.all):
        raise ValidationFailed(f"--version {wanted}: {_where(row)} is not in the migrations folder: there is no "
                               "checksum to record")
    raise ValidationFailed(f"--version {wanted}: {_where(row)} has its recorded checksum: nothing to realign")
