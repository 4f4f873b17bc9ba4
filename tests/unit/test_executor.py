"""The executor against an in-memory database (tests/unit/fakes.py): what each mode leaves behind when statement k
of n fails, retries after lock timeouts, in-doubt marking, --single-transaction, and `down`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

import premigrate.engine.lockwait as lockwait
from premigrate.config import load_config
from premigrate.drivers.base import HistoryRow
from premigrate.engine.executor import Executor
from premigrate.engine.sessions import HeldLock
from premigrate.errors import ConnectionLost, Interrupted, MigrationFailed
from premigrate.model.migrations import Migration
from premigrate.model.modes import StepShapes
from premigrate.model.planner import Reason, Step
from premigrate.model.sql import split_statements
from premigrate.model.versions import Version
from tests.unit.fakes import FakeDriver, lock_timeout, syntax_error

THREE = "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\nCREATE TABLE c (id int);\n"
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def _record(self, level: str, event: str, **fields: Any) -> None:
        self.events.append({"event": event, "level": level, **fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._record("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._record("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._record("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._record("error", event, **fields)

    def find(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == event]


def migration(version: str, sql: str = THREE, *, no_transaction: bool = False, down: str | None = None,
              down_no_transaction: bool = False) -> Migration:
    return Migration(kind="versioned", version=Version.parse(version), description=f"m{version}",
                     script=f"{version}_m.sql", up_sql=sql, up_first_line=1, checksum=f"sha256:{version}",
                     no_transaction=no_transaction, down_sql=down, down_script=f"{version}_m.down.sql" if down else None,
                     down_no_transaction=down_no_transaction)


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries pause for 0 s: the tests are about what is retried, not how long the pause is."""
    monkeypatch.setattr(lockwait, "backoff", lambda retry: 0.0)


class Harness:
    def __init__(self, driver: FakeDriver, flags: dict[str, Any]) -> None:
        self.driver = driver
        self.spare = FakeDriver(transactional_ddl=driver.transactional_ddl)
        self.log = RecordingLog()
        config = load_config("up", {"database_url": "sqlite:///unused.db", **flags}, {})
        self.lock = HeldLock(self.spare)  # type: ignore[arg-type]
        self.executor = Executor(driver, StepShapes("postgresql", driver.transactional_ddl), config,  # type: ignore[arg-type]
                                 self.log, applied_by="host", lock=self.lock)

    def apply(self, *migrations: Migration) -> None:
        self.executor.apply([Step(m, Reason.PENDING) for m in migrations])


@pytest.fixture
def harness() -> Iterator[Any]:
    made: list[Harness] = []

    def make(transactional_ddl: bool = True, **flags: Any) -> Harness:
        made.append(Harness(FakeDriver(transactional_ddl=transactional_ddl,
                                       local_timeouts=transactional_ddl), flags))
        return made[-1]

    yield make
    for h in made:
        h.lock.watch.close()


