"""The folder readers: each tool's own rules and edge cases, and what `auto` refuses."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import ClassVar

import pytest

from premigrate.errors import MigrationFileError
from premigrate.model.formats import goose, sqlmigrate
from premigrate.model.migrations import load_migrations
from premigrate.model.sql import SplitError, split_migration
from tests.support import write_atlas_sum

MIRRORS = Path("/work/.mirror")


def write(directory: Path, name: str, content: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8", newline="")
    return path


def texts(migration: object, dialect: str = "postgresql", *, down: bool = False) -> list[str]:
    return [s.text for s in split_migration(migration, dialect, down=down)]  # type: ignore[arg-type]


def git_files(repo: str, prefix: str) -> dict[str, str]:
    """Files under `prefix` of a fetched mirror at its HEAD; skips the test when the mirror is absent."""
    git_dir = MIRRORS / repo.replace("/", "+") / "repo"
    if not git_dir.is_dir():
        pytest.skip(f"the mirror of {repo} is absent (fetch github:{repo})")
    names = subprocess.run(["git", "--git-dir", str(git_dir), "ls-tree", "-r", "--name-only", "HEAD", prefix],
                           capture_output=True, text=True, check=True).stdout.split()
    return {n[len(prefix):]: subprocess.run(["git", "--git-dir", str(git_dir), "show", f"HEAD:{n}"],
                                            capture_output=True, text=True, check=True).stdout for n in names}


class TestGoose:
    """pressly/goose internal/sqlparser rules."""

    FILE = ("-- +goose Up\n"
            "-- a comment before the statement is dropped\n"
            "CREATE TABLE a (id int);\n"
            "-- +goose StatementBegin\n"
            "CREATE FUNCTION f() RETURNS int AS $$\n"
            "BEGIN\n"
            "  RETURN 1;\n"
            "END;\n"
            "$$ LANGUAGE plpgsql;\n"
            "-- +goose StatementEnd\n"
            "\n"
            "-- +goose Down\n"
            "DROP FUNCTION f();\n"
            "DROP TABLE a;\n")

    def test_down_is_not_part_of_up(self, tmp_path: Path) -> None:
        """The Down section is stored for `down` and never among the up statements (it used to run during up)."""
        write(tmp_path, "00001_a.sql", self.FILE)
        migration = load_migrations(tmp_path).versioned[0]
        assert "goose" == migration.format
        up = texts(migration)
        function = "CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;"
        assert ["CREATE TABLE a (id int)", function] == up
        assert ["DROP FUNCTION f()", "DROP TABLE a"] == texts(migration, down=True)

    def test_statement_lines_point_into_the_file(self, tmp_path: Path) -> None:
        """Each statement's line is its line in the file, so errors name the right one."""
        write(tmp_path, "00001_a.sql", self.FILE)
        migration = load_migrations(tmp_path).versioned[0]
        assert [3, 5] == [s.line for s in split_migration(migration, "postgresql")]
        assert [13, 14] == [s.line for s in split_migration(migration, "postgresql", down=True)]

    @pytest.mark.parametrize("marker", ["-- +goose up", "-- +goose UP", "--+goose Up"])
    def test_markers_case_insensitive(self, tmp_path: Path, marker: str) -> None:
        """goose compares the annotation after '+goose' case-insensitively (strings.EqualFold); '+goose' itself is
        matched as written (strings.Contains)."""
        write(tmp_path, "1_a.sql", f"{marker}\nSELECT 1;\n-- +goose down\nSELECT 2;\n")
        migration = load_migrations(tmp_path).versioned[0]
        assert (["SELECT 1"], ["SELECT 2"]) == (texts(migration), texts(migration, down=True))

    @pytest.mark.parametrize(
        ("content", "line", "message"),
        [
            pytest.param("-- +goose Up\n  -- +goose StatementBegin\nSELECT 1;\n", 2, "leading white space",
                         id="leading-whitespace"),
            pytest.param("-- +goose Up\n-- +goose Sideways\nSELECT 1;\n", 2, "unknown goose annotation",
                         id="unknown-annotation"),
            pytest.param("-- +goose Up\nCREATE TABLE a (id int)\n-- +goose Down\n", 2, "missing semicolon",
                         id="missing-semicolon"),
            pytest.param("-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n", 2, "StatementEnd",
                         id="unclosed-block"),
            pytest.param("SELECT 1;\n-- +goose Up\n", 1, "must start with", id="sql-before-up"),
            pytest.param("SELECT 1;\n", 1, "must start with", id="no-annotations"),
            pytest.param("-- +goose Up\nSELECT 1;\n-- +goose Up\n", 3, "duplicate", id="duplicate-up"),
            pytest.param("-- +goose Up\n-- +goose ENVSUB ON\nSELECT $1;\n", 3, "variable substitution failed", id="envsub-syntax"),
        ],
    )
    def test_errors_goose_reports(self, tmp_path: Path, content: str, line: int, message: str) -> None:
        """What goose refuses is exit 5 naming the file and the line."""
        write(tmp_path, "1_a.sql", content)
        with pytest.raises(MigrationFileError, match=f"1_a.sql: line {line}: .*{message}") as info:
            load_migrations(tmp_path, format="goose")
        assert 5 == info.value.exit_code

    def test_line_based_semicolon_rule(self) -> None:
        """A line ending in ';' ends the statement even inside a string, exactly as goose cuts it; a trailing
        `--` comment after the ';' does not hide it; two statements on one line stay one goose statement."""
        got = goose.split("INSERT INTO t VALUES ('a;\nb');\nSELECT 1; -- done\nSELECT 2; SELECT 3;\n", "up",
                          first_line=1)
        assert ["INSERT INTO t VALUES ('a;", "b');", "SELECT 1; -- done", "SELECT 2; SELECT 3;"] == [
            s.text for s in got]

    def test_two_statements_on_one_line_run_one_by_one(self, tmp_path: Path) -> None:
        """What goose sends in one call is cut by the dialect's splitter, so each statement runs and is recorded."""
        write(tmp_path, "1_a.sql", "-- +goose Up\nSELECT 2; SELECT 3;\n")
        assert ["SELECT 2", "SELECT 3"] == texts(load_migrations(tmp_path).versioned[0], "sqlite")

    def test_no_transaction(self, tmp_path: Path) -> None:
        """`-- +goose NO TRANSACTION` makes both directions run outside a transaction."""
        write(tmp_path, "1_a.sql", "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON t (c);\n"
                                   "-- +goose Down\nDROP INDEX CONCURRENTLY i;\n")
        migration = load_migrations(tmp_path).versioned[0]
        assert (True, True) == (migration.no_transaction, migration.down_no_transaction)

    @pytest.mark.parametrize("name", ["0_a.sql", "a_1.sql"])
    def test_goose_versions(self, tmp_path: Path, name: str) -> None:
        """goose versions are positive whole numbers before the first '_'."""
        write(tmp_path, name, "-- +goose Up\nSELECT 1;\n")
        with pytest.raises(MigrationFileError):
            load_migrations(tmp_path, format="goose")

    def test_go_migration_refused(self, tmp_path: Path) -> None:
        """A goose Go migration cannot run here: the folder is refused, naming it."""
        write(tmp_path, "00001_a.sql", "-- +goose Up\nSELECT 1;\n")
        write(tmp_path, "00002_rename.go", "package migrations\n")
        with pytest.raises(MigrationFileError, match="00002_rename.go: a goose Go migration"):
            load_migrations(tmp_path)

    def test_golden_files(self) -> None:
        """goose's own valid-up golden files: the same statements, in the same order."""
        files = git_files("pressly/goose", "internal/sqlparser/testdata/valid-up/")
        cases = sorted({name.split("/")[0] for name in files})
        assert cases
        for case in cases:
            parsed = goose.parse(files[f"{case}/input.sql"])
            goldens = sorted(n for n in files if n.startswith(f"{case}/") and n.endswith(".up.golden.sql"))
            assert [files[g].strip() for g in goldens] == [s.text for s in parsed.up.statements], case

    def test_invalid_files(self) -> None:
        """goose's own invalid files are refused."""
        files = git_files("pressly/goose", "internal/sqlparser/testdata/invalid/up/")
        assert files
        for name, text in files.items():
            with pytest.raises(SplitError):
                goose.parse(text)
            assert name


