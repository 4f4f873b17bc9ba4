"""`serve`'s /metrics figures of the last `up`, read from the one-line JSON summary that run wrote (--summary-file,
e.g. on a volume the migration container and the sidecar share). Read at scrape time; a missing or unreadable file
yields no gauge at all (an unknown is not a zero)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any


def read_summary(path: str | None) -> tuple[dict[str, Any], float] | None:
    """The summary written by `up` and the file's modification time, or None."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            summary = json.loads(handle.read())
        written = os.stat(path).st_mtime
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("command") != "up" or not _is_summary(summary):
        return None
    return summary, written


def _count(value: Any) -> bool:
    """A whole number >= 0 (a JSON true is a Python int: not one)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_summary(summary: dict[str, Any]) -> bool:
    """The figures up writes, of the types it writes them: a file that has them otherwise (a hand-edited or foreign
    file) is not up's summary, and exports nothing rather than a negative count or half of its gauges."""
    required = ("exit_code", "applied", "duration_ms")
    if not all(_count(summary.get(key)) for key in required) or summary["exit_code"] > 255:
        return False
    # The sizes are not checked here: one not measured is {"bytes": null, ...}, and its delta is just left out.
    return "rows_affected" not in summary or _count(summary["rows_affected"])


def _bytes(value: Any) -> int | None:
    figure = value.get("bytes") if isinstance(value, dict) else None
    return figure if _count(figure) else None


def gauges(path: str | None) -> Iterator[Any]:
    """GaugeMetricFamily values for the last run."""
    found = read_summary(path)
    if found is None:
        return
    from prometheus_client.core import GaugeMetricFamily

    summary, written = found
    yield GaugeMetricFamily("premigrate_last_run_timestamp_seconds",
                            "unix time the last up wrote its summary", value=written)
    # (summary key, metric, help, divisor): a division, so 207 ms is 0.207 s exactly as the summary's reader computes
    # it (207 * 0.001 is 0.20700000000000002).
    numbers = (("exit_code", "premigrate_last_run_exit_code", "exit code of the last up (0: success)", 1),
               ("applied", "premigrate_last_run_applied", "migrations the last up applied", 1),
               ("duration_ms", "premigrate_last_run_duration_seconds", "how long the last up took", 1000),
               ("rows_affected", "premigrate_last_run_rows_affected",
                "rows affected by the last up's statements, as the drivers reported them", 1))
    for key, name, help_text, divisor in numbers:
        if isinstance(summary.get(key), int):
            yield GaugeMetricFamily(name, help_text, value=summary[key] / divisor)
    if isinstance(summary.get("exit_code"), int):
        yield GaugeMetricFamily("premigrate_last_run_success", "1 when the last up exited 0, else 0",
                                value=1 if summary["exit_code"] == 0 else 0)
    before, after = _bytes(summary.get("database_size_before")), _bytes(summary.get("database_size_after"))
    if before is not None and after is not None:
        yield GaugeMetricFamily("premigrate_last_run_database_size_delta_bytes",
                                "database size after the last up minus before it, where both were measured",
                                value=after - before)
