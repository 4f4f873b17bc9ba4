"""The executor with callback scripts and row counts (against tests/unit/fakes.py), the loader leaving callback files
out, and the options of verify, callbacks and the last-run metrics."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import premigrate.engine.lockwait as lockwait
from premigrate.config import load_config
from premigrate.engine.callbacks import CallbackRunner
from premigrate.engine.executor import Executor
from premigrate.engine.sessions import HeldLock
from premigrate.errors import CallbackFailed, MigrationFailed, MigrationFileError, UsageError
from premigrate.model.callbacks import discover
from premigrate.model.migrations import load_migrations
from premigrate.model.modes import StepShapes
from premigrate.model.planner import Reason, Step
from tests.unit.fakes import FakeDriver, lock_timeout, syntax_error
from tests.unit.test_executor import RecordingLog, migration

TWO = "CREATE TABLE a (id int);\nINSERT INTO a VALUES (1);\n"


class CountingDriver(FakeDriver):
    """A fake whose INSERT/UPDATE statements report one row each, as a driver's cursor.rowcount would."""

    def execute(self, statement: str) -> int | None:  # type: ignore[override]
        super().execute(statement)
        return 1 if statement.lstrip().upper().startswith(("INSERT", "UPDATE")) else None


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lockwait, "backoff", lambda retry: 0.0)


class Harness:
    def __init__(self, folder: Path, *, transactional_ddl: bool = True) -> None:
        self.driver = CountingDriver(transactional_ddl=transactional_ddl, local_timeouts=transactional_ddl)
        self.log = RecordingLog()
        config = load_config("up", {"database_url": "sqlite:///unused.db"}, {})
        self.lock = HeldLock(FakeDriver(transactional_ddl=transactional_ddl))  # type: ignore[arg-type]
        self.callbacks = CallbackRunner(discover(folder), "postgresql", {"WHO": "ops"}, self.log,
                                        transactional_ddl=transactional_ddl)
        self.executor = Executor(self.driver, StepShapes("postgresql", transactional_ddl), config,  # type: ignore[arg-type]
                                 self.log, applied_by="host", lock=self.lock, callbacks=self.callbacks)

    def apply(self, *migrations: Any) -> None:
        self.executor.apply([Step(m, Reason.PENDING) for m in migrations])


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(**kwargs: Any) -> Harness:
        made.append(Harness(tmp_path, **kwargs))
        return made[-1]

    yield make
    for h in made:
        h.lock.watch.close()


class TestPerMigrationCallbacks:
    def test_inside_the_migration_transaction(self, harness: Any, tmp_path: Path) -> None:
        """beforeEachMigrate and afterEachMigrate run in the migration's transaction, placeholders filled in."""
        (tmp_path / "beforeEachMigrate.sql").write_text("SELECT 'before ${WHO}';\n")
        (tmp_path / "afterEachMigrate.sql").write_text("SELECT 'after';\n")
        h = harness()
        h.apply(migration("1", TWO))
        assert ["SELECT 'before ops'", "CREATE TABLE a (id int)", "INSERT INTO a VALUES (1)", "SELECT 'after'"] == \
            h.driver.effects
        assert ["begin", "insert", "commit"] == [kind for kind, _ in h.driver.writes]
        assert ["1"] == list(h.driver.rows)

    def test_failing_after_each_rolls_the_migration_back(self, harness: Any, tmp_path: Path) -> None:
        """A failing afterEachMigrate rolls its migration back, names the script (exit 4), then
        afterEachMigrateError runs."""
        (tmp_path / "afterEachMigrate.sql").write_text("SELECT 'after';\n")
        (tmp_path / "afterEachMigrateError.sql").write_text("SELECT 'cleanup';\n")
        h = harness()
        h.driver.fail["SELECT 'after'"] = [syntax_error()]
        with pytest.raises(CallbackFailed) as failed:
            h.apply(migration("1", TWO))
        assert 4 == failed.value.exit_code
        assert "afterEachMigrate.sql (afterEachMigrate) failed at statement 1 of 1 (line 1)" in failed.value.message
        assert (["SELECT 'cleanup'"], {}) == (h.driver.effects, h.driver.rows)

    def test_failed_migration_runs_the_error_callback_after_rollback(self, harness: Any, tmp_path: Path) -> None:
        """A failing migration: afterEachMigrateError after the rollback; the migration's failure is raised."""
        (tmp_path / "afterEachMigrateError.sql").write_text("SELECT 'cleanup';\n")
        h = harness()
        h.driver.fail["INSERT INTO a VALUES (1)"] = [syntax_error()]
        with pytest.raises(MigrationFailed) as failed:
            h.apply(migration("1", TWO))
        assert not isinstance(failed.value, CallbackFailed)
        assert ["SELECT 'cleanup'"] == h.driver.effects
        assert ["1"] == [e["migration_id"] for e in h.log.find("callback_started")]

    def test_stepwise_migration_runs_them_on_their_own(self, harness: Any, tmp_path: Path) -> None:
        """Without a transaction to share (MySQL), each script runs just before and just after the migration."""
        (tmp_path / "beforeEachMigrate.sql").write_text("SELECT 'before';\n")
        (tmp_path / "afterEachMigrate.sql").write_text("SELECT 'after';\n")
        h = harness(transactional_ddl=False)
        h.apply(migration("1", TWO))
        assert ["SELECT 'before'", "CREATE TABLE a (id int)", "INSERT INTO a VALUES (1)", "SELECT 'after'"] == \
            h.driver.effects
        assert "applied" == h.driver.rows["1"].state


