"""Rows affected and database size in `up`'s events and summary, on PostgreSQL, MariaDB and SQLite."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.helpers import up, write
from tests.support import TestDatabase

SEED = """CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20));
INSERT INTO items (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c');
UPDATE items SET name = 'b' WHERE id IN (1, 2);
DELETE FROM items WHERE id = 3;
"""


class TestRunMetrics:
    def test_rows_affected_per_statement_and_sizes(self, db: TestDatabase, migrations_dir: Path,
                                                   tmp_path: Path) -> None:
        """DDL has no count, DML its count (an UPDATE counts the rows it matched); sizes bracket the run."""
        write(migrations_dir, "001_seed.sql", SEED)
        summary_file = tmp_path / "summary.json"
        result = up(db, migrations_dir, "--summary-file", str(summary_file))
        assert 0 == result.returncode, result.stderr
        [applied] = result.find("migration_applied")
        assert ([None, 3, 2, 1], 6) == (applied["rows_affected_per_statement"], applied["rows_affected"])
        [summary] = result.find("summary")
        assert 6 == summary["rows_affected"]
        for key in ("database_size_before", "database_size_after"):
            assert isinstance(summary[key]["bytes"], int) and summary[key]["bytes"] > 0, summary
        written = json.loads(summary_file.read_text())
        assert (6, summary["database_size_after"]) == (written["rows_affected"], written["database_size_after"])

    def test_no_op_run_measures_nothing(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A run with nothing to do measures no size: the no-op path stays one read."""
        write(migrations_dir, "001_seed.sql", SEED)
        assert 0 == up(db, migrations_dir).returncode
        result = up(db, migrations_dir)
        [summary] = result.find("summary")
        assert (0, False) == (summary["rows_affected"], "database_size_before" in summary)
