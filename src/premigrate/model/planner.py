"""plan_for(files, history, policy) -> Plan: what to run, what is wrong. Pure: no I/O, no logging, tested without a
database. Every command that needs a plan (up, plan, check, status, down, repair) and `serve` ask plan_for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from premigrate.drivers.base import STATE_APPLIED, STATE_FAILED, STATE_IN_PROGRESS, STATE_ROLLING_BACK, HistoryRow
from premigrate.model.migrations import Migration, MigrationSet
from premigrate.model.history import PrefixHasher, recorded_prefix
from premigrate.model.ordering import Ordering, key
from premigrate.model.sql import Statement, split_migration
from premigrate.model.unknown_rows import KNOWN_KINDS, unknown_message, unknown_value
from premigrate.model.versions import Version, is_version

class EntryState(StrEnum):
    """A migration's state as `status` prints it."""

    APPLIED = "applied"
    PENDING = "pending"
    CHANGED = "changed"
    MISSING = "missing"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    OUT_OF_ORDER = "out-of-order"
    ROLLING_BACK = "rolling_back"
    SKIPPED = "skipped"  # a listed migration this run leaves out (model/listed.py: skip_reason)


APPLIED, PENDING, CHANGED, MISSING, FAILED, IN_PROGRESS, OUT_OF_ORDER, ROLLING_BACK, SKIPPED = (
    EntryState.APPLIED, EntryState.PENDING, EntryState.CHANGED, EntryState.MISSING, EntryState.FAILED,
    EntryState.IN_PROGRESS, EntryState.OUT_OF_ORDER, EntryState.ROLLING_BACK, EntryState.SKIPPED,
)


class ProblemKind(StrEnum):
    """What refuses a run (or, for MISSING without --strict, warns). A row not in the folder is a problem of the
    kind named by its state."""

    DRIFT = "drift"
    OUT_OF_ORDER = "out_of_order"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"
    IN_PROGRESS = "in_progress"
    RESUME_MISMATCH = "resume_mismatch"
    ROLLBACK_INCOMPLETE = "rollback_incomplete"
    ROLLING_BACK = "rolling_back"
    MISSING = "missing"
    UNKNOWN_ROW = "unknown_row"  # a state or kind this premigrate does not know (model/unknown_rows.py)


@dataclass(frozen=True)
class Policy:
    """The run's rules for planning: order, strictness, target version, placeholders."""
    dialect: str
    allow_out_of_order: bool = False
    strict: bool = False
    table: str = "premigrate_history"
    target: Version | None = None  # --to: plan nothing after this version, and no repeatables
    # ${NAME} values, and whether they apply to every file (--placeholders) or only where a file asks for them.
    placeholder_values: Mapping[str, str] = field(default_factory=dict, repr=False)
    placeholders_everywhere: bool = False
    # The process environment, for goose's `-- +goose ENVSUB ON` sections (read by cli/, handed over by config).
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    def resolve(self, migration: Migration) -> Migration:
        """The migration with its placeholders filled in (when they are on for it), and the environment attached to
        a goose file with ENVSUB sections."""
        from premigrate.model import placeholders  # only when asked: a no-op `up` never loads it

        resolved = placeholders.resolve(migration, self.placeholder_values, everywhere=self.placeholders_everywhere)
        if resolved.envsub is None:
            return resolved
        from premigrate.model.formats.goose import with_environment

        return with_environment(resolved, self.environment)


class Reason(StrEnum):
    """Why a step is in the plan."""

    PENDING = "pending"
    OUT_OF_ORDER = "out_of_order"
    NEW = "new"  # a repeatable never applied
    CHANGED = "changed"  # a repeatable changed since it was applied
    RESUME = "resume"  # an interrupted stepwise run, continued where it stopped
    ALWAYS = "always"  # a listed migration that runs on every run (rerun "always")


@dataclass(frozen=True)
class Step:
    """A migration to apply, why, and its existing history row if any."""
    migration: Migration
    reason: Reason
    row: HistoryRow | None = None  # the existing row: a repeatable to re-apply, or an interrupted run to resume


