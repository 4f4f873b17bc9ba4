"""The OpenTelemetry side of engine/tracing.py, imported only when tracing is enabled (see that module's docstring)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span as OtelSpan
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from premigrate.engine.tracing import (
    DB_SYSTEMS,
    ENDPOINT_VARS,
    EXPORT_TIMEOUT_S,
    FLUSH_BOUND_S,
    TIMEOUT_VARS,
    Database,
    Span,
    Tracer,
    operation_name,
    sanitise_query,
)

SCOPE = "premigrate"


class _Span(Span):
    def __init__(self, span: OtelSpan, scrub: Any) -> None:
        self._span = span
        self._scrub = scrub
        self.failed = False

    def set(self, key: str, value: Any) -> None:
        if value is not None:
            self._span.set_attribute(key, self._scrub(value) if isinstance(value, str) else value)

    def fail(self, error: BaseException | str, code: str | None = None) -> None:
        self.failed = True
        message = self._scrub(str(error) if not isinstance(error, str) else error)
        self._span.set_status(Status(StatusCode.ERROR, message[:1024]))
        self._span.set_attribute("error.type", type(error).__name__ if isinstance(error, BaseException)
                                 else (code or "error"))
        if code is not None:
            self._span.set_attribute("db.response.status_code", code)


def _resource(version: str | None) -> Resource:
    detected = Resource.create({"service.version": version} if version else {})
    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; only when neither names the service
    # does the SDK fall back to "unknown_service": ours is a better default.
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        detected = detected.merge(Resource({"service.name": "premigrate"}))
    return detected


class OtelTracer(Tracer):
    enabled = True

    def __init__(self, env: Mapping[str, str], *, secrets: list[str], database: Database | None,
                 version: str | None) -> None:
        super().__init__()
        self._secrets = secrets
        self._database = database
        exporter_args: dict[str, Any] = {}
        if not any(env.get(name, "").strip() for name in TIMEOUT_VARS):
            exporter_args["timeout"] = EXPORT_TIMEOUT_S
        if not env.get(ENDPOINT_VARS[0], "").strip() and env.get(ENDPOINT_VARS[1], "").strip():
            # The SDK reads os.environ; the CLI hands us the same mapping, but tests and embedders may not.
            exporter_args["endpoint"] = env[ENDPOINT_VARS[1]].rstrip("/") + "/v1/traces"
        elif env.get(ENDPOINT_VARS[0], "").strip():
            exporter_args["endpoint"] = env[ENDPOINT_VARS[0]].strip()
        self._provider = TracerProvider(resource=_resource(version))
        self._provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(**exporter_args)))
        self._tracer = self._provider.get_tracer(SCOPE, version)
        carrier = {k: env[v] for k, v in (("traceparent", "TRACEPARENT"), ("tracestate", "TRACESTATE")) if env.get(v)}
        self._parent = TraceContextTextMapPropagator().extract(carrier) if carrier else None
        self._lock = threading.Lock()

    def _scrub(self, text: str) -> str:
        if not self._secrets:
            return text
        from premigrate.log import SecretScrubber

        return str(SecretScrubber(self._secrets).scrub(text))

    def set_database(self, database: Database) -> None:
        self._database = database

    @contextmanager
    def _span(self, name: str, attributes: dict[str, Any], *, kind: SpanKind = SpanKind.INTERNAL,
              context: Any = None) -> Iterator[Span]:
        with self._tracer.start_as_current_span(name, context=context, kind=kind, record_exception=False,
                                                set_status_on_exception=False) as otel_span:
            span = _Span(otel_span, self._scrub)
            for key, value in attributes.items():
                span.set(key, value)
            try:
                yield span
            except BaseException as exc:
                if not span.failed:
                    # SqlError's SQLSTATE / errno / SQLite error name: a response status of a statement only
                    code = getattr(exc, "code", None) if kind == SpanKind.CLIENT else None
                    span.fail(exc, str(code) if code is not None else None)
                raise
            if not span.failed:
                otel_span.set_status(Status(StatusCode.OK))

    def run(self, command: str, **attributes: Any) -> AbstractContextManager[Span]:
        return self._span(f"premigrate {command}", {"premigrate.command": command, **self._db_attributes(False),
                                                     **{f"premigrate.{k}": v for k, v in attributes.items()}},
                          context=self._parent)

    def wait(self) -> AbstractContextManager[Span]:
        return self._span("wait", self._db_attributes(False))

    def lock(self, key: str | None = None) -> AbstractContextManager[Span]:
        return self._span("lock", {"premigrate.lock.key": key})

    def migration(self, migration_id: str, *, version: str | None = None, description: str | None = None,
                  direction: str = "up", kind: str | None = None) -> AbstractContextManager[Span]:
        return self._span(f"migration {migration_id}", {
            "premigrate.migration.id": migration_id, "premigrate.migration.version": version,
            "premigrate.migration.description": description, "premigrate.migration.direction": direction,
            "premigrate.migration.kind": kind})

    def statement(self, sql: str, *, index: int | None = None) -> AbstractContextManager[Span]:
        operation = operation_name(sql)
        dialect = self._database.dialect if self._database else None  # "..." is a literal on MySQL
        attributes = {**self._db_attributes(True), "db.operation.name": operation,
                      "db.query.text": sanitise_query(sql, self._secrets, dialect=dialect),
                      "premigrate.statement.index": index}
        namespace = self._database.namespace if self._database else None
        target = " ".join(x for x in (operation, namespace) if x) or self._system() or "statement"
        return self._span(target, attributes, kind=SpanKind.CLIENT)

    def _system(self) -> str | None:
        return DB_SYSTEMS.get(self._database.dialect) if self._database else None

    def _db_attributes(self, full: bool) -> dict[str, Any]:
        if self._database is None:
            return {}
        system = self._system()
        attributes: dict[str, Any] = {"db.system.name": system, "db.system": system,
                                      "db.namespace": self._database.namespace}
        if full:
            attributes.update({"server.address": self._database.host, "server.port": self._database.port})
        return attributes

    def shutdown(self) -> None:
        """Flush what is queued and stop, giving up after FLUSH_BOUND_S whatever the collector does."""
        with self._lock:
            worker = threading.Thread(target=self._provider.shutdown, name="premigrate-otel-flush", daemon=True)
            worker.start()
            worker.join(FLUSH_BOUND_S)

