"""Every registered tool's layout through one scenario on PostgreSQL, MariaDB and SQLite: a failure mid-file, the
fix applied, a no-op re-run, down where the tool has downs, drift refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import cmd, up
from tests.support import TestDatabase

UP1 = "CREATE TABLE t1 (id INTEGER);\nINSERT INTO t1 (id) VALUES (1);\n"
DOWN1 = "DROP TABLE t1;\n"
UP2_BROKEN = "CREATE TABLE t2 (id INTEGER);\nINSERT INTO missing_table VALUES (1);\n"
UP2 = "CREATE TABLE t2 (id INTEGER);\nINSERT INTO t2 (id) VALUES (2);\n"
DOWN2 = "DROP TABLE t2;\n"
PROVIDERS = {"postgresql": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}

Writer = Callable[[Path, str, list[tuple[str, str]]], dict[str, str]]


def _put(folder: Path, files: dict[str, str]) -> dict[str, str]:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return files


def goose(folder: Path, dialect: str, migrations: list[tuple[str, str]]) -> dict[str, str]:
    return _put(folder, {f"{i:05d}_m{i}.sql": f"-- +goose Up\n{u}-- +goose Down\n{d}"
                         for i, (u, d) in enumerate(migrations, 1)})


def sql_migrate(folder: Path, dialect: str, migrations: list[tuple[str, str]]) -> dict[str, str]:
    return _put(folder, {f"{i}_m{i}.sql": f"-- +migrate Up\n{u}-- +migrate Down\n{d}"
                         for i, (u, d) in enumerate(migrations, 1)})


def sqlx(folder: Path, dialect: str, migrations: list[tuple[str, str]]) -> dict[str, str]:
    files = {}
    for i, (u, d) in enumerate(migrations, 1):
        files[f"2024010100000{i}_m{i}.up.sql"] = u
        files[f"2024010100000{i}_m{i}.down.sql"] = d
    return _put(folder, files)


def atlas(folder: Path, dialect: str, migrations: list[tuple[str, str]]) -> dict[str, str]:
    from premigrate.model.formats.atlas import hash_file, total_sum

    files = _put(folder, {f"2024010100000{i}_m{i}.sql": u for i, (u, _) in enumerate(migrations, 1)})
    entries = hash_file([(n, (folder / n).read_bytes()) for n in sorted(files)])
    (folder / "atlas.sum").write_text(f"h1:{total_sum(entries)}\n" + "".join(f"{n} h1:{h}\n" for n, h in entries))
    return files


def prisma(folder: Path, dialect: str, migrations: list[tuple[str, str]]) -> dict[str, str]:
    (folder / "migration_lock.toml").write_text(f'provider = "{PROVIDERS[dialect]}"\n')
    return _put(folder, {f"2024010100000{i}_m{i}/migration.sql": u for i, (u, _) in enumerate(migrations, 1)})


def diesel(folder: Path, dialect: str, migrations: list[tuple[str, str]]) -> dict[str, str]:
    files = {}
    for i, (u, d) in enumerate(migrations, 1):
        files[f"2024-01-01-00000{i}_m{i}/up.sql"] = u
        files[f"2024-01-01-00000{i}_m{i}/down.sql"] = d
    return _put(folder, files)


def drizzle(folder: Path, dialect: str, migrations: list[tuple[str, str]]) -> dict[str, str]:
    entries = [{"idx": i - 1, "version": "7", "when": 1700000000000 + i, "tag": f"000{i}_m{i}", "breakpoints": True}
               for i in range(1, len(migrations) + 1)]
    (folder / "meta").mkdir(exist_ok=True)
    (folder / "meta" / "_journal.json").write_text(json.dumps({"dialect": PROVIDERS[dialect], "entries": entries}))
    return _put(folder, {f"000{i}_m{i}.sql": u.replace(";\n", ";\n--> statement-breakpoint\n", 1)
                         for i, (u, _) in enumerate(migrations, 1)})


def popx(folder: Path, dialect: str, migrations: list[tuple[str, str]]) -> dict[str, str]:
    suffix = {"postgresql": "postgres", "mysql": "mysql", "sqlite": "sqlite3"}[dialect]
    files = {}
    for i, (u, d) in enumerate(migrations, 1):
        files[f"2024010100000000000{i}_m{i}.up.sql"] = "SELECT 'not for this database' FROM no_such_table;\n"
        files[f"2024010100000000000{i}_m{i}.{suffix}.up.sql"] = u
        files[f"2024010100000000000{i}_m{i}.down.sql"] = d
    return _put(folder, files)


FORMATS: dict[str, tuple[Writer, bool]] = {  # name -> (writer, has downs)
    "goose": (goose, True), "sql-migrate": (sql_migrate, True), "sqlx": (sqlx, True), "atlas": (atlas, False),
    "prisma": (prisma, False), "diesel": (diesel, True), "drizzle": (drizzle, False), "popx": (popx, True),
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_scenario(fmt: str, db: TestDatabase, migrations_dir: Path) -> None:
    write, has_downs = FORMATS[fmt]
    write(migrations_dir, db.dialect, [(UP1, DOWN1), (UP2_BROKEN, DOWN2)])
    failed = up(db, migrations_dir, "--format", fmt)
    assert 4 == failed.returncode, failed.stderr[-2000:]
    assert [(1,)] == [tuple(r) for r in db.query("SELECT id FROM t1")]
    if db.dialect == "mysql":
        return  # MariaDB commits DDL: the failed file is recorded for `repair` (covered by the repair tests)
    assert "t2" not in db.tables()  # rolled back
    for path in list(migrations_dir.rglob("*")):
        if path.is_file() and path.name != "atlas.sum" and not path.is_relative_to(migrations_dir / "meta"):
            path.unlink()
    write(migrations_dir, db.dialect, [(UP1, DOWN1), (UP2, DOWN2)])
    fixed = up(db, migrations_dir, "--format", fmt)
    assert 0 == fixed.returncode, fixed.stderr[-2000:]
    assert [(2,)] == [tuple(r) for r in db.query("SELECT id FROM t2")]
    again = up(db, migrations_dir, "--format", fmt)
    assert 0 == again.returncode and '"nothing_to_do"' in again.stderr
    if has_downs:
        down = cmd("down", db, migrations_dir, "--format", fmt, "--steps", "1", "--yes")
        assert 0 == down.returncode, down.stderr[-2000:]
        assert "t2" not in db.tables() and "t1" in db.tables()
        assert 0 == up(db, migrations_dir, "--format", fmt).returncode
    write(migrations_dir, db.dialect, [(UP1.replace("VALUES (1)", "VALUES (11)"), DOWN1), (UP2, DOWN2)])
    drift = up(db, migrations_dir, "--format", fmt)
    assert 5 == drift.returncode, drift.stderr[-2000:]
    assert [(1,)] == [tuple(r) for r in db.query("SELECT id FROM t1")]
