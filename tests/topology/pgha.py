"""A private PostgreSQL primary and streaming standbys, made with the installed server's own tools.

initdb for the primary, pg_basebackup -R for a standby (it then streams from the primary), pg_ctl promote to fail
over. Each server is the `postgres` binary run directly as a child (not daemonised by pg_ctl), so it is stopped by
its PID. Authentication: trust for the postgres superuser and replication; scram-sha-256 for every other role, so
tests of short-lived passwords are checked by the server for real.
"""

from __future__ import annotations

import glob
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.topology.procs import PORTS, Server, ServerFailed, chown_tree, run, wait_until

READY_TIMEOUT_S = 60.0
# Fast shutdown (SIGINT) rolls back and disconnects clients, then immediate shutdown (SIGQUIT), then SIGKILL.
PG_STOP = ((signal.SIGINT, 15.0), (signal.SIGQUIT, 5.0))


def bindir() -> Path:
    """The newest installed PostgreSQL server's binaries (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise ServerFailed("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (package postgresql)")
    return Path(found[-1]).parent


@dataclass
class PgServer:
    name: str
    directory: Path
    port: int
    server: Server | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres", user: str = "postgres", password: str | None = None) -> str:
        auth = user + (f":{password}" if password is not None else "")
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", **kwargs: Any) -> psycopg.Connection[Any]:
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 5)
        return psycopg.connect(self.url(database), **kwargs)

    def query(self, sql: str, params: tuple[Any, ...] | None = None, database: str = "postgres") -> list[Any]:
        with self.connect(database) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def in_recovery(self) -> bool:
        return bool(self.query("SELECT pg_is_in_recovery()")[0][0])

    @classmethod
    def primary(cls, base: Path, name: str = "primary") -> PgServer:
        started = time.monotonic()
        (port,) = PORTS.take(1)
        pg = cls(name, base / f"pg-{name}", port)
        pg.directory.mkdir()
        chown_tree(pg.directory, "postgres")
        try:
            run([str(bindir() / "initdb"), "-D", str(pg.datadir), "-U", "postgres", "--auth=trust", "--no-sync",
                 "-E", "UTF8", "--locale=C.UTF-8"], user="postgres", timeout=120, what=f"initdb for {name}")
            with open(pg.datadir / "postgresql.conf", "a") as conf:
                conf.write("""
# premigrate topology tests
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
wal_keep_size = 256MB
fsync = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 100
password_encryption = scram-sha-256
""")
            (pg.datadir / "pg_hba.conf").write_text("""\
local   all          all                      trust
host    all          postgres   127.0.0.1/32  trust
host    replication  postgres   127.0.0.1/32  trust
host    all          all        127.0.0.1/32  scram-sha-256
""")
            pg.timings["initdb_s"] = time.monotonic() - started
            pg._start()
        except BaseException:
            pg.stop()
            raise
        pg.timings["start_s"] = time.monotonic() - started
        return pg

    def standby(self, base: Path, name: str = "standby") -> PgServer:
        """A hot standby of this server, streaming from it (pg_basebackup -R writes primary_conninfo)."""
        started = time.monotonic()
        (port,) = PORTS.take(1)
        standby = PgServer(name, base / f"pg-{name}", port)
        standby.directory.mkdir()
        chown_tree(standby.directory, "postgres")
        try:
            run([str(bindir() / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                 "-D", str(standby.datadir), "-R", "-X", "stream", "-c", "fast", "--no-sync"],
                user="postgres", timeout=120, what=f"pg_basebackup for {name}")
            standby._start()
            wait_until(lambda: self._streaming_to(name), timeout=READY_TIMEOUT_S, what=f"{name} streaming",
                       servers=[s for s in (self.server, standby.server) if s is not None])
        except BaseException:
            standby.stop()
            raise
        standby.timings["start_s"] = time.monotonic() - started
        return standby

    def wait_replayed(self, primary: PgServer, timeout: float = READY_TIMEOUT_S) -> float:
        """Wait until this standby has replayed everything `primary` has written so far."""
        lsn = primary.query("SELECT pg_current_wal_lsn()::text")[0][0]
        assert self.server is not None
        return wait_until(
            lambda: bool(self.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0]),
            timeout=timeout, what=f"{self.name} replaying up to {lsn}", servers=[self.server])

    def _streaming_to(self, application_name: str) -> bool:
        rows = self.query("SELECT state FROM pg_stat_replication WHERE application_name = %s", (application_name,))
        return bool(rows) and rows[0][0] == "streaming"

    def _start(self) -> None:
        # Command-line settings win over postgresql.conf, which a standby copies from its primary. cluster_name is
        # also the name a standby's WAL receiver gives its primary (pg_stat_replication.application_name).
        argv = [str(bindir() / "postgres"), "-D", str(self.datadir), "-c", f"port={self.port}",
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.directory}",
                "-c", f"cluster_name={self.name}"]
        self.server = Server(f"postgres {self.name} (port {self.port})", argv, self.directory / "server.log",
                             user="postgres", stop_sequence=PG_STOP).start()
        wait_until(self._answers, timeout=READY_TIMEOUT_S, what=self.server.name, servers=[self.server])

    def _answers(self) -> bool:
        with self.connect(connect_timeout=2) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    def promote(self) -> float:
        """pg_ctl promote, waiting until the server accepts writes. Returns the seconds it took."""
        started = time.monotonic()
        run([str(bindir() / "pg_ctl"), "promote", "-D", str(self.datadir), "-w", "-t", "60"], user="postgres",
            timeout=90, what=f"pg_ctl promote {self.name}")
        assert self.server is not None
        wait_until(lambda: not self.in_recovery(), timeout=READY_TIMEOUT_S, what=f"{self.name} promotion",
                   servers=[self.server])
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash); its backends notice and exit on their own."""
        if self.server is not None:
            self.server.kill()

    def stop(self) -> None:
        try:
            if self.server is not None:
                self.server.stop()
        finally:
            PORTS.release([self.port])

    def logs(self) -> str:
        return self.server.logs() if self.server else ""
