"""History rows as premigrate writes them: built from a migration and its statements. Pure."""

from __future__ import annotations

import hashlib
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


# A progress row (a migration run statement by statement) records its done part as one hash of the prefix,
# "prefix:<k>:<hash>", instead of k statement hashes: each write then has a constant size, where the list made a run
# of n statements write O(n^2) bytes. The final row of an applied migration keeps the whole list (one write).
PREFIX_TAG = "prefix"


def prefix_chain(hashes: Sequence[str]) -> list[str]:
    """chain[k]: one hash of the first k statement hashes (chain[0] = ""), computed in one pass."""
    chain = [""]
    for digest in hashes:
        chain.append(hashlib.sha256(f"{chain[-1]}:{digest}".encode()).hexdigest()[:16])
    return chain


def progress_hashes(chain: Sequence[str], done: int) -> tuple[str, ...]:
    """What a progress row stores for `done` statements done."""
    return (f"{PREFIX_TAG}:{done}:{chain[done]}",) if done else ()


def recorded_prefix(hashes: Sequence[str]) -> tuple[int, str] | None:
    """(k, hash) of a row written with progress_hashes(); None for a row holding the list of statement hashes."""
    if len(hashes) != 1 or not hashes[0].startswith(PREFIX_TAG + ":"):
        return None
    _, count, value = hashes[0].split(":", 2)
    return int(count), value
