"""MySQL and MariaDB through PyMySQL: SQL and error mapping only.

DDL commits implicitly here, so transactional_ddl is False: the runner records progress statement by statement.
"""

from __future__ import annotations

import math
import ssl
from datetime import datetime, timezone
from functools import partial
from typing import Any, ClassVar, cast

import pymysql
from pymysql.constants import SERVER_STATUS

from premigrate.drivers.base import ConnectFailed, DriverSettings, SqlError, shutdown_socket
from premigrate.drivers.history import SqlHistoryMixin
from premigrate.drivers.mysql_literals import KeptLiterals
from premigrate.drivers.mysql_send import execute_releasing
from premigrate.drivers.mysql_session import COM_RESET_CONNECTION, MySQLSessionMixin
from premigrate.drivers.mysql_write_first import MySQLWriteFirstMixin
from premigrate.model.dsn import Dsn
from premigrate.model.session_effects import may_change_session, may_switch_database
from premigrate.errors import ConnectionLost
from premigrate.drivers.mysql_connect import (  # noqa: F401 (ssl_kwargs: a name the module had)
    check_params, connect_kwargs, float_param, map_connect_error, open_connection, set_keepalive, ssl_kwargs,
)

_LOST_ERRNOS = {2006, 2013, 2014, 2055, 1053, 1927}  # 1927: connection killed (MariaDB)
# 1205 lock wait timeout (metadata and row locks), 1213 deadlock: nothing took effect, a retry may succeed.
_LOCK_CONTENTION = {1205, 1213}
# lock_wait_timeout's own maximum (one year): "no limit".
_NO_LOCK_LIMIT_S = 31536000


def _quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


GREETING_WINDOW_S = 2.0


def _refuse_wrong_protocol(dsn: Dsn) -> None:
    """ConnectFailed (final) when the URL's port answers like PostgreSQL."""
    from premigrate.drivers.probe import wrong_protocol_hint

    hint = wrong_protocol_hint(dsn)
    if hint is not None:
        raise ConnectFailed(hint, transient=False, reason="wrong_protocol") from None


def _open(dsn: Dsn, handshake: dict[str, Any], require_tls: bool) -> pymysql.connections.Connection:
    """First within a short window: a server greets at once, and a silent port may be a PostgreSQL server, which
    waits for the client to speak first (the probe tells, in a fraction of a second, instead of the whole connect
    timeout). A greeting slower than that is waited for in full after the probe."""
    quick = dict(handshake, read_timeout=min(handshake["read_timeout"], GREETING_WINDOW_S))
    try:
        return open_connection(quick, require_tls)
    except pymysql.err.OperationalError as exc:
        if quick["read_timeout"] >= handshake["read_timeout"] or "timed out" not in str(exc):
            raise
    _refuse_wrong_protocol(dsn)
    return open_connection(handshake, require_tls)


