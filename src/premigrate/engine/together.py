"""A migration in one message (PostgreSQL): its statements, the runner-lock check, its history row and COMMIT go to
the server together: one round trip, where statement by statement takes one per statement and one more for the
record. On a server across a network that is most of what a short migration costs; on the same machine it is the
client's work per message (engine/executor.py runs everything else).

Used for a migration in a transaction of its own, on its first attempt, up to MAX_STATEMENTS statements and
MAX_CHARS characters, when nothing has to happen on the client between its statements: no callback scripts (they run
between the statements), no trace spans (one per statement), no history row to update (a failed migration run
again), no table-lock fence (its check is a query of its own), and a driver that can (drivers/base.SendsTogether). A
retry after a lock timeout or deadlock runs statement by statement, so that its blocker lookup names the blocked
statement.

What is the same as statement by statement: the server runs the statements in order, stops at the first that
fails and commits nothing then (PostgreSQL docs, protocol-flow.html, "Multiple Statements in a Simple Query");
statement_timeout and lock_timeout apply to each statement; the failed statement is named, with its line (the
driver finds it by the error's position or by the number of results before the error). What differs, and is said:
the history row's execution_ms is measured by the server, from the message's arrival to the history write; a
progress report while it runs names statements 1 to n (which of them runs is not known on the client); the
blocker watch looks once, halfway through the lock timeout from the message's start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from premigrate.drivers.base import SendsTogether
from premigrate.engine.lockwait import Timeouts
from premigrate.engine.tracing import NOOP
from premigrate.model.history import digests
from premigrate.model.planner import Step
from premigrate.model.sql import Statement

if TYPE_CHECKING:
    from premigrate.engine.executor import Executor

# A larger migration runs statement by statement: its round trips are a small part of its time, its progress
# reports can then name the running statement, and neither the client (the message and a result per statement,
# within the 256 MiB of the example manifests) nor the server (which parses the whole message before it runs any of
# it) holds a large file's text twice.
MAX_STATEMENTS, MAX_CHARS = 100, 1 << 20


class OneMessage:
    """The one-message way of one executor (see the module docstring)."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        driver = executor.driver
        self.driver = cast(SendsTogether, driver) if getattr(driver, "sends_together", False) else None

    def applies(self, step: Step, statements: Sequence[Statement]) -> bool:
        """Whether `step` (in a transaction of its own) can go in one message on its first attempt."""
        executor = self.executor
        if not (self.driver is not None and 0 < len(statements) <= MAX_STATEMENTS and step.row is None
                and executor.callbacks is None and executor.tracer is NOOP and self.driver.can_send_together()):
            return False
        size = 0
        for statement in statements:  # one pass: each Statement of a file is built anew on access
            if statement.rows is not None:  # COPY's rows go as its data, in a message of their own
                return False
            size += len(statement.text)
        return size <= MAX_CHARS

    def run_and_record(self, step: Step, statements: Sequence[Statement], started: float, rolled_back: str,
                       timeouts: Timeouts) -> None:
        """Inside the migration's open transaction (BEGIN held back): the statements, the checks before the history
        write, the write, and COMMIT, in one message."""
        driver = self.driver
        assert driver is not None  # applies() said so
        executor = self.executor
        migration = step.migration
        row = executor.row(migration, statements, execution_ms=0, statements_done=len(statements),
                           statement_started=len(statements), statement_hashes=digests(statements))

        def hold() -> None:
            for statement in statements:
                driver.hold_statement(statement.text)
            executor.own_write_in_transaction(migration)
            driver.insert_row_timed(row)

        executor.attempts.execute_together(migration, statements, started, hold, driver.commit_together,
                                           rolled_back=rolled_back, lock_timeout=timeouts.lock)
