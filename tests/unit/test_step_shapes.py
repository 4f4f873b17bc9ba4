"""StepShapes asks model/transactions.py for a statement list's blocks once: the mode, the run and the next
migration's first row all ask for them, four times a migration on MySQL."""

from __future__ import annotations

import pytest

from premigrate.errors import MigrationFileError
from premigrate.model import transactions
from premigrate.model.modes import StepShapes
from premigrate.model.sql import Statement


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = transactions.blocks

    def blocks(statements: object) -> list[transactions.Block]:
        calls[0] += 1
        return original(statements)  # type: ignore[arg-type]

    monkeypatch.setattr(transactions, "blocks", blocks)
    return calls


def test_blocks_are_read_once_per_statement_list(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    shapes = StepShapes("mysql", transactional_ddl=False)
    statements = [Statement("BEGIN", 1), Statement("INSERT INTO t VALUES (1)", 2), Statement("COMMIT", 3)]
    first = shapes.blocks(None, statements)  # type: ignore[arg-type]
    again = shapes.blocks(None, statements)  # type: ignore[arg-type]
    assert ([(1, 3)], 1) == ([(b.first, b.last) for b in first], calls[0])
    assert again is first
    other = list(statements)  # the same statements in another list: read on its own
    assert [(1, 3)] == [(b.first, b.last) for b in shapes.blocks(None, other)]  # type: ignore[arg-type]
    assert 2 == calls[0]


def test_an_unbalanced_file_is_refused_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from premigrate.model.migrations import Migration

    calls = _counting(monkeypatch)
    shapes = StepShapes("mysql", transactional_ddl=False)
    migration = Migration(kind="versioned", version=None, description="x", script="1_x.sql", up_sql="BEGIN;",
                          up_first_line=1, checksum="c")
    statements = [Statement("BEGIN", 1)]
    for _ in range(2):
        with pytest.raises(MigrationFileError, match="1_x.sql: line 1"):
            shapes.blocks(migration, statements)
    assert 2 == calls[0]
