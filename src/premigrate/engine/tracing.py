"""OpenTelemetry traces of a run, behind a facade that costs nothing when tracing is off.

Enabled when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, or OTEL_TRACES_EXPORTER is
`otlp` (and OTEL_SDK_DISABLED is not `true`, and OTEL_TRACES_EXPORTER is not `none`). Otherwise tracer_from_env
returns NOOP, and no opentelemetry module is imported (tests/unit/test_tracing.py proves it): the no-op `up` that
runs on every pod start pays nothing.

Span tree of one run:
    premigrate <command>                     the run; status OK or ERROR from its outcome
    ├── wait                                 waiting for the database
    ├── lock                                 taking the runner lock
    └── migration <id>                       one per migration applied (or reverted), with its outcome
        └── <OPERATION> <namespace>          one per statement, kind CLIENT, database semantic conventions:
                                             db.system.name (and the older db.system), db.namespace,
                                             db.operation.name, db.query.text, server.address, server.port,
                                             db.response.status_code and error.type on failure

db.query.text is the statement with its string literals replaced by '?' (the conventions ask for sanitised text:
a migration may set a password; on MySQL/MariaDB "..." is a string literal too) and its comments removed, then with
credentials written in the SQL (model/sql_secrets.py) and every known secret scrubbed by log.py's SecretScrubber,
then cut to QUERY_TEXT_LIMIT characters.

The SDK reads its standard settings itself: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (service.name defaults
to "premigrate" when neither names one), OTEL_EXPORTER_OTLP_[TRACES_]HEADERS, _CERTIFICATE, _COMPRESSION,
_TIMEOUT, OTEL_BSP_*. TRACEPARENT (and TRACESTATE), as W3C trace context, makes the run span a child of the
caller's span, so a CI job or an operator can join the run to its own trace.

An unreachable or slow collector never fails a run and never slows it beyond a bounded flush at exit:
- BatchSpanProcessor, not SimpleSpanProcessor: spans are exported from a background thread; with the simple
  processor every span end (one per statement) would wait for the collector, up to the export timeout each time;
- the export timeout is EXPORT_TIMEOUT_S unless OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT says otherwise (the SDK's
  default, 10 s, is too long to wait in front of an application start);
- shutdown() flushes in a daemon thread joined for at most FLUSH_BOUND_S: whatever the SDK does, the process
  moves on after that, dropping what it could not send.
Only the OTLP/HTTP protobuf exporter is shipped (extra `otel`); other settings disable tracing with a reason the
caller logs (a cluster-wide OTEL_* setting must never stop a migration).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from premigrate.lazy_re import LazyPattern

QUERY_TEXT_LIMIT = 2048
EXPORT_TIMEOUT_S = 2.0
FLUSH_BOUND_S = 3.0
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
TIMEOUT_VARS = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
PROTOCOL_VARS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
# OpenTelemetry's db.system.name values for the databases premigrate speaks to.
DB_SYSTEMS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mariadb", "sqlite": "sqlite"}

# What db.query.text masks, read in one pass so that a quote inside a comment, or a comment marker inside a literal,
# is never mistaken for the other: '...' literals (a prefix E'', N'', _utf8'' stays; a backslash escapes the next
# character, as in E'' strings and MySQL: where it does not, the literal may be masked past its end, never less);
# "..." (MySQL's string literal without ANSI_QUOTES, elsewhere an identifier, copied); `...` (MySQL identifiers,
# copied); -- and /* */ comments (and MySQL's #), removed: a comment can hold a password as easily as a literal;
# MySQL's /*! ... */ and /*M! ... */ run as SQL, so their text stays, masked like the rest; PostgreSQL's
# $tag$...$tag$ bodies are SQL too (functions, DO blocks), masked like the rest.
_TOKEN = LazyPattern(r"""'(?:[^'\\]|''|\\.)*(?:'|\Z)"""
                     r"""|"(?:[^"\\]|""|\\.)*(?:"|\Z)"""
                     r"|`(?:[^`]|``)*(?:`|\Z)"
                     r"|--[^\n]*|\#[^\n]*"
                     r"|/\*(?:M?!\d*)?"
                     # not inside a name: PostgreSQL identifiers may hold $ (a$b$), and $1 is a parameter
                     r"|(?<![\w$])\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$", re.DOTALL)
# Databases on which "..." is a string literal (and # starts a comment); unknown (None) is masked as MySQL: masking
# an identifier in a trace is harmless, a leaked password is not.
_MYSQL_LIKE = {"mysql", "mariadb", None}
_FIRST_WORD = LazyPattern(r"(?:\s|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*([A-Za-z]+)", re.DOTALL)


