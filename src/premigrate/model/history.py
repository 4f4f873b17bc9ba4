"""History rows as premigrate writes them: built from a migration and its statements. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from premigrate import __version__
from premigrate.drivers.base import STATE_APPLIED, HistoryRow
from premigrate.model.migrations import Migration
from premigrate.model.sql import Statement


def migration_fields(migration: Migration) -> dict[str, Any]:
    """The fields that name a migration in every log event about it."""
    return {"version": str(migration.version) if migration.version is not None else None,
            "description": migration.description, "script": migration.script}


def row_for(migration: Migration, statements: Sequence[Statement], applied_by: str, **changes: Any) -> HistoryRow:
    """The migration's history row: applied, with nothing recorded per statement, then `changes` on top."""
    row = HistoryRow(
        migration_id=migration.id,
        version=str(migration.version) if migration.version is not None else None,
        description=migration.description,
        kind=migration.kind,
        script=migration.script,
        checksum=migration.checksum,
        applied_at=datetime.now(timezone.utc),
        execution_ms=0,
        applied_by=applied_by,
        state=STATE_APPLIED,
        statements_total=len(statements),
        premigrate_version=__version__,
    )
    return row.evolve(**changes)


def digests(statements: Sequence[Statement]) -> tuple[str, ...]:
    return tuple(s.digest for s in statements)
