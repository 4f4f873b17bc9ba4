"""Session fixtures for the production topologies: PgBouncer (transaction, session and statement pooling) in front of
the local PostgreSQL, a three-node Galera cluster, a private PostgreSQL primary with streaming standbys.

Servers are installed from Debian packages when missing, started on ports 6450-6499 with their data under one
temporary folder, and stopped by PID at the end of the session (also on Ctrl-C or SIGTERM). A failing test gets the
tail of every running server's log in its report. PREMIGRATE_TOPOLOGY_KEEP=1 keeps the folder for a post-mortem.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import pytest

from tests.topology.galera import GaleraCluster
from tests.topology.pgbouncer import PgBouncer
from tests.topology.pgha import PgServer
from tests.topology.procs import private_dir, running_servers, stop_all

LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
# Start-up seconds of each fixture, printed at the end of the run (CI keeps an eye on its budget).
TIMINGS: dict[str, float] = {}


def _sigterm_to_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def topology_dir() -> Iterator[Path]:
    """The one temporary folder that holds every topology server's data, configuration and logs."""
    # pytest runs its teardown on KeyboardInterrupt (Ctrl-C); SIGTERM would kill the run without one, leaving the
    # servers to PR_SET_PDEATHSIG. Make it a KeyboardInterrupt too, so they are stopped in order.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    path = private_dir("premigrate-topology-")
    try:
        yield path
    finally:
        stop_all()
        if os.environ.get("PREMIGRATE_TOPOLOGY_KEEP") != "1":
            shutil.rmtree(path, ignore_errors=True)


def _timed(name: str, start: Callable[[], Any]) -> Any:
    began = time.monotonic()
    result = start()
    TIMINGS[name] = time.monotonic() - began
    return result


def _bouncer(mode: str, topology_dir: Path) -> Iterator[PgBouncer]:
    bouncer = _timed(f"pgbouncer ({mode} pooling)", lambda: PgBouncer.start(mode, topology_dir))
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture(scope="session")
def pgbouncer_transaction(topology_dir: Path) -> Iterator[PgBouncer]:
    """PgBouncer in transaction pooling in front of the local PostgreSQL (127.0.0.1:5432)."""
    yield from _bouncer("transaction", topology_dir)


@pytest.fixture(scope="session")
def pgbouncer_session(topology_dir: Path) -> Iterator[PgBouncer]:
    """PgBouncer in session pooling in front of the local PostgreSQL."""
    yield from _bouncer("session", topology_dir)


@pytest.fixture(scope="session")
def pgbouncer_statement(topology_dir: Path) -> Iterator[PgBouncer]:
    """PgBouncer in statement pooling in front of the local PostgreSQL."""
    yield from _bouncer("statement", topology_dir)


@pytest.fixture(scope="session")
def galera(topology_dir: Path) -> Iterator[GaleraCluster]:
    """A three-node Galera cluster (MariaDB + galera-4), every node synced."""
    cluster = _timed("galera (3 nodes)", lambda: GaleraCluster.start(topology_dir))
    TIMINGS.update({f"  galera {k}": v for k, v in cluster.timings.items() if k != "total_s"})
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def galera_own(topology_dir: Path) -> Iterator[GaleraCluster]:
    """A three-node cluster of one test's own, for a test that kills a node: the shared `galera` must stay whole
    for the tests after it."""
    base = topology_dir / f"own_{uuid.uuid4().hex[:6]}"
    base.mkdir()
    cluster = _timed("galera (3 nodes, one test's own)", lambda: GaleraCluster.start(base))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_primary(topology_dir: Path) -> Iterator[PgServer]:
    """A private PostgreSQL primary (trust for postgres, scram-sha-256 for other roles)."""
    primary = _timed("postgres primary", lambda: PgServer.primary(topology_dir))
    try:
        yield primary
    finally:
        primary.stop()


@pytest.fixture
def pg_standby(pg_primary: PgServer, topology_dir: Path) -> Iterator[PgServer]:
    """A fresh hot standby streaming from `pg_primary`, for one test (it may promote it)."""
    name = f"standby_{uuid.uuid4().hex[:6]}"
    standby = _timed(f"postgres standby {name}", lambda: pg_primary.standby(topology_dir, name))
    try:
        yield standby
    finally:
        standby.stop()


@pytest.fixture
def local_pg_database() -> Iterator[str]:
    """A new database on the local PostgreSQL for one test; its name. Dropped WITH (FORCE): a pooler may still hold
    idle server connections to it."""
    name = f"pm_topo_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(LOCAL_POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        with psycopg.connect(LOCAL_POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def galera_database(galera: GaleraCluster) -> Iterator[str]:
    """A new database on the Galera cluster (created through node 1, replicated to all) for one test."""
    name = f"pm_topo_{uuid.uuid4().hex[:12]}"
    conn = galera.nodes[0].connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
    finally:
        conn.close()
    try:
        yield name
    finally:
        for node in galera.nodes:
            if node.server is not None and node.server.alive():
                conn = node.connect()
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"DROP DATABASE IF EXISTS {name}")
                finally:
                    conn.close()
                break


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    report = outcome.get_result()
    if report.failed and "/tests/topology/" in str(item.fspath):
        for server in running_servers():
            report.sections.append((f"server log: {server.name}", server.logs()))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("topology fixtures: start-up seconds")
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{name:<40} {seconds:7.1f}")
