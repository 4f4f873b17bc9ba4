"""A run that ends between two migrations run statement by statement (a failing afterEachMigrate, here) after the
next migration's first history row was written ahead with the previous one's final row: that row is withdrawn, so
the next run sees the next migration pending, not "statement 1 in doubt"; the migration that was recorded counts as
applied in the summary."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.helpers import up, write
from tests.support import TestDatabase


def test_a_failing_after_each_leaves_the_next_migration_pending(db: TestDatabase, migrations_dir: Path) -> None:
    no_tx = "-- premigrate:no-transaction\n"
    write(migrations_dir, "001_a.sql", no_tx + "CREATE TABLE a (id INTEGER);\n")
    write(migrations_dir, "002_b.sql", no_tx + "CREATE TABLE b (id INTEGER);\n")
    write(migrations_dir, "afterEachMigrate.sql", "SELECT * FROM no_such_table;\n")
    result = up(db, migrations_dir)
    assert 4 == result.returncode, result.stderr[-2000:]
    assert [("1", "applied")] == [(r["version"], r["state"]) for r in db.history()]
    assert 1 == result.find("summary")[0]["applied"]
    assert ["1"] == [e["version"] for e in result.find("migration_applied")]
    assert "b" not in db.tables()
    (migrations_dir / "afterEachMigrate.sql").unlink()  # the callback fixed (here: gone)
    again = up(db, migrations_dir)
    assert 0 == again.returncode, again.stderr[-2000:]
    assert [("1", "applied"), ("2", "applied")] == [(r["version"], r["state"]) for r in db.history()]
