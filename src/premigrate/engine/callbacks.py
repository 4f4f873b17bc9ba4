"""Running callback scripts (model/callbacks.py finds them): read, placeholders filled in, split, executed.

Every script is prepared before anything changes (`CallbackRunner.prepare`): an unreadable file or an unknown
placeholder fails the run there, exit 2, with the database untouched. Placeholders are always on in callbacks, as in
Flyway. Callbacks are never recorded in the history table.

Where each event runs is the caller's choice (commands/up.py, commands/down.py, engine/executor.py); `run` either
executes inside the caller's open transaction (beforeEachMigrate / afterEachMigrate in a migration's transaction),
or wraps each script in a transaction of its own where DDL is transactional, so a failing script leaves nothing
half-done there. A failing script raises CallbackFailed (exit 4) naming the script, its statement and line.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

from premigrate.drivers.base import Driver, SqlError, execute_statement
from premigrate.errors import CallbackFailed, MigrationFileError, PremigrateError, UsageError
from premigrate.eventlog import EventLog
from premigrate.log import learn_credentials
from premigrate.model.callbacks import Callback, Callbacks
from premigrate.model.sql import SplitError, Statement, split_statements


@dataclass(frozen=True)
class Prepared:
    """A callback file with its statements split."""
    callback: Callback
    statements: tuple[Statement, ...]


class CallbackRunner:
    def __init__(self, callbacks: Callbacks, dialect: str, placeholder_values: Mapping[str, str], log: EventLog,
                 *, transactional_ddl: bool) -> None:
        self.callbacks = callbacks
        self.dialect = dialect
        self.values = placeholder_values
        self.log = log
        self.transactional_ddl = transactional_ddl
        self._prepared: dict[str, tuple[Prepared, ...]] | None = None

    def has(self, *events: str) -> bool:
        return any(self.callbacks.for_event(event) for event in events)

    def prepare(self) -> dict[str, tuple[Prepared, ...]]:
        """Every script read, resolved and split: bad input fails here, before any change."""
        if self._prepared is None:
            from premigrate.model.placeholders import substitute

            prepared: dict[str, tuple[Prepared, ...]] = {}
            for event, group in self.callbacks.by_event.items():
                items = []
                for callback in group:
                    try:
                        text = callback.path.read_text(encoding="utf-8-sig")
                    except (OSError, UnicodeDecodeError) as exc:
                        raise UsageError(f"callback {callback.path}: cannot read it ({exc})") from None
                    sql = substitute(text, self.values, script=callback.name)
                    try:
                        statements = split_statements(sql, self.dialect)
                    except SplitError as exc:
                        raise MigrationFileError(f"callback {callback.name}: line {exc.line}: {exc}",
                                                 file=callback.name) from None
                    if not self.transactional_ddl:
                        _refuse_unended_transaction(callback, statements)
                    items.append(Prepared(callback, tuple(statements)))
                prepared[event] = tuple(items)
            self._prepared = prepared
        return self._prepared

    def run(self, driver: Driver, event: str, *, in_transaction: bool = False,
            migration_id: str | None = None) -> None:
        """Every script of `event`, in Flyway's order. Raises CallbackFailed on the first failing statement."""
        for item in self.prepare().get(event, ()):
            self._run_one(driver, event, item, in_transaction, migration_id)

    def run_after_error(self, driver: Driver, event: str, migration_id: str | None = None) -> None:
        """An *Error event, run while another failure is on its way out: its own failure is logged, not raised,
        so the run still reports the failure that caused it."""
        try:
            self.run(driver, event, migration_id=migration_id)
        except PremigrateError as exc:
            self.log.error("callback_failed_after_error", callback=event, error=exc.message,
                           note="the run's own failure is reported below")

    def _run_one(self, driver: Driver, event: str, item: Prepared, in_transaction: bool,
                 migration_id: str | None) -> None:
        callback = item.callback
        fields: dict[str, object] = {"callback": event, "script": callback.name}
        if migration_id is not None:
            fields["migration_id"] = migration_id
        self.log.info("callback_started", **fields, statements=len(item.statements))
        started = time.monotonic()
        own_transaction = not in_transaction and self.transactional_ddl
        index = 0
        try:
            with driver.transaction() if own_transaction else nullcontext():
                for statement in item.statements:
                    index += 1
                    execute_statement(driver, statement)
        except SqlError as exc:
            if index:
                learn_credentials(item.statements[index - 1].text)  # before the error is logged (log.py)
            line = item.statements[index - 1].line if index else None
            message = (f"callback {callback.name} ({event}) failed at statement {index} of {len(item.statements)} "
                       f"(line {line}): {exc.message}")
            self.log.error("callback_failed", **fields, statement=index, line=line, error=exc.message)
            raise CallbackFailed(message, script=callback.name, callback=event) from exc
        self.log.info("callback_finished", **fields, duration_ms=round((time.monotonic() - started) * 1000))


def _refuse_unended_transaction(callback: Callback, statements: Sequence[Statement]) -> None:
    """Where a callback runs statement by statement on the migration session (MySQL), a transaction it opens and
    never ends would be rolled back when the session closes, after the run reported the callback done."""
    from premigrate.model import transactions

    try:
        transactions.blocks(statements)
    except transactions.TransactionSyntaxError as exc:
        raise MigrationFileError(f"callback {callback.name}: line {exc.line}: {exc}; end each transaction it opens "
                                 "(COMMIT or ROLLBACK) in the script", file=callback.name) from None


def runner_for(callbacks: Callbacks | None, dialect: str, placeholder_values: Mapping[str, str], log: EventLog,
               *, transactional_ddl: bool) -> CallbackRunner | None:
    if not callbacks:
        return None
    return CallbackRunner(callbacks, dialect, placeholder_values, log, transactional_ddl=transactional_ddl)
