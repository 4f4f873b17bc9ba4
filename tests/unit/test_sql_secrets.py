"""Passwords a migration's SQL spells out are masked by their place in the statement (model/sql_secrets.py)."""

from __future__ import annotations

import pytest

from premigrate.log import SecretScrubber, mask_statement
from premigrate.model.sql_secrets import credentials_in, redact_credentials

S = "Hunter2Secret"


@pytest.mark.parametrize("sql", [
    # PostgreSQL roles and users
    f"ALTER ROLE app PASSWORD '{S}'",
    f"CREATE ROLE app LOGIN ENCRYPTED PASSWORD '{S}' VALID UNTIL 'infinity'",
    f"create user app with password '{S}'",
    f"ALTER USER app WITH PASSWORD E'{S}'",
    f"ALTER ROLE app PASSWORD $${S}$$",
    f"ALTER ROLE app PASSWORD $pw${S}$pw$",
    f"CREATE USER MAPPING FOR app SERVER remote OPTIONS (user 'app', password '{S}')",
    # MySQL and MariaDB
    f"CREATE USER 'app'@'%' IDENTIFIED BY '{S}'",
    f'CREATE USER "app"@"%" IDENTIFIED BY "{S}"',
    f"ALTER USER app IDENTIFIED WITH mysql_native_password BY '{S}'",
    f"ALTER USER app IDENTIFIED WITH 'caching_sha2_password' AS '{S}'",
    f"CREATE USER app IDENTIFIED VIA ed25519 USING PASSWORD('{S}')",
    f"CREATE USER app IDENTIFIED VIA mysql_native_password USING '{S}'",
    f"SET PASSWORD FOR 'app'@'%' = PASSWORD('{S}')",
    f"SET PASSWORD = '{S}'",
    f"GRANT ALL ON db.* TO app IDENTIFIED BY PASSWORD '{S}'",
    f"CHANGE MASTER TO MASTER_HOST='db1', MASTER_USER='repl', MASTER_PASSWORD='{S}'",
    f"CHANGE REPLICATION SOURCE TO SOURCE_PASSWORD = '{S}'",
    f"UPDATE users SET password = '{S}' WHERE id = 1",
    f"IDENTIFIED BY 'it''s {S}'",
    f"IDENTIFIED BY 'it\\'s {S}'",
    # inside literals: conninfo and URLs
    f"SELECT dblink_connect('host=db1 user=app password={S} dbname=x')",
    f"CREATE SUBSCRIPTION s CONNECTION 'host=db1 password=''{S}''' PUBLICATION p",
    f"CREATE TABLE f (id int) ENGINE=FEDERATED CONNECTION='mysql://app:{S}@db1:3306/x/t'",
    # a server's error quoting the statement, and a statement cut short in a log line
    f"You have an error in your SQL syntax; check the manual near 'IDENTIFIED BY '{S}'' at line 1",
    f"ALTER ROLE app PASSWORD '{S}",
    f"ALTER ROLE app PASSWORD '{S}...",
])
def test_the_password_is_masked(sql: str) -> None:
    masked = redact_credentials(sql)
    assert S not in masked, masked
    assert "***" in masked


@pytest.mark.parametrize("text", [
    "CREATE TABLE users (id int, password text NOT NULL)",
    "INSERT INTO users (name, password) VALUES ('a', 'b')",
    "password authentication failed for user \"app\"",
    "ALTER ROLE app PASSWORD NULL",
    "connecting to mysql://root@127.0.0.1:3306/db",
    "postgresql://127.0.0.1:5432/db",
    "CREATE TABLE identified (by text)",
])
def test_text_without_a_written_password_is_unchanged(text: str) -> None:
    assert text == redact_credentials(text)


def test_only_the_literal_is_masked() -> None:
    assert ("CREATE USER 'app'@'%' IDENTIFIED BY '***'; GRANT ALL ON db.* TO 'app'@'%'"
            == redact_credentials(f"CREATE USER 'app'@'%' IDENTIFIED BY '{S}'; GRANT ALL ON db.* TO 'app'@'%'"))
    assert "ALTER ROLE a PASSWORD $$***$$ LOGIN" == redact_credentials(f"ALTER ROLE a PASSWORD $${S}$$ LOGIN")


def test_the_scrubber_masks_them_without_any_known_secret() -> None:
    """The log chain, the stored `error` column and the summary files all go through SecretScrubber: it masks a
    written password even when premigrate was configured with no secret at all, in nested fields too; premigrate's
    own vocabulary fields are left alone."""
    event = {"event": "migration_failed", "sql": f"ALTER ROLE app PASSWORD '{S}'",
             "details": [{"error": f"near 'IDENTIFIED BY \"{S}\"'"}]}
    scrubbed = SecretScrubber(()).scrub(event)
    assert S not in repr(scrubbed)
    assert "migration_failed" == scrubbed["event"]


@pytest.mark.parametrize(("statement", "values"), [
    pytest.param("ALTER ROLE app PASSWORD 'Sup3r'", ["Sup3r"], id="literal"),
    pytest.param('CREATE ROLE app LOGIN PASSWORD "Sup3rS3cretZ"', ["Sup3rS3cretZ"], id="double-quoted"),
    pytest.param("CREATE USER 'x'@'%' IDENTIFIED BY Sup3rS3cretZ", ["Sup3rS3cretZ"], id="bare-mysql"),
    pytest.param("CREATE ROLE app PASSWORD Sup3r", ["Sup3r"], id="bare-postgresql"),
    pytest.param("ALTER ROLE app PASSWORD NULL", [], id="null-is-no-secret"),
    pytest.param("CREATE USER x IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'",
                 ["*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"], id="hash"),
    pytest.param("SELECT dblink_connect('host=db password=hunter22')", ["hunter22"], id="conninfo"),
    pytest.param("CREATE TABLE t (id INT)", [], id="none"),
    pytest.param("SET PASSWORD FOR bob = Hunter2Secret", ["Hunter2Secret"], id="set-password-for"),
    pytest.param("ALTER TABLE users ADD COLUMN password integer DEFAULT 'abc'", [], id="a-column-named-password"),
])
def test_credentials_in_a_statement(statement: str, values: list[str]) -> None:
    """The values a failing statement's credentials have: scrubbed by value from then on, so that a server error
    quoting one without its keyword (PostgreSQL's `near ""x""`, MySQL's `near 'x'`) is masked too."""
    assert values == credentials_in(statement)


def test_a_learnt_credential_is_masked_in_the_error_that_quotes_it() -> None:
    scrubber = SecretScrubber([])
    scrubber.add(credentials_in('CREATE ROLE app LOGIN PASSWORD "Sup3rS3cretZ"'))
    assert 'syntax error at or near ""***""' == scrubber.scrub('syntax error at or near ""Sup3rS3cretZ""')


def test_a_column_named_password_is_no_credential() -> None:
    """lint masked the type after a column named password ('ADD COLUMN password *** NOT NULL')."""
    sql = "ALTER TABLE users ADD COLUMN password integer NOT NULL"
    assert sql == mask_statement(sql)


def test_mask_statement_for_reports_outside_the_log() -> None:
    """lint's output: the statement and the parser's message about it."""
    sql = "CREATE ROLE app PASSWORD Sup3r BOGUS"
    assert "CREATE ROLE app PASSWORD *** BOGUS" == mask_statement(sql)
    assert 'syntax error at or near "***"' == mask_statement('syntax error at or near "Sup3r"', sql)
