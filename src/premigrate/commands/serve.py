"""`premigrate serve`: the sidecar. A small read-only HTTP server for health probes and Prometheus.

    GET /healthz           200 {"status": "ok"} while the process runs (liveness; never touches the database);
                           503 once database refreshes have been failing for longer than --unhealthy-after
    GET /health/database   the schema's health as JSON: 200 healthy/degraded, 503 unhealthy
    GET /health/ready      200 exactly when `premigrate check` would exit 0, else 503 (readiness)
    GET /metrics           Prometheus text exposition

Read-only: it never migrates, takes no lock and creates nothing. Each refresh opens one read-only session with a short
connect timeout and no waiting loop, reads the history table and the table list, and closes the session. The
migrations folder is re-read on every refresh, so an updated ConfigMap is seen without a restart. One refresh serves
every request within --cache-seconds; concurrent requests wait for the refresh in progress instead of starting their
own.

Deadlines: a refresh runs in a thread of its own, and every request waits for it at most REFRESH_DEADLINE_S. A
refresh that overruns (a session that stalls after connecting: a proxy holding traffic, a half-dead network) is
abandoned: its session's socket is cut (Driver.abort), the request answers `unhealthy` with the reason, and no other
refresh starts while it lingers, so probes never pile up threads behind a stuck call. The connection itself is
bounded by CONNECT_TIMEOUT_S in the driver.

Threads: the HTTP server runs in a thread of its own; the calling (main) thread waits on an Event, so that the CLI's
signal handler (which raises Interrupted in the main thread) stops the server cleanly.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from premigrate.config import Config
from premigrate.drivers import driver_class
from premigrate.drivers.base import STATE_APPLIED, Driver, HistoryRow
from premigrate.errors import PremigrateError, UsageError
from premigrate.log import SecretScrubber
from premigrate.commands.common import load_files, policy_for
from premigrate.engine.sessions import Sessions
from premigrate.model.planner import Plan, plan_for
from premigrate.model.migrations import MigrationSet
from premigrate.model.versions import Version, is_version, sort_key
from premigrate.eventlog import EventLog

DEFAULT_LISTEN = "0.0.0.0:8080"
CONNECT_TIMEOUT_S = 3.0
STATEMENT_TIMEOUT_MS = 5000  # server side: a health query never runs longer than this
# Client side: a whole refresh (connect, three reads, close) gets this long, then it is abandoned and cut.
REFRESH_DEADLINE_S = 10.0
DEFAULT_UNHEALTHY_AFTER_S = 300.0
HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
ENDPOINTS = ("/healthz", "/health/database", "/health/ready", "/metrics")
_JSON = "application/json"


# -- the listen address ---------------------------------------------------------------------------------------------

def parse_listen(value: str) -> tuple[str, int]:
    """`host:port`, `:port` (all interfaces), `[v6addr]:port` or a bare `port` -> (host, port)."""
    text = value.strip()
    hint = "use HOST:PORT, e.g. 0.0.0.0:8080, :8080 (all interfaces), 127.0.0.1:9090 or [::]:8080"
    if text.isdigit():
        host, port_text = "", text
    elif text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise UsageError(f"--listen {value!r} is not a valid address; {hint}")
        host, port_text = text[1:end], text[end + 2:]
        if not host:
            raise UsageError(f"--listen {value!r} has an empty IPv6 address; {hint}")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise UsageError(f"--listen {value!r} is not a valid address; {hint}")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"--listen {value!r}: the port is not a number between 0 and 65535; {hint}")
    return host or "0.0.0.0", int(port_text)


# -- one look at the database and the folder ------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """What one refresh found. Everything the endpoints answer is derived from it."""

    taken_at: datetime
    connected: bool
    response_seconds: float
    db_error: str | None = None
    folder_error: str | None = None
    history: tuple[HistoryRow, ...] = ()
    tables: tuple[str, ...] = ()
    plan: Plan | None = None  # None when the folder or the database could not be read

    # -- derived ------------------------------------------------------------------------------------------------

    @property
    def applied_rows(self) -> list[HistoryRow]:
        return sorted((r for r in self.history if r.state == STATE_APPLIED), key=_row_order)

    @property
    def applied(self) -> list[str]:
        return [r.migration_id for r in self.applied_rows]

    @property
    def latest(self) -> str | None:
        versions = [Version.parse(r.version) for r in self.applied_rows if r.version and is_version(r.version)]
        return str(max(versions)) if versions else None

    @property
    def last_applied_at(self) -> datetime | None:
        return max((r.applied_at for r in self.applied_rows), default=None)

    @property
    def failed(self) -> list[str]:
        # failed, in_progress, and any other state that is not "applied" (e.g. a `down` that stopped: rolling_back)
        rows = (r for r in self.history if r.state != STATE_APPLIED)
        return [r.migration_id for r in sorted(rows, key=_row_order)]

    @property
    def pending(self) -> list[str]:
        return [s.migration.id for s in self.plan.steps] if self.plan is not None else []

    @property
    def problems(self) -> list[str]:
        return [p.message for p in self.plan.problems] if self.plan is not None else []

    def table_exists(self, name: str, fold_case: bool) -> bool:
        if not self.connected:
            return False
        if not fold_case:  # PostgreSQL: unquoted names are folded to lower case; a quoted "Users" is another table
            return name in self.tables or name.lower() in self.tables
        return name.lower() in {t.lower() for t in self.tables}



def _row_order(row: HistoryRow) -> tuple[int, Version, str]:
    return sort_key(row.version or None, row.migration_id)


def collect(config: Config, sessions: Sessions, log: EventLog,
            on_session: Callable[[Driver], None] | None = None) -> Snapshot:
    """One refresh: re-read the folder, open a read-only session (no waiting loop), read, close. Never raises.

    `on_session(driver)` is told the session as soon as it is open, so that a watchdog can cut it."""
    files: MigrationSet | None = None
    folder_error: str | None = None
    try:
        files = load_files(config, log)
    except PremigrateError as exc:
        folder_error = exc.message
    history: list[HistoryRow] = []
    tables: list[str] = []
    db_error: str | None = None
    started = time.monotonic()
    try:
        driver = sessions.connect_once(read_only=True, connect_timeout=CONNECT_TIMEOUT_S)
        if on_session is not None:
            on_session(driver)
        try:
            driver.limit_statement_time(STATEMENT_TIMEOUT_MS / 1000)
            driver.prepare_session()
            # Asked first, so that polling an unmigrated database does not fill the server's log with errors.
            history = driver.read_history() if driver.history_exists() else []
            tables = driver.list_tables()
        finally:
            driver.close()
    except PremigrateError as exc:
        db_error = f"{exc.message} ({config.dsn.redacted()})"
    except Exception as exc:  # noqa: BLE001 - a bug or an unmapped driver error: report it, keep serving
        log.error("internal_error", error=f"{type(exc).__name__}: {exc}", exc_info=True)
        db_error = f"{type(exc).__name__}: {exc} ({config.dsn.redacted()})"
    elapsed = time.monotonic() - started
    connected = db_error is None
    plan = None
    if connected and files is not None:
        try:
            # The plan `check` and `up` make: an interrupted file is judged with its placeholders resolved.
            plan = plan_for(files, history, policy_for(config))
        except PremigrateError as exc:  # e.g. a statement that cannot be split while judging a resumable row
            folder_error = exc.message
    return Snapshot(
        taken_at=datetime.now(timezone.utc),
        connected=connected,
        response_seconds=elapsed,
        db_error=db_error,
        folder_error=folder_error,
        history=tuple(history) if connected else (),
        tables=tuple(tables) if connected else (),
        plan=plan,
    )


# -- the shared state: cache, documents, metrics --------------------------------------------------------------------

@dataclass
class _Refresh:
    """One refresh in flight: its thread fills `result` and sets `done`; `driver` is its session once open."""

    started: float
    done: threading.Event = field(default_factory=threading.Event)
    result: Snapshot | None = None
    driver: Driver | None = None
    abandoned: bool = False


@dataclass
class HealthState:
    """The cache in front of the database. `refresh_count` counts refreshes (the tests read it)."""

    config: Config
    log: EventLog
    expect_tables: tuple[str, ...] = ()
    cache_seconds: float = 2.0
    clock: Any = time.monotonic
    refresh_deadline: float = REFRESH_DEADLINE_S
    unhealthy_after: float = DEFAULT_UNHEALTHY_AFTER_S  # 0: /healthz never looks at the refreshes
    refresh_count: int = 0
    _sessions: Sessions | None = field(default=None, repr=False)
    _snapshot: Snapshot | None = field(default=None, repr=False)
    _taken: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _last_status: str | None = field(default=None, repr=False)
    _refresh: _Refresh | None = field(default=None, repr=False)
    _failing_since: float | None = field(default=None, repr=False)
    _failure: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        self._sessions = Sessions(self.config, self.log)
        self._scrubber = SecretScrubber(self.config.secrets)

    def snapshot(self) -> Snapshot:
        """The cached reading, or a fresh one. Requests during a refresh share it; none waits past its deadline."""
        with self._lock:
            if self._snapshot is not None and self.clock() - self._taken < self.cache_seconds:
                return self._snapshot
            refresh = self._refresh
            if refresh is None:
                refresh = self._refresh = _Refresh(started=time.monotonic())
                self.refresh_count += 1
                threading.Thread(target=self._run, args=(refresh,), name="premigrate-refresh", daemon=True).start()
            elif refresh.abandoned:
                # The refresh that overran has not ended yet: starting another would only add a stuck thread.
                stuck = time.monotonic() - refresh.started
                return self._store(self._stalled(f"the database has not answered for {stuck:.0f} s "
                                                 "(the refresh that overran has not ended yet)", stuck))
        refresh.done.wait(max(0.0, refresh.started + self.refresh_deadline - time.monotonic()))
        with self._lock:
            if refresh.result is not None:
                return refresh.result
            if not refresh.abandoned:
                refresh.abandoned = True
                if refresh.driver is not None:
                    refresh.driver.abort()
                self._store(self._stalled(
                    f"the database did not answer within {self.refresh_deadline:g} s; the refresh was abandoned",
                    time.monotonic() - refresh.started))
            assert self._snapshot is not None
            return self._snapshot

    def _run(self, refresh: _Refresh) -> None:
        snap: Snapshot | None = None
        try:
            assert self._sessions is not None
            snap = collect(self.config, self._sessions, self.log, on_session=lambda d: self._attach(refresh, d))
        finally:
            with self._lock:
                if self._refresh is refresh:
                    self._refresh = None
                if snap is not None and not refresh.abandoned:  # an abandoned refresh's late answer is dropped
                    refresh.result = snap
                    self._store(snap)
            refresh.done.set()

    def _attach(self, refresh: _Refresh, driver: Driver) -> None:
        """Remember the refresh's session; one opened after its refresh was abandoned is cut at once."""
        with self._lock:
            refresh.driver = driver
            if refresh.abandoned:
                driver.abort()

    def _stalled(self, reason: str, elapsed: float) -> Snapshot:
        return Snapshot(taken_at=datetime.now(timezone.utc), connected=False, response_seconds=elapsed,
                        db_error=f"{reason} ({self.config.dsn.redacted()})")

    def _store(self, snap: Snapshot) -> Snapshot:
        """Make `snap` the cached reading (called with the lock held)."""
        self._snapshot = snap
        self._taken = self.clock()
        if snap.connected:
            self._failing_since = None
        else:
            if self._failing_since is None:
                self._failing_since = self._taken
            self._failure = snap.db_error or ""
        self._note_status(snap)
        return snap

    def liveness(self) -> tuple[int, dict[str, Any]]:
        """/healthz: alive, unless database refreshes have been failing for longer than `unhealthy_after`."""
        with self._lock:
            since = self._failing_since
            failing = 0.0 if since is None else self.clock() - since
            failure = self._failure
        if since is None or not self.unhealthy_after or failing <= self.unhealthy_after:
            return 200, {"status": "ok"}
        return 503, self.scrub({"status": "unhealthy",
                                "reason": f"database refreshes have been failing for {failing:.0f} s "
                                          f"(--unhealthy-after {self.unhealthy_after:g} s): {failure}"})

    def _note_status(self, snap: Snapshot) -> None:
        status, reason = self.judge(snap)
        if status == self._last_status:
            return
        self._last_status = status
        fields = {"status": status, "reason": self.scrub(reason)}
        if status == HEALTHY:
            self.log.info("serve_health_changed", **fields)
        elif status == DEGRADED:
            self.log.warning("serve_health_changed", **fields)
        else:
            self.log.error("serve_health_changed", **fields)

    def scrub(self, value: Any) -> Any:
        return self._scrubber.scrub(value)

    # -- judgements -----------------------------------------------------------------------------------------------

    def missing_tables(self, snap: Snapshot) -> list[str]:
        return [t for t in self.expect_tables if not snap.table_exists(t, driver_class(self.config.dsn.dialect).table_names_fold_case)]

    def warnings(self, snap: Snapshot) -> list[str]:
        notes = []
        pending = snap.pending
        if pending:
            notes.append(f"{len(pending)} migration{'s' if len(pending) > 1 else ''} pending: {', '.join(pending)}")
        missing = self.missing_tables(snap) if snap.connected else []
        if missing:
            notes.append(f"expected table{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)}")
        return notes

    def migration_error(self, snap: Snapshot) -> str | None:
        if snap.folder_error:
            return f"migrations folder: {snap.folder_error}"
        problems = snap.problems
        if problems:
            more = len(problems) - 1
            return problems[0] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
        if snap.failed:
            # A resumable in_progress row is not a plan problem (up would resume it), but the schema is half-changed.
            return f"a migration run is in progress or was interrupted: {', '.join(snap.failed)}"
        return None

    def judge(self, snap: Snapshot) -> tuple[str, str]:
        if not snap.connected:
            return UNHEALTHY, f"database unreachable: {snap.db_error}"
        error = self.migration_error(snap)
        if error:
            return UNHEALTHY, error
        warnings = self.warnings(snap)
        if warnings:
            return DEGRADED, "; ".join(warnings)
        return HEALTHY, "all migrations applied" + (", all expected tables exist" if self.expect_tables else "")

    # -- documents ------------------------------------------------------------------------------------------------

    def database_document(self) -> tuple[int, dict[str, Any]]:
        snap = self.snapshot()
        status, _ = self.judge(snap)
        database: dict[str, Any] = {"connected": snap.connected,
                                    "response_time_ms": round(snap.response_seconds * 1000)}
        if not snap.connected:
            database["error"] = snap.db_error
        migrations: dict[str, Any] = {
            "applied": snap.applied,
            "latest": snap.latest,
            "count": len(snap.applied),
            "pending": snap.pending,
            "failed": snap.failed,
        }
        warnings = self.warnings(snap)
        if warnings:
            migrations["warning"] = "; ".join(warnings)
        error = self.migration_error(snap)
        if error:
            migrations["error"] = error
        critical = [{"name": t, "exists": snap.table_exists(t, driver_class(self.config.dsn.dialect).table_names_fold_case)} for t in self.expect_tables]
        document = {
            "status": status,
            "timestamp": _iso(snap.taken_at),
            "database": database,
            "migrations": migrations,
            "schema": {"critical_tables": critical,
                       "all_tables_exist": snap.connected and all(t["exists"] for t in critical)},
        }
        return (503 if status == UNHEALTHY else 200), self.scrub(document)

    def ready_document(self) -> tuple[int, dict[str, Any]]:
        """Ready exactly when `check` would exit 0: database reachable, folder readable, no problem, nothing pending."""
        snap = self.snapshot()
        reason: str | None = None
        if not snap.connected:
            reason = f"database unreachable: {snap.db_error}"
        elif snap.folder_error:
            reason = f"migrations folder: {snap.folder_error}"
        elif snap.problems:
            reason = self.migration_error(snap) or "migration problems"
        elif snap.pending:
            reason = f"{len(snap.pending)} migration{'s' if len(snap.pending) > 1 else ''} pending: " \
                     f"{', '.join(snap.pending)}"
        if reason is None:
            return 200, {"status": "ready", "timestamp": _iso(snap.taken_at)}
        return 503, self.scrub({"status": "not_ready", "reason": reason, "timestamp": _iso(snap.taken_at)})

    def metrics_text(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self))
        return generate_latest(registry)


