"""Listed migrations: the changes of a changelog (a Liquibase changeset, a sqitch change), planned by key. Pure.

A listed migration (Migration.kind == "listed") names itself with a `key` (its history row's migration_id), runs in
the changelog's listing order (`position`), has no version, and says when it runs again (`rerun`):
  never      applied once; a change to an applied one is drift (exit 5), unless its recorded checksum is among its
             `valid_checksums` (or those hold "ANY")
  on_change  applied again whenever its checksum differs from the recorded one (like a repeatable)
  always     applied again on every run
A `skip_reason` (a change for another database, outside the run's contexts or labels) keeps it out of the run: it
is shown as skipped and not recorded, as Liquibase records nothing for a changeset its filters leave out (its
ChangeSetFilter results only decide whether the UpdateVisitor visits the changeset), so a later run whose filters
take it in applies it. A pending listed migration is never "out of order": a changelog tool runs every change not
yet recorded, wherever it sits in the listing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from premigrate.drivers.base import STATE_APPLIED, HistoryRow
from premigrate.model.migrations import Migration
from premigrate.model.unknown_rows import unknown_value

if TYPE_CHECKING:
    from premigrate.model.planner import Entry, Problem, Step

RERUN_VALUES = ("never", "on_change", "always")
# The history table's migration_id is VARCHAR(191) on MySQL and PostgreSQL (191 utf8mb4 characters keep MySQL's
# primary key within 767 bytes on every row format). A longer key keeps its start and ends with a hash of the whole,
# so that it stays readable, unique, and the same on every run; the table is never widened.
KEY_MAX = 191
_HASH_CHARS = 16


@dataclass(frozen=True)
class Filters:
    """What a run selects among a changelog's changes (a format may skip a change for them: skip_reason): the
    database's name (the format's own: Liquibase's dbms short name), --contexts, --labels."""

    dbms: str | None = None  # None: no database known (offline commands): nothing is skipped for the database
    contexts: tuple[str, ...] = ()
    labels: str | None = None
    strict: bool = False  # the format's own rules only, where premigrate would otherwise mend them (--liquibase-strict)


def history_key(identity: str) -> str:
    """The migration_id recorded for a listed migration whose identity is `identity`."""
    if len(identity) <= KEY_MAX:
        return identity
    digest = hashlib.sha256(identity.encode()).hexdigest()[:_HASH_CHARS]
    return f"{identity[:KEY_MAX - _HASH_CHARS - 3]}..#{digest}"


def checksum_accepted(migration: Migration, recorded: str) -> bool:
    """The recorded checksum stands for the migration as it is now: its own, or one it declares valid."""
    if recorded == migration.checksum:
        return True
    return any(v.strip().upper() == "ANY" or v.strip() == recorded for v in migration.valid_checksums)


def plan_listed(listed: Sequence[Migration], rows: Mapping[str, HistoryRow], steps: list[Step],
                problems: list[Problem], entries: list[Entry],
                judge_existing: Callable[[Migration, HistoryRow], None]) -> None:
    """Steps, problems and entries for the listed migrations, in listing order. `judge_existing` is the planner's
    judgement of a row that is not applied (failed, interrupted, rolling back) or that it cannot read."""
    from premigrate.model.planner import (APPLIED, CHANGED, PENDING, SKIPPED, Problem, ProblemKind, Reason, Step,
                                          entry_for)

    for migration in sorted(listed, key=lambda m: m.position):
        row = rows.get(migration.id)
        if migration.skip_reason is not None:
            state = SKIPPED if row is None else row.state
            entries.append(entry_for(migration, state, row, detail=migration.skip_reason))
            continue
        if row is None:
            entries.append(entry_for(migration, PENDING))
            steps.append(Step(migration, Reason.PENDING))
            continue
        if row.state != STATE_APPLIED or unknown_value(row) is not None:
            judge_existing(migration, row)
            continue
        unchanged = checksum_accepted(migration, row.checksum)
        if unchanged and migration.rerun == "always":
            entries.append(entry_for(migration, APPLIED, row, detail="runs again on every up"))
            steps.append(Step(migration, Reason.ALWAYS, row))
        elif unchanged:
            entries.append(entry_for(migration, APPLIED, row))
        elif migration.rerun in ("on_change", "always"):
            entries.append(entry_for(migration, PENDING, row, detail="changed since it was last applied"))
            steps.append(Step(migration, Reason.CHANGED, row))
        else:
            entries.append(entry_for(migration, CHANGED, row, detail="changed since it was applied"))
            problems.append(Problem(
                ProblemKind.DRIFT, migration.id,
                f"{migration.script}: {migration.id} was changed after it was applied: recorded {row.checksum}, "
                f"now {migration.checksum}; restore it as it was applied and put the change in a new one (or, "
                "where the format allows, declare the recorded checksum valid for it)",
                migration.script,
            ))

