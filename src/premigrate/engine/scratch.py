"""A scratch database beside the configured one, for `verify`: created uniquely named, always dropped.

- PostgreSQL: CREATE DATABASE premigrate_verify_<time>_<random> on the same server, dropped WITH (FORCE) so a session
  left behind cannot keep it alive. Where the role may not create databases (managed services often say so), a
  schema of that name in the configured database instead: the caller sets search_path / --schema to it.
- MySQL/MariaDB: CREATE DATABASE of that name (a schema, there); other sessions on it are killed before DROP, and
  the DROP waits at most LOCK_WAIT_S for metadata locks.
- SQLite: a file `<configured stem>.premigrate_verify_<...>.db` in the configured file's folder, removed with its
  -wal, -shm and -journal companions.

Dropping happens in a `finally`, so it runs on a failure and on SIGTERM/SIGINT too, *provided the caller holds
engine.interrupts.SignalGuard*: the guard turns the signal into Interrupted, which unwinds through this context.
The drop itself runs with SIGTERM/SIGINT blocked (pthread_sigmask), so a second signal arriving during the drop is
delivered after it, not in the middle of it; the guard's grace timer still bounds the whole clean-up.
A `kill -9` cannot be cleaned up after: the name carries its creation time (UTC) so orphans are easy to find.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from premigrate.engine.interrupts import HANDLED
from premigrate.model.dsn import Dsn

PREFIX = "premigrate_verify_"
LOCK_WAIT_S = 10
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Scratch:
    dsn: Dsn  # where to connect for the scratch database
    name: str  # database, schema or file name
    kind: str  # database | schema | file
    schema: str | None = None  # PostgreSQL schema mode: the schema to put first in search_path

    @property
    def target(self) -> str:
        return self.dsn.database or self.name


def scratch_name(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    return f"{PREFIX}{stamp}_{secrets.token_hex(4)}"


Connect = Callable[[Dsn], Any]


def _pg_connect(dsn: Dsn) -> Any:
    import psycopg

    kwargs: dict[str, Any] = {"host": dsn.host, "port": dsn.port, "user": dsn.user, "password": dsn.password,
                              "dbname": dsn.database, "connect_timeout": CONNECT_TIMEOUT_S, **dsn.params_dict}
    return psycopg.connect(autocommit=True, **{k: v for k, v in kwargs.items() if v is not None})


def _mysql_connect(dsn: Dsn) -> Any:
    import pymysql  # type: ignore[import-untyped]

    return pymysql.connect(host=dsn.host or "localhost", port=dsn.port or 3306, user=dsn.user or "root",
                           password=dsn.password or "", database=None, autocommit=True,
                           connect_timeout=CONNECT_TIMEOUT_S)


def _run(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if hasattr(conn, "pgconn"):
        cur = conn.execute(sql, params or None)
        return list(cur.fetchall()) if cur.description else []
    with conn.cursor() as cur:
        cur.execute(sql, params or None)
        return list(cur.fetchall()) if cur.description else []


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGTERM/SIGINT held back while the block runs (main thread, where Python handlers run)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, set(HANDLED))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def scratch_database(dsn: Dsn, *, connect: Connect | None = None, name: str | None = None) -> Iterator[Scratch]:
    """Create a scratch database beside `dsn`, yield where it is, drop it whatever happens."""
    name = name or scratch_name()
    if dsn.dialect == "sqlite":
        with _sqlite_scratch(dsn, name) as scratch:
            yield scratch
        return
    if dsn.dialect == "postgresql":
        manager = _postgres_scratch(dsn, name, connect or _pg_connect)
    elif dsn.dialect == "mysql":
        manager = _mysql_scratch(dsn, name, connect or _mysql_connect)
    else:
        raise ValueError(f"unknown dialect {dsn.dialect!r}")
    with manager as scratch:
        yield scratch


@contextmanager
def _postgres_scratch(dsn: Dsn, name: str, connect: Connect) -> Iterator[Scratch]:
    import psycopg

    admin = connect(dsn)
    try:
        try:
            _run(admin, f'CREATE DATABASE "{name}"')
            scratch = Scratch(replace(dsn, database=name), name, "database")
        except psycopg.errors.InsufficientPrivilege:
            _run(admin, f'CREATE SCHEMA "{name}"')
            scratch = Scratch(dsn, name, "schema", schema=name)
    finally:
        admin.close()
    try:
        yield scratch
    finally:
        with _signals_deferred():
            admin = connect(dsn)
            try:
                if scratch.kind == "database":
                    _run(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                else:
                    _run(admin, f"SET lock_timeout = '{LOCK_WAIT_S}s'")
                    _run(admin, f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            finally:
                admin.close()


@contextmanager
def _mysql_scratch(dsn: Dsn, name: str, connect: Connect) -> Iterator[Scratch]:
    admin = connect(dsn)
    try:
        _run(admin, f"CREATE DATABASE `{name}`")
    finally:
        admin.close()
    try:
        yield Scratch(replace(dsn, database=name), name, "database")
    finally:
        with _signals_deferred():
            admin = connect(dsn)
            try:
                # A session still inside the scratch database (an interrupted statement) would hold a metadata lock
                # and make DROP DATABASE wait: end those sessions first (best effort: needs PROCESS/CONNECTION_ADMIN).
                # Failures are ignored: a session gone already, or no PROCESS privilege (the drop still tries).
                with suppress(Exception):
                    for (session,) in _run(admin, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s "
                                                  "AND ID <> CONNECTION_ID()", (name,)):
                        with suppress(Exception):
                            _run(admin, f"KILL {int(session)}")
                _run(admin, f"SET SESSION lock_wait_timeout = {LOCK_WAIT_S}")
                _run(admin, f"DROP DATABASE IF EXISTS `{name}`")
            finally:
                admin.close()


@contextmanager
def _sqlite_scratch(dsn: Dsn, name: str) -> Iterator[Scratch]:
    configured = Path(dsn.database or "premigrate.db")
    path = configured.parent / f"{configured.stem}.{name}.db"
    path.touch(exist_ok=False)
    try:
        yield Scratch(replace(dsn, database=str(path)), path.name, "file")
    finally:
        with _signals_deferred():
            for suffix in ("", "-wal", "-shm", "-journal"):
                try:
                    os.unlink(f"{path}{suffix}")
                except FileNotFoundError:
                    pass


def orphans(dsn: Dsn, *, connect: Connect | None = None) -> list[str]:
    """Scratch databases / schemas / files left by a process that could not clean up (kill -9)."""
    if dsn.dialect == "sqlite":
        configured = Path(dsn.database or "premigrate.db")
        return sorted(p.name for p in configured.parent.glob(f"{configured.stem}.{PREFIX}*.db"))
    conn = (connect or (_pg_connect if dsn.dialect == "postgresql" else _mysql_connect))(dsn)
    try:
        if dsn.dialect == "postgresql":
            rows = _run(conn, "SELECT datname FROM pg_database WHERE datname LIKE %s UNION "
                              "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", (PREFIX + "%",) * 2)
        else:
            rows = _run(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
                        (PREFIX + "%",))
        return sorted(str(r[0]) for r in rows)
    finally:
        conn.close()
