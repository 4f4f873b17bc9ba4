"""Other tools' rules where premigrate used to read more leniently than the tool (review rv3): near-miss annotations
under `auto`, dbmate's sections, options and order, Flyway's case-sensitive prefixes, sqlx's names and its
`-- no-transaction` behind a byte-order mark, goose's case-sensitive `*.sql`."""

from __future__ import annotations

from pathlib import Path

import pytest

from premigrate.errors import MigrationFileError
from premigrate.model.migrations import MigrationSet, load_migrations
from premigrate.model.ordering import Ordering
from premigrate.model.planner import Policy, make_plan
from premigrate.model.versions import Version


def write(directory: Path, name: str, content: str | bytes) -> None:
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")


def load(tmp_path: Path, files: dict[str, str | bytes], fmt: str = "auto") -> MigrationSet:
    for name, content in files.items():
        write(tmp_path, name, content)
    return load_migrations(tmp_path, format=fmt)


class TestNearMissUnderAuto:
    """rubenv/sql-migrate sqlparse.go compares `Up`/`Down` exactly; pressly/goose parser.go needs `+goose`; dbmate's
    regexes are lower case: a line that nearly is one of them is no annotation to its tool, which then refuses the
    file (no Up/Down, must start with '-- +goose Up', missing up block). premigrate must not run it as plain SQL."""

    @pytest.mark.parametrize(("text", "tool", "line"), [
        pytest.param("-- +migrate up\nCREATE TABLE s2 (id int);\n-- +migrate down\nDROP TABLE s2;\n", "sql-migrate", 1,
                     id="sql-migrate-lowercase"),
        pytest.param("--+migrate Up\nSELECT 1;\n", "sql-migrate", 1, id="sql-migrate-no-space"),
        pytest.param("  -- +migrate Up\nSELECT 1;\n", "sql-migrate", 1, id="sql-migrate-indented"),
        pytest.param("-- + migrate Down notransaction\nSELECT 1;\n", "sql-migrate", 1, id="sql-migrate-options"),
        pytest.param("-- goose Up\nCREATE TABLE g2 (id int);\n-- goose Down\nDROP TABLE g2;\n", "goose", 1,
                     id="goose-without-plus"),
        pytest.param("SELECT 1;\n--goose down\nSELECT 2;\n", "goose", 2, id="goose-down-later"),
        pytest.param("-- + goose up\nSELECT 1;\n", "goose", 1, id="goose-plus-apart"),
        pytest.param("-- migrate:UP\nSELECT 1;\n-- migrate:DOWN\nSELECT 2;\n", "dbmate", 1, id="dbmate-uppercase"),
        pytest.param("-- Migrate: up transaction:false\nSELECT 1;\n", "dbmate", 1, id="dbmate-spaced"),
        pytest.param("-- migrate:up\nSELECT 1;\n-- migrate:DOWN\nSELECT 2;\n", "dbmate", 3,
                     id="dbmate-up-section-with-uppercase-down"),
    ])
    def test_refused_naming_the_line(self, tmp_path: Path, text: str, tool: str, line: int) -> None:
        write(tmp_path, "1_a.sql", "SELECT 0;\n")
        write(tmp_path, "2_b.sql", text)
        with pytest.raises(MigrationFileError, match=rf"2_b.sql: line {line}: .* looks like an annotation, but "
                                                     rf"{tool} reads only") as raised:
            load_migrations(tmp_path)
        assert "\n" not in str(raised.value)

    def test_beside_real_sql_migrate_files(self, tmp_path: Path) -> None:
        """The reviewer's folder: a real sql-migrate file, then one whose markers are lower case."""
        with pytest.raises(MigrationFileError, match="2_b.sql: line 1: '-- \\+migrate up'"):
            load(tmp_path, {"1_a.sql": "-- +migrate Up\nCREATE TABLE s1 (id int);\n-- +migrate Down\nDROP TABLE s1;\n",
                            "2_b.sql": "-- +migrate up\nCREATE TABLE s2 (id int);\n-- +migrate down\n"
                                       "DROP TABLE s2;\n"})

    def test_in_a_flyway_file(self, tmp_path: Path) -> None:
        with pytest.raises(MigrationFileError, match="V1__a.sql: line 2: '-- goose Down'"):
            load(tmp_path, {"V1__a.sql": "SELECT 1;\n-- goose Down\nSELECT 2;\n"})

    @pytest.mark.parametrize("text", [
        pytest.param("-- migrate up the legacy rows\nSELECT 1;\n", id="prose-migrate"),
        pytest.param("-- goose up and down the table\nSELECT 1;\n", id="prose-goose"),
        pytest.param("-- the +migrate Up annotation is sql-migrate's\nSELECT 1;\n", id="mention"),
        pytest.param("SELECT '-- goose up';\n", id="in-a-string-not-a-comment-line"),
        pytest.param("-- migrate:up\nSELECT 1;\n", id="premigrates-own-up-section"),
    ])
    def test_ordinary_comments_pass(self, tmp_path: Path, text: str) -> None:
        files = load(tmp_path, {"1_a.sql": text})
        assert ["1"] == [m.id for m in files.versioned]

    def test_the_tools_own_file_keeps_its_rules(self, tmp_path: Path) -> None:
        """In a file read as sql-migrate, `-- +migrate down` is a command word sql-migrate ignores, as it does."""
        files = load(tmp_path, {"1_a.sql": "-- +migrate Up\nSELECT 1;\n-- +migrate down\nSELECT 2;\n"})
        assert "sql-migrate" == files.versioned[0].format

    def test_explicit_format_is_the_tools_reading(self, tmp_path: Path) -> None:
        """--format flyway: Flyway runs the whole file, a near-miss line being a comment to it."""
        files = load(tmp_path, {"V1__a.sql": "SELECT 1;\n-- goose Down\nSELECT 2;\n"}, fmt="flyway")
        assert ["1"] == [m.id for m in files.versioned]


