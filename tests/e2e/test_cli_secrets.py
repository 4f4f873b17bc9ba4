"""No password in any output, on success or on an authentication failure; authentication and unknown database exit 3."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests.e2e.helpers import output_of, write
from tests.support import CliResult, TestDatabase, run_cli, server_url, with_database

MIGRATION = "CREATE TABLE t1 (id INTEGER PRIMARY KEY);\n"


@dataclass
class MariaDbUser:
    name: str
    password: str
    host: str
    port: int
    database: str

    def url(self, password: str | None) -> str:
        auth = quote(self.name, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        return f"mysql://{auth}@{self.host}:{self.port}/{self.database}"


def _forms(secret: str) -> list[str]:
    """The ways a password could leak: as is and URL-encoded."""
    return sorted({secret, quote(secret, safe=""), quote(secret)})


def assert_no_secret(result: CliResult, *passwords: str) -> None:
    text = output_of(result)
    for password in passwords:
        for form in _forms(password):
            assert form not in text, f"password form {form!r} leaked into the output"


@pytest.fixture
def mariadb_user(db: TestDatabase) -> Iterator[MariaDbUser]:
    """A MariaDB user with a random password and every privilege on the test database; dropped afterwards."""
    name = f"pm_u_{secrets.token_hex(4)}"
    # A character that URL encoding changes, so that the encoded form is checked too.
    password = f"Pw!{secrets.token_hex(12)}"
    db.admin(f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'")
    try:
        db.admin(f"GRANT ALL ON `{db.name}`.* TO '{name}'@'%'")
        parts = urlsplit(db.url)
        yield MariaDbUser(name, password, parts.hostname or "127.0.0.1", parts.port or 3306, db.name)
    finally:
        db.admin(f"DROP USER IF EXISTS '{name}'@'%'")


def _up(env: dict[str, str], migrations_dir: Path) -> CliResult:
    return run_cli("up", "--dir", str(migrations_dir), "--wait-timeout", "10s", env=env, cwd=migrations_dir.parent)


@pytest.mark.parametrize("dialect", [pytest.param("mysql", id="mysql")])
class TestRightPasswordNeverShown:
    def test_password_in_url(self, db: TestDatabase, mariadb_user: MariaDbUser, migrations_dir: Path) -> None:
        """`up` with the password in DATABASE_URL exits 0, applies the migration, and never prints the password."""
        write(migrations_dir, "001_t1.sql", MIGRATION)

        result = _up({"DATABASE_URL": mariadb_user.url(mariadb_user.password)}, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert "t1" in db.tables()
        assert_no_secret(result, mariadb_user.password)

    def test_password_file(self, db: TestDatabase, mariadb_user: MariaDbUser, migrations_dir: Path,
                           tmp_path: Path) -> None:
        """`up` with the password in DB_PASSWORD_FILE (written with a trailing newline) exits 0 and never prints it."""
        write(migrations_dir, "001_t1.sql", MIGRATION)
        secret_file = tmp_path / "db_password"
        secret_file.write_text(mariadb_user.password + "\n")

        result = _up({"DATABASE_URL": mariadb_user.url(None), "DB_PASSWORD_FILE": str(secret_file)},
                     migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert "t1" in db.tables()
        assert_no_secret(result, mariadb_user.password)

    def test_summary_files_never_show_it(self, db: TestDatabase, mariadb_user: MariaDbUser, migrations_dir: Path,
                                         tmp_path: Path) -> None:
        """A failing statement whose error quotes the password: the summary file and the termination message (read
        past the log, by `kubectl describe pod`) carry the error scrubbed, like every log line."""
        write(migrations_dir, "001_t1.sql", f"CREATE TABLE t1 (id INT);\nSELEC '{mariadb_user.password}';\n")
        summary, termination = tmp_path / "summary.json", tmp_path / "termination-log"
        termination.write_text("")
        result = run_cli("up", "--dir", str(migrations_dir), "--summary-file", str(summary), "--termination-log",
                         str(termination), env={"DATABASE_URL": mariadb_user.url(mariadb_user.password)},
                         cwd=migrations_dir.parent)
        assert 4 == result.returncode, result.stderr[-2000:]
        assert "SELEC" in summary.read_text() and "SELEC" in termination.read_text()  # the error is there
        for text in (summary.read_text(), termination.read_text()):
            for form in _forms(mariadb_user.password):
                assert form not in text, f"password form {form!r} leaked into a summary file"
        assert_no_secret(result, mariadb_user.password)

    def test_status_json_does_not_show_password(self, db: TestDatabase, mariadb_user: MariaDbUser,
                                                migrations_dir: Path) -> None:
        """`status --json`, which prints the database on stdout, shows it without the password."""
        write(migrations_dir, "001_t1.sql", MIGRATION)
        env = {"DATABASE_URL": mariadb_user.url(mariadb_user.password)}
        assert 0 == _up(env, migrations_dir).returncode

        result = run_cli("status", "--json", "--dir", str(migrations_dir), env=env, cwd=migrations_dir.parent)

        assert 0 == result.returncode, result.stderr
        assert mariadb_user.name in result.stdout
        assert_no_secret(result, mariadb_user.password)


@pytest.mark.parametrize("dialect", [pytest.param("mysql", id="mysql")])
class TestWrongPassword:
    @pytest.mark.parametrize("via", [pytest.param("url", id="url"), pytest.param("file", id="password-file")])
    def test_exit_3_without_secrets_or_traceback(self, db: TestDatabase, mariadb_user: MariaDbUser,
                                                 migrations_dir: Path, tmp_path: Path, via: str) -> None:
        """A wrong password exits 3 with one `error` event, no traceback, and neither password in the output."""
        write(migrations_dir, "001_t1.sql", MIGRATION)
        wrong = f"Wr!{secrets.token_hex(12)}"
        if via == "url":
            env = {"DATABASE_URL": mariadb_user.url(wrong)}
        else:
            secret_file = tmp_path / "db_password"
            secret_file.write_text(wrong)
            env = {"DATABASE_URL": mariadb_user.url(None), "DB_PASSWORD_FILE": str(secret_file)}

        result = _up(env, migrations_dir)

        assert 3 == result.returncode, result.stderr
        assert 1 == len(result.find("error"))
        assert "Traceback" not in output_of(result)
        assert [] == result.find("wait_retrying"), "an authentication failure must not be retried"
        assert_no_secret(result, wrong, mariadb_user.password)
        assert set() == db.tables()


class TestDatabaseUrlFile:
    def test_url_from_file_with_trailing_newline(self, db: TestDatabase, migrations_dir: Path,
                                                 tmp_path: Path) -> None:
        """DATABASE_URL_FILE holding the URL and a trailing newline (as `echo` writes it) works: `up` exits 0."""
        write(migrations_dir, "001_t1.sql", MIGRATION)
        url_file = tmp_path / "database_url"
        url_file.write_text(db.url + "\n")

        result = _up({"DATABASE_URL_FILE": str(url_file)}, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert "t1" in db.tables()


class TestUnknownDatabase:
    def test_postgresql_wrong_database_exits_3_at_once(self, migrations_dir: Path) -> None:
        """A PostgreSQL database that does not exist exits 3 without retrying, with one `error` event naming it."""
        write(migrations_dir, "001_t1.sql", MIGRATION)
        missing = f"pm_missing_{secrets.token_hex(6)}"

        # The default --wait-timeout is 60 s: a retried failure would run into the 30 s bound below.
        result = run_cli("up", "--dir", str(migrations_dir), env={"DATABASE_URL": with_database(server_url("postgresql"), missing)},
                         cwd=migrations_dir.parent, timeout=30)

        assert 3 == result.returncode, result.stderr
        assert [] == result.find("wait_retrying")
        [error] = result.find("error")
        assert missing in error["error"]
        assert "Traceback" not in result.stderr


class TestPasswordsWrittenInMigrations:
    """A password a migration sets in clear is premigrate's to keep out of sight too: the failing statement's text
    and the server's error quoting it reach the log, the summary file and the termination message masked."""

    STATEMENTS = {
        "postgresql": "ALTER ROLE premigrate_no_such_role PASSWORD '{secret}'",
        "mysql": "ALTER USER 'premigrate_no_such_user'@'%' IDENTIFIED BY '{secret}'",
        "sqlite": "CREATE USER app IDENTIFIED BY '{secret}'",
    }

    def test_a_failing_statement_never_shows_it(self, db: TestDatabase, migrations_dir: Path,
                                                tmp_path: Path) -> None:
        secret = f"Wr1tten{secrets.token_hex(8)}"
        statement = self.STATEMENTS[db.dialect].format(secret=secret)
        write(migrations_dir, "001_user.sql", f"CREATE TABLE t1 (id INT);\n{statement};\n")
        summary, termination = tmp_path / "summary.json", tmp_path / "termination-log"
        termination.write_text("")
        result = run_cli("up", "--dir", str(migrations_dir), "--summary-file", str(summary), "--termination-log",
                         str(termination), env={"DATABASE_URL": db.url}, cwd=migrations_dir.parent)
        assert 4 == result.returncode, result.stderr[-2000:]
        assert "migration_failed" in result.stderr and "***" in result.stderr  # the statement is shown, masked
        for text in (output_of(result), summary.read_text(), termination.read_text()):
            assert secret not in text

    TYPOS = {  # the server quotes the value back without PASSWORD / IDENTIFIED BY beside it
        "postgresql": 'CREATE ROLE premigrate_no_such_role LOGIN PASSWORD "{secret}"',
        "mysql": "CREATE USER 'premigrate_no_such_user'@'%' IDENTIFIED BY {secret}",
        "sqlite": "CREATE USER app IDENTIFIED BY {secret}",
    }

    def test_a_password_the_server_quotes_back_alone_is_masked(self, db: TestDatabase, migrations_dir: Path,
                                                              tmp_path: Path) -> None:
        """A typo (double quotes on PostgreSQL, no quotes on MySQL) makes the server's error quote the value without
        its keyword: the failing statement's credentials are scrubbed by value from then on, in the log, the
        summary file and the history row's error."""
        secret = f"Typ0{secrets.token_hex(8)}"
        write(migrations_dir, "001_user.sql", self.TYPOS[db.dialect].format(secret=secret) + ";\n")
        summary = tmp_path / "summary.json"
        result = run_cli("up", "--dir", str(migrations_dir), "--summary-file", str(summary),
                         env={"DATABASE_URL": db.url}, cwd=migrations_dir.parent)
        assert 4 == result.returncode, result.stderr[-2000:]
        assert secret not in output_of(result) and secret not in summary.read_text()
        assert all(secret not in str(row["error"]) for row in db.history())

    def test_lint_output_masks_them(self, tmp_path: Path, migrations_dir: Path) -> None:
        """lint's report goes to CI logs without the log's scrubber: the statement it quotes is masked there too."""
        secret = f"L1nt{secrets.token_hex(8)}"
        write(migrations_dir, "001_role.sql", f"CREATE ROLE app LOGIN PASSWORD '{secret}' BOGUS;\n")
        for args in ((), ("--json",)):
            result = run_cli("lint", "--dir", str(migrations_dir), "--dialect", "postgresql", *args, cwd=tmp_path)
            assert "CREATE ROLE app LOGIN PASSWORD" in result.stdout, result.stdout
            assert secret not in output_of(result)
