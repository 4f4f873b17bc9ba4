"""What stands between premigrate and the database, and whether its session lock can be trusted there.

Detected, without SHOW commands or a pooler's admin console (an application's URL never has access to those):
- a connection pooler (PgBouncer, ...) that moves a client between server backends: in transaction pooling the
  backend pid (pg_backend_pid()) changes between two transactions of one client connection; statement pooling
  refuses a multi-statement transaction outright. A pooler of any mode also shows itself because the process id it
  hands out at connect (BackendKeyData, for cancel requests) is its own, not the backend's;
- Galera (wsrep_on) and the session's wsrep_OSU_method (TOI: DDL replicated in total order; RSU: DDL runs on this
  node only, the others never see it);
- a MySQL Group Replication member (performance_schema.replication_group_members);
- a server that cannot take writes: a PostgreSQL hot standby (pg_is_in_recovery()), a read-only session or server
  (transaction_read_only, default_transaction_read_only; MySQL read_only / super_read_only).

Each finding comes with one sentence for the log, e.g. "connection pooler in transaction pooling detected
(PgBouncer or similar): backend pid changed 123 -> 456 between two transactions of one client connection".
The functions take DB-API connections in autocommit mode (psycopg, PyMySQL) and run a few cheap queries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from premigrate.errors import ReadOnlyServer, TopologyRefused

# session: a pooler that keeps one backend per client connection (as good as direct); unknown: a pooler whose mode
# could not be told (no probe connection), treated like transaction pooling.
Pooling = Literal["session", "transaction", "statement", "unknown"]
# The message PgBouncer sends (with SQLSTATE 08P01) when a client begins a transaction in statement pooling; it
# then closes the client connection.
_STATEMENT_POOLING_MESSAGE = "statement pooling"
# MySQL errnos: unknown system variable, unknown table, unknown column, no access to a table.
_ER_UNKNOWN_SYSTEM_VARIABLE = 1193
_ER_NO_SUCH_TABLE = 1146
_ER_BAD_FIELD = 1054
_ER_TABLEACCESS_DENIED = 1142
# Read-only errors, by dialect: PostgreSQL read_only_sql_transaction (a hot standby, default_transaction_read_only);
# MySQL ER_OPTION_PREVENTS_STATEMENT (--read-only / --super-read-only), ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION.
_READ_ONLY_SQLSTATES = {"25006"}
_READ_ONLY_ERRNOS = {1290, 1792}
# Galera: ER_UNKNOWN_COM_ERROR "WSREP has not yet prepared node for application use" (a node that is not synced,
# or is outside the primary component, e.g. during a node failure): transient while waiting.
_GALERA_NOT_READY_ERRNOS = {1047}
# How many times the pooling test runs behind a pooler before it concludes session pooling.
_POOLING_ROUNDS = 8


@dataclass(frozen=True)
class Topology:
    """What one connection leads to. `findings` are log-ready sentences; `reason` joins them."""

    dialect: str
    pooling: Pooling | None = None  # None: no pooler between us and the server
    galera: bool = False
    osu_method: str | None = None  # Galera wsrep_OSU_method of this session: TOI | RSU | NBO
    cluster_size: int | None = None
    group_replication: bool = False
    member_role: str | None = None  # Group Replication: PRIMARY | SECONDARY
    hot_standby: bool = False
    read_only: bool = False
    findings: tuple[str, ...] = ()

    @property
    def session_lock_trusted(self) -> bool:
        """Whether a session lock (advisory lock, GET_LOCK) excludes every other runner here."""
        return self.pooling in (None, "session") and not (self.galera or self.group_replication)

    @property
    def lock_mode(self) -> Literal["advisory", "table"]:
        """What `--lock-mode auto` resolves to."""
        return "advisory" if self.session_lock_trusted else "table"

    @property
    def writable(self) -> bool:
        return not (self.hot_standby or self.read_only)

    @property
    def reason(self) -> str:
        if self.findings:
            return "; ".join(self.findings)
        return "direct connection to a single server: session locks hold"


# -- PostgreSQL -----------------------------------------------------------------------------------------------------


def detect_postgres(conn: Any, probe: Any | None = None) -> Topology:
    """Inspect a psycopg connection in autocommit mode.

    `probe` is a second connection to the same URL (the lock session will do). It makes the pooling test certain:
    it holds a transaction open between `conn`'s two, so a pooler that released `conn`'s backend at COMMIT hands
    that backend to the probe, and `conn` gets another one. Without a probe the test still catches a pooler that
    happens to switch backends, and can miss one that gives the same backend back.

    In statement pooling PgBouncer closes `conn` when the test begins a transaction: open a new connection before
    using it for anything else (the run is refused there anyway).
    """
    _require_autocommit(conn)
    findings: list[str] = []
    pooling: Pooling | None = None

    real_pid = _one(conn, "SELECT pg_backend_pid()")
    key_pid = getattr(getattr(conn, "info", None), "backend_pid", None)
    pooler = key_pid is not None and int(real_pid) != int(key_pid)

    try:
        # Behind a pooler, the test is repeated until the backend moves: under concurrent clients a transaction
        # pooler may hand `conn` its old backend back by chance, which looks like session pooling. Session pooling
        # can never move it, so the rounds cost time there only (a few round trips, once per run with work).
        for _ in range(_POOLING_ROUNDS if pooler and probe is not None else 1):
            first = _pid_in_transaction(conn)
            if probe is not None:
                _require_autocommit(probe)
                with probe.cursor() as cur:
                    cur.execute("BEGIN")
                    try:
                        cur.execute("SELECT pg_backend_pid()")
                        probe_row = cur.fetchone()
                        second = _pid_in_transaction(conn)
                    finally:
                        cur.execute("COMMIT")
                # The probe got the backend `conn` just released: only a transaction pooler hands it on.
                if probe_row is not None and int(probe_row[0]) == first and pooler:
                    second = -1 if second == first else second
            else:
                second = _pid_in_transaction(conn)
            if first != second:
                break
    except Exception as exc:
        if getattr(exc, "sqlstate", None) == "08P01" and _STATEMENT_POOLING_MESSAGE in str(exc):
            pooling = "statement"
            findings.append("connection pooler in statement pooling detected (PgBouncer or similar): it refused a"
                            " multi-statement transaction")
        else:
            raise
    else:
        if first != second:
            pooling = "transaction"
            moved = f"changed {first} -> {second}" if second != -1 else f"{first} went to another client"
            findings.append(f"connection pooler in transaction pooling detected (PgBouncer or similar): backend pid"
                            f" {moved} between two transactions of one client connection")
        elif pooler and probe is not None:
            pooling = "session"
            findings.append(f"connection pooler in session pooling detected (pid {key_pid} at connect, backend pid"
                            f" {real_pid}): one backend per client connection, session locks hold")
        elif pooler:
            pooling = "unknown"
            findings.append(f"connection pooler or proxy detected (pid {key_pid} at connect, backend pid {real_pid});"
                            " its pooling mode was not tested (no second connection): session locks not trusted")

    hot_standby = read_only = False
    if pooling != "statement":  # the connection is closed then
        in_recovery, tx_read_only, default_read_only = _row(conn, (
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'),"
            " current_setting('default_transaction_read_only')"))
        if in_recovery:
            hot_standby = True
            findings.append("server is a hot standby (pg_is_in_recovery() is true): it cannot take writes")
        elif "on" in (tx_read_only, default_read_only):
            read_only = True
            findings.append("session is read-only (default_transaction_read_only = on): it cannot take writes")
    return Topology("postgresql", pooling=pooling, hot_standby=hot_standby, read_only=read_only,
                    findings=tuple(findings))


def _pid_in_transaction(conn: Any) -> int:
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        try:
            cur.execute("SELECT pg_backend_pid()")
            row = cur.fetchone()
        except BaseException:
            if not (getattr(conn, "closed", False) or getattr(conn, "broken", False)):
                cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")
    return int(row[0])


# -- MySQL / MariaDB ------------------------------------------------------------------------------------------------


def detect_mysql(conn: Any) -> Topology:
    """Inspect a PyMySQL connection: Galera, Group Replication, read-only server or session."""
    findings: list[str] = []

    galera = False
    osu_method: str | None = None
    cluster_size: int | None = None
    wsrep = _optional_row(conn, "SELECT @@global.wsrep_on, @@session.wsrep_OSU_method")
    if wsrep is not None and _on(wsrep[0]):
        galera = True
        osu_method = str(wsrep[1]).upper()
        size = _optional_row(conn, "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'")
        cluster_size = int(size[1]) if size and str(size[1]).isdigit() else None
        members = f"{cluster_size} nodes" if cluster_size is not None else "cluster"
        findings.append(f"Galera {members} detected (wsrep_on = ON, wsrep_OSU_method = {osu_method}): GET_LOCK is"
                        " local to one node")

    group_replication, member_role = _group_replication(conn)
    if group_replication:
        findings.append(f"MySQL Group Replication member detected (role {member_role or 'unknown'}): GET_LOCK is"
                        " local to one member")

    read_only = False
    flags = _optional_row(conn, "SELECT @@global.read_only, @@session.transaction_read_only")
    if flags is None:  # MySQL 5.7 before 5.7.20 and MariaDB before 10.3 spell it tx_read_only
        flags = _optional_row(conn, "SELECT @@global.read_only, @@session.tx_read_only")
    super_ro = _optional_row(conn, "SELECT @@global.super_read_only")  # MySQL only
    if flags is not None:
        if _on(flags[0]) or (super_ro is not None and _on(super_ro[0])):
            read_only = True
            findings.append("server is read-only (read_only = ON): a replica, or a node kept out of writes")
        elif _on(flags[1]):
            read_only = True
            findings.append("session is read-only (transaction_read_only = ON): it cannot take writes")
    return Topology("mysql", galera=galera, osu_method=osu_method, cluster_size=cluster_size,
                    group_replication=group_replication, member_role=member_role, read_only=read_only,
                    findings=tuple(findings))


def _group_replication(conn: Any) -> tuple[bool, str | None]:
    """Whether this server is an active Group Replication member, and its role. MariaDB has no such table."""
    rows = _optional_rows(conn, "SELECT MEMBER_STATE, MEMBER_ROLE FROM performance_schema.replication_group_members"
                                " WHERE MEMBER_ID = @@global.server_uuid")
    if rows is None:  # MySQL 5.7 has no MEMBER_ROLE
        rows = _optional_rows(conn, "SELECT MEMBER_STATE, NULL FROM performance_schema.replication_group_members"
                                    " WHERE MEMBER_ID = @@global.server_uuid")
    return group_member(rows or [])


def group_member(rows: list[tuple[Any, ...]]) -> tuple[bool, str | None]:
    """(member, role) from this server's replication_group_members rows. OFFLINE, ERROR and UNREACHABLE members
    take no part in the group's writes; a member that is ONLINE or RECOVERING does."""
    for state, role in rows:
        if str(state).upper() in ("ONLINE", "RECOVERING"):
            return True, (str(role).upper() if role else None)
    return False, None


