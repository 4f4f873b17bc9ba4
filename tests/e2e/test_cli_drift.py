"""An applied file that was edited is drift (exit 5, nothing applied after it); line endings and a BOM are not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import cmd, file_checksum, up, write
from tests.support import TestDatabase

FIRST = "-- users\nCREATE TABLE users (id INTEGER PRIMARY KEY);\n\nCREATE TABLE roles (id INTEGER PRIMARY KEY);\n"
EDITED = FIRST.replace("roles (id INTEGER PRIMARY KEY)", "roles (id INTEGER PRIMARY KEY, name VARCHAR(50))")
SECOND = "CREATE TABLE orders (id INTEGER PRIMARY KEY);\n"
THIRD = "CREATE TABLE invoices (id INTEGER PRIMARY KEY);\n"


@pytest.fixture
def applied(db: TestDatabase, migrations_dir: Path) -> TestDatabase:
    write(migrations_dir, "001_users.sql", FIRST)
    write(migrations_dir, "002_orders.sql", SECOND)
    assert 0 == up(db, migrations_dir).returncode
    return db


class TestEditedFileIsDrift:
    def test_up_exits_5_naming_file_and_checksums(self, applied: TestDatabase, migrations_dir: Path) -> None:
        """After editing an applied file, `up` exits 5 and names the file with the recorded and current checksums."""
        recorded = {r["migration_id"]: r["checksum"] for r in applied.history()}["1"]
        write(migrations_dir, "001_users.sql", EDITED)

        result = up(applied, migrations_dir)

        assert 5 == result.returncode, result.stderr
        assert file_checksum(FIRST) == recorded
        [error] = result.find("error")
        message = error["error"]
        assert "001_users.sql" in message
        assert recorded in message
        assert file_checksum(EDITED) in message
        assert file_checksum(EDITED) != recorded

    def test_nothing_applied_after_drift(self, applied: TestDatabase, migrations_dir: Path) -> None:
        """A pending file next to a drifted one is not applied, and the history is untouched."""
        history = applied.history()
        write(migrations_dir, "001_users.sql", EDITED)
        write(migrations_dir, "003_invoices.sql", THIRD)

        result = up(applied, migrations_dir)

        assert 5 == result.returncode, result.stderr
        assert [] == result.find("migration_started")
        assert "invoices" not in applied.tables()
        assert history == applied.history()

    def test_check_reports_drift(self, applied: TestDatabase, migrations_dir: Path) -> None:
        """`check` exits 5 on an edited applied file."""
        write(migrations_dir, "001_users.sql", EDITED)

        result = cmd("check", applied, migrations_dir)

        assert 5 == result.returncode, result.stderr

    def test_check_names_its_own_events(self, applied: TestDatabase, migrations_dir: Path) -> None:
        """With two problems, `check`'s error points at the check_failed events it logged, one per problem."""
        write(migrations_dir, "001_users.sql", EDITED)
        write(migrations_dir, "002_orders.sql", SECOND.replace("orders", "orders2"))

        result = cmd("check", applied, migrations_dir)

        assert 5 == result.returncode, result.stderr
        assert result.find("error")[0]["error"].endswith("(and 1 more problem: see the check_failed events)")
        assert (["001_users.sql", "002_orders.sql"], []) == (
            [e["script"] for e in result.find("check_failed")], result.find("validation_failed"))

    def test_status_shows_changed(self, applied: TestDatabase, migrations_dir: Path) -> None:
        """`status --json` marks the edited file as changed."""
        write(migrations_dir, "001_users.sql", EDITED)

        result = cmd("status", applied, migrations_dir, "--json")

        assert 0 == result.returncode, result.stderr
        assert {"1": "changed", "2": "applied"} == {m["id"]: m["state"] for m in json.loads(result.stdout)["migrations"]}


REWRITES = [
    pytest.param(lambda text: text.replace("\n", "\r\n"), id="crlf"),
    pytest.param(lambda text: "\ufeff" + text, id="bom"),
    pytest.param(lambda text: "\ufeff" + text.replace("\n", "\r\n"), id="bom-crlf"),
]


class TestLineEndingsAreNotDrift:
    @pytest.mark.parametrize("rewrite", REWRITES)
    def test_up_is_a_no_op(self, applied: TestDatabase, migrations_dir: Path, rewrite) -> None:
        """Rewriting an applied file with CRLF line endings and/or a UTF-8 BOM is not drift: `up` exits 0, no-op."""
        history = applied.history()
        write(migrations_dir, "001_users.sql", rewrite(FIRST))
        assert FIRST.encode() != (migrations_dir / "001_users.sql").read_bytes()

        result = up(applied, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert 1 == len(result.find("nothing_to_do"))
        assert history == applied.history()

    def test_check_is_clean(self, applied: TestDatabase, migrations_dir: Path) -> None:
        """`check` exits 0 after a rewrite with a BOM and CRLF line endings."""
        write(migrations_dir, "001_users.sql", "\ufeff" + FIRST.replace("\n", "\r\n"))

        result = cmd("check", applied, migrations_dir)

        assert 0 == result.returncode, result.stderr