class TestDbmateSections:
    """amacneil/dbmate pkg/dbmate/migration.go parseMigrationContents and parseMigrationOptions."""

    def test_missing_down_refused(self, tmp_path: Path) -> None:
        with pytest.raises(MigrationFileError, match="20240101000000_b.sql: no '-- migrate:down' line; dbmate "
                                                     "requires each migration to define a down block"):
            load(tmp_path, {"20240101000000_b.sql": "-- migrate:up\nCREATE TABLE b (id int);\n"}, fmt="dbmate")

    def test_auto_reads_a_lone_up_section_as_premigrates_own(self, tmp_path: Path) -> None:
        """No down line: no dbmate file (dbmate refuses it), premigrate's own plain file with an up section."""
        files = load(tmp_path, {"20240101000000_b.sql": "-- migrate:up\nCREATE TABLE b (id int);\n"})
        assert [("plain", None)] == [(m.format, m.down_sql) for m in files.versioned]

    @pytest.mark.parametrize("fmt", ["dbmate", "auto"])
    @pytest.mark.parametrize(("text", "line"), [
        pytest.param("  -- migrate:up\nCREATE TABLE c (id int);\n  -- migrate:down\nDROP TABLE c;\n", 1, id="both"),
        pytest.param("-- migrate:up\nCREATE TABLE c (id int);\n\t-- migrate:down\nDROP TABLE c;\n", 3, id="down"),
    ])
    def test_indented_marker_refused(self, tmp_path: Path, fmt: str, text: str, line: int) -> None:
        with pytest.raises(MigrationFileError, match=f"20240101000000_c.sql: line {line}: .* is indented; dbmate "
                                                     "reads .* only at the start of a line"):
            load(tmp_path, {"20240101000000_c.sql": text}, fmt=fmt)

    def test_down_line_dbmate_does_not_see(self, tmp_path: Path) -> None:
        """dbmate's down regex ends the line after one option word: with two it matches nothing."""
        with pytest.raises(MigrationFileError, match="line 3: dbmate does not read '-- migrate:down "
                                                     "transaction:false x:y' as a section line"):
            load(tmp_path, {"1_a.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down transaction:false x:y\nSELECT 2;\n"},
                 fmt="dbmate")

    @pytest.mark.parametrize("option", ["transaction:FALSE", "Transaction:false", "TRANSACTION:False"])
    @pytest.mark.parametrize("fmt", ["dbmate", "auto"])
    def test_option_matched_exactly(self, tmp_path: Path, option: str, fmt: str) -> None:
        """`m["transaction"] != "false"`: any other spelling keeps dbmate's transaction; premigrate refuses it
        instead of turning the transaction off as it used to."""
        with pytest.raises(MigrationFileError, match=f"unknown '-- migrate:up' option '{option}'; dbmate turns the "
                                                     "transaction off only for 'transaction:false'"):
            load(tmp_path, {"20240101000000_a.sql": f"-- migrate:up {option}\nCREATE TABLE a (id int);\n"
                                                    "SELECT 1/0;\n-- migrate:down\nDROP TABLE a;\n"}, fmt=fmt)

    def test_exact_options_up_and_down(self, tmp_path: Path) -> None:
        """db.go Rollback runs the down section outside a transaction when its own line says transaction:false; a
        later word wins (options are a map)."""
        files = load(tmp_path, {
            "1_a.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down transaction:false\nDROP INDEX CONCURRENTLY i;\n",
            "2_b.sql": "-- migrate:up transaction:false\nSELECT 1;\n-- migrate:down\nSELECT 2;\n",
            "3_c.sql": "-- migrate:up transaction:false transaction:true\nSELECT 1;\n-- migrate:down transaction:true"
                       "\nSELECT 2;\n",
        }, fmt="dbmate")
        assert [(False, True), (True, False), (False, False)] == [
            (m.no_transaction, m.down_no_transaction) for m in files.versioned]
        assert "DROP INDEX CONCURRENTLY i;\n" == files.versioned[0].down_sql

    def test_block_comment_before_up_refused(self, tmp_path: Path) -> None:
        """statementsPrecedeMigrateBlocks: only blank and `--` lines may come before the up line."""
        with pytest.raises(MigrationFileError, match=r"SQL before the '-- migrate:up' line \(line 1\)"):
            load(tmp_path, {"1_a.sql": "/* header */\n-- migrate:up\nSELECT 1;\n-- migrate:down\n"}, fmt="dbmate")