class TestFailureAtStatementK:
    """Statement 2 of 3 fails: what each mode leaves behind."""

    def test_transaction_mode_rolls_back_statements_and_row(self, harness: Any) -> None:
        """Transactional DDL, no directive: nothing of the migration stays, and no row is written."""
        h = harness()
        h.driver.fail["CREATE TABLE b (id int)"] = [syntax_error()]
        with pytest.raises(MigrationFailed) as failed:
            h.apply(migration("1"))
        assert ([], {}) == (h.driver.effects, h.driver.rows)
        assert "statement 2 of 3 (line 2) failed" in str(failed.value)
        assert "the migration was rolled back" in str(failed.value)
        assert "rolled back" == h.log.find("migration_failed")[0]["outcome"]

    @pytest.mark.parametrize("transactional_ddl", [pytest.param(True, id="no-transaction-file"),
                                                   pytest.param(False, id="mysql")])
    def test_stepwise_records_the_failed_statement(self, harness: Any, transactional_ddl: bool) -> None:
        """Stepwise: statement 1 stays, the row says failed at statement 2 with 1 done and the error."""
        h = harness(transactional_ddl)
        h.driver.fail["CREATE TABLE b (id int)"] = [syntax_error()]
        with pytest.raises(MigrationFailed) as failed:
            h.apply(migration("1", no_transaction=True))
        row = h.driver.rows["1"]
        assert ("failed", 1, 2, 3) == (row.state, row.statements_done, row.statement_started, row.statements_total)
        assert "statement 2 (line 2): [42P01]" in (row.error or "")
        assert ["CREATE TABLE a (id int)"] == h.driver.effects
        assert "recorded as failed" in str(failed.value)

    def test_self_managed_block_failure_is_rolled_back_and_recorded(self, harness: Any) -> None:
        """A file's own BEGIN ... COMMIT: the block is rolled back and the row names the block."""
        h = harness()
        sql = "CREATE TABLE a (id int);\nBEGIN;\nCREATE TABLE b (id int);\nCREATE TABLE c (id int);\nCOMMIT;\n"
        h.driver.fail["CREATE TABLE c (id int)"] = [syntax_error()]
        with pytest.raises(MigrationFailed):
            h.apply(migration("1", sql))
        row = h.driver.rows["1"]
        assert ("failed", 1, 2) == (row.state, row.statements_done, row.statement_started)
        assert "in the transaction block of statements 2-5, rolled back" in (row.error or "")
        assert ["CREATE TABLE a (id int)"] == h.driver.effects

    def test_broken_session_records_through_the_spare(self, harness: Any) -> None:
        """When the migration session is gone, the failure is recorded through the lock's session."""
        h = harness(False)
        h.spare.rows["1"] = HistoryRow("1", "1", "m1", "versioned", "1_m.sql", "sha256:1", WHEN, 0, "host",
                                       "in_progress")
        h.driver.fail["CREATE TABLE b (id int)"] = [syntax_error()]
        original = h.driver.update_row

        def update_then_break(row: HistoryRow) -> None:
            if row.state == "failed":
                raise ConnectionLost("gone")
            original(row)

        h.driver.update_row = update_then_break  # type: ignore[method-assign]
        with pytest.raises(MigrationFailed):
            h.apply(migration("1", no_transaction=True))
        assert "failed" == h.spare.rows["1"].state
        assert h.log.find("history_update_failed")


class TestLockTimeouts:
    def test_a_lock_timeout_is_retried_and_then_applies(self, harness: Any) -> None:
        """A lock timeout rolls the attempt back; the next attempt applies the whole migration once."""
        h = harness(lock_retries="2")
        h.driver.fail["CREATE TABLE b (id int)"] = [lock_timeout()]
        h.apply(migration("1"))
        assert ["CREATE TABLE a (id int)", "CREATE TABLE b (id int)", "CREATE TABLE c (id int)"] == h.driver.effects
        assert ("applied", 3) == (h.driver.rows["1"].state, h.driver.rows["1"].statements_done)
        assert [2] == [e["attempt"] for e in h.log.find("lock_retry")]

    def test_retries_run_out(self, harness: Any) -> None:
        """After the last retry the run fails naming the attempts and the statement; nothing stays."""
        h = harness(lock_retries="2")
        h.driver.fail["CREATE TABLE b (id int)"] = [lock_timeout(), lock_timeout(), lock_timeout()]
        with pytest.raises(MigrationFailed) as failed:
            h.apply(migration("1"))
        assert "gave up after 3 attempt(s)" in str(failed.value)
        assert ([], {}) == (h.driver.effects, h.driver.rows)
        assert [2, 3] == [e["attempt"] for e in h.log.find("lock_retry")]

    def test_stepwise_retries_only_the_blocked_statement(self, harness: Any) -> None:
        """Statement by statement, a retry runs the blocked statement again, not the ones before it."""
        h = harness(False, lock_retries="1")
        h.driver.fail["CREATE TABLE b (id int)"] = [lock_timeout()]
        h.apply(migration("1", no_transaction=True))
        assert ["CREATE TABLE a (id int)", "CREATE TABLE b (id int)", "CREATE TABLE c (id int)"] == h.driver.effects
        assert "applied" == h.driver.rows["1"].state