class TestRowsAffected:
    def test_per_statement_and_total(self, harness: Any) -> None:
        """migration_applied: None for DDL, the driver's count for DML; the run's total in the stats."""
        h = harness()
        h.apply(migration("1", TWO), migration("2", "UPDATE a SET id = 2;\nINSERT INTO a VALUES (3);\n"))
        assert [(1, [None, 1]), (2, [1, 1])] == [(e["rows_affected"], e["rows_affected_per_statement"])
                                                 for e in h.log.find("migration_applied")]
        assert 3 == h.executor.stats.rows_affected

    def test_retried_migration_counts_once(self, harness: Any) -> None:
        """A lock timeout retries the migration: its statements are counted for the attempt that committed."""
        h = harness()
        h.driver.fail["INSERT INTO a VALUES (1)"] = [lock_timeout()]
        h.apply(migration("1", "INSERT INTO a VALUES (0);\nINSERT INTO a VALUES (1);\n"))
        assert (2, [1, 1]) == tuple(h.log.find("migration_applied")[0][k]
                                    for k in ("rows_affected", "rows_affected_per_statement"))


class TestLoaderAndOptions:
    def test_loader_leaves_callbacks_out(self, tmp_path: Path) -> None:
        """Callback-named files are not migrations; a name that only looks like one is still refused."""
        (tmp_path / "001_a.sql").write_text("SELECT 1;\n")
        for name in ("beforeMigrate.sql", "afterMigrate__grants.sql", "beforeValidate.sql", "afterMigrateX.sql"):
            (tmp_path / name).write_text("SELECT 1;\n")
        files = load_migrations(tmp_path)
        assert (["1"], ["afterMigrateX.sql", "afterMigrate__grants.sql", "beforeMigrate.sql",
                        "beforeValidate.sql"]) == ([m.id for m in files.versioned], files.callback_files)
        (tmp_path / "AfterMigrate.sql").write_text("SELECT 1;\n")
        with pytest.raises(MigrationFileError, match="AfterMigrate.sql"):
            load_migrations(tmp_path)

    def test_options(self, tmp_path: Path) -> None:
        """--callbacks, --callbacks-always, --scratch-url (its password a secret) and serve's --summary-file."""
        config = load_config("up", {"callbacks": str(tmp_path), "callbacks_always": True}, {})
        assert (tmp_path, True) == (config.callbacks.dir, config.callbacks.always)
        verify = load_config("verify", {"scratch_url": "postgresql://u:pw-123@127.0.0.1/scratch", "yes": True}, {})
        assert verify.verify.scratch is not None and "scratch" == verify.verify.scratch.database
        assert verify.verify.yes and "pw-123" in verify.secrets
        serve = load_config("serve", {}, {"PREMIGRATE_SUMMARY_FILE": "/shared/summary.json"})
        assert "/shared/summary.json" == serve.serve.summary_file
        with pytest.raises(UsageError, match="--scratch-url"):
            load_config("verify", {"scratch_url": "nosuch://x"}, {})
