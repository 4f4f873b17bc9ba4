"""Fleets, the command's side: options, one target's configuration, stopping, and the termination message."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from premigrate.cli import TERMINATION_MESSAGE_BYTES, fit_termination_message
from premigrate.commands.fleet_targets import check_targets, refuse_duplicates, target_config
from premigrate.engine.fleet_sessions import FleetStop
from premigrate.config import load_config
from premigrate.engine.interrupts import SignalGuard
from premigrate.errors import Interrupted, UsageError
from premigrate.model.fleet import FleetSummary, Shard, TargetResult, parse_targets

pytestmark = pytest.mark.unit

PG = "postgresql://app:s3cret@db:5432/app"
MY = "mysql://root:s3cret@db:3306/mysql"


def one(line: str):  # type: ignore[no-untyped-def]
    return parse_targets(line, source="test")[0]


class TestOptions:
    def test_fleet_options_resolved(self) -> None:
        """--targets, --concurrency, --shard and --fail-fast land in the fleet section."""
        config = load_config("up", {"targets": "t.txt", "concurrency": "8", "shard": "2/5", "fail_fast": True},
                             {"DATABASE_URL": PG})
        fleet = config.fleet
        assert (True, "t.txt", 8, Shard(2, 5), True) == (fleet.active, fleet.targets, fleet.concurrency, fleet.shard,
                                                        fleet.fail_fast)

    def test_shard_from_indexed_job(self) -> None:
        """Without --shard, a fleet takes JOB_COMPLETION_INDEX of PREMIGRATE_SHARDS."""
        config = load_config("check", {"targets": "-"}, {"JOB_COMPLETION_INDEX": "3", "PREMIGRATE_SHARDS": "4"})
        assert Shard(3, 4) == config.fleet.shard

    def test_indexed_job_ignored_without_a_fleet(self) -> None:
        """A single-target run in an Indexed Job is not sharded (and needs no PREMIGRATE_SHARDS)."""
        config = load_config("up", {}, {"JOB_COMPLETION_INDEX": "3"})
        assert (False, None) == (config.fleet.active, config.fleet.shard)

    def test_list_and_query_together_refused(self) -> None:
        """--targets and --targets-query cannot both be given."""
        with pytest.raises(UsageError, match="both set"):
            load_config("up", {"targets": "t.txt"}, {"PREMIGRATE_TARGETS_QUERY": "SELECT 1"})

    @pytest.mark.parametrize("value", ["0", "-1", "many"])
    def test_bad_concurrency_refused(self, value: str) -> None:
        """--concurrency is a whole number of at least 1."""
        with pytest.raises(UsageError, match="--concurrency"):
            load_config("up", {"targets": "t.txt", "concurrency": value}, {})

    def test_bad_shard_refused(self) -> None:
        """PREMIGRATE_SHARD=4/4 names a shard that does not exist."""
        with pytest.raises(UsageError, match="does not exist"):
            load_config("up", {"targets": "t.txt"}, {"PREMIGRATE_SHARD": "4/4"})

    def test_fleet_options_not_taken_by_down(self) -> None:
        """Only up, status and check take a fleet: other commands keep the section's defaults."""
        assert not load_config("down", {}, {"PREMIGRATE_TARGETS": "t.txt"}).fleet.active


