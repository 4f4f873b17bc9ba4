"""The password scan that every run of this suite goes through catches a password in either spelling."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.faults import harness
from tests.faults.harness import (
    ODD_PASSWORD,
    PLACEHOLDER_PASSWORD,
    SECRETS,
    Ledger,
    premigrate,
    snapshot,
)


@pytest.mark.parametrize("line", [f"postgresql://u:{s}@h/db" for s in SECRETS]
                         + [f"mysql://u:{quote(ODD_PASSWORD, safe='')}@h/db"])
def test_scan_catches_each_password(line: str) -> None:
    """A line carrying any of the suite's passwords, raw or percent-encoded, fails the run that printed it."""
    ledger = Ledger()
    ledger.scan("clean line\n", "probe")
    with pytest.raises(AssertionError, match="a password was printed"):
        ledger.scan(f'{{"event": "x", "database": "{line}"}}\n', "probe")
    assert 1 == len(ledger.leaks)


def test_scan_covers_the_history_table(fault_db_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A password stored in any column of the history table fails the scan, like a printed one."""
    fdb = fault_db_factory("sqlite")
    monkeypatch.setattr(harness, "LEDGER", Ledger())
    fdb.q("CREATE TABLE premigrate_history (migration_id TEXT, error TEXT)")
    fdb.q("INSERT INTO premigrate_history VALUES ('1', 'clean')")
    harness.scan_history(fdb)
    fdb.q(f"INSERT INTO premigrate_history VALUES ('2', 'near ''{PLACEHOLDER_PASSWORD}''')")
    with pytest.raises(AssertionError, match="a password was printed by history table"):
        harness.scan_history(fdb)


# A failing statement whose error message echoes the placeholder's value on each database.
ECHOING_FAILURE = {
    "mysql": "CREATE USER 'pm_never'@'%' garbage IDENTIFIED BY '${APP_DB_PASSWORD}';",
    "postgresql": "SELECT '${APP_DB_PASSWORD}'::int;",
    "sqlite": 'SELECT * FROM "${APP_DB_PASSWORD}";',
}


@pytest.mark.parametrize("dialect", ["mysql", "postgresql", "sqlite"])
def test_placeholder_secret_never_stored(fault_db_factory: Any, tmp_path: Path, dialect: str) -> None:
    """A server error that echoes a secret placeholder's value is stored scrubbed in the history table, and neither
    `status --json` nor a later `up` (both without the variable) prints it."""
    fdb = fault_db_factory(dialect)
    folder = tmp_path / "migrations"
    folder.mkdir()
    # No transaction: the failed row (and its error) stays in the history, as on MySQL.
    (folder / "0001_t.sql").write_text("-- premigrate:no-transaction\nCREATE TABLE t (a int);\n"
                                       + ECHOING_FAILURE[dialect] + "\n")
    with_secret = fdb.env(PREMIGRATE_PLACEHOLDERS="1", PREMIGRATE_PLACEHOLDER_APP_DB_PASSWORD=PLACEHOLDER_PASSWORD)

    failed = premigrate("secret placeholders", "up", "--dir", str(folder), env=with_secret, cwd=tmp_path)
    snap = snapshot(fdb)  # scans the history table
    status = premigrate("secret placeholders", "status", "--json", "--dir", str(folder), env=fdb.env(), cwd=tmp_path)
    again = premigrate("secret placeholders", "up", "--dir", str(folder), env=fdb.env(), cwd=tmp_path)

    assert 4 == failed.returncode, failed.stderr
    [row] = snap.history.values()
    assert "***" in str(row["error"]), row
    assert 0 != again.returncode
    assert "***" in status.stdout + again.stderr


@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
def test_secret_stored_in_clear_is_scrubbed_when_read(fault_db_factory: Any, tmp_path: Path, dialect: str) -> None:
    """A row whose error holds a secret in clear (written by an older release) is scrubbed when read back, so
    `status --json` run with the secret known does not print it."""
    fdb = fault_db_factory(dialect)
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_t.sql").write_text("-- premigrate:no-transaction\nCREATE TABLE t (a int);\nSELECT nonsense garbage;\n")
    env = fdb.env(PREMIGRATE_PLACEHOLDERS="1", PREMIGRATE_PLACEHOLDER_APP_DB_PASSWORD=PLACEHOLDER_PASSWORD)
    assert 4 == premigrate("secret placeholders", "up", "--dir", str(folder), env=env, cwd=tmp_path).returncode
    fdb.q(f"UPDATE premigrate_history SET error = 'near ''IDENTIFIED BY \"{PLACEHOLDER_PASSWORD}\"'''")

    status = premigrate("secret placeholders", "status", "--json", "--dir", str(folder), env=env, cwd=tmp_path)

    assert 'IDENTIFIED BY \\"***\\"' in status.stdout
