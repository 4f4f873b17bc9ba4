"""Logs: every stderr line is one JSON event with event/level/timestamp, stdout has none, the summary comes last."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.helpers import cmd, parse_timestamp, up, write
from tests.support import CliResult, TestDatabase, run_cli

GOOD = "CREATE TABLE t1 (id INTEGER PRIMARY KEY);\nINSERT INTO t1 (id) VALUES (1);\n"
BROKEN = "CREATE TABLE t2 (id INTEGER PRIMARY KEY);\nCREATE TABLE broken (id INTEGER,);\n"
LEVELS = {"debug", "info", "warning", "error", "critical"}


def _first_up(db: TestDatabase, d: Path) -> CliResult:
    write(d, "001_t1.sql", GOOD)
    return up(db, d)


def _second_up(db: TestDatabase, d: Path) -> CliResult:
    write(d, "001_t1.sql", GOOD)
    assert 0 == up(db, d).returncode
    return up(db, d)


def _failing_up(db: TestDatabase, d: Path) -> CliResult:
    write(d, "001_t1.sql", GOOD)
    write(d, "002_broken.sql", BROKEN)
    return up(db, d)


def _check_pending(db: TestDatabase, d: Path) -> CliResult:
    write(d, "001_t1.sql", GOOD)
    assert 0 == up(db, d).returncode
    write(d, "002_t2.sql", "CREATE TABLE t2 (id INTEGER PRIMARY KEY);\n")
    return cmd("check", db, d)


def _status_json(db: TestDatabase, d: Path) -> CliResult:
    write(d, "001_t1.sql", GOOD)
    assert 0 == up(db, d).returncode
    return cmd("status", db, d, "--json")


def _status_table(db: TestDatabase, d: Path) -> CliResult:
    write(d, "001_t1.sql", GOOD)
    assert 0 == up(db, d).returncode
    return cmd("status", db, d)


def _wait(db: TestDatabase, d: Path) -> CliResult:
    if db.dialect == "sqlite":
        db.query("SELECT 1")
    return cmd("wait", db, d)


def _bad_flag(db: TestDatabase, d: Path) -> CliResult:
    return cmd("up", db, d, "--no-such-flag")


def _bad_duration(db: TestDatabase, d: Path) -> CliResult:
    return cmd("up", db, d, "--wait-timeout", "abc")


SCENARIOS = [
    pytest.param(_first_up, 0, id="up-applies"),
    pytest.param(_second_up, 0, id="up-no-op"),
    pytest.param(_failing_up, 4, id="up-fails"),
    pytest.param(_check_pending, 7, id="check-pending"),
    pytest.param(_status_json, 0, id="status-json"),
    pytest.param(_status_table, 0, id="status-table"),
    pytest.param(_wait, 0, id="wait"),
    pytest.param(_bad_flag, 2, id="bad-flag"),
    pytest.param(_bad_duration, 2, id="bad-duration"),
]


class TestJsonLogLines:
    @pytest.mark.parametrize(("scenario", "expected_code"), SCENARIOS)
    def test_log_contract(self, db: TestDatabase, migrations_dir: Path,
                          scenario: Callable[[TestDatabase, Path], CliResult], expected_code: int) -> None:
        """Every stderr line is a JSON event with a UTC timestamp, the summary is last, stdout holds no log line."""
        result = scenario(db, migrations_dir)

        assert expected_code == result.returncode, result.stderr
        # Every line: one JSON object with event, a known level and an ISO-8601 UTC timestamp, in time order.
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines, "no log lines at all"
        previous = None
        for line in lines:
            event = json.loads(line)
            assert isinstance(event, dict), line
            assert isinstance(event.get("event"), str) and event["event"], line
            assert event.get("level") in LEVELS, line
            stamp = parse_timestamp(event["timestamp"])
            assert previous is None or previous <= stamp, "timestamps go backwards"
            previous = stamp
        # The last line is the only summary, and it carries the process exit code.
        events = result.events
        assert "summary" == events[-1]["event"]
        assert 1 == len(result.find("summary"))
        assert result.returncode == events[-1]["exit_code"]
        # Stdout carries only the command's own output.
        if scenario is _status_json:
            document = json.loads(result.stdout)
            assert "event" not in document
            assert ["1"] == [m["id"] for m in document["migrations"]]
        elif scenario is _status_table:
            assert "t1" in result.stdout
            assert not any(line.lstrip().startswith("{") for line in result.stdout.splitlines()), result.stdout
        else:
            assert "" == result.stdout


class TestMigrationEventFields:
    def test_applied_events_carry_version_description_duration(self, db: TestDatabase,
                                                               migrations_dir: Path) -> None:
        """migration_started and migration_applied carry version and description; applied adds duration_ms."""
        result = _first_up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        [started] = result.find("migration_started")
        [applied] = result.find("migration_applied")
        assert ("1", "t1") == (started["version"], started["description"])
        assert ("1", "t1") == (applied["version"], applied["description"])
        assert isinstance(applied["duration_ms"], int) and applied["duration_ms"] >= 0

    def test_failed_event_carries_version_description_duration(self, db: TestDatabase,
                                                              migrations_dir: Path) -> None:
        """migration_failed carries version, description, duration_ms, line and the database's message."""
        result = _failing_up(db, migrations_dir)

        assert 4 == result.returncode, result.stderr
        [failed] = result.find("migration_failed")
        assert ("2", "broken", 2) == (failed["version"], failed["description"], failed["line"])
        assert isinstance(failed["duration_ms"], int)
        assert failed["error"]

    def test_config_loaded_names_command_dialect_table(self, db: TestDatabase,
                                                               migrations_dir: Path) -> None:
        """config_loaded names the command, the dialect and the history table."""
        result = _first_up(db, migrations_dir)

        [loaded] = result.find("config_loaded")
        assert ("up", db.dialect, "premigrate_history") == (loaded["command"], loaded["dialect"], loaded["table"])


class TestConsoleFormat:
    def test_console_format_is_not_json(self, tmp_path: Path, migrations_dir: Path) -> None:
        """With --log-format console the lines are human-readable, not JSON, and stdout stays empty."""
        write(migrations_dir, "001_t1.sql", GOOD)

        result = run_cli("up", "--log-format", "console", "--dir", str(migrations_dir),
                         env={"DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}, cwd=tmp_path)

        assert 0 == result.returncode, result.stderr
        assert "" == result.stdout
        assert "migration_applied" in result.stderr
        assert not any(line.startswith("{") for line in result.stderr.splitlines())
