"""Callbacks a run still owes: an afterMigrate that failed, or was cut short, after its run's migrations were
recorded. Pure.

afterMigrate runs only after an `up` that applied something. Its failure comes after the migrations committed, so
the next `up` found nothing pending and never ran it: an initContainer that Kubernetes restarts after the failure
exited 0 the second time, and the app started without the grants or refreshed views the callback was there for.
The debt is therefore recorded: a row in the history table (kind `callback`), written before the run's first
change (engine/after_migrate.py) and deleted once every afterMigrate script succeeded. While it is there, `up` is
not a no-op (it runs afterMigrate under the lock), `check` says 7 (pending), and `status` and `plan` name it. A run
killed anywhere after its first change leaves the row, so the callback runs at least once after every run that
changed something; a script cut short after its own commit runs again, as Flyway runs afterMigrate on every
migrate. A debt with no afterMigrate script to pay it is refused (exit 5), never dropped: `repair --forget` drops
it on the operator's word.

The row is split off when the history is read (drivers/history.py), so that the rest of premigrate, which judges
migration rows, never sees it. A premigrate that predates it refuses the row as of an unknown kind
(model/unknown_rows.py): it could not honour the debt.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from premigrate import __version__
from premigrate.drivers.base import STATE_IN_PROGRESS, HistoryRow

KIND = "callback"
# The row's migration_id. The colon keeps it apart from every version (digits, dots, underscores) and from
# repeatables ("R:<description>"); a listed migration (a Liquibase changeSet, a sqitch change) keyed exactly
# "premigrate:afterMigrate" would clash with it, and its insert would fail loudly.
AFTER_MIGRATE = "premigrate:afterMigrate"


def split(rows: Sequence[HistoryRow]) -> tuple[list[HistoryRow], tuple[HistoryRow, ...]]:
    """The migration rows, and the owed callbacks' rows. Only the row this premigrate writes is a debt: another row
    of kind `callback` (a newer premigrate's) stays with the migration rows, which refuse it as unknown."""
    owed = tuple(r for r in rows if r.kind == KIND and r.migration_id == AFTER_MIGRATE)
    if not owed:
        return list(rows), ()
    return [r for r in rows if r not in owed], owed


def owed_row(scripts: Sequence[str], applied_by: str) -> HistoryRow:
    """The row that records afterMigrate as owed while it runs; `scripts` are the afterMigrate files."""
    return HistoryRow(migration_id=AFTER_MIGRATE, version=None, description="afterMigrate", kind=KIND,
                      script=", ".join(scripts)[:1024], checksum="", applied_at=datetime.now(timezone.utc),
                      execution_ms=0, applied_by=applied_by, state=STATE_IN_PROGRESS,
                      premigrate_version=__version__)


def as_json(rows: Sequence[HistoryRow]) -> list[dict[str, object]]:
    """The owed callbacks as status, plan, repair and a fleet's status show them in JSON."""
    return [{"callback": row.description, "since": row.applied_at.isoformat(), "error": row.error} for row in rows]


def describe(row: HistoryRow) -> str:
    """One line on why the callback is owed. A row without an error may belong to a run still going (it is written
    before the run's first change), to one that was stopped, or to one whose migration failed (and was rolled back,
    on PostgreSQL and SQLite): the reader cannot tell which, so none is claimed."""
    since = row.applied_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if row.error:
        return f"afterMigrate failed in the run of {since} ({row.error})"
    return (f"afterMigrate has not run since the run of {since} (that run is still going, or it stopped or failed "
            "before afterMigrate)")
