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
    fields = {"version": str(migration.version) if migration.version is not None else None,
              "description": migration.description, "script": migration.script}
    if migration.key is not None:  # a listed migration (a changeset): the file holds many, the key names it
        fields["migration_id"] = migration.key
    return fields


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
    """The hashes an applied row records for all its statements (model/history.PrefixHasher.recorded)."""
    return PrefixHasher(statements).recorded(len(statements))


# A progress row (a migration run statement by statement) records its done part as one hash of the prefix,
# "prefix:<k>:<hash>", instead of k statement hashes: each write then has a constant size, where the list made a run
# of n statements write O(n^2) bytes. Rows written once (applied, failed) keep the list, which lets a resume or
# --realign-checksums name the statement that changed, up to FULL_LIST_MAX statements; above that they too carry
# the prefix hash (a list for 600,000 statements would not fit the memory limit of the shipped manifests).
PREFIX_TAG = "prefix"
FULL_LIST_MAX = 10_000


def _chain_step(previous: str, digest: str) -> str:
    return hashlib.sha256(f"{previous}:{digest}".encode()).hexdigest()[:16]


def prefix_chain(hashes: Sequence[str]) -> list[str]:
    """chain[k]: one hash of the first k statement hashes (chain[0] = ""), computed in one pass."""
    chain = [""]
    for digest in hashes:
        chain.append(_chain_step(chain[-1], digest))
    return chain


class PrefixHasher:
    """The prefix hash of a file's first k statements, advanced as a run goes (O(1) memory, O(n) in all)."""

    def __init__(self, statements: Sequence[Statement]) -> None:
        self.statements = statements
        self.done = 0
        self.value = ""

    def at(self, k: int) -> str:
        if k < self.done:
            self.done, self.value = 0, ""
        while self.done < k:
            self.value = _chain_step(self.value, self.statements[self.done].digest)
            self.done += 1
        return self.value

    def progress(self, k: int) -> tuple[str, ...]:
        """What a progress row stores for `k` statements done."""
        return (f"{PREFIX_TAG}:{k}:{self.at(k)}",) if k else ()

    def recorded(self, k: int) -> tuple[str, ...]:
        """What a row written once stores for `k` statements done: the list, or the prefix hash above
        FULL_LIST_MAX."""
        if k > FULL_LIST_MAX:
            return self.progress(k)
        return tuple(self.statements[i].digest for i in range(k))


def recorded_prefix(hashes: Sequence[str]) -> tuple[int, str] | None:
    """(k, hash) of a row written with a prefix hash; None for a row holding the list of statement hashes."""
    if len(hashes) != 1 or not hashes[0].startswith(PREFIX_TAG + ":"):
        return None
    _, count, value = hashes[0].split(":", 2)
    return int(count), value