class TestSqlMigrate:
    """rubenv/sql-migrate sqlparse rules."""

    def test_sections_and_blocks(self, tmp_path: Path) -> None:
        """Up and Down sections, a StatementBegin block kept whole, notransaction on Down only."""
        write(tmp_path, "2_a.sql", "-- +migrate Up\nCREATE TABLE a (id int);\n-- +migrate StatementBegin\n"
                                   "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\n"
                                   "-- +migrate StatementEnd\n-- +migrate Down notransaction\nDROP TABLE a;\n")
        migration = load_migrations(tmp_path).versioned[0]
        assert "sql-migrate" == migration.format
        assert ["CREATE TABLE a (id int)",
                "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;"] == texts(migration)
        assert ["DROP TABLE a"] == texts(migration, down=True)
        assert (False, True) == (migration.no_transaction, migration.down_no_transaction)

    def test_alternating_sections(self) -> None:
        """Up and Down may alternate; each adds to its own direction."""
        parsed = sqlmigrate.parse("-- +migrate Up\nSELECT 1;\n-- +migrate Down\nSELECT 2;\n-- +migrate Up\nSELECT 3;\n")
        assert (["SELECT 1;", "SELECT 3;"], ["SELECT 2;"]) == (
            [s.text for s, _ in parsed.up], [s.text for s, _ in parsed.down])

    def test_comment_lines_dropped_inside_statements(self) -> None:
        """A line starting with '-- ' is dropped even inside a statement (sql-migrate's rule)."""
        parsed = sqlmigrate.parse("-- +migrate Up\nSELECT\n-- inside\n1;\n")
        assert ["SELECT\n1;"] == [s.text for s, _ in parsed.up]

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            pytest.param("SELECT 1;\n", "no '-- \\+migrate Up'", id="no-sections"),
            pytest.param("-- +migrate Up\nSELECT 1\n", "no terminating semicolon", id="unterminated"),
            pytest.param("-- +migrate Up\n-- +migrate StatementBegin\nSELECT 1;\n", "StatementEnd", id="open-block"),
            pytest.param("-- +migrate Up\nSELECT 1\n-- +migrate Down\nSELECT 2;\n", "no terminating", id="cut"),
        ],
    )
    def test_errors(self, tmp_path: Path, content: str, message: str) -> None:
        """What sql-migrate refuses is exit 5 naming the file."""
        write(tmp_path, "1_a.sql", content)
        with pytest.raises(MigrationFileError, match=message):
            load_migrations(tmp_path, format="sql-migrate")


class TestSqlx:
    def test_no_transaction_first_bytes(self, tmp_path: Path) -> None:
        """`-- no-transaction` as the first bytes runs the file outside a transaction (auto detects sqlx by it)."""
        write(tmp_path, "20240101000000_a.sql", "-- no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);\n")
        write(tmp_path, "20240101000001_b.sql", "\n-- no-transaction\nSELECT 1;\n")
        first, second = load_migrations(tmp_path).versioned
        assert ("sqlx", True) == (first.format, first.no_transaction)
        assert ("plain", False) == (second.format, second.no_transaction)

    def test_explicit_format_ignores_other_names(self, tmp_path: Path) -> None:
        """With --format sqlx a name sqlx does not read is ignored, with a note, as sqlx ignores it."""
        write(tmp_path, "1_a.up.sql", "SELECT 1;")
        write(tmp_path, "1_a.down.sql", "SELECT 2;")
        write(tmp_path, "init.sql", "SELECT 3;")
        files = load_migrations(tmp_path, format="sqlx")
        assert (["1"], "SELECT 2;") == ([m.id for m in files.versioned], files.versioned[0].down_sql)
        assert any("init.sql" in note for note in files.notes)


class TestFlyway:
    def test_non_matching_name_ignored_with_note(self, tmp_path: Path) -> None:
        """Flyway ignores V366_x.sql (one underscore); so does --format flyway, and it says so."""
        write(tmp_path, "V1__a.sql", "SELECT 1;")
        write(tmp_path, "V366_remove_spaces.sql", "SELECT 2;")
        files = load_migrations(tmp_path, format="flyway")
        assert ["1"] == [m.id for m in files.versioned]
        assert ["V366_remove_spaces.sql"] == [n.split(":")[0] for n in files.notes]

    def test_auto_stays_strict(self, tmp_path: Path) -> None:
        """Without --format the same name is refused: only the tool's own rules may ignore a file."""
        write(tmp_path, "V1__a.sql", "SELECT 1;")
        write(tmp_path, "V366_remove_spaces.sql", "SELECT 2;")
        with pytest.raises(MigrationFileError, match="V366_remove_spaces.sql"):
            load_migrations(tmp_path)

    def test_sub_folders_read(self, tmp_path: Path) -> None:
        """Flyway reads every non-hidden sub-folder of its location (FileSystemScanner): so does --format flyway, a
        file named by its path; a name Flyway would not match there is ignored with a note, a hidden folder is
        skipped, and a link to a folder is refused (Atlas's walk would not follow it, Flyway's does)."""
        write(tmp_path, "V1__a.sql", "SELECT 1;")
        write(tmp_path, "release/2/V2__b.sql", "SELECT 2;")
        write(tmp_path, "release/2/README.sql", "SELECT 3;")
        write(tmp_path, ".hidden/V3__c.sql", "SELECT 4;")
        files = load_migrations(tmp_path, format="flyway")
        assert [("1", "V1__a.sql"), ("2", "release/2/V2__b.sql")] == [(m.id, m.script) for m in files.versioned]
        assert ["release/2/README.sql"] == [n.split(":")[0] for n in files.notes]
        (tmp_path / "linked").symlink_to(tmp_path / "release")
        with pytest.raises(MigrationFileError, match="^linked/: a link to a folder"):
            load_migrations(tmp_path, format="flyway")