class TestTargetConfig:
    def test_schema_target_sets_the_schema(self) -> None:
        """schema=NAME on PostgreSQL is --schema NAME: search path and history schema."""
        config = target_config(load_config("up", {}, {"DATABASE_URL": PG}), one("schema=tenant 7"))
        assert ("tenant 7", "tenant 7", "app") == (config.schema, config.history_schema, config.dsn.database)

    def test_database_target_sets_the_database(self) -> None:
        """database=NAME replaces the database of the configured URL, keeping its server and password."""
        config = target_config(load_config("up", {}, {"DATABASE_URL": MY}), one("database=shop_1"))
        assert ("shop_1", "db", "s3cret") == (config.dsn.database, config.dsn.host, config.dsn.password)

    @pytest.mark.parametrize(("url", "line", "error"), [
        (MY, "schema=x", "schema= targets need PostgreSQL"),
        ("sqlite:///a.db", "database=x", "SQLite targets are files"),
    ])
    def test_meaningless_targets_refused(self, url: str, line: str, error: str) -> None:
        """A target that cannot mean anything on the configured database is a usage error."""
        with pytest.raises(UsageError, match=error):
            target_config(load_config("up", {}, {"DATABASE_URL": url}), one(line))

    def test_qualified_table_refused_for_schema_targets(self) -> None:
        """--table other.history would make every schema target share one history table."""
        base = load_config("up", {"table": "audit.history"}, {"DATABASE_URL": PG})
        with pytest.raises(UsageError, match="share one history table"):
            target_config(base, one("schema=t1"))

    def test_schema_option_and_schema_targets_refused(self) -> None:
        """--schema and schema= targets would disagree on the schema: a usage error, not a silent choice."""
        base = load_config("up", {"schema": "public"}, {"DATABASE_URL": PG})
        with pytest.raises(UsageError, match="drop --schema"):
            target_config(base, one("schema=t1"))

    def test_url_on_the_same_server_inherits_the_password(self) -> None:
        """A URL line without a password, same server and user as the configured one, uses its password."""
        config = target_config(load_config("up", {}, {"DATABASE_URL": PG}), one("postgresql://app@db:5432/other"))
        assert ("other", "s3cret") == (config.dsn.database, config.dsn.password)

    @pytest.mark.parametrize(("configured", "line"), [
        ("mysql://root:s3cret@db:3306/mysql", "mysql://root@db/shop"),
        ("mysql://root:s3cret@db/mysql", "mysql://root@db:3306/shop"),
        ("postgresql://app:s3cret@db/app", "postgresql://app@db:5432/other"),
    ])
    def test_default_port_is_the_same_server(self, configured: str, line: str) -> None:
        """A port left out is the default port: the same server, so the configured password serves the line."""
        config = target_config(load_config("up", {}, {"DATABASE_URL": configured}), one(line))
        assert "s3cret" == config.dsn.password

    @pytest.mark.parametrize(("url", "line", "error"), [
        (MY, "mysql://root@db:3306/x?sslmode=require", "unknown MySQL parameter 'sslmode'"),
        (MY, "mysql://root@db/x?ssl-mode=bogus", "ssl-mode='bogus'"),
        (MY, "mysql://root@db/x?connect_timeout=abc", "connect_timeout='abc'"),
        (MY, "mysql://root@db/x?charset=nosuch", "charset='nosuch'"),
        (PG, "postgresql://app@db/x?no_such_option=1", "no_such_option"),
    ])
    def test_bad_url_parameters_refused_before_running(self, url: str, line: str, error: str) -> None:
        """A URL line's parameters are checked with the list, before any target runs (exit 2)."""
        with pytest.raises(UsageError, match=error):
            target_config(load_config("up", {}, {"DATABASE_URL": url}), one(line))

    def test_long_postgresql_names_refused(self) -> None:
        """64 characters is a MySQL/MariaDB name; PostgreSQL would cut it to 63 bytes and use another schema."""
        name = "t" * 64
        assert name == target_config(load_config("up", {}, {"DATABASE_URL": MY}), one(f"database={name}")).dsn.database
        with pytest.raises(UsageError, match="63 bytes"):
            target_config(load_config("up", {}, {"DATABASE_URL": PG}), one(f"schema={name}"))

    def test_configured_url_checked_once_for_its_targets(self) -> None:
        """database= targets connect with the configured URL: a parameter it cannot take is refused before any
        target runs, not met by each target in turn."""
        base = load_config("up", {}, {"DATABASE_URL": MY + "?sslmode=require"})
        targets = [(t, target_config(base, t)) for t in parse_targets("database=a\ndatabase=b\n", source="test")]
        with pytest.raises(UsageError, match="unknown MySQL parameter 'sslmode'"):
            check_targets(base, targets)
        check_targets(load_config("up", {}, {"DATABASE_URL": MY}), [
            (t, target_config(base, t)) for t in parse_targets("database=a\n", source="test")])

    def test_one_target_written_two_ways_refused(self) -> None:
        """database=X beside a URL of the same database (its port left out) is one target listed twice."""
        base = load_config("up", {}, {"DATABASE_URL": MY})
        targets = [(t, target_config(base, t)) for t in
                   parse_targets("database=shop\nmysql://root@db/shop\n", source="test")]
        with pytest.raises(UsageError, match="database=shop again"):
            refuse_duplicates(targets)
        distinct = [(t, target_config(base, t)) for t in
                    parse_targets("database=shop\nmysql://root@db/shop2\nmysql://root@other/shop\n", source="test")]
        refuse_duplicates(distinct)

    def test_url_elsewhere_does_not_inherit_the_password(self) -> None:
        """The configured password is never sent to another server."""
        config = target_config(load_config("up", {}, {"DATABASE_URL": PG}), one("postgresql://app@elsewhere/app"))
        assert config.dsn.password is None

    def test_url_password_is_a_secret(self) -> None:
        """A password written in a URL line is scrubbed from logs like the configured one."""
        config = target_config(load_config("up", {}, {}), one("postgresql://u:line-pw@h/d"))
        assert "line-pw" in config.secrets


