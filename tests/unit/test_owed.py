"""model/owed.py: the owed callbacks' rows are split from the migration rows, and described."""

from __future__ import annotations

from datetime import datetime, timezone

from premigrate.drivers.base import STATE_APPLIED, HistoryRow
from premigrate.model import owed


def migration_row(migration_id: str) -> HistoryRow:
    return HistoryRow(migration_id=migration_id, version=migration_id, description="a", kind="versioned",
                      script=f"{migration_id}_a.sql", checksum="sha256:0", applied_at=datetime.now(timezone.utc),
                      execution_ms=1, applied_by="host", state=STATE_APPLIED)


def test_split_keeps_migration_rows_and_sets_the_debt_apart() -> None:
    """Only premigrate:afterMigrate is the debt: another row of kind callback stays with the migration rows (which
    refuse it as unknown)."""
    debt = owed.owed_row(["afterMigrate.sql", "afterMigrate__grants.sql"], "host")
    rows = [migration_row("1"), debt, migration_row("2")]
    assert (["1", "2"], (debt,)) == ([r.migration_id for r in owed.split(rows)[0]], owed.split(rows)[1])
    assert (rows[:1], ()) == owed.split(rows[:1])
    assert (owed.KIND, owed.AFTER_MIGRATE, "afterMigrate.sql, afterMigrate__grants.sql") == (
        debt.kind, debt.migration_id, debt.script)
    other = debt.evolve(migration_id="premigrate:afterDown")
    assert ([other], ()) == owed.split([other])


def test_describe_says_whether_it_failed_or_has_not_finished() -> None:
    """A row without an error is a run still going or one that was stopped: the text claims neither."""
    debt = owed.owed_row(["afterMigrate.sql"], "host").evolve(
        applied_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    assert ("afterMigrate has not run since the run of 2026-01-02 03:04:05 UTC (that run is still going, or it "
            "stopped or failed before afterMigrate)") == owed.describe(debt)
    assert "afterMigrate failed in the run of 2026-01-02 03:04:05 UTC (boom)" == owed.describe(
        debt.evolve(error="boom"))