class TestPrisma:
    def folder(self, tmp_path: Path, provider: str = "postgresql") -> Path:
        write(tmp_path, "migration_lock.toml", f'# Please do not edit\nprovider = "{provider}"\n')
        write(tmp_path, "20240101000000_init/migration.sql", "CREATE TABLE a (id int);\n")
        write(tmp_path, "20240102000000_more/migration.sql", "CREATE TABLE b (id int);\n")
        return tmp_path

    def test_read_in_name_order(self, tmp_path: Path) -> None:
        """Each folder's migration.sql, in name order, versioned by its timestamp."""
        files = load_migrations(self.folder(tmp_path), dialect="postgresql")
        assert [("20240101000000", "init", "20240101000000_init/migration.sql", "prisma")] == [
            (m.id, m.description, m.script, m.format) for m in files.versioned[:1]]
        assert 2 == len(files.versioned)

    def test_provider_mismatch(self, tmp_path: Path) -> None:
        """migration_lock.toml's provider must be the database's: Prisma refuses another, so does premigrate."""
        with pytest.raises(MigrationFileError, match="written for mysql and the database is postgresql"):
            load_migrations(self.folder(tmp_path, "mysql"), dialect="postgresql")

    def test_folder_without_migration_sql(self, tmp_path: Path) -> None:
        """A folder without migration.sql is refused, naming it."""
        self.folder(tmp_path)
        (tmp_path / "20240103000000_broken").mkdir()
        write(tmp_path, "20240103000000_broken/README", "x")
        with pytest.raises(MigrationFileError, match="20240103000000_broken/"):
            load_migrations(tmp_path, dialect="postgresql")

    def test_no_lock_file_needs_explicit_format(self, tmp_path: Path) -> None:
        """migration.sql folders without migration_lock.toml are not guessed: --format prisma reads them."""
        write(tmp_path, "20240101000000_init/migration.sql", "SELECT 1;")
        with pytest.raises(MigrationFileError, match="--format prisma"):
            load_migrations(tmp_path)
        assert 1 == len(load_migrations(tmp_path, format="prisma").versioned)


class TestDiesel:
    def test_versions_transactions_and_downs(self, tmp_path: Path) -> None:
        """Version without '-', metadata.toml run_in_transaction, down.sql stored, loose files ignored."""
        write(tmp_path, "00000000000000_diesel_initial_setup/up.sql", "SELECT 1;\n")
        write(tmp_path, "00000000000000_diesel_initial_setup/down.sql", "SELECT 2;\n")
        write(tmp_path, "2024-01-01-120000_add/up.sql", "CREATE INDEX CONCURRENTLY i ON t (c);\n")
        write(tmp_path, "2024-01-01-120000_add/metadata.toml", "run_in_transaction = false\n")
        write(tmp_path, "2024-01-02-120000_keyless/up.sql", "SELECT 3;\n")
        write(tmp_path, "2024-01-02-120000_keyless/metadata.toml", "# no key\n")
        write(tmp_path, ".keep", "")
        files = load_migrations(tmp_path, format="diesel")
        assert ["0", "20240101120000", "20240102120000"] == [m.id for m in files.versioned]
        assert [False, True, True] == [m.no_transaction for m in files.versioned]
        assert "SELECT 2;\n" == files.versioned[0].down_sql
        assert "diesel" == files.versioned[0].format

    def test_auto_detects_and_refuses_loose_files(self, tmp_path: Path) -> None:
        """auto reads diesel folders, and refuses a loose .sql file diesel would ignore."""
        write(tmp_path, "2024-01-01-120000_add/up.sql", "SELECT 1;\n")
        assert ["diesel"] == [m.format for m in load_migrations(tmp_path).versioned]
        write(tmp_path, "001_loose.sql", "SELECT 2;\n")
        with pytest.raises(MigrationFileError, match="001_loose.sql: loose .sql files"):
            load_migrations(tmp_path)
        assert 1 == len(load_migrations(tmp_path, format="diesel").versioned)

    def test_suffixed_versions_keep_diesel_order(self, tmp_path: Path) -> None:
        """diesel 2.2's `-0000` suffix sorts, as text, after the suffix-less version of the same second (crates.io
        has both): premigrate's versions keep that order and stay distinct."""
        write(tmp_path, "2026-05-27-120000-0000_b/up.sql", "SELECT 2;\n")
        write(tmp_path, "2026-05-27-120000_a/up.sql", "SELECT 1;\n")
        write(tmp_path, "2026-05-27-130000_c/up.sql", "SELECT 3;\n")
        files = load_migrations(tmp_path, format="diesel")
        assert ["a", "b", "c"] == [m.description for m in files.versioned]
        assert ["20260527120000", "20260527120000.1", "20260527130000"] == [m.id for m in files.versioned]

    def test_text_order(self, tmp_path: Path) -> None:
        """diesel runs its folders in the text order of their versions (MigrationVersion is a string): 10_x before
        2_x, and vaultwarden's 2024-03-13_170000_x (20240313) between 20240306170000 and 20240605131359."""
        write(tmp_path, "2_a/up.sql", "SELECT 1;\n")
        write(tmp_path, "10_b/up.sql", "SELECT 2;\n")
        assert ["10", "2"] == [m.id for m in load_migrations(tmp_path, format="diesel").versioned]
        for name in ("2_a", "10_b"):
            for part in (tmp_path / name).iterdir():
                part.unlink()
            (tmp_path / name).rmdir()
        write(tmp_path, "2024-06-05-131359_c/up.sql", "SELECT 3;\n")
        write(tmp_path, "2024-03-13_170000_b/up.sql", "SELECT 2;\n")
        write(tmp_path, "2024-03-06-170000_a/up.sql", "SELECT 1;\n")
        files = load_migrations(tmp_path, format="diesel")
        assert ["20240306170000", "20240313", "20240605131359"] == [m.id for m in files.versioned]

    def test_non_ascii_digits_refused(self, tmp_path: Path) -> None:
        """`²` is a digit to str.isdigit() but no version: refused, naming the folder."""
        write(tmp_path, "\u00b2_x/up.sql", "SELECT 1;\n")
        with pytest.raises(MigrationFileError, match="is not a number"):
            load_migrations(tmp_path, format="diesel")

    def test_same_version_refused(self, tmp_path: Path) -> None:
        """Two folders with one version: diesel keys migrations by version and would run only one of them."""
        write(tmp_path, "2025-01-09-172300_a/up.sql", "SELECT 1;\n")
        write(tmp_path, "2025-01-09-172300_b/up.sql", "SELECT 2;\n")
        with pytest.raises(MigrationFileError, match="have the same version 20250109172300: diesel would run only "
                                                     "one of them"):
            load_migrations(tmp_path, format="diesel")

    def test_empty_up_refused(self, tmp_path: Path) -> None:
        """A zero-byte up.sql is refused, as diesel refuses it (EmptyMigration)."""
        write(tmp_path, "2024-01-01-120000_add/up.sql", "")
        with pytest.raises(MigrationFileError, match="EmptyMigration"):
            load_migrations(tmp_path)

    def test_folder_without_up_refused(self, tmp_path: Path) -> None:
        write(tmp_path, "2024-01-01-120000_add/up.sql", "SELECT 1;\n")
        write(tmp_path, "2024-01-02-120000_x/down.sql", "SELECT 1;\n")
        with pytest.raises(MigrationFileError, match="2024-01-02-120000_x/"):
            load_migrations(tmp_path, format="diesel")


