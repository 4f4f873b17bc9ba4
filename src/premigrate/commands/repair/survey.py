"""What an unfinished run left behind, read from the history and the folder (pure), and how `repair` shows it:
each failed, interrupted or half rolled back migration with the commands that settle it, and each applied file
whose checksum changed since."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from premigrate import __version__
from premigrate.model.owed import AFTER_MIGRATE, as_json as owed_json, describe as describe_owed
from premigrate.drivers.base import STATE_APPLIED, STATE_FAILED, STATE_IN_PROGRESS, STATE_ROLLING_BACK, HistoryRow
from premigrate.errors import ValidationFailed
from premigrate.model.migrations import Migration, MigrationSet
from premigrate.model.history import PrefixHasher, recorded_prefix
from premigrate.model.ordering import Ordering
from premigrate.model.planner import first_changed_statement, repair_command, resumable_rows, took_effect
from premigrate.model.sql import SplitError, Statement, split_migration, split_statements
from premigrate.model.unknown_rows import KNOWN_STATES, unknown_value, written_by
from premigrate.model.versions import Version


@dataclass(frozen=True)
class Command:
    """A command that would repair something, and when to run it."""
    command: str
    when: str


@dataclass(frozen=True)
class Unfinished:
    """One row left by a failed or interrupted `up`, or by a `down` that stopped half-way."""

    row: HistoryRow
    migration: Migration | None  # None: the file is not in the folder
    line: int | None  # line in the file of the statement it stopped at
    changed: int | None  # first statement that ran and has changed in the file since
    needs_repair: bool  # False only for an interrupted run that `up` resumes by itself
    commands: list[Command] = field(default_factory=list)
    unknown: str | None = None  # what of the row this premigrate does not know ("state 'reverted'")

    @property
    def current(self) -> int | None:
        """The statement that failed or was running when the run stopped; None when it stopped between two."""
        row = self.row
        return row.statement_started if row.statement_started > row.statements_done else None

    @property
    def in_doubt(self) -> bool:
        """Nobody knows whether the current statement took effect: the run stopped while it ran. A `down` has no
        state of its own for a failed statement (its row stays rolling_back), but records the statement's error, as
        a failed `up` does; a rolling_back row stopped in a statement without one was killed, interrupted or cut
        off, exactly like an in_progress row."""
        if self.unknown is not None or self.current is None:
            return False
        return self.row.state == STATE_IN_PROGRESS or (self.row.state == STATE_ROLLING_BACK and not self.row.error)

    def outcome(self) -> str:
        row, k, n = self.row, self.current, self.row.statements_total
        if self.unknown is not None:
            return f"unknown: this premigrate cannot tell what a row of {self.unknown} records"
        # Before a statement in doubt at statement 1 nothing ran: "no statement took effect" would read as if it
        # said that statement 1 did not.
        text = took_effect(row.statements_done) if row.statements_done or not self.in_doubt else ""
        if k is not None:
            now = f"statement {k} may or may not have taken effect" if self.in_doubt else f"statement {k} failed"
            text = f"{text}; {now}" if text else now
        rest = (k or row.statements_done) + 1
        if rest <= n:
            text += f"; {span(rest, n)} {'has' if rest == n else 'have'} not run"
        return f"its down part: {text}" if row.state == STATE_ROLLING_BACK else text


@dataclass(frozen=True)
class ChecksumChange:
    """An applied file edited since it was applied."""

    row: HistoryRow
    migration: Migration
    statements: Sequence[Statement]  # the file's statements now (placeholders resolved)
    changed: int | None  # first statement that differs from what ran; None: statements unchanged

    @property
    def statements_unchanged(self) -> bool:
        return self.changed is None

    def describe(self) -> str:
        if self.changed is None:
            return "statements unchanged: only comments or white space around them changed"
        if self.changed > len(self.statements):
            return f"statement {self.changed} that ran is no longer in the file: the SQL changed"
        return (f"statement {self.changed} (line {self.statements[self.changed - 1].line}) differs from what ran: "
                "the SQL changed")


@dataclass(frozen=True)
class Survey:
    """What `repair` found to do: unfinished migrations and changed checksums."""
    unfinished: list[Unfinished]
    checksum_changes: list[ChecksumChange]
    # Who holds the runner lock now (as the driver's lock_holder names it), looked at without taking it: a run in
    # progress, whose own row may be among the unfinished ones. None: nobody holds it.
    run_in_progress: dict[str, Any] | None = None
    owed: tuple[HistoryRow, ...] = ()  # an afterMigrate a run did not finish (model/owed.py): `up` runs it

    @property
    def needs_repair(self) -> bool:
        return bool(self.checksum_changes) or any(u.needs_repair for u in self.unfinished)


# -- the survey (pure) ------------------------------------------------------------------------------------------------

def split(migration: Migration, dialect: str) -> Sequence[Statement]:
    try:
        return split_migration(migration, dialect)
    except SplitError as exc:
        raise ValidationFailed(f"{migration.script}: line {exc.line}: {exc}", script=migration.script) from None


def survey(files: MigrationSet, history: Sequence[HistoryRow], dialect: str,
           resolve: Callable[[Migration], Migration] = lambda m: m) -> Survey:
    """Every row that needs settling, with the commands that settle it. `resolve` fills in placeholders."""
    by_id = {m.id: m for m in files.all}
    several = len(resumable_rows(history)) > 1
    unfinished = []
    changes = []
    order = Ordering(files)  # a diesel folder lists its rows in its versions' text order
    for row in sorted(history, key=lambda r: order.listing(r.version, r.migration_id, r.script, r.migration_id)
                      if order.text else row_order(r)):
        migration = by_id.get(row.migration_id)
        if row.state == STATE_APPLIED and unknown_value(row) is None:
            if migration is not None and row.kind != "repeatable" and row.checksum != migration.checksum:
                resolved = resolve(migration)
                statements = split(resolved, dialect)
                changes.append(ChecksumChange(row, resolved, statements, _first_difference(statements, row)))
            continue
        unfinished.append(_unfinished(row, migration and resolve(migration), dialect, several))
    return Survey(unfinished, changes)


def row_order(row: HistoryRow) -> tuple[int, Version | None, str]:
    if row.version is not None:
        try:
            return 0, Version.parse(row.version), row.migration_id
        except ValueError:
            pass
    return 1, None, row.migration_id


def _first_difference(statements: Sequence[Statement], row: HistoryRow) -> int | None:
    prefix = recorded_prefix(row.statement_hashes)
    if prefix is not None:  # a row of more than FULL_LIST_MAX statements: which one changed cannot be told
        count, value = prefix
        return None if count == len(statements) and PrefixHasher(statements).at(count) == value else 1
    digests = tuple(s.digest for s in statements)
    if digests == row.statement_hashes:
        return None
    for index, (now, then) in enumerate(zip(digests, row.statement_hashes), 1):
        if now != then:
            return index
    return min(len(digests), len(row.statement_hashes)) + 1


def _unfinished(row: HistoryRow, migration: Migration | None, dialect: str, several: bool) -> Unfinished:
    vid = row.migration_id
    mark = Command(f"premigrate repair --mark-applied {vid}", "you finished the migration by hand")
    unknown = unknown_value(row)
    if unknown is not None:  # only dropping the row needs no understanding of what it says
        return Unfinished(row, migration, None, None, True, [Command(
            f"premigrate repair --forget {vid}", "drops the row, you answering for what it records (look at the "
            "database first)" + ("; the next `up` treats the file as pending" if migration is not None else ""))],
            unknown)
    if migration is None:
        return Unfinished(row, None, None, None, True, [Command(
            f"premigrate repair --forget {vid}", "drop the row (restore the file for the other ways out)")])
    if row.state == STATE_ROLLING_BACK:
        line = _line(migration.down_sql, migration.down_first_line, dialect, row.statement_started)
        return Unfinished(row, migration, line, None, True, _down_ways(row))
    statements = split(migration, dialect)
    k = row.statement_started if row.statement_started > row.statements_done else None
    line = statements[k - 1].line if k and k <= len(statements) else None
    changed = first_changed_statement(statements, row)
    forget = Command(f"premigrate repair --forget {vid}",
                     f"you undid what took effect ({span(1, row.statements_done)}) by hand, or nothing did: the "
                     "next `up` runs the whole file" if row.statements_done else
                     "the next `up` runs the whole file")
    if changed is not None:
        return Unfinished(row, migration, line, changed, True, [mark, forget])
    rest = f"then runs {span(k + 1, len(statements))}" if k and k < len(statements) else "then records it applied"
    if row.state == STATE_FAILED:
        commands = [
            Command(repair_command("--resume", row, several), f"after fixing the cause: retries statement {k}, {rest}"
                    if k else "continues with the next statement"),
        ]
        if k:
            commands.append(Command(repair_command("--resume --skip-current", row, several),
                                    f"you ran statement {k} (or its fix) by hand: counts it as done, {rest}"))
        return Unfinished(row, migration, line, None, True, commands + [mark, forget])
    if k is not None:  # in progress, statement k in doubt
        return Unfinished(row, migration, line, None, True, [
            Command(repair_command("--resume --retry-current", row, several),
                    f"statement {k} did not take effect: runs it again, {rest}"),
            Command(repair_command("--resume --skip-current", row, several),
                    f"statement {k} took effect: counts it as done, {rest}"),
            mark, forget,
        ])
    after = f"at statement {row.statements_done + 1}"
    return Unfinished(row, migration, None, None, False, [
        Command("premigrate up", f"resumes it by itself {after}"),
        Command(repair_command("--resume", row, several), f"resumes it {after} without applying anything else"),
        mark, forget,
    ])


def _down_ways(row: HistoryRow) -> list[Command]:
    """The ways out of a `down` that stopped, each with what to do by hand first, statement by statement of the
    down part: a statement in doubt is on both sides, each with its condition."""
    vid, done, n = row.migration_id, row.statements_done, row.statements_total
    k = row.statement_started if row.statement_started > done else None
    in_doubt = k is not None and not row.error
    left = [span((k or done) + 1, n)] if (k or done) < n else []
    if k is None:
        to_run, to_undo = left, [span(1, done)] if done else []
    elif in_doubt:
        to_run = [f"statement {k} if it did not take effect"] + left
        to_undo = ([span(1, done)] if done else []) + [f"statement {k} if it took effect"]
    else:  # statement k failed
        to_run, to_undo = [f"statement {k} or its fix"] + left, [span(1, done)] if done else []
    forget = (f"first run by hand the rest of the down part ({', and '.join(to_run)})" if to_run
              else "no statement of the down part is left to run")
    mark = (f"first undo by hand what the down part did ({', and '.join(to_undo)})" if to_undo
            else "no statement of the down part took effect")
    return [Command(f"premigrate repair --forget {vid}", f"the rollback is complete: {forget}"),
            Command(f"premigrate repair --mark-applied {vid}", f"the migration's changes are in place: {mark}")]


def _line(sql: str | None, first_line: int, dialect: str, index: int) -> int | None:
    if not sql or index < 1:
        return None
    try:
        statements = split_statements(sql, dialect, first_line=first_line)
    except SplitError:
        return None
    return statements[index - 1].line if index <= len(statements) else None


def span(first: int, last: int) -> str:
    return f"statement {first}" if first == last else f"statements {first}-{last}"


# -- output -----------------------------------------------------------------------------------------------------------

def survey_text(result: Survey) -> str:
    lines: list[str] = []
    if result.run_in_progress is not None:
        lines += [f"A premigrate run is in progress: it holds the runner lock ({_holder_text(result.run_in_progress)})"
                  ". An unfinished row below may be that run's own: wait for it to end, then run `premigrate repair` "
                  "again (an action waits for the lock meanwhile, up to --lock-timeout).", ""]
    for row in result.owed:
        lines += [f"Owed: {describe_owed(row)}. `premigrate up` runs it; if its work was done by hand, drop it with "
                  f"`premigrate repair --forget {AFTER_MIGRATE}`.", ""]
    if not result.unfinished and not result.checksum_changes:
        what = "Nothing for repair to do" if result.owed else "Nothing to repair"  # the owed callback is up's to run
        return "\n".join(lines + [f"{what}: no failed or interrupted migration, and no applied file changed since it "
                                  "was applied."]) + "\n"
    if result.unfinished:
        n = len(result.unfinished)
        lines += [f"{n} unfinished migration{'s' if n != 1 else ''}:", ""]
    for item in result.unfinished:
        row = item.row
        lines.append(f"== {row.migration_id}  {row.description}  ({row.script})")
        where = f"statement {item.current} of {row.statements_total}" if item.current else \
            f"after statement {row.statements_done} of {row.statements_total}"
        state = _state_text(item, where, running=result.run_in_progress is not None)
        lines.append(f"   state: {state}" + (f" (line {item.line})" if item.line else ""))
        if row.error:
            lines.append(f"   error: {row.error}")
        lines.append(f"   outcome: {item.outcome()}")
        if item.unknown is not None:
            lines.append(f"   {written_by(row)}")
        if item.migration is None:
            lines.append("   the file is not in the migrations folder")
        if item.changed is not None:
            lines.append(f"   statement {item.changed}, which already ran, has changed in the file since: it cannot "
                         "be resumed (restore the file as it was to resume)")
        if not item.needs_repair:
            lines.append("   `premigrate up` resumes it by itself: nothing is in doubt")
        lines.append("   ways out, once no run holds the runner lock:" if result.run_in_progress else "   ways out:")
        lines += _command_lines(item.commands)
        lines.append("")
    if result.checksum_changes:
        n = len(result.checksum_changes)
        lines += [f"{n} applied file{'s' if n != 1 else ''} changed since {'they were' if n != 1 else 'it was'} "
                  "applied:", ""]
    for change in result.checksum_changes:
        row = change.row
        lines.append(f"== {row.migration_id}  {row.description}  ({change.migration.script})")
        lines.append(f"   checksum: recorded {row.checksum}, file now {change.migration.checksum}")
        lines.append(f"   {change.describe()}")
        lines.append("   ways out:")
        lines += _command_lines(_realign_commands(change))
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _state_text(item: Unfinished, where: str, *, running: bool) -> str:
    """The row's state and where it stopped; `running`: a run holds the runner lock, and may be at it now."""
    row = item.row
    if item.unknown is not None:
        what = f"{row.state!r}" if row.state not in KNOWN_STATES else f"{row.state}, of kind {row.kind!r}"
        return f"{what}, which this premigrate ({__version__}) does not know"
    if row.state == STATE_FAILED:
        return f"failed at {where}"
    stopped = "running or interrupted" if running else "interrupted"
    if row.state == STATE_IN_PROGRESS:
        return f"in_progress, {stopped} {'during ' if item.current else ''}{where}"
    if item.current is not None:
        stopped = f"{stopped} during" if item.in_doubt else "failed at"
    return f"rolling_back, `down` {stopped} {where} of its down part"


