"""The scratch database of `verify` (engine/scratch.py): created beside the configured one, always dropped — after
success, after an error, with sessions still inside it, and on SIGTERM under the signal guard."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from premigrate.engine.scratch import PREFIX, Scratch, recreate, scratch_database
from premigrate.model.dsn import Dsn, parse_url
from tests.support import ROOT, TestDatabase, server_url


def configured(dialect: str, tmp_path: Path) -> Dsn:
    if dialect == "sqlite":
        return parse_url(f"sqlite:///{tmp_path / 'app.db'}")
    return parse_url(server_url(dialect))


def exists(dialect: str, dsn: Dsn, scratch_name: str, tmp_path: Path) -> bool:
    if dialect == "sqlite":
        return any(scratch_name in p.name for p in tmp_path.iterdir())
    admin = TestDatabase(dialect, server_url(dialect), "admin", admin_url=server_url(dialect))
    if dialect == "postgresql":
        rows = admin.query("SELECT 1 FROM pg_database WHERE datname = %s UNION ALL "
                           "SELECT 1 FROM pg_namespace WHERE nspname = %s", (scratch_name, scratch_name))
    else:
        rows = admin.query("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (scratch_name,))
    return bool(rows)


def use(scratch: Scratch, dialect: str) -> object:
    """Open a session on the scratch database and create a table there; the session is returned still open."""
    if dialect == "sqlite":
        import sqlite3

        lite = sqlite3.connect(scratch.dsn.database or "", isolation_level=None)
        lite.execute("CREATE TABLE t (id INTEGER)")
        return lite
    db = TestDatabase(dialect, scratch.dsn.redacted(), scratch.target)
    if dialect == "postgresql":
        import psycopg

        conn = psycopg.connect(host=scratch.dsn.host, port=scratch.dsn.port, user=scratch.dsn.user,
                               dbname=scratch.dsn.database, autocommit=False)
        if scratch.schema:
            conn.execute(f'SET search_path TO "{scratch.schema}"')
        conn.execute("CREATE TABLE t (id INTEGER)")  # left uncommitted on purpose: a session inside
        return conn
    conn = db.connect()
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE t (id INTEGER)")
        cur.execute("BEGIN")
        cur.execute("INSERT INTO t VALUES (1)")  # an open transaction holding a metadata lock
    return conn


class TestScratch:
    def test_created_and_dropped(self, dialect: str, tmp_path: Path) -> None:
        """The scratch database exists inside the block, with a prefixed unique name, and is gone after it."""
        dsn = configured(dialect, tmp_path)
        with scratch_database(dsn) as scratch:
            assert scratch.name.startswith(PREFIX)
            if dialect == "sqlite":  # beside the configured file, named after it
                assert tmp_path / f"app.{scratch.name}.db" == Path(scratch.dsn.database or "")
            assert exists(dialect, dsn, scratch.name, tmp_path)
            conn = use(scratch, dialect)
        conn.close()  # type: ignore[attr-defined]
        assert not exists(dialect, dsn, scratch.name, tmp_path)
        if dialect == "sqlite":
            assert [] == list(tmp_path.iterdir())  # no -wal/-shm/-journal left either

    def test_dropped_after_error_with_a_session_inside(self, dialect: str, tmp_path: Path) -> None:
        """An error inside the block propagates, and the database is dropped although a session still uses it."""
        dsn = configured(dialect, tmp_path)
        with pytest.raises(RuntimeError, match="boom"), scratch_database(dsn) as scratch:
            conn = use(scratch, dialect)
            raise RuntimeError("boom")
        assert not exists(dialect, dsn, scratch.name, tmp_path)
        with contextlib.suppress(Exception):  # the server may have ended it
            conn.close()  # type: ignore[attr-defined]

    def test_sigterm(self, dialect: str, tmp_path: Path) -> None:
        """SIGTERM under the signal guard: the block unwinds, the database is dropped, exit 143."""
        dsn_text = f"sqlite:///{tmp_path / 'app.db'}" if dialect == "sqlite" else server_url(dialect)
        script = textwrap.dedent(f"""
            import sys, time
            sys.path.insert(0, {str(ROOT)!r})
            from premigrate.engine.interrupts import SignalGuard
            from premigrate.engine.scratch import scratch_database
            from premigrate.errors import Interrupted
            from premigrate.model.dsn import parse_url
            from tests.integration.test_scratch import use
            try:
                with SignalGuard():
                    with scratch_database(parse_url({dsn_text!r})) as scratch:
                        conn = use(scratch, {dialect!r})
                        print(scratch.name, flush=True)
                        time.sleep(60)
            except Interrupted:
                sys.exit(143)
        """)
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
        assert proc.stdout is not None
        name = proc.stdout.readline().strip()
        assert name, proc.stderr.read() if proc.stderr else ""
        assert exists(dialect, configured(dialect, tmp_path), name, tmp_path)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
        assert 143 == proc.returncode, stderr
        assert not exists(dialect, configured(dialect, tmp_path), name, tmp_path)


def test_recreate(dialect: str, tmp_path: Path) -> None:
    """recreate empties the scratch database under the same name; it is still dropped at the end."""
    dsn = configured(dialect, tmp_path)
    with scratch_database(dsn) as scratch:
        conn = use(scratch, dialect)
        conn.close()  # type: ignore[attr-defined]
        recreate(scratch)
        assert exists(dialect, dsn, scratch.name, tmp_path)
        conn = use(scratch, dialect)  # creating table t again works: the database is empty
        conn.close()  # type: ignore[attr-defined]
    assert not exists(dialect, dsn, scratch.name, tmp_path)


def test_postgres_schema_when_databases_may_not_be_created(tmp_path: Path) -> None:
    """A role without CREATEDB gets a scratch schema in the configured database, dropped afterwards."""
    role = f"pm_test_role_{uuid.uuid4().hex[:8]}"
    db = TestDatabase.create("postgresql", tmp_path)
    try:
        db.admin(f"CREATE ROLE {role} LOGIN NOCREATEDB")
        db.admin(f"GRANT CREATE ON DATABASE {db.name} TO {role}")
        base = parse_url(db.url)
        dsn = Dsn("postgresql", base.host, base.port, role, None, db.name)
        with scratch_database(dsn) as scratch:
            assert ("schema", scratch.name) == (scratch.kind, scratch.schema)
            assert db.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", (scratch.name,))
            recreate(scratch)
            assert db.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", (scratch.name,))
        assert [] == db.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", (scratch.name,))
    finally:
        db.drop()
        db.admin(f"DROP ROLE IF EXISTS {role}")
