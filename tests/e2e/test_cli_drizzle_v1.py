"""Drizzle v1 folders (`<ts>_<name>/migration.sql`) end to end on every database Drizzle supports."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.e2e.helpers import up
from tests.support import TestDatabase, run_cli

DIALECT = {"postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}
INIT = "20250101120000_init"
MORE = "20250102093000_more"


def folder(migrations_dir: Path, dialect: str, more: str) -> None:
    for name, sql in ((INIT, "CREATE TABLE a (id INTEGER);\n--> statement-breakpoint\n"
                             "INSERT INTO a (id) VALUES (1);--> statement-breakpoint\nCREATE TABLE b (id INTEGER);\n"),
                      (MORE, more)):
        (migrations_dir / name).mkdir()
        (migrations_dir / name / "migration.sql").write_text(sql)
        (migrations_dir / name / "snapshot.json").write_text(json.dumps({"dialect": DIALECT[dialect]}))


class TestDrizzleV1:
    def test_apply_rerun_failure_mid_file_and_drift(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Folders apply in name order; a failing statement is exit 4 naming its line; fixed it applies, a re-run is
        a no-op, and an edited applied migration.sql is drift (exit 5)."""
        folder(migrations_dir, db.dialect, "INSERT INTO a (id) VALUES (2);\n--> statement-breakpoint\n"
                                           "INSERT INTO nowhere VALUES (1);\n")
        result = up(db, migrations_dir)
        assert 4 == result.returncode and '"line": 3' in result.stderr and MORE in result.stderr
        assert {"a", "b"} <= db.tables()
        if db.dialect == "mysql":
            return  # MySQL keeps the first statement: a recorded failure, which `repair` settles
        assert [(1,)] == [tuple(r) for r in db.query("SELECT id FROM a")]
        (migrations_dir / MORE / "migration.sql").write_text("INSERT INTO a (id) VALUES (2);\n")
        assert 0 == up(db, migrations_dir).returncode
        assert [(1,), (2,)] == [tuple(r) for r in db.query("SELECT id FROM a ORDER BY id")]
        assert ["20250101120000", "20250102093000"] == [r["migration_id"] for r in db.history()]
        again = up(db, migrations_dir)
        assert 0 == again.returncode and '"applied": 0' in again.stderr.replace('"applied":0', '"applied": 0')
        (migrations_dir / INIT / "migration.sql").write_text("CREATE TABLE a (id INTEGER);\n")
        drift = up(db, migrations_dir)
        assert 5 == drift.returncode and f"{INIT}/migration.sql" in drift.stderr

    def test_baseline_from_drizzle_by_hash(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A database Drizzle v1 migrated (its table holds hash, created_at and name) is adopted by hash."""
        folder(migrations_dir, db.dialect, "CREATE TABLE c (id INTEGER);\n")
        db.execute("CREATE TABLE a (id INTEGER)")
        db.execute("CREATE TABLE b (id INTEGER)")
        digest = hashlib.sha256((migrations_dir / INIT / "migration.sql").read_bytes()).hexdigest()
        if db.dialect == "postgresql":
            db.execute("CREATE SCHEMA drizzle")
            table = 'drizzle."__drizzle_migrations"'
            db.execute(f"CREATE TABLE {table} (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint, "
                       "name text)")
        else:
            table = "`__drizzle_migrations`" if db.dialect == "mysql" else '"__drizzle_migrations"'
            db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, hash text NOT NULL, created_at bigint, "
                       "name text)")
        # created_at = Date.UTC(2025, 0, 1, 12, 0, 0), as drizzle-orm's formatToMillis computes it from the name.
        db.execute(f"INSERT INTO {table} (id, hash, created_at, name) VALUES (1, '{digest}', 1735732800000, "
                   f"'{INIT}')")
        result = run_cli("baseline", "--dir", str(migrations_dir), "--from", "drizzle",
                         env={"DATABASE_URL": db.url})
        assert 0 == result.returncode, result.stderr
        assert ["20250101120000"] == [r["migration_id"] for r in db.history()]
        assert 0 == up(db, migrations_dir).returncode
        assert "c" in db.tables()
