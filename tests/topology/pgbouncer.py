"""PgBouncer from Debian's package, in front of a PostgreSQL server, in one pool mode."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.topology.procs import PORTS, Server, ServerFailed, ensure_packages, run, wait_until, which

READY_TIMEOUT_S = 30.0


def install() -> str:
    ensure_packages({"pgbouncer": "pgbouncer"})
    binary = which("pgbouncer")
    assert binary is not None
    return binary


def version(binary: str) -> tuple[int, int]:
    out = run([binary, "--version"], what="pgbouncer --version")
    found = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    if not found:
        raise ServerFailed(f"cannot read PgBouncer's version from {out!r}")
    return int(found.group(1)), int(found.group(2))


@dataclass
class PgBouncer:
    """One pgbouncer process: every database of the upstream server (`*`), user postgres, trust auth."""

    pool_mode: str  # session | transaction | statement
    port: int
    upstream_port: int
    directory: Path
    server: Server
    version: tuple[int, int]

    @classmethod
    def start(cls, pool_mode: str, base: Path, *, upstream_port: int = 5432, pool_size: int = 20) -> PgBouncer:
        binary = install()
        (port,) = PORTS.take(1)
        directory = base / f"pgbouncer-{pool_mode}"
        directory.mkdir()
        # pgbouncer refuses to run as root; the postgres account reads the config and writes the log.
        # auth_type trust still looks the user name up in auth_file (pgbouncer docs, "auth_type").
        (directory / "userlist.txt").write_text('"postgres" ""\n')
        (directory / "pgbouncer.ini").write_text(f"""\
[databases]
* = host=127.0.0.1 port={upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory}/userlist.txt
admin_users = postgres
pool_mode = {pool_mode}
default_pool_size = {pool_size}
max_client_conn = 500
server_lifetime = 3600
ignore_startup_parameters = extra_float_digits
logfile = {directory}/pgbouncer.log
log_connections = 0
log_disconnections = 0
""")
        run(["chown", "-R", "postgres:postgres", str(directory)])
        server = Server(
            f"pgbouncer ({pool_mode} pooling, port {port})", [binary, str(directory / "pgbouncer.ini")],
            directory / "stdout.log", user="postgres", extra_logs=(directory / "pgbouncer.log",),
            stop_sequence=((signal.SIGTERM, 3.0), (signal.SIGTERM, 3.0)),
        )
        bouncer = cls(pool_mode, port, upstream_port, directory, server, version(binary))
        server.start()
        try:
            wait_until(bouncer._answers, timeout=READY_TIMEOUT_S, what=server.name, servers=[server])
        except BaseException:
            bouncer.stop()
            raise
        return bouncer

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _answers(self) -> bool:
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=2, prepare_threshold=None) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    def admin(self, command: str) -> list[tuple[object, ...]]:
        """A command on PgBouncer's own console (SHOW POOLS, RECONNECT db, ...): for tests, never for premigrate."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None) as conn:
            # No parameters, no prepare: psycopg sends the simple query protocol, the only one the console speaks.
            cur = conn.execute(command, prepare=False)
            return cur.fetchall() if cur.description else []

    def stop(self) -> None:
        try:
            self.server.stop()
        finally:
            PORTS.release([self.port])