class TestRefusals:
    """What no format explains is refused before anything connects."""

    def test_directory_named_sql(self, tmp_path: Path) -> None:
        write(tmp_path, "001_a.sql", "SELECT 1;")
        (tmp_path / "002_b.sql").mkdir()
        with pytest.raises(MigrationFileError, match="002_b.sql: is a folder"):
            load_migrations(tmp_path)

    def test_symlink_to_directory_named_sql(self, tmp_path: Path) -> None:
        write(tmp_path, "001_a.sql", "SELECT 1;")
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "002_b.sql").symlink_to(tmp_path / "elsewhere")
        with pytest.raises(MigrationFileError, match="002_b.sql: is a folder"):
            load_migrations(tmp_path)

    def test_fifo(self, tmp_path: Path) -> None:
        write(tmp_path, "001_a.sql", "SELECT 1;")
        os.mkfifo(tmp_path / "002_b.sql")
        with pytest.raises(MigrationFileError, match="002_b.sql: not a regular file"):
            load_migrations(tmp_path)

    def test_newline_in_name(self, tmp_path: Path) -> None:
        """A control character in a name is refused, and shown escaped: the message stays one line."""
        write(tmp_path, "001_a\nb.sql", "SELECT 1;")
        with pytest.raises(MigrationFileError) as info:
            load_migrations(tmp_path)
        assert "\n" not in str(info.value) and "001_a\\x0ab.sql" in str(info.value)

    def test_empty_folder(self, tmp_path: Path) -> None:
        """No migrations at all is exit 5 saying where premigrate looked; --allow-empty accepts it."""
        write(tmp_path, "README.md", "x")
        with pytest.raises(MigrationFileError, match=f"no migrations in '{tmp_path}'.*--allow-empty") as info:
            load_migrations(tmp_path)
        assert 5 == info.value.exit_code
        assert [] == load_migrations(tmp_path, allow_empty=True).all

    @pytest.mark.parametrize(
        ("name", "content", "tool"),
        [
            # a formatted SQL changelog among plain files (a folder whose first file is one is read as Liquibase's)
            pytest.param("002_a.sql", "--liquibase formatted sql\n--changeset a:1\nSELECT 1;\n", "Liquibase",
                         id="liquibase"),
            pytest.param("0000_a.sql", "CREATE TABLE a (id int);\n--> statement-breakpoint\nSELECT 1;\n", "Drizzle",
                         id="drizzle"),
            pytest.param("20240101000000_a.sql", "-- atlas:txmode none\nSELECT 1;\n", "Atlas", id="atlas"),
        ],
    )
    def test_other_tools_markers(self, tmp_path: Path, name: str, content: str, tool: str) -> None:
        """A file carrying markers of a tool premigrate does not follow is refused, naming file and marker."""
        write(tmp_path, "001_plain.sql", "SELECT 1;\n")
        write(tmp_path, name, content)
        with pytest.raises(MigrationFileError, match=f"{name}: carries {tool}"):
            load_migrations(tmp_path)

    @pytest.mark.parametrize(
        ("files", "what"),
        [
            pytest.param({"meta/_journal.json": "{}", "0000_a.sql": "SELECT 1;"}, "Drizzle", id="drizzle-journal"),
        ],
    )
    def test_unregistered_layouts(self, tmp_path: Path, files: dict[str, str], what: str) -> None:
        for name, content in files.items():
            write(tmp_path, name, content)
        with pytest.raises(MigrationFileError, match=what):
            load_migrations(tmp_path)

    def test_mixed_markers(self, tmp_path: Path) -> None:
        """A file with goose and dbmate markers is not guessed."""
        write(tmp_path, "1_a.sql", "-- +goose Up\n-- migrate:up\nSELECT 1;\n")
        with pytest.raises(MigrationFileError, match="dbmate markers"):
            load_migrations(tmp_path)

    def test_explicit_format_refuses_foreign_markers(self, tmp_path: Path) -> None:
        """--format plain on a goose file would run its Down section: refused."""
        write(tmp_path, "1_a.sql", "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n")
        with pytest.raises(MigrationFileError, match="goose markers"):
            load_migrations(tmp_path, format="plain")


class TestDraft:
    def test_new_template_marks_draft(self, tmp_path: Path) -> None:
        """Every template `new` writes carries the draft line the loader recognises."""
        from premigrate.commands import new

        for fmt in ("plain", "dbmate", "golang-migrate", "flyway", "goose", "sql-migrate", "sqlx", "prisma",
                    "diesel"):
            folder = tmp_path / fmt
            folder.mkdir()
            if fmt == "prisma":
                write(folder, "migration_lock.toml", 'provider = "sqlite"\n')
            new.create(folder, load_migrations(folder, allow_empty=True), "first", fmt,
                       __import__("datetime").datetime(2026, 1, 2, 3, 4, 5))
            migration = load_migrations(folder).versioned[0]
            # An sqlx up/down pair without `-- no-transaction` is a golang-migrate pair to the eye: both run alike.
            expected = "golang-migrate" if fmt == "sqlx" else fmt
            assert (expected, True, True) == (migration.format, migration.draft, migration.is_empty)