# -- errors while waiting -------------------------------------------------------------------------------------------


def unavailable_reason(dialect: str, exc: BaseException) -> str | None:
    """Classify a statement error that means "this server cannot take our writes right now":
    "read_only" (a hot standby or read-only server: transient during the wait, a failover may be in progress;
    final after it) or "galera_not_ready" (a Galera node not synced or outside the primary component); else None."""
    if dialect == "postgresql":
        if getattr(exc, "sqlstate", None) in _READ_ONLY_SQLSTATES:
            return "read_only"
        return None
    if dialect == "mysql":
        errno = _errno(exc)
        if errno in _READ_ONLY_ERRNOS:
            return "read_only"
        if errno in _GALERA_NOT_READY_ERRNOS:
            return "galera_not_ready"
    return None


def read_only_reason(dialect: str, fetch: Callable[[str], list[tuple[Any, ...]]]) -> str | None:
    """Why a freshly connected server cannot take writes (one cheap query on a writable session), or None.
    `fetch` runs a read-only query (Driver.fetch)."""
    if dialect == "postgresql":
        in_recovery, read_only = fetch(
            "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')")[0]
        if in_recovery:
            return "hot standby (pg_is_in_recovery() is true)"
        if str(read_only) == "on":
            return "read-only session (default_transaction_read_only = on)"
    elif dialect == "mysql":
        rows = fetch("SELECT @@global.read_only")
        if rows and _on(rows[0][0]):
            return "read-only server (read_only = ON)"
    return None


