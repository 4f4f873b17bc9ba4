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

import threading
from collections.abc import Sequence

from premigrate.config import Config
from premigrate.errors import UsageError
from premigrate.eventlog import EventLog
from premigrate.commands.serve.snapshot import (  # noqa: F401 (the package's names, as before it was split)
    CONNECT_TIMEOUT_S, DEFAULT_UNHEALTHY_AFTER_S, DEGRADED, ENDPOINTS, HEALTHY, REFRESH_DEADLINE_S,
    STATEMENT_TIMEOUT_MS, UNHEALTHY, Snapshot, collect,
)
from premigrate.commands.serve.health import HealthState
from premigrate.commands.serve.http import HealthServer

DEFAULT_LISTEN = "0.0.0.0:8080"
# On SIGTERM: how long answers to requests in flight may take to be written out (a slow client) before exiting.
STOP_GRACE_S = 5.0


# -- the listen address ---------------------------------------------------------------------------------------------

def parse_listen(value: str, name: str = "--listen") -> tuple[str, int]:
    """`host:port`, `:port` (all interfaces), `[v6addr]:port` or a bare `port` -> (host, port). `name`: how errors
    name the option (Config.named: PREMIGRATE_LISTEN when the environment set it)."""
    text = value.strip()
    hint = "use HOST:PORT, e.g. 0.0.0.0:8080, :8080 (all interfaces), 127.0.0.1:9090 or [::]:8080"
    if text.isdigit():
        host, port_text = "", text
    elif text.startswith("["):
        end = text.find("]")
        if end < 0 or text[end + 1:end + 2] != ":":
            raise UsageError(f"{name} {value!r} is not a valid address; {hint}")
        host, port_text = text[1:end], text[end + 2:]
        if not host:
            raise UsageError(f"{name} {value!r} has an empty IPv6 address; {hint}")
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise UsageError(f"{name} {value!r} is not a valid address; {hint}")
    if not port_text.isdigit() or int(port_text) > 65535:
        raise UsageError(f"{name} {value!r}: the port is not a number between 0 and 65535; {hint}")
    return host or "0.0.0.0", int(port_text)


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
    # Each option is named as it was given: a value from the environment is not blamed on a flag nobody passed.
    host, port = parse_listen(listen, config.named("listen"))
    cache_seconds = cache_seconds or 0.0  # None (a duration of 0): no caching, every request reads the database
    if cache_seconds < 0:
        raise UsageError(f"{config.option_text('health_cache', cache_seconds)} is negative; use 0 to read the "
                         "database on every request")
    tables = tuple(dict.fromkeys(t.strip() for t in expect_tables))
    if any(not t for t in tables):
        raise UsageError(f"{config.named('expect_tables')} is empty; name a table, e.g. "
                         f"{config.option_text('expect_tables', 'users')}")
    for table in tables:
        # Only the tables of the URL's database (PostgreSQL: the search path or --schema) are listed: a qualified
        # name would read "missing" forever, so it is refused rather than accepted.
        if "." in table:
            raise UsageError(f"{config.named('expect_tables')} {table!r}: name the table alone, without a schema or "
                             f"database (e.g. {config.option_text('expect_tables', table.rsplit('.', 1)[1] or 'users')}"
                             f"); it is looked up in the URL's database (PostgreSQL: the search path, or "
                             f"{config.named('schema')})")
    state = HealthState(config, log, expect_tables=tables, cache_seconds=cache_seconds,
                        unhealthy_after=unhealthy_after or 0.0, refresh_deadline=refresh_deadline)
    try:
        server = HealthServer((host, port), state, log)
    except OSError as exc:
        raise UsageError(f"{config.named('listen')} {listen!r}: cannot listen on {host}:{port}: "
                         f"{exc.strerror or exc}") from None
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
        server.stopping = True  # answers from now on close their connection
        server.shutdown()  # no new connection is accepted ...
        server.server_close()  # ... and the listening socket is closed
        thread.join(5.0)
        # Requests in flight are answered before the process exits (their threads are daemons): a reading still
        # in progress is cut short and they answer 503 saying so; the wait covers writing the answers out.
        state.stop()
        unanswered = server.wait_idle(STOP_GRACE_S)
        log.info("serve_stopped", reason=reason, refreshes=state.refresh_count,
                 **({"unanswered": unanswered} if unanswered else {}))
    return 0
