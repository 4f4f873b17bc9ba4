"""Behind PgBouncer premigrate's own SQL stays literal (drivers/postgres_prepared.py): a prepared statement may live
on a backend the next transaction does not get. In session pooling, where the backend stays, the run's migration
session is read before it closes: it holds none of premigrate's prepared statements; on a direct connection to
the same server it does, so the check can tell the two apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from premigrate.cli import main
from premigrate.drivers.postgres import PostgresDriver
from tests.topology.conftest import LOCAL_POSTGRES
from tests.topology.pgbouncer import PgBouncer

pytestmark = pytest.mark.topology


def _run_listing_prepared(url: str, folder: Path, monkeypatch: pytest.MonkeyPatch,
                          capfd: pytest.CaptureFixture[str]) -> tuple[int, list[str], list[str]]:
    """`up` in this process: its exit code, the names of premigrate's prepared statements on the sessions it
    closed, and the versions it applied."""
    names: list[str] = []
    original = PostgresDriver.close

    def listing(self: PostgresDriver) -> None:
        if not self.conn.closed and self.in_flight == 0:
            rows = self.conn.execute("SELECT name FROM pg_prepared_statements").fetchall()
            names.extend(str(name) for (name,) in rows if str(name).startswith("premigrate_own_"))
        original(self)

    monkeypatch.setattr(PostgresDriver, "close", listing)
    code = main(["up", "--dir", str(folder), "--log-format", "json"], {"DATABASE_URL": url})
    events = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    return code, names, [e["version"] for e in events if e["event"] == "migration_applied"]


def test_session_pooling_sends_own_sql_as_literal_text(pgbouncer_session: PgBouncer, local_pg_database: str,
                                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capfd: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for i in (1, 2, 3):
        (folder / f"00{i}_t{i}.sql").write_text(f"CREATE TABLE t{i} (id int);\n")
    code, names, applied = _run_listing_prepared(pgbouncer_session.url(local_pg_database), folder, monkeypatch,
                                                 capfd)
    assert (0, [], ["1", "2", "3"]) == (code, names, applied)

    (folder / "004_t4.sql").write_text("CREATE TABLE t4 (id int);\n")
    (folder / "005_t5.sql").write_text("CREATE TABLE t5 (id int);\n")
    direct = LOCAL_POSTGRES.rsplit("/", 1)[0] + f"/{local_pg_database}"
    code, names, applied = _run_listing_prepared(direct, folder, monkeypatch, capfd)
    assert (0, ["4", "5"]) == (code, applied)
    assert 3 == len(names), names