class TestDbmateOrder:
    """db.go FindMigrations: `sort.Slice(migrations, ... FileName < FileName)`."""

    FILES: dict[str, str | bytes] = {
        "9_insert.sql": "-- migrate:up\nINSERT INTO t VALUES (1);\n-- migrate:down\nDELETE FROM t;\n",
        "10_create.sql": "-- migrate:up\nCREATE TABLE t (id int);\n-- migrate:down\nDROP TABLE t;\n",
        "1_b.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n",
    }

    @pytest.mark.parametrize("fmt", ["dbmate", "auto"])
    def test_runs_in_file_name_order(self, tmp_path: Path, fmt: str) -> None:
        files = load(tmp_path, self.FILES, fmt=fmt)
        assert ["10_create.sql", "1_b.sql", "9_insert.sql"] == [m.script for m in files.versioned]
        assert ["10", "1", "9"] == [s.migration.id for s in make_plan(files, [], Policy("postgresql")).steps]

    def test_to_and_newest_follow_the_names(self, tmp_path: Path) -> None:
        files = load(tmp_path, self.FILES, fmt="dbmate")
        assert ["10", "1"] == [s.migration.id for s in make_plan(
            files, [], Policy("postgresql", target=Version.parse("1"))).steps]
        order = Ordering(files)
        assert order.of_version(Version.parse("9")) > order.of_version(Version.parse("10"))

    def test_folder_mixing_formats_keeps_numbers(self, tmp_path: Path) -> None:
        """A plain file beside them: no folder dbmate could run (it refuses a file without sections)."""
        files = load(tmp_path, {**self.FILES, "11_plain.sql": "SELECT 3;\n"})
        assert ["1", "9", "10", "11"] == [m.id for m in files.versioned]

    def test_one_version_two_names_refused(self, tmp_path: Path) -> None:
        """dbmate keeps `1` and `01` apart (string versions); premigrate's versions are numbers: refused."""
        with pytest.raises(MigrationFileError, match="1_a.sql and 01_b.sql both carry version 1|01_b.sql and 1_a.sql "
                                                     "both carry version 1"):
            load(tmp_path, {"1_a.sql": self.FILES["1_b.sql"], "01_b.sql": self.FILES["1_b.sql"]}, fmt="dbmate")


