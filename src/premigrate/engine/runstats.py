"""A run's statistics (RunStats): what the executor counts and the run summary reports.

A module of its own, apart from engine/executor.py, so that every command can hold one without loading the
executor: a no-op `up` never does.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RunStats:
    """What a run did so far, for its summary (also after a failure)."""
    applied: int = 0  # migrations applied so far: the run summary's count, also after a failure
    rolled_back: int = 0  # migrations rolled back so far (down)
    statements_began: bool = False  # the executor started running statements: a signal stopped one of them
    rows_affected: int = 0  # over the migrations applied
    size_before: dict[str, object] | None = None  # database size before the first step (measurements.Size)
    size_after: dict[str, object] | None = None
    # What a signal stops, where the command knows better than the generic note (verify: its scratch database,
    # whose statements are not this run's statements on the configured database).
    stopped_note: str | None = None

    def summary_fields(self) -> dict[str, object]:
        """What the run summary adds to its count: rows affected, and the sizes where a step ran."""
        fields: dict[str, object] = {"rows_affected": self.rows_affected}
        if self.size_before is not None:
            fields["database_size_before"] = self.size_before
            fields["database_size_after"] = self.size_after
        return fields
