"""The shared state in front of the database: the cache, the refresh in flight and its deadline, the documents."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from premigrate.config import Config
from premigrate.drivers import driver_class
from premigrate.drivers.base import Driver
from premigrate.log import SecretScrubber
from premigrate.engine.sessions import Sessions
from premigrate.eventlog import EventLog
from premigrate.commands.serve.metrics import MetricsCollector
from premigrate.commands.serve.snapshot import (
    DEFAULT_UNHEALTHY_AFTER_S, DEGRADED, HEALTHY, REFRESH_DEADLINE_S, UNHEALTHY, Snapshot, collect,
)

_STOPPING = "serve is stopping: the database reading in progress was cut short"


# -- the shared state: cache, documents, metrics --------------------------------------------------------------------

@dataclass
class _Refresh:
    """One refresh in flight: its thread fills `result` and sets `done`; `driver` is its session once open."""

    started: float
    done: threading.Event = field(default_factory=threading.Event)
    result: Snapshot | None = None
    driver: Driver | None = None
    abandoned: bool = False


@dataclass
class HealthState:
    """The cache in front of the database. `refresh_count` counts refreshes (the tests read it)."""

    config: Config
    log: EventLog
    expect_tables: tuple[str, ...] = ()
    cache_seconds: float = 2.0
    clock: Any = time.monotonic
    refresh_deadline: float = REFRESH_DEADLINE_S
    unhealthy_after: float = DEFAULT_UNHEALTHY_AFTER_S  # 0: /healthz never looks at the refreshes
    refresh_count: int = 0
    _sessions: Sessions | None = field(default=None, repr=False)
    _snapshot: Snapshot | None = field(default=None, repr=False)
    _taken: float = field(default=0.0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _last_status: str | None = field(default=None, repr=False)
    _refresh: _Refresh | None = field(default=None, repr=False)
    _failing_since: float | None = field(default=None, repr=False)
    _failure: str = field(default="", repr=False)
    _stopping: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self._sessions = Sessions(self.config, self.log)
        self._scrubber = SecretScrubber(self.config.secrets)

    def snapshot(self) -> Snapshot:
        """The cached reading, or a fresh one. Requests during a refresh share it; none waits past its deadline."""
        with self._lock:
            if self._snapshot is not None and self.clock() - self._taken < self.cache_seconds:
                return self._snapshot
            if self._stopping:
                return self._store(self._stalled("serve is stopping: no new database reading is started", 0.0))
            refresh = self._refresh
            if refresh is None:
                refresh = self._refresh = _Refresh(started=time.monotonic())
                self.refresh_count += 1
                threading.Thread(target=self._run, args=(refresh,), name="premigrate-refresh", daemon=True).start()
            elif refresh.abandoned:
                # The refresh that overran has not ended yet: starting another would only add a stuck thread.
                stuck = time.monotonic() - refresh.started
                return self._store(self._stalled(f"the database has not answered for {stuck:.0f} s "
                                                 "(the refresh that overran has not ended yet)", stuck))
        refresh.done.wait(max(0.0, refresh.started + self.refresh_deadline - time.monotonic()))
        with self._lock:
            if refresh.result is not None:
                return refresh.result
            if not refresh.abandoned:
                self._abandon(refresh, f"the database did not answer within {self.refresh_deadline:g} s; the "
                                       "refresh was abandoned")
            assert self._snapshot is not None
            return self._snapshot

    def stop(self) -> None:
        """Serve is stopping: the refresh in flight is cut, so that the requests waiting for it answer now (503,
        saying why) instead of being dropped when the process exits; no refresh starts after this."""
        with self._lock:
            self._stopping = True
            refresh = self._refresh
            if refresh is None or refresh.result is not None:
                return
            if not refresh.abandoned:
                self._abandon(refresh, _STOPPING)
        refresh.done.set()  # wakes its waiters; the refresh's own late answer is dropped (it is abandoned)

    def _abandon(self, refresh: _Refresh, reason: str) -> None:
        """Give up on `refresh` (called with the lock held): cut its session, store `reason` as the reading."""
        refresh.abandoned = True
        if refresh.driver is not None:
            refresh.driver.abort()
        self._store(self._stalled(reason, time.monotonic() - refresh.started))

    def _run(self, refresh: _Refresh) -> None:
        snap: Snapshot | None = None
        try:
            assert self._sessions is not None
            snap = collect(self.config, self._sessions, self.log, on_session=lambda d: self._attach(refresh, d))
        finally:
            with self._lock:
                if self._refresh is refresh:
                    self._refresh = None
                if snap is not None and not refresh.abandoned:  # an abandoned refresh's late answer is dropped
                    refresh.result = snap
                    self._store(snap)
            refresh.done.set()

    def _attach(self, refresh: _Refresh, driver: Driver) -> None:
        """Remember the refresh's session; one opened after its refresh was abandoned is cut at once."""
        with self._lock:
            refresh.driver = driver
            if refresh.abandoned:
                driver.abort()

    def _stalled(self, reason: str, elapsed: float) -> Snapshot:
        return Snapshot(taken_at=datetime.now(timezone.utc), connected=False, response_seconds=elapsed,
                        db_error=f"{reason} ({self.config.dsn.redacted()})")

    def _store(self, snap: Snapshot) -> Snapshot:
        """Make `snap` the cached reading (called with the lock held)."""
        self._snapshot = snap
        self._taken = self.clock()
        if snap.connected:
            self._failing_since = None
        else:
            if self._failing_since is None:
                self._failing_since = self._taken
            self._failure = snap.db_error or ""
        self._note_status(snap)
        return snap

    def liveness(self) -> tuple[int, dict[str, Any]]:
        """/healthz: alive, unless database refreshes have been failing for longer than `unhealthy_after`."""
        with self._lock:
            since = self._failing_since
            failing = 0.0 if since is None else self.clock() - since
            failure = self._failure
        if since is None or not self.unhealthy_after or failing <= self.unhealthy_after:
            return 200, {"status": "ok"}
        return 503, self.scrub({"status": "unhealthy",
                                "reason": f"database refreshes have been failing for {failing:.0f} s "
                                          f"(--unhealthy-after {self.unhealthy_after:g} s): {failure}"})

    def _note_status(self, snap: Snapshot) -> None:
        status, reason = self.judge(snap)
        if status == self._last_status:
            return
        self._last_status = status
        fields = {"status": status, "reason": self.scrub(reason)}
        if status == HEALTHY:
            self.log.info("serve_health_changed", **fields)
        elif status == DEGRADED:
            self.log.warning("serve_health_changed", **fields)
        else:
            self.log.error("serve_health_changed", **fields)

    def scrub(self, value: Any) -> Any:
        return self._scrubber.scrub(value)

    # -- judgements -----------------------------------------------------------------------------------------------

    def missing_tables(self, snap: Snapshot) -> list[str]:
        fold_case = driver_class(self.config.dsn.dialect).table_names_fold_case
        return [t for t in self.expect_tables if not snap.table_exists(t, fold_case)]

    def warnings(self, snap: Snapshot) -> list[str]:
        notes = []
        pending = snap.pending
        if pending:
            notes.append(f"{len(pending)} migration{'s' if len(pending) > 1 else ''} pending: {', '.join(pending)}")
        if snap.plan is not None and snap.plan.owed:
            from premigrate.model.owed import describe

            notes.extend(describe(row) for row in snap.plan.owed)
        missing = self.missing_tables(snap) if snap.connected else []
        if missing:
            notes.append(f"expected table{'s' if len(missing) > 1 else ''} missing: {', '.join(missing)}")
        return notes

    def migration_error(self, snap: Snapshot) -> str | None:
        if snap.folder_error:
            return f"migrations folder: {snap.folder_error}"
        if self.run_in_progress(snap):
            return self.in_progress_reason(snap)
        problems = snap.problems
        if problems:
            more = len(problems) - 1
            return problems[0] + (f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")
        if snap.failed:
            # A resumable in_progress row is not a plan problem (up would resume it), but the schema is half-changed.
            return f"a migration run is in progress or was interrupted: {', '.join(snap.failed)}"
        return None

    @staticmethod
    def run_in_progress(snap: Snapshot) -> bool:
        """A live run holds the runner lock and has left unfinished rows or problems behind: what is unfinished is
        its work in progress, not the trace of a stopped run (no repair advice)."""
        return snap.run_in_progress is not None and bool(snap.failed or snap.problems)

    @staticmethod
    def in_progress_reason(snap: Snapshot) -> str:
        holder = ", ".join(f"{k} {v}" for k, v in (snap.run_in_progress or {}).items() if v not in (None, ""))
        running = f": {', '.join(snap.failed)}" if snap.failed else ""
        return (f"a migration run is in progress{running} (the runner lock is held"
                f"{': ' + holder if holder else ''}); wait for it to end")

    def judge(self, snap: Snapshot) -> tuple[str, str]:
        if not snap.connected:
            return UNHEALTHY, f"database unreachable: {snap.db_error}"
        error = self.migration_error(snap)
        if error:
            return UNHEALTHY, error
        warnings = self.warnings(snap)
        if warnings:
            return DEGRADED, "; ".join(warnings)
        return HEALTHY, "all migrations applied" + (", all expected tables exist" if self.expect_tables else "")

    # -- documents ------------------------------------------------------------------------------------------------

    def database_document(self) -> tuple[int, dict[str, Any]]:
        snap = self.snapshot()
        status, _ = self.judge(snap)
        database: dict[str, Any] = {"connected": snap.connected,
                                    "response_time_ms": round(snap.response_seconds * 1000)}
        if not snap.connected:
            database["error"] = snap.db_error
        migrations: dict[str, Any] = {
            "applied": snap.applied,
            "latest": snap.latest,
            "count": len(snap.applied),
            "pending": snap.pending,
            "failed": snap.failed,
        }
        warnings = self.warnings(snap)
        if warnings:
            migrations["warning"] = "; ".join(warnings)
        error = self.migration_error(snap)
        if error:
            migrations["error"] = error
        fold_case = driver_class(self.config.dsn.dialect).table_names_fold_case
        critical = [{"name": t, "exists": snap.table_exists(t, fold_case)} for t in self.expect_tables]
        document = {
            "status": status,
            "timestamp": _iso(snap.taken_at),
            "database": database,
            "migrations": migrations,
            "schema": {"critical_tables": critical,
                       "all_tables_exist": snap.connected and all(t["exists"] for t in critical)},
        }
        return (503 if status == UNHEALTHY else 200), self.scrub(document)

    def ready_document(self) -> tuple[int, dict[str, Any]]:
        """Ready exactly when `check` would exit 0: database reachable, folder readable, no problem, nothing pending."""
        snap = self.snapshot()
        reason: str | None = None
        if not snap.connected:
            reason = f"database unreachable: {snap.db_error}"
        elif snap.folder_error:
            reason = f"migrations folder: {snap.folder_error}"
        elif self.run_in_progress(snap):
            reason = self.in_progress_reason(snap)
        elif snap.problems:
            reason = self.migration_error(snap) or "migration problems"
        elif snap.pending:
            reason = f"{len(snap.pending)} migration{'s' if len(snap.pending) > 1 else ''} pending: " \
                     f"{', '.join(snap.pending)}"
        elif snap.plan is not None and snap.plan.owed:
            from premigrate.model.owed import describe

            reason = "; ".join(describe(row) for row in snap.plan.owed) + "; the next `up` runs it"
        if reason is None:
            return 200, {"status": "ready", "timestamp": _iso(snap.taken_at)}
        return 503, self.scrub({"status": "not_ready", "reason": reason, "timestamp": _iso(snap.taken_at)})

    def metrics_text(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(MetricsCollector(self))
        return generate_latest(registry)


def _iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