@dataclass(frozen=True)
class Problem:
    """Something that refuses the run (or only warns), about one migration."""
    kind: str  # a ProblemKind
    migration_id: str
    message: str
    script: str | None = None


@dataclass(frozen=True)
class Entry:
    """One line of `status`."""

    migration_id: str
    version: str | None
    description: str
    kind: str
    script: str | None
    state: str
    applied_at: datetime | None = None
    execution_ms: int | None = None
    detail: str | None = None
    format: str | None = None  # the migration's format; None for a history row whose file is gone


@dataclass(frozen=True)
class Plan:
    """The steps to run and the problems that refuse them; entries for status."""
    steps: list[Step] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # any of these refuses the run (exit 5)
    warnings: list[Problem] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    owed: tuple[HistoryRow, ...] = ()  # callbacks a run still owes (model/owed.py): `up` runs them

    @property
    def outstanding(self) -> list[Step]:
        """The steps that leave the database behind the folder until they run: every step but a re-run of a listed
        migration that runs on every run (Liquibase runAlways), which is current once applied. check, wait, status
        and serve judge "current" by these; `up` still runs every step."""
        return [s for s in self.steps if s.reason != Reason.ALWAYS]

    @property
    def clean(self) -> bool:
        """Nothing to do and nothing wrong: `up` can exit 0 without taking the lock."""
        return not self.steps and not self.problems and not self.owed


def plan_for(files: MigrationSet, history: Sequence[HistoryRow], policy: Policy) -> Plan:
    """The plan every command and `serve` use. An interrupted file's recorded statement hashes are of its
    placeholder-resolved text: it is judged resolved, so that its resume is compared like with like."""
    unfinished = {r.migration_id for r in history if r.state == STATE_IN_PROGRESS}
    if unfinished:
        files = MigrationSet(
            versioned=[policy.resolve(m) if m.id in unfinished else m for m in files.versioned],
            repeatable=[policy.resolve(m) if m.id in unfinished else m for m in files.repeatable],
            listed=[policy.resolve(m) if m.id in unfinished else m for m in files.listed])
    return make_plan(files, history, policy)


