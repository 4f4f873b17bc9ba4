"""engine.topology without a database: what a detected topology means for the lock, the wait and refusals."""

from __future__ import annotations

import psycopg
import pymysql
import pytest

from premigrate.engine.topology import (
    ReadOnlyServer,
    Topology,
    TopologyRefused,
    group_member,
    read_only_error,
    refuse,
    unavailable_reason,
)


class TestLockMode:
    @pytest.mark.parametrize(("topology", "mode"), [
        pytest.param(Topology("postgresql"), "advisory", id="direct"),
        pytest.param(Topology("postgresql", pooling="session"), "advisory", id="session-pooling"),
        pytest.param(Topology("postgresql", pooling="transaction"), "table", id="transaction-pooling"),
        pytest.param(Topology("postgresql", pooling="statement"), "table", id="statement-pooling"),
        pytest.param(Topology("postgresql", pooling="unknown"), "table", id="pooler-of-unknown-mode"),
        pytest.param(Topology("mysql", galera=True, osu_method="TOI"), "table", id="galera"),
        pytest.param(Topology("mysql", group_replication=True), "table", id="group-replication"),
        pytest.param(Topology("postgresql", hot_standby=True), "advisory", id="standby"),
    ])
    def test_auto_chooses_the_table_lock_where_session_locks_cannot_be_trusted(self, topology: Topology,
                                                                              mode: str) -> None:
        """--lock-mode auto: table behind transaction/statement/unknown pooling, on Galera and Group Replication."""
        assert mode == topology.lock_mode

    def test_the_reason_joins_the_findings_or_says_direct(self) -> None:
        """The log line says why: every finding, or that nothing stands in between."""
        assert "direct connection to a single server: session locks hold" == Topology("mysql").reason
        both = Topology("mysql", findings=("Galera 3 nodes detected", "server is read-only"))
        assert "Galera 3 nodes detected; server is read-only" == both.reason


class TestGroupMember:
    @pytest.mark.parametrize(("rows", "expected"), [
        pytest.param([], (False, None), id="no-row"),
        pytest.param([("OFFLINE", "SECONDARY")], (False, None), id="offline"),
        pytest.param([("ERROR", None)], (False, None), id="error"),
        pytest.param([("ONLINE", "PRIMARY")], (True, "PRIMARY"), id="online-primary"),
        pytest.param([("RECOVERING", "SECONDARY")], (True, "SECONDARY"), id="recovering"),
        pytest.param([("ONLINE", None)], (True, None), id="mysql-5.7-no-role"),
    ])
    def test_only_online_or_recovering_members_count(self, rows: list[tuple[object, ...]],
                                                     expected: tuple[bool, str | None]) -> None:
        """A member that takes part in the group's writes is ONLINE or RECOVERING."""
        assert expected == group_member(rows)


class TestUnavailableReason:
    @pytest.mark.parametrize(("dialect", "exc", "reason"), [
        pytest.param("postgresql", psycopg.errors.ReadOnlySqlTransaction("cannot execute CREATE TABLE in a"
                                                                         " read-only transaction"), "read_only",
                     id="pg-25006"),
        pytest.param("postgresql", psycopg.errors.UndefinedTable("no such table"), None, id="pg-other"),
        pytest.param("mysql", pymysql.err.OperationalError(1290, "The MariaDB server is running with the"
                                                                 " --read-only option"), "read_only",
                     id="mysql-1290"),
        pytest.param("mysql", pymysql.err.OperationalError(1792, "Cannot execute statement in a READ ONLY"
                                                                 " transaction"), "read_only", id="mysql-1792"),
        pytest.param("mysql", pymysql.err.OperationalError(1047, "WSREP has not yet prepared node for application"
                                                                 " use"), "galera_not_ready", id="galera-1047"),
        pytest.param("mysql", pymysql.err.OperationalError(1213, "Deadlock found"), None, id="mysql-deadlock"),
        pytest.param("sqlite", OSError("readonly"), None, id="sqlite"),
    ])
    def test_read_only_and_unready_nodes_are_told_apart_from_other_errors(self, dialect: str, exc: BaseException,
                                                                          reason: str | None) -> None:
        """The wait retries these until --wait-timeout; any other error keeps its own meaning."""
        assert reason == unavailable_reason(dialect, exc)


class TestMessages:
    def test_the_read_only_error_names_the_server_and_the_fix(self) -> None:
        """Exit 3, the server, why, and target_session_attrs=read-write for PostgreSQL."""
        error = read_only_error("127.0.0.1:5433", Topology("postgresql", hot_standby=True, findings=(
            "server is a hot standby (pg_is_in_recovery() is true): it cannot take writes",)))
        assert isinstance(error, ReadOnlyServer)
        assert 3 == error.exit_code
        assert "127.0.0.1:5433" in str(error)
        assert "hot standby" in str(error)
        assert "target_session_attrs=read-write" in str(error)
        assert "\n" not in str(error)

    def test_statement_pooling_and_galera_rsu_are_refused(self) -> None:
        """Statement pooling always; RSU unless allowed; TOI and direct connections never."""
        statement = refuse(Topology("postgresql", pooling="statement"))
        rsu = refuse(Topology("mysql", galera=True, osu_method="RSU"))
        assert isinstance(statement, TopologyRefused) and "statement pooling" in str(statement)
        assert isinstance(rsu, TopologyRefused) and "RSU" in str(rsu) and 5 == rsu.exit_code
        assert refuse(Topology("mysql", galera=True, osu_method="RSU"), allow_rsu=True) is None
        assert refuse(Topology("mysql", galera=True, osu_method="TOI")) is None
        assert refuse(Topology("postgresql", pooling="transaction")) is None
