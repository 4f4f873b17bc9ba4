"""Review rv3's reproductions, end to end on PostgreSQL: each folder is run as its own tool runs it, or refused
before anything runs (exit 5, naming the file) where the tool would refuse it or premigrate would read it otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import cmd, up
from tests.support import TestDatabase

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"])


def write_all(directory: Path, files: dict[str, str | bytes]) -> None:
    for name, content in files.items():
        if isinstance(content, bytes):
            (directory / name).write_bytes(content)
        else:
            (directory / name).write_text(content, encoding="utf-8")


def user_tables(db: TestDatabase) -> set[str]:
    return db.tables() - {"premigrate_history"}


@pytest.mark.parametrize(("files", "named"), [
    pytest.param({"1_a.sql": "-- +migrate Up\nCREATE TABLE s1 (id int);\n-- +migrate Down\nDROP TABLE s1;\n",
                  "2_b.sql": "-- +migrate up\nCREATE TABLE s2 (id int);\n-- +migrate down\nDROP TABLE s2;\n"},
                 "2_b.sql: line 1: '-- +migrate up'", id="sm1-sql-migrate-lowercase"),
    pytest.param({"00001_a.sql": "-- +goose Up\nCREATE TABLE g1 (id int);\n-- +goose Down\nDROP TABLE g1;\n",
                  "00002_b.sql": "-- goose Up\nCREATE TABLE g2 (id int);\n-- goose Down\nDROP TABLE g2;\n"},
                 "00002_b.sql: line 1: '-- goose Up'", id="g1-goose-without-plus"),
])
def test_near_miss_annotation_refused(db: TestDatabase, migrations_dir: Path, files: dict[str, str | bytes],
                                      named: str) -> None:
    write_all(migrations_dir, files)
    result = up(db, migrations_dir)
    assert 5 == result.returncode, result.stderr
    assert named in result.stderr
    assert set() == user_tables(db)


class TestDbmate:
    DBM1: dict[str, str | bytes] = {
        "9_insert.sql": "-- migrate:up\nINSERT INTO t VALUES (1);\n-- migrate:down\nDELETE FROM t;\n",
        "10_create.sql": "-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\nDROP TABLE t;\n",
    }

    @pytest.mark.parametrize("fmt", ["dbmate", "auto"])
    def test_file_name_order(self, db: TestDatabase, migrations_dir: Path, fmt: str) -> None:
        """dbm1: dbmate runs 10_create.sql before 9_insert.sql (names compared as text), and reverts 9 first."""
        write_all(migrations_dir, self.DBM1)
        result = up(db, migrations_dir, "--format", fmt)
        assert 0 == result.returncode, result.stderr
        assert [(1,)] == [tuple(r) for r in db.query("SELECT id FROM t")]
        down = cmd("down", db, migrations_dir, "--format", fmt, "--steps", "1", "--yes")
        assert 0 == down.returncode, down.stderr
        assert [] == db.query("SELECT id FROM t")
        assert ["10"] == [r["migration_id"] for r in db.history() if r["state"] == "applied"]

    def test_down_transaction_false(self, db: TestDatabase, migrations_dir: Path) -> None:
        """dbm5: `-- migrate:down transaction:false` runs the down part outside a transaction, as dbmate's Rollback
        does, so its DROP INDEX CONCURRENTLY works."""
        write_all(migrations_dir, {"20240101000000_d.sql": "-- migrate:up\nCREATE TABLE d (id int);\n"
                                   "CREATE INDEX d_i ON d (id);\n-- migrate:down transaction:false\n"
                                   "DROP INDEX CONCURRENTLY d_i;\nDROP TABLE d;\n"})
        assert 0 == up(db, migrations_dir).returncode
        result = cmd("down", db, migrations_dir, "--steps", "1", "--yes")
        assert 0 == result.returncode, result.stderr
        assert set() == user_tables(db)

    @pytest.mark.parametrize(("files", "named"), [
        pytest.param({"20240101000000_a.sql": "-- migrate:up transaction:FALSE\nCREATE TABLE a (id int);\n"
                      "SELECT 1/0;\n-- migrate:down\nDROP TABLE a;\n"},
                     "unknown '-- migrate:up' option 'transaction:FALSE'", id="dbm2-option-case"),
        pytest.param({"20240101000000_c.sql": "  -- migrate:up\nCREATE TABLE c (id int);\n  -- migrate:down\n"
                      "DROP TABLE c;\n"}, "20240101000000_c.sql: line 1:", id="dbm4-indented"),
    ])
    def test_refused_before_anything_runs(self, db: TestDatabase, migrations_dir: Path,
                                          files: dict[str, str | bytes], named: str) -> None:
        write_all(migrations_dir, files)
        result = up(db, migrations_dir)
        assert 5 == result.returncode, result.stderr
        assert named in result.stderr
        assert set() == user_tables(db)

    def test_missing_down_refused(self, db: TestDatabase, migrations_dir: Path) -> None:
        """dbm3 with --format dbmate: ErrParseMissingDown."""
        write_all(migrations_dir, {"20240101000000_b.sql": "-- migrate:up\nCREATE TABLE b (id int);\n"})
        result = up(db, migrations_dir, "--format", "dbmate")
        assert 5 == result.returncode, result.stderr
        assert "no '-- migrate:down' line; dbmate requires" in result.stderr
        assert set() == user_tables(db)


def test_flyway_lowercase_prefix_ignored(db: TestDatabase, migrations_dir: Path) -> None:
    """fw4: Flyway skips v2__b.sql and runs V3__c.SQL."""
    write_all(migrations_dir, {"V1__a.sql": "CREATE TABLE f3 (id int);\n", "v2__b.sql": "CREATE TABLE f4 (id int);\n",
                               "V3__c.SQL": "CREATE TABLE f5 (id int);\n"})
    result = up(db, migrations_dir, "--format", "flyway")
    assert 0 == result.returncode, result.stderr
    assert "migration_file_ignored" in result.stderr and "v2__b.sql" in result.stderr
    assert {"f3", "f5"} == user_tables(db)


@pytest.mark.parametrize(("files", "named"), [
    pytest.param({"20240101000000_a.sql": "CREATE TABLE sx1 (id int);\n", "init_schema.sql": "SELECT 1;\n"},
                 "init_schema.sql: sqlx fails on this name", id="sx1-non-integer-prefix"),
    pytest.param({"1_t.sql": "CREATE TABLE s (id int);\n",
                  "2_i.sql": b"\xef\xbb\xbf-- no-transaction\nCREATE TABLE s2 (id int);\nSELECT 1/0;\n"},
                 "2_i.sql: a byte-order mark comes before '-- no-transaction'", id="sx2-bom"),
])
def test_sqlx_refusals(db: TestDatabase, migrations_dir: Path, files: dict[str, str | bytes], named: str) -> None:
    write_all(migrations_dir, files)
    result = up(db, migrations_dir, "--format", "sqlx")
    assert 5 == result.returncode, result.stderr
    assert named in result.stderr
    assert set() == user_tables(db)


def test_goose_uppercase_suffix_ignored(db: TestDatabase, migrations_dir: Path) -> None:
    """g2: goose's glob `*.sql` does not see 00002_b.SQL."""
    write_all(migrations_dir, {"00001_a.sql": "-- +goose Up\nCREATE TABLE ga (id int);\n",
                               "00002_b.SQL": "-- +goose Up\nCREATE TABLE gb (id int);\n"})
    result = up(db, migrations_dir, "--format", "goose")
    assert 0 == result.returncode, result.stderr
    assert "migration_file_ignored" in result.stderr and "00002_b.SQL" in result.stderr
    assert {"ga"} == user_tables(db)


def test_dbmate_text_order_refusal_gives_a_fix_that_exists(db: TestDatabase, migrations_dir: Path) -> None:
    """1, 2, 9, 10 applied; a new 11_x.sql sorts before 9 in dbmate's text order. 'Renumber it after 9' cannot be
    done in that order: the refusal says to name it to sort last, or to pass --allow-out-of-order (as dbmate applies
    it)."""
    for number in (1, 2, 9, 10):
        (migrations_dir / f"{number}_t{number}.sql").write_text(
            f"-- migrate:up\nCREATE TABLE t{number} (id int);\n-- migrate:down\nDROP TABLE t{number};\n")
    assert 0 == up(db, migrations_dir).returncode
    (migrations_dir / "11_t11.sql").write_text("-- migrate:up\nCREATE TABLE t11 (id int);\n-- migrate:down\n"
                                               "DROP TABLE t11;\n")
    refused = up(db, migrations_dir)
    assert 5 == refused.returncode, refused.stderr
    error = refused.find("error")[0]["error"]
    assert "renumber it after" not in error and "name it to sort last" in error, error
    assert 0 == up(db, migrations_dir, "--allow-out-of-order").returncode
