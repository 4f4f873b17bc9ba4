"""What a no-op `up` imports: heavy modules stay out of the start-up path (a no-op runs on every pod start).

Each case runs in a fresh interpreter, because the test process itself has long since imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

# The modules the `up` path loads before it knows there is nothing to do: the CLI, logging, the up command, the
# selected driver, and one log event through the configured structlog chain.
_UP_PATH = """
import json, sys
from premigrate import cli, log
from premigrate.drivers import driver_class
import premigrate.commands.up
cli.parse_args(["up"])
log.configure(log_format="json", level="info", secrets=["s3cret"])
log.get_logger().info("probe", note="s3cret")
driver_class(sys.argv[1])
print(json.dumps(sorted(sys.modules)))
"""

# Needed only by other commands, by a retry, or by another database.
# argparse (with gettext): a plain command line is parsed without it (cli/parser.py parse_plain).
_NEVER = ["argparse", "gettext", "premigrate.cli.argparser",
          "pglast", "prometheus_client", "tenacity", "premigrate.commands.lint", "premigrate.commands.serve", "premigrate.commands.new",
          "premigrate.commands.baseline", "premigrate.commands.report", "premigrate.engine.locking", "premigrate.model.placeholders",
          "structlog.stdlib", "structlog.threadlocal", "structlog.twisted", "http.server", "uuid",
          "premigrate.model.fleet", "premigrate.commands.fleet", "premigrate.engine.fleet_sessions", "opentelemetry",
          # Only once there is work: the executor and what it runs statements with, how files are wrapped, the
          # measurements.
          "premigrate.engine.executor", "premigrate.engine.stepwise", "premigrate.engine.attempts",
          "premigrate.engine.own_writes", "premigrate.engine.lockwait", "premigrate.engine.measurements",
          "premigrate.engine.progress", "premigrate.model.modes", "premigrate.model.transactions",
          "premigrate.engine._otel",
          # Only for a file that holds what only psql understands, and for lint.
          "premigrate.model.client_commands", "premigrate.model.tokens",
          # structlog's global configuration, its console renderer, print logger and processors: premigrate builds its
          # own logger (log.py), so neither they nor the pickle they import for one exception class are loaded (the
          # processors module only with the first event that carries an exception). copy:
          # dataclasses reads it only in asdict() and astuple(); ntpath: pathlib's Windows paths (stand_ins.py).
          "structlog._config", "structlog._output", "structlog.dev", "structlog.processors", "structlog.tracebacks",
          "pickle", "copy", "ntpath"]
_OTHER_DRIVERS = {
    "postgresql": ["pymysql", "premigrate.drivers.mysql", "premigrate.drivers.sqlite", "sqlite3"],
    "mysql": ["psycopg", "premigrate.drivers.postgres", "premigrate.drivers.sqlite", "sqlite3"],
    "sqlite": ["psycopg", "pymysql", "premigrate.drivers.postgres", "premigrate.drivers.mysql"],
}
# asyncio: structlog imports it for async methods premigrate never calls; inspect: dataclasses imports it to write
# docstrings for classes without one (premigrate/stand_ins.py keeps both out); subprocess and shlex: only a
# --password-command runs a program; random: only a retried connection attempt draws its jitter; logging (with
# string): structlog only names it and PyMySQL never imports it, so premigrate/log.py installs its bridge when a
# library does (stand_ins.after_import); tokenize and textwrap: read only to format a traceback; ipaddress: read by
# urllib.parse only for a bracketed host (dataclass_cache.py); fnmatch: pathlib's glob() and match() (kept.py). psycopg
# loads all of them itself (through asyncio), so only the other drivers' runs are without them.
for _dialect in ("mysql", "sqlite"):
    _OTHER_DRIVERS[_dialect] += ["asyncio", "inspect", "subprocess", "shlex", "random", "logging", "string", "tokenize",
                                 "textwrap", "ipaddress", "fnmatch"]


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
        assert "structlog._native" in loaded

    def test_rest_of_structlog_loads_on_first_use(self) -> None:
        """Anything else asked of the `structlog` package (testing helpers, stdlib integration) still works, for the
        program's own loggers: premigrate's lines go to stderr, not through structlog's global configuration."""
        code = ("from premigrate import log\nimport structlog, asyncio\n"
                "from structlog.testing import capture_logs\nlog.configure(log_format='json')\n"
                "with capture_logs() as logs:\n    structlog.get_logger().info('x')\n"
                "    log.get_logger().info('premigrate_event')\n"
                "print(structlog.stdlib.BoundLogger.__name__, [e['event'] for e in logs], "
                "asyncio.run(asyncio.sleep(0, 'ok')))")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert (0, "BoundLogger ['x'] ok") == (result.returncode, result.stdout.strip()), result.stderr
        assert "premigrate_event" == json.loads(result.stderr.strip().splitlines()[-1])["event"]

    def test_a_programs_structlog_configuration_is_left_alone(self) -> None:
        """A program that configured structlog and then runs premigrate (cli.main) keeps its configuration."""
        code = ("import structlog\nstructlog.configure(processors=[lambda l, m, e: 'host:' + e['event']])\n"
                "from premigrate import log\nlog.configure(log_format='json', secrets=['pw'])\n"
                "structlog.get_logger().info('mine')\nlog.get_logger().info('theirs')")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert (0, "host:mine") == (result.returncode, result.stdout.strip()), result.stderr
        assert "theirs" == json.loads(result.stderr.strip().splitlines()[-1])["event"]


