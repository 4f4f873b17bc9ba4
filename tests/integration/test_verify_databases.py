"""verify's algorithm (engine/verify.py) with real snapshots (engine/schema_snapshot.py) in a real scratch database
(engine/scratch.py), on PostgreSQL, MariaDB and SQLite: the acceptance folder of issue 17 (one down drops the wrong
index, one up is not re-runnable after its down, the rest fine) and a clean folder. Up and down parts are run as
plain SQL here; the command plugs the executor into the same three calls."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from premigrate.engine.schema_snapshot import snapshot
from premigrate.engine.scratch import Scratch, recreate, scratch_database
from premigrate.engine.verify import (
    DOWN_DIFFERS,
    NO_DOWN,
    REAPPLY_FAILED,
    VERIFIED,
    Step,
    verify,
)
from premigrate.model.dsn import parse_url
from premigrate.model.schema_diff import Schema
from tests.support import server_url

Folder = list[tuple[str, list[str], list[str] | None]]


def folder(dialect: str, *, broken: bool) -> Folder:
    seq = {"postgresql": "SERIAL PRIMARY KEY", "mysql": "INTEGER PRIMARY KEY AUTO_INCREMENT",
           "sqlite": "INTEGER PRIMARY KEY"}[dialect]
    migrations: Folder = [
        ("1_users", [f"CREATE TABLE users (id {seq}, email VARCHAR(100), name VARCHAR(100))"],
         ["DROP TABLE users"]),
        ("2_indexes", ["CREATE INDEX users_email ON users (email)", "CREATE INDEX users_name ON users (name)"],
         ["DROP INDEX users_name" + (" ON users" if dialect == "mysql" else ""),
          "DROP INDEX users_email" + (" ON users" if dialect == "mysql" else "")]),
        ("3_seed", ["INSERT INTO users (email, name) VALUES ('a@example.org', 'A')"], None),
        ("4_unique_email", ["CREATE UNIQUE INDEX users_email_unique ON users (email)"],
         ["DROP INDEX users_email_unique" + (" ON users" if dialect == "mysql" else "")]),
    ]
    if broken:
        on = " ON users" if dialect == "mysql" else ""
        # The down drops the wrong index (users_name instead of the users_email this up creates).
        migrations.append(("5_wrong_down", ["CREATE INDEX users_email_name ON users (email, name)"],
                           [f"DROP INDEX users_name{on}"]))
        # Data-dependent: the down restores the schema but leaves the row, which the unique index of 4 then
        # refuses when up runs again.
        migrations.append(("6_not_rerunnable",
                           ["INSERT INTO users (email, name) VALUES ('admin@example.org', 'Admin')",
                            "CREATE INDEX users_admin ON users (name, email)"],
                           [f"DROP INDEX users_admin{on}"]))
    return migrations


@dataclass
class SqlTarget:
    """The three calls of VerifyTarget, done with plain SQL on one connection."""

    scratch: Scratch
    migrations: dict[str, tuple[list[str], list[str] | None]]

    def __post_init__(self) -> None:
        self.dialect = self.scratch.dsn.dialect
        self.conn = connect(self.scratch)

    def _run(self, statements: list[str]) -> None:
        for statement in statements:
            if self.dialect == "mysql":
                with self.conn.cursor() as cur:
                    cur.execute(statement)
            else:
                self.conn.execute(statement)

    def up(self, migration_id: str) -> None:
        self._run(self.migrations[migration_id][0])

    def down(self, migration_id: str) -> None:
        self._run(self.migrations[migration_id][1] or [])

    def snapshot(self) -> Schema:
        return snapshot(self.conn, self.dialect, self.scratch.schema)

    def reset(self) -> None:
        self.conn.close()
        recreate(self.scratch)
        self.conn = connect(self.scratch)


def connect(scratch: Scratch) -> Any:
    dsn = scratch.dsn
    if dsn.dialect == "sqlite":
        return sqlite3.connect(dsn.database or "", isolation_level=None)
    if dsn.dialect == "postgresql":
        import psycopg

        return psycopg.connect(host=dsn.host, port=dsn.port, user=dsn.user, dbname=dsn.database, autocommit=True)
    import pymysql  # type: ignore[import-untyped]

    return pymysql.connect(host=dsn.host, port=dsn.port or 3306, user=dsn.user, password=dsn.password or "",
                           database=dsn.database, autocommit=True)


def run_verify(dialect: str, tmp_path: Path, migrations: Folder) -> tuple[Any, str]:
    url = f"sqlite:///{tmp_path / 'app.db'}" if dialect == "sqlite" else server_url(dialect)
    with scratch_database(parse_url(url)) as scratch:
        target = SqlTarget(scratch, {m: (up, down) for m, up, down in migrations})
        try:
            report = verify([Step(m, down is not None) for m, _, down in migrations], target)
        finally:
            target.conn.close()
    return report, scratch.name


class TestVerifyOnDatabases:
    def test_acceptance_folder(self, dialect: str, tmp_path: Path) -> None:
        """Wrong down and non-re-runnable up are each reported, the rest verified, exit 5."""
        report, _ = run_verify(dialect, tmp_path, folder(dialect, broken=True))
        assert {"6_not_rerunnable": REAPPLY_FAILED, "5_wrong_down": DOWN_DIFFERS, "4_unique_email": VERIFIED,
                "3_seed": NO_DOWN, "2_indexes": VERIFIED, "1_users": VERIFIED} == {
            r.migration_id: r.status for r in report.results}
        assert 5 == report.exit_code

    def test_wrong_down_is_named(self, dialect: str, tmp_path: Path) -> None:
        """The down that drops the wrong index: both indexes named in the report, the others verified."""
        migrations = [m for m in folder(dialect, broken=True) if m[0] != "6_not_rerunnable"]
        report, _ = run_verify(dialect, tmp_path, migrations)
        results = {r.migration_id: r for r in report.results}
        assert {"5_wrong_down": DOWN_DIFFERS, "4_unique_email": VERIFIED, "3_seed": NO_DOWN,
                "2_indexes": VERIFIED, "1_users": VERIFIED} == {m: r.status for m, r in results.items()}
        assert [("index", "users.users_email_name", "added"), ("index", "users.users_name", "removed")] == [
            (d.kind, d.name, d.change) for d in results["5_wrong_down"].differences]
        assert "database rebuilt from empty up to 2_indexes: 3_seed has no down part" == results["2_indexes"].detail

    def test_clean_folder(self, dialect: str, tmp_path: Path) -> None:
        """A clean folder verifies: exit 0, and the scratch database is gone afterwards."""
        report, name = run_verify(dialect, tmp_path, folder(dialect, broken=False))
        assert 0 == report.exit_code, [r.message for r in report.results]
        assert {"4_unique_email": VERIFIED, "3_seed": NO_DOWN, "2_indexes": VERIFIED, "1_users": VERIFIED} == {
            r.migration_id: r.status for r in report.results}
        assert not any(name in p.name for p in tmp_path.iterdir())
