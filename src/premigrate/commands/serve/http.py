"""The HTTP server and its request handler: the four endpoints over the health state."""

from __future__ import annotations

import json
import socket
import socketserver
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from premigrate.eventlog import EventLog
from premigrate.commands.serve.health import HealthState
from premigrate.commands.serve.snapshot import ENDPOINTS

_JSON = "application/json"


# -- HTTP -----------------------------------------------------------------------------------------------------------

class HealthServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: HealthState, log: EventLog) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self.log = log
        super().__init__(address, HealthHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name with socket.getfqdn(), which can hang for seconds on a
        # container's DNS; nothing here needs it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class HealthHandler(BaseHTTPRequestHandler):
    server: HealthServer
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
