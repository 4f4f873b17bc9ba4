"""migration_progress: reported while one statement runs long, never for one that finishes at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from premigrate.engine.progress import ProgressReport
from premigrate.model.migrations import load_migrations

LIVENESS_S = 30.0


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.seen = threading.Event()

    def info(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))
        if len(self.events) >= 2:
            self.seen.set()


def migration(tmp_path: Path) -> Any:
    (tmp_path / "001_slow.sql").write_text("UPDATE big SET x = 1;\n")
    return load_migrations(tmp_path).versioned[0]


class TestProgressReport:
    def test_long_statement_is_reported_until_it_ends(self, tmp_path: Path) -> None:
        """A statement still running after first_after_s is reported, then every interval_s, with its position."""
        log = Recorder()
        report = ProgressReport(log, interval_s=0.01, first_after_s=0.01)
        report.position = (2, 3)
        m = migration(tmp_path)
        with report.running(m, 1, 1, _statement()):
            assert log.seen.wait(LIVENESS_S)
        count = len(log.events)
        event, fields = log.events[0]
        assert ("migration_progress", 2, 3, 1, "UPDATE big SET x = 1;") == (
            event, fields["migration"], fields["migrations"], fields["statement"], fields["sql"])
        threading.Event().wait(0.1)
        assert count == len(log.events)  # nothing after the statement ended

    def test_quick_statement_is_not_reported(self, tmp_path: Path) -> None:
        """A statement that ends before first_after_s leaves no event."""
        log = Recorder()
        report = ProgressReport(log, interval_s=3600, first_after_s=3600)
        m = migration(tmp_path)
        for _ in range(100):
            with report.running(m, 1, 1, _statement()):
                pass
        assert [] == log.events


def _statement() -> Any:
    from premigrate.model.sql import Statement

    return Statement("UPDATE big SET x = 1;", 1)