def read_only_error(server: str, topology: Topology | None = None) -> ReadOnlyServer:
    """The exit-3 error once the wait is over and the server still cannot take writes."""
    why = topology.reason if topology and not topology.writable else "it refused a write as read-only"
    if topology is not None and topology.dialect == "mysql":
        fix = "point premigrate at the primary (the writer endpoint), not a replica"
    else:
        fix = ("point premigrate at the primary: list every host and add target_session_attrs=read-write to the URL"
               " (postgresql://h1:5432,h2:5432/db?target_session_attrs=read-write)")
    return ReadOnlyServer(f"the database server {server} is read-only ({why}); {fix}", reason="read_only",
                          server=server)


def refuse(topology: Topology, *, allow_rsu: bool = False) -> TopologyRefused | None:
    """The refusal for a topology in which migrations cannot be applied safely, or None when they can."""
    if topology.pooling == "statement":
        return TopologyRefused(
            "the connection goes through a pooler in statement pooling, where a migration cannot run in a"
            " transaction; connect premigrate to the database directly or through a pool in session or transaction"
            " mode", reason="statement_pooling")
    if topology.galera and topology.osu_method == "RSU" and not allow_rsu:
        return TopologyRefused(
            "Galera wsrep_OSU_method is RSU: schema changes would run on this node only and the other nodes would"
            " never see them; set wsrep_OSU_method = TOI (the default) for premigrate's user, or allow RSU"
            " explicitly if you run rolling schema upgrades node by node", reason="galera_rsu")
    return None