class TestAtlas:
    """ariga/atlas sql/migrate dir.go: atlas.sum verified before anything runs; file directives."""

    def folder(self, tmp_path: Path, files: dict[str, str], dir_format: str = "atlas") -> Path:
        """The files, with the atlas.sum Atlas writes for them in `dir_format` (`atlas migrate --dir-format`)."""
        from premigrate.model.formats.atlas import hash_file, hashed_files, total_sum

        for name, text in files.items():
            write(tmp_path, name, text)
        entries = hash_file(hashed_files(dir_format, [(n, (tmp_path / n).read_bytes()) for n in files]))
        write(tmp_path, "atlas.sum", f"h1:{total_sum(entries)}\n" + "".join(f"{n} h1:{h}\n" for n, h in entries))
        return tmp_path

    def test_golden_sum_files(self) -> None:
        """Every atlas.sum in Atlas's own repository is reproduced byte for byte from its folder."""
        from premigrate.model.formats.atlas import hash_file, total_sum

        git_dir = MIRRORS / "ariga+atlas" / "repo"
        if not git_dir.is_dir():
            pytest.skip("the mirror of ariga/atlas is absent (fetch github:ariga/atlas)")

        def git(*args: str) -> bytes:
            return subprocess.run(["git", "--git-dir", str(git_dir), *args], capture_output=True, check=True).stdout

        sums = [n for n in git("ls-tree", "-r", "--name-only", "HEAD").decode().split("\n") if n.endswith("atlas.sum")]
        assert len(sums) >= 10
        for sum_path in sums:
            folder = sum_path.rsplit("/", 1)[0]
            names = [n for n in git("ls-tree", "--name-only", "HEAD", folder + "/").decode().split("\n")
                     if n.endswith(".sql")]
            raw = sorted(((n.rsplit("/", 1)[1], git("show", f"HEAD:{n}")) for n in names), key=lambda x: x[0].encode())
            entries = hash_file(raw)
            text = f"h1:{total_sum(entries)}\n" + "".join(f"{n} h1:{h}\n" for n, h in entries)
            assert git("show", f"HEAD:{sum_path}").decode() == text, sum_path

    def test_reads_in_name_order_with_directives(self, tmp_path: Path) -> None:
        folder = self.folder(tmp_path, {
            "20240101000000_a.sql": "CREATE TABLE a (id int);\n",
            "20240102000000_b.sql": "-- atlas:txmode none\n\nCREATE INDEX CONCURRENTLY i ON a (id);\n",
        })
        files = load_migrations(folder)
        assert [("atlas", False), ("atlas", True)] == [(m.format, m.no_transaction) for m in files.versioned]

    def test_changed_file_named(self, tmp_path: Path) -> None:
        """A file edited after `atlas migrate hash` is refused, naming it."""
        folder = self.folder(tmp_path, {"1_a.sql": "SELECT 1;\n", "2_b.sql": "SELECT 2;\n"})
        write(folder, "2_b.sql", "SELECT 3;\n")
        with pytest.raises(MigrationFileError, match="2_b.sql: its hash differs from atlas.sum"):
            load_migrations(folder)

    def test_added_file_named(self, tmp_path: Path) -> None:
        folder = self.folder(tmp_path, {"1_a.sql": "SELECT 1;\n"})
        write(folder, "2_b.sql", "SELECT 2;\n")
        with pytest.raises(MigrationFileError, match="2_b.sql: not in atlas.sum"):
            load_migrations(folder)

    def test_missing_sum(self, tmp_path: Path) -> None:
        write(tmp_path, "1_a.sql", "SELECT 1;\n")
        with pytest.raises(MigrationFileError, match="no atlas.sum"):
            load_migrations(tmp_path, format="atlas")

    def test_edited_sum_header(self, tmp_path: Path) -> None:
        folder = self.folder(tmp_path, {"1_a.sql": "SELECT 1;\n"})
        write(folder, "atlas.sum", "h1:AAAA\n" + (folder / "atlas.sum").read_text().split("\n", 1)[1])
        with pytest.raises(MigrationFileError, match="first line does not match"):
            load_migrations(folder)

    def test_sum_ignore(self, tmp_path: Path) -> None:
        """A file whose first line is `atlas:sum ignore` may change without a rehash (its name still counts)."""
        folder = self.folder(tmp_path, {"1_a.sql": "-- atlas:sum ignore\nSELECT 1;\n"})
        write(folder, "1_a.sql", "-- atlas:sum ignore\nSELECT 2;\n")
        assert 1 == len(load_migrations(folder).versioned)

    def test_delimiter(self, tmp_path: Path) -> None:
        """`-- atlas:delimiter` on the first line: statements end at it, quotes and comments respected."""
        folder = self.folder(tmp_path, {"1_a.sql": "-- atlas:delimiter -- end\nCREATE TABLE a (v text);\n"
                                                   "INSERT INTO a VALUES ('x -- end y');\n-- end\nSELECT 1;\n"})
        migration = load_migrations(folder).versioned[0]
        got = split_migration(migration, "postgresql")
        assert ["CREATE TABLE a (v text);\nINSERT INTO a VALUES ('x -- end y');", "SELECT 1;"] == [s.text for s in got]
        assert [2, 5] == [s.line for s in got]

    def test_checkpoint_refused(self, tmp_path: Path) -> None:
        folder = self.folder(tmp_path, {"1_a.sql": "-- atlas:checkpoint\n\nCREATE TABLE a (id int);\n"})
        with pytest.raises(MigrationFileError, match="checkpoint"):
            load_migrations(folder)

    def test_new_rehashes(self, tmp_path: Path) -> None:
        """`new` in an Atlas folder writes the next file and rehashes atlas.sum, as `atlas migrate new` does."""
        from datetime import datetime

        from premigrate.commands import new

        folder = self.folder(tmp_path, {"20240101000000_a.sql": "SELECT 1;\n"})
        created = new.create(folder, load_migrations(folder), "next", None, datetime(2026, 1, 2, 3, 4, 5))
        assert ["20260102030405_next.sql"] == [p.name for p in created]
        assert ["atlas", "atlas"] == [m.format for m in load_migrations(folder).versioned]

    @pytest.mark.parametrize(("files", "summed", "made"), [
        pytest.param({"V1__a.sql": "SELECT 1;\n", "v2/V2__b.sql": "SELECT 2;\n", "U1__a.sql": "SELECT 0;\n"},
                     ["V1__a.sql", "v2/V2__b.sql"], "V3__next.sql", id="flyway"),
        pytest.param({"1_a.up.sql": "SELECT 1;\n", "1_a.down.sql": "SELECT 0;\n"}, ["1_a.up.sql"],
                     "2_next.up.sql", id="golang-migrate"),
    ])
    def test_new_rehashes_other_dir_formats(self, tmp_path: Path, files: dict[str, str], summed: list[str],
                                            made: str) -> None:
        """`new` in a folder of one of Atlas's other directory formats rehashes atlas.sum over what Atlas hashes in
        that format, so the folder still loads (its sum checked) with the new file in it."""
        from datetime import datetime

        from premigrate.commands import new

        for name, text in files.items():
            (tmp_path / name).parent.mkdir(exist_ok=True)
            (tmp_path / name).write_text(text)
        write_atlas_sum(tmp_path, summed)
        created = new.create(tmp_path, load_migrations(tmp_path), "next", None, datetime(2026, 1, 2, 3, 4, 5))
        assert made == created[0].name
        assert made in (tmp_path / "atlas.sum").read_text()
        assert made in [m.script for m in load_migrations(tmp_path).versioned]


class TestPopx:
    """ory/x popx: one folder for all databases; the dialect's own file wins over the dialect-less one."""

    FILES: ClassVar[dict[str, str]] = {
        "20240101000000000000_a.up.sql": "CREATE TABLE a (id int);\n",
        "20240101000000000000_a.down.sql": "DROP TABLE a;\n",
        "20240102000000000000_b.up.sql": "SELECT 'all';\n",
        "20240102000000000000_b.postgres.up.sql": "SELECT 'postgres';\n",
        "20240102000000000000_b.mysql.up.sql": "SELECT 'mysql';\n",
        "20240102000000000000_b.sqlite3.up.sql": "",
        "20240102000000000000_b.cockroach.up.sql": "SELECT 'cockroach';\n",
        "20240102000000000000_b.down.sql": "",
        "20240103000000000000_c.postgres.autocommit.up.sql": "CREATE INDEX CONCURRENTLY i ON a (id);\n",
        "20240103000000000000_c.postgres.down.sql": "DROP INDEX i;\n",
    }

    @pytest.mark.parametrize(("dialect", "expected"), [
        pytest.param("postgresql", ["CREATE TABLE a (id int);\n", "SELECT 'postgres';\n",
                                    "CREATE INDEX CONCURRENTLY i ON a (id);\n"], id="postgresql"),
        pytest.param("mysql", ["CREATE TABLE a (id int);\n", "SELECT 'mysql';\n"], id="mysql"),
        pytest.param("sqlite", ["CREATE TABLE a (id int);\n", ""], id="sqlite"),
    ])
    def test_dialect_file_wins(self, tmp_path: Path, dialect: str, expected: list[str]) -> None:
        for name, text in self.FILES.items():
            write(tmp_path, name, text)
        files = load_migrations(tmp_path, dialect=dialect)
        assert expected == [m.up_sql for m in files.versioned]
        assert {"popx"} == {m.format for m in files.versioned}

    def test_autocommit(self, tmp_path: Path) -> None:
        for name, text in self.FILES.items():
            write(tmp_path, name, text)
        migration = load_migrations(tmp_path, dialect="postgresql").versioned[2]
        assert (True, "DROP INDEX i;\n") == (migration.no_transaction, migration.down_sql)

    def test_up_without_down_refused(self, tmp_path: Path) -> None:
        write(tmp_path, "1_a.postgres.up.sql", "SELECT 1;\n")
        with pytest.raises(MigrationFileError, match="no corresponding down"):
            load_migrations(tmp_path, dialect="postgresql")

    def test_template_refused(self, tmp_path: Path) -> None:
        write(tmp_path, "1_a.postgres.up.sql", "{{ if .IsPostgreSQL }}SELECT 1;{{ end }}\n")
        write(tmp_path, "1_a.postgres.down.sql", "\n")
        with pytest.raises(MigrationFileError, match="Go template"):
            load_migrations(tmp_path, dialect="postgresql")

    def test_bad_name_refused(self, tmp_path: Path) -> None:
        write(tmp_path, "1_a.postgres.up.sql", "SELECT 1;\n")
        write(tmp_path, "1_a.postgres.down.sql", "SELECT 1;\n")
        write(tmp_path, "2_b.sql", "SELECT 1;\n")
        with pytest.raises(MigrationFileError, match="2_b.sql: does not match popx"):
            load_migrations(tmp_path, dialect="postgresql")


