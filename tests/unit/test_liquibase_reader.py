"""A Liquibase changelog folder read into listed migrations (model/formats/liquibase/reader.py), without a database."""

from __future__ import annotations

from pathlib import Path

import pytest

from premigrate.errors import MigrationFileError
from premigrate.model.listed import Filters
from premigrate.model.migrations import load_migrations
from premigrate.model.sql import split_migration

HEADER = "--liquibase formatted sql\n"
FUNCTION = """CREATE FUNCTION f() RETURNS int AS $$
BEGIN
  RETURN 1;
END;
$$ LANGUAGE plpgsql;
SELECT f();
"""


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_changesets_become_listed_migrations(tmp_path: Path) -> None:
    folder(tmp_path, {"a.sql": HEADER + "--changeset ann:1 runOnChange:true\nCREATE TABLE a (id int);\n"
                                        "--rollback DROP TABLE a;\n\n--changeset bob:2 runAlways:true\nSELECT 1;\n",
                      "b.sql": HEADER + "--changeset ann:1\n--comment the b table\nCREATE TABLE b (id int);\n"})
    files = load_migrations(tmp_path)
    assert not files.versioned and not files.repeatable
    assert [("a.sql::1::ann", 1, "on_change"), ("a.sql::2::bob", 2, "always"), ("b.sql::1::ann", 3, "never")] == [
        (m.id, m.position, m.rerun) for m in files.listed]
    first = files.listed[0]
    assert ("listed", None, "liquibase", "a.sql") == (first.kind, first.version, first.format, first.script)
    assert first.checksum.startswith("9:") and first.down_sql == "DROP TABLE a"
    assert "the b table" == files.listed[2].description
    assert ["CREATE TABLE a (id int)"] == [s.text for s in split_migration(first, "sqlite")]


@pytest.mark.parametrize(("header", "filters", "reason"), [
    ("dbms:postgresql", Filters(dbms="sqlite"), "dbms:postgresql (this database is sqlite)"),
    ("dbms:!sqlite", Filters(dbms="sqlite"), "dbms:!sqlite (this database is sqlite)"),
    ("dbms:mysql", Filters(dbms="mariadb"), "dbms:mysql (this database is mariadb)"),
    ("dbms:mariadb", Filters(dbms="mariadb"), None),
    ("dbms:postgresql", Filters(), None),  # no database known: nothing skipped for it
    ("context:test", Filters(contexts=("prod",)), "context 'test' does not match --contexts prod"),
    ("context:test", Filters(), None),  # no --contexts: every changeset, as Liquibase
    ("labels:beta", Filters(labels="!beta"), "labels beta do not match --labels '!beta'"),
    ("ignore:true", Filters(), "ignore:true"),
])
def test_skip_reasons(tmp_path: Path, header: str, filters: Filters, reason: str | None) -> None:
    folder(tmp_path, {"c.sql": f"{HEADER}--changeset a:1 {header}\nSELECT 1;\n"})
    [migration] = load_migrations(tmp_path, filters=filters).listed
    assert reason == migration.skip_reason


def test_broken_dollar_quote_split_as_postgresql_sees_it_unless_strict(tmp_path: Path) -> None:
    folder(tmp_path, {"f.sql": HEADER + "--changeset a:fn\n" + FUNCTION})
    [migration] = load_migrations(tmp_path, filters=Filters(dbms="postgresql")).listed
    statements = [s.text for s in split_migration(migration, "postgresql")]
    assert 2 == len(statements) and statements[0].endswith("$$ LANGUAGE plpgsql")
    assert 2 < len(migration.source.statements)  # type: ignore[union-attr]  # Liquibase's own cut
    with pytest.raises(MigrationFileError, match="splitStatements:false"):
        load_migrations(tmp_path, filters=Filters(dbms="postgresql", strict=True))
    fixed = HEADER + "--changeset a:fn splitStatements:false\n" + FUNCTION
    folder(tmp_path, {"f.sql": fixed})
    [whole] = load_migrations(tmp_path, filters=Filters(dbms="postgresql", strict=True)).listed
    assert 1 == len(split_migration(whole, "postgresql"))


def test_detection_and_refusals(tmp_path: Path) -> None:
    """auto: the first .sql file's header or a master changelog; a plain file in a changelog folder is refused."""
    folder(tmp_path, {"001.sql": HEADER + "--changeset a:1\nSELECT 1;\n", "002.sql": "SELECT 2;\n"})
    with pytest.raises(MigrationFileError, match=r"002\.sql"):
        load_migrations(tmp_path)
    other = folder(tmp_path / "m", {"changelog.yaml": "databaseChangeLog:\n  - include:\n      file: x/1.sql\n",
                                    "x/1.sql": HEADER + "--changeset a:1\nSELECT 1;\n"})
    assert ["x/1.sql::1::a"] == [m.id for m in load_migrations(other).listed]
    plain = folder(tmp_path / "p", {"001_a.sql": "SELECT 1;\n"})
    assert not load_migrations(plain).listed


def test_new_refuses_a_changelog(tmp_path: Path) -> None:
    """`new` writes files; a changeset is written into a changelog file, so `new` refuses rather than break it."""
    from datetime import datetime, timezone

    from premigrate.commands.new import create
    from premigrate.errors import UsageError

    folder(tmp_path, {"changelog.sql": HEADER + "--changeset a:1\nSELECT 1;\n"})
    files = load_migrations(tmp_path)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for style in (None, "liquibase"):
        with pytest.raises(UsageError, match="--changeset"):
            create(tmp_path, files, "add x", style, now)
    assert ["changelog.sql"] == [p.name for p in tmp_path.iterdir()]