class TestFleetStop:
    def test_no_stop_before_a_signal(self) -> None:
        """Without a signal, check() lets the worker go on."""
        FleetStop().check()

    def test_a_stopped_worker_sends_no_statement(self, tmp_path: Path) -> None:
        """After the signal a target's session refuses its next statement before sending it (Interrupted, marked
        before_statement); until then statements run and their row counts come through."""
        from premigrate.drivers.base import DriverSettings
        from premigrate.drivers.sqlite import SQLiteDriver
        from premigrate.engine.fleet_sessions import StoppableDriver, WorkerSessions
        from premigrate.model.dsn import parse_url

        driver = SQLiteDriver.connect(parse_url(f"sqlite:///{tmp_path / 'a.db'}", source="test"), DriverSettings(table="premigrate_history"))
        stop = FleetStop()
        session = StoppableDriver(driver, stop, WorkerSessions())
        try:
            session.execute("CREATE TABLE t (id INTEGER)")
            assert 1 == session.execute("INSERT INTO t VALUES (1)")
            stop.signum = signal.SIGTERM
            with pytest.raises(Interrupted) as raised:
                session.execute("INSERT INTO t VALUES (2)")
            assert (True, 143) == (raised.value.before_statement, raised.value.exit_code)
            assert [(1,)] == driver.fetch("SELECT id FROM t")
        finally:
            driver.close()

    def test_a_statement_the_signal_cancelled_is_the_signal(self) -> None:
        """The signal's cancel makes the running statement fail on the server: the worker raises Interrupted (the
        statement may have taken effect), not the server's error, as a single run does."""
        from premigrate.drivers.base import SqlError
        from premigrate.engine.fleet_sessions import StoppableDriver, WorkerSessions

        stop = FleetStop()

        class Cancelled:
            def execute(self, statement: str) -> int | None:
                stop.arriving()
                stop.signum = signal.SIGTERM
                raise SqlError("Query execution was interrupted", code="1317")

        with pytest.raises(Interrupted) as raised:
            StoppableDriver(Cancelled(), stop, WorkerSessions()).execute("UPDATE t SET v = v + 1")  # type: ignore[arg-type]
        assert (False, 143) == (raised.value.before_statement, raised.value.exit_code)
        with pytest.raises(SqlError):  # without a signal, a failure is the statement's own
            StoppableDriver(type("Failing", (), {"execute": lambda self, s: (_ for _ in ()).throw(SqlError("x"))})(),
                            FleetStop(), WorkerSessions()).execute("SELECT 1")  # type: ignore[arg-type]

    def test_signal_stops_with_its_number(self) -> None:
        """Once the signal arrived (hook) and its handler ran, workers raise Interrupted with its exit code."""
        guard = SignalGuard()
        stop = FleetStop(guard)
        stop.arriving()
        guard.received = signal.SIGINT
        with pytest.raises(Interrupted) as raised:
            stop.check()
        assert 130 == raised.value.exit_code


class TestTerminationMessage:
    def test_long_failure_list_cut_to_fit(self) -> None:
        """With 300 failed targets, the message fits in 4096 bytes, counts stay exact, and the cut is said."""
        summary = FleetSummary(total=500)
        for i in range(500):
            summary.add(TargetResult(f"schema=tenant_{i:04d}", 4 if i < 300 else 0, message="x" * 40))
        fleet = summary.as_dict()
        text = fit_termination_message({"command": "up", "exit_code": 4}, fleet)
        shown = json.loads(text)["fleet"]
        assert len(text.encode()) < TERMINATION_MESSAGE_BYTES
        assert {"migration_failed": 300, "succeeded": 200} == shown["outcomes"]
        assert 300 == len(shown["failed"]) + shown["failed_not_shown"]
        assert shown["failed"]

    def test_short_list_kept_whole(self) -> None:
        """A summary that fits is written as it is."""
        summary = FleetSummary(total=2)
        summary.add(TargetResult("schema=a", 3, message="unreachable"))
        fleet = summary.as_dict()
        shown = json.loads(fit_termination_message({"command": "up"}, fleet))["fleet"]
        assert fleet == shown