class TestFlywayPrefixCase:
    """flyway-core ResourceNameParser: `startsWith(prefix)` is case-sensitive; the suffix is not."""

    def test_lowercase_prefix_ignored_with_a_warning(self, tmp_path: Path) -> None:
        files = load(tmp_path, {"V1__a.sql": "SELECT 1;\n", "v2__b.sql": "SELECT 2;\n", "V3__c.SQL": "SELECT 3;\n",
                                "u1__a.sql": "SELECT 4;\n", "r__v.sql": "SELECT 5;\n"}, fmt="flyway")
        assert (["1", "3"], [], None) == ([m.id for m in files.versioned], files.repeatable,
                                          files.versioned[0].down_sql)
        assert {"r__v.sql", "u1__a.sql", "v2__b.sql"} == {n.split(":")[0] for n in files.notes}

    def test_auto_refuses_it(self, tmp_path: Path) -> None:
        with pytest.raises(MigrationFileError, match="v2__b.sql: the name matches no migration pattern"):
            load(tmp_path, {"V1__a.sql": "SELECT 1;\n", "v2__b.sql": "SELECT 2;\n"})


class TestSqlx:
    """launchbadge/sqlx sqlx-core/src/migrate/source.rs resolve_blocking."""

    @pytest.mark.parametrize("name", ["init_schema.sql", "_a.sql", "v1_a.sql", "1a_b.up.sql"])
    def test_non_integer_prefix_refused(self, tmp_path: Path, name: str) -> None:
        with pytest.raises(MigrationFileError, match=f"{name}: sqlx fails on this name \\(\"expected integer "
                                                     "version prefix\"\\)"):
            load(tmp_path, {"20240101000000_a.sql": "SELECT 1;\n", name: "SELECT 2;\n"}, fmt="sqlx")

    def test_names_sqlx_skips_are_ignored(self, tmp_path: Path) -> None:
        files = load(tmp_path, {"20240101000000_a.sql": "SELECT 1;\n", "schema.sql": "x", "2_b.SQL": "x"},
                     fmt="sqlx")
        assert (["20240101000000"], ["2_b.SQL", "schema.sql"]) == (
            [m.id for m in files.versioned], sorted(n.split(":")[0] for n in files.notes))

    @pytest.mark.parametrize("fmt", ["sqlx", "auto"])
    def test_bom_before_no_transaction_refused(self, tmp_path: Path, fmt: str) -> None:
        with pytest.raises(MigrationFileError, match="2_i.sql: a byte-order mark comes before '-- no-transaction'; "
                                                     ".*remove the byte-order mark"):
            load(tmp_path, {"1_t.sql": "CREATE TABLE s (id int);\n",
                            "2_i.sql": b"\xef\xbb\xbf-- no-transaction\nCREATE TABLE s2 (id int);\n"}, fmt=fmt)

    def test_bom_elsewhere_still_read(self, tmp_path: Path) -> None:
        files = load(tmp_path, {"1_t.sql": b"\xef\xbb\xbfCREATE TABLE s (id int);\n",
                                "2_i.sql": b"-- no-transaction\nCREATE INDEX CONCURRENTLY i ON s (id);\n"}, fmt="sqlx")
        assert [False, True] == [m.no_transaction for m in files.versioned]


class TestGooseSuffix:
    """pressly/goose migrate.go collectMigrationsFS: `fs.Glob(fsys, "*.sql")` is case-sensitive."""

    def test_uppercase_suffix_ignored_with_a_warning(self, tmp_path: Path) -> None:
        files = load(tmp_path, {"00001_a.sql": "-- +goose Up\nCREATE TABLE ga (id int);\n",
                                "00002_b.SQL": "-- +goose Up\nCREATE TABLE gb (id int);\n"}, fmt="goose")
        assert ["1"] == [m.id for m in files.versioned]
        assert ["00002_b.SQL"] == [n.split(":")[0] for n in files.notes]
        assert "ignored, as goose ignores it" in files.notes[0]

    def test_other_bad_names_still_refused(self, tmp_path: Path) -> None:
        with pytest.raises(MigrationFileError, match="init.sql: not a goose migration name"):
            load(tmp_path, {"00001_a.sql": "-- +goose Up\nSELECT 1;\n", "init.sql": "SELECT 2;\n"}, fmt="goose")
