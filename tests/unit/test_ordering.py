"""diesel's order (model/ordering.py): a diesel folder runs in the text order of its versions, and every command that
orders, compares or cuts by version follows it.

The folder is vaultwarden's case (dani-garcia/vaultwarden migrations/sqlite): `2024-03-13_170000_x` has the
version "20240313", which diesel (MigrationVersion: a string) puts after "20240306170000" and before
"20240605131359", where the number 20240313 would come first. Every other format keeps its numeric order
(tests/unit/test_planner.py).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from premigrate.commands.baseline import up_to
from premigrate.commands.down import _targets
from premigrate.commands.new import create
from premigrate.commands.repair.survey import survey
from premigrate.commands.serve.snapshot import Snapshot
from premigrate.drivers.base import HistoryRow
from premigrate.errors import UsageError
from premigrate.model.migrations import MigrationSet, load_migrations
from premigrate.model.ordering import Ordering
from premigrate.model.planner import Policy, make_plan
from premigrate.model.versions import Version

WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)
A, B, C = "20240306170000", "20240313", "20240605131359"


@pytest.fixture
def files(tmp_path: Path) -> MigrationSet:
    for name in ("2024-03-06-170000_add_sso_users", "2024-03-13_170000_sso_userscascade",
                 "2024-06-05-131359_add_2fa_duo_store"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "up.sql").write_text(f"SELECT '{name}';\n")
        (tmp_path / name / "down.sql").write_text("SELECT 0;\n")
    return load_migrations(tmp_path, format="diesel")


def applied(files: MigrationSet, migration_id: str, **changes: object) -> HistoryRow:
    m = next(m for m in files.versioned if m.id == migration_id)
    return HistoryRow(m.id, str(m.version), m.description, m.kind, m.script, m.checksum, WHEN, 5, "host",
                      "applied").evolve(**changes)


class TestPlan:
    def test_pending_in_diesels_order(self, files: MigrationSet) -> None:
        assert [A, B, C] == [m.id for m in files.versioned]
        assert [A, B, C] == [s.migration.id for s in make_plan(files, [], Policy("sqlite")).steps]

    def test_newest_applied_by_text(self, files: MigrationSet) -> None:
        """A applied: B and C are pending in order (the number 20240313 is older than A, the text is not); A and C
        applied: B is out of order, as diesel would run it late."""
        plan = make_plan(files, [applied(files, A)], Policy("sqlite"))
        assert ([B, C], []) == ([s.migration.id for s in plan.steps], plan.problems)
        plan = make_plan(files, [applied(files, A), applied(files, C)], Policy("sqlite"))
        assert ["out_of_order"] == [p.kind for p in plan.problems]
        assert f"older than the newest applied version {C}" in plan.problems[0].message

    def test_to_cuts_in_diesels_order(self, files: MigrationSet) -> None:
        plan = make_plan(files, [], Policy("sqlite", target=Version.parse(B)))
        assert [A, B] == [s.migration.id for s in plan.steps]

    def test_status_lists_in_diesels_order(self, files: MigrationSet) -> None:
        plan = make_plan(files, [applied(files, A), applied(files, B)], Policy("sqlite"))
        assert [A, B, C] == [e.migration_id for e in plan.entries]


class TestCommands:
    def test_down_steps_reverts_the_newest_by_text(self, files: MigrationSet) -> None:
        """diesel's revert_last_migration reverts the greatest version string: C, then B (not A)."""
        history = [applied(files, v) for v in (A, B, C)]
        assert [C, B] == [r.migration_id for r in _targets(None, files, history, 2, None)]  # type: ignore[arg-type]
        assert [C] == [r.migration_id for r in _targets(None, files, history, None, Version.parse(B))]  # type: ignore[arg-type]
        assert [C, B, A] == [r.migration_id for r in _targets(None, files, history, None, Version(()))]  # type: ignore[arg-type]

    def test_baseline_version_takes_what_comes_before_in_diesels_order(self, files: MigrationSet) -> None:
        assert [A, B] == [m.id for m in up_to(files, Version.parse(B))]

    def test_serve_latest_and_listing(self, files: MigrationSet) -> None:
        snapshot = Snapshot(WHEN, True, 0.0, history=(applied(files, B), applied(files, A)), order=Ordering(files))
        assert (B, [A, B]) == (snapshot.latest, snapshot.applied)

    def test_repair_lists_in_diesels_order(self, files: MigrationSet) -> None:
        history = [applied(files, v, checksum="sha256:old") for v in (C, B, A)]
        assert [A, B, C] == [c.row.migration_id for c in survey(files, history, "sqlite").checksum_changes]

    def test_new_refuses_a_folder_that_would_not_run_last(self, tmp_path: Path) -> None:
        """`9_x` sorts after every timestamp as text: a new folder would run before it."""
        (tmp_path / "9_x").mkdir()
        (tmp_path / "9_x" / "up.sql").write_text("SELECT 1;\n")
        with pytest.raises(UsageError, match="9_x/ sorts after 2026"):
            create(tmp_path, load_migrations(tmp_path, format="diesel"), "next", "diesel", WHEN)


class TestDbmate:
    """amacneil/dbmate pkg/dbmate/db.go FindMigrations sorts by file name; Rollback reverts the last applied one in
    that order. A dbmate folder is ordered by its names the way a diesel folder is by its version strings."""

    @pytest.fixture
    def files(self, tmp_path: Path) -> MigrationSet:
        for name in ("9_insert.sql", "10_create.sql", "1_b.sql"):
            (tmp_path / name).write_text("-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 2;\n")
        return load_migrations(tmp_path, format="dbmate")

    def test_down_reverts_the_last_by_name(self, files: MigrationSet) -> None:
        history = [applied(files, v) for v in ("1", "9", "10")]
        assert ["9", "1", "10"] == [r.migration_id for r in _targets(None, files, history, 3, None)]  # type: ignore[arg-type]

    def test_row_whose_file_is_gone_sorts_by_its_name(self, files: MigrationSet) -> None:
        """A row of a deleted `2_gone.sql` ('2' after '1_b.sql', before '9_insert.sql'), not by its version."""
        gone = applied(files, "9").evolve(migration_id="2", version="2", script="2_gone.sql")
        order = Ordering(files)
        assert order.of_row(applied(files, "1")) < order.of_row(gone) < order.of_row(applied(files, "9"))
        assert order.of_row(applied(files, "10")) < order.of_row(applied(files, "1"))
