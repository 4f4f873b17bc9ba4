"""CommandRun.plan (commands/common.py): `up` plans before the runner lock and again under it; the second plan is
the first one when nothing it was planned from changed, and a new one when anything did. No database."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from premigrate.commands import common
from premigrate.commands.common import CommandRun
from premigrate.config import load_config
from premigrate.drivers.base import HistoryRow
from premigrate.log import get_logger
from premigrate.model.migrations import MigrationSet, load_migrations

FILES = {"001_a.sql": "CREATE TABLE a (id int);", "002_b.sql": "CREATE TABLE b (id int);"}


@pytest.fixture
def run(tmp_path: Path) -> CommandRun:
    config = load_config("up", {"dir": str(tmp_path)}, {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    return CommandRun(config, get_logger())


def folder(tmp_path: Path) -> MigrationSet:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    return load_migrations(tmp_path)


def applied(files: MigrationSet, migration_id: str) -> HistoryRow:
    from datetime import datetime, timezone

    m = next(m for m in files.all if m.id == migration_id)
    return HistoryRow(m.id, str(m.version), m.description, m.kind, m.script, m.checksum,
                      datetime(2026, 1, 1, tzinfo=timezone.utc), 5, "host", "applied")


def test_the_same_inputs_plan_once(run: CommandRun, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = folder(tmp_path)
    calls: list[int] = []
    real = common.plan_for
    monkeypatch.setattr(common, "plan_for", lambda *a: calls.append(1) or real(*a))
    first = run.plan(files, [applied(files, "1")])
    again = run.plan(files, [applied(files, "1")])  # equal rows, read anew
    assert (1, True) == (len(calls), again is first)
    assert ["2"] == [s.migration.id for s in again.steps]


@pytest.mark.parametrize("change", ["history", "row", "owed", "files"])
def test_anything_changed_plans_again(run: CommandRun, tmp_path: Path, change: str) -> None:
    files = folder(tmp_path)
    history = [applied(files, "1")]
    first = run.plan(files, history)
    if change == "history":  # another runner applied 2 meanwhile
        again = run.plan(files, history + [applied(files, "2")])
        assert [] == again.steps
    elif change == "row":  # the same version, now failed
        again = run.plan(files, [replace(history[0], state="failed")])
        assert again is not first
    elif change == "owed":
        again = run.plan(files, history, (history[0],))
        assert (history[0],) == again.owed
    else:  # an equal folder, read again, is not taken for the same one
        again = run.plan(load_migrations(tmp_path), history)
        assert again is not first
    assert again is not first
