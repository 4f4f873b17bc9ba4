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
recreate() empties it under the same name (verify's reset, when a database must be rebuilt from empty).
A `kill -9` cannot be cleaned up after: the name carries its creation time (UTC) so orphans are easy to find
(orphans() lists them).
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
    """A scratch database, schema or file that verify creates, works in and drops."""
    dsn: Dsn  # where to connect for the scratch database
    name: str  # database, schema or file name
    kind: str  # database | schema | file
    origin: Dsn  # the configured database it was created beside (admin sessions connect there)
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
    import pymysql

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
    scratch = _create(dsn, name or scratch_name(), connect)
    try:
        yield scratch
    finally:
        with _signals_deferred():
            _drop(scratch, connect)


def recreate(scratch: Scratch, *, connect: Connect | None = None) -> None:
    """Empty the scratch database: drop it and create it again under the same name. Sessions on it are ended
    (SQLite: their file is gone): reconnect afterwards."""
    with _signals_deferred():
        _drop(scratch, connect)
    if scratch.kind == "file":
        Path(scratch.dsn.database or "").touch()  # the same path, whether created beside a file or given
        return
    _create(scratch.origin, scratch.name, connect, kind=scratch.kind)


def _connector(dialect: str, connect: Connect | None) -> Connect:
    return connect or (_pg_connect if dialect == "postgresql" else _mysql_connect)


def _create(dsn: Dsn, name: str, connect: Connect | None, kind: str | None = None) -> Scratch:
    if dsn.dialect == "sqlite":
        configured = Path(dsn.database or "premigrate.db")
        path = configured.parent / f"{configured.stem}.{name}.db"
        path.touch(exist_ok=False)
        return Scratch(replace(dsn, database=str(path)), name, "file", dsn)
    if dsn.dialect not in ("postgresql", "mysql"):
        raise ValueError(f"unknown dialect {dsn.dialect!r}")
    admin = _connector(dsn.dialect, connect)(dsn)
    try:
        if dsn.dialect == "mysql":
            _run(admin, f"CREATE DATABASE `{name}`")
            return Scratch(replace(dsn, database=name), name, "database", dsn)
        import psycopg

        if kind != "schema":
            try:
                _run(admin, f'CREATE DATABASE "{name}"')
                return Scratch(replace(dsn, database=name), name, "database", dsn)
            except psycopg.errors.InsufficientPrivilege:
                pass  # managed services: no CREATEDB; a schema in the configured database does as well
        _run(admin, f'CREATE SCHEMA "{name}"')
        return Scratch(dsn, name, "schema", dsn, schema=name)
    finally:
        admin.close()


def _drop(scratch: Scratch, connect: Connect | None) -> None:
    if scratch.kind == "file":
        for suffix in ("", "-wal", "-shm", "-journal"):
            with suppress(FileNotFoundError):
                os.unlink(f"{scratch.dsn.database}{suffix}")
        return
    admin = _connector(scratch.origin.dialect, connect)(scratch.origin)
    try:
        if scratch.kind == "schema":
            _run(admin, f"SET lock_timeout = '{LOCK_WAIT_S}s'")
            _run(admin, f'DROP SCHEMA IF EXISTS "{scratch.name}" CASCADE')
        elif scratch.origin.dialect == "postgresql":
            _run(admin, f'DROP DATABASE IF EXISTS "{scratch.name}" WITH (FORCE)')
        else:
            # A session still inside the scratch database (an interrupted statement) would hold a metadata lock and
            # make DROP DATABASE wait: end those first. Failures are ignored: a session gone already, or no
            # PROCESS privilege (the drop still tries, bounded by lock_wait_timeout).
            with suppress(Exception):
                for (session,) in _run(admin, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s "
                                              "AND ID <> CONNECTION_ID()", (scratch.name,)):
                    with suppress(Exception):
                        _run(admin, f"KILL {int(session)}")
            _run(admin, f"SET SESSION lock_wait_timeout = {LOCK_WAIT_S}")
            _run(admin, f"DROP DATABASE IF EXISTS `{scratch.name}`")
    finally:
        admin.close()


def orphans(dsn: Dsn, *, connect: Connect | None = None) -> list[str]:
    """Scratch databases / schemas / files left by a process that could not clean up (kill -9)."""
    if dsn.dialect == "sqlite":
        configured = Path(dsn.database or "premigrate.db")
        return sorted(p.name for p in configured.parent.glob(f"{configured.stem}.{PREFIX}*.db"))
    conn = _connector(dsn.dialect, connect)(dsn)
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
