"""sqitch verify scripts: run after a change's deploy script; one that raises reverts the change.

What sqitch does (sqitchers/sqitch lib/App/Sqitch/Engine.pm at 0ab857e, `deploy_change`): the deploy script runs,
then `verify_change` when verifying is on (`sqitch deploy --verify`); if the verify dies, the registry work is rolled
back (`rollback_work`), the change's revert script runs (`run_revert`), the change is logged as failed
(`log_fail_change`) and the deploy fails. premigrate does the same for the change that failed: its verify script
runs on the migration session after the deploy script (as written, its own BEGIN ... ROLLBACK included); if a
statement raises, the open transaction is rolled back, the revert script runs through the `down` path (so a crash in
the middle leaves a `rolling_back` row saying how far it got), the history row goes away with it, and the run ends
with exit 4 saying so.

sqitch's default deploy mode, `all` (`_deploy_all`, `_rollback`), then also reverts every change deployed earlier in
the same run. premigrate does not: it behaves as `sqitch deploy --mode change` (`_deploy_by_change`: "If any fails,
we just stop"), because each change is committed and recorded on its own, like every premigrate migration, and exit
4 means "the changes before the failed one are applied". The next run starts again at the failed change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from premigrate.drivers.base import STATE_FAILED, Driver
from premigrate.errors import MigrationFailed, ValidationFailed
from premigrate.model.history import migration_fields

if TYPE_CHECKING:
    from premigrate.engine.executor import Executor
    from premigrate.model.migrations import Migration

EVENT_VERIFY_FAILED = "change_verify_failed"


class ChangeVerify:
    """The verify step of one executor."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def wanted(self, migration: Migration) -> bool:
        return self.executor.config.apply.verify and migration.verify_sql is not None

    def run(self, migration: Migration) -> None:
        """Run the verify script; when it raises, revert the change and raise MigrationFailed (exit 4)."""
        executor = self.executor
        assert migration.verify_sql is not None
        view = replace(migration, script=migration.verify_script or migration.script, up_sql=migration.verify_sql,
                       up_first_line=1, down_sql=None, no_transaction=True)
        statements = executor.shapes.statements(view)
        timeouts = executor.timeouts(migration)
        started = executor.clock()

        def attempt() -> None:
            for index in range(1, len(statements) + 1):
                executor.attempts.execute(view, statements, index, started, recorded=False, rolled_back="",
                                          event=EVENT_VERIFY_FAILED, lock_timeout=timeouts.lock)

        try:
            executor.attempts.with_retries(attempt, timeouts.retries, started, recorded=False, rolled_back="",
                                           event=EVENT_VERIFY_FAILED)
        except MigrationFailed as exc:
            try:
                executor.driver.rollback()  # a verify that failed inside its own BEGIN leaves the transaction open
            except BaseException:  # noqa: BLE001 - the verify's error is the one to report
                pass
            raise self._revert(migration, exc) from exc
        executor.log.info("change_verified", **migration_fields(migration), verify_script=view.script,
                          statements=len(statements), duration_ms=executor.attempts.ms(started))

    def _revert(self, migration: Migration, failure: MigrationFailed) -> MigrationFailed:
        """sqitch's run_revert after a failed verify; the error that ends the run, saying what became of the
        change."""
        executor = self.executor
        said = f"verify failed: {failure}"
        row = next((r for r in executor.driver.read_history() if r.migration_id == migration.id), None)
        if row is None:  # cannot happen: the change was just recorded; say so rather than guess
            return MigrationFailed(f"{said}; its history row is gone, check the database", **failure.fields)
        if migration.down_sql is None:
            summary = failure.fields.get("error_summary") or failure
            executor.record_quietly(row.evolve(state=STATE_FAILED,
                                               error=f"verify failed: {summary}; no revert script to undo the deploy"))
            return MigrationFailed(f"{said}; the change has no revert script, so its deploy is NOT undone: it is "
                                   "recorded as failed; undo it by hand, then `premigrate repair --forget "
                                   f"{migration.id}`", **failure.fields)
        executor.log.warning("change_reverting", **migration_fields(migration), revert_script=migration.down_script,
                             note="the verify script failed: reverting the change as sqitch does")
        try:
            executor.roll_back_one(row, migration)
        except MigrationFailed as again:
            if executor.shapes.down_in_transaction(migration):
                executor.record_quietly(row.evolve(state=STATE_FAILED, error=f"verify failed, then the revert "
                                                   f"failed: {again.fields.get('error_summary') or again}"))
            return MigrationFailed(f"{said}; reverting it failed too ({again}); the change is recorded as "
                                   "unfinished: see `premigrate repair`", **failure.fields)
        return MigrationFailed(f"{said}; the change was reverted with {migration.down_script} and is not recorded "
                               "as applied", **failure.fields)


# sqitch's MySQL registry defines sqitch.checkit(doit, message), which raises `message` when `doit` is 0 or NULL
# (sqitchers/sqitch lib/App/Sqitch/Engine/mysql.pm `_create_check_function`); sqitch's MySQL tutorial has verify
# scripts call it. premigrate keeps no sqitch registry, so such a script would fail on the missing function and
# revert a good change: refused before anything runs instead.
_CHECKIT = re.compile(r"\bsqitch\s*\.\s*checkit\s*\(", re.IGNORECASE)
CHECKIT_SQL = """CREATE FUNCTION sqitch.checkit(doit INTEGER, message VARCHAR(256)) RETURNS INTEGER DETERMINISTIC
BEGIN
    IF doit IS NULL OR doit = 0 THEN
        SIGNAL SQLSTATE 'ERR0R' SET MESSAGE_TEXT = message;
    END IF;
    RETURN doit;
END"""


def refuse_missing_checkit(driver: Driver, migrations: Sequence[Migration], verify: bool) -> None:
    """On MySQL/MariaDB, a verify script that calls sqitch.checkit() needs that function in the database `sqitch`."""
    if not verify or driver.dialect != "mysql":
        return
    calling = next((m for m in migrations if m.verify_sql is not None and _CHECKIT.search(m.verify_sql)), None)
    if calling is None:
        return
    if driver.fetch("SELECT 1 FROM information_schema.routines WHERE routine_schema = 'sqitch' AND "
                    "routine_name = 'checkit'"):
        return
    raise ValidationFailed(
        f"{calling.verify_script} calls sqitch.checkit(), the function sqitch's MySQL registry defines, and this "
        "server has none (premigrate keeps no sqitch registry); create it as sqitch does (CREATE DATABASE IF NOT "
        f"EXISTS sqitch; then {' '.join(CHECKIT_SQL.split())}), or pass --no-verify; nothing was changed")
