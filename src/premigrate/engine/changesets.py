"""Applying one listed migration that carries its format's run rules (a Liquibase changeset): its preconditions,
judged just before it (engine/preconditions.py), and failOnError:false.

failOnError:false follows liquibase/liquibase changelog/ChangeSet.java execute(): a failing changeset is logged
("failed, but failOnError was false") with ExecType FAILED, and StandardChangeLogHistoryService.setExecType records
nothing for FAILED, so the next update tries it again; the run goes on with the next changeset. Its transaction was
rolled back; run outside a transaction (runInTransaction:false), what ran before the failing statement stays, as it
does with Liquibase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from premigrate.engine.preconditions import PreconditionFailed, Verdict, judge
from premigrate.errors import MigrationFailed
from premigrate.model.history import migration_fields
from premigrate.model.planner import Step

if TYPE_CHECKING:
    from premigrate.engine.executor import Executor


def apply_changeset(executor: Executor, step: Step, following: Step | None) -> int | None:
    """The rows the changeset affected, or None when it did not run (skipped or marked ran by a precondition, or
    failed with failOnError:false)."""
    migration = step.migration
    verdict = judge(executor.driver, migration, executor.log)
    fields = migration_fields(migration)
    if verdict == Verdict.SKIP:
        executor.log.info("migration_skipped", **fields, reason="precondition onFail:CONTINUE; judged again next run")
        return None
    if verdict == Verdict.MARK_RAN:
        row = executor.row(migration, [], execution_ms=0, error="MARK_RAN: a precondition failed; not run")
        (executor.update_row if step.row is not None else executor.insert_row)(row)
        executor.log.info("migration_marked_ran", **fields)
        return None
    try:
        return executor.apply_step(step, following)
    except PreconditionFailed:
        raise
    except MigrationFailed as exc:
        if getattr(migration.source, "fail_on_error", None) is not False:
            raise
        # A run outside a transaction recorded a failed row: Liquibase records nothing for a FAILED changeset.
        if step.row is not None:
            executor.update_row(step.row)
        else:
            executor.delete_row(migration.id)
        executor.log.warning("migration_failed_ignored", **fields, error=exc.message,
                             note="failOnError:false: not recorded; the next run tries it again")
        return None


def refuse_in_single_transaction(steps: list[Step], named: str = "--single-transaction") -> None:
    """--single-transaction runs every step in one transaction: a changeset's precondition verdict or an ignored
    failure cannot be honoured inside it (a failed statement aborts a PostgreSQL transaction)."""
    from premigrate.engine.preconditions import has_preconditions
    from premigrate.errors import UsageError

    for step in steps:
        migration = step.migration
        if has_preconditions(migration) or getattr(migration.source, "fail_on_error", None) is False:
            raise UsageError(f"{migration.script}: changeset {migration.id} has preconditions or failOnError:false, "
                             f"which {named} cannot honour; run without {named}")
