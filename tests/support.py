"""Test support: throwaway databases on the real servers, and the CLI as a subprocess.

Server URLs come from PREMIGRATE_TEST_POSTGRES_URL and PREMIGRATE_TEST_MYSQL_URL (defaults: the local servers);
where a server does not answer and Docker does, testcontainers starts one.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mysql": "mysql://root@127.0.0.1:3306/mysql",
}
ENV_VARS = {"postgresql": "PREMIGRATE_TEST_POSTGRES_URL", "mysql": "PREMIGRATE_TEST_MYSQL_URL"}
DIALECTS = ("sqlite", "postgresql", "mysql")
_containers: list[Any] = []
_server_urls: dict[str, str] = {}


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 5432), timeout=2):
            return True
    except OSError:
        return False


def _docker_answers() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def server_url(dialect: str) -> str:
    """Admin URL of a server for `dialect`: the configured one, or a testcontainers one where Docker answers."""
    if dialect in _server_urls:
        return _server_urls[dialect]
    url = os.environ.get(ENV_VARS[dialect], DEFAULT_URLS[dialect])
    if not _answers(url) and _docker_answers():
        url = _start_container(dialect)
    _server_urls[dialect] = url
    return url


def _start_container(dialect: str) -> str:
    if dialect == "postgresql":
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16", username="postgres", password="postgres", dbname="postgres")
        container.start()
        _containers.append(container)
        return (f"postgresql://postgres:postgres@{container.get_container_host_ip()}:"
                f"{container.get_exposed_port(5432)}/postgres")
    from testcontainers.mysql import MySqlContainer

    container = MySqlContainer("mariadb:11", username="root", root_password="root", dbname="mysql")
    container.start()
    _containers.append(container)
    return f"mysql://root:root@{container.get_container_host_ip()}:{container.get_exposed_port(3306)}/mysql"


def stop_containers() -> None:
    while _containers:
        _containers.pop().stop()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@dataclass
class TestDatabase:
    """A database of its own for one test, with a few ways to look inside."""

    __test__ = False
    dialect: str
    url: str
    name: str
    admin_url: str | None = None
    path: Path | None = None
    table: str = "premigrate_history"
    _conn: Any = field(default=None, repr=False)

    @classmethod
    def create(cls, dialect: str, tmp_path: Path) -> TestDatabase:
        if dialect == "sqlite":
            path = tmp_path / "test.db"
            return cls(dialect, f"sqlite:///{path}", str(path), path=path)
        admin = server_url(dialect)
        name = f"pm_test_{uuid.uuid4().hex[:12]}"
        db = cls(dialect, with_database(admin, name), name, admin_url=admin)
        db.admin(f"CREATE DATABASE {name}")
        return db

    def admin(self, sql: str) -> None:
        assert self.admin_url is not None
        if self.dialect == "postgresql":
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(sql)
        else:
            conn = _mysql_connect(self.admin_url)
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
            finally:
                conn.close()

    def connect(self) -> Any:
        if self.dialect == "sqlite":
            return sqlite3.connect(str(self.path), isolation_level=None)
        if self.dialect == "postgresql":
            import psycopg

            return psycopg.connect(self.url, autocommit=True)
        return _mysql_connect(self.url)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            if self.dialect == "sqlite":
                return conn.execute(sql.replace("%s", "?"), params).fetchall()
            if self.dialect == "postgresql":
                return conn.execute(sql, params or None).fetchall()
            with conn.cursor() as cur:
                cur.execute(sql, params or None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def execute(self, sql: str) -> None:
        self.query(sql) if self.dialect != "postgresql" else self._pg_execute(sql)

    def _pg_execute(self, sql: str) -> None:
        conn = self.connect()
        try:
            conn.execute(sql)
        finally:
            conn.close()

    def ensure_exists(self) -> None:
        """SQLite: the empty database file, as CREATE DATABASE leaves an empty database on a server (baseline, down and
        repair refuse a file that does not exist; `up` creates it)."""
        if self.dialect == "sqlite" and self.path is not None:
            self.path.touch()

    def tables(self) -> set[str]:
        if self.dialect == "sqlite":
            if not self.path or not self.path.exists():
                return set()
            rows = self.query("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
        elif self.dialect == "postgresql":
            rows = self.query("SELECT tablename FROM pg_tables WHERE schemaname NOT IN ('pg_catalog','information_schema')")
        else:
            rows = self.query("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
        return {r[0] for r in rows}

    def history(self) -> list[dict[str, Any]]:
        """Rows of the history table as dicts, ordered by migration_id; [] when the table does not exist."""
        if self.table not in self.tables():
            return []
        columns = ("migration_id", "version", "kind", "script", "checksum", "state", "statements_done",
                   "statements_total", "statement_started", "error")
        rows = self.query(f"SELECT {', '.join(columns)} FROM {self.table}")
        return sorted((dict(zip(columns, r)) for r in rows), key=lambda r: r["migration_id"])

    def drop(self) -> None:
        if self.dialect == "sqlite":
            return
        if self.dialect == "postgresql":
            self.admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")
        else:
            self.admin(f"DROP DATABASE IF EXISTS {self.name}")


def _mysql_connect(url: str) -> Any:
    import pymysql

    parts = urlsplit(url)
    return pymysql.connect(host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
                           password=parts.password or "", database=parts.path.lstrip("/") or None, autocommit=True)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every stderr line parsed as JSON (fails the test if one does not parse)."""
        return [json.loads(line) for line in self.stderr.splitlines() if line.strip()]

    def event_names(self) -> list[str]:
        return [e["event"] for e in self.events]

    def find(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for the CLI: nothing from the developer's shell that premigrate reads."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREMIGRATE_", "DATABASE_URL", "DB_", "PG"))}
    env["PREMIGRATE_LOG_FORMAT"] = "json"
    env.update(extra or {})
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120,
            input: str | None = None) -> CliResult:
    proc = subprocess.run([sys.executable, "-m", "premigrate", *args], env=cli_env(env), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, input=input)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def popen_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "premigrate", *args], env=cli_env(env), cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def write_atlas_sum(folder: Path, names: list[str]) -> None:
    """atlas.sum as Atlas writes it (ariga/atlas sql/migrate/dir.go NewHashFile, HashFile.Sum, MarshalText) over the
    files `names` (paths from `folder`, `/` between the parts) in the order given: written from Atlas's code, not
    by premigrate's own hashing, so that a test of premigrate's check compares it with Atlas."""
    import base64
    import hashlib

    running, lines = hashlib.sha256(), []
    for name in names:
        running.update(name.encode())
        running.update((folder / name).read_bytes())
        lines.append((name, base64.b64encode(running.copy().digest()).decode()))
    total = base64.b64encode(hashlib.sha256("".join(n + h for n, h in lines).encode()).digest()).decode()
    (folder / "atlas.sum").write_text(f"h1:{total}\n" + "".join(f"{n} h1:{h}\n" for n, h in lines), encoding="utf-8")
