"""PostgreSQL through psycopg 3: SQL and error mapping only."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import psycopg
from psycopg import errors as pg_errors, pq, sql as pg_sql

from premigrate.drivers.base import ConnectFailed, DriverSettings, SqlError, shutdown_socket
from premigrate.drivers.history import SqlHistoryMixin
from premigrate.drivers.postgres_prepared import Call
from premigrate.drivers.postgres_session import PostgresSessionMixin
from premigrate.drivers.postgres_together import PostgresTogetherMixin
from premigrate.model.dsn import Dsn, split_hosts
from premigrate.errors import ConnectionLost, UsageError

# libpq reports connection failures as text without an SQLSTATE, so they are classified by message.
# (reason, transient, pattern, flags): left for re.search to compile on first use, since only a failed connection
# needs them.
_CONNECT_FAILURES: list[tuple[str, bool, str, int]] = [
    ("unknown_database", False, r'database ".*" does not exist', 0),
    ("auth", False,
     r"password authentication failed|authentication failed|no pg_hba\.conf entry|role \".*\" does not exist|"
     r"no password supplied|password is required|SCRAM", re.I),
    ("starting_up", True,
     r"database system is (starting up|shutting down|in recovery mode)|not yet accepting connections|"
     r"consistent recovery state", re.I),
    ("too_many_connections", True,
     r"too many (clients|connections)|remaining connection slots are reserved", re.I),
    ("refused", True, r"Connection refused|No such file or directory|could not connect to server", re.I),
    ("dns", True,
     r"failed to resolve host|could not translate host name|Name or service not known|"
     r"Temporary failure in name resolution|nodename nor servname", re.I),
    ("timeout", True, r"timeout expired|timed out", re.I),
    ("connection_reset", True,
     r"server closed the connection unexpectedly|Connection reset by peer|terminating connection", re.I),
]
# Server-side SQLSTATEs that mean "try again soon" when they arrive with a SQLSTATE.
_TRANSIENT_SQLSTATES = {"57P03": "starting_up", "53300": "too_many_connections", "57P01": "connection_reset"}
# lock_not_available (lock_timeout) and deadlock_detected: the statement did not take effect, a retry may succeed.
_LOCK_CONTENTION = {"55P03", "40P01"}
_DEFAULT_KEEPALIVES = {"keepalives": "1", "keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3"}


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _endpoint(dsn: Dsn) -> tuple[object, ...]:
    return dsn.host, dsn.port, dsn.user, dsn.password, dsn.params


def _with_protocol_hint(failure: ConnectFailed, dsn: Dsn) -> ConnectFailed:
    """An unexplained failure from a port that speaks MySQL's protocol: say so, and stop retrying."""
    if failure.reason not in ("other", "connection_reset"):
        return failure
    from premigrate.drivers.probe import wrong_protocol_hint

    hint = wrong_protocol_hint(dsn)
    return failure if hint is None else ConnectFailed(hint, transient=False, reason="wrong_protocol")


def conninfo_params(dsn: Dsn, settings: DriverSettings) -> dict[str, Any]:
    """libpq's connection parameters for a URL: its hosts, premigrate's keepalives and application name, then the
    URL's own parameters, which win."""
    params: dict[str, Any] = {}
    if dsn.host:
        params["host"] = dsn.host
    if dsn.port:
        params["port"] = dsn.port
    hosts = split_hosts(dsn.host or "", dsn.port or 5432)
    if hosts is not None:  # several hosts: libpq tries them in order (target_session_attrs picks the primary)
        params["host"], params["port"] = hosts
    if dsn.user:
        params["user"] = dsn.user
    if dsn.password is not None:
        params["password"] = dsn.password
    if dsn.database:
        params["dbname"] = dsn.database
    params.update(_DEFAULT_KEEPALIVES)
    params["application_name"] = settings.application_name
    if settings.connect_timeout:
        # libpq takes whole seconds and treats 1 as 2; never 0, which would mean "wait forever".
        params["connect_timeout"] = str(max(2, int(settings.connect_timeout + 0.999)))
    # Query parameters from the URL (sslmode, sslrootcert, connect_timeout, ...) win over our defaults.
    params.update(dsn.params_dict)
    return params


