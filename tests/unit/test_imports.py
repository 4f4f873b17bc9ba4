"""What a no-op `up` imports: heavy modules stay out of the start-up path (a no-op runs on every pod start).

Each case runs in a fresh interpreter, because the test process itself has long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# The modules the `up` path loads before it knows there is nothing to do: the CLI, logging, the runner, the
# selected driver, and one log event through the configured structlog chain.
_UP_PATH = """
import json, sys
from premigrate import cli, log
from premigrate.drivers import driver_class
import premigrate.runner
cli.build_parser().parse_args(["up"])
log.configure(log_format="json", level="info", secrets=["s3cret"])
log.get_logger().info("probe", note="s3cret")
driver_class(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""

# Needed only by other commands, by a retry, or by another database.
_NEVER = ["pglast", "prometheus_client", "tenacity", "premigrate.lint", "premigrate.serve", "premigrate.scaffold",
          "premigrate.baseline", "premigrate.report", "premigrate.locking", "premigrate.placeholders",
          "structlog.stdlib", "structlog.threadlocal", "structlog.twisted", "http.server", "uuid"]
_OTHER_DRIVERS = {
    "postgresql": ["pymysql", "premigrate.drivers.mysql", "premigrate.drivers.sqlite", "sqlite3"],
    "mysql": ["psycopg", "premigrate.drivers.postgres", "premigrate.drivers.sqlite", "sqlite3"],
    "sqlite": ["psycopg", "pymysql", "premigrate.drivers.postgres", "premigrate.drivers.mysql"],
}


def _loaded(dialect: str) -> tuple[set[str], str]:
    result = subprocess.run([sys.executable, "-c", _UP_PATH, dialect], capture_output=True, text=True, timeout=60)
    assert 0 == result.returncode, result.stderr
    return set(json.loads(result.stdout)), result.stderr


class TestNoOpImports:
    @pytest.mark.parametrize("dialect", [pytest.param(d, id=d) for d in _OTHER_DRIVERS])
    def test_heavy_modules_stay_out(self, dialect: str) -> None:
        """The `up` path loads its own driver and none of the lint, serve, retry or other-database modules."""
        loaded, _ = _loaded(dialect)
        assert [] == sorted(m for m in _NEVER + _OTHER_DRIVERS[dialect] if m in loaded)
        assert f"premigrate.drivers.{ {'postgresql': 'postgres'}.get(dialect, dialect) }" in loaded

    def test_logging_still_goes_through_structlog(self) -> None:
        """The trimmed structlog import still yields scrubbed JSON lines from the configured processor chain."""
        loaded, stderr = _loaded("mysql")
        record = json.loads(stderr.strip().splitlines()[-1])
        assert ("probe", "info", "***") == (record["event"], record["level"], record["note"])
        assert record["timestamp"].endswith("Z")
        assert "structlog._config" in loaded

    def test_rest_of_structlog_loads_on_first_use(self) -> None:
        """Anything else asked of the `structlog` package (testing helpers, stdlib integration) still works."""
        code = ("from premigrate import log\nimport structlog, asyncio\n"
                "from structlog.testing import capture_logs\n"
                "with capture_logs() as logs:\n    log.get_logger().info('x')\n"
                "print(structlog.stdlib.BoundLogger.__name__, logs[0]['event'], asyncio.run(asyncio.sleep(0, 'ok')))")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert (0, "BoundLogger x ok") == (result.returncode, result.stdout.strip()), result.stderr
