"""Opening a MySQL/MariaDB connection: URL parameters, TLS (ssl-mode), the handshake and TCP keepalives."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pymysql

from premigrate.errors import UsageError

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
    mode = params.get("ssl-mode", "").lower().replace("-", "_")
    ca, cert, key = params.get("ssl-ca"), params.get("ssl-cert"), params.get("ssl-key")
    if mode and mode not in _SSL_MODES:
        raise UsageError(f"database URL: ssl-mode={params['ssl-mode']!r} is not one of "
                         f"{', '.join(m.upper() for m in _SSL_MODES)}")
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
