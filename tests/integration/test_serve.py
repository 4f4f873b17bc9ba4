"""`premigrate serve`: the sidecar's endpoints against real databases, with serve() running in a thread."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import premigrate.commands.serve.health as serve_module  # HealthState looks collect up there
from premigrate.config import Config, load_config
from premigrate.engine.sessions import Sessions
from premigrate.errors import UsageError
from premigrate.engine.interrupts import SignalGuard
from premigrate.commands.serve import parse_listen, serve
from tests.support import TestDatabase, popen_cli, run_cli

USERS = "CREATE TABLE users (id integer PRIMARY KEY);\n"
ORDERS = "CREATE TABLE orders (id integer PRIMARY KEY, user_id integer);\n"
INVOICES = "CREATE TABLE invoices (id integer PRIMARY KEY);\n"
PASSWORD = "S3cret-Pw-42"


class RecordingLog:
    """A stand-in for the structlog logger: records (event, level, fields)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _record(self, level: str, event: str, **fields: Any) -> None:
        fields.pop("exc_info", None)
        with self._lock:
            self.events.append({"event": event, "level": level, **fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._record("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._record("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._record("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._record("error", event, **fields)

    def find(self, event: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["event"] == event]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Served:
    base: str
    log: RecordingLog
    result: dict[str, Any] = field(default_factory=dict)

    def request(self, path: str, method: str = "GET") -> Response:
        req = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())

    def get_json(self, path: str) -> tuple[int, Any]:
        response = self.request(path)
        assert response.headers["content-type"] == "application/json"
        return response.status, response.json


def make_config(url: str, directory: Path) -> Config:
    return load_config("serve", {"database_url": url, "dir": str(directory)}, {})


@contextmanager
def running(config: Config, **kwargs: Any) -> Iterator[Served]:
    """serve() in a thread on a port the OS picks; stopped through stop_event, must return 0."""
    log = RecordingLog()
    ready, stop = threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["code"] = serve(config, log, listen="127.0.0.1:0", ready_event=ready, stop_event=stop, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc
            ready.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert ready.wait(15), "serve() did not start listening"
    assert "error" not in result, result.get("error")
    port = log.find("serve_listening")[0]["port"]
    served = Served(f"http://127.0.0.1:{port}", log, result)
    try:
        yield served
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive(), "serve() did not stop"
        assert 0 == result.get("code"), result


def up(db: TestDatabase, directory: Path) -> int:
    # --lint off: these tests are about serve, not about what lint thinks of their SQL.
    return run_cli("up", "--dir", str(directory), env={"DATABASE_URL": db.url, "PREMIGRATE_LINT": "off"}).returncode


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def applied(db: TestDatabase, migrations_dir: Path) -> Path:
    """Two migrations (users, orders), both applied by `premigrate up`."""
    (migrations_dir / "001_create_users.sql").write_text(USERS)
    (migrations_dir / "002_create_orders.sql").write_text(ORDERS)
    assert 0 == up(db, migrations_dir)
    return migrations_dir


# -- the documented shape of /health/database --------------------------------------------------------------------------

REQUIRED = {
    "status": str,
    "timestamp": str,
    "database": {"connected": bool, "response_time_ms": int},
    "migrations": {"applied": list, "latest": (str, type(None)), "count": int, "pending": list, "failed": list},
    "schema": {"critical_tables": list, "all_tables_exist": bool},
}
OPTIONAL = {("database", "error"): str, ("migrations", "warning"): str, ("migrations", "error"): str}


def assert_shape(document: dict[str, Any], *, optional: set[tuple[str, str]] = frozenset()) -> None:  # type: ignore[assignment]
    """Exactly the documented keys (plus the named optional ones), each of the documented type."""
    assert set(REQUIRED) == set(document)
    for section, spec in REQUIRED.items():
        if not isinstance(spec, dict):
            assert isinstance(document[section], spec), section
            continue
        expected_keys = set(spec) | {key for sec, key in optional if sec == section}
        assert expected_keys == set(document[section]), section
        for key, kind in spec.items():
            value = document[section][key]
            if kind is int:
                assert type(value) is int, key  # not a bool
            else:
                assert isinstance(value, kind), key
        for sec, key in optional:
            if sec == section:
                assert isinstance(document[section][key], OPTIONAL[(sec, key)]), key
    assert document["status"] in ("healthy", "degraded", "unhealthy")
    assert all(isinstance(v, str) for k in ("applied", "pending", "failed") for v in document["migrations"][k])
    for table in document["schema"]["critical_tables"]:
        assert {"name", "exists"} == set(table) and isinstance(table["name"], str) and isinstance(table["exists"], bool)
    assert document["timestamp"].endswith("Z")
    datetime.fromisoformat(document["timestamp"].replace("Z", "+00:00"))


def metrics(served: Served) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    response = served.request("/metrics")
    assert 200 == response.status
    assert response.headers["content-type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(response.body.decode()):
        assert "gauge" == family.type
        (sample,) = family.samples
        values[sample.name] = sample.value
    return values


# -- tests -------------------------------------------------------------------------------------------------------------

class TestEndpoints:
    def test_healthz(self, db: TestDatabase, applied: Path) -> None:
        """/healthz answers 200 {"status": "ok"} without looking at the database."""
        with running(make_config(db.url, applied)) as served:
            assert (200, {"status": "ok"}) == served.get_json("/healthz")
            assert [] == served.log.find("serve_health_changed")

    def test_unknown_path_is_404(self, db: TestDatabase, applied: Path) -> None:
        """An unknown path is a 404 with a JSON body that lists the endpoints."""
        with running(make_config(db.url, applied)) as served:
            status, body = served.get_json("/nope")
            assert 404 == status
            assert "/health/database" in body["endpoints"]

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
    def test_other_methods_are_405(self, db: TestDatabase, applied: Path, method: str) -> None:
        """Any method but GET (and HEAD) is 405 with an Allow header."""
        with running(make_config(db.url, applied)) as served:
            response = served.request("/health/database", method=method)
            assert (405, "GET, HEAD") == (response.status, response.headers["allow"])
            assert "error" in response.json

    def test_head(self, db: TestDatabase, applied: Path) -> None:
        """HEAD answers the status of GET without a body."""
        with running(make_config(db.url, applied)) as served:
            response = served.request("/health/ready", method="HEAD")
            assert (200, b"") == (response.status, response.body)

    def test_lifecycle_events(self, db: TestDatabase, applied: Path) -> None:
        """serve logs serve_listening with the bound port, and serve_stopped with the number of refreshes."""
        with running(make_config(db.url, applied), cache_seconds=0) as served:
            served.get_json("/health/database")
            served.get_json("/health/ready")
        (listening,) = served.log.find("serve_listening")
        assert ("127.0.0.1", True) == (listening["host"], listening["port"] > 0)
        (stopped,) = served.log.find("serve_stopped")
        assert ("stop requested", 2) == (stopped["reason"], stopped["refreshes"])


class TestHealthDatabase:
    def test_healthy_shape(self, db: TestDatabase, applied: Path) -> None:
        """Fully migrated, every expected table present: 200 healthy, exactly the documented keys and types."""
        with running(make_config(db.url, applied), expect_tables=["users", "orders"]) as served:
            status, document = served.get_json("/health/database")
        assert 200 == status
        assert_shape(document)
        assert "healthy" == document["status"]
        assert True is document["database"]["connected"]
        assert {"applied": ["1", "2"], "latest": "2", "count": 2, "pending": [], "failed": []} == document["migrations"]
        assert {"critical_tables": [{"name": "users", "exists": True}, {"name": "orders", "exists": True}],
                "all_tables_exist": True} == document["schema"]

    def test_degraded_when_pending_then_healthy_after_up(self, db: TestDatabase, applied: Path) -> None:
        """A new file in the folder is seen on the next refresh (degraded, 200); after `up`, healthy again."""
        with running(make_config(db.url, applied), cache_seconds=0) as served:
            assert "healthy" == served.get_json("/health/database")[1]["status"]
            (applied / "003_create_invoices.sql").write_text(INVOICES)
            status, document = served.get_json("/health/database")
            assert 200 == status
            assert_shape(document, optional={("migrations", "warning")})
            assert ("degraded", ["3"], ["1", "2"]) == (
                document["status"], document["migrations"]["pending"], document["migrations"]["applied"])
            assert "1 migration pending: 3" == document["migrations"]["warning"]
            assert 0 == up(db, applied)
            status, document = served.get_json("/health/database")
            assert (200, "healthy", ["1", "2", "3"], "3") == (
                status, document["status"], document["migrations"]["applied"], document["migrations"]["latest"])
            assert_shape(document)
        changes = [e["status"] for e in served.log.find("serve_health_changed")]
        assert ["healthy", "degraded", "healthy"] == changes

    def test_degraded_when_expected_table_missing(self, db: TestDatabase, applied: Path) -> None:
        """An --expect-table that does not exist: degraded (200), all_tables_exist false."""
        with running(make_config(db.url, applied), expect_tables=["users", "payments"]) as served:
            status, document = served.get_json("/health/database")
        assert (200, "degraded") == (status, document["status"])
        assert_shape(document, optional={("migrations", "warning")})
        assert {"critical_tables": [{"name": "users", "exists": True}, {"name": "payments", "exists": False}],
                "all_tables_exist": False} == document["schema"]
        assert "expected table missing: payments" == document["migrations"]["warning"]

    def test_unhealthy_when_a_failed_migration_is_recorded(self, db: TestDatabase, applied: Path) -> None:
        """A failed row (a no-transaction file that failed): unhealthy, 503, its id under failed."""
        (applied / "003_broken.sql").write_text(
            "-- premigrate:no-transaction\nCREATE TABLE t_ok (id integer);\nINSERT INTO no_such_table VALUES (1);\n")
        assert 4 == up(db, applied)
        with running(make_config(db.url, applied)) as served:
            status, document = served.get_json("/health/database")
            ready_status, ready = served.get_json("/health/ready")
        assert (503, "unhealthy") == (status, document["status"])
        assert_shape(document, optional={("migrations", "error")})
        assert (["1", "2"], ["3"], True) == (
            document["migrations"]["applied"], document["migrations"]["failed"], document["database"]["connected"])
        assert "003_broken.sql" in document["migrations"]["error"]
        assert (503, "not_ready") == (ready_status, ready["status"])

    def test_interrupted_placeholder_file_is_resumable_not_changed(self, db: TestDatabase,
                                                                   migrations_dir: Path) -> None:
        """A no-transaction file with placeholders, interrupted between two statements, is what `check` and `up`
        call it: resumable (degraded, in progress), not a changed file (unhealthy, resume_mismatch)."""
        (migrations_dir / "001_a.sql").write_text(
            "-- premigrate:no-transaction\n-- premigrate:placeholders\nCREATE TABLE ${PREFIX}_a (id integer);\n"
            "CREATE TABLE ${PREFIX}_b (id integer);\n")
        env = {"DATABASE_URL": db.url, "PREMIGRATE_LINT": "off", "PREMIGRATE_PLACEHOLDER_PREFIX": "shop"}
        assert 0 == run_cli("up", "--dir", str(migrations_dir), env=env).returncode
        # As a kill between statement 1 and 2 leaves it: statement 1 done, nothing in doubt, statement 2 not run.
        db.execute("DROP TABLE shop_b")
        db.execute("UPDATE premigrate_history SET state = 'in_progress', statements_done = 1, statement_started = 1")
        assert 7 == run_cli("check", "--dir", str(migrations_dir), env=env).returncode
        config = load_config("serve", {"database_url": db.url, "dir": str(migrations_dir)},
                             {"PREMIGRATE_PLACEHOLDER_PREFIX": "shop"})
        with running(config) as served:
            status, document = served.get_json("/health/database")
        assert "cannot be resumed" not in json.dumps(document)
        assert (["1"], ["1"]) == (document["migrations"]["pending"], document["migrations"]["failed"])
        assert "a migration run is in progress or was interrupted: 1" == document["migrations"]["error"]

    def test_unhealthy_on_drift(self, db: TestDatabase, applied: Path) -> None:
        """An applied file changed since: unhealthy (503), the drift named in migrations.error."""
        (applied / "001_create_users.sql").write_text(USERS + "-- edited after it was applied\nSELECT 1;\n")
        with running(make_config(db.url, applied)) as served:
            status, document = served.get_json("/health/database")
        assert (503, "unhealthy") == (status, document["status"])
        assert_shape(document, optional={("migrations", "error")})
        assert "changed after it was applied" in document["migrations"]["error"]

    def test_unhealthy_when_the_database_stops(self, db: TestDatabase, applied: Path) -> None:
        """Healthy, then the database goes away (dropped / file removed): unhealthy, 503, connected false."""
        with running(make_config(db.url, applied), cache_seconds=0) as served:
            assert (200, "healthy") == (lambda r: (r[0], r[1]["status"]))(served.get_json("/health/database"))
            if db.dialect == "sqlite":
                assert db.path is not None
                db.path.unlink()
            else:
                db.drop()
            status, document = served.get_json("/health/database")
            values = metrics(served)
        assert (503, "unhealthy", False) == (status, document["status"], document["database"]["connected"])
        assert_shape(document, optional={("database", "error")})
        assert {"applied": [], "latest": None, "count": 0, "pending": [], "failed": []} == document["migrations"]
        assert document["database"]["error"]
        assert {"premigrate_database_up": 0.0} == {k: v for k, v in values.items() if k != "premigrate_database_response_seconds"}

    def test_unreachable_server_never_shows_the_password(self, dialect: str, tmp_path: Path,
                                                         migrations_dir: Path) -> None:
        """Nothing listens at the URL's port: unhealthy, 503, and the URL's password is nowhere in the answers."""
        (migrations_dir / "001_create_users.sql").write_text(USERS)
        if dialect == "sqlite":
            url = f"sqlite:///{tmp_path}/no/such/dir/app.db"  # SQLite URLs carry no password
        else:
            url = f"{dialect}://app:{PASSWORD}@127.0.0.1:{free_port()}/app"
        with running(make_config(url, migrations_dir), expect_tables=["users"]) as served:
            response = served.request("/health/database")
            ready = served.request("/health/ready")
            metrics_body = served.request("/metrics").body
        document = response.json
        assert (503, "unhealthy", False) == (response.status, document["status"], document["database"]["connected"])
        assert_shape(document, optional={("database", "error")})
        assert {"critical_tables": [{"name": "users", "exists": False}], "all_tables_exist": False} == \
            document["schema"]
        assert 503 == ready.status and "database unreachable" in ready.json["reason"]
        everything = response.body + ready.body + metrics_body + json.dumps(served.log.events, default=str).encode()
        assert PASSWORD.encode() not in everything
        if dialect != "sqlite":
            assert "app:***@127.0.0.1" in document["database"]["error"]

    def test_broken_folder_is_unhealthy(self, db: TestDatabase, applied: Path) -> None:
        """Two files with the same version: unhealthy (503) with the folder's error; the database part still shows."""
        (applied / "2_duplicate.sql").write_text("SELECT 1;\n")
        with running(make_config(db.url, applied)) as served:
            status, document = served.get_json("/health/database")
            ready_status, ready = served.get_json("/health/ready")
        assert (503, "unhealthy") == (status, document["status"])
        assert_shape(document, optional={("migrations", "error")})
        assert document["migrations"]["error"].startswith("migrations folder: ")
        assert (["1", "2"], []) == (document["migrations"]["applied"], document["migrations"]["pending"])
        assert 503 == ready_status and ready["reason"].startswith("migrations folder: ")


class TestReady:
    def test_not_ready_while_pending_then_ready(self, db: TestDatabase, migrations_dir: Path) -> None:
        """503 with the pending ids while `check` would exit 7; 200 once `up` has run (check exits 0)."""
        (migrations_dir / "001_create_users.sql").write_text(USERS)
        assert 0 == up(db, migrations_dir)
        (migrations_dir / "002_create_orders.sql").write_text(ORDERS)
        env = {"DATABASE_URL": db.url}
        with running(make_config(db.url, migrations_dir), cache_seconds=0) as served:
            assert 7 == run_cli("check", "--dir", str(migrations_dir), env=env).returncode
            status, body = served.get_json("/health/ready")
            assert (503, "not_ready", "1 migration pending: 2") == (status, body["status"], body["reason"])
            assert 0 == up(db, migrations_dir)
            assert 0 == run_cli("check", "--dir", str(migrations_dir), env=env).returncode
            status, body = served.get_json("/health/ready")
            assert (200, "ready") == (status, body["status"])

    def test_not_ready_while_after_migrate_is_owed(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A failed afterMigrate leaves a debt (model/owed.py) that `check` counts (7): not ready until `up` pays it."""
        (migrations_dir / "001_create_users.sql").write_text(USERS)
        (migrations_dir / "afterMigrate.sql").write_text("INSERT INTO no_such_table VALUES (1);\n")
        assert 4 == up(db, migrations_dir)
        with running(make_config(db.url, migrations_dir), cache_seconds=0) as served:
            status, body = served.get_json("/health/ready")
            assert (503, "not_ready") == (status, body["status"])
            assert "afterMigrate failed in the run of" in body["reason"]
            assert 1 == metrics(served)["premigrate_callbacks_owed"]
            assert "afterMigrate failed" in served.get_json("/health/database")[1]["migrations"]["warning"]
            (migrations_dir / "afterMigrate.sql").write_text("SELECT 1;\n")
            assert 0 == up(db, migrations_dir)
            status, body = served.get_json("/health/ready")
            assert (200, "ready") == (status, body["status"])
            assert 0 == metrics(served)["premigrate_callbacks_owed"]

    def test_missing_expected_table_does_not_fail_readiness(self, db: TestDatabase, applied: Path) -> None:
        """Readiness follows `check` only: a missing --expect-table degrades /health/database but stays ready."""
        with running(make_config(db.url, applied), expect_tables=["payments"]) as served:
            assert 200 == served.get_json("/health/ready")[0]
            assert "degraded" == served.get_json("/health/database")[1]["status"]


class TestMetrics:
    def test_values(self, db: TestDatabase, applied: Path) -> None:
        """The gauges carry the database state: up, applied, pending, failed, newest applied_at."""
        (applied / "003_create_invoices.sql").write_text(INVOICES)
        newest = max(r[0] for r in db.query("SELECT applied_at FROM premigrate_history"))
        if isinstance(newest, str):  # SQLite stores ISO text
            newest = datetime.fromisoformat(newest)
        if newest.tzinfo is None:
            newest = newest.replace(tzinfo=timezone.utc)
        with running(make_config(db.url, applied)) as served:
            values = metrics(served)
        response_seconds = values.pop("premigrate_database_response_seconds")
        assert 0 < response_seconds < 3
        last = values.pop("premigrate_last_applied_timestamp_seconds")
        assert abs(newest.timestamp() - last) < 1.0
        assert {"premigrate_database_up": 1.0, "premigrate_migrations_applied": 2.0,
                "premigrate_migrations_pending": 1.0, "premigrate_migrations_failed": 0.0,
                "premigrate_problems": 0.0, "premigrate_callbacks_owed": 0.0} == values

    def test_drift_is_a_problem(self, db: TestDatabase, applied: Path) -> None:
        """An applied file edited since: nothing pending or failed, but premigrate_problems says `up` refuses."""
        script = sorted(applied.glob("*.sql"))[0]
        script.write_text(script.read_text() + "-- edited\nSELECT 1;\n")
        with running(make_config(db.url, applied)) as served:
            values = metrics(served)
        assert (0.0, 0.0, 1.0) == (values["premigrate_migrations_pending"], values["premigrate_migrations_failed"],
                                   values["premigrate_problems"])

    def test_empty_database(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Nothing applied yet: applied 0, last applied timestamp 0, every file pending."""
        (migrations_dir / "001_create_users.sql").write_text(USERS)
        db.execute("CREATE TABLE unrelated (id integer)")  # so that the SQLite file exists
        with running(make_config(db.url, migrations_dir)) as served:
            values = metrics(served)
        assert (1.0, 0.0, 1.0, 0.0) == (values["premigrate_database_up"], values["premigrate_migrations_applied"],
                                        values["premigrate_migrations_pending"],
                                        values["premigrate_last_applied_timestamp_seconds"])


class TestCache:
    def test_one_refresh_serves_the_window(self, db: TestDatabase, applied: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        """Requests within the cache window, to every endpoint and concurrently, cause one database refresh."""
        calls: list[float] = []
        original = serve_module.collect

        def counting(*args: Any, **kwargs: Any) -> Any:
            calls.append(time.monotonic())
            time.sleep(0.2)  # a slow database: concurrent requests must wait for this refresh, not start their own
            return original(*args, **kwargs)

        monkeypatch.setattr(serve_module, "collect", counting)
        with running(make_config(db.url, applied), cache_seconds=60) as served:
            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(lambda p: served.request(p).status,
                                         ["/health/database", "/health/ready", "/metrics"] * 4))
            first = served.get_json("/health/database")[1]
            second = served.get_json("/health/database")[1]
        assert [200] * 12 == statuses
        assert 1 == len(calls)
        assert first["timestamp"] == second["timestamp"]
        assert 1 == served.log.find("serve_stopped")[0]["refreshes"]

    def test_expired_window_refreshes(self, db: TestDatabase, applied: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """After the window, the next request refreshes again."""
        calls: list[int] = []
        original = serve_module.collect
        monkeypatch.setattr(serve_module, "collect", lambda *a, **k: calls.append(1) or original(*a, **k))
        with running(make_config(db.url, applied), cache_seconds=0.3) as served:
            served.get_json("/health/database")
            served.get_json("/health/database")
            time.sleep(0.4)
            served.get_json("/health/database")
        assert 2 == len(calls)


class _StuckSession:
    """A session whose reads never return until abort() cuts it (or, with `obeys_abort=False`, until released)."""

    def __init__(self, obeys_abort: bool = True) -> None:
        self.obeys_abort = obeys_abort
        self.aborts = 0
        self.released = threading.Event()

    def abort(self) -> None:
        self.aborts += 1
        if self.obeys_abort:
            self.released.set()


def _stuck_then(real: Any, session: _StuckSession, calls: list[float]) -> Any:
    """A collect() whose first call hangs on `session`; later calls are the real one."""

    def collect(*args: Any, on_session: Any = None, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        if len(calls) == 1:
            on_session(session)
            session.released.wait(60)
        return real(*args, on_session=on_session, **kwargs)

    return collect


class TestDeadlines:
    """A refresh that overruns its deadline is abandoned and cut; probes answer and never pile up behind it."""

    def test_overrun_is_reported_and_its_session_cut(self, db: TestDatabase, applied: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
        """The probe waiting on a stuck refresh answers 503 naming the deadline, the session is aborted once, and
        once the cut refresh has ended the next one is healthy."""
        session, calls = _StuckSession(), []
        monkeypatch.setattr(serve_module, "collect", _stuck_then(serve_module.collect, session, calls))
        with running(make_config(db.url, applied), cache_seconds=0, refresh_deadline=0.5) as served:
            status, document = served.get_json("/health/database")
            assert (503, False) == (status, document["database"]["connected"])
            assert "did not answer within 0.5 s" in document["database"]["error"]
            assert 1 == session.aborts
            deadline = time.monotonic() + 30
            while served.get_json("/health/database")[0] != 200:
                assert time.monotonic() < deadline, "never healthy again after the cut session ended"
                time.sleep(0.05)
        assert 1 == session.aborts

    def test_session_opened_after_the_deadline_is_cut(self, db: TestDatabase, applied: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
        """A connection that completes only after its refresh was abandoned is cut the moment it is handed over."""
        session, connected, aborted_at_handover = _StuckSession(), threading.Event(), []
        real = serve_module.collect

        def slow_connect(*args: Any, on_session: Any = None, **kwargs: Any) -> Any:
            connected.wait(60)  # the connection completes late
            on_session(session)
            aborted_at_handover.append(session.aborts)
            return real(*args, on_session=on_session, **kwargs)

        monkeypatch.setattr(serve_module, "collect", slow_connect)
        with running(make_config(db.url, applied), cache_seconds=60, refresh_deadline=0.3) as served:
            assert 503 == served.get_json("/health/database")[0]
            assert 0 == session.aborts  # no session yet to cut
            connected.set()
            deadline = time.monotonic() + 30
            while not aborted_at_handover:
                assert time.monotonic() < deadline, "the late session was never handed over"
                time.sleep(0.05)
        assert [1] == aborted_at_handover

    def test_no_new_refresh_while_the_stuck_one_lingers(self, db: TestDatabase, applied: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
        """While an abandoned refresh has not ended, concurrent probes all answer 503 without starting refreshes
        (so without threads of their own piling up); once it ends, refreshing resumes."""
        session, calls = _StuckSession(obeys_abort=False), []
        monkeypatch.setattr(serve_module, "collect", _stuck_then(serve_module.collect, session, calls))
        with running(make_config(db.url, applied), cache_seconds=0, refresh_deadline=0.3) as served:
            assert 503 == served.get_json("/health/database")[0]
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda p: served.get_json(p), ["/health/database", "/health/ready"] * 8))
            assert {503} == {status for status, _ in answers}
            assert any("has not ended yet" in str(document) for _, document in answers)
            assert 1 == len(calls)
            session.released.set()
            deadline = time.monotonic() + 30
            while served.get_json("/health/database")[0] != 200:
                assert time.monotonic() < deadline, "never healthy again after the stuck refresh ended"
                time.sleep(0.05)

    def test_liveness_turns_unhealthy_after_the_configured_time(self, db: TestDatabase, applied: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
        """/healthz stays 200 while refreshes fail for less than --unhealthy-after, then answers 503 with the reason,
        and 200 again after a refresh succeeds."""
        down = {"on": True}
        real = serve_module.collect

        def collect(config: Config, sessions: Any, log: Any, *args: Any, **kwargs: Any) -> Any:
            if down["on"]:
                # A reading of a database that is down: its configuration and the sessions it opens, both.
                broken = load_config("serve", {"database_url": f"postgresql://u:{PASSWORD}@127.0.0.1:{free_port()}/x",
                                               "dir": str(applied)}, {})
                return real(broken, Sessions(broken, log), log, *args, **kwargs)
            return real(config, sessions, log, *args, **kwargs)

        monkeypatch.setattr(serve_module, "collect", collect)
        with running(make_config(db.url, applied), cache_seconds=0, unhealthy_after=0.5) as served:
            assert 503 == served.get_json("/health/database")[0]
            assert 200 == served.get_json("/healthz")[0]
            time.sleep(0.6)
            assert 503 == served.get_json("/health/database")[0]
            status, document = served.get_json("/healthz")
            assert (503, "unhealthy") == (status, document["status"])
            assert "failing for" in document["reason"] and PASSWORD not in json.dumps(document)
            down["on"] = False
            assert 200 == served.get_json("/health/database")[0]
            assert 200 == served.get_json("/healthz")[0]

    def test_liveness_zero_never_looks_at_refreshes(self, tmp_path: Path, migrations_dir: Path) -> None:
        """--unhealthy-after 0: /healthz answers 200 however long the database has been unreachable."""
        url = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
        with running(make_config(url, migrations_dir), cache_seconds=0, unhealthy_after=0) as served:
            assert 503 == served.get_json("/health/database")[0]
            time.sleep(0.2)
            assert 503 == served.get_json("/health/database")[0]
            assert 200 == served.get_json("/healthz")[0]


class TestListen:
    @pytest.mark.parametrize(("value", "expected"), [
        pytest.param("0.0.0.0:8080", ("0.0.0.0", 8080), id="ipv4"),
        pytest.param(":8080", ("0.0.0.0", 8080), id="all-interfaces"),
        pytest.param("9090", ("0.0.0.0", 9090), id="bare-port"),
        pytest.param("localhost:80", ("localhost", 80), id="name"),
        pytest.param("[::]:8080", ("::", 8080), id="ipv6"),
        pytest.param("[::1]:0", ("::1", 0), id="ipv6-any-port"),
    ])
    def test_parses(self, value: str, expected: tuple[str, int]) -> None:
        """HOST:PORT, :PORT, PORT and [IPv6]:PORT are accepted."""
        assert expected == parse_listen(value)

    @pytest.mark.parametrize("value", ["", "nope", "host:", "host:port", ":70000", "::1:80", "[::1]80", "[]:80"])
    def test_rejects(self, value: str) -> None:
        """Anything else is a usage error (exit 2)."""
        with pytest.raises(UsageError) as info:
            parse_listen(value)
        assert 2 == info.value.exit_code

    def test_bad_listen_fails_before_serving(self, tmp_path: Path, migrations_dir: Path) -> None:
        """serve() raises the UsageError itself, before listening or logging serve_listening."""
        log = RecordingLog()
        with pytest.raises(UsageError):
            serve(make_config(f"sqlite:///{tmp_path}/x.db", migrations_dir), log, listen="localhost:http")
        assert [] == log.events

    def test_port_in_use_is_a_usage_error(self, tmp_path: Path, migrations_dir: Path) -> None:
        """An address already in use is exit 2 with the reason, not a traceback."""
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            with pytest.raises(UsageError, match="in use"):
                serve(make_config(f"sqlite:///{tmp_path}/x.db", migrations_dir), RecordingLog(),
                      listen=f"127.0.0.1:{port}")


class TestSignals:
    def test_sigterm_stops_cleanly(self, tmp_path: Path, migrations_dir: Path) -> None:
        """Under the CLI's SignalGuard, SIGTERM (Interrupted in the main thread) stops the server; serve returns 0."""
        log = RecordingLog()
        ready = threading.Event()

        def kill_when_ready() -> None:
            if ready.wait(15):
                os.kill(os.getpid(), signal.SIGTERM)

        killer = threading.Thread(target=kill_when_ready, daemon=True)
        killer.start()
        with SignalGuard():
            code = serve(make_config(f"sqlite:///{tmp_path}/x.db", migrations_dir), log, listen="127.0.0.1:0",
                         ready_event=ready)
        port = log.find("serve_listening")[0]["port"]
        assert (0, "signal SIGTERM") == (code, log.find("serve_stopped")[0]["reason"])
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass


class TestCommand:
    def test_premigrate_serve_until_sigterm(self, db: TestDatabase, applied: Path) -> None:
        """`premigrate serve` as a process: answers on --listen, and SIGTERM stops it with exit 0."""
        port = free_port()
        proc = popen_cli("serve", "--listen", f"127.0.0.1:{port}", "--expect-table", "users", "--dir", str(applied),
                         env={"DATABASE_URL": db.url})
        try:
            served = Served(f"http://127.0.0.1:{port}", RecordingLog())
            deadline = time.monotonic() + 20
            while True:
                try:
                    status, document = served.get_json("/health/database")
                    break
                except urllib.error.URLError:
                    assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=5)
                    time.sleep(0.1)
            assert (200, "healthy", [{"name": "users", "exists": True}]) == (
                status, document["status"], document["schema"]["critical_tables"])
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        events = [json.loads(line)["event"] for line in stderr.splitlines() if line.strip()]
        assert 0 == proc.returncode, stderr
        assert {"serve_listening", "serve_stopped"} <= set(events)


class TestLastRunMetrics:
    def test_last_run_gauges(self, db: TestDatabase, migrations_dir: Path, tmp_path: Path) -> None:
        """/metrics shows the last up's outcome, applied count, duration, rows and size delta from its summary."""
        (migrations_dir / "001_create_users.sql").write_text(USERS)
        (migrations_dir / "002_seed.sql").write_text("INSERT INTO users (id) VALUES (1);\nINSERT INTO users (id) "
                                                     "VALUES (2);\n")
        summary_file = tmp_path / "summary.json"
        result = run_cli("up", "--dir", str(migrations_dir), "--summary-file", str(summary_file),
                         env={"DATABASE_URL": db.url, "PREMIGRATE_LINT": "off"})
        assert 0 == result.returncode, result.stderr
        summary = json.loads(summary_file.read_text())
        config = load_config("serve", {"database_url": db.url, "dir": str(migrations_dir),
                                       "summary_file": str(summary_file)}, {})
        with running(config) as served:
            values = metrics(served)
        delta = summary["database_size_after"]["bytes"] - summary["database_size_before"]["bytes"]
        assert (0, 1, 2, 2, delta) == (
            values["premigrate_last_run_exit_code"], values["premigrate_last_run_success"],
            values["premigrate_last_run_applied"], values["premigrate_last_run_rows_affected"],
            values["premigrate_last_run_database_size_delta_bytes"])
        assert summary["duration_ms"] / 1000 == values["premigrate_last_run_duration_seconds"]

    def test_no_summary_no_gauges(self, db: TestDatabase, applied: Path, tmp_path: Path) -> None:
        """Without a readable summary file the last-run gauges are left out, not reported as zeros."""
        config = load_config("serve", {"database_url": db.url, "dir": str(applied),
                                       "summary_file": str(tmp_path / "missing.json")}, {})
        with running(config) as served:
            values = metrics(served)
        assert [] == [name for name in values if name.startswith("premigrate_last_run_")]