def _holder_text(holder: dict[str, Any]) -> str:
    """The lock holder's details, as lock_waiting and LockTimeout give them (engine/locking.py)."""
    return "held by " + ", ".join(f"{k}={v}" for k, v in holder.items() if v is not None)


def _realign_commands(change: ChecksumChange) -> list[Command]:
    if change.statements_unchanged:
        return [Command("premigrate repair --realign-checksums", "record the file's current checksum")]
    return [
        Command("restore the file as it was applied", "and put the change in a new migration"),
        Command(f"premigrate repair --realign-checksums --version {change.row.migration_id}",
                "the database already has what the new text does: record its checksum anyway"),
    ]


def _command_lines(commands: Sequence[Command]) -> list[str]:
    width = max((len(c.command) for c in commands), default=0)
    return [f"     {c.command.ljust(width)}   {c.when}" for c in commands]


def survey_json(result: Survey, *, database: str, table: str) -> str:
    document = {
        "database": database,
        "table": table,
        "needs_repair": result.needs_repair,
        "run_in_progress": result.run_in_progress,
        "callbacks_owed": owed_json(result.owed),
        "unfinished": [
            {
                "id": u.row.migration_id,
                "version": u.row.version,
                "description": u.row.description,
                "script": u.row.script,
                "state": u.row.state,
                "statement": u.current,
                "line": u.line,
                "statements_done": u.row.statements_done,
                "statements_total": u.row.statements_total,
                "in_doubt": u.in_doubt,
                "error": u.row.error,
                "took_effect": u.outcome(),
                "file_in_folder": u.migration is not None,
                "changed_statement": u.changed,
                "needs_repair": u.needs_repair,
                "unknown": u.unknown,
                "premigrate_version": u.row.premigrate_version or None,
                "commands": [{"command": c.command, "when": c.when} for c in u.commands],
            }
            for u in result.unfinished
        ],
        "checksum_changes": [
            {
                "id": c.row.migration_id,
                "version": c.row.version,
                "script": c.migration.script,
                "recorded": c.row.checksum,
                "file": c.migration.checksum,
                "statements_unchanged": c.statements_unchanged,
                "changed_statement": c.changed,
                "commands": [{"command": x.command, "when": x.when} for x in _realign_commands(c)],
            }
            for c in result.checksum_changes
        ],
    }
    # default=str: the lock holder's details are whatever values its driver read, not always JSON types.
    return json.dumps(document, indent=2, default=str)