class TestGooseDirections:
    def test_unfinished_down_blocks_only_down(self, tmp_path: Path) -> None:
        """goose's `up` parses only the up direction: a Down section whose statement lacks its ';' (gophish has
        one) does not stop `up`; splitting the down part reports it, naming the line."""
        write(tmp_path, "1_a.sql", "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a\n")
        migration = load_migrations(tmp_path).versioned[0]
        assert ["CREATE TABLE a (id int)"] == texts(migration)
        with pytest.raises(SplitError, match="missing semicolon") as info:
            split_migration(migration, "postgresql", down=True)
        assert 4 == info.value.line


class TestDrizzle:
    """drizzle-orm migrator.ts: the journal lists the files and their order; statements split at breakpoints."""

    def folder(self, tmp_path: Path, dialect: str = "postgresql") -> Path:
        import json as json_

        entries = [{"idx": 0, "version": "7", "when": 1700000000000, "tag": "0000_init", "breakpoints": True},
                   {"idx": 1, "version": "7", "when": 1700000001000, "tag": "0001_more", "breakpoints": True}]
        write(tmp_path, "meta/_journal.json", json_.dumps({"version": "7", "dialect": dialect, "entries": entries}))
        write(tmp_path, "meta/0000_snapshot.json", "{}")
        write(tmp_path, "0000_init.sql", "CREATE TABLE a (id int);\n--> statement-breakpoint\n"
                                         "CREATE TABLE b (id int);--> statement-breakpoint\nSELECT 1; SELECT 2;\n")
        write(tmp_path, "0001_more.sql", "ALTER TABLE a ADD COLUMN v int;")
        return tmp_path

    def test_journal_order_and_breakpoints(self, tmp_path: Path) -> None:
        files = load_migrations(self.folder(tmp_path), dialect="postgresql")
        assert [("0", "init", "drizzle"), ("1", "more", "drizzle")] == [
            (m.id, m.description, m.format) for m in files.versioned]
        got = split_migration(files.versioned[0], "postgresql")
        assert [("CREATE TABLE a (id int)", 1), ("CREATE TABLE b (id int)", 3), ("SELECT 1", 4),
                ("SELECT 2", 4)] == [(s.text, s.line) for s in got]

    def test_unlisted_file(self, tmp_path: Path) -> None:
        """A .sql file the journal does not list never runs under Drizzle: auto refuses it, --format drizzle
        ignores it and says so."""
        write(self.folder(tmp_path), "0002_manual.sql", "DROP TABLE a;")
        with pytest.raises(MigrationFileError, match="0002_manual.sql: not in meta/_journal.json"):
            load_migrations(tmp_path)
        files = load_migrations(tmp_path, format="drizzle")
        assert 2 == len(files.versioned) and ["0002_manual.sql"] == [n.split(":")[0] for n in files.notes]

    def test_listed_file_missing(self, tmp_path: Path) -> None:
        (self.folder(tmp_path) / "0001_more.sql").unlink()
        with pytest.raises(MigrationFileError, match="0001_more.sql: listed in meta/_journal.json"):
            load_migrations(tmp_path)

    def test_dialect_mismatch(self, tmp_path: Path) -> None:
        with pytest.raises(MigrationFileError, match="generated for mysql and the database is postgresql"):
            load_migrations(self.folder(tmp_path, "mysql"), dialect="postgresql")



class TestDrizzleV1:
    """drizzle-orm v1 migrator.ts readMigrationFiles: `<ts>_<name>/migration.sql` folders in name order."""

    def folder(self, tmp_path: Path, dialect: str = "postgresql") -> Path:
        write(tmp_path, "20250102000000_more/migration.sql", "ALTER TABLE a ADD COLUMN v int;")
        write(tmp_path, "20250102000000_more/snapshot.json", f'{{"dialect": "{dialect}"}}')
        write(tmp_path, "20250101120000_init/migration.sql", "CREATE TABLE a (id int);\n--> statement-breakpoint\n"
                                                             "CREATE TABLE b (id int);")
        write(tmp_path, "20250101120000_init/snapshot.json", f'{{"dialect": "{dialect}"}}')
        return tmp_path

    def test_name_order_breakpoints_and_checksum(self, tmp_path: Path) -> None:
        """Folders in name order, versions from the timestamp, split at breakpoints; the checksum is the file's."""
        import hashlib

        files = load_migrations(self.folder(tmp_path), dialect="postgresql")
        assert [("20250101120000", "init", "drizzle", "20250101120000_init/migration.sql"),
                ("20250102000000", "more", "drizzle", "20250102000000_more/migration.sql")] == [
            (m.id, m.description, m.format, m.script) for m in files.versioned]
        assert [("CREATE TABLE a (id int)", 1), ("CREATE TABLE b (id int)", 3)] == [
            (s.text, s.line) for s in split_migration(files.versioned[0], "postgresql")]
        # Drizzle's recorded hash is sha256 of the file's text: what baseline --from drizzle compares.
        text = (tmp_path / "20250101120000_init/migration.sql").read_text()
        assert hashlib.sha256(text.encode()).hexdigest() == hashlib.sha256(
            files.versioned[0].up_sql.encode()).hexdigest()

    def test_auto_is_strict_format_drizzle_ignores(self, tmp_path: Path) -> None:
        """A loose .sql file or a folder without migration.sql beside v1 folders: auto refuses it, --format drizzle
        ignores it as Drizzle does and says so."""
        write(self.folder(tmp_path), "notes/README.md", "x")
        with pytest.raises(MigrationFileError, match="notes/: not a Drizzle v1 migration"):
            load_migrations(tmp_path)
        files = load_migrations(tmp_path, format="drizzle")
        assert 2 == len(files.versioned) and ["notes"] == [n.split(":")[0] for n in files.notes]

    def test_same_timestamp_refused(self, tmp_path: Path) -> None:
        """Two folders with one timestamp would be one version: refused, naming both."""
        write(self.folder(tmp_path), "20250101120000_also/migration.sql", "SELECT 1;")
        write(tmp_path, "20250101120000_also/snapshot.json", "{}")
        with pytest.raises(MigrationFileError, match="same timestamp"):
            load_migrations(tmp_path)

    def test_name_without_timestamp_refused(self, tmp_path: Path) -> None:
        write(tmp_path, "init/migration.sql", "SELECT 1;")
        write(tmp_path, "init/snapshot.json", "{}")
        with pytest.raises(MigrationFileError, match="14-digit timestamp"):
            load_migrations(tmp_path)

    def test_dialect_mismatch(self, tmp_path: Path) -> None:
        with pytest.raises(MigrationFileError, match="generated for mysql and the database is postgresql"):
            load_migrations(self.folder(tmp_path, "mysql"), dialect="postgresql")

    def test_journal_beside_v1_folders(self, tmp_path: Path) -> None:
        """A 0.x journal beside v1 folders is refused by Drizzle v1 until `drizzle-kit up`: auto refuses it too."""
        TestDrizzle().folder(tmp_path)
        write(tmp_path, "20250101120000_init/migration.sql", "SELECT 1;")
        write(tmp_path, "20250101120000_init/snapshot.json", "{}")
        with pytest.raises(MigrationFileError, match="drizzle-kit up"):
            load_migrations(tmp_path)


