"""A changeset's preconditions, judged against the live database just before it runs (Liquibase formatted SQL:
`--preconditions onFail:... onError:...` with `--precondition-sql-check`, `-table-exists`, `-view-exists`).

Followed from liquibase/liquibase: precondition/core/PreconditionContainer.java (every check must pass, an implicit
AND; onFail for a check that fails, onError for one that cannot be run), SqlPrecondition.java (the first column of
the first row, as a string, must equal expectedResult; no row fails), changelog/ChangeSet.java execute() for what
each outcome does to the changeset:
  HALT      the update stops: nothing of this changeset runs or is recorded (exit 4, PreconditionFailed)
  CONTINUE  skipped this time, not recorded: the next update judges it again
  MARK_RAN  recorded as ran without running
  WARN      a warning, then it runs
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from premigrate.drivers.base import Driver, SqlError
from premigrate.drivers.catalog import exists_query
from premigrate.errors import MigrationFailed
from premigrate.eventlog import EventLog
from premigrate.model.history import migration_fields
from premigrate.model.migrations import Migration

if TYPE_CHECKING:  # the Liquibase parsers load only for a Liquibase folder
    from premigrate.model.formats.liquibase.values import Precondition


class Verdict(StrEnum):
    RUN = "run"
    SKIP = "skip"  # CONTINUE
    MARK_RAN = "mark_ran"


class PreconditionFailed(MigrationFailed):
    """onFail/onError HALT: the run stops before the changeset."""


def has_preconditions(migration: Migration) -> bool:
    preconditions = getattr(migration.source, "preconditions", None)
    return preconditions is not None and bool(preconditions.checks)


def judge(driver: Driver, migration: Migration, log: EventLog) -> Verdict:
    """What to do with the changeset now (see the module docstring); HALT raises PreconditionFailed."""
    preconditions = getattr(migration.source, "preconditions", None)
    if preconditions is None or not preconditions.checks:
        return Verdict.RUN
    try:
        failure = next((why for why in (_check(driver, c) for c in preconditions.checks) if why is not None), None)
    except SqlError as exc:
        action, kind = preconditions.on_error, "error"
        message = preconditions.on_error_message or f"a precondition could not be checked: {exc}"
    else:
        if failure is None:
            return Verdict.RUN
        action, kind = preconditions.on_fail, "failed"
        message = preconditions.on_fail_message or failure
    fields = migration_fields(migration) | {"outcome": action, "error": message}
    if action == "HALT":
        log.error("precondition_failed", **fields)
        raise PreconditionFailed(f"{migration.script}: changeset {migration.id}: precondition {kind} ({message}); "
                                 f"on{'Fail' if kind == 'failed' else 'Error'}:HALT stops the run before it; nothing "
                                 "of it ran. Fix the database state the precondition checks, or change onFail")
    log.warning("precondition_failed", **fields)
    if action == "CONTINUE":
        return Verdict.SKIP
    if action == "MARK_RAN":
        return Verdict.MARK_RAN
    return Verdict.RUN  # WARN


def _check(driver: Driver, check: Precondition) -> str | None:
    """Why the check fails, or None when it passes. SqlError: it could not be run."""
    kind = check.kind
    if kind == "sql-check":
        sql = str(check.sql).strip()
        sql = sql[:-1] if sql.endswith(";") else sql  # SqlPrecondition: getSql().replaceFirst(";$", "")
        rows = driver.fetch(sql)
        if not rows or rows[0][0] is None:
            return "no rows returned from SQL Precondition"
        result, expected = _as_text(rows[0][0]), str(check.expected_result)
        return None if result == expected else f"SQL precondition failed: expected '{expected}', got '{result}'"
    name, schema = str(check.name), check.schema
    what = "table" if kind == "table-exists" else "view"
    sql, params = exists_query(driver.dialect, what, schema, name)
    if driver.fetch(sql, params):
        return None
    return f"{what} {schema + '.' if schema else ''}{name} does not exist"


def _as_text(value: object) -> str:
    """A value as JDBC's getString gives it: booleans lower case, whole numbers without a fraction."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal) and value == value.to_integral_value() and value.as_tuple().exponent == 0:
        return str(int(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
