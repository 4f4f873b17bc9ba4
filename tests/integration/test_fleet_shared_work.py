"""What a fleet does once, not once per target: split each file, lint the pending files, and (not at all) measure
the database size, which no fleet target reports and which, on PostgreSQL, walks every file of a schema fleet's
shared database (a second and more per target at 1,000 schemas).

In this process, on SQLite files, with the functions that do the work wrapped to count their calls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from premigrate.cli import main

FILES = 3


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "migrations"
    path.mkdir()
    for i in range(1, FILES + 1):
        (path / f"{i:03d}_t{i}.sql").write_text(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY);\n"
                                                f"CREATE INDEX t{i}_id ON t{i} (id);\n")
    return path


def _count(monkeypatch: pytest.MonkeyPatch, calls: dict[str, int], name: str, module: Any, attribute: str) -> None:
    original = getattr(module, attribute)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[name] = calls.get(name, 0) + 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, attribute, counted)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    from premigrate.commands import lint, up
    from premigrate.model import modes

    counted: dict[str, int] = {}
    _count(monkeypatch, counted, "measure_size", up, "measure_size")
    _count(monkeypatch, counted, "split", modes, "split_migration")
    _count(monkeypatch, counted, "split", lint, "split_migration")
    _count(monkeypatch, counted, "lint", lint, "lint_migrations")
    return counted


def _up(args: list[str], env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> int:
    code = main(["up", "--log-format", "json", "--lint", "warn", *args], env)
    capsys.readouterr()
    return code


def test_a_fleet_splits_and_lints_once_and_measures_no_size(folder: Path, tmp_path: Path, calls: dict[str, int],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    targets = tmp_path / "targets.txt"
    files = [tmp_path / f"tenant{i}.db" for i in range(5)]
    targets.write_text("".join(f"sqlite:///{f}\n" for f in files))
    code = _up(["--dir", str(folder), "--targets", str(targets), "--concurrency", "2"], {}, capsys)
    assert 0 == code
    import sqlite3

    for f in files:  # every target migrated
        with sqlite3.connect(f) as conn:
            assert FILES == conn.execute("SELECT count(*) FROM premigrate_history").fetchone()[0]
    assert {"split": FILES, "lint": 1} == {k: calls.get(k, 0) for k in ("split", "lint")}
    assert 0 == calls.get("measure_size", 0)


def test_one_target_splits_each_file_once_and_measures_the_size(folder: Path, tmp_path: Path, calls: dict[str, int],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Lint reads the run's split of each file instead of splitting it again (one file at a time, on its own
    thread: commands/lint/ahead.py); the summary has both sizes."""
    code = main(["up", "--log-format", "json", "--lint", "warn", "--dir", str(folder)],
                {"DATABASE_URL": f"sqlite:///{tmp_path / 'one.db'}"})
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert 0 == code
    assert {"split": FILES, "lint": FILES, "measure_size": 2} == calls
    assert summary["database_size_before"]["bytes"] > 0 and summary["database_size_after"]["bytes"] > 0