class TestNewFormats:
    def test_drizzle_journal_gets_the_new_file(self, tmp_path: Path) -> None:
        """`new` in a Drizzle folder writes NNNN_<name>.sql and lists it in the journal, as drizzle-kit does."""
        from datetime import datetime

        from premigrate.commands import new

        folder = TestDrizzle().folder(tmp_path)
        created = new.create(folder, load_migrations(folder), "add tags", None, datetime(2026, 1, 2, 3, 4, 5))
        assert ["0002_add_tags.sql"] == [p.name for p in created]
        files = load_migrations(folder)
        assert (["0", "1", "2"], True) == ([m.id for m in files.versioned], files.versioned[2].draft)

    def test_popx_pair(self, tmp_path: Path) -> None:
        from datetime import datetime

        from premigrate.commands import new

        for name, text in TestPopx.FILES.items():
            write(tmp_path, name, text)
        created = new.create(tmp_path, load_migrations(tmp_path, dialect="postgresql"), "next", None,
                             datetime(2026, 1, 2, 3, 4, 5))
        assert ["20260102030405000000_next.up.sql", "20260102030405000000_next.down.sql"] == [p.name for p in created]


class TestSqlMigrateTies:
    def test_shared_number_ordered_by_name(self, tmp_path: Path) -> None:
        """Two sql-migrate files with one number run in name order, as sql-migrate runs them; the first keeps the
        number, the next becomes <number>.1."""
        write(tmp_path, "8_create_asset_stats_table.sql", "-- +migrate Up\nSELECT 2;\n")
        write(tmp_path, "8_add_aggregators.sql", "-- +migrate Up\nSELECT 1;\n")
        write(tmp_path, "9_next.sql", "-- +migrate Up\nSELECT 3;\n")
        files = load_migrations(tmp_path)
        assert [("8", "8_add_aggregators.sql"), ("8.1", "8_create_asset_stats_table.sql"), ("9", "9_next.sql")] == [
            (m.id, m.script) for m in files.versioned]

    def test_other_formats_still_refuse_a_shared_number(self, tmp_path: Path) -> None:
        write(tmp_path, "8_a.sql", "SELECT 1;\n")
        write(tmp_path, "8_b.sql", "SELECT 2;\n")
        with pytest.raises(MigrationFileError, match="both carry version 8"):
            load_migrations(tmp_path)


class TestFlywayPlaceholders:
    def test_explicit_flyway_replaces_placeholders(self, tmp_path: Path) -> None:
        """Flyway replaces ${name} in every file by default; --format flyway does too, auto only when asked."""
        write(tmp_path, "V1__a.sql", "CREATE TABLE ${table} (id int);")
        assert load_migrations(tmp_path, format="flyway").versioned[0].placeholders
        assert not load_migrations(tmp_path).versioned[0].placeholders