_NAME_BYTES = 63  # NAMEDATALEN - 1
# The values libpq accepts for the parameters it checks only at connect (fe-connect.c: "invalid sslmode value",
# "invalid target_session_attrs value", ...; parse_int_param for the integers).
_PARAM_CHOICES = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
    "gssencmode": ("disable", "prefer", "require"),
    "channel_binding": ("disable", "prefer", "require"),
    "target_session_attrs": ("any", "read-write", "read-only", "primary", "standby", "prefer-standby"),
    "load_balance_hosts": ("disable", "random"),
}
_INTEGER_PARAMS = ("connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
                   "tcp_user_timeout")


def _param_problem(name: str, value: str) -> str | None:
    """What libpq would refuse in a parameter's value when it connects, or None."""
    choices = _PARAM_CHOICES.get(name)
    if choices is not None and value not in choices:
        return f"not one of {', '.join(choices)}"
    if name in _INTEGER_PARAMS and not value.strip().lstrip("+-").isdigit():
        return "not a whole number"
    return None


class PostgresDriver(PostgresSessionMixin, PostgresTogetherMixin, SqlHistoryMixin):
    dialect: ClassVar[str] = "postgresql"
    transactional_ddl: ClassVar[bool] = True
    local_timeouts: ClassVar[bool] = True
    invalid_indexes: ClassVar[bool] = True
    supports_schema: ClassVar[bool] = True
    table_names_fold_case: ClassVar[bool] = False
    code_field: ClassVar[str] = "sqlstate"
    param: ClassVar[str] = "%s"

    def __init__(self, conn: psycopg.Connection[Any], dsn: Dsn, settings: DriverSettings) -> None:
        self.conn = conn
        self._held_back: list[str | Call] = []  # see PostgresSessionMixin._hold_back
        self._begin_held_at: int | None = None
        self._lost: Callable[[], Exception] | None = None
        self._backend_pid: int | None = None
        self.database_oid: int | None = None  # read with the pid (session_id)
        self.dsn = dsn
        self.settings = settings
        # The history table lives in --history-schema, else in the first schema of the session's search_path as
        # premigrate sets it (--schema), else in the server's default schema: qualified with it before any migration
        # runs (guard_writes), so that a migration's SET search_path cannot move premigrate's reads and writes. A
        # no-op `up` does not pay the query that finds the default.
        schema = settings.schema or settings.search_path
        self._history_ref = (_quote_ident(schema) + "." if schema else "") + _quote_ident(settings.table)
        self._history_pinned = schema is not None

    def guard_writes(self, key: str, holder: int | None) -> None:
        super().guard_writes(key, holder)
        if not self._history_pinned:
            rows = self._fetchall("SELECT current_schema()")
            if rows and rows[0][0]:
                self._history_ref = _quote_ident(rows[0][0]) + "." + _quote_ident(self.settings.table)
            self._history_pinned = True

    # -- connection ---------------------------------------------------------------------------------------------

    conninfo_params = staticmethod(conninfo_params)  # libpq's parameters for a URL (above the class)

    @classmethod
    def check_url(cls, dsn: Dsn) -> None:
        # libpq's own parser (PQconninfoParse) knows every keyword; the values it reads only when it connects are
        # checked here, so that a typo is exit 2 at once rather than a connection failure waited on until
        # --wait-timeout (and retried by a Job as if the server were down).
        try:
            psycopg.conninfo.make_conninfo("", **dsn.params_dict)
        except psycopg.ProgrammingError as exc:
            raise UsageError(f"database URL: {_first_line(exc)}") from None
        for name, value in dsn.params_dict.items():
            problem = _param_problem(name, value)
            if problem is not None:
                raise UsageError(f"database URL: {name}={value!r}: {problem}")
        if dsn.database is not None and len(dsn.database.encode()) > _NAME_BYTES:
            raise UsageError(f"database URL: the database name is {len(dsn.database.encode())} bytes; PostgreSQL "
                             f"names are at most {_NAME_BYTES} (the server cuts a longer one short and would connect "
                             "to another database)")

    @classmethod
    def connect(cls, dsn: Dsn, settings: DriverSettings) -> PostgresDriver:
        cls.check_url(dsn)
        params = cls.conninfo_params(dsn, settings)
        try:
            # prepare_threshold=None: no server-side prepared statements, which break behind PgBouncer.
            conn = psycopg.connect(autocommit=True, prepare_threshold=None, **params)
        except psycopg.ProgrammingError as exc:
            raise UsageError(f"database URL: {_first_line(exc)}") from None
        except psycopg.Error as exc:
            raise _with_protocol_hint(cls.map_connect_error(exc), dsn) from None
        driver = cls(conn, dsn, settings)
        if settings.read_only:
            driver._exec("SET default_transaction_read_only = on")
        return driver

    @staticmethod
    def map_connect_error(exc: BaseException) -> ConnectFailed:
        message = _first_line(exc)
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate in _TRANSIENT_SQLSTATES:
            return ConnectFailed(message, transient=True, reason=_TRANSIENT_SQLSTATES[sqlstate])
        for reason, transient, pattern, flags in _CONNECT_FAILURES:
            if re.search(pattern, str(exc), flags):
                return ConnectFailed(message, transient=transient, reason=reason)
        return ConnectFailed(message, transient=False, reason="other")

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not mask the real error
            pass

    def rebound(self, dsn: Dsn, settings: DriverSettings) -> PostgresDriver | None:
        # A PostgreSQL session cannot change its database: the same server, user and database only.
        if _endpoint(dsn) != _endpoint(self.dsn) or dsn.database != self.dsn.database:
            return None
        if self.conn.closed or self.conn.info.transaction_status != pq.TransactionStatus.IDLE:
            return None
        try:
            # DISCARD ALL: every SET (to the values of the connection's start), temporary tables, prepared
            # statements, LISTEN and advisory locks go, as if the session were new.
            self._exec("DISCARD ALL")
        except Exception:  # noqa: BLE001 - a session that cannot be reset is closed by the caller
            return None
        driver = PostgresDriver(self.conn, dsn, settings)
        if settings.read_only:
            driver._exec("SET default_transaction_read_only = on")
        return driver

    def server_version(self) -> str:
        return f"PostgreSQL {self.conn.info.parameter_status('server_version') or self.conn.info.server_version}"

    def prepare_session(self) -> None:
        if self.settings.search_path:
            self._exec(self._search_path_sql())

    def _search_path_sql(self) -> pg_sql.Composed:
        return pg_sql.SQL("SET search_path TO {}").format(pg_sql.Identifier(self.settings.search_path or ""))

    def limit_statement_time(self, seconds: float) -> None:
        self._exec(f"SET statement_timeout = {max(1, round(seconds * 1000))}")

    def set_timeouts(self, lock_timeout: float | None, statement_timeout: float | None, *, local: bool) -> None:
        scope = "SET LOCAL" if local else "SET"
        parts = [f"{scope} {name} = {_ms(value)}"
                 for name, value in (("lock_timeout", lock_timeout), ("statement_timeout", statement_timeout))
                 if value is not None]
        if parts and local:
            for part in parts:  # with BEGIN, in the transaction's first message
                self._hold_back(part)
        elif parts:
            self._exec("; ".join(parts))

    def reset_timeouts(self) -> None:
        self._exec("RESET lock_timeout; RESET statement_timeout")

    def session_id(self) -> int | None:
        # The server's pid for this session, asked once: behind a pooler the pid given at connect (backend_pid,
        # for cancel requests) is the pooler's own, which no pg_locks or pg_stat_activity row carries. (Behind a
        # transaction pooler the backend changes between transactions; the runner uses the table lock there, and
        # blocker lookups are best effort.)
        # Its database's oid comes with it, for the lock condition (drivers/postgres_session._lock_condition).
        if self._backend_pid is None:
            pid, database_oid = self._fetchall(
                "SELECT pg_backend_pid(), (SELECT oid FROM pg_database WHERE datname = current_database())")[0]
            self._backend_pid, self.database_oid = int(pid), int(database_oid)
        return self._backend_pid

    def blockers(self, session_id: int) -> list[dict[str, Any]]:
        rows = self._fetchall(
            """SELECT a.pid, a.application_name, host(a.client_addr), a.usename, a.state,
                      extract(epoch FROM now() - coalesce(a.xact_start, a.query_start, now()))::int,
                      left(regexp_replace(a.query, '[[:space:]]+', ' ', 'g'), 200)
               FROM pg_stat_activity a WHERE a.pid = ANY(pg_blocking_pids(%s)) ORDER BY a.xact_start""",
            (session_id,),
        )
        return [{"pid": pid, "application_name": app, "client_addr": addr, "user": user, "state": state,
                 "transaction_s": seconds, "query": query}
                for pid, app, addr, user, state, seconds, query in rows]

    def drop_invalid_index(self, name: str) -> str | None:
        rows = self._fetchall(
            """SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE NOT i.indisvalid AND c.oid = to_regclass(%s)""", (name,))
        if not rows:
            return None
        # Not a parameter: DROP INDEX takes no bind parameters; the name is the server's own quoted regclass text.
        self._exec(f"DROP INDEX CONCURRENTLY IF EXISTS {rows[0][0]}")
        return str(rows[0][0])

    def ensure_schema(self) -> None:
        for schema in {s for s in (self.settings.search_path, self.settings.schema) if s is not None}:
            self._exec(pg_sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pg_sql.Identifier(schema)))

    # -- statements ---------------------------------------------------------------------------------------------

    def _exec(self, query: Any, params: tuple[Any, ...] | None = None) -> None:
        if self._held_back:
            if params is None:  # premigrate's own SQL without parameters: at the end of the same message
                self._send_held_back(query if isinstance(query, str) else query.as_string(self.conn))
                return
            self._send_held_back()
        self.statements_sent += 1
        try:
            self.conn.execute(query, params)
        except psycopg.Error as exc:
            raise self.map_error(exc) from exc

    def _exec_count(self, query: Any, params: tuple[Any, ...] = ()) -> int:
        if self._held_back:
            self._send_held_back()
        self.statements_sent += 1
        try:
            return self.conn.execute(query, params).rowcount
        except psycopg.Error as exc:
            raise self.map_error(exc) from exc

    def _fetchall(self, query: Any, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        if self._held_back:
            self._send_held_back()
        self.statements_sent += 1
        try:
            return self.conn.execute(query, params).fetchall()
        except psycopg.Error as exc:
            raise self.map_error(exc) from exc

    def execute(self, statement: str) -> int | None:
        # No parameters: psycopg sends the text as is (the simple query protocol), so % and {} in migration SQL
        # need no escaping. What was held back goes first: in the same message when it opens our transaction (the
        # statement runs in that transaction block anyway; a round trip saved per migration); else alone, since a
        # multi-statement message is a transaction block, where CREATE INDEX CONCURRENTLY and the like cannot run.
        self.forget_prepared_if_dropped(statement)
        if self._held_back:
            if self._begin_held_at is not None:
                return self._send_held_back(statement=statement)
            self._send_held_back()
        self.statements_sent += 1
        try:
            cursor = self.conn.execute(statement)
        except psycopg.Error as exc:
            raise self.map_error(exc) from exc
        return cursor.rowcount if cursor.rowcount >= 0 else None  # -1: no count (DDL, SET)

    def map_error(self, exc: psycopg.Error) -> Exception:
        # Every error the server sends carries a SQLSTATE. An OperationalError without one comes from the client
        # side: libpq, or psycopg's own wait loop, which raises "connection socket closed" when select() flags the
        # socket (psycopg/waiting.py) while libpq has not yet marked the connection bad, so `closed` and `broken`
        # are still False. Such a statement never got an answer: it is a lost connection (exit 3, nothing
        # committed), not a failed migration (exit 4, which promises a recorded row on MySQL).
        client_side = isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None
        if self.conn.closed or self.conn.broken or client_side or isinstance(exc, (pg_errors.AdminShutdown,)):
            return ConnectionLost(f"lost the connection to PostgreSQL: {_first_line(exc)}")
        diag = exc.diag
        position = int(diag.statement_position) if diag.statement_position else None
        return SqlError(_first_line(exc), code=exc.sqlstate, code_field=self.code_field, position=position,
                        lock_contention=exc.sqlstate in _LOCK_CONTENTION)

    def _in_open_transaction(self) -> bool:
        return self._begin_held_at is not None or self.conn.info.transaction_status != pq.TransactionStatus.IDLE

    def interrupt(self) -> None:
        """Cancel the running statement on the server. Safe to call from another thread."""
        try:
            self.conn.cancel_safe(timeout=5.0)
        except Exception:  # noqa: BLE001 - best effort: the signal path must not fail here
            pass

    def abort(self) -> None:
        try:
            fd = self.conn.pgconn.socket
        except psycopg.Error:
            return  # already closed
        shutdown_socket(fd)

    # -- history ------------------------------------------------------------------------------------------------

    def _may_probe_history(self) -> bool:
        # A failed statement inside an open transaction aborts it (25P02 for everything after): probe only
        # between transactions, where it costs nothing.
        return not self._in_open_transaction()

    def _history_missing(self, exc: SqlError) -> bool:
        return exc.code == "42P01"  # undefined_table (also when the history table's schema does not exist)

    def history_exists(self) -> bool:
        rows = self._fetchall("SELECT to_regclass(%s) IS NOT NULL", (self.history_ref,))
        return bool(rows[0][0])

    def ensure_history_table(self) -> bool:
        if self.history_exists():
            return False
        self._exec(
            f"""CREATE TABLE IF NOT EXISTS {self.history_ref} (
                migration_id varchar(191) PRIMARY KEY,
                version varchar(191),
                description varchar(1024) NOT NULL,
                kind varchar(16) NOT NULL,
                script varchar(1024) NOT NULL,
                checksum varchar(80) NOT NULL,
                applied_at timestamptz NOT NULL,
                execution_ms bigint NOT NULL,
                applied_by varchar(255) NOT NULL,
                state varchar(16) NOT NULL,
                statements_done integer NOT NULL,
                statements_total integer NOT NULL,
                statement_started integer NOT NULL,
                statement_hashes text NOT NULL,
                error text,
                premigrate_version varchar(32) NOT NULL
            )"""
        )
        return True

    def list_tables(self) -> list[str]:
        schema = self.settings.search_path or self.settings.schema
        if schema:
            rows = self._fetchall("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY 1", (schema,))
        else:
            rows = self._fetchall(
                "SELECT tablename FROM pg_tables WHERE schemaname = ANY (current_schemas(false)) ORDER BY 1"
            )
        return [r[0] for r in rows]


def _ms(seconds: float) -> int:
    """Milliseconds for a timeout setting; 0 stays 0 (no limit), anything else is at least 1 ms."""
    return 0 if seconds <= 0 else max(1, round(seconds * 1000))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # libpq prefixes "connection failed: connection to server at ..." and adds hint lines; keep it to one line.
    return " ".join(part.strip() for part in text.splitlines() if part.strip()) or type(exc).__name__
