"""--password-command against a PostgreSQL that checks passwords (scram-sha-256): every call rotates the role's
password, as a short-lived token expires, and each new connection still gets in."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from premigrate.engine.credentials import PasswordCommand, registered_secrets
from tests.topology.pgha import PgServer

pytestmark = pytest.mark.topology

ROTATE = '''\
import secrets, sys
import psycopg
from psycopg import sql
port, role = sys.argv[1], sys.argv[2]
token = "tok-" + secrets.token_urlsafe(24)
with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(token)))
print(token)
'''


@pytest.fixture
def rotating_role(pg_primary: PgServer, tmp_path: Path) -> Iterator[tuple[str, PasswordCommand]]:
    """A login role whose password the command replaces on every call (the old one stops working at once)."""
    role = f"pm_iam_{uuid.uuid4().hex[:8]}"
    pg_primary.query(f"CREATE ROLE {role} LOGIN")
    script = tmp_path / "rotate.py"
    script.write_text(ROTATE)
    try:
        yield role, PasswordCommand.parse(f"{sys.executable} {script} {pg_primary.port} {role}")
    finally:
        pg_primary.query(f"DROP ROLE IF EXISTS {role}")


def connect(server: PgServer, role: str, password: str) -> psycopg.Connection[object]:
    return psycopg.connect(host="127.0.0.1", port=server.port, user=role, dbname="postgres", password=password,
                           autocommit=True, connect_timeout=5)


class TestRotatingPasswords:
    def test_each_new_connection_gets_a_fresh_password_and_gets_in(
            self, pg_primary: PgServer, rotating_role: tuple[str, PasswordCommand]) -> None:
        """Three connections, three tokens: all get in, open sessions survive the rotations, and a reused token
        is refused by the server."""
        role, command = rotating_role
        tokens, conns = [], []
        try:
            for _ in range(3):
                token = command()
                tokens.append(token)
                conns.append(connect(pg_primary, role, token))
            assert 3 == len(set(tokens))
            for conn in conns:
                assert (role,) == conn.execute("SELECT current_user").fetchone()
            with pytest.raises(psycopg.OperationalError, match="password authentication failed") as refused:
                connect(pg_primary, role, tokens[0]).close()
            assert tokens[0] not in str(refused.value)
        finally:
            for conn in conns:
                conn.close()
        assert set(tokens) <= set(registered_secrets())