class TestInDoubt:
    def test_a_signal_during_a_statement_leaves_it_in_doubt(self, harness: Any) -> None:
        """Interrupted while statement 2 runs: the row says 1 done, 2 started, and why."""
        h = harness(False)
        h.driver.fail["CREATE TABLE b (id int)"] = [Interrupted(15)]
        with pytest.raises(Interrupted):
            h.apply(migration("1", no_transaction=True))
        row = h.driver.rows["1"]
        assert ("in_progress", 1, 2, True) == (row.state, row.statements_done, row.statement_started, row.in_doubt)
        assert "interrupted by SIGTERM during statement 2" in (row.error or "")

    def test_a_stop_before_a_statement_leaves_nothing_in_doubt(self, harness: Any) -> None:
        """A fleet's worker stops before sending statement 2 (Interrupted before_statement): the row says 1 done and
        none running, which the next run resumes from on its own; statement 2 did not run."""
        h = harness(False)
        h.driver.fail["CREATE TABLE b (id int)"] = [Interrupted(15, before_statement=True)]
        with pytest.raises(Interrupted):
            h.apply(migration("1", no_transaction=True))
        row = h.driver.rows["1"]
        assert ("in_progress", 1, 1, False) == (row.state, row.statements_done, row.statement_started, row.in_doubt)
        assert "interrupted by SIGTERM before statement 2 was sent" in (row.error or "")

    def test_a_stop_before_a_block_leaves_nothing_in_doubt(self, harness: Any) -> None:
        """Where DDL commits implicitly, a block the file opens itself is marked started before it runs; a stop
        before its first statement is sent puts the row back to "statement 1 done, none running" instead of leaving
        the block in doubt, and the next run resumes at it on its own."""
        h = harness(False)
        sql = "CREATE TABLE a (id int);\nBEGIN;\nCREATE TABLE b (id int);\nCOMMIT;\n"
        h.driver.fail["BEGIN"] = [Interrupted(15, before_statement=True)]
        with pytest.raises(Interrupted):
            h.apply(migration("1", sql))
        row = h.driver.rows["1"]
        assert ("in_progress", 1, 1, False) == (row.state, row.statements_done, row.statement_started, row.in_doubt)
        assert "before statement 2 was sent" in (row.error or "")

    def test_a_stop_inside_a_block_leaves_it_in_doubt(self, harness: Any) -> None:
        """Past the block's first statement, DDL in it may have committed: the row stays in doubt."""
        h = harness(False)
        sql = "CREATE TABLE a (id int);\nBEGIN;\nCREATE TABLE b (id int);\nCOMMIT;\n"
        h.driver.fail["CREATE TABLE b (id int)"] = [Interrupted(15, before_statement=True)]
        with pytest.raises(Interrupted):
            h.apply(migration("1", sql))
        row = h.driver.rows["1"]
        assert ("in_progress", 1, 2, True) == (row.state, row.statements_done, row.statement_started, row.in_doubt)

    def test_progress_is_written_before_each_statement(self, harness: Any) -> None:
        """Every statement is preceded by a write that marks it started (so a kill leaves it in doubt)."""
        h = harness(False)
        h.apply(migration("1", no_transaction=True))
        started = [row.statement_started for _, row in h.driver.writes if isinstance(row, HistoryRow)]
        assert [1, 2, 3, 3] == started
        assert "applied" == h.driver.rows["1"].state


class TestResume:
    def test_resume_runs_from_the_statement_after_the_last_done(self, harness: Any) -> None:
        """A resumed row with 1 of 3 done runs statements 2 and 3 only, then records the migration applied."""
        h = harness(False)
        m = migration("1", no_transaction=True)
        statements = split_statements(m.up_sql, "postgresql")
        row = HistoryRow("1", "1", "m1", "versioned", m.script, m.checksum, WHEN, 0, "host", "in_progress",
                         statements_done=1, statements_total=3, statement_started=1,
                         statement_hashes=(statements[0].digest,))
        h.driver.rows["1"] = row
        h.executor.apply([Step(m, Reason.RESUME, row)])
        assert ["CREATE TABLE b (id int)", "CREATE TABLE c (id int)"] == h.driver.effects
        assert ("applied", 3) == (h.driver.rows["1"].state, h.driver.rows["1"].statements_done)
        assert [2] == [e["from_statement"] for e in h.log.find("migration_resumed")]


