from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from premigrate.errors import MigrationFileError, UsageError
from premigrate.model.migrations import checksum, load_migrations, parse_name
from premigrate.model.versions import Version


def write(directory: Path, name: str, content: str | bytes) -> Path:
    path = directory / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


class TestNamePatterns:
    """The patterns, in the order they are tried."""

    @pytest.mark.parametrize(
        ("name", "pattern", "version", "description", "direction"),
        [
            pytest.param("V1__init.sql", "flyway", "1", "init", "up", id="flyway"),
            pytest.param("V1_1__add.sql", "flyway", "1.1", "add", "up", id="flyway-underscore-version"),
            pytest.param("V2.3__x_y.sql", "flyway", "2.3", "x_y", "up", id="flyway-dotted"),
            pytest.param("U1__init.sql", "flyway-undo", "1", "init", "down", id="flyway-undo"),
            pytest.param("R__views.sql", "flyway-repeatable", None, "views", "repeatable", id="flyway-repeatable"),
            pytest.param("2026_01_13_155307_create_cache_table.sql", "laravel", "20260113155307",
                         "create_cache_table", "up", id="laravel"),
            pytest.param("2026_01_13_155307_create.down.sql", "laravel", "20260113155307", "create", "down",
                         id="laravel-down"),
            pytest.param("001_users.up.sql", "pair", "1", "users", "up", id="pair-up"),
            pytest.param("001_users.down.sql", "pair", "1", "users", "down", id="pair-down"),
            pytest.param("001_create_users.sql", "plain", "1", "create_users", "up", id="plain"),
            pytest.param("20260113155307_x.sql", "plain", "20260113155307", "x", "up", id="plain-timestamp"),
            pytest.param("1.10_x.sql", "plain", "1.10", "x", "up", id="plain-dotted"),
            pytest.param("007.sql", "plain", "7", "", "up", id="plain-no-description"),
        ],
    )
    def test_parses(self, name: str, pattern: str, version: str | None, description: str, direction: str) -> None:
        """Each supported name is read into its version, description and direction."""
        got = parse_name(name)
        assert (pattern, version, description, direction) == (
            got[0], str(got[1]) if got[1] is not None else None, got[2], got[3])

    def test_laravel_tried_before_plain(self) -> None:
        """The 4-group date is one number, not version 2026 with description 01_13_..."""
        assert Version.parse("20260113155307") == parse_name("2026_01_13_155307_a.sql")[1]

    @pytest.mark.parametrize("name", ["create_users.sql", "v_1.sql", "V1_init.sql", "R_x.sql", "_1_x.sql",
                                      "1-x.sql", "abc.SQL"])
    def test_rejects_unmatched(self, name: str) -> None:
        """A .sql name no pattern matches is an error naming the file."""
        with pytest.raises(MigrationFileError, match=name.replace(".", r"\.")):
            parse_name(name)


