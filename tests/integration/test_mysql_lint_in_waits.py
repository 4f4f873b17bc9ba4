"""`up --lint=warn` on MySQL lints in the run's waits for the database (commands/lint/ahead.py, LintInWaits): on the
run's own thread, no lint thread, and each file's findings still logged before that file starts."""

from __future__ import annotations

import inspect
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from premigrate.cli import main
from premigrate.commands import lint
from tests.support import TestDatabase


def test_lint_runs_in_the_waits_of_the_runs_own_thread(mariadb: TestDatabase, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "001_t.sql").write_text("CREATE TABLE t (id INT, c INT);\nCREATE TABLE t1 (id INT);\n")
    (folder / "002_drop.sql").write_text("ALTER TABLE t DROP COLUMN c;\n")
    (folder / "003_u.sql").write_text("CREATE TABLE u (id INT);\nCREATE TABLE u1 (id INT);\n")
    real = lint.lint_migrations
    calls: list[tuple[str, str, bool]] = []  # (script, thread, in a wait for the database)

    def recording(files: Any, *args: Any, **kwargs: Any) -> Any:
        in_wait = any(frame.function == "run_work" for frame in inspect.stack())
        calls.extend((m.script, threading.current_thread().name, in_wait) for m in files)
        return real(files, *args, **kwargs)

    monkeypatch.setattr(lint, "lint_migrations", recording)
    code = main(["up", "--dir", str(folder), "--log-format", "json", "--lint", "warn"], {"DATABASE_URL": mariadb.url})
    events = [json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{")]
    assert 0 == code
    assert ["001_t.sql", "002_drop.sql", "003_u.sql"] == [script for script, _, _ in calls]
    assert {threading.current_thread().name} == {thread for _, thread, _ in calls}
    assert [False, True, True] == [in_wait for _, _, in_wait in calls]  # the first before anything was sent
    names = [(e["event"], e.get("script")) for e in events]
    finding = names.index(("lint_finding", "002_drop.sql"))
    assert finding < names.index(("migration_started", "002_drop.sql"))
    assert {"t", "t1", "u", "u1"} <= set(mariadb.tables())