# -- helpers --------------------------------------------------------------------------------------------------------


def _require_autocommit(conn: Any) -> None:
    if not getattr(conn, "autocommit", True):
        raise ValueError("topology detection needs a connection in autocommit mode")


def _one(conn: Any, sql: str) -> Any:
    return _row(conn, sql)[0]


def _row(conn: Any, sql: str) -> tuple[Any, ...]:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        row = cur.fetchone()
    finally:
        cur.close()
    assert row is not None
    return tuple(row)


def _errno(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


_ABSENT = {_ER_UNKNOWN_SYSTEM_VARIABLE, _ER_NO_SUCH_TABLE, _ER_BAD_FIELD, _ER_TABLEACCESS_DENIED}


def _optional_rows(conn: Any, sql: str) -> list[tuple[Any, ...]] | None:
    """The rows, or None when the server lacks the variable, table or column (another flavour or version)."""
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]
    except Exception as exc:
        if _errno(exc) in _ABSENT:
            return None
        raise
    finally:
        cur.close()


def _optional_row(conn: Any, sql: str) -> tuple[Any, ...] | None:
    rows = _optional_rows(conn, sql)
    return rows[0] if rows else None


def _on(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray)):
        value = value.decode()
    return str(value).strip().upper() in ("1", "ON", "TRUE", "YES")
