"""The Prometheus gauges, computed from the cached snapshot at scrape time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from premigrate.commands.serve.health import HealthState


class MetricsCollector:
    """Gauges computed from the cached snapshot at scrape time. Migration gauges are left out while the database
    cannot be read (an unknown is not a zero); premigrate_database_up says why."""

    def __init__(self, state: HealthState) -> None:
        self.state = state

    def describe(self) -> Iterator[Any]:
        return iter(())  # no database access at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        snap = self.state.snapshot()
        yield GaugeMetricFamily("premigrate_database_up",
                                "1 when the database answered the last health query, else 0",
                                value=1 if snap.connected else 0)
        yield GaugeMetricFamily("premigrate_database_response_seconds",
                                "seconds the last health query took (connect, read history, list tables)",
                                value=snap.response_seconds)
        from premigrate.commands.last_run import gauges  # the last up's figures, from its summary file

        yield from gauges(self.state.config.serve.summary_file)
        if not snap.connected:
            return
        yield GaugeMetricFamily("premigrate_migrations_applied", "migrations recorded as applied",
                                value=len(snap.applied))
        if snap.plan is not None:
            yield GaugeMetricFamily("premigrate_migrations_pending",
                                    "migrations in the folder that `up` would apply now", value=len(snap.pending))
            # Drift, an out-of-order file, an unfinished or unknown row: what makes `up` and `check` refuse. Without
            # it a /metrics-only alert saw an edited applied file as healthy (pending 0, failed 0).
            yield GaugeMetricFamily("premigrate_problems",
                                    "problems that make `up` and `check` refuse (drift, out of order, unfinished or "
                                    "unknown rows)", value=len(snap.plan.problems))
            # An afterMigrate a run did not finish (model/owed.py): `check` says 7 and /health/ready 503 until `up`
            # has run it.
            yield GaugeMetricFamily("premigrate_callbacks_owed",
                                    "afterMigrate callbacks a run did not finish, which the next `up` runs",
                                    value=len(snap.plan.owed))
        yield GaugeMetricFamily("premigrate_migrations_failed",
                                "history rows not applied: failed, in_progress (or a stopped down: rolling_back)",
                                value=len(snap.failed))
        last = snap.last_applied_at
        yield GaugeMetricFamily("premigrate_last_applied_timestamp_seconds",
                                "unix time of the newest applied migration, 0 when none",
                                value=last.timestamp() if last else 0)