def enabled_by(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = _exporters(env)
    if exporters == ["none"]:
        return False
    return "otlp" in exporters or any(env.get(name, "").strip() for name in ENDPOINT_VARS)


def _exporters(env: Mapping[str, str]) -> list[str]:
    """OTEL_TRACES_EXPORTER is a comma-separated list (e.g. "otlp,console")."""
    return [e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]


def sanitise_query(sql: str, secrets: Iterable[str] = (), limit: int = QUERY_TEXT_LIMIT,
                   dialect: str | None = None) -> str:
    """The statement for db.query.text: literals masked, comments removed, credentials written in the SQL
    (model/sql_secrets.py) and known secrets scrubbed, cut to `limit` characters. `dialect` (postgresql, mysql,
    mariadb, sqlite; None when unknown) says whether "..." is a string literal."""
    from premigrate.model.sql_secrets import redact_credentials

    text, _ = _mask(sql, 0, dialect, None)
    text = redact_credentials(text.strip())
    secrets = [s for s in secrets if s]
    if secrets:
        from premigrate.log import (
            SecretScrubber,  # the scrubber every log line goes through
        )

        text = SecretScrubber(secrets).scrub(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _mask(sql: str, start: int, dialect: str | None, until: str | None) -> tuple[str, int]:
    """`sql` from `start` masked (see _TOKEN), up to `until` (the end of a /*! comment or of a dollar-quoted body,
    not included) or the end; returns the text and where it stopped."""
    mysql = dialect in _MYSQL_LIKE
    out: list[str] = []
    i = start
    end = sql.find(until, i) if until else -1
    while i < len(sql):
        if until is not None and 0 <= end < i:  # a token ran past it (a quote left open inside): look again
            end = sql.find(until, i)
        match = _TOKEN.search(sql, i)
        if until is not None and (end < 0 or match is None or match.start() >= end):
            out.append(sql[i:end if end >= 0 else len(sql)])
            return "".join(out), end if end >= 0 else len(sql)
        if match is None:
            out.append(sql[i:])
            break
        out.append(sql[i:match.start()])
        token = match.group(0)
        i = match.end()
        if token.startswith("'") or (token.startswith('"') and mysql):
            out.append("'?'")
        elif token.startswith('"') or (token.startswith("`") and dialect != "postgresql"):
            out.append(token)  # an identifier
        elif token.startswith(("#", "`")) and not mysql:  # PostgreSQL's # operator; a stray backtick
            out.append(token[0])
            i = match.start() + 1
        elif token.startswith(("--", "#")):
            out.append(" ")
        elif token.startswith("/*"):
            if len(token) > 2 and mysql:  # /*!50100 ... */: executable, masked like the statement around it
                body, i = _mask(sql, i, dialect, "*/")
                out.append(token + body + "*/")
            else:
                out.append(" ")
            i = _comment_end(sql, i) if not (len(token) > 2 and mysql) else i + 2
        else:  # $tag$ ... $tag$: the body is SQL (a function, a DO block)
            body, i = _mask(sql, i, dialect, token)
            out.append(token + body + token)
            i += len(token)
    return "".join(out), min(i, len(sql))


def _comment_end(sql: str, i: int) -> int:
    """Where a /* comment that opened before `i` ends; PostgreSQL nests them, so nesting is followed (on MySQL,
    which does not, that can only remove more)."""
    depth = 1
    while depth and i < len(sql):
        close, open_ = sql.find("*/", i), sql.find("/*", i)
        if close < 0:
            return len(sql)
        if 0 <= open_ < close:
            depth, i = depth + 1, open_ + 2
        else:
            depth, i = depth - 1, close + 2
    return i


def operation_name(sql: str) -> str | None:
    match = _FIRST_WORD.match(sql)
    return match.group(1).upper() if match else None


class Span:
    """A span handle; the no-op one ignores everything."""

    def set(self, key: str, value: Any) -> None:
        """Set an attribute (None values are left out)."""

    def fail(self, error: BaseException | str, code: str | None = None) -> None:
        """Mark the span failed (status ERROR) with a scrubbed description; `code` is SQLSTATE/errno."""


_NOOP_SPAN = Span()


@dataclass(frozen=True)
class Database:
    """Where statements go, for the database semantic conventions."""

    dialect: str  # postgresql | mysql | sqlite (or mariadb when known)
    namespace: str | None = None  # database name (PostgreSQL: "<database>|<schema>" when a schema is set)
    host: str | None = None
    port: int | None = None


class Tracer:
    """The no-op tracer: every span is a context manager that does nothing. OtelTracer has the same surface."""

    enabled = False
    disabled_reason: str | None = None

    def __init__(self, disabled_reason: str | None = None) -> None:
        self.disabled_reason = disabled_reason

    def set_database(self, database: Database) -> None:
        """Database attributes for statement spans (known once the configuration is read)."""

    def run(self, command: str, **attributes: Any) -> AbstractContextManager[Span]:
        return _noop()

    def wait(self) -> AbstractContextManager[Span]:
        return _noop()

    def lock(self, key: str | None = None) -> AbstractContextManager[Span]:
        return _noop()

    def migration(self, migration_id: str, *, version: str | None = None, description: str | None = None,
                  direction: str = "up", kind: str | None = None) -> AbstractContextManager[Span]:
        return _noop()

    def statement(self, sql: str, *, index: int | None = None) -> AbstractContextManager[Span]:
        return _noop()

    def shutdown(self) -> None:
        """Flush and stop, bounded (no-op here)."""


@contextmanager
def _noop() -> Iterator[Span]:
    yield _NOOP_SPAN


NOOP = Tracer()


def tracer_from_env(env: Mapping[str, str], *, secrets: Iterable[str] = (), database: Database | None = None,
                    version: str | None = None) -> Tracer:
    """NOOP unless the environment asks for traces; then an OpenTelemetry tracer exporting over OTLP/HTTP."""
    exporters = _exporters(env)
    if not enabled_by(env):
        if exporters and exporters != ["none"] and env.get("OTEL_SDK_DISABLED", "").strip().lower() != "true":
            return Tracer(f"OTEL_TRACES_EXPORTER={','.join(exporters)} is not supported; premigrate exports OTLP "
                          "over HTTP only (otlp)")
        return NOOP
    for name in PROTOCOL_VARS:
        protocol = env.get(name, "").strip().lower()
        if protocol and protocol != "http/protobuf":
            return Tracer(f"{name}={protocol} is not supported; use http/protobuf (the default)")
        if protocol:
            break
    try:
        from premigrate.engine._otel import OtelTracer
    except ImportError as exc:
        return Tracer(f"OpenTelemetry is not installed ({exc.name}); install premigrate[otel] to export traces")
    return OtelTracer(env, secrets=list(secrets), database=database, version=version)
