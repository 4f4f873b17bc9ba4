"""A real public project's Liquibase formatted SQL changelog, applied by premigrate and, for comparison, changeset by
changeset with the database's own client the way Liquibase runs it (each changeset's SQL in one transaction, in
changelog order): the resulting schemas must be the same.

liquibase-examples/gha-cd-bagelstore-demo is Liquibase's own continuous-delivery example (PostgreSQL). Its
db/changelog/changesets folder holds the formatted SQL changesets; its master changelog
(db/changelog/changelog-master.yaml) includes them between two `tagDatabase` changeSets, a change type premigrate
does not run: that master is refused, naming it, and the folder of changesets is applied as Liquibase's
`includeAll path="changesets/"` applies it (files in path order, changesets in file order). Extracted at test time
from the fetched mirror (tests/e2e/test_real_folders.extract); skipped only when the mirror or its commit is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.e2e.helpers import cmd, up
from tests.e2e.test_real_folders import RealProject, apply_with_client, extract, schema
from tests.support import TestDatabase

BAGELSTORE = RealProject("liquibase-examples/gha-cd-bagelstore-demo", "018d7b4149d39f8c6225ff5bec3a63275e1facd1",
                         "db/changelog", "liquibase", "postgresql")
CHANGESET = re.compile(r"^--\s*changeset\s+\S+", re.IGNORECASE)
# Lines of a formatted SQL changelog that are Liquibase's, not SQL (its documented `--` attribute lines).
LIQUIBASE_LINE = re.compile(r"^--\s*(liquibase\s+formatted|rollback\b|comment\b|preconditions?\b|validCheckSum\b)",
                            re.IGNORECASE)


def liquibase_steps(folder: Path) -> list[tuple[str, bool]]:
    """Each changeset's SQL, in includeAll order (files by path, changesets by position): written independently of
    premigrate's parser, from Liquibase's documented format."""
    steps: list[tuple[str, bool]] = []
    for path in sorted(folder.rglob("*.sql"), key=lambda p: p.relative_to(folder).as_posix()):
        current: list[str] | None = None
        for line in path.read_text().splitlines():
            if CHANGESET.match(line):
                if current is not None:
                    steps.append(("\n".join(current), True))
                current = []
            elif current is not None and not LIQUIBASE_LINE.match(line):
                current.append(line)
        if current is not None:
            steps.append(("\n".join(current), True))
    return steps


def test_bagelstore_changesets_match_liquibase(tmp_path: Path) -> None:
    root = extract(BAGELSTORE, tmp_path / "src")
    folder = root / "changesets"
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours = TestDatabase.create("postgresql", tmp_path / "ours")
    theirs = TestDatabase.create("postgresql", tmp_path / "theirs")
    try:
        result = up(ours, folder, "--lint", "off")  # auto: the formatted SQL header names Liquibase
        assert 0 == result.returncode, result.stderr[-3000:]
        applied = [e["migration_id"] for e in result.find("migration_applied")]
        assert 7 == len(applied)
        assert "001-create-products-table.sql::001-create-products-table::demo" == applied[0]
        again = up(ours, folder)
        assert 0 == again.returncode and '"nothing_to_do"' in again.stderr, again.stderr[-2000:]
        steps = liquibase_steps(folder)
        assert 7 == len(steps)
        apply_with_client(theirs, steps, tmp_path)
        assert schema(theirs) == schema(ours)
        assert "CREATE TABLE public.order_items" in schema(ours)
        assert [(5,)] == ours.query("SELECT COUNT(*) FROM products")
        # its rollbacks undo it: down through every changeset leaves no table of it
        down = cmd("down", ours, folder, "--steps", "7", "--yes")
        assert 0 == down.returncode, down.stderr[-2000:]
        assert {ours.table} == ours.tables()
    finally:
        ours.drop()
        theirs.drop()


def test_bagelstore_master_changelog_is_refused_naming_tag_database(tmp_path: Path) -> None:
    """The master changelog's tagDatabase changeSets are a change type premigrate does not run: refused, named."""
    root = extract(BAGELSTORE, tmp_path / "src")
    (tmp_path / "db").mkdir()
    db = TestDatabase.create("sqlite", tmp_path / "db")
    result = up(db, root)
    assert 5 == result.returncode
    assert "tagDatabase" in result.stderr and "changelog-master.yaml" in result.stderr
    assert set() == db.tables()
