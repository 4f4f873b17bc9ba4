from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import DIALECTS, TestDatabase, stop_containers


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db(dialect: str, tmp_path: Path) -> Iterator[TestDatabase]:
    """An empty database of the parametrised dialect, created for this test and dropped after it."""
    yield from _database(dialect, tmp_path)


def _database(dialect: str, tmp_path: Path) -> Iterator[TestDatabase]:
    database = TestDatabase.create(dialect, tmp_path)
    try:
        yield database
    finally:
        database.drop()


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[TestDatabase]:
    """An empty PostgreSQL database, for a test about that server alone; dropped after the test."""
    yield from _database("postgresql", tmp_path)


@pytest.fixture
def mariadb(tmp_path: Path) -> Iterator[TestDatabase]:
    """An empty MariaDB/MySQL database, for a test about that server alone; dropped after the test."""
    yield from _database("mysql", tmp_path)


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    return path


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_containers()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for marker in ("unit", "integration", "e2e", "faults"):
            if f"/tests/{marker}/" in str(item.fspath):
                item.add_marker(getattr(pytest.mark, marker))
