"""`premigrate serve` when a database session stalls after connecting (a proxy that holds the traffic): every probe
still answers, a stuck refresh is abandoned and reported unhealthy, probes do not pile up threads, /healthz turns
unhealthy after --unhealthy-after, and everything recovers with the network."""

from __future__ import annotations

import json
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.helpers import LIVENESS_S, LiveCli, free_port, host_port, up, write
from tests.faults.harness import FaultProxy
from tests.support import TestDatabase

PROBES = 30
# The refresh deadline of serve (10 s) plus a generous margin: a liveness bound, not a speed assertion.
ANSWER_BOUND_S = LIVENESS_S


def get(base: str, path: str, timeout: float = ANSWER_BOUND_S) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(base + path, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def eventually(check: Callable[[], bool], what: str, bound: float = ANSWER_BOUND_S) -> None:
    deadline = time.monotonic() + bound
    while not check():
        assert time.monotonic() < deadline, f"not within {bound} s: {what}"
        time.sleep(0.2)


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit((parts.scheme, f"{userinfo}127.0.0.1:{port}", parts.path, parts.query, ""))


@contextmanager
def history_locked(db: TestDatabase) -> Iterator[Callable[[], bool]]:
    """Hold a lock on the history table from another session; yields "is a session waiting for it?"."""
    conn = db.connect()
    try:
        if db.dialect == "postgresql":
            conn.autocommit = False
            conn.execute("LOCK TABLE premigrate_history IN ACCESS EXCLUSIVE MODE")

            def waiting() -> bool:
                return bool(db.query("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                     "AND wait_event_type = 'Lock'", (db.name,))[0][0])
        else:
            with conn.cursor() as cur:
                cur.execute("LOCK TABLES premigrate_history WRITE")

            def waiting() -> bool:
                return bool(db.query("SELECT count(*) FROM information_schema.processlist WHERE db = %s "
                                     "AND state LIKE 'Waiting for table%%'", (db.name,))[0][0])
        yield waiting
    finally:
        conn.close()  # releases the lock


def _record(answers: list[tuple[int, dict[str, Any]]], base: str) -> None:
    try:
        answers.append(get(base, "/health/database"))
    except (TimeoutError, urllib.error.URLError):
        pass  # no answer: the test says so


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_stalled_session_does_not_hang_serve(db: TestDatabase, migrations_dir: Path) -> None:
    """A session that stalls mid-refresh: the waiting probe answers 503 `unhealthy` naming the deadline, later
    probes answer too without adding threads, /healthz says unhealthy after --unhealthy-after, and all is healthy
    again once the network recovers."""
    write(migrations_dir, "001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY);\n")
    assert 0 == up(db, migrations_dir).returncode
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with FaultProxy(host_port(db.url, 5432 if db.dialect == "postgresql" else 3306)) as proxy:
        serve = LiveCli("serve", "--listen", f"127.0.0.1:{port}", "--dir", str(migrations_dir),
                        env={"DATABASE_URL": through(db.url, proxy.port), "PREMIGRATE_HEALTH_CACHE": "0",
                             "PREMIGRATE_UNHEALTHY_AFTER": "2s"}, cwd=migrations_dir.parent)
        try:
            serve.wait_for_event("serve_listening")
            assert 200 == get(base, "/health/database")[0]
            assert 200 == get(base, "/healthz")[0]

            # A refresh is under way, its query waiting on the server; then the network holds every byte.
            answers: list[tuple[int, dict[str, Any]]] = []
            with history_locked(db) as waiting:
                probe = threading.Thread(target=lambda: _record(answers, base), daemon=True)
                probe.start()
                eventually(waiting, "serve's refresh waits for the history lock")
                proxy.stall()
            probe.join(ANSWER_BOUND_S + 5)
            assert answers, f"the probe caught in the stalled refresh got no answer within {ANSWER_BOUND_S} s"
            [(status, document)] = answers
            assert (503, "unhealthy", False) == (status, document["status"], document["database"]["connected"])
            assert "did not answer within" in document["database"]["error"]

            # Probes during the stall: each answers (unhealthy), and the threads do not pile up.
            baseline = threads_of(serve.proc.pid)
            statuses: list[tuple[str, int]] = []
            for i in range(PROBES):
                path = ("/health/database", "/health/ready", "/metrics")[i % 3]
                try:
                    with urllib.request.urlopen(base + path, timeout=0.3) as resp:
                        statuses.append((path, resp.status))
                except urllib.error.HTTPError as exc:
                    statuses.append((path, exc.code))
                except (TimeoutError, urllib.error.URLError):
                    pass  # gave up waiting: the server thread must still end on its own
            eventually(lambda: threads_of(serve.proc.pid) <= baseline + 2,
                       f"threads back near {baseline} after {PROBES} probes")
            assert {503} >= {code for path, code in statuses if path.startswith("/health/")}
            assert 503 == get(base, "/health/ready")[0]

            # Failing for longer than --unhealthy-after: liveness says so.
            eventually(lambda: get(base, "/healthz")[0] == 503, "/healthz turns 503")
            status, document = get(base, "/healthz")
            assert "unhealthy" == document["status"] and "failing for" in document["reason"]

            # The network recovers: every endpoint answers healthy again, liveness too.
            proxy.resume()
            eventually(lambda: get(base, "/health/database")[0] == 200, "/health/database healthy again")
            assert 200 == get(base, "/healthz")[0]
            assert 200 == get(base, "/health/ready")[0]
            with urllib.request.urlopen(base + "/metrics", timeout=ANSWER_BOUND_S) as resp:
                assert b"premigrate_database_up 1.0" in resp.read()
        finally:
            if serve.proc.poll() is None:
                serve.proc.send_signal(signal.SIGTERM)
            result = serve.finish()
    assert 0 == result.returncode, result.stderr
    changes = [e["status"] for e in result.find("serve_health_changed")]
    assert ["healthy", "unhealthy", "healthy"] == changes