class MySQLDriver(MySQLWriteFirstMixin, MySQLSessionMixin, SqlHistoryMixin):
    dialect: ClassVar[str] = "mysql"
    transactional_ddl: ClassVar[bool] = False
    local_timeouts: ClassVar[bool] = False
    invalid_indexes: ClassVar[bool] = False
    supports_schema: ClassVar[bool] = False
    table_names_fold_case: ClassVar[bool] = True
    code_field: ClassVar[str] = "errno"
    param: ClassVar[str] = "%s"
    releases_held_events: ClassVar[bool] = True  # once a statement is sent (drivers/mysql_send.py)

    def __init__(self, conn: pymysql.connections.Connection, dsn: Dsn, settings: DriverSettings,
                 connect_kwargs: dict[str, Any]) -> None:
        self.conn = conn
        self.dsn = dsn
        self.settings = settings
        self._connect_kwargs = connect_kwargs
        self._thread_id = conn.thread_id()  # type: ignore[no-untyped-call]
        self._literals = KeptLiterals()  # the history writes' parameters, bound
        # Qualified with the URL's database: a migration's `USE other_db` must not move premigrate's bookkeeping.
        self._history_ref = (_quote_ident(dsn.database) + "." if dsn.database else "") + _quote_ident(settings.table)
        self._statement_read_timeout = self._url_float("read_timeout")
        self._held_set: list[str] = []  # assignments of the session restore, sent with the next SET (see there)

    # -- connection ---------------------------------------------------------------------------------------------

    @classmethod
    def check_url(cls, dsn: Dsn) -> None:
        check_params(dsn.params_dict)

    @classmethod
    def connect(cls, dsn: Dsn, settings: DriverSettings) -> MySQLDriver:
        kwargs = connect_kwargs(dsn, settings)
        require_tls = kwargs.pop("_require_tls", False)
        # The server's greeting is read under read_timeout: bound it by the connect timeout, or a server (or proxy)
        # that accepts and never answers would hold every attempt for a minute, past --wait-timeout.
        handshake = dict(kwargs, read_timeout=min(kwargs["read_timeout"], kwargs["connect_timeout"]))
        try:
            conn = _open(dsn, handshake, require_tls)
        except pymysql.err.MySQLError as exc:
            failure = map_connect_error(exc)
            if failure.reason in ("other", "connection_reset"):
                _refuse_wrong_protocol(dsn)
            raise failure from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectFailed(f"cannot connect to MySQL: {exc}", transient=False, reason="tls") from None
        if require_tls and not isinstance(getattr(conn, "_sock", None), ssl.SSLSocket):
            conn.close()
            raise ConnectFailed("the server does not support TLS but ssl-mode requires it", transient=False,
                                reason="tls")
        set_keepalive(conn)
        conn._read_timeout = kwargs["read_timeout"]  # type: ignore[attr-defined]
        driver = cls(conn, dsn, settings, kwargs)
        if settings.read_only:
            driver._exec("SET SESSION TRANSACTION READ ONLY")
        return driver

    def _url_float(self, name: str) -> float | None:
        return float_param(self.dsn.params_dict, name)

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - closing a broken connection must not mask the real error
            pass

    def rebound(self, dsn: Dsn, settings: DriverSettings) -> MySQLDriver | None:
        if (dsn.host, dsn.port, dsn.user, dsn.password, dsn.params) != (
                self.dsn.host, self.dsn.port, self.dsn.user, self.dsn.password, self.dsn.params):
            return None
        kwargs = connect_kwargs(dsn, settings)
        kwargs.pop("_require_tls", None)
        try:
            # COM_RESET_CONNECTION (MySQL 5.7.3, MariaDB 10.2.4): session variables, temporary tables, user
            # variables, GET_LOCK locks and an open transaction go, as if the session were new. PyMySQL has no
            # call for it: the command is sent as its client library sends it (one byte, an OK packet back).
            self.conn._execute_command(COM_RESET_CONNECTION, b"")  # type: ignore[attr-defined]
            self.conn._read_ok_packet()  # type: ignore[attr-defined]
            if dsn.database:
                self.conn.select_db(dsn.database)
        except (pymysql.err.MySQLError, OSError):
            return None
        driver = MySQLDriver(self.conn, dsn, settings, kwargs)
        if settings.read_only:
            driver._exec("SET SESSION TRANSACTION READ ONLY")
        return driver

    def server_version(self) -> str:
        # MariaDB prefixes its version with "5.5.5-" for old replication clients.
        return f"MySQL {self.conn.get_server_info().removeprefix('5.5.5-')}"  # type: ignore[no-untyped-call]

    def prepare_session(self) -> None:
        pass

    def ensure_schema(self) -> None:
        pass

    def limit_statement_time(self, seconds: float) -> None:
        # MariaDB: max_statement_time in seconds, any statement; MySQL: max_execution_time in ms, SELECTs only.
        if "mariadb" in self.conn.get_server_info().lower():  # type: ignore[no-untyped-call]
            self._exec(f"SET SESSION max_statement_time = {seconds:.3f}")
        else:
            self._exec(f"SET SESSION max_execution_time = {max(1, round(seconds * 1000))}")

    @property
    def is_mariadb(self) -> bool:
        return "mariadb" in self.conn.get_server_info().lower()  # type: ignore[no-untyped-call]

    def set_timeouts(self, lock_timeout: float | None, statement_timeout: float | None, *, local: bool) -> None:
        # No transactional DDL here, so `local` cannot apply: these are session values until reset_timeouts().
        parts = []
        if lock_timeout is not None:
            # Whole seconds only; 0 would mean NOWAIT on MariaDB, so "no limit" is the variable's maximum.
            seconds = _NO_LOCK_LIMIT_S if lock_timeout <= 0 else max(1, math.ceil(lock_timeout))
            parts += [f"lock_wait_timeout = {seconds}", f"innodb_lock_wait_timeout = {seconds}"]
        if statement_timeout is not None:
            if self.is_mariadb:
                parts.append(f"max_statement_time = {max(0.0, statement_timeout):.3f}")
            else:
                milliseconds = 0 if statement_timeout <= 0 else max(1, round(statement_timeout * 1000))
                parts.append(f"max_execution_time = {milliseconds}")
        if parts:
            self._send_set(["SESSION " + ", ".join(parts)])  # with what the session restore held back

    def reset_timeouts(self) -> None:
        timer = "max_statement_time" if self.is_mariadb else "max_execution_time"
        self._exec(f"SET SESSION lock_wait_timeout = DEFAULT, innodb_lock_wait_timeout = DEFAULT, {timer} = DEFAULT")

    def session_id(self) -> int | None:
        return int(self._thread_id)

    def blockers(self, session_id: int) -> list[dict[str, Any]]:
        # MariaDB keeps no lock-wait graph for metadata locks without extra plugins: name the sessions with an open
        # transaction or a running statement, oldest first; the one holding the table is among them.
        rows = self._fetchall(
            """SELECT p.id, p.user, p.host, p.db, p.command, p.time, p.state, LEFT(p.info, 200), t.trx_started
               FROM information_schema.processlist p
               LEFT JOIN information_schema.innodb_trx t ON t.trx_mysql_thread_id = p.id
               WHERE p.id NOT IN (%s, CONNECTION_ID()) AND p.command NOT IN ('Daemon', 'Binlog Dump')
                 AND (t.trx_mysql_thread_id IS NOT NULL
                      OR (p.command = 'Query' AND COALESCE(p.state, '') NOT LIKE 'Waiting for%%'))
               ORDER BY t.trx_started IS NULL, t.trx_started, p.time DESC LIMIT 5""",
            (session_id,),
        )
        return [{"connection_id": cid, "user": user, "host": host, "db": db, "command": command, "time_s": seconds,
                 "state": state, "query": query,
                 "transaction_started": started.isoformat() if started is not None else None}
                for cid, user, host, db, command, seconds, state, query, started in rows]

    def drop_invalid_index(self, name: str) -> str | None:
        return None

    # -- statements ---------------------------------------------------------------------------------------------

    def _exec(self, sql: str, params: tuple[Any, ...] | None = None) -> None:
        self._send_held()
        self.statements_sent += 1
        try:
            with self.conn.cursor() as cur:
                cur.execute(self._literals.bind(self.conn, sql, params))
        except (pymysql.err.MySQLError, OSError) as exc:
            raise self.map_error(exc) from exc

    def _exec_count(self, sql: str, params: tuple[Any, ...] | None = ()) -> int:
        self._send_held()
        self.statements_sent += 1
        try:
            with self.conn.cursor() as cur:
                # rows matched (CLIENT.FOUND_ROWS), not only rows changed
                return int(cur.execute(self._literals.bind(self.conn, sql, params)))
        except (pymysql.err.MySQLError, OSError) as exc:
            raise self.map_error(exc) from exc

    def _fetchall(self, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        self._send_held()
        self.statements_sent += 1
        try:
            with self.conn.cursor() as cur:
                cur.execute(self._literals.bind(self.conn, sql, params))
                return list(cur.fetchall())
        except (pymysql.err.MySQLError, OSError) as exc:
            raise self.map_error(exc) from exc

    def execute(self, statement: str) -> int | None:
        # No read timeout while a migration statement runs (unless the URL sets read_timeout). PyMySQL applies
        # `_read_timeout` to the socket before every read, so switching it here takes effect for this statement.
        first = self._take_first()  # a held history write goes out in the same message (mysql_write_first.py)
        self.conn._read_timeout = self._statement_read_timeout  # type: ignore[attr-defined]
        self.statements_sent += 1
        try:
            with self.conn.cursor() as cur:
                # No parameters: PyMySQL leaves % alone. _screen runs once the statement is sent.
                log_failure = (execute_releasing(self.conn, cur, statement, partial(self._screen, statement))
                               if first is None else self._execute_after(cur, first, statement))
                # Affected rows of the statement itself (found rows: the session has CLIENT.FOUND_ROWS), read
                # before the result sets of a CALL are drained.
                count = cur.rowcount
                while cur.nextset():  # a CALL returns several result sets; errors can surface here
                    pass
        except (pymysql.err.MySQLError, OSError) as exc:
            raise self.map_error(exc) from exc
        finally:
            self.conn._read_timeout = self._connect_kwargs["read_timeout"]  # type: ignore[attr-defined]
        if log_failure is not None:
            raise log_failure
        return count if isinstance(count, int) and count >= 0 else None

    def _screen(self, statement: str) -> None:
        self._database_unsure = self._database_unsure or may_switch_database(statement, "mysql")
        self._session_touched = self._session_touched or may_change_session(statement)

    def map_error(self, exc: BaseException) -> Exception:
        errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if isinstance(exc, (pymysql.err.InterfaceError, OSError)) or errno in _LOST_ERRNOS:
            return ConnectionLost(f"lost the connection to MySQL: {exc}")
        message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
        return SqlError(message, code=str(errno) if errno is not None else None, code_field=self.code_field,
                        lock_contention=errno in _LOCK_CONTENTION)

    def _in_open_transaction(self) -> bool:
        return bool(self.conn.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)  # type: ignore[attr-defined]

    def abort(self) -> None:
        sock = getattr(self.conn, "_sock", None)  # PyMySQL's socket; None once closed
        if sock is not None:
            shutdown_socket(sock.fileno())

    def interrupt(self) -> None:
        """Stop the running statement: KILL QUERY from a second connection. Safe to call from another thread."""
        kwargs = dict(self._connect_kwargs)
        kwargs["connect_timeout"] = 5
        kwargs["read_timeout"] = 5
        try:
            if self.settings.password_source is not None:
                kwargs["password"] = self.settings.password_source()
            killer = open_connection(kwargs, require_tls=False)
            try:
                with killer.cursor() as cur:
                    cur.execute(f"KILL QUERY {int(self._thread_id)}")
            finally:
                killer.close()
        except Exception:  # noqa: BLE001 - best effort on the signal path
            pass

    # -- history ------------------------------------------------------------------------------------------------

    def _to_datetime(self, value: Any) -> datetime:
        return cast(datetime, value).replace(tzinfo=timezone.utc)

    def _from_datetime(self, value: datetime) -> Any:
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def _may_probe_history(self) -> bool:
        return True  # a failed statement leaves an open transaction as it was

    def _history_missing(self, exc: SqlError) -> bool:
        return exc.code == "1146"  # ER_NO_SUCH_TABLE

    def history_exists(self) -> bool:
        rows = self._fetchall(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = COALESCE(%s, DATABASE()) "
            "AND table_name = %s",
            (self.dsn.database or None, self.settings.table),
        )
        return bool(rows[0][0])

    def ensure_history_table(self) -> bool:
        if self.history_exists():
            return False
        self._exec(
            f"""CREATE TABLE IF NOT EXISTS {self.history_ref} (
                migration_id VARCHAR(191) NOT NULL PRIMARY KEY,
                version VARCHAR(191) NULL,
                description VARCHAR(1024) NOT NULL,
                kind VARCHAR(16) NOT NULL,
                script VARCHAR(1024) NOT NULL,
                checksum VARCHAR(80) NOT NULL,
                applied_at DATETIME(6) NOT NULL,
                execution_ms BIGINT NOT NULL,
                applied_by VARCHAR(255) NOT NULL,
                state VARCHAR(16) NOT NULL,
                statements_done INT NOT NULL,
                statements_total INT NOT NULL,
                statement_started INT NOT NULL,
                statement_hashes MEDIUMTEXT NOT NULL,
                error TEXT NULL,
                premigrate_version VARCHAR(32) NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""
        )
        return True

    def list_tables(self) -> list[str]:
        rows = self._fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_type = 'BASE TABLE' ORDER BY 1"
        )
        return [r[0] for r in rows]
