"""Side-by-side benchmark: premigrate, dbmate, alembic and the database's own client, on PostgreSQL and MariaDB.

Started by bench/run, which provides the interpreter of bench/.venv (premigrate from this checkout, the peers and the
drivers). Every database it uses is created here under a unique name and dropped at the end, also on failure.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import platform
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
RESULTS = HERE / "results"

# Repetitions per workload: sized so that the full run takes roughly 10-15 minutes on 2 shared cores.
# The fleet workload runs once per tool (it is long, and its own many targets average it out).
DEFAULT_REPEATS = {"apply-100": 7, "apply-1000": 3, "noop": 25, "wait": 8, "fleet": 1}
QUICK_REPEATS = {"apply-100": 2, "apply-1000": 1, "noop": 5, "wait": 2, "fleet": 1}
WORKLOADS = tuple(DEFAULT_REPEATS)
WAIT_REFUSE_S = 2.0
CHILD_TIMEOUT_S = 900.0

# The targets the project set itself (ratios of medians measured in the same run on this machine): the no-op `up`
# within 10% of the Python floor; apply 1,000 on PostgreSQL within 5% of psql and faster than dbmate, on MariaDB
# within 10% of dbmate.
NOOP_FLOOR_MAX = 1.10
APPLY_1000_MAX = {"postgresql": ("psql", 1.05), "mysql": ("dbmate", 1.10)}
WAIT_LAG_MAX_S = 0.1
RSS_MAX_MB = 60.0


class BenchError(Exception):
    """A failure that ends the run with a one-line message (databases are still dropped)."""


# -- servers ----------------------------------------------------------------------------------------------------

@dataclass
class Server:
    dialect: str  # "postgresql" or "mysql"
    label: str
    host: str
    port: int
    user: str
    password: str | None
    admin_db: str
    version: str = ""

    @classmethod
    def from_url(cls, dialect: str, url: str) -> Server:
        parts = urlsplit(url)
        default_port, default_user, default_db = (5432, "postgres", "postgres") if dialect == "postgresql" \
            else (3306, "root", "mysql")
        return cls(
            dialect=dialect,
            label="PostgreSQL" if dialect == "postgresql" else "MariaDB",
            host=parts.hostname or "127.0.0.1",
            port=parts.port or default_port,
            user=unquote(parts.username) if parts.username else default_user,
            password=unquote(parts.password) if parts.password is not None else None,
            admin_db=parts.path.lstrip("/") or default_db,
        )

    def url(self, scheme: str, database: str, *, port: int | None = None, query: str = "") -> str:
        auth = quote(self.user, safe="")
        if self.password:
            auth += ":" + quote(self.password, safe="")
        return f"{scheme}://{auth}@{self.host}:{port or self.port}/{database}" + (f"?{query}" if query else "")

    def where(self) -> str:
        return f"{self.label} at {self.user}@{self.host}:{self.port}"

    def connect(self, database: str | None = None, port: int | None = None) -> Any:
        if self.dialect == "postgresql":
            import psycopg
            return psycopg.connect(host=self.host, port=port or self.port, user=self.user, password=self.password,
                                   dbname=database or self.admin_db, autocommit=True, connect_timeout=5)
        import pymysql
        return pymysql.connect(host=self.host, port=port or self.port, user=self.user, password=self.password or "",
                               database=database or self.admin_db, autocommit=True, connect_timeout=5)


class Secrets:
    """Every configured password, so that no output of the benchmark or of a tool ever shows one."""

    values: set[str] = set()

    @classmethod
    def add(cls, value: str | None) -> None:
        if value:
            cls.values.update({value, quote(value, safe="")})

    @classmethod
    def scrub(cls, text: str) -> str:
        for value in sorted(cls.values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text


class Databases:
    """Creates uniquely named databases and drops every one of them at the end, whatever happened."""

    def __init__(self) -> None:
        self.run_id = secrets.token_hex(3)
        self.count = 0
        self.created: list[tuple[Server, str]] = []

    def create(self, server: Server) -> str:
        self.count += 1
        name = f"pmbench_{self.run_id}_{self.count}"
        with server.connect() as conn:
            conn.cursor().execute(f"CREATE DATABASE {name}")
        self.created.append((server, name))
        return name

    def drop(self, server: Server, name: str) -> None:
        force = " WITH (FORCE)" if server.dialect == "postgresql" else ""
        with server.connect() as conn:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS {name}{force}")
        self.created.remove((server, name))

    def drop_all(self) -> None:
        for server, name in list(self.created):
            try:
                self.drop(server, name)
            except Exception as exc:  # noqa: BLE001 - report every leftover, keep dropping the rest
                print(f"bench: could not drop database {name} on {server.where()}: "
                      f"{Secrets.scrub(str(exc)).strip()}", file=sys.stderr)


def settle(server: Server) -> None:
    """Write the server's dirty pages out before a timed run, so that no tool pays for the deferred writes of the run
    before it (the previous tool's 1,000 new tables, the DROP DATABASE of its database): measured here, a MariaDB run
    straight after another tool's counted ~800 more data-file fsyncs than the same run after a settled server, which
    for the same tool moved its time by a third. PostgreSQL: a CHECKPOINT. MariaDB: the dirty-page limit set to 0
    until the buffer pool reports no dirty page (at most SETTLE_S), then set back. Needs a superuser; without one the
    runs go unsettled, as before, and the report says so."""
    try:
        with server.connect() as conn:
            cur = conn.cursor()
            if server.dialect == "postgresql":
                cur.execute("CHECKPOINT")
                return
            cur.execute("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
            limit = cur.fetchone()[0]
            cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
            try:
                deadline = time.monotonic() + SETTLE_S
                while time.monotonic() < deadline:
                    cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                    if int(cur.fetchone()[1]) == 0:
                        break
                    time.sleep(0.05)
            finally:
                cur.execute(f"SET GLOBAL innodb_max_dirty_pages_pct = {float(limit)}")
    except Exception as exc:  # noqa: BLE001 - settling is an improvement of the measurement, not a requirement
        if not UNSETTLED:
            print(f"bench: cannot settle {server.where()} before timed runs ({Secrets.scrub(str(exc)).strip()}); "
                  "runs may pay for the previous run's deferred writes", file=sys.stderr)
        UNSETTLED.add(server.where())


SETTLE_S = 30.0
UNSETTLED: set[str] = set()


def count_tables(server: Server, database: str) -> int:
    with server.connect(database) as conn:
        cur = conn.cursor()
        if server.dialect == "postgresql":
            cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        else:
            cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (database,))
        return int(cur.fetchone()[0])


# -- migration folders ------------------------------------------------------------------------------------------

def migration_sql(i: int) -> str:
    return (f"CREATE TABLE bench_t{i:04d} (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, "
            f"created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n"
            f"CREATE INDEX bench_t{i:04d}_name ON bench_t{i:04d} (name);\n")


def write_premigrate_dir(path: Path, n: int) -> Path:
    path.mkdir(parents=True)
    for i in range(1, n + 1):
        (path / f"{i:04d}_create_bench_t{i:04d}.sql").write_text(migration_sql(i))
    return path


def write_dbmate_dir(path: Path, n: int) -> Path:
    path.mkdir(parents=True)
    for i in range(1, n + 1):
        (path / f"{i:04d}_create_bench_t{i:04d}.sql").write_text(
            f"-- migrate:up\n{migration_sql(i)}\n-- migrate:down\nDROP TABLE bench_t{i:04d};\n")
    return path


ALEMBIC_ENV = '''\
import os

from alembic import context
from sqlalchemy import create_engine, pool

# One transaction per revision, like the other tools and the client baseline (alembic's default is one for all).
engine = create_engine(os.environ["BENCH_ALEMBIC_URL"], poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()
'''


def write_alembic_dir(path: Path, n: int) -> Path:
    versions = path / "versions"
    versions.mkdir(parents=True)
    (path / "alembic.ini").write_text(f"[alembic]\nscript_location = {path}\n")
    (path / "env.py").write_text(ALEMBIC_ENV)
    for i in range(1, n + 1):
        statements = [s.strip() for s in migration_sql(i).split(";") if s.strip()]
        body = "".join(f"    op.execute({s!r})\n" for s in statements)
        down = f"'r{i - 1:04d}'" if i > 1 else "None"
        (versions / f"r{i:04d}_create_bench_t{i:04d}.py").write_text(
            f"from alembic import op\n\nrevision = 'r{i:04d}'\ndown_revision = {down}\n"
            f"branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n{body}\n\n"
            f"def downgrade():\n    op.execute('DROP TABLE bench_t{i:04d}')\n")
    # Bytecode now, so that no run pays for compiling the revision files (a deployed app would ship it).
    compileall.compile_dir(str(path), quiet=1)
    return path


def write_baseline_sql(path: Path, dialect: str, n: int) -> Path:
    begin = "BEGIN" if dialect == "postgresql" else "START TRANSACTION"
    text = ["CREATE TABLE bench_history (version BIGINT PRIMARY KEY, description VARCHAR(200) NOT NULL, "
            "checksum VARCHAR(80) NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n"]
    for i in range(1, n + 1):
        text.append(f"{begin};\n{migration_sql(i)}INSERT INTO bench_history (version, description, checksum) "
                    f"VALUES ({i}, 'create_bench_t{i:04d}', 'sha256:{i:064x}');\nCOMMIT;\n")
    path.write_text("".join(text))
    return path


def write_recorded_sql(path: Path, n: int) -> Path:
    """MariaDB only: the client baseline with premigrate's statement-level record, the commits of a run that can say
    after a crash which statement of a migration was running. Per migration: one INSERT that finishes the previous
    migration's row and starts this one's (one statement, one commit), statement 1, an UPDATE "1 done, 2 started",
    statement 2; the last row is finished at the end. Four commits per migration against three for dbmate and the
    plain baseline: the floor for a record that tells the truth after a crash between two DDL statements, each of
    which commits on its own."""
    text = ["CREATE TABLE bench_history (version BIGINT PRIMARY KEY, description VARCHAR(200) NOT NULL, "
            "checksum VARCHAR(80) NOT NULL, done INT NOT NULL, started INT NOT NULL, "
            "applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);\n"]

    def row(i: int, done: int, started: int) -> str:
        return f"({i}, 'create_bench_t{i:04d}', 'sha256:{i:064x}', {done}, {started})"

    for i in range(1, n + 1):
        rows = ([row(i - 1, 2, 2)] if i > 1 else []) + [row(i, 0, 1)]
        first, second = (s.strip() + ";\n" for s in migration_sql(i).split(";") if s.strip())
        text.append(f"INSERT INTO bench_history (version, description, checksum, done, started) VALUES "
                    f"{', '.join(rows)} ON DUPLICATE KEY UPDATE done = VALUES(done), started = VALUES(started);\n"
                    f"{first}UPDATE bench_history SET done = 1, started = 2 WHERE version = {i};\n{second}")
    text.append(f"UPDATE bench_history SET done = 2 WHERE version = {n};\n")
    path.write_text("".join(text))
    return path


FLOOR_PG = '''\
import os

import psycopg

with psycopg.connect(os.environ["BENCH_FLOOR_URL"]) as conn:
    conn.execute("SELECT * FROM premigrate_history").fetchall()
'''

FLOOR_MY = '''\
import os

import pymysql

conn = pymysql.connect(host=os.environ["BENCH_FLOOR_HOST"], port=int(os.environ["BENCH_FLOOR_PORT"]),
                       user=os.environ["BENCH_FLOOR_USER"], password=os.environ.get("BENCH_FLOOR_PASSWORD", ""),
                       database=os.environ["BENCH_FLOOR_DB"])
with conn.cursor() as cur:
    cur.execute("SELECT * FROM premigrate_history")
    cur.fetchall()
conn.close()
'''

# The record-per-statement client again, in Python: PyMySQL, the history writes on one session and the migration
# statements on another (as premigrate splits them: its lock session and its migration session), nothing else. What
# any Python runner that keeps this record pays per migration: the interpreter, PyMySQL's work per round trip, and
# four round trips where the client above sends one stream.
PY_RECORDED = '''\
import os
import sys

import pymysql


def connect():
    return pymysql.connect(host=os.environ["BENCH_FLOOR_HOST"], port=int(os.environ["BENCH_FLOOR_PORT"]),
                           user=os.environ["BENCH_FLOOR_USER"], password=os.environ.get("BENCH_FLOOR_PASSWORD", ""),
                           database=os.environ["BENCH_FLOOR_DB"], autocommit=True)


history, migration = connect().cursor(), connect().cursor()
with open(sys.argv[1], encoding="utf-8") as sql:
    for line in sql:  # write_recorded_sql writes one statement per line
        statement = line.strip()
        if statement:
            own = "bench_history" in statement
            (history if own else migration).execute(statement.rstrip(";"))
'''

# -- running a tool ---------------------------------------------------------------------------------------------

@dataclass
class Outcome:
    wall_s: float
    ended_at: float
    rss_kb: int | None = None
    cpu_s: float | None = None  # user + system CPU time of the process and its waited-for children


@dataclass
class Tool:
    """One way of doing a workload: a command line and its environment (which holds any password)."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: Path | None = None


class Runner:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.log = work / "last-output.txt"
        self.child: subprocess.Popen[bytes] | None = None
        self.base_env = {k: os.environ[k] for k in ("HOME", "LANG", "LC_ALL", "TZ", "TMPDIR") if k in os.environ}
        self.base_env["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"

    def run(self, tool: Tool, what: str, *, rss: bool = False) -> Outcome:
        """Run one process to completion: wall time from spawn to reaped exit.

        With rss, the process runs under /usr/bin/time for its peak RSS instead: a child forked from this
        interpreter would report this interpreter's RSS as its own peak (the high-water mark survives exec), and
        the wrapper's fork and exec would cost the timed runs about a millisecond.
        """
        env = {**self.base_env, **tool.env}
        stdin = open(tool.stdin, "rb") if tool.stdin else subprocess.DEVNULL
        rss_file = self.work / "rss.txt"
        argv = ([GNU_TIME, "-f", "%M", "-o", str(rss_file)] if rss else []) + tool.argv
        with open(self.log, "wb") as out:
            started = time.perf_counter()
            self.child = subprocess.Popen(argv, env=env, cwd=self.work, stdin=stdin, stdout=out,
                                          stderr=subprocess.STDOUT)
            killer = threading.Timer(CHILD_TIMEOUT_S, self.child.kill)
            killer.start()
            try:
                _, status, usage = os.wait4(self.child.pid, 0)
            finally:
                killer.cancel()
            ended = time.perf_counter()
            self.child.returncode = os.waitstatus_to_exitcode(status)
            self.child = None
        if tool.stdin:
            stdin.close()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            tail = self.log.read_text(errors="replace").strip().splitlines()[-12:]
            raise BenchError(f"{tool.name} failed ({what}) with exit code {code}; its last output:\n  "
                             + "\n  ".join(Secrets.scrub(line) for line in tail))
        peak = int(rss_file.read_text().split()[-1]) if rss else None
        return Outcome(ended - started, ended, peak, usage.ru_utime + usage.ru_stime)

    def kill_child(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.kill()


# -- TCP forwarding: a port that opens late, and a counter of MySQL commands ------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MySQLCommandCounter:
    """Counts what a client sends: commands (each one round trip, except COM_STMT_CLOSE and COM_QUIT), and commits.

    Commits are inferred per connection the way the server decides them: an explicit COMMIT, every DDL statement
    (an implicit commit), and every write made with autocommit on outside an explicit transaction.
    """

    NO_REPLY = {0x01, 0x19}  # COM_QUIT, COM_STMT_CLOSE
    DDL = {"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"}
    WRITES = {"INSERT", "UPDATE", "DELETE", "REPLACE"}
    NAMES = {0x01: "COM_QUIT", 0x02: "COM_INIT_DB", 0x0E: "COM_PING", 0x17: "COM_STMT_EXECUTE",
             0x19: "COM_STMT_CLOSE", 0x1B: "COM_SET_OPTION", 0x1F: "COM_RESET_CONNECTION"}

    def __init__(self, history_table: str) -> None:
        self.history_table = history_table.lower()
        self.lock = threading.Lock()
        self.connections = 0
        self.round_trips = 0
        self.commits = 0
        self.history_writes = 0
        self.by_keyword: dict[str, int] = {}
        self.statements: dict[str, int] = {}

    def stream(self) -> _PacketReader:
        with self.lock:
            self.connections += 1
        return _PacketReader(self)

    def command(self, conn: _PacketReader, payload: bytes) -> None:
        if not payload:
            return
        kind = payload[0]
        with self.lock:
            if kind not in self.NO_REPLY:
                self.round_trips += 1
            if kind in (0x03, 0x16):  # COM_QUERY, COM_STMT_PREPARE
                text = _strip_comments(payload[1:].decode("utf-8", "replace"))
                keyword = text.split(None, 1)[0].upper() if text else ""
                shape = re.sub(r"\d+", "N", re.sub(r"'(?:[^'\\]|\\.)*'", "?", " ".join(text.split())))[:100]
                self.statements[shape] = self.statements.get(shape, 0) + 1
                self.by_keyword[keyword] = self.by_keyword.get(keyword, 0) + 1
                if kind == 0x16:
                    self._history_write(keyword, text)
                    conn.prepared = keyword
                else:
                    # A client may send several statements in one query (dbmate sends a whole file; premigrate a
                    # progress row in front of the statement it announces): each is counted.
                    for part in (_strip_comments(p) for p in text.split(";")):
                        if part:
                            word = part.split(None, 1)[0].upper()
                            self._history_write(word, part)
                            self._transaction(conn, word, part)
            else:
                name = self.NAMES.get(kind, hex(kind))
                self.by_keyword[name] = self.by_keyword.get(name, 0) + 1
                if kind == 0x17:
                    self._transaction(conn, conn.prepared, "")

    def _history_write(self, keyword: str, text: str) -> None:
        if keyword in self.WRITES and self.history_table in text.lower():
            self.history_writes += 1

    def _transaction(self, conn: _PacketReader, keyword: str, text: str) -> None:
        squashed = text.replace(" ", "").upper()
        if keyword == "SET" and "AUTOCOMMIT=" in squashed:
            on = "AUTOCOMMIT=1" in squashed or "AUTOCOMMIT=ON" in squashed
            if on and conn.in_transaction:
                self.commits += 1
                conn.in_transaction = False
            conn.autocommit = on
        elif keyword in ("BEGIN", "START"):
            if conn.in_transaction:
                self.commits += 1
            conn.in_transaction = True
        elif keyword == "COMMIT":
            # After DDL there is nothing left to commit: the implicit commit ended the transaction.
            if conn.in_transaction:
                self.commits += 1
            conn.in_transaction = False
        elif keyword == "ROLLBACK":
            conn.in_transaction = False
        elif keyword in self.DDL:
            self.commits += 1
            conn.in_transaction = False
        elif keyword in self.WRITES:
            if conn.autocommit and not conn.in_transaction:
                self.commits += 1
            elif not conn.autocommit:
                conn.in_transaction = True

    def as_dict(self, migrations: int) -> dict[str, Any]:
        return {"connections": self.connections, "round_trips": self.round_trips, "commits": self.commits,
                "history_writes": self.history_writes,
                "per_migration": {"round_trips": self.round_trips / migrations, "commits": self.commits / migrations,
                                  "history_writes": self.history_writes / migrations},
                "by_keyword": dict(sorted(self.by_keyword.items())),
                "statements": dict(sorted(self.statements.items(), key=lambda kv: -kv[1])[:25])}


def _strip_comments(text: str) -> str:
    """Leading comments only: enough to find the statement's first keyword."""
    text = text.strip()
    while text.startswith(("--", "#", "/*")):
        if text.startswith("/*"):
            end = text.find("*/")
            text = text[end + 2:].strip() if end >= 0 else ""
        else:
            end = text.find("\n")
            text = text[end + 1:].strip() if end >= 0 else ""
    return text


class _PacketReader:
    """Splits the client-to-server byte stream into MySQL packets; a packet with sequence 0 starts a command."""

    def __init__(self, counter: MySQLCommandCounter) -> None:
        self.counter = counter
        self.buffer = b""
        self.autocommit = True  # the server's default until the client says otherwise
        self.in_transaction = False
        self.prepared = ""

    def feed(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= 4:
            length = int.from_bytes(self.buffer[:3], "little")
            if len(self.buffer) < 4 + length:
                return
            seq, payload = self.buffer[3], self.buffer[4:4 + length]
            self.buffer = self.buffer[4 + length:]
            if seq == 0:
                self.counter.command(self, payload[:4096])


class Forwarder:
    """Listens on a free 127.0.0.1 port after `delay` seconds (refusing until then) and forwards to the server."""

    def __init__(self, target: tuple[str, int], delay: float = 0.0,
                 counter: MySQLCommandCounter | None = None) -> None:
        self.port = free_port()
        self.target = target
        self.delay = delay
        self.counter = counter
        self.listening_at: float | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._server: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> Forwarder:
        self._thread.start()
        if self.delay == 0:
            self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        self._thread.join(5)
        for t in self._threads:
            t.join(5)

    def _serve(self) -> None:
        if self._stop.wait(self.delay):
            return
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        server.settimeout(0.05)
        self._server = server
        self.listening_at = time.perf_counter()
        self._ready.set()
        while not self._stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            reader = self.counter.stream() if self.counter else None
            for a, b, r in ((client, upstream, reader), (upstream, client, None)):
                t = threading.Thread(target=_pipe, args=(a, b, r), daemon=True)
                t.start()
                self._threads.append(t)


def _pipe(source: socket.socket, sink: socket.socket, reader: _PacketReader | None) -> None:
    try:
        source.settimeout(None)
        while True:
            data = source.recv(65536)
            if not data:
                break
            if reader is not None:
                reader.feed(data)
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# -- the tools for one server and database ----------------------------------------------------------------------

class Tools:
    def __init__(self, server: Server, folders: dict[str, Path], work: Path) -> None:
        self.server = server
        self.folders = folders
        self.work = work

    def premigrate_up(self, database: str, n: int, port: int | None = None) -> Tool:
        scheme = "postgresql" if self.server.dialect == "postgresql" else "mysql"
        return Tool("premigrate", [str(VENV_BIN / "premigrate"), "up", "--dir", str(self.folders[f"premigrate-{n}"])],
                    {"DATABASE_URL": self.server.url(scheme, database, port=port)})

    def premigrate_wait(self, database: str, port: int) -> Tool:
        scheme = "postgresql" if self.server.dialect == "postgresql" else "mysql"
        return Tool("premigrate", [str(VENV_BIN / "premigrate"), "wait", "--wait-timeout", "30s"],
                    {"DATABASE_URL": self.server.url(scheme, database, port=port)})

    def _dbmate_url(self, database: str, port: int | None) -> str:
        if self.server.dialect == "postgresql":
            return self.server.url("postgres", database, port=port, query="sslmode=disable")
        return self.server.url("mysql", database, port=port)

    def dbmate_up(self, database: str, n: int, port: int | None = None) -> Tool:
        return Tool("dbmate", [str(VENV_BIN / "dbmate"), "--no-dump-schema", "--migrations-dir",
                               str(self.folders[f"dbmate-{n}"]), "up"],
                    {"DATABASE_URL": self._dbmate_url(database, port)})

    def dbmate_wait(self, database: str, port: int) -> Tool:
        return Tool("dbmate", [str(VENV_BIN / "dbmate"), "--wait-timeout", "30s", "wait"],
                    {"DATABASE_URL": self._dbmate_url(database, port)})

    def alembic_up(self, database: str, n: int) -> Tool:
        scheme = "postgresql+psycopg" if self.server.dialect == "postgresql" else "mysql+pymysql"
        return Tool("alembic", [str(VENV_BIN / "alembic"), "-c", str(self.folders[f"alembic-{n}"] / "alembic.ini"),
                                "upgrade", "head"],
                    {"BENCH_ALEMBIC_URL": self.server.url(scheme, database)})

    def client(self, database: str, n: int, port: int | None = None, *, recorded: bool = False) -> Tool:
        sql = self.folders[f"recorded-mysql-{n}" if recorded else f"baseline-{self.server.dialect}-{n}"]
        s = self.server
        if s.dialect == "postgresql":
            env = {"PGHOST": s.host, "PGPORT": str(s.port), "PGUSER": s.user, "PGDATABASE": database}
            if s.password:
                env["PGPASSWORD"] = s.password
            return Tool("psql", ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(sql)], env)
        env = {"MYSQL_PWD": s.password} if s.password else {}
        return Tool(RECORDED if recorded else "mariadb",
                    [CLIENTS["mysql"], "--no-defaults", "--protocol=TCP", "-h", s.host, "-P", str(port or s.port),
                     "-u", s.user, database], env, stdin=sql)

    def floor(self, database: str) -> Tool:
        s = self.server
        if s.dialect == "postgresql":
            return Tool("python floor", [sys.executable, str(self.work / "floor_pg.py")],
                        {"BENCH_FLOOR_URL": s.url("postgresql", database)})
        return Tool("python floor", [sys.executable, str(self.work / "floor_my.py")], self._floor_env(database))

    def python_recorded(self, database: str, n: int, port: int | None = None) -> Tool:
        """MariaDB: PY_RECORDED running the statements of write_recorded_sql."""
        return Tool(PY_RECORDED_TOOL, [sys.executable, str(self.work / "recorded_my.py"),
                                       str(self.folders[f"recorded-mysql-{n}"])], self._floor_env(database, port))

    def _floor_env(self, database: str, port: int | None = None) -> dict[str, str]:
        s = self.server
        env = {"BENCH_FLOOR_HOST": s.host, "BENCH_FLOOR_PORT": str(port or s.port), "BENCH_FLOOR_USER": s.user,
               "BENCH_FLOOR_DB": database}
        if s.password:
            env["BENCH_FLOOR_PASSWORD"] = s.password
        return env


CLIENTS = {"postgresql": "psql", "mysql": "mariadb"}
RECORDED = "mariadb, recorded"  # the MariaDB client with premigrate's statement-level record (write_recorded_sql)
PY_RECORDED_TOOL = "python, recorded"  # the same statements from Python (PY_RECORDED)
GNU_TIME = "/usr/bin/time"
RSS_ROUNDS = 2
HISTORY_TABLES = {"premigrate": "premigrate_history", "dbmate": "schema_migrations", "alembic": "alembic_version",
                  "psql": "bench_history", "mariadb": "bench_history", RECORDED: "bench_history",
                  PY_RECORDED_TOOL: "bench_history"}


# -- workloads --------------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace, servers: list[Server], work: Path) -> None:
        self.args = args
        self.servers = servers
        self.work = work
        self.dbs = Databases()
        self.runner = Runner(work)
        self.runs: list[dict[str, Any]] = []
        self.rss: list[dict[str, Any]] = []
        self.random = random.Random(int(self.dbs.run_id, 16))
        self.round_trips: dict[str, Any] = {}
        self.folders: dict[str, Path] = {}
        self.fleet: list[dict[str, Any]] = []

    def say(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)

    def record(self, workload: str, server: Server, tool: str, rep: int, out: Outcome, **extra: Any) -> None:
        if out.rss_kb is not None:
            self.rss.append({"workload": workload, "db": server.dialect, "tool": tool, "rss_kb": out.rss_kb})
        else:
            self.runs.append({"workload": workload, "db": server.dialect, "tool": tool, "rep": rep,
                              "wall_s": round(out.wall_s, 5), **extra})

    def prepare(self) -> None:
        sizes = sorted({100} | ({1000} if "apply-1000" in self.args.workloads else set()))
        for n in sizes:
            self.folders[f"premigrate-{n}"] = write_premigrate_dir(self.work / f"premigrate-{n}", n)
            self.folders[f"dbmate-{n}"] = write_dbmate_dir(self.work / f"dbmate-{n}", n)
            self.folders[f"alembic-{n}"] = write_alembic_dir(self.work / f"alembic-{n}", n)
            for dialect in ("postgresql", "mysql"):
                self.folders[f"baseline-{dialect}-{n}"] = write_baseline_sql(
                    self.work / f"baseline-{dialect}-{n}.sql", dialect, n)
            self.folders[f"recorded-mysql-{n}"] = write_recorded_sql(self.work / f"recorded-mysql-{n}.sql", n)
        if "fleet" in self.args.workloads:
            import fleet_bench

            fleet_bench.prepare(self)
        (self.work / "floor_pg.py").write_text(FLOOR_PG)
        (self.work / "floor_my.py").write_text(FLOOR_MY)
        (self.work / "recorded_my.py").write_text(PY_RECORDED)

    def apply_tools(self, tools: Tools, server: Server, n: int) -> list[tuple[str, Any]]:
        return [("premigrate", lambda db: tools.premigrate_up(db, n)),
                ("dbmate", lambda db: tools.dbmate_up(db, n)),
                ("alembic", lambda db: tools.alembic_up(db, n)),
                (CLIENTS[server.dialect], lambda db: tools.client(db, n))] + (
               [(RECORDED, lambda db: tools.client(db, n, recorded=True)),
                (PY_RECORDED_TOOL, lambda db: tools.python_recorded(db, n))] if server.dialect == "mysql" else [])

    def apply(self, server: Server, n: int, reps: int, warmup: bool, rss_rounds: int = 0) -> None:
        workload = f"apply-{n}"
        tools = Tools(server, self.folders, self.work)
        candidates = self.apply_tools(tools, server, n)
        rounds = ([-1] if warmup else []) + list(range(reps)) + [-2] * rss_rounds
        for rep in rounds:
            shift = rep % len(candidates) if rep >= 0 else 0
            for name, make in candidates[shift:] + candidates[:shift]:
                db = self.dbs.create(server)
                try:
                    settle(server)
                    out = self.runner.run(make(db), f"{workload} on {server.label}", rss=rep == -2)
                    tables = count_tables(server, db)
                    if tables != n + 1:
                        raise BenchError(f"{name} left {tables} tables after {workload} on {server.label}, "
                                         f"expected {n + 1}")
                finally:
                    self.dbs.drop(server, db)
                label = {-1: "warm-up", -2: "RSS"}.get(rep, f"{rep + 1}/{reps}")
                rss = f"  peak RSS {out.rss_kb / 1024:.1f} MB" if out.rss_kb else ""
                self.say(f"{server.label:10} {workload:10} {label:7} {name:12} {out.wall_s:7.3f} s{rss}")
                if rep != -1:
                    self.record(workload, server, name, rep, out)

    def noop(self, server: Server, reps: int) -> None:
        tools = Tools(server, self.folders, self.work)
        applied = {}
        for name, make in self.apply_tools(tools, server, 100)[:3]:
            db = self.dbs.create(server)
            self.runner.run(make(db), f"applying 100 before the no-op runs on {server.label}")
            applied[name] = db
        candidates = [("premigrate", tools.premigrate_up(applied["premigrate"], 100)),
                      ("dbmate", tools.dbmate_up(applied["dbmate"], 100)),
                      ("alembic", tools.alembic_up(applied["alembic"], 100)),
                      ("python floor", tools.floor(applied["premigrate"]))]
        for name, tool in candidates:
            self.runner.run(tool, f"no-op warm-up on {server.label}")
        for rep in range(reps):
            shift = rep % len(candidates)
            for name, tool in candidates[shift:] + candidates[:shift]:
                out = self.runner.run(tool, f"no-op on {server.label}")
                self.record("noop", server, name, rep, out)
            line = "  ".join(f"{r['tool']} {r['wall_s']:.3f}" for r in self.runs[-len(candidates):])
            self.say(f"{server.label:10} {'noop':10} {rep + 1}/{reps:<5} {line}")
        for _ in range(RSS_ROUNDS):
            for name, tool in candidates:
                self.record("noop", server, name, -2, self.runner.run(tool, f"no-op on {server.label}", rss=True))
        for db in applied.values():
            self.dbs.drop(server, db)

    def round_trips_for(self, server: Server, tools: Tools) -> None:
        """MariaDB only: the commands each tool sends to apply 100 migrations, counted on the wire."""
        if server.dialect != "mysql":
            return
        result = {}
        for name, make in (("premigrate", lambda db, p: tools.premigrate_up(db, 100, port=p)),
                           ("dbmate", lambda db, p: tools.dbmate_up(db, 100, port=p)),
                           ("mariadb", lambda db, p: tools.client(db, 100, port=p)),
                           (RECORDED, lambda db, p: tools.client(db, 100, port=p, recorded=True)),
                           (PY_RECORDED_TOOL, lambda db, p: tools.python_recorded(db, 100, port=p))):
            counter = MySQLCommandCounter(HISTORY_TABLES[name])
            db = self.dbs.create(server)
            try:
                with Forwarder((server.host, server.port), counter=counter) as fwd:
                    self.runner.run(make(db, fwd.port), f"counting round trips on {server.label}")
            finally:
                self.dbs.drop(server, db)
            counts = counter.as_dict(100)
            result[name] = counts
            self.say(f"{server.label:10} round trips  {name:12} {counts['per_migration']}")
        self.round_trips = result

    def wait(self, server: Server, reps: int) -> None:
        tools = Tools(server, self.folders, self.work)
        db = self.dbs.create(server)
        candidates = [("premigrate", tools.premigrate_wait), ("dbmate", tools.dbmate_wait)]
        try:
            for rep in range(reps):
                shift = rep % len(candidates)
                # A random phase against dbmate's one-second polling; both tools get the same delay in a round.
                delay = WAIT_REFUSE_S + self.random.random()
                for name, make in candidates[shift:] + candidates[:shift]:
                    fwd = Forwarder((server.host, server.port), delay=delay)
                    with fwd:
                        out = self.runner.run(make(db, fwd.port), f"wait on {server.label}")
                    if fwd.listening_at is None or out.ended_at < fwd.listening_at:
                        raise BenchError(f"{name} exited before the port opened (wait on {server.label})")
                    lag = out.ended_at - fwd.listening_at
                    self.runs.append({"workload": "wait", "db": server.dialect, "tool": name, "rep": rep,
                                      "wall_s": round(lag, 5), "total_s": round(out.wall_s, 5),
                                      "refused_s": round(delay, 3)})
                    self.say(f"{server.label:10} {'wait':10} {rep + 1}/{reps:<5} {name:12} lag {lag:.3f} s")
        finally:
            self.dbs.drop(server, db)

    def run(self) -> None:
        self.prepare()
        for server in self.servers:
            r = self.args.repeats
            if "apply-100" in self.args.workloads:
                self.apply(server, 100, r["apply-100"], warmup=True, rss_rounds=RSS_ROUNDS)
                self.round_trips_for(server, Tools(server, self.folders, self.work))
            if "noop" in self.args.workloads:
                self.noop(server, r["noop"])
            if "apply-1000" in self.args.workloads:
                self.apply(server, 1000, r["apply-1000"], warmup=False)
            if "wait" in self.args.workloads:
                self.wait(server, r["wait"])
            if "fleet" in self.args.workloads:
                import fleet_bench

                self.fleet += fleet_bench.run(self, server, self.args.fleet_scale)


# -- report -----------------------------------------------------------------------------------------------------

WORKLOAD_TITLES = {"apply-100": "apply 100", "apply-1000": "apply 1,000", "noop": "no-op (100 applied)",
                   "wait": "wait: detection lag"}
BASELINES = {"apply-100": ("psql", "mariadb"), "apply-1000": ("psql", "mariadb"), "noop": ("python floor",)}
PEERS = ("premigrate", "dbmate", "alembic")
TOOL_TITLES = {"psql": "psql (baseline)", "mariadb": "mariadb (baseline)",
               RECORDED: "mariadb with the record per statement",
               PY_RECORDED_TOOL: "Python (PyMySQL) with the record per statement",
               "python floor": {"postgresql": "Python floor: psycopg", "mysql": "Python floor: PyMySQL"}}


def summarize(runs: list[dict[str, Any]], rss: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["workload"], r["db"], r["tool"]), []).append(r)
    rows = []
    for (workload, db, tool), rs in groups.items():
        walls = [r["wall_s"] for r in rs]
        peaks = [r["rss_kb"] / 1024 for r in rss if (r["workload"], r["db"], r["tool"]) == (workload, db, tool)]
        rows.append({"workload": workload, "db": db, "tool": tool, "n": len(walls),
                     "median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
                     "rss_max_mb": max(peaks) if peaks else None})
    order = {w: i for i, w in enumerate(WORKLOADS)}
    tool_order = {t: i for i, t in enumerate(PEERS + ("psql", "mariadb", RECORDED, PY_RECORDED_TOOL,
                                                      "python floor"))}
    rows.sort(key=lambda x: (order[x["workload"]], x["db"] != "postgresql", tool_order.get(x["tool"], 99)))
    index = {(x["workload"], x["db"], x["tool"]): x for x in rows}
    for x in rows:
        base = next((index[(x["workload"], x["db"], b)] for b in BASELINES.get(x["workload"], ())
                     if (x["workload"], x["db"], b) in index), None)
        x["baseline"] = base["tool"] if base else None
        x["x_baseline"] = x["median_s"] / base["median_s"] if base and base is not x else None
        x["x_peer"] = {p: x["median_s"] / index[(x["workload"], x["db"], p)]["median_s"]
                       for p in PEERS if p != x["tool"] and (x["workload"], x["db"], p) in index}
    return rows


def targets(rows: list[dict[str, Any]], round_trips: dict[str, Any]) -> list[dict[str, Any]]:
    index = {(x["workload"], x["db"], x["tool"]): x for x in rows}
    out = []
    label = {"postgresql": "PostgreSQL", "mysql": "MariaDB"}

    def add(target: str, db: str, value: float | None, text: str, ok: bool | None) -> None:
        out.append({"target": target, "db": db, "value": value, "measured": text,
                    "result": "n/a" if ok is None else ("pass" if ok else "MISS")})

    for db in ("postgresql", "mysql"):
        pm, floor, alembic = (index.get(("noop", db, t)) for t in ("premigrate", "python floor", "alembic"))
        if pm and floor:
            ratio = pm["median_s"] / floor["median_s"]
            driver = "psycopg" if db == "postgresql" else "PyMySQL"
            add(f"no-op `up` ≤ {NOOP_FLOOR_MAX}× the {driver} floor", db, ratio,
                f"{ratio:.2f}× ({pm['median_s']:.3f} s vs {floor['median_s']:.3f} s)", ratio <= NOOP_FLOOR_MAX)
        if pm and alembic:
            add("no-op `up` faster than alembic", db, pm["median_s"] / alembic["median_s"],
                f"{pm['median_s']:.3f} s vs {alembic['median_s']:.3f} s", pm["median_s"] < alembic["median_s"])
    for db in ("postgresql", "mysql"):
        peer, most = APPLY_1000_MAX[db]
        pm, base = index.get(("apply-1000", db, "premigrate")), index.get(("apply-1000", db, peer))
        if pm and base:
            ratio = pm["median_s"] / base["median_s"]
            add(f"apply 1,000 ≤ {most:.2f}× {peer}", db, ratio,
                f"{ratio:.2f}× ({pm['median_s']:.2f} s vs {base['median_s']:.2f} s)", ratio <= most)
        recorded = index.get(("apply-1000", db, RECORDED))
        if pm and recorded:
            ratio = pm["median_s"] / recorded["median_s"]
            add("apply 1,000 against the client with the same record per statement (reported)", db, ratio,
                f"{ratio:.2f}× ({pm['median_s']:.2f} s vs {recorded['median_s']:.2f} s)", None)
        in_python, peer_dbmate = (index.get(("apply-1000", db, t)) for t in (PY_RECORDED_TOOL, "dbmate"))
        if pm and in_python and peer_dbmate:
            ratio = pm["median_s"] / in_python["median_s"]
            floor = in_python["median_s"] / peer_dbmate["median_s"]
            add("apply 1,000 against Python with the same record per statement (reported; that client is "
                f"{floor:.2f}× dbmate)", db, ratio,
                f"{ratio:.2f}× ({pm['median_s']:.2f} s vs {in_python['median_s']:.2f} s)", None)
        dbmate = index.get(("apply-1000", db, "dbmate"))
        if db == "postgresql" and pm and dbmate:
            add("apply 1,000 faster than dbmate", db, pm["median_s"] / dbmate["median_s"],
                f"{pm['median_s']:.2f} s vs {dbmate['median_s']:.2f} s", pm["median_s"] < dbmate["median_s"])
    for db in ("postgresql", "mysql"):
        pm = index.get(("wait", db, "premigrate"))
        if pm:
            add(f"wait: median detection lag < {WAIT_LAG_MAX_S} s", db, pm["median_s"],
                f"{pm['median_s']:.3f} s", pm["median_s"] < WAIT_LAG_MAX_S)
    for workload in ("apply-100", "noop"):
        pms = [index[k] for k in index if k[0] == workload and k[2] == "premigrate" and index[k]["rss_max_mb"]]
        if pms:
            worst = max(pms, key=lambda x: x["rss_max_mb"])
            add(f"peak RSS of `up` ({WORKLOAD_TITLES[workload]}) < {RSS_MAX_MB:.0f} MB",
                "both" if len(pms) > 1 else worst["db"], worst["rss_max_mb"],
                f"{worst['rss_max_mb']:.1f} MB (max, {label[worst['db']]})", worst["rss_max_mb"] < RSS_MAX_MB)
    if "premigrate" in round_trips:
        pm = round_trips["premigrate"]["per_migration"]
        add("round trips per migration (keep minimal)", "mysql", pm["round_trips"],
            f"{pm['round_trips']:.2f} round trips, {pm['commits']:.2f} commits, "
            f"{pm['history_writes']:.2f} history writes", None)
    return out


def fmt_s(x: float) -> str:
    return f"{x:.2f}" if x >= 10 else f"{x:.3f}"


def fmt_x(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}×"


def _short(version: str) -> str:
    """'PostgreSQL 15.20 (Debian ...) on x86_64 ...' -> '15.20'; 'dbmate version 2.37.0' -> '2.37.0'."""
    if version.startswith(tuple("0123456789")) and "commit" in version:
        return version
    words = version.replace("(", " ").split()
    return next((w for w in words if w[:1].isdigit()), version)


def markdown(result: dict[str, Any]) -> str:
    label = {"postgresql": "PostgreSQL", "mysql": "MariaDB"}
    lines = [f"Measured {result['date']} on {result['machine']['description']} "
             f"({result['duration_s'] / 60:.0f} min run, {result['mode']}; "
             f"repetitions: {', '.join(f'{k} {v}' for k, v in result['repeats'].items())}). "
             f"Wall time in seconds, median (min–max); ratios are of medians. "
             + ("Apply runs start on a settled server (dirty pages written out first). "
                if not result.get("unsettled") else
                f"Apply runs could not settle {', '.join(result['unsettled'])} first (no superuser). ") , "",
             "Versions: " + ", ".join(f"{k} {_short(v)}" for k, v in result["versions"].items()
                                      if "client" not in k) + f", Python {result['machine']['python']}.", "",
             "| workload | db | tool | median (min–max) s | × baseline | × premigrate | × dbmate | × alembic "
             "| peak RSS (max) |", "|---|---|---|---|---|---|---|---|---|"]
    if not result["summary"]:  # the fleet workload alone: its own table follows
        lines = lines[:4]
    for x in result["summary"]:
        title = TOOL_TITLES.get(x["tool"], x["tool"])
        if isinstance(title, dict):
            title = title[x["db"]]
        if x["tool"] == "premigrate":
            title = "**premigrate**"
        peers = [("—" if p == x["tool"] else fmt_x(x["x_peer"].get(p))) for p in PEERS]
        base = "1.00×" if x["baseline"] == x["tool"] else fmt_x(x["x_baseline"])
        lines.append(f"| {WORKLOAD_TITLES[x['workload']]} | {label[x['db']]} | {title} | "
                     f"{fmt_s(x['median_s'])} ({fmt_s(x['min_s'])}–{fmt_s(x['max_s'])}) | {base} | "
                     + " | ".join(peers) + " | " + (f"{x['rss_max_mb']:.0f} MB" if x["rss_max_mb"] else "") + " |")
    lines += ["", "| target | db | measured | result |", "|---|---|---|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {label.get(t['db'], t['db'])} | {t['measured']} | {t['result']} |")
    if result["round_trips"]:
        lines += ["", "MariaDB, apply 100, commands sent per migration (counted on the wire; a round trip is every "
                  "command that gets a reply):", "",
                  "| tool | round trips | commits (DDL, COMMIT, autocommit writes) | history-table writes "
                  "| connections per run |", "|---|---|---|---|---|"]
        for name, c in result["round_trips"].items():
            p = c["per_migration"]
            lines.append(f"| {name} | {p['round_trips']:.2f} | {p['commits']:.2f} | {p['history_writes']:.2f} | "
                         f"{c['connections']} |")
    return "\n".join(lines) + "\n"


# -- main -------------------------------------------------------------------------------------------------------

def machine_description() -> dict[str, Any]:
    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    return {"description": f"{os.cpu_count()} shared cores" + (f" ({cpu})" if cpu else ""),
            "cpus": os.cpu_count(), "cpu_model": cpu, "kernel": platform.release(),
            "python": platform.python_version()}


def _first_line(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "unknown"


def premigrate_source() -> tuple[str, str]:
    """The commit of the checkout the benchmark runs (bench/.venv installs it editable, so what it runs is the
    files as they are at each moment), and a hash of its uncommitted changes to src/ ("" when there are none)."""
    commit = _first_line(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"])
    diff = subprocess.run(["git", "-C", str(HERE.parent), "diff", "HEAD", "--", "src"], capture_output=True).stdout
    return commit, hashlib.sha256(diff).hexdigest()[:12] if diff else ""


def describe_source(at_start: tuple[str, str]) -> str:
    """The source the run measured; a run whose source changed while it ran says so, since it measured a mix."""
    commit, changes = at_start
    text = f"commit {commit}{' with changes in src/' if changes else ''}"
    now = premigrate_source()
    if now != at_start:
        text += f"; the source changed during the run (now commit {now[0]}{' with changes' if now[1] else ''})"
    return text


def tool_versions(servers: list[Server], source: tuple[str, str]) -> dict[str, str]:
    from importlib.metadata import version

    out = _first_line
    versions = {"premigrate": f"{version('premigrate')} ({describe_source(source)})",
                "alembic": version("alembic"),
                "sqlalchemy": version("sqlalchemy"), "psycopg": version("psycopg"), "pymysql": version("pymysql"),
                "dbmate": out([str(VENV_BIN / "dbmate"), "--version"])}
    for s in servers:
        versions[f"{s.dialect} client"] = out([CLIENTS[s.dialect], "--version"])
        versions[f"{s.dialect} server"] = s.version
    return versions


def check_servers(servers: list[Server]) -> None:
    if not os.access(GNU_TIME, os.X_OK):
        raise BenchError(f"{GNU_TIME} is missing (the Debian package `time`): it measures peak RSS")
    for s in servers:
        if shutil.which(CLIENTS[s.dialect]) is None:
            raise BenchError(f"the {CLIENTS[s.dialect]} client is not installed (needed for the {s.label} baseline)")
        try:
            with s.connect() as conn:
                cur = conn.cursor()
                cur.execute("SELECT version()")
                s.version = str(cur.fetchone()[0])
        except Exception as exc:  # noqa: BLE001 - any driver error means the same thing here
            first = Secrets.scrub(str(exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BenchError(f"{s.where()} cannot be used: {first} (start it, fix BENCH_POSTGRES_URL or "
                             "BENCH_MYSQL_URL, or leave it out with --db)") from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=(
        "Side-by-side benchmark of premigrate, dbmate, alembic and the database's own client. Servers: "
        "BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/postgres) and BENCH_MYSQL_URL "
        "(default mysql://root@127.0.0.1:3306/mysql)."))
    p.add_argument("--quick", action="store_true", help="few repetitions (about 2-3 minutes); writes results/quick.*")
    p.add_argument("--db", choices=("postgresql", "mysql", "all"), default="all")
    p.add_argument("--repeat", type=int, metavar="N", help="repetitions of every workload (default: "
                   + ", ".join(f"{k} {v}" for k, v in DEFAULT_REPEATS.items()) + ")")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--fleet-scale", type=float, metavar="F", help="fleet workload size: F x (1,000 PostgreSQL "
                   "schemas, 200 MariaDB databases) (default 1, 0.1 with --quick)")
    p.add_argument("--out", metavar="STEM", help="write STEM.json and STEM.md (default results/latest, "
                   "results/quick with --quick)")
    args = p.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workload {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    if args.repeat is not None and args.repeat < 1:
        p.error("--repeat must be at least 1")
    base = QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    args.repeats = {w: (args.repeat or base[w]) for w in WORKLOADS if w in args.workloads}
    args.fleet_scale = args.fleet_scale or (0.1 if args.quick else 1.0)
    if args.fleet_scale <= 0:
        p.error("--fleet-scale must be more than 0")
    args.mode = "quick" if args.quick else ("custom" if args.repeat or args.fleet_scale != 1.0 else "default")
    args.out = Path(args.out) if args.out else RESULTS / ("quick" if args.quick else "latest")
    return args


def main(argv: list[str]) -> int:
    # fleet_bench imports from `bench`: let it find this very module rather than load a second copy of it.
    sys.modules.setdefault("bench", sys.modules[__name__])
    args = parse_args(argv)
    servers = []
    for dialect, var, default in (("postgresql", "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
                                  ("mysql", "BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql")):
        if args.db in (dialect, "all"):
            server = Server.from_url(dialect, os.environ.get(var, default))
            Secrets.add(server.password)
            servers.append(server)

    def terminate(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    work = HERE / "work" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    bench: Bench | None = None
    started = time.monotonic()
    try:
        check_servers(servers)
        source = premigrate_source()
        work.mkdir(parents=True)
        bench = Bench(args, servers, work)
        bench.say(f"benchmark in {work} on " + ", ".join(s.where() for s in servers)
                  + f"; repetitions {args.repeats}")
        bench.run()
    except BenchError as exc:
        print(f"bench: {Secrets.scrub(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        if bench is not None:
            bench.runner.kill_child()
            bench.dbs.drop_all()
        shutil.rmtree(work, ignore_errors=True)

    import fleet_bench

    summary = summarize(bench.runs, bench.rss)
    result = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "machine": machine_description(),
              "mode": args.mode, "repeats": args.repeats, "duration_s": round(time.monotonic() - started, 1),
              "versions": tool_versions(servers, source), "summary": summary,
              "targets": targets(summary, bench.round_trips) + fleet_bench.targets(bench.fleet),
              "round_trips": bench.round_trips, "fleet": bench.fleet, "runs": bench.runs,
              "unsettled": sorted(UNSETTLED),
              "rss_runs": bench.rss,
              "notes": {"wait": f"premigrate `wait` and `dbmate wait`; the port refuses for {WAIT_REFUSE_S}-"
                                f"{WAIT_REFUSE_S + 1} s (random, the same for both tools in a round); the figure is "
                                "from the moment it listens to the process exit",
                        "alembic": "transaction_per_migration=True; revisions precompiled to bytecode",
                        "dbmate": "--no-dump-schema",
                        "fleet": "one run per tool on fresh targets; the loops are `sh` scripts of one process per "
                                 "target; dbmate's schemas exist before its loop (it does not create them)",
                        "rss": f"peak RSS from GNU time (%M), {RSS_ROUNDS} extra untimed rounds per tool"}}
    text = markdown(result) + fleet_bench.markdown(bench.fleet)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(text)
    print(text)
    print(f"bench: wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