def make_plan(files: MigrationSet, history: Sequence[HistoryRow], policy: Policy) -> Plan:
    """The plan of files as given (no placeholders resolved): use plan_for."""
    rows = {row.migration_id: row for row in history}
    known = {m.id for m in files.all}
    order = Ordering(files)  # a diesel folder's order is its versions' text order
    newest_row = max((r for r in history if r.version and is_version(r.version)), key=order.of_row, default=None)
    newest_key = order.of_row(newest_row) if newest_row is not None else None
    newest_applied = Version.parse(newest_row.version or "") if newest_row is not None else None
    steps: list[Step] = []
    problems: list[Problem] = []
    warnings: list[Problem] = []
    entries: list[Entry] = []
    several = len(resumable_rows(history)) > 1

    for migration in files.versioned:
        row = rows.get(migration.id)
        if row is None:
            assert migration.version is not None
            if newest_key is not None and key(migration) < newest_key:
                entries.append(entry_for(migration, OUT_OF_ORDER,
                                         detail=f"older than applied version {newest_applied}"))
                if policy.allow_out_of_order:
                    steps.append(Step(migration, Reason.OUT_OF_ORDER))
                else:
                    problems.append(Problem(
                        ProblemKind.OUT_OF_ORDER, migration.id,
                        f"{migration.script} (version {migration.version}) is pending but older than the newest "
                        f"applied version {newest_applied}" + (f"; renumber it after {newest_applied}" if not order.text
                        else " in this folder's order (file names as text, as dbmate and diesel run them): name it "
                        "to sort last, e.g. with a timestamp") + ", or pass --allow-out-of-order to apply it anyway",
                        migration.script,
                    ))
            else:
                entries.append(entry_for(migration, PENDING))
                steps.append(Step(migration, Reason.PENDING))
            continue
        _judge_existing(migration, row, policy, steps, problems, entries, several)

    for migration in files.repeatable:
        row = rows.get(migration.id)
        if policy.target is not None:
            # Staged rollouts stop at a version: repeatables run only in a full run.
            entries.append(entry_for(migration, APPLIED if row and row.checksum == migration.checksum else PENDING,
                                     row))
            continue
        if row is None:
            entries.append(entry_for(migration, PENDING))
            steps.append(Step(migration, Reason.NEW))
        elif row.state == STATE_APPLIED and unknown_value(row) is None and row.checksum != migration.checksum:
            entries.append(entry_for(migration, PENDING, row, detail="changed since it was last applied"))
            steps.append(Step(migration, Reason.CHANGED, row))
        else:
            _judge_existing(migration, row, policy, steps, problems, entries, several)

    listed: list[Entry] = []
    if files.listed:
        from premigrate.model.listed import plan_listed

        plan_listed(files.listed, rows, steps, problems, listed, lambda migration, row: _judge_existing(
            migration, row, policy, steps, problems, listed, several))
        if files.listed[0].format == "sqitch":
            problems.extend(_sqitch_edited(files.listed, history))
    _judge_missing(history, known, policy, entries, problems, warnings)

    if policy.target is not None:
        cut = order.of_version(policy.target)
        steps = [s for s in steps if s.migration.version is None or key(s.migration) <= cut]
    for step in steps:
        if step.migration.draft and step.migration.is_empty:
            problems.append(Problem(
                "unwritten", step.migration.id,
                f"{step.migration.script} was created by `premigrate new` and holds no SQL yet: write its SQL, or "
                "delete its '-- premigrate:draft' line to apply it empty on purpose",
                step.migration.script,
            ))
    entries.sort(key=lambda e: order.listing(e.version, e.migration_id, e.script, e.description))
    return Plan(steps, problems, warnings, listed + entries)  # listed ones in their listing order


def _sqitch_edited(listed: Sequence[Migration], history: Sequence[HistoryRow]) -> list[Problem]:
    """sqitch keys a change on an id made from its plan line: an edited line of a deployed change is refused."""
    from premigrate.model.formats.sqitch_project import edited_plan_lines

    return [Problem(ProblemKind.DRIFT, m.id,
                    f"sqitch.plan: the plan line of change {m.description!r} was edited after it was deployed: sqitch "
                    f"change id {row.migration_id} is recorded, the plan now gives {m.id}; restore the line as it "
                    "was deployed (sqitch refuses this plan too: \"Cannot find change\")", "sqitch.plan")
            for m, row in edited_plan_lines(listed, history)]


def _judge_missing(history: Sequence[HistoryRow], known: set[str], policy: Policy, entries: list[Entry],
                   problems: list[Problem], warnings: list[Problem]) -> None:
    """Rows of the history whose file is not in the folder: an entry each, and a problem or a warning."""
    for row in history:
        if row.migration_id in known:
            continue
        entries.append(Entry(row.migration_id, row.version, row.description, row.kind, row.script,
                             MISSING if row.state == STATE_APPLIED else row.state, row.applied_at, row.execution_ms,
                             detail="in the history but not in the folder"))
        if unknown_value(row) is not None:
            where = f"version {row.migration_id}, not in the folder" if row.version else "not in the folder"
            problems.append(Problem(ProblemKind.UNKNOWN_ROW, row.migration_id,
                                    unknown_message(row, f"{row.script} ({where})"), row.script))
            continue
        if row.state != STATE_APPLIED:
            problems.append(Problem(
                row.state, row.migration_id,
                f"{row.script} (version {row.version}) is recorded as {row.state} but is not in the migrations "
                f"folder; restore the file to resolve it, or run `premigrate repair --forget {row.migration_id}` "
                "to drop the row",
                row.script,
            ))
            continue
        missing = Problem(
            ProblemKind.MISSING, row.migration_id,
            f"{row.script} (version {row.migration_id}) is applied but missing from the folder: the database is "
            "ahead of these migration files",
            row.script,
        )
        (problems if policy.strict else warnings).append(missing)


