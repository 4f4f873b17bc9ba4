"""OpenTelemetry traces (engine/tracing.py) sent to an OTLP/HTTP receiver on 127.0.0.1 inside the test, decoded
with the protocol's own protobuf messages."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from premigrate.engine.tracing import FLUSH_BOUND_S, Database, tracer_from_env

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


class Receiver:
    """A minimal OTLP/HTTP trace collector."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.paths.append(self.path)
                receiver.requests.append(request)
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> dict[str, SpanProto]:
        return {s.name: s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans}

    def resource(self) -> dict[str, Any]:
        return {a.key: _value(a.value) for r in self.requests for rs in r.resource_spans
                for a in rs.resource.attributes}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    return getattr(value, which) if which else None


def attributes(span: SpanProto) -> dict[str, Any]:
    return {a.key: _value(a.value) for a in span.attributes}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


class StatementFailed(Exception):
    code = "42P01"


def simulate_run(tracer: Any) -> None:
    """The calls the runner makes for one `up` that applies one migration and fails in the second."""
    tracer.set_database(Database("postgresql", "appdb", "127.0.0.1", 5432))
    with pytest.raises(StatementFailed), tracer.run("up", dry_run=False) as run:
        with tracer.wait():
            pass
        with tracer.lock("premigrate:appdb:premigrate_history"):
            pass
        with tracer.migration("V1__users.sql", version="1", description="users", kind="versioned"):
            with tracer.statement("CREATE TABLE users (id int)", index=1):
                pass
            with tracer.statement("ALTER ROLE app PASSWORD 'hunter2'", index=2) as span:
                span.set("premigrate.rows_affected", 0)
            with tracer.statement("SET app.token = s3cr3t-token", index=3):
                pass
        with tracer.migration("V2__orders.sql", version="2", description="orders", kind="versioned"), \
                tracer.statement("INSERT INTO missing VALUES (1)", index=1):
            raise StatementFailed('relation "missing" does not exist')
        run.set("premigrate.outcome", "never reached")


class TestTraces:
    def test_span_tree(self, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
        """Run > wait, lock, migrations > statements; DB conventions; status from outcome; TRACEPARENT parent;
        OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES on the resource; literals and secrets never exported."""
        monkeypatch.setenv("OTEL_SERVICE_NAME", "billing-migrations")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=staging")
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "TRACEPARENT": f"00-{TRACE_ID}-{PARENT_ID}-01"}
        tracer = tracer_from_env(env, secrets=["s3cr3t-token"], version="9.9.9")
        assert tracer.enabled
        simulate_run(tracer)
        tracer.shutdown()

        assert {"/v1/traces"} == set(receiver.paths)
        spans = receiver.spans()
        assert {"premigrate up", "wait", "lock", "migration V1__users.sql", "migration V2__orders.sql",
                "CREATE appdb", "ALTER appdb", "SET appdb", "INSERT appdb"} == set(spans)
        assert {TRACE_ID} == {s.trace_id.hex() for s in spans.values()}
        run = spans["premigrate up"]
        assert PARENT_ID == run.parent_span_id.hex()
        parent = {name: next((n for n, p in spans.items() if p.span_id == s.parent_span_id), None)
                  for name, s in spans.items()}
        assert {"premigrate up": None, "wait": "premigrate up", "lock": "premigrate up",
                "migration V1__users.sql": "premigrate up", "migration V2__orders.sql": "premigrate up",
                "CREATE appdb": "migration V1__users.sql", "ALTER appdb": "migration V1__users.sql",
                "SET appdb": "migration V1__users.sql", "INSERT appdb": "migration V2__orders.sql"} == parent

        create = attributes(spans["CREATE appdb"])
        assert {"db.system.name": "postgresql", "db.system": "postgresql", "db.namespace": "appdb",
                "db.operation.name": "CREATE", "db.query.text": "CREATE TABLE users (id int)",
                "server.address": "127.0.0.1", "server.port": 5432, "premigrate.statement.index": 1} == create
        assert SpanProto.SPAN_KIND_CLIENT == spans["CREATE appdb"].kind
        assert "ALTER ROLE app PASSWORD '?'" == attributes(spans["ALTER appdb"])["db.query.text"]
        assert "SET app.token = ***" == attributes(spans["SET appdb"])["db.query.text"]
        assert {"premigrate.migration.id": "V1__users.sql", "premigrate.migration.version": "1",
                "premigrate.migration.description": "users", "premigrate.migration.direction": "up",
                "premigrate.migration.kind": "versioned"} == attributes(spans["migration V1__users.sql"])

        assert Status.STATUS_CODE_OK == spans["migration V1__users.sql"].status.code
        assert Status.STATUS_CODE_OK == spans["CREATE appdb"].status.code
        failed = spans["INSERT appdb"]
        assert (Status.STATUS_CODE_ERROR, 'relation "missing" does not exist') == (failed.status.code,
                                                                                    failed.status.message)
        assert ("42P01", "StatementFailed") == (attributes(failed)["db.response.status_code"],
                                                attributes(failed)["error.type"])
        assert Status.STATUS_CODE_ERROR == spans["migration V2__orders.sql"].status.code
        assert Status.STATUS_CODE_ERROR == run.status.code
        assert {"premigrate.command": "up", "premigrate.dry_run": False, "db.system.name": "postgresql",
                "db.system": "postgresql", "db.namespace": "appdb", "error.type": "StatementFailed"} == attributes(run)

        resource = receiver.resource()
        assert ("billing-migrations", "staging", "9.9.9") == (
            resource["service.name"], resource["deployment.environment.name"], resource["service.version"])
        everything = b"".join(r.SerializeToString() for r in receiver.requests)
        assert b"hunter2" not in everything and b"s3cr3t-token" not in everything

    def test_default_service_name(self, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without OTEL_SERVICE_NAME the service is "premigrate", and without TRACEPARENT the run is a root."""
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
        tracer = tracer_from_env({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url + "/v1/traces"})
        with tracer.run("up") as run:
            run.set("premigrate.outcome", "nothing_to_do")
        tracer.shutdown()
        span = receiver.spans()["premigrate up"]
        assert (b"", Status.STATUS_CODE_OK) == (span.parent_span_id, span.status.code)
        assert "premigrate" == receiver.resource()["service.name"]


def _black_hole() -> tuple[socket.socket, str]:
    """A port that accepts connections and never answers: the slowest collector there is."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock, f"http://127.0.0.1:{sock.getsockname()[1]}"


def _closed_port() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


class TestUnreachableCollector:
    @pytest.mark.parametrize("kind", ["refused", "silent"])
    def test_bounded(self, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
        """A refused or silent collector fails nothing, and the whole traced run plus flush stays within a
        generous bound (the flush is cut at FLUSH_BOUND_S; the SDK default alone would be 10 s per export)."""
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TIMEOUT", raising=False)
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", raising=False)
        hole = None
        if kind == "silent":
            hole, url = _black_hole()
        else:
            url = _closed_port()
        try:
            started = time.monotonic()
            tracer = tracer_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": url})
            for _ in range(3):
                simulate_run(tracer)
            tracer.shutdown()
            elapsed = time.monotonic() - started
        finally:
            if hole is not None:
                hole.close()
        # Generous: the flush itself is cut at FLUSH_BOUND_S; without the bounds the SDK waits 10 s per export.
        assert elapsed < FLUSH_BOUND_S + 6, elapsed
