"""Opening a MySQL/MariaDB connection: URL parameters, TLS (ssl-mode), the handshake and TCP keepalives."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pymysql
from pymysql.constants import CLIENT

from premigrate.drivers.base import ConnectFailed, DriverSettings
from premigrate.errors import UsageError
from premigrate.model.dsn import Dsn

# errno -> (reason, transient) for connection attempts
_CONNECT_ERRNOS = {
    2002: ("refused", True),  # can't connect through socket
    2003: ("refused", True),  # can't connect to server (refused, unreachable, DNS not yet resolvable, timeout)
    2006: ("connection_reset", True),  # server has gone away
    2013: ("connection_reset", True),  # lost connection during handshake
    1040: ("too_many_connections", True),
    1053: ("starting_up", True),  # server shutdown in progress
    1045: ("auth", False),
    1044: ("auth", False),  # access denied to the database
    1698: ("auth", False),
    1049: ("unknown_database", False),
}
_URL_PARAMS = {"ssl-mode", "ssl-ca", "ssl-cert", "ssl-key", "connect_timeout", "read_timeout", "write_timeout",
               "charset"}
# Bound on reads of premigrate's own quick queries (history, locks). Migration statements run without one:
# a long ALTER is legitimate, and TCP keepalives notice a server that vanished.
BOOKKEEPING_READ_TIMEOUT = 60.0
_SSL_MODES = ("disabled", "preferred", "required", "verify_ca", "verify_identity")


def float_param(params: dict[str, str], name: str) -> float | None:
    if name not in params:
        return None
    try:
        value = float(params[name])
    except ValueError:
        raise UsageError(f"database URL: {name}={params[name]!r} is not a number of seconds") from None
    if value <= 0:
        raise UsageError(f"database URL: {name} must be a positive number of seconds")
    return value


def ssl_kwargs(params: dict[str, str]) -> dict[str, Any]:
    """TLS settings. Without ssl-mode: PREFERRED, as the mysql client (TLS when the server offers it, unverified)."""
    mode = _ssl_mode(params)
    ca, cert, key = params.get("ssl-ca"), params.get("ssl-cert"), params.get("ssl-key")
    if not mode:
        mode = "verify_ca" if ca else ("required" if cert else "preferred")
    if mode == "disabled":
        return {"ssl_disabled": True}
    try:
        if mode in ("preferred", "required"):
            # Nothing is verified in these modes, so the system's CA store is not loaded: loading it is a measurable
            # share of every run (bench/bench.py; PyMySQL's own default context loads it).
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
            context.check_hostname = mode == "verify_identity"
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"database URL: cannot load ssl-ca {ca!r}: {getattr(exc, 'strerror', None) or exc}") from None
    if cert:
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"database URL: cannot load ssl-cert/ssl-key: {exc}") from None
    return {"ssl": context, "_require_tls": mode != "preferred"}


def open_connection(kwargs: dict[str, Any], require_tls: bool) -> pymysql.connections.Connection:
    """Connect. PyMySQL insists on TLS whenever it is given a context; PREFERRED must fall back to a plain
    connection when the server offers no TLS, so the requirement is set from the mode before connecting."""
    conn = pymysql.connections.Connection(**kwargs, defer_connect=True)
    if "ssl" in kwargs:
        conn._ssl_required = require_tls  # type: ignore[attr-defined]
    conn.connect()
    return conn


def set_keepalive(conn: pymysql.connections.Connection) -> None:
    sock = getattr(conn, "_sock", None)
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
            if hasattr(socket, option):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    except OSError:
        pass  # a Unix socket has no TCP options


def check_params(params: dict[str, str]) -> None:
    """The URL's parameters: known names, and values connect_kwargs can use (the ssl-* files are read there)."""
    unknown = sorted(set(params) - _URL_PARAMS)
    if unknown:
        raise UsageError(
            f"database URL: unknown MySQL parameter {unknown[0]!r}; supported: {', '.join(sorted(_URL_PARAMS))}"
        )
    for name in ("connect_timeout", "read_timeout", "write_timeout"):
        float_param(params, name)
    _ssl_mode(params)
    if "charset" in params:
        _charset(params["charset"])


def _ssl_mode(params: dict[str, str]) -> str:
    """ssl-mode, lower case with underscores ('' when not given); one of _SSL_MODES or a UsageError."""
    mode = params.get("ssl-mode", "").lower().replace("-", "_")
    if mode and mode not in _SSL_MODES:
        raise UsageError(f"database URL: ssl-mode={params['ssl-mode']!r} is not one of "
                         f"{', '.join(m.upper() for m in _SSL_MODES)}")
    return mode


def connect_kwargs(dsn: Dsn, settings: DriverSettings) -> dict[str, Any]:
    """PyMySQL's connect() arguments for a URL: its parameters checked, TLS from ssl-mode."""
    params = dsn.params_dict
    check_params(params)
    kwargs: dict[str, Any] = {
        "host": dsn.host or "localhost",
        "port": dsn.port or 3306,
        "user": dsn.user or "root",
        "password": dsn.password or "",
        "database": dsn.database,
        "autocommit": True,
        "charset": params.get("charset", "utf8mb4"),  # checked by check_params
        "connect_timeout": float_param(params, "connect_timeout") or settings.connect_timeout or 10,
        "read_timeout": float_param(params, "read_timeout") or BOOKKEEPING_READ_TIMEOUT,
        "write_timeout": float_param(params, "write_timeout"),
        "program_name": settings.application_name,
        # Statements are split by premigrate and sent one per call, so an error names its statement. MULTI_STATEMENTS
        # lets a history write go out in one message with the statement after it (drivers/mysql_write_first.py);
        # the mysql client and dbmate's driver send with it on too, so a file's text runs as it would with them.
        "client_flag": CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS,
    }
    kwargs.update(ssl_kwargs(params))
    return kwargs


def _charset(name: str) -> str:
    """A charset PyMySQL knows (its table of the server's character sets); it fails with an AttributeError on any
    other, before a byte is sent."""
    from pymysql.charset import charset_by_name

    if charset_by_name(name) is None:
        raise UsageError(f"database URL: charset={name!r} is not a MySQL/MariaDB character set; use a server "
                         "character set name such as utf8mb4 (the default)")
    return name


def map_connect_error(exc: BaseException) -> ConnectFailed:
    errno = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    reason, transient = _CONNECT_ERRNOS.get(errno or 0, ("other", False))
    if errno == 2003 and ("Name or service not known" in message or "name resolution" in message):
        reason = "dns"
    elif errno == 2003 and "timed out" in message:
        reason = "timeout"
    return ConnectFailed(f"({errno}) {message}" if errno else message, transient=transient, reason=reason)