class TestLoad:
    def test_reads_formats_mixed(self, tmp_path: Path) -> None:
        """Plain, sectioned, paired and Flyway files mix in one folder, sorted by version."""
        write(tmp_path, "V3__flyway.sql", "CREATE TABLE c (id int);")
        write(tmp_path, "001_plain.sql", "CREATE TABLE a (id int);")
        write(tmp_path, "002_pair.up.sql", "CREATE TABLE b (id int);")
        write(tmp_path, "002_pair.down.sql", "DROP TABLE b;")
        write(tmp_path, "2026_01_13_155307_laravel.sql", "-- migrate:up\nCREATE TABLE d (id int);\n-- migrate:down\nDROP TABLE d;\n")
        write(tmp_path, "R__view.sql", "CREATE VIEW v AS SELECT 1;")
        write(tmp_path, "README.md", "ignored")
        files = load_migrations(tmp_path)
        assert ["1", "2", "3", "20260113155307"] == [m.id for m in files.versioned]
        assert ["R:view"] == [m.id for m in files.repeatable]
        assert "DROP TABLE b;" == files.versioned[1].down_sql
        assert "DROP TABLE d;\n" == files.versioned[3].down_sql
        assert "CREATE TABLE d (id int);\n" == files.versioned[3].up_sql

    def test_sections_line_offset(self, tmp_path: Path) -> None:
        """The up part of a sectioned file remembers the file line where it starts."""
        write(tmp_path, "001_x.sql", "-- comment\n-- migrate:up\nCREATE TABLE a (id int);\n")
        assert 3 == load_migrations(tmp_path).versioned[0].up_first_line

    def test_flyway_undo_is_down_part(self, tmp_path: Path) -> None:
        """A Flyway U file is the down part of the same version."""
        write(tmp_path, "V1__a.sql", "CREATE TABLE a (id int);")
        write(tmp_path, "U1__a.sql", "DROP TABLE a;")
        migration = load_migrations(tmp_path).versioned[0]
        assert ("DROP TABLE a;", "U1__a.sql") == (migration.down_sql, migration.down_script)

    @pytest.mark.parametrize(
        ("files", "message"),
        [
            pytest.param({"001_a.sql": "x", "1_b.sql": "y"}, "both carry version 1", id="duplicate-plain"),
            pytest.param({"001_a.sql": "x", "V1__b.sql": "y"}, "both carry version 1", id="duplicate-flyway"),
            pytest.param({"1.0_a.sql": "x", "1_b.up.sql": "y"}, "both carry version 1", id="duplicate-dotted"),
            pytest.param({"002_a.down.sql": "x"}, "no up part", id="down-without-up"),
            pytest.param({"R__a.sql": "x", "R__A.sql": "y"}, "same description", id="duplicate-repeatable"),
            pytest.param({"001_a.sql": "-- migrate:up\nx\n-- migrate:up\ny"}, "exactly one", id="two-up-sections"),
            pytest.param({"001_a.sql": "-- migrate:down\nx\n-- migrate:up\ny"}, "before", id="down-before-up"),
            pytest.param({"001_a.sql": "SELECT 1;\n-- migrate:up\ny"}, "before the", id="sql-before-up"),
            pytest.param({"001_a.sql": "-- premigrate:placeholders\n-- migrate:up\nSELECT '${X}';"},
                         "line 1: '-- premigrate:placeholders' is above the '-- migrate:up' line",
                         id="directive-above-dbmate-up"),
            pytest.param({"001_a.sql": "-- +goose NO TRANSACTION\n-- premigrate:draft\n-- +goose Up\nSELECT 1;\n"},
                         "line 2: '-- premigrate:draft' is above the '-- \\+goose Up' line",
                         id="directive-above-goose-up"),
            pytest.param({"001_a.sql": "-- migrate:up\nx\n-- migrate:down\nDROP x;", "001_a.down.sql": "y"},
                         "another down part", id="section-and-down-file"),
            pytest.param({"001_a.sql": "-- premigrate:no-transction\nSELECT 1;"}, "unknown directive",
                         id="misspelt-directive"),
            pytest.param({"001_a.sql": "-- migrate:up transaction:maybe\nSELECT 1;"}, "unknown", id="bad-option"),
            pytest.param({"create.sql": "x"}, "matches no migration pattern", id="bad-name"),
        ],
    )
    def test_refuses_broken_folder(self, tmp_path: Path, files: dict[str, str], message: str) -> None:
        """A folder with a broken file fails as a whole, with a message naming the problem."""
        for name, content in files.items():
            write(tmp_path, name, content)
        with pytest.raises(MigrationFileError, match=message):
            load_migrations(tmp_path)

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            pytest.param(b"SELECT 1;\xff\xfe", "invalid UTF-8 at byte 9", id="invalid-utf8"),
            pytest.param(b"SELECT \x00 1;", "NUL byte at offset 7", id="nul"),
        ],
    )
    def test_refuses_binary(self, tmp_path: Path, content: bytes, message: str) -> None:
        """Bytes that are not UTF-8 text are an error naming the file and the position."""
        write(tmp_path, "001_a.sql", content)
        with pytest.raises(MigrationFileError, match=f"001_a.sql: .*{message}"):
            load_migrations(tmp_path)

    def test_refuses_oversized(self, tmp_path: Path) -> None:
        """A file over 64 MiB is an error (sparse file: no 64 MiB written)."""
        path = tmp_path / "001_big.sql"
        with path.open("wb") as handle:
            handle.truncate(64 * 1024 * 1024 + 1)
        with pytest.raises(MigrationFileError, match="64 MiB"):
            load_migrations(tmp_path)

    def test_follows_symlinks_to_files(self, tmp_path: Path) -> None:
        """A symlink to a file is read like the file."""
        target = write(tmp_path, "elsewhere.txt", "CREATE TABLE a (id int);")
        (tmp_path / "001_a.sql").symlink_to(target)
        assert "CREATE TABLE a (id int);" == load_migrations(tmp_path).versioned[0].up_sql

    @pytest.mark.parametrize("kind", ["broken", "loop"])
    def test_refuses_bad_symlinks(self, tmp_path: Path, kind: str) -> None:
        """A dangling symlink or a symlink loop named *.sql is an error, not skipped."""
        if kind == "broken":
            (tmp_path / "001_a.sql").symlink_to(tmp_path / "missing")
        else:
            (tmp_path / "001_a.sql").symlink_to(tmp_path / "002_b.sql")
            (tmp_path / "002_b.sql").symlink_to(tmp_path / "001_a.sql")
        with pytest.raises(MigrationFileError, match="cannot read"):
            load_migrations(tmp_path)

    def test_ignores_dotfiles_and_other_files(self, tmp_path: Path) -> None:
        """Dot files and non-.sql files are ignored."""
        write(tmp_path, "001_a.sql", "x")
        write(tmp_path, ".#002_a.sql", "x")
        write(tmp_path, "notes.txt", "x")
        (tmp_path / ".git").mkdir()
        assert ["1"] == [m.id for m in load_migrations(tmp_path).all]

    def test_unknown_subfolder_refused(self, tmp_path: Path) -> None:
        """A sub-folder that is no migration of a known layout is refused, named: never silently skipped."""
        (tmp_path / "sub").mkdir()
        write(tmp_path / "sub", "001_a.sql", "x")
        write(tmp_path, "001_a.sql", "x")
        with pytest.raises(MigrationFileError, match="sub/: not a migration of a known layout"):
            load_migrations(tmp_path)

    def test_unreadable_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unreadable file is an error naming it (root reads everything, so the denial is simulated here)."""
        write(tmp_path, "001_a.sql", "x")

        def deny(*args: object, **kwargs: object) -> object:
            raise PermissionError(13, "Permission denied")

        from premigrate.model.formats import base

        monkeypatch.setattr(base, "open", deny, raising=False)
        with pytest.raises(MigrationFileError, match="001_a.sql: cannot read it \\(permission denied\\)"):
            load_migrations(tmp_path)

    @pytest.mark.parametrize("content", ["", "-- nothing here\n", "/* block */\n\n"])
    def test_empty_up_part_is_valid(self, tmp_path: Path, content: str) -> None:
        """Empty and comment-only files are valid migrations."""
        write(tmp_path, "001_a.sql", content)
        assert load_migrations(tmp_path).versioned[0].is_empty

    def test_missing_folder_is_usage_error(self, tmp_path: Path) -> None:
        """A missing folder is a configuration error (exit 2), naming the folder."""
        with pytest.raises(UsageError, match="does not exist"):
            load_migrations(tmp_path / "nope")

    @pytest.mark.parametrize(
        ("content", "expected"),
        [
            pytest.param("-- premigrate:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (c);", True, id="directive"),
            pytest.param("-- migrate:up transaction:false\nSELECT 1;", True, id="dbmate-option"),
            pytest.param("SELECT 1;", False, id="default"),
        ],
    )
    def test_no_transaction(self, tmp_path: Path, content: str, expected: bool) -> None:
        """Both the premigrate directive and dbmate's option mark a file as no-transaction."""
        write(tmp_path, "001_a.sql", content)
        assert expected == load_migrations(tmp_path).versioned[0].no_transaction


