"""Which protocol a port speaks, asked only after a connection failed in a way that suggests the wrong server.

A PostgreSQL URL pointed at a MySQL port fails with libpq's "received invalid response to SSL negotiation: d", and a
MySQL URL pointed at a PostgreSQL port waits for a greeting that never comes; both say nothing about the cause.
The two protocols differ in who speaks first, which makes a cheap and reliable test:
- MySQL and MariaDB greet every new connection at once: a packet (3-byte length, 1-byte sequence) whose first
  payload byte is protocol version 10 (MySQL client/server protocol, "Initial Handshake Packet").
- PostgreSQL waits for the client; to an SSLRequest (length 8, code 80877103) it answers one byte, 'S' or 'N'
  (PostgreSQL protocol, "SSL Session Encryption").
"""

from __future__ import annotations

import socket
import struct

from premigrate.model.dsn import DEFAULT_PORTS, Dsn

PROBE_TIMEOUT_S = 2.0
MYSQL_PROTOCOL_VERSION = 10
PG_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def endpoint_of(dsn: Dsn) -> tuple[str, int] | None:
    """The one TCP host and port of a URL, or None (Unix sockets, several hosts, host given as a parameter)."""
    params = dsn.params_dict
    if "host" in params or "hostaddr" in params or "port" in params:
        return None
    host = dsn.host or ""
    if not host or host.startswith("/") or "," in host:
        return None
    return host, dsn.port or DEFAULT_PORTS.get(dsn.dialect, 0)


def _exchange(endpoint: tuple[str, int], send: bytes, want: int, timeout: float) -> bytes:
    try:
        with socket.create_connection(endpoint, timeout=timeout) as sock:
            if send:
                sock.sendall(send)
            data = b""
            while len(data) < want:
                chunk = sock.recv(want - len(data))
                if not chunk:
                    break
                data += chunk
            return data
    except OSError:
        return b""


def greets_like_mysql(endpoint: tuple[str, int], timeout: float = PROBE_TIMEOUT_S) -> bool:
    """The server spoke first with a MySQL/MariaDB handshake packet."""
    data = _exchange(endpoint, b"", 5, timeout)
    return len(data) == 5 and data[4] == MYSQL_PROTOCOL_VERSION


def answers_like_postgresql(endpoint: tuple[str, int], timeout: float = PROBE_TIMEOUT_S) -> bool:
    """The server stayed silent until asked, then answered an SSLRequest with a single S or N."""
    if greets_like_mysql(endpoint, timeout=min(timeout, 0.5)):
        return False
    return _exchange(endpoint, PG_SSL_REQUEST, 1, timeout) in (b"S", b"N")


def wrong_protocol_hint(dsn: Dsn) -> str | None:
    """When the URL's port answered like the other database: what to say, else None."""
    endpoint = endpoint_of(dsn)
    if endpoint is None:
        return None
    where = f"{endpoint[0]}:{endpoint[1]}"
    if dsn.dialect == "postgresql" and greets_like_mysql(endpoint):
        return (f"{where} answered like MySQL/MariaDB, not PostgreSQL: check the port (PostgreSQL's default is "
                "5432) or use a mysql:// URL")
    if dsn.dialect == "mysql" and answers_like_postgresql(endpoint):
        return (f"{where} answered like PostgreSQL, not MySQL/MariaDB: check the port (MySQL's default is 3306) or "
                "use a postgresql:// URL")
    return None
