"""A run's afterMigrate, kept as a debt in the history until it has run (model/owed.py says why).

The debt is recorded before the run's first change (beforeMigrate, the first migration), not after the last: on
MySQL, and for a file run outside a transaction, a failing afterEachMigrate or a kill between two migrations leaves
migrations recorded, and a debt written only at the end would be missing then; the next `up` would find nothing to
do and never run afterMigrate. It is paid (the row deleted) once every afterMigrate script has succeeded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from premigrate.drivers.base import STATE_FAILED, Driver, HistoryRow
from premigrate.errors import CallbackFailed, ValidationFailed
from premigrate.model import owed as owed_rows

if TYPE_CHECKING:
    from premigrate.commands.common import CommandRun
    from premigrate.engine.executor import Executor

# What to do about a failed afterMigrate, said once in the run's error (not stored in the row, which holds what
# failed: status, check and plan quote it).
ADVICE = ("; afterMigrate is recorded as owed: fix the callback, then run `premigrate up` again, which runs it "
          "(`check` says 7 until then)")


class AfterMigrateDebt:
    """The afterMigrate of one `up` under the runner lock: recorded, run, paid."""

    def __init__(self, command: CommandRun, executor: Executor, driver: Driver, owed: tuple[HistoryRow, ...]) -> None:
        self.command, self.executor, self.driver, self.owed = command, executor, driver, owed
        callbacks = command.callbacks
        self.scripts = [c.name for c in callbacks.callbacks.for_event("afterMigrate")] if callbacks else []

    def refuse_unpayable(self) -> None:
        """A debt without an afterMigrate script to pay it: refused before anything changes. Dropping it would
        exit 0 without the callback's work (a run given the wrong --callbacks folder, or none)."""
        if self.owed and not self.scripts:
            config = self.command.config
            raise ValidationFailed(
                f"{owed_rows.describe(self.owed[0])}, and no afterMigrate script is in {config.named('dir')}"
                f"{' or ' + config.named('callbacks') if config.callbacks.dir is not None else ''}: give the "
                "callbacks that hold it (--callbacks DIR), or, if its work is done or no longer wanted, drop the debt "
                f"with `premigrate repair --forget {owed_rows.AFTER_MIGRATE}`")

    def record(self) -> None:
        """Before the run's first change: the run owes afterMigrate until it has run."""
        if not self.scripts:
            return
        row = owed_rows.owed_row(self.scripts, self.executor.applied_by)
        if self.owed:
            self.executor.update_row(row)
        else:
            self.executor.insert_row(row)

    def pay(self) -> None:
        """Run afterMigrate; the debt is deleted once it succeeded, and records the failure otherwise."""
        log = self.command.log
        for row in self.owed:
            log.warning("callback_owed", callback=row.description, error=owed_rows.describe(row))
        callbacks = self.command.callbacks
        if callbacks is None or not self.scripts:
            return
        try:
            callbacks.run(self.driver, "afterMigrate")
        except CallbackFailed as exc:
            row = owed_rows.owed_row(self.scripts, self.executor.applied_by)
            self.executor.record_quietly(row.evolve(state=STATE_FAILED, error=exc.message))
            raise CallbackFailed(exc.message + ADVICE, **exc.fields) from exc
        self.executor.delete_row(owed_rows.AFTER_MIGRATE)
