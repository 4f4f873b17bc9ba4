"""engine/tracing.py without a network: when tracing is on, what a statement looks like in a span, and that the
no-op path imports no OpenTelemetry module."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from premigrate.engine.tracing import (
    NOOP,
    enabled_by,
    operation_name,
    sanitise_query,
    tracer_from_env,
)

_PROBE = """
import json, sys
from premigrate.engine.tracing import tracer_from_env
tracer = tracer_from_env(json.loads(sys.argv[1]))
with tracer.run("up") as run, tracer.migration("V1__a.sql"), tracer.statement("SELECT 1") as span:
    span.set("k", "v")
    run.set("premigrate.outcome", "applied")
tracer.shutdown()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")))
"""


def _otel_modules(env: dict[str, str]) -> list[str]:
    result = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(env)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert 0 == result.returncode, result.stderr
    return list(json.loads(result.stdout.strip().splitlines()[-1]))


class TestImports:
    def test_noop_path_imports_no_opentelemetry(self) -> None:
        """Tracing off: spans are taken and ended, and not one opentelemetry module is loaded."""
        assert [] == _otel_modules({})

    def test_enabled_path_does(self) -> None:
        """The control: with an endpoint set, the same probe loads the SDK (so the test above can fail)."""
        loaded = _otel_modules({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_BSP_SCHEDULE_DELAY": "1"})
        assert "opentelemetry.sdk.trace" in loaded


class TestEnabled:
    @pytest.mark.parametrize(("env", "expected"), [
        pytest.param({}, False, id="nothing"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True, id="endpoint"),
        pytest.param({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True, id="traces-endpoint"),
        pytest.param({"OTEL_TRACES_EXPORTER": "otlp"}, True, id="exporter-otlp"),
        pytest.param({"OTEL_TRACES_EXPORTER": "console, otlp"}, True, id="exporter-list"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, False, id="blank"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, False,
                     id="exporter-none"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False,
                     id="sdk-disabled"),
        pytest.param({"OTEL_EXPORTER_OTLP_HEADERS": "a=b"}, False, id="headers-alone"),
    ])
    def test_enabled_by(self, env: dict[str, str], expected: bool) -> None:
        """Only an endpoint or OTEL_TRACES_EXPORTER=otlp turns tracing on; none/SDK-disabled turn it off."""
        assert expected == enabled_by(env)

    def test_off_is_the_shared_noop(self) -> None:
        """Tracing off returns the one no-op tracer, which has nothing to say."""
        tracer = tracer_from_env({})
        assert (NOOP, False, None) == (tracer, tracer.enabled, tracer.disabled_reason)

    @pytest.mark.parametrize(("env", "reason"), [
        pytest.param({"OTEL_TRACES_EXPORTER": "console"}, "OTEL_TRACES_EXPORTER=console is not supported",
                     id="console"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
                     "OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported", id="grpc"),
    ])
    def test_unsupported_settings_disable_with_a_reason(self, env: dict[str, str], reason: str) -> None:
        """Settings premigrate cannot honour leave tracing off with a reason to log, never a failed run."""
        tracer = tracer_from_env(env)
        assert not tracer.enabled
        assert tracer.disabled_reason is not None and tracer.disabled_reason.startswith(reason)


class TestQueryText:
    @pytest.mark.parametrize(("sql", "expected"), [
        pytest.param("CREATE TABLE t (id int)", "CREATE TABLE t (id int)", id="ddl-unchanged"),
        pytest.param("ALTER ROLE app PASSWORD 'p''w'", "ALTER ROLE app PASSWORD '?'", id="literal"),
        pytest.param("INSERT INTO t VALUES (E'a\\'b', 'c')", "INSERT INTO t VALUES (E'?', '?')", id="escape-string"),
        pytest.param("SELECT 'hunter2' || token FROM t WHERE k = hunter2", "SELECT '?' || token FROM t WHERE k = ***",
                     id="secret-outside-literal"),
    ])
    def test_sanitised(self, sql: str, expected: str) -> None:
        """String literals are masked and known secrets scrubbed."""
        assert expected == sanitise_query(sql, ["hunter2"])

    @pytest.mark.parametrize(("sql", "dialect", "expected"), [
        pytest.param('CREATE USER u IDENTIFIED BY "pw"', "mysql", "CREATE USER u IDENTIFIED BY '?'",
                     id="mysql-double-quoted"),
        pytest.param('CREATE USER u IDENTIFIED BY "pw"', "mariadb", "CREATE USER u IDENTIFIED BY '?'",
                     id="mariadb-double-quoted"),
        pytest.param('CREATE USER u IDENTIFIED BY "pw"', None, "CREATE USER u IDENTIFIED BY '?'",
                     id="unknown-dialect-masks-as-mysql"),
        pytest.param('SELECT "a--b" FROM "t" WHERE c = \'x\'', "postgresql", 'SELECT "a--b" FROM "t" WHERE c = \'?\'',
                     id="postgres-identifiers-kept"),
        pytest.param('CREATE USER u IDENTIFIED BY "pw"', "postgresql", 'CREATE USER u IDENTIFIED BY "***"',
                     id="credential-by-grammar"),
        pytest.param("ALTER ROLE a PASSWORD $p$hunter3$p$", "postgresql", "ALTER ROLE a PASSWORD $p$***$p$",
                     id="dollar-quoted-password"),
        pytest.param("SELECT 1 /* password hunter3 */ FROM t -- token hunter4\nWHERE a = 1", "postgresql",
                     "SELECT 1   FROM t  \nWHERE a = 1", id="comments-removed"),
        pytest.param("/* a /* nested */ hunter3 */ SELECT 1", "postgresql", "SELECT 1", id="nested-comment"),
        pytest.param("SELECT a # 'hunter3' FROM t", "postgresql", "SELECT a # '?' FROM t", id="postgres-hash"),
        pytest.param("SELECT a FROM t # hunter3", "mysql", "SELECT a FROM t", id="mysql-hash-comment"),
        pytest.param("/*!50100 CREATE USER u IDENTIFIED BY 'hunter3' */", "mysql",
                     "/*!50100 CREATE USER u IDENTIFIED BY '?' */", id="mysql-executable-comment"),
        pytest.param("SELECT '-- not a comment', 'a /* b'", "postgresql", "SELECT '?', '?'", id="markers-in-literals"),
        pytest.param("DO $$ BEGIN PERFORM 'hunter3'; -- x\nEND $$", "postgresql", "DO $$ BEGIN PERFORM '?';  \nEND $$",
                     id="dollar-body-masked"),
        pytest.param("SELECT a$b$ FROM t WHERE x = $1", "postgresql", "SELECT a$b$ FROM t WHERE x = $1",
                     id="dollar-in-name"),
    ])
    def test_literals_comments_credentials(self, sql: str, dialect: str | None, expected: str) -> None:
        """No literal, comment or credential reaches db.query.text: "..." is a literal on MySQL/MariaDB (masked
        when the database is unknown too), comments are removed, credentials in any quoting are masked."""
        assert expected == sanitise_query(sql, dialect=dialect)

    def test_truncated(self) -> None:
        """Long statements are cut to the limit, marked with an ellipsis."""
        text = sanitise_query("SELECT " + "x, " * 2000, limit=100)
        assert (100, True) == (len(text), text.endswith("..."))

    @pytest.mark.parametrize(("sql", "expected"), [
        pytest.param("  -- note\n/* x */ create index i on t (a)", "CREATE", id="after-comments"),
        pytest.param("insert into t values (1)", "INSERT", id="lower-case"),
        pytest.param("-- only a comment", None, id="no-statement"),
        pytest.param(" \n" * 50000 + "(", None, id="long-whitespace-linear"),
    ])
    def test_operation_name(self, sql: str, expected: str | None) -> None:
        """db.operation.name is the statement's first keyword."""
        assert expected == operation_name(sql)