def _judge_existing(migration: Migration, row: HistoryRow, policy: Policy, steps: list[Step],
                    problems: list[Problem], entries: list[Entry], several: bool) -> None:
    where = f"{migration.script} (version {migration.id})" if migration.version else migration.script
    if migration.key is not None:
        where = f"{migration.script} ({migration.key})"
    if unknown_value(row) is not None:
        _refuse_unknown(migration, row, where, problems, entries)
        return
    if row.state == STATE_APPLIED:
        if row.checksum != migration.checksum:
            entries.append(entry_for(migration, CHANGED, row, detail="file changed since it was applied"))
            problems.append(Problem(
                ProblemKind.DRIFT, migration.id,
                f"{where} was changed after it was applied: recorded {row.checksum}, file now {migration.checksum}; "
                "restore the applied version of the file and put the change in a new migration",
                migration.script,
            ))
        else:
            entries.append(entry_for(migration, APPLIED, row))
        return
    if row.state == STATE_FAILED:
        entries.append(entry_for(migration, FAILED, row, detail=row.error))
        problems.append(Problem(
            ProblemKind.FAILED, migration.id,
            f"{where} failed at statement {row.statement_started} of {row.statements_total} in an earlier run "
            f"({row.error or 'no error recorded'}); {took_effect(row.statements_done)}. Fix the cause, then run "
            f"`{repair_command('--resume', row, several)}` to retry statement {row.statement_started} and "
            f"continue; or {_settle_hint(row)}",
            migration.script,
        ))
        return
    if row.state == STATE_ROLLING_BACK:
        entries.append(entry_for(migration, ROLLING_BACK, row, detail=row.error))
        problems.append(Problem(
            ProblemKind.ROLLBACK_INCOMPLETE, migration.id,
            f"{where}: an earlier `down` stopped at statement {row.statement_started} of {row.statements_total} of "
            f"its down part{_error_suffix(row)}. Check the database, then run "
            f"`premigrate repair --forget {row.migration_id}` if the rollback is complete (finish its remaining "
            f"statements by hand first), or `premigrate repair --mark-applied {row.migration_id}` if the "
            "migration's changes are in place again (redo by hand what the down part already undid)",
            migration.script,
        ))
        return
    if row.state == STATE_IN_PROGRESS and row.in_doubt:
        entries.append(entry_for(migration, IN_PROGRESS, row, detail=f"statement {row.statement_started} in doubt"))
        k = row.statement_started
        problems.append(Problem(
            ProblemKind.IN_DOUBT, migration.id,
            f"{where}: a run (on {row.applied_by or 'an unknown host'}) stopped while statement {k} of "
            f"{row.statements_total} was running, or may still be running it (a run that lost its runner lock "
            f"finishes the statement it is in), so nobody knows whether it took effect{_error_suffix(row)}; "
            f"{_ran_before(row)}. To tell, look for a premigrate session still active on the "
            f"database (application name premigrate@{row.applied_by or '<host>'}) and wait for it to end. Then check "
            f"the database, and run `{repair_command('--resume --retry-current', row, several)}` if statement {k} "
            f"did not take effect, or `{repair_command('--resume --skip-current', row, several)}` if it did; or "
            f"{_settle_hint(row)}",
            migration.script,
        ))
        return
    if row.state == STATE_IN_PROGRESS:
        done = row.statements_done
        statements = split_migration(migration, policy.dialect)
        changed = first_changed_statement(statements, row)
        if changed is not None:
            entries.append(entry_for(migration, IN_PROGRESS, row, detail="interrupted; file changed since"))
            problems.append(Problem(
                ProblemKind.RESUME_MISMATCH, migration.id,
                f"{where} was interrupted after statement {done}, but {changed_statement_text(changed, row)}, "
                "which already ran, has "
                "changed in the file since, so it cannot be resumed safely. Restore the file as it was and run "
                f"`premigrate up` again; or {_settle_hint(row)}",
                migration.script,
            ))
            return
        entries.append(entry_for(migration, IN_PROGRESS, row, detail=f"interrupted after statement {done}; resumable"))
        steps.append(Step(migration, Reason.RESUME, row))
        return
    # A State this function does not handle yet: refused like a state written by a newer premigrate.
    _refuse_unknown(migration, row, where, problems, entries)


