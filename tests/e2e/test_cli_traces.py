"""OpenTelemetry traces of `up` end to end on PostgreSQL, MariaDB and SQLite, sent to an OTLP/HTTP receiver on
127.0.0.1 inside the test: the span tree, names, attributes and status; TRACEPARENT; an unreachable collector; a
setting premigrate cannot honour."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as SpanProto
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from tests.e2e.helpers import LIVENESS_S, up, write
from tests.integration.test_tracing import PARENT_ID, TRACE_ID, Receiver, _closed_port, attributes
from tests.support import TestDatabase

SYSTEMS = {"postgresql": "postgresql", "mysql": ("mysql", "mariadb"), "sqlite": "sqlite"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.server.shutdown()
        r.server.server_close()


def folder(migrations_dir: Path) -> None:
    write(migrations_dir, "001_items.sql", "CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20));\n"
          "INSERT INTO items (id, name) VALUES (1, 'secret-literal'), (2, 'b');\n")
    write(migrations_dir, "002_more.sql", "-- migrate:up\nCREATE TABLE more (id INTEGER);\n"
          "-- migrate:down\nDROP TABLE more;\n")


def all_spans(receiver: Receiver) -> list[SpanProto]:
    """Every span received (statement spans of two migrations may share a name: no dict by name here)."""
    return [s for r in receiver.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]


def tree(spans: list[SpanProto]) -> list[tuple[str, str | None]]:
    """(span, parent span) names, sorted; statement span names keep only their operation."""
    by_id = {s.span_id: s for s in spans}

    def name(span: SpanProto) -> str:
        return span.name if span.kind != SpanProto.SPAN_KIND_CLIENT else span.name.split(" ")[0]

    return sorted((name(s), name(by_id[s.parent_span_id]) if s.parent_span_id in by_id else None) for s in spans)


class TestTracedRun:
    def test_span_tree(self, db: TestDatabase, migrations_dir: Path, receiver: Receiver) -> None:
        """Run > wait, lock, one span per migration > one per statement, with the database conventions, rows
        affected, OK status, the caller's TRACEPARENT as parent and OTEL_SERVICE_NAME on the resource."""
        folder(migrations_dir)
        result = up(db, migrations_dir, env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
                                             "OTEL_SERVICE_NAME": "shop-migrations",
                                             "TRACEPARENT": f"00-{TRACE_ID}-{PARENT_ID}-01"})
        assert 0 == result.returncode, result.stderr
        assert [("CREATE", "migration 1"), ("CREATE", "migration 2"), ("INSERT", "migration 1"), ("lock", "premigrate up"),
                ("migration 1", "premigrate up"), ("migration 2", "premigrate up"), ("premigrate up", None),
                ("wait", "premigrate up")] == tree(all_spans(receiver))
        spans = receiver.spans()
        [insert] = [n for n in spans if n.startswith("INSERT ")]
        assert insert.endswith(str(db.name)) or db.dialect == "sqlite", insert
        run = spans["premigrate up"]
        assert (TRACE_ID, PARENT_ID, Status.STATUS_CODE_OK) == (
            run.trace_id.hex(), run.parent_span_id.hex(), run.status.code)
        statement = attributes(spans[insert])
        assert statement["db.system.name"] in SYSTEMS[db.dialect]
        assert ("INSERT", 2, 2, SpanProto.SPAN_KIND_CLIENT) == (
            statement["db.operation.name"], statement["premigrate.statement.index"],
            statement["premigrate.rows_affected"], spans[insert].kind)
        assert "'?'" in statement["db.query.text"] and "secret-literal" not in statement["db.query.text"]
        assert {"premigrate.migration.id": "1", "premigrate.migration.version": "1",
                "premigrate.migration.description": "items", "premigrate.migration.direction": "up",
                "premigrate.migration.kind": "versioned", "premigrate.rows_affected": 2} == attributes(
            spans["migration 1"])
        assert "shop-migrations" == receiver.resource()["service.name"]

    def test_failed_statement(self, db: TestDatabase, migrations_dir: Path, receiver: Receiver) -> None:
        """A failing statement marks its span (with the database's error code), its migration and the run ERROR."""
        write(migrations_dir, "001_bad.sql", "INSERT INTO no_such_table VALUES (1);\n")
        result = up(db, migrations_dir, env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url})
        assert 4 == result.returncode, result.stderr
        spans = receiver.spans()
        [insert] = [n for n in spans if n.startswith("INSERT")]
        assert [Status.STATUS_CODE_ERROR] * 3 == [spans[n].status.code
                                                  for n in (insert, "migration 1", "premigrate up")]
        assert attributes(spans[insert])["db.response.status_code"]
        assert "MigrationFailed" == attributes(spans["premigrate up"])["error.type"]

    def test_down_spans(self, db: TestDatabase, migrations_dir: Path, receiver: Receiver) -> None:
        """down's migrations are spans with direction down."""
        folder(migrations_dir)
        assert 0 == up(db, migrations_dir).returncode
        from tests.support import run_cli

        result = run_cli("down", "--dir", str(migrations_dir), "--steps", "1", "--yes",
                         env={"DATABASE_URL": db.url, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url},
                         cwd=migrations_dir.parent)
        assert 0 == result.returncode, result.stderr
        assert "down" == attributes(receiver.spans()["migration 2"])["premigrate.migration.direction"]


class TestCollectorProblems:
    def test_unreachable_collector(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A collector that refuses connections: the run still applies everything and exits 0 (liveness bound)."""
        folder(migrations_dir)
        started = time.monotonic()
        result = up(db, migrations_dir, env={"OTEL_EXPORTER_OTLP_ENDPOINT": _closed_port()})
        assert 0 == result.returncode, result.stderr
        assert ["1", "2"] == [r["migration_id"] for r in db.history()]
        assert time.monotonic() - started < LIVENESS_S

    def test_unsupported_setting_warns(self, db: TestDatabase, migrations_dir: Path) -> None:
        """An exporter premigrate does not ship: a tracing_disabled warning, and the run goes on untraced."""
        folder(migrations_dir)
        result = up(db, migrations_dir, env={"OTEL_TRACES_EXPORTER": "zipkin"})
        assert 0 == result.returncode, result.stderr
        assert "zipkin" in result.find("tracing_disabled")[0]["reason"]