class TestAtlasDirFormats:
    """`atlas migrate --dir-format goose|golang-migrate|...` writes atlas.sum beside another tool's files."""

    def test_goose_files_with_atlas_sum(self, tmp_path: Path) -> None:
        """auto checks the sum, then reads the files as goose (their Down sections are not run by up)."""
        folder = TestAtlas().folder(tmp_path, {"1_a.sql": "-- +goose Up\nSELECT 1;\n-- +goose Down\nSELECT 2;\n"})
        migration = load_migrations(folder).versioned[0]
        assert ("goose", ["SELECT 1"]) == (migration.format, texts(migration))
        write(folder, "1_a.sql", "-- +goose Up\nSELECT 3;\n-- +goose Down\nSELECT 2;\n")
        with pytest.raises(MigrationFileError, match="its hash differs from atlas.sum"):
            load_migrations(folder)

    def test_golang_migrate_files_with_atlas_sum(self, tmp_path: Path) -> None:
        """Atlas hashes only the up files of a golang-migrate folder (GolangMigrateDir.Files: `*.up.sql`): a down file
        is not in atlas.sum, and changing it is no mismatch; changing an up file is."""
        folder = TestAtlas().folder(tmp_path, {"1_a.up.sql": "SELECT 1;\n", "1_a.down.sql": "SELECT 2;\n",
                                               "2_b.up.sql": "SELECT 3;\n", "2_b.down.sql": "SELECT 4;\n"},
                                    "golang-migrate")
        assert ["1_a.up.sql", "2_b.up.sql"] == [line.split(" ")[0] for line in
                                                (folder / "atlas.sum").read_text().splitlines()[1:]]
        files = load_migrations(folder)
        assert [("golang-migrate", "SELECT 2;\n"), ("golang-migrate", "SELECT 4;\n")] == [
            (m.format, m.down_sql) for m in files.versioned]
        write(folder, "2_b.down.sql", "SELECT 5;\n")
        assert 2 == len(load_migrations(folder).versioned)
        write(folder, "2_b.up.sql", "SELECT 6;\n")
        with pytest.raises(MigrationFileError, match="2_b.up.sql: its hash differs from atlas.sum"):
            load_migrations(folder)
        with pytest.raises(MigrationFileError, match="--format golang-migrate"):
            load_migrations(folder, format="atlas")

    @pytest.mark.parametrize(("names", "hashed"), [
        # ariga/atlas sql/sqltool/tool_test.go, TestChecksum "flyway" (its folder's top level): a baseline hides
        # the versions up to its own, U undo files are not hashed, repeatable files come last.
        pytest.param(["U1__initial.sql", "V1__initial.sql", "R__views.sql", "B2__baseline.sql",
                      "V2__second_migration.sql", "V3__third_migration.sql"],
                     ["B2__baseline.sql", "V3__third_migration.sql", "R__views.sql"], id="baseline-undo-repeatable"),
        # TestChecksum "flyway non-local directory": FlywayDir walks the sub-folder v3/, whose file is named by its
        # path and sorted by its own version.
        pytest.param(["U1__initial.sql", "V1__initial.sql", "R__views.sql", "B2__baseline.sql",
                      "V2__second_migration.sql", "V3__third_migration.sql", "v3/V3_1__fourth_migration.sql"],
                     ["B2__baseline.sql", "V3__third_migration.sql", "v3/V3_1__fourth_migration.sql", "R__views.sql"],
                     id="sub-folder"),
        # fs.WalkDir's order, not the paths' byte order: the folder R__v (before R__v.sql by name) is walked first,
        # so its repeatable file comes first ('.' sorts before '/').
        pytest.param(["R__v.sql", "R__v/R__w.sql"], ["R__v/R__w.sql", "R__v.sql"], id="walk-order"),
        # TestChecksum "flyway with semver versioning": versions compare as numbers, `_` and `.` alike.
        pytest.param(["V1__.sql", "V1_1_0__.sql", "V1.1.1__.sql", "V2__.sql", "V2.1.0__.sql", "V3__.sql",
                      "V11__.sql", "V11.11.11__.sql"],
                     ["V1__.sql", "V1_1_0__.sql", "V1.1.1__.sql", "V2__.sql", "V2.1.0__.sql", "V3__.sql", "V11__.sql",
                      "V11.11.11__.sql"], id="semver"),
    ])
    def test_flyway_files_atlas_hashes(self, names: list[str], hashed: list[str]) -> None:
        """The files Atlas hashes into atlas.sum for its Flyway directory format, in its order."""
        from premigrate.model.formats.atlas import hashed_files

        assert hashed == [n for n, _ in hashed_files("flyway", [(n, b"SELECT 1;\n") for n in names])]

    def test_flyway_files_with_atlas_sum(self, tmp_path: Path) -> None:
        """auto accepts the atlas.sum Atlas writes for Flyway files (V10 after V2, the U file left out)."""
        folder = TestAtlas().folder(tmp_path, {"V1__a.sql": "CREATE TABLE a (id int);\n",
                                               "V2__b.sql": "CREATE TABLE b (id int);\n", "U2__b.sql": "DROP TABLE b;\n",
                                               "V10__c.sql": "CREATE TABLE c (id int);\n"}, "flyway")
        assert ["V1__a.sql", "V2__b.sql", "V10__c.sql"] == [line.split(" ")[0] for line in
                                                          (folder / "atlas.sum").read_text().splitlines()[1:]]
        assert ["1", "2", "10"] == [str(m.version) for m in load_migrations(folder).versioned]

    def test_atlas_own_flyway_fixture_with_sub_folder(self, tmp_path: Path) -> None:
        """Atlas's own Flyway fixture (ariga/atlas sql/sqltool/testdata/flyway, with its sub-folder v3/), hashed in
        the order Atlas's TestChecksum expects: the sum checks out, then its baseline file (B2__, which premigrate
        does not run) is refused by name, not as a checksum mismatch or a sub-folder."""
        for name, text in git_files("ariga/atlas", "sql/sqltool/testdata/flyway/").items():
            write(tmp_path, name, text)
        write_atlas_sum(tmp_path, ["B2__baseline.sql", "V3__third_migration.sql", "v3/V3_1__fourth_migration.sql",
                                  "R__views.sql"])
        with pytest.raises(MigrationFileError, match="^B2__baseline.sql: the name matches no migration pattern"):
            load_migrations(tmp_path)

    def test_flyway_sub_folders_with_atlas_sum(self, tmp_path: Path) -> None:
        """Atlas's flyway format walks sub-folders: their files are checked against atlas.sum by their paths, then
        run as Flyway runs them (by version, wherever they are), recorded by their paths; an undo file is not
        hashed, an edited versioned one is refused by its path."""
        write(tmp_path, "V1__a.sql", "CREATE TABLE a (id int);\n")
        write(tmp_path, "R__views.sql", "CREATE VIEW v AS SELECT 1;\n")
        write(tmp_path, "2.0/V2__b.sql", "CREATE TABLE b (id int);\n")
        write(tmp_path, "2.0/U2__b.sql", "DROP TABLE b;\n")
        write(tmp_path, "later/V10__c.sql", "CREATE TABLE c (id int);\n")
        write(tmp_path, "later/notes.txt", "not SQL")
        write_atlas_sum(tmp_path, ["V1__a.sql", "2.0/V2__b.sql", "later/V10__c.sql", "R__views.sql"])
        files = load_migrations(tmp_path)
        assert [("1", "V1__a.sql", None), ("2", "2.0/V2__b.sql", "2.0/U2__b.sql"),
                ("10", "later/V10__c.sql", None)] == [(m.id, m.script, m.down_script) for m in files.versioned]
        assert [("R:views", "flyway")] == [(m.id, m.format) for m in files.repeatable]
        write(tmp_path, "2.0/U2__b.sql", "DROP TABLE IF EXISTS b;\n")
        assert 3 == len(load_migrations(tmp_path).versioned)
        write(tmp_path, "2.0/V2__b.sql", "CREATE TABLE b (id bigint);\n")
        with pytest.raises(MigrationFileError, match="^2.0/V2__b.sql: its hash differs from atlas.sum"):
            load_migrations(tmp_path)

    def test_flyway_files_only_in_sub_folders(self, tmp_path: Path) -> None:
        """With no file beside atlas.sum, the sub-folders' Flyway files tell the format."""
        write(tmp_path, "r1/V1__a.sql", "CREATE TABLE a (id int);\n")
        write(tmp_path, "r2/V2__b.sql", "CREATE TABLE b (id int);\n")
        write_atlas_sum(tmp_path, ["r1/V1__a.sql", "r2/V2__b.sql"])
        assert ["r1/V1__a.sql", "r2/V2__b.sql"] == [m.script for m in load_migrations(tmp_path).versioned]

    @pytest.mark.parametrize(("files", "message"), [
        pytest.param({"1_a.sql": "SELECT 1;\n", "old/2_b.sql": "SELECT 2;\n"},
                     "^old/: a sub-folder beside atlas.sum; the files beside it are in Atlas's own directory format, "
                     "which reads only the folder's own files, so Atlas would ignore it: .* --format atlas",
                     id="atlas-own-format"),
        pytest.param({"old/2_b.sql": "SELECT 2;\n"},
                     "^old/: .*no migration file is beside it and the sub-folders hold no Flyway migration",
                     id="nothing-to-tell"),
        pytest.param({"1_a.sql": "-- +goose Up\nSELECT 1;\n", "old/V2__b.sql": "SELECT 2;\n"},
                     r"^old/: a sub-folder beside atlas.sum and goose files \(1_a.sql\); Atlas's goose directory "
                     "format reads only the folder's own files .* --format goose", id="goose"),
        pytest.param({"V1__a.sql": "SELECT 1;\n", "sub/2_b.sql": "SELECT 2;\n"},
                     "^sub/2_b.sql: in a sub-folder of a Flyway folder .* not a Flyway migration name",
                     id="not-a-flyway-name"),
        pytest.param({"V1__a.sql": "SELECT 1;\n", "sub/afterMigrate.sql": "SELECT 2;\n"},
                     "^sub/afterMigrate.sql: a Flyway callback name in a sub-folder", id="callback"),
    ])
    def test_sub_folders_refused_with_atlas_sum(self, tmp_path: Path, files: dict[str, str], message: str) -> None:
        """A sub-folder Atlas would ignore (every directory format but flyway's reads the folder's own files only),
        or a file in a Flyway sub-folder that is no Flyway migration, is refused, saying which."""
        for name, text in files.items():
            write(tmp_path, name, text)
        write_atlas_sum(tmp_path, [n for n in files if "/" not in n])
        with pytest.raises(MigrationFileError, match=message):
            load_migrations(tmp_path)

    def test_lint_directives_are_comments_to_other_tools(self, tmp_path: Path) -> None:
        """`-- atlas:nolint` (Atlas's lint) in a golang-migrate file changes nothing about how it runs: read as SQL.
        A directive that changes how Atlas runs a file is still refused outside an Atlas folder."""
        write(tmp_path, "1_a.up.sql", "-- atlas:nolint DS103\nALTER TABLE a DROP COLUMN b;\n")
        write(tmp_path, "1_a.down.sql", "-- atlas:nolint\nALTER TABLE a ADD COLUMN b int;\n")
        assert ["golang-migrate"] == [m.format for m in load_migrations(tmp_path).versioned]
        write(tmp_path, "1_a.up.sql", "-- atlas:txmode none\nALTER TABLE a DROP COLUMN b;\n")
        with pytest.raises(MigrationFileError, match="Atlas"):
            load_migrations(tmp_path)


class TestDetectionCost:
    def test_plain_folder_loads_no_parser_of_another_tool(self, tmp_path: Path) -> None:
        """Reading a folder of Flyway and golang-migrate files loads neither goose's nor sql-migrate's parser."""
        import sys

        write(tmp_path, "V1__a.sql", "-- a comment\nCREATE TABLE a (id int);\n")
        write(tmp_path, "2_b.up.sql", "CREATE TABLE b (id int);\n")
        write(tmp_path, "2_b.down.sql", "DROP TABLE b;\n")
        probe = ("import sys; from pathlib import Path; from premigrate.model.migrations import load_migrations; "
                 f"load_migrations(Path({str(tmp_path)!r})); "
                 "print(sorted(m for m in sys.modules if m.startswith('premigrate.model.formats.')))")
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
        assert "['premigrate.model.formats.base', 'premigrate.model.formats.files', " \
               "'premigrate.model.formats.markers']" == out.strip()
