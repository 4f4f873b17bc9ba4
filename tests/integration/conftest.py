"""Fixtures of the PostgreSQL one-message tests (test_one_message.py, test_prepared_own_sql.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from premigrate.drivers.postgres import PostgresDriver
from tests.support import TestDatabase


@pytest.fixture
def pg_db(tmp_path: Path) -> Iterator[TestDatabase]:
    """A new PostgreSQL database for one test, dropped after it."""
    database = TestDatabase.create("postgresql", tmp_path)
    yield database
    database.drop()


@pytest.fixture
def sent_together(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batches that went out through send_together: for each, how many were in flight when it was sent."""
    calls: list[int] = []
    original = PostgresDriver.send_together

    def counting(self: PostgresDriver) -> None:
        calls.append(self.in_flight)
        original(self)

    monkeypatch.setattr(PostgresDriver, "send_together", counting)
    return calls
