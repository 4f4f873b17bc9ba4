"""HistoryRow.evolve: the copy dataclasses.replace would make, made cheaper (a MySQL run evolves rows between round
trips, several times per migration)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import pytest

from premigrate.drivers.base import HistoryRow

ROW = HistoryRow(migration_id="0001", version="1", description="create t", kind="versioned", script="0001_t.sql",
                 checksum="sha256:" + "a" * 64, applied_at=datetime(2026, 12, 5, tzinfo=timezone.utc), execution_ms=0,
                 applied_by="me", state="in_progress", statements_total=2, statement_started=1)
CHANGES: list[dict[str, Any]] = [
    {"statement_started": 2}, {"statements_done": 1, "statement_hashes": ("prefix:1:abc",)},
    {"state": "applied", "error": None, "applied_at": datetime(2027, 1, 1, tzinfo=timezone.utc), "execution_ms": 5},
    {"error": "boom"}, {},
    *({f.name: getattr(ROW, f.name)} for f in dataclasses.fields(HistoryRow)),
]


@pytest.mark.parametrize("changes", CHANGES, ids=repr)
def test_evolve_makes_what_replace_makes(changes: dict[str, Any]) -> None:
    evolved, replaced = ROW.evolve(**changes), dataclasses.replace(ROW, **changes)
    assert replaced == evolved
    assert hash(replaced) == hash(evolved)
    assert dataclasses.astuple(replaced) == dataclasses.astuple(evolved)
    assert type(replaced) is type(evolved)
    assert ROW.statement_started == 1 and ROW.error is None  # the original is left as it was


def test_an_unknown_field_is_refused_and_the_copy_stays_frozen() -> None:
    with pytest.raises(TypeError, match="statement_startd"):
        ROW.evolve(statement_startd=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ROW.evolve(statement_started=2).statement_started = 3  # type: ignore[misc]