class TestChecksum:
    def test_algorithm_named(self) -> None:
        """The checksum is sha256 of the text, stored with its algorithm name."""
        assert "sha256:" + hashlib.sha256(b"SELECT 1;\n").hexdigest() == checksum("SELECT 1;\n")

    def test_crlf_and_bom_do_not_change_it(self, tmp_path: Path) -> None:
        """A Windows checkout (CRLF, BOM) has the same checksum as the LF original."""
        write(tmp_path, "001_a.sql", b"CREATE TABLE a (id int);\nSELECT 1;\n")
        unix = load_migrations(tmp_path).versioned[0].checksum
        write(tmp_path, "001_a.sql", b"\xef\xbb\xbfCREATE TABLE a (id int);\r\nSELECT 1;\r\n")
        assert unix == load_migrations(tmp_path).versioned[0].checksum

    def test_checksum_is_of_up_part_only(self, tmp_path: Path) -> None:
        """Editing the down section does not change the up checksum."""
        write(tmp_path, "001_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n")
        before = load_migrations(tmp_path).versioned[0].checksum
        write(tmp_path, "001_a.sql", "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 3;\n")
        assert before == load_migrations(tmp_path).versioned[0].checksum


class TestDirectives:
    @pytest.mark.parametrize(
        ("content", "message"),
        [
            pytest.param("-- premigrate:allow\nSELECT 1;", "needs rule ids", id="allow-without-rule"),
            pytest.param("-- premigrate:placeholders yes\nSELECT 1;", "takes no argument", id="placeholders-arg"),
            pytest.param("-- premigrate:no-transaction now\nSELECT 1;", "takes no argument", id="no-tx-arg"),
        ],
    )
    def test_malformed(self, tmp_path: Path, content: str, message: str) -> None:
        """A directive with a missing or unexpected argument is an error."""
        write(tmp_path, "001_a.sql", content)
        with pytest.raises(MigrationFileError, match=message):
            load_migrations(tmp_path)

    def test_allow_and_placeholders_accepted(self, tmp_path: Path) -> None:
        """allow takes rule ids; placeholders marks the file."""
        write(tmp_path, "001_a.sql", "-- premigrate:placeholders\n-- premigrate:allow drop-table, truncate\nDROP TABLE x;")
        migration = load_migrations(tmp_path).versioned[0]
        assert (True, False) == (migration.placeholders, migration.no_transaction)
