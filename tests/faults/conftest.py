"""Fixtures of the fault suite, and the summary table printed at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import LEDGER, SEED, FaultDatabase, create_mysql_user, drop_mysql_user, make_database


@pytest.fixture(scope="session")
def mysql_user() -> Iterator[tuple[str, str]]:
    """A MariaDB user with a password, so that a wrong password can be tried and the right one can leak."""
    user = create_mysql_user()
    try:
        yield user
    finally:
        drop_mysql_user(user[0])


@pytest.fixture
def fault_db_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    """make(dialect) -> a fresh FaultDatabase, dropped after the test."""
    made: list[FaultDatabase] = []

    def make(dialect: str) -> FaultDatabase:
        user = request.getfixturevalue("mysql_user") if dialect == "mysql" else None
        folder = tmp_path / f"db{len(made)}"
        folder.mkdir()
        fdb = make_database(dialect, folder, user)
        made.append(fdb)
        return fdb

    yield make
    for fdb in made:
        fdb.close()
        fdb.db.drop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not LEDGER.scenarios:
        return
    terminalreporter.section("fault-injection summary")
    terminalreporter.write_line(f"seed {SEED} (replay with PREMIGRATE_FAULT_SEED={SEED})")
    for line in LEDGER.table():
        terminalreporter.write_line(line)
