"""The HTTP server and its request handler: the four endpoints over the health state."""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from premigrate.eventlog import EventLog
from premigrate.commands.serve.health import HealthState
from premigrate.commands.serve.snapshot import ENDPOINTS

_JSON = "application/json"
# No endpoint takes a body; one up to this size is read and dropped so that the connection can carry the next request.
MAX_BODY_BYTES = 64 * 1024


# -- HTTP -----------------------------------------------------------------------------------------------------------

class HealthServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: HealthState, log: EventLog) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.state = state
        self.log = log
        self.stopping = False
        self._busy = 0
        self._idle = threading.Condition()
        super().__init__(address, HealthHandler)

    @contextmanager
    def answering(self) -> Iterator[None]:
        """Counts a request from its dispatch until its answer is written, for wait_idle()."""
        with self._idle:
            self._busy += 1
        try:
            yield
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> int:
        """Wait until no request is being answered, at most `timeout` s; the number still being answered.
        Handler threads are daemons: without this wait, the process would exit under a request in flight."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy and self._idle.wait(max(0.0, deadline - time.monotonic())):
                pass
            return self._busy

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver's default prints a multi-line traceback to stderr; the log is one JSON object per line.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client went away or stalled: nothing to answer, nothing to report
        self.log.error("internal_error", error=self.state.scrub(f"{type(exc).__name__}: {exc}"),
                       client=str(client_address[0]) if client_address else None)

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
    # Set by parse_request; send_error and log_request can run before (a request line too long or unparsable).
    path = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._answer(head=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head=True)

    def __getattr__(self, name: str) -> Any:
        # Every other method (POST, PUT, DELETE, OPTIONS, ...) is 405 rather than http.server's 501.
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        with self.server.answering():
            if self._drain_body():
                self._json(405, {"error": f"method {self.command} not allowed; use GET"}, head=False,
                           extra={"Allow": "GET, HEAD"})

    def _answer(self, *, head: bool) -> None:
        with self.server.answering():
            if self._drain_body():
                self._route(head=head)

    def _drain_body(self) -> bool:
        """Read and drop the request's body, so that its bytes are not parsed as the next request. False when it
        cannot be (no usable Content-Length, or too large): the refusal is sent and the connection closed."""
        if self.headers.get("Transfer-Encoding") is not None:
            # A chunked body is not read: answer, then close rather than parse its chunks as requests.
            self.close_connection = True
            return True
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
        if not lengths:
            return True
        if len(lengths) > 1 or not next(iter(lengths)).isdigit():
            self.send_error(400, f"invalid Content-Length {', '.join(sorted(lengths))!r}")
            return False
        size = int(next(iter(lengths)))
        if size > MAX_BODY_BYTES:
            self.send_error(413, f"a request body of {size} bytes is too large (the endpoints take none; at most "
                                 f"{MAX_BODY_BYTES} bytes are read and dropped)")
            return False
        while size > 0:
            chunk = self.rfile.read(min(size, 16384))
            if not chunk:  # the client closed before sending its whole body
                self.close_connection = True
                return False
            size -= len(chunk)
        return True

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
        if self.server.stopping:
            self.close_connection = True  # serve is stopping: no further request on this connection
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a request line it cannot parse, too long, an HTTP version it does not speak,
        too many headers) answered like every other answer: JSON, then the connection closed."""
        if not self.request_version.startswith("HTTP/1."):
            # Refused before the version was known (or HTTP/0.9's default): answer with a status line all the same.
            self.request_version = self.protocol_version
        self.close_connection = True
        if code == 414 and message is None:
            message = "the request line is longer than 64 KB"
        reason = self.responses.get(code, ("error", ""))[0]
        try:
            # The message may quote the client's request line: scrubbed like every other answer.
            self._json(code, {"error": self.server.state.scrub(message or reason)}, head=self.command == "HEAD")
        except OSError:
            pass  # the client is gone

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # The path is cut: a request line may be up to 64 KB.
        self.server.log.debug("serve_request", method=self.command or None, path=self.path[:200],
                              status=int(code) if str(code).isdigit() else code, client=self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        pass  # errors http.server reports itself (bad request lines, timeouts): not worth a log line
