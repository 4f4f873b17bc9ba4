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


# A server that is never reached: these refusals come before any connection (the password command runs first).
_PG = "postgresql://app@127.0.0.1:1/app"
# Each case: the command, the environment (given the folder) and the message's start as the variable names it; the
# flag's spelling must not appear. Messages built by the commands, after the Config was read, so no unit test of
# load_config can see them.
def _no_transaction_file(d: Path) -> dict[str, str]:
    write(d, "002_nt.sql", "-- premigrate:no-transaction\nCREATE TABLE nt (id INT);\n")
    return {"PREMIGRATE_SINGLE_TRANSACTION": "1"}


ENV_NAMED_CASES = [
    pytest.param("up", lambda d: {"DATABASE_URL": "mysql://app@127.0.0.1:1/app",
                                  "PREMIGRATE_SINGLE_TRANSACTION": "1"},
                 "PREMIGRATE_SINGLE_TRANSACTION needs transactional DDL", "--single-transaction", 2,
                 id="single-transaction-mysql"),
    pytest.param("up", _no_transaction_file, "PREMIGRATE_SINGLE_TRANSACTION cannot include 002_nt.sql",
                 "--single-transaction", 2, id="single-transaction-stepwise"),
    pytest.param("up", lambda d: {"PREMIGRATE_PASSWORD_COMMAND": "tool 'unclosed"},
                 "PREMIGRATE_PASSWORD_COMMAND: cannot split", "--password-command", 2, id="password-command-split"),
    pytest.param("status", lambda d: {"DATABASE_URL": _PG, "PREMIGRATE_WAIT_TIMEOUT": "0",
                                      "PREMIGRATE_PASSWORD_COMMAND": str(d / "no-such-tool")},
                 "PREMIGRATE_PASSWORD_COMMAND ", "--password-command", 3, id="password-command-fails"),
    pytest.param("serve", lambda d: {"PREMIGRATE_LISTEN": "nope"}, "PREMIGRATE_LISTEN 'nope' is not a valid",
                 "--listen", 2, id="listen"),
    pytest.param("serve", lambda d: {"PREMIGRATE_EXPECT_TABLES": "public.users"},
                 "PREMIGRATE_EXPECT_TABLES 'public.users': name the table alone", "--expect-table", 2,
                 id="expect-table"),
    pytest.param("baseline", lambda d: {"PREMIGRATE_BASELINE_FROM": "alembic",
                                        "PREMIGRATE_BASELINE_MAP": str(d / "no-map.txt")},
                 "PREMIGRATE_BASELINE_MAP: cannot read", "--map", 2, id="map"),
    pytest.param("baseline", lambda d: {"PREMIGRATE_BASELINE_FROM": "flyway", "PREMIGRATE_BASELINE_MAP": "m.txt"},
                 "PREMIGRATE_BASELINE_MAP is only for", "--map", 2, id="map-not-alembic"),
    pytest.param("baseline", lambda d: {"PREMIGRATE_BASELINE_FROM": "flyway",
                                        "PREMIGRATE_BASELINE_FROM_TABLE": "a.b"},
                 "PREMIGRATE_BASELINE_FROM_TABLE 'a.b': flyway keeps", "--from-table", 2, id="from-table"),
    pytest.param("baseline", lambda d: {"PREMIGRATE_BASELINE_FROM": "goose",
                                        "PREMIGRATE_BASELINE_FROM_TABLE": "a-b"},
                 "PREMIGRATE_BASELINE_FROM_TABLE 'a-b': expected", "--from-table", 2, id="from-table-foreign"),
    pytest.param("baseline", lambda d: {"PREMIGRATE_BASELINE_VERSION": "1", "PREMIGRATE_BASELINE_FROM": "flyway"},
                 "baseline needs exactly one of --version VERSION or --from TOOL, but PREMIGRATE_BASELINE_VERSION=1 "
                 "and PREMIGRATE_BASELINE_FROM=flyway", "--version 1", 2, id="version-and-from"),
    pytest.param("baseline", lambda d: {"PREMIGRATE_BASELINE_VERSION": "9"},
                 "PREMIGRATE_BASELINE_VERSION=9: no migration", "--version 9", 2, id="baseline-version"),
    pytest.param("up", lambda d: {"PREMIGRATE_BASELINE_ON_EMPTY_HISTORY": "9"},
                 "PREMIGRATE_BASELINE_ON_EMPTY_HISTORY=9: no migration", "--baseline-on-empty-history", 2,
                 id="baseline-on-empty-history"),
    pytest.param("up", lambda d: {"PREMIGRATE_BASELINE_MAP": "m.txt"}, "up PREMIGRATE_BASELINE_MAP: it tells",
                 "--map", 2, id="up-map"),
    pytest.param("status", lambda d: {"DATABASE_URL": _PG, "PREMIGRATE_SCHEMA": "app",
                                      "PREMIGRATE_TARGETS": str(write(d.parent, "t.txt", "schema=t1\n"))},
                 "target schema=t1: PREMIGRATE_SCHEMA=app is set too", "--schema", 2, id="fleet-schema"),
    pytest.param("status", lambda d: {"DATABASE_URL": _PG, "PREMIGRATE_TABLE": "audit.history",
                                      "PREMIGRATE_TARGETS": str(write(d.parent, "t.txt", "sqlite:///x.db\n"))},
                 "target on line 1: PREMIGRATE_TABLE=audit.history names a schema", "--table", 2, id="fleet-table"),
    pytest.param("status", lambda d: {"PREMIGRATE_TARGETS": str(d / "no-list.txt")},
                 "PREMIGRATE_TARGETS=", "--targets", 2, id="fleet-targets"),
    pytest.param("up", lambda d: {"PREMIGRATE_TARGETS": str(write(d.parent, "t.txt", "sqlite:///x.db\n")),
                                  "PREMIGRATE_DRY_RUN": "1"},
                 "PREMIGRATE_DRY_RUN does not take a fleet", "--dry-run", 2, id="fleet-dry-run"),
    pytest.param("verify", lambda d: {"DATABASE_URL": "mysql://app@127.0.0.1:1/app",
                                      "PREMIGRATE_SCRATCH_URL": "mysql://app@127.0.0.1:1"},
                 "PREMIGRATE_SCRATCH_URL names no database", "--scratch-url", 2, id="scratch-url"),
    pytest.param("up", lambda d: {"PREMIGRATE_DIR": str(d / "001_t1.sql")}, "PREMIGRATE_DIR '", "--dir", 2,
                 id="dir-is-a-file"),
    pytest.param("up", lambda d: {"PREMIGRATE_DIR": str(d / "missing")}, "migrations folder", "--dir", 2,
                 id="dir-missing"),
    pytest.param("repair", lambda d: {"PREMIGRATE_REPAIR_RETRY_CURRENT": "1"},
                 "PREMIGRATE_REPAIR_RETRY_CURRENT goes with --resume", "--retry-current", 2, id="repair"),
]