class TestWriteAhead:
    def test_next_rows_first_write_goes_with_the_previous_final_write(self, harness: Any) -> None:
        """Two stepwise migrations: the second's first row is inserted in the same transaction as the first's
        final row, and never inserted twice."""
        h = harness(False)
        h.apply(migration("1", no_transaction=True), migration("2", "CREATE TABLE x (id int);\n", no_transaction=True))
        inserts = [row.migration_id for kind, row in h.driver.writes if kind == "insert" and isinstance(row, HistoryRow)]
        assert ["1", "2"] == inserts
        kinds = [kind for kind, _ in h.driver.writes]
        at = kinds.index("begin")
        assert ["begin", "update", "insert", "commit"] == kinds[at:at + 4]
        final, ahead = h.driver.writes[at + 1][1], h.driver.writes[at + 2][1]
        assert isinstance(final, HistoryRow) and isinstance(ahead, HistoryRow)
        assert (("1", "applied"), ("2", "in_progress", 1)) == (
            (final.migration_id, final.state), (ahead.migration_id, ahead.state, ahead.statement_started))
        assert {"1": "applied", "2": "applied"} == {k: r.state for k, r in h.driver.rows.items()}


    def test_connection_lost_after_the_write_ahead_is_a_recorded_state(self, harness: Any) -> None:
        """The connection breaks between the two migrations, after the second's first row was written: the error
        says a row records where it stopped (exit 4), not that nothing was recorded (exit 3)."""
        h = harness(False)

        def gone() -> None:
            raise ConnectionLost("lost the connection to MySQL: reset")

        h.driver.restore_session = gone
        with pytest.raises(ConnectionLost) as caught:
            h.apply(migration("1", no_transaction=True), migration("2", "CREATE TABLE x (id int);\n",
                                                                   no_transaction=True))
        assert (True, 4, "in_progress") == (caught.value.recorded, caught.value.exit_code, h.driver.rows["2"].state)


class TestSingleTransaction:
    def test_a_failure_rolls_back_every_migration(self, harness: Any) -> None:
        """Two migrations in one transaction: the second fails, neither stays, no row at all."""
        h = harness(single_transaction=True)
        h.driver.fail["CREATE TABLE y (id int)"] = [syntax_error()]
        with pytest.raises(MigrationFailed) as failed:
            h.apply(migration("1"), migration("2", "CREATE TABLE x (id int);\nCREATE TABLE y (id int);\n"))
        assert ([], {}) == (h.driver.effects, h.driver.rows)
        assert "the whole --single-transaction run was rolled back" in str(failed.value)
        assert [] == h.log.find("migration_applied")

    def test_success_commits_all(self, harness: Any) -> None:
        h = harness(single_transaction=True)
        h.apply(migration("1"), migration("2", "CREATE TABLE x (id int);\n"))
        assert ["1", "2"] == sorted(h.driver.rows)
        assert 1 == len(h.log.find("single_transaction_committed"))
        assert 2 == h.executor.stats.applied


