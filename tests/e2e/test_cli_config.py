"""Configuration errors exit 2 and bad migration files exit 5, with one clear message and nothing created."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.helpers import free_port, output_of, write
from tests.support import CliResult, TestDatabase, run_cli

GOOD = "CREATE TABLE t1 (id INTEGER PRIMARY KEY);\n"
QUIET_EVENTS = {"config_loaded", "no_database_configured", "error", "summary"}


def assert_one_line_error(result: CliResult, expected_code: int, *mentions: str) -> str:
    """Exit `expected_code`, one single-line `error` event naming `mentions`, the summary last, no traceback."""
    assert expected_code == result.returncode, result.stderr
    [error] = result.find("error")
    message = error["error"]
    assert "\n" not in message
    for mention in mentions:
        assert mention in message, f"{mention!r} not in {message!r}"
    assert "summary" == result.events[-1]["event"]
    assert expected_code == result.events[-1]["exit_code"]
    assert "Traceback" not in output_of(result)
    assert [] == result.find("internal_error")
    assert set(result.event_names()) <= QUIET_EVENTS, result.event_names()
    return message


def assert_nothing_created(db: TestDatabase) -> None:
    if db.dialect == "sqlite":
        assert db.path is not None and not db.path.exists()
    else:
        assert set() == db.tables()


# Each case: (extra args, extra env given the db and tmp_path, words the message must contain).
Case = Callable[[TestDatabase, Path], tuple[list[str], dict[str, str], list[str]]]


def _missing_dir(db: TestDatabase, tmp: Path) -> tuple[list[str], dict[str, str], list[str]]:
    missing = str(tmp / "no_such_folder")
    return ["--dir", missing], {"DATABASE_URL": db.url}, [missing]


def _bad_table(db: TestDatabase, tmp: Path) -> tuple[list[str], dict[str, str], list[str]]:
    return ["--table", "x; DROP TABLE y"], {"DATABASE_URL": db.url}, ["--table"]


def _long_table(db: TestDatabase, tmp: Path) -> tuple[list[str], dict[str, str], list[str]]:
    return ["--table", "h" * 64], {"DATABASE_URL": db.url}, ["63 bytes"]


def _bad_wait_timeout(db: TestDatabase, tmp: Path) -> tuple[list[str], dict[str, str], list[str]]:
    return ["--wait-timeout", "abc"], {"DATABASE_URL": db.url}, ["--wait-timeout"]


def _url_and_url_file(db: TestDatabase, tmp: Path) -> tuple[list[str], dict[str, str], list[str]]:
    url_file = tmp / "database_url"
    url_file.write_text(db.url + "\n")
    return [], {"DATABASE_URL": db.url, "DATABASE_URL_FILE": str(url_file)}, ["DATABASE_URL", "DATABASE_URL_FILE"]


def _url_and_db_host_disagree(db: TestDatabase, tmp: Path) -> tuple[list[str], dict[str, str], list[str]]:
    return [], {"DATABASE_URL": db.url, "DB_HOST": "db.example.invalid"}, ["DATABASE_URL", "DB_HOST"]


CONFIG_CASES = [
    pytest.param(_missing_dir, id="missing-dir"),
    pytest.param(_bad_table, id="table-injection"),
    pytest.param(_long_table, id="table-64-bytes"),
    pytest.param(_bad_wait_timeout, id="wait-timeout-abc"),
    pytest.param(_url_and_url_file, id="url-and-url-file"),
    pytest.param(_url_and_db_host_disagree, id="url-and-db-host-disagree"),
]


class TestConfigurationErrors:
    @pytest.mark.parametrize("case", CONFIG_CASES)
    def test_exit_2_one_line_nothing_created(self, db: TestDatabase, migrations_dir: Path, tmp_path: Path,
                                             case: Case) -> None:
        """A configuration error exits 2 with one single-line `error` event naming the culprit, creating nothing."""
        write(migrations_dir, "001_t1.sql", GOOD)
        args, env, mentions = case(db, tmp_path)
        if "--dir" not in args:
            args = ["--dir", str(migrations_dir), *args]

        result = run_cli("up", *args, env=env, cwd=tmp_path)

        assert_one_line_error(result, 2, *mentions)
        assert_nothing_created(db)

    def test_unknown_scheme(self, tmp_path: Path, migrations_dir: Path) -> None:
        """DATABASE_URL=oracle://x exits 2 with a message naming the scheme, and no file is created."""
        write(migrations_dir, "001_t1.sql", GOOD)

        result = run_cli("up", env={"DATABASE_URL": "oracle://x"}, cwd=tmp_path)

        assert_one_line_error(result, 2, "oracle")
        assert ["migrations"] == sorted(p.name for p in tmp_path.iterdir())

    def test_require_database_with_nothing_configured(self, tmp_path: Path, migrations_dir: Path) -> None:
        """PREMIGRATE_REQUIRE_DATABASE=1 with no database configured exits 2 and creates no premigrate.db."""
        write(migrations_dir, "001_t1.sql", GOOD)

        result = run_cli("up", env={"PREMIGRATE_REQUIRE_DATABASE": "1"}, cwd=tmp_path)

        assert_one_line_error(result, 2, "no database configured")
        assert not (tmp_path / "premigrate.db").exists()
        assert [] == result.find("no_database_configured")

    @pytest.mark.parametrize("dialect", [pytest.param("mysql", id="mysql"), pytest.param("sqlite", id="sqlite")])
    def test_schema_outside_postgresql(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--schema on MySQL or SQLite exits 2 (it is PostgreSQL only) and creates nothing."""
        write(migrations_dir, "001_t1.sql", GOOD)

        result = run_cli("up", "--dir", str(migrations_dir), "--schema", "app", env={"DATABASE_URL": db.url},
                         cwd=migrations_dir.parent)

        assert_one_line_error(result, 2, "--schema")
        assert_nothing_created(db)


def _unmatched_name(d: Path) -> str:
    write(d, "001_t1.sql", GOOD)
    write(d, "create_users.sql", GOOD)
    return "create_users.sql"


def _duplicate_version(d: Path) -> str:
    write(d, "001_a.sql", GOOD)
    write(d, "1_b.sql", "CREATE TABLE t2 (id INTEGER);\n")
    return "1_b.sql"


def _invalid_utf8(d: Path) -> str:
    (d / "001_a.sql").write_bytes(b"CREATE TABLE t1 (id INTEGER); -- caf\xe9 in Latin-1\n")
    return "001_a.sql"


def _nul_byte(d: Path) -> str:
    (d / "001_a.sql").write_bytes(b"CREATE TABLE t1 (id INTEGER);\x00\n")
    return "001_a.sql"


FILE_CASES = [
    pytest.param(_unmatched_name, id="name-matches-no-pattern"),
    pytest.param(_duplicate_version, id="duplicate-version"),
    pytest.param(_invalid_utf8, id="invalid-utf8"),
    pytest.param(_nul_byte, id="nul-byte"),
]


class TestUnencodedPasswordInUrl:
    @pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
    @pytest.mark.parametrize("password", [pytest.param("x@#y", id="at-hash"), pytest.param("P@ss#2024", id="P@ss#2024"),
                                          pytest.param("P@ss", id="two-at")])
    def test_exit_2_and_the_database_the_environment_names_is_untouched(
            self, db: TestDatabase, migrations_dir: Path, tmp_path: Path, password: str) -> None:
        """A raw '#' or '@' in the URL's password exits 2 with a hint to percent-encode, even when PGHOST/PGDATABASE
        (which libpq would use to fill the gaps) name a real database: that database is left untouched."""
        write(migrations_dir, "001_t1.sql", GOOD)
        parts = urlsplit(db.url)
        url = f"{parts.scheme}://{parts.username}:{password}@{parts.hostname}:{parts.port}/{db.name}"
        env = {"DATABASE_URL": url, "PGHOST": parts.hostname or "", "PGPORT": str(parts.port or 5432),
               "PGUSER": parts.username or "", "PGDATABASE": db.name}

        result = run_cli("up", "--dir", str(migrations_dir), env=env, cwd=tmp_path, timeout=60)

        message = assert_one_line_error(result, 2, "DATABASE_URL", "percent-encode", "%23", "%40")
        assert password not in message
        assert_nothing_created(db)


class TestBadMigrationFiles:
    @pytest.mark.parametrize("case", FILE_CASES)
    def test_exit_5_before_connecting(self, db: TestDatabase, migrations_dir: Path,
                                      case: Callable[[Path], str]) -> None:
        """A broken migration file exits 5 naming it, without connecting: no history table, no SQLite file."""
        culprit = case(migrations_dir)

        result = run_cli("up", "--dir", str(migrations_dir), env={"DATABASE_URL": db.url}, cwd=migrations_dir.parent)

        assert_one_line_error(result, 5, culprit)
        assert [] == result.find("database_ready")
        assert_nothing_created(db)

    @pytest.mark.parametrize("case", FILE_CASES)
    def test_files_checked_before_waiting(self, migrations_dir: Path, case: Callable[[Path], str]) -> None:
        """With the database port closed, a broken file still exits 5 at once (not 3): files come first."""
        culprit = case(migrations_dir)
        url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"

        result = run_cli("up", "--dir", str(migrations_dir), "--wait-timeout", "20s", env={"DATABASE_URL": url},
                         cwd=migrations_dir.parent, timeout=15)

        assert_one_line_error(result, 5, culprit)
        assert [] == result.find("wait_retrying")