class TestOneCommandParser:
    """The CLI parses with a parser that knows only the named command, and falls back to the full one."""

    @pytest.mark.parametrize("argv", [
        pytest.param(["up"], id="up"),
        pytest.param(["--dir", "x", "up", "--lock-timeout", "5s", "--strict"], id="global-and-command-flags"),
        pytest.param(["--dir", "up", "up"], id="command-word-as-option-value"),
        pytest.param(["new", "add users"], id="positional"),
        pytest.param(["baseline", "--version", "3"], id="baseline-version-option"),
        pytest.param(["repair", "--forget", "2"], id="repair"),
        pytest.param(["status", "--json", "--table", "h"], id="status"),
        pytest.param(["--dir", "status", "up"], id="first-command-word-is-not-the-command"),
    ])
    def test_same_flags_as_the_full_parser(self, argv: list[str]) -> None:
        """Whatever parser answers, the flags are those the full parser yields."""
        from premigrate.cli import parser as cli

        assert vars(cli.build_parser().parse_args(argv)) == cli.parse_args(argv)

    @pytest.mark.parametrize(("argv", "parsers"), [
        pytest.param(["up", "--dir", "m"], [], id="plain-none"),
        pytest.param(["--dir", "m", "up"], ["up"], id="global-option-first-only-up"),
    ])
    def test_up_builds_only_its_own_parser(self, monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                           parsers: list[str]) -> None:
        """A valid `up` never builds the parser of all commands; a plain one builds none (cli/parser.py)."""
        from premigrate.cli import parser as cli

        built: list[str | None] = []
        real = cli.build_parser

        def recording(only: str | None = None) -> object:
            built.append(only)
            return real(only)

        monkeypatch.setattr(cli, "build_parser", recording)
        cli.parse_args(argv)
        assert parsers == built

    @pytest.mark.parametrize("argv", [
        pytest.param(["up", "--bogus"], id="unknown-option"),
        pytest.param(["up", "--lock-timeout"], id="missing-value"),
        pytest.param(["up", "--l", "1s"], id="ambiguous-abbreviation"),
        pytest.param(["new"], id="missing-positional"),
        pytest.param(["--dir", "up"], id="no-command-left"),
        pytest.param(["status", "--listen", "x"], id="option-of-another-command"),
        pytest.param(["--dir", "status", "bogus"], id="unknown-command-lists-every-command"),
    ])
    def test_errors_name_every_command_as_before(self, argv: list[str]) -> None:
        """A parse error carries the full parser's message, not the one-command parser's."""
        from premigrate.cli import parser as cli
        from premigrate.errors import UsageError

        with pytest.raises(UsageError) as expected:
            cli.build_parser().parse_args(argv)
        with pytest.raises(UsageError) as got:
            cli.parse_args(argv)
        assert expected.value.message == got.value.message

    @pytest.mark.parametrize("argv", [
        pytest.param(["--help"], id="help"),
        pytest.param(["up", "--help"], id="up-help"),
        pytest.param(["up", "--he"], id="abbreviated-help"),
        pytest.param(["--vers"], id="version"),
    ])
    def test_help_and_version_come_from_the_full_parser(self, argv: list[str],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
        """Help and --version print what the full parser prints, once."""
        from premigrate.cli import parser as cli

        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(argv)
        expected = capsys.readouterr()
        with pytest.raises(SystemExit):
            cli.parse_args(argv)
        got = capsys.readouterr()
        assert (expected.out, expected.err) == (got.out, got.err)
        assert "COMMAND" in got.out or "premigrate " in got.out


class TestArgvMistakes:
    """Command lines argparse would answer with a message that does not say what is wrong."""

    @pytest.mark.parametrize(("argv", "message"), [
        pytest.param(["--dry-run", "up"], "--dry-run must come after the command: premigrate up --dry-run ...",
                     id="switch"),
        pytest.param(["--to", "3", "up"], "--to must come after the command: premigrate up --to ...", id="value"),
        pytest.param(["--dir", "m", "--steps=2", "down"],
                     "--steps must come after the command: premigrate down --steps ...", id="flag=value"),
    ])
    def test_a_commands_flag_before_the_command(self, argv: list[str], message: str) -> None:
        """A flag the named command accepts, given before the command: the message says where it goes."""
        from premigrate.cli import parser as cli
        from premigrate.errors import UsageError

        with pytest.raises(UsageError) as refused:
            cli.parse_args(argv)
        assert message == refused.value.message

    @pytest.mark.parametrize("argv", [
        pytest.param(["--bogus", "up"], id="unknown-flag"),
        pytest.param(["--timeout", "3s", "status"], id="flag-of-another-command"),
    ])
    def test_other_mistakes_keep_argparses_message(self, argv: list[str]) -> None:
        """A flag no command has, or one the named command does not accept: the message is argparse's, as before."""
        from premigrate.cli import parser as cli
        from premigrate.errors import UsageError

        with pytest.raises(UsageError) as refused:
            cli.parse_args(argv)
        assert "must come after" not in refused.value.message and "see premigrate --help" in refused.value.message

    def test_global_flags_before_the_command_still_work(self) -> None:
        """premigrate --dir m up: every command's options are accepted before it, as always."""
        from premigrate.cli import parser as cli

        assert "m" == cli.parse_args(["--dir", "m", "up"])["dir"]

    @pytest.mark.parametrize("argv", [
        pytest.param(["up", "--shard", "-1/3"], id="separate"),
        pytest.param(["up", "--shard=-1/3"], id="attached"),
    ])
    def test_a_value_starting_with_a_dash_reaches_its_check(self, argv: list[str]) -> None:
        """--shard -1/3 is not taken for an option: the shard check says what a shard must be."""
        from premigrate.cli import parser as cli
        from premigrate.config import load_config
        from premigrate.errors import UsageError

        flags = cli.parse_args([*argv, "--targets", "t.txt"])
        assert "-1/3" == flags["shard"]
        with pytest.raises(UsageError, match=r"--shard: expected I/N, whole numbers with 0 <= I < N .*'-1/3'"):
            load_config(flags.pop("command"), flags, {})


def test_lock_session_waits_as_long_as_a_blocker_lookup() -> None:
    """engine/sessions.py keeps its own copy of lockwait's LOOKUP_WAIT_S, so that a no-op run need not load
    lockwait: the two stay one value."""
    from premigrate.engine import lockwait, sessions

    assert lockwait.LOOKUP_WAIT_S == sessions.LOOKUP_WAIT_S


_NO_OP_RUN = """
import json, sys
from premigrate.cli import main
code = main(["up", "--dir", sys.argv[1], "--log-format", "json"], {"DATABASE_URL": sys.argv[2]})
print(json.dumps([code, sorted(sys.modules)]))
"""


def test_a_real_no_op_run_loads_no_format_parser(tmp_path: Any) -> None:
    """A whole no-op `up` of a folder of plain files (not only the modules the path names): no format's parser, no
    lint, no executor. The Liquibase reader used to load on every run for one name it held."""
    folder = tmp_path / "m"
    folder.mkdir()
    for i in (1, 2):
        (folder / f"00{i}_t{i}.sql").write_text(f"CREATE TABLE t{i} (id INTEGER);\n")
    url = f"sqlite:///{tmp_path / 'app.db'}"
    runs = [subprocess.run([sys.executable, "-c", _NO_OP_RUN, str(folder), url], capture_output=True, text=True,
                           timeout=60) for _ in range(2)]
    assert [0, 0] == [r.returncode for r in runs], runs[-1].stderr
    code, loaded = json.loads(runs[1].stdout)  # the second run has nothing to do
    assert 0 == code
    heavy = [m for m in loaded if m.startswith(("premigrate.model.formats.liquibase", "premigrate.model.formats.sqitch",
                                                "premigrate.model.formats.goose", "premigrate.model.formats.atlas",
                                                "premigrate.commands.lint", "premigrate.engine.executor"))]
    assert [] == heavy
    assert [] == [m for m in ("logging", "tokenize", "textwrap") if m in loaded]  # no library here uses logging


def test_a_stood_in_module_loads_on_first_use() -> None:
    """inspect, stood in for while dataclasses was imported, is loaded the moment dataclasses needs it (a class
    without a docstring gets one from its signature) and is the real module for everyone else."""
    code = ("import sys, premigrate, dataclasses\nbefore = 'inspect' in sys.modules\n"
            "@dataclasses.dataclass\nclass Point:\n    x: int\n    y: int = 0\n"
            "import inspect\n"
            "print(before, Point.__doc__, inspect.signature(Point) == inspect.signature(Point),"
            " type(sys.modules['inspect']).__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (0, "False Point(x: int, y: int = 0) True module") == (result.returncode, result.stdout.strip()), \
        result.stderr


def test_after_import_calls_back_once_the_module_has_run() -> None:
    """stand_ins.after_import: a module not loaded yet calls back when something imports it, after its code ran and
    before the import statement returns, once; it keeps its own loader, and the hook leaves sys.meta_path. A module
    loaded already calls back at once."""
    code = ("import sys\nfrom premigrate.stand_ins import after_import\ncalls = []\n"
            "def seen(): calls.append(sys.modules['colorsys'].rgb_to_hsv(1, 0, 0))\n"
            "after_import('colorsys', seen)\nafter_import('colorsys', seen)\nbefore = list(calls)\n"
            "import colorsys\nfrom colorsys import hls_to_rgb\nimport colorsys\n"
            "after_import('sys', lambda: calls.append('sys'))\n"
            "print(before, calls, type(colorsys.__loader__).__name__, type(colorsys.__spec__.loader).__name__,"
            " [type(f).__name__ for f in sys.meta_path if type(f).__module__.startswith('premigrate')])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert 0 == result.returncode, result.stderr
    assert result.stdout.strip() in [f"[] [(0.0, 1.0, 1), 'sys'] {loader} {loader} []"
                                     for loader in ("SourceFileLoader", "SourcelessFileLoader")]


def test_a_postgres_or_mysql_lock_loads_neither_sqlite3_nor_uuid() -> None:
    """The runner lock of a PostgreSQL or MySQL run builds a Lease (engine/lease.py) whatever the lock mode: its
    holder id needs no uuid (nor the platform module uuid loads), and only a SQLite lease reads sqlite3."""
    code = ("import json, sys\nimport premigrate.drivers.postgres\nfrom premigrate.engine import lease, tablelock\n"
            "held = lease.Lease('postgresql', 'premigrate_lock', duration_s=30)\n"
            "lease._require_autocommit(type('C', (), {'autocommit': True})())\n"
            "print(json.dumps([held.holder.id, [m for m in ('sqlite3', 'uuid') if m in sys.modules]]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert 0 == result.returncode, result.stderr
    holder_id, loaded = json.loads(result.stdout)
    assert [] == loaded
    assert 32 == len(holder_id) and int(holder_id, 16) >= 0