def _refuse_unknown(migration: Migration, row: HistoryRow, where: str, problems: list[Problem],
                    entries: list[Entry]) -> None:
    entries.append(entry_for(migration, row.state, row, detail=f"unknown {unknown_value(row) or row.state}"))
    problems.append(Problem(ProblemKind.UNKNOWN_ROW, migration.id, unknown_message(row, where), migration.script))


def resumable_rows(history: Sequence[HistoryRow]) -> list[HistoryRow]:
    """Rows `repair --resume` can continue: a failed or interrupted `up` (not an interrupted `down`, nor a row of
    a kind this premigrate does not know)."""
    return [r for r in history if r.state in (STATE_FAILED, STATE_IN_PROGRESS) and unknown_value(r) is None]


def first_changed_statement(statements: Sequence[Statement], row: HistoryRow) -> int | None:
    """The 1-based number of the first statement recorded as done whose text differs from the file's, or None.
    A row that records its done part as one prefix hash (model/history.py) tells only that one of them changed:
    then the first statement of the done part is named (changed_statement_text says so)."""
    prefix = recorded_prefix(row.statement_hashes)
    if prefix is not None:
        count, value = prefix
        if count < row.statements_done or count > len(statements):
            return 1
        return None if PrefixHasher(statements).at(count) == value else 1
    for index in range(1, row.statements_done + 1):
        recorded = row.statement_hashes[index - 1] if index <= len(row.statement_hashes) else None
        if index > len(statements) or statements[index - 1].digest != recorded:
            return index
    return None


def took_effect(done: int) -> str:
    if done <= 0:
        return "no statement took effect"
    return "statement 1 took effect" if done == 1 else f"statements 1-{done} took effect"


def repair_command(flags: str, row: HistoryRow, several: bool) -> str:
    """The `repair` command line for a row; with several unfinished rows, --resume must name its version."""
    return f"premigrate repair {flags}" + (f" --version {row.migration_id}" if several else "")


def _settle_hint(row: HistoryRow) -> str:
    return (f"`premigrate repair --mark-applied {row.migration_id}` if you finished the migration by hand, or "
            f"`premigrate repair --forget {row.migration_id}` to run the whole file again once you have undone "
            "what took effect (`premigrate repair` shows the details)")


def _ran_before(row: HistoryRow) -> str:
    """What took effect before the statement in doubt. Not "no statement took effect" when none ran before it: that
    would read as if it said the statement in doubt did not either."""
    return took_effect(row.statements_done) if row.statements_done else "no statement ran before it"


def _error_suffix(row: HistoryRow) -> str:
    return f" ({row.error})" if row.error else ""


def entry_for(migration: Migration, state: str, row: HistoryRow | None = None, detail: str | None = None) -> Entry:
    return Entry(
        migration.id,
        str(migration.version) if migration.version is not None else None,
        # `baseline --description` is what the operator wrote for the row it recorded: status shows it, not the file's.
        row.description if row is not None and row.kind == "baseline" and row.description else migration.description,
        # A row recorded by `baseline` was never run, and a kind this premigrate does not know is the row's own:
        # status says so rather than the file's kind.
        row.kind if row is not None and (row.kind == "baseline" or row.kind not in KNOWN_KINDS) else migration.kind,
        migration.script,
        state,
        row.applied_at if row else None,
        row.execution_ms if row else None,
        detail,
        migration.format,
    )


def changed_statement_text(changed: int, row: HistoryRow) -> str:
    """"statement k", or, for a row with a prefix hash, "a statement among 1-k" (which one cannot be told)."""
    if recorded_prefix(row.statement_hashes) is not None and row.statements_done > 1:
        return f"a statement among 1-{row.statements_done}"
    return f"statement {changed}"