class TestDown:
    def applied_row(self, m: Migration) -> HistoryRow:
        statements = split_statements(m.up_sql, "postgresql")
        return HistoryRow(m.id, m.id, m.description, "versioned", m.script, m.checksum, WHEN, 0, "host", "applied",
                          statements_done=len(statements), statements_total=len(statements),
                          statement_started=len(statements))

    def test_stepwise_down_removes_the_row_after_its_last_statement(self, harness: Any) -> None:
        """A no-transaction down part: progress in state rolling_back, then the row is removed."""
        h = harness()
        m = migration("1", down="DROP TABLE c;\nDROP TABLE b;\n", down_no_transaction=True)
        h.driver.rows["1"] = self.applied_row(m)
        h.executor.roll_back([(h.driver.rows["1"], m)])
        assert ["DROP TABLE c", "DROP TABLE b"] == h.driver.effects
        assert {} == h.driver.rows
        states = [row.state for _, row in h.driver.writes if isinstance(row, HistoryRow)]
        assert {"rolling_back"} == set(states)

    def test_stepwise_down_failure_is_recorded_as_rolling_back(self, harness: Any) -> None:
        """Statement 2 of the down part fails: the row stays rolling_back, 1 done, with the error."""
        h = harness()
        m = migration("1", down="DROP TABLE c;\nDROP TABLE b;\n", down_no_transaction=True)
        h.driver.rows["1"] = self.applied_row(m)
        h.driver.fail["DROP TABLE b"] = [syntax_error()]
        with pytest.raises(MigrationFailed) as failed:
            h.executor.roll_back([(h.driver.rows["1"], m)])
        row = h.driver.rows["1"]
        assert ("rolling_back", 1, 2, 2) == (row.state, row.statements_done, row.statement_started,
                                             row.statements_total)
        assert "statement 2 (line 2)" in (row.error or "")
        [event] = h.log.find("rollback_failed")
        assert "recorded as rolling_back" == event["outcome"]
        # The row is not failed, and --resume does not apply to it: the message says what the row is.
        assert "recorded as failed" not in str(failed.value)
        assert "stays rolling_back and records which statements of the down part ran" in str(failed.value)

    def test_transactional_down_failure_changes_nothing(self, harness: Any) -> None:
        """A down part in a transaction: a failure keeps the row applied and undoes nothing."""
        h = harness()
        m = migration("1", down="DROP TABLE c;\nDROP TABLE b;\n")
        h.driver.rows["1"] = self.applied_row(m)
        h.driver.fail["DROP TABLE b"] = [syntax_error()]
        with pytest.raises(MigrationFailed) as failed:
            h.executor.roll_back([(h.driver.rows["1"], m)])
        assert ([], "applied") == (h.driver.effects, h.driver.rows["1"].state)
        assert "the rollback was rolled back" in str(failed.value)


class TestProgressWriteSize:
    def test_progress_writes_do_not_grow_with_the_statements_done(self, harness: Any) -> None:
        """Each progress write of a 400-statement stepwise file carries a constant-size record of the done part
        (a prefix hash), so a run writes O(n) bytes, not O(n^2); the final row still lists every statement."""
        h = harness(False)
        sql = "".join(f"INSERT INTO t VALUES ({i});\n" for i in range(400))
        h.apply(migration("1", sql, no_transaction=True))
        progress = [row for kind, row in h.driver.writes
                    if kind in ("insert", "update") and isinstance(row, HistoryRow) and row.state == "in_progress"]
        assert len(progress) >= 399
        sizes = {len(" ".join(row.statement_hashes)) for row in progress}
        assert max(sizes) <= 40, sorted(sizes)[-3:]
        final = h.driver.rows["1"]
        assert ("applied", 400) == (final.state, len(final.statement_hashes))

    def test_a_prefix_hash_row_resumes_after_the_last_done(self, harness: Any) -> None:
        """The progress row a crash during statement 3 would leave holds a prefix hash; a resume from it runs
        statements 3 to 5. The failed row written once lists the done statements' hashes in full."""
        h = harness(False)
        sql = "".join(f"INSERT INTO t VALUES ({i});\n" for i in range(1, 6))
        m = migration("1", sql, no_transaction=True)
        h.driver.fail["INSERT INTO t VALUES (3)"] = [syntax_error()]
        with pytest.raises(MigrationFailed):
            h.apply(m)
        assert 2 == len(h.driver.rows["1"].statement_hashes)
        crashed = [row for kind, row in h.driver.writes if isinstance(row, HistoryRow) and row.state == "in_progress"]
        row = crashed[-1]
        assert (2, 3) == (row.statements_done, row.statement_started)
        assert 1 == len(row.statement_hashes) and row.statement_hashes[0].startswith("prefix:2:")
        h.driver.rows["1"] = row
        h.executor.apply([Step(m, Reason.RESUME, row.evolve(statement_started=2))])
        assert [f"INSERT INTO t VALUES ({i})" for i in (1, 2, 3, 4, 5)] == h.driver.effects
        assert "applied" == h.driver.rows["1"].state
