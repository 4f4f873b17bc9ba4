"""--password-command against the local MariaDB: every call sets a new password for the user, as a short-lived
token would expire, and each new connection still gets in while the old password is refused."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pymysql
import pytest

from premigrate.engine.credentials import PasswordCommand
from tests.support import server_url

ROTATE = '''\
import secrets, sys
import pymysql
host, port, user = sys.argv[1], int(sys.argv[2]), sys.argv[3]
token = "tok-" + secrets.token_urlsafe(24)
conn = pymysql.connect(host=host, port=port, user="root", password=sys.argv[4], autocommit=True)
with conn.cursor() as cur:
    for where in ("%", "localhost"):
        cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, where, token))
conn.close()
print(token)
'''


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    def connect(self, user: str, password: str, autocommit: bool = False) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(host=self.host, port=self.port, user=user, password=password, autocommit=autocommit)


@pytest.fixture
def rotating_user(tmp_path: Path) -> Iterator[tuple[str, PasswordCommand, Server]]:
    admin = urlsplit(server_url("mysql"))
    where = Server(admin.hostname or "127.0.0.1", admin.port or 3306)
    user = f"pm_iam_{uuid.uuid4().hex[:8]}"
    root = where.connect(admin.username or "root", admin.password or "", autocommit=True)
    try:
        with root.cursor() as cur:
            for host in ("%", "localhost"):  # 127.0.0.1 may match 'localhost', where another user could shadow '%'
                cur.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY 'initial-unused'")
        script = tmp_path / "rotate.py"
        script.write_text(ROTATE)
        command = PasswordCommand.parse(
            f"{sys.executable} {script} {where.host} {where.port} {user} '{admin.password or ''}'")
        yield user, command, where
    finally:
        with root.cursor() as cur:
            for host in ("%", "localhost"):
                cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        root.close()


class TestRotatingPasswordsMariaDB:
    def test_each_new_connection_gets_a_fresh_password_and_gets_in(
            self, rotating_user: tuple[str, PasswordCommand, Server]) -> None:
        """Three connections, three passwords; a reused one is refused (1045) without appearing in the error."""
        user, command, where = rotating_user
        tokens, conns = [], []
        try:
            for _ in range(3):
                token = command()
                tokens.append(token)
                conns.append(where.connect(user, token))
            assert 3 == len(set(tokens))
            for conn in conns:
                with conn.cursor() as cur:
                    cur.execute("SELECT SUBSTRING_INDEX(CURRENT_USER(), '@', 1)")
                    assert (user,) == cur.fetchone()
            with pytest.raises(pymysql.err.OperationalError) as refused:
                where.connect(user, tokens[0]).close()
            assert 1045 == refused.value.args[0]
            assert tokens[0] not in str(refused.value)
        finally:
            for conn in conns:
                conn.close()
