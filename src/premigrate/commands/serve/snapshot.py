"""One look at the database and the folder: what a refresh found, and the health it derives."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from premigrate.config import Config
from premigrate.drivers.base import STATE_APPLIED, Driver, HistoryRow
from premigrate.errors import PremigrateError
from premigrate.commands.common import load_files, policy_for
from premigrate.engine.sessions import Sessions
from premigrate.model.planner import Plan, plan_for
from premigrate.model.migrations import MigrationSet
from premigrate.model.ordering import Ordering
from premigrate.model.versions import Version, is_version
from premigrate.eventlog import EventLog


CONNECT_TIMEOUT_S = 3.0
STATEMENT_TIMEOUT_MS = 5000  # server side: a health query never runs longer than this
# Client side: a whole refresh (connect, three reads, close) gets this long, then it is abandoned and cut.
REFRESH_DEADLINE_S = 10.0
DEFAULT_UNHEALTHY_AFTER_S = 300.0
HEALTHY, DEGRADED, UNHEALTHY = "healthy", "degraded", "unhealthy"
ENDPOINTS = ("/healthz", "/health/database", "/health/ready", "/metrics")


# -- one look at the database and the folder ------------------------------------------------------------------------

@dataclass(frozen=True)
class Snapshot:
    """What one refresh found. Everything the endpoints answer is derived from it."""

    taken_at: datetime
    connected: bool
    response_seconds: float
    db_error: str | None = None
    folder_error: str | None = None
    history: tuple[HistoryRow, ...] = ()
    tables: tuple[str, ...] = ()
    plan: Plan | None = None  # None when the folder or the database could not be read
    # Who holds the runner lock (a live run), as Sessions.lock_holder tells it; None when nobody does.
    run_in_progress: dict[str, Any] | None = None
    # The folder's order (a diesel folder's is its versions' text order); by version when the folder was not read.
    order: Ordering = field(default_factory=lambda: Ordering(MigrationSet()), compare=False, repr=False)

    # -- derived ------------------------------------------------------------------------------------------------

    @property
    def applied_rows(self) -> list[HistoryRow]:
        return sorted((r for r in self.history if r.state == STATE_APPLIED), key=self._listing)

    @property
    def applied(self) -> list[str]:
        return [r.migration_id for r in self.applied_rows]

    @property
    def latest(self) -> str | None:
        newest = max((r for r in self.applied_rows if r.version and is_version(r.version)), key=self.order.of_row,
                     default=None)
        return str(Version.parse(newest.version or "")) if newest is not None else None

    @property
    def last_applied_at(self) -> datetime | None:
        return max((r.applied_at for r in self.applied_rows), default=None)

    @property
    def failed(self) -> list[str]:
        # failed, in_progress, and any other state that is not "applied" (e.g. a `down` that stopped: rolling_back)
        rows = (r for r in self.history if r.state != STATE_APPLIED)
        return [r.migration_id for r in sorted(rows, key=self._listing)]

    @property
    def pending(self) -> list[str]:
        return [s.migration.id for s in self.plan.outstanding] if self.plan is not None else []

    @property
    def problems(self) -> list[str]:
        return [p.message for p in self.plan.problems] if self.plan is not None else []

    def table_exists(self, name: str, fold_case: bool) -> bool:
        if not self.connected:
            return False
        if not fold_case:  # PostgreSQL: unquoted names are folded to lower case; a quoted "Users" is another table
            return name in self.tables or name.lower() in self.tables
        return name.lower() in {t.lower() for t in self.tables}

    def _listing(self, row: HistoryRow) -> tuple[int, Version, str]:
        return self.order.listing(row.version or None, row.migration_id, row.script, row.migration_id)


def collect(config: Config, sessions: Sessions, log: EventLog,
            on_session: Callable[[Driver], None] | None = None) -> Snapshot:
    """One refresh: re-read the folder, open a read-only session (no waiting loop), read, close. Never raises.

    `on_session(driver)` is told the session as soon as it is open, so that a watchdog can cut it."""
    files: MigrationSet | None = None
    folder_error: str | None = None
    try:
        files = load_files(config, log)
    except PremigrateError as exc:
        folder_error = exc.message
    history: list[HistoryRow] = []
    owed: tuple[HistoryRow, ...] = ()
    tables: list[str] = []
    holder: dict[str, Any] | None = None
    db_error: str | None = None
    started = time.monotonic()
    try:
        driver = sessions.connect_once(read_only=True, connect_timeout=CONNECT_TIMEOUT_S)
        if on_session is not None:
            on_session(driver)
        try:
            driver.limit_statement_time(STATEMENT_TIMEOUT_MS / 1000)
            driver.prepare_session()
            history, holder = sessions.history_and_holder(driver, ask_first=True)
            owed = driver.owed_callbacks
            tables = driver.list_tables()
        finally:
            driver.close()
    except PremigrateError as exc:
        db_error = f"{exc.message} ({config.dsn.redacted()})"
    except Exception as exc:  # noqa: BLE001 - a bug or an unmapped driver error: report it, keep serving
        log.error("internal_error", error=f"{type(exc).__name__}: {exc}", exc_info=True)
        db_error = f"{type(exc).__name__}: {exc} ({config.dsn.redacted()})"
    elapsed = time.monotonic() - started
    connected = db_error is None
    plan = None
    if connected and files is not None:
        try:
            # The plan `check` and `up` make: an interrupted file is judged with its placeholders resolved.
            plan = replace(plan_for(files, history, policy_for(config)), owed=owed)
        except PremigrateError as exc:  # e.g. a statement that cannot be split while judging a resumable row
            folder_error = exc.message
    return Snapshot(
        taken_at=datetime.now(timezone.utc),
        connected=connected,
        response_seconds=elapsed,
        db_error=db_error,
        folder_error=folder_error,
        history=tuple(history) if connected else (),
        tables=tuple(tables) if connected else (),
        plan=plan,
        run_in_progress=holder if connected else None,
        order=Ordering(files) if files is not None else Ordering(MigrationSet()),
    )