class _Collector:
    """Gauges computed from the cached snapshot at scrape time. Migration gauges are left out while the database
    cannot be read (an unknown is not a zero); premigrate_database_up says why."""

    def __init__(self, state: HealthState) -> None:
        self.state = state

    def describe(self) -> Iterator[Any]:
        return iter(())  # no database access at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        snap = self.state.snapshot()
        yield GaugeMetricFamily("premigrate_database_up",
                                "1 when the database answered the last health query, else 0",
                                value=1 if snap.connected else 0)
        yield GaugeMetricFamily("premigrate_database_response_seconds",
                                "seconds the last health query took (connect, read history, list tables)",
                                value=snap.response_seconds)
        from premigrate.commands.last_run import gauges  # the last up's figures, from its summary file

        yield from gauges(self.state.config.serve.summary_file)
        if not snap.connected:
            return
        yield GaugeMetricFamily("premigrate_migrations_applied", "migrations recorded as applied",
                                value=len(snap.applied))
        if snap.plan is not None:
            yield GaugeMetricFamily("premigrate_migrations_pending",
                                    "migrations in the folder that `up` would apply now", value=len(snap.pending))
        yield GaugeMetricFamily("premigrate_migrations_failed",
                                "history rows not applied: failed, in_progress (or a stopped down: rolling_back)",
                                value=len(snap.failed))
        last = snap.last_applied_at
        yield GaugeMetricFamily("premigrate_last_applied_timestamp_seconds",
                                "unix time of the newest applied migration, 0 when none",
                                value=last.timestamp() if last else 0)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- HTTP -----------------------------------------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: HealthState, log: EventLog) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self.log = log
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name with socket.getfqdn(), which can hang for seconds on a
        # container's DNS; nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "premigrate"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 30  # a slow or idle client does not hold its thread forever

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._route(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._route(head=True)

    def __getattr__(self, name: str) -> Any:
        # Every other method (POST, PUT, DELETE, OPTIONS, ...) is 405 rather than http.server's 501.
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self._json(405, {"error": f"method {self.command} not allowed; use GET"}, head=False,
                   extra={"Allow": "GET, HEAD"})

    def _route(self, *, head: bool) -> None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if len(path) > 1:
            path = path.rstrip("/")
        state = self.server.state
        try:
            if path == "/healthz":
                self._json(*state.liveness(), head=head)
            elif path == "/health/database":
                self._json(*state.database_document(), head=head)
            elif path == "/health/ready":
                self._json(*state.ready_document(), head=head)
            elif path == "/metrics":
                from prometheus_client import CONTENT_TYPE_LATEST

                self._send(200, state.metrics_text(), CONTENT_TYPE_LATEST, head=head)
            else:
                self._json(404, {"error": f"no such endpoint {path!r}", "endpoints": list(ENDPOINTS)}, head=head)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # noqa: BLE001 - a bug must answer 500, not kill the connection silently
            self.server.log.error("internal_error", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            try:
                self._json(500, {"error": state.scrub(f"{type(exc).__name__}: {exc}")}, head=head)
            except OSError:
                pass

    def _json(self, code: int, document: dict[str, Any], *, head: bool, extra: dict[str, str] | None = None) -> None:
        self._send(code, (json.dumps(document) + "\n").encode(), _JSON, head=head, extra=extra)

    def _send(self, code: int, body: bytes, content_type: str, *, head: bool,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.server.log.debug("serve_request", method=self.command, path=self.path, status=int(code)
                              if str(code).isdigit() else code, client=self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # errors http.server reports itself (bad request lines, timeouts): not worth a log line


# -- entry point ----------------------------------------------------------------------------------------------------

def serve(
    config: Config,
    log: EventLog,
    *,
    listen: str = DEFAULT_LISTEN,
    expect_tables: Sequence[str] = (),
    cache_seconds: float | None = 2.0,
    unhealthy_after: float | None = DEFAULT_UNHEALTHY_AFTER_S,
    refresh_deadline: float = REFRESH_DEADLINE_S,
    ready_event: threading.Event | None = None,
    stop_event: threading.Event | None = None,
) -> int:
    """Serve the health endpoints until SIGTERM/SIGINT (Interrupted in the main thread) or `stop_event`; return 0.

    A bad --listen, a negative cache time or an address that cannot be bound is a UsageError (exit 2), raised before
    anything is served. `ready_event` is set once the socket listens.
    """
    host, port = parse_listen(listen)
    cache_seconds = cache_seconds or 0.0  # None (a duration of 0): no caching, every request reads the database
    if cache_seconds < 0:
        raise UsageError(f"--health-cache {cache_seconds} is negative; use 0 to read the database on every request")
    tables = tuple(dict.fromkeys(t.strip() for t in expect_tables))
    if any(not t for t in tables):
        raise UsageError("--expect-table is empty; name a table, e.g. --expect-table users")
    state = HealthState(config, log, expect_tables=tables, cache_seconds=cache_seconds,
                        unhealthy_after=unhealthy_after or 0.0, refresh_deadline=refresh_deadline)
    try:
        server = _Server((host, port), state, log)
    except OSError as exc:
        raise UsageError(f"--listen {listen!r}: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = stop_event or threading.Event()
    bound_host, bound_port = server.server_address[:2]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                              name="premigrate-serve", daemon=True)
    thread.start()
    reason = "stop requested"
    try:
        log.info("serve_listening", host=bound_host, port=bound_port, endpoints=list(ENDPOINTS),
                 expect_tables=list(tables), cache_seconds=cache_seconds, unhealthy_after=unhealthy_after or 0.0,
                 database=config.dsn.redacted())
        if ready_event is not None:
            ready_event.set()
        # A timed wait in a loop: the main thread stays interruptible by the signal handler on every platform.
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt as exc:  # premigrate.errors.Interrupted (SIGTERM/SIGINT) or a plain Ctrl-C
        reason = f"signal {exc}" if str(exc) else "interrupted"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5.0)
        log.info("serve_stopped", reason=reason, refreshes=state.refresh_count)
    return 0