def _error(result: CliResult, code: int) -> str:
    """The one single-line `error` event of a run that exited `code` (some of these refusals come after a session
    was opened, so other events may precede it)."""
    assert code == result.returncode, result.stderr
    [error] = result.find("error")
    assert "\n" not in error["error"] and "Traceback" not in output_of(result)
    return str(error["error"])


class TestEnvironmentNamedNotFlag:
    """A value set in the environment (a Kubernetes manifest's PREMIGRATE_X, no flag passed) is refused naming the
    variable: a message about a flag nobody passed sends the user looking in the wrong place."""

    @pytest.mark.parametrize(("command", "env", "starts", "flag", "code"), ENV_NAMED_CASES)
    def test_message_names_the_variable(self, tmp_path: Path, migrations_dir: Path, command: str,
                                        env: Callable[[Path], dict[str, str]], starts: str, flag: str,
                                        code: int) -> None:
        write(migrations_dir, "001_t1.sql", GOOD)
        given = {"PREMIGRATE_DIR": str(migrations_dir), **env(migrations_dir)}

        result = run_cli(command, env=given, cwd=tmp_path)

        message = _error(result, code)
        assert message.startswith(starts) or f": {starts}" in message, message
        assert flag not in message.replace("--version VERSION or --from TOOL", ""), message

    def test_down_changelog_to(self, tmp_path: Path, migrations_dir: Path) -> None:
        """PREMIGRATE_TO on a changelog (whose changes have no versions) is refused as PREMIGRATE_TO=1."""
        write(migrations_dir, "changelog.sql", "--liquibase formatted sql\n\n--changeset a:1\nCREATE TABLE t1 "
                                               "(id INT);\n--rollback DROP TABLE t1;\n")
        env = {"PREMIGRATE_DIR": str(migrations_dir)}
        assert 0 == run_cli("up", env=env, cwd=tmp_path).returncode
        result = run_cli("down", env={**env, "PREMIGRATE_TO": "1", "PREMIGRATE_YES": "1"}, cwd=tmp_path)

        message = _error(result, 2)
        assert message.startswith("PREMIGRATE_TO=1: the changes of a changelog have no versions"), message
