"""A sqitch project as premigrate migrations: sqitch.conf, the dependency checks left to deploy time."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from premigrate.drivers.base import STATE_APPLIED, HistoryRow
from premigrate.errors import MigrationFileError
from premigrate.model.formats import sqitch, sqitch_project
from premigrate.model.migrations import Migration, MigrationSet, checksum
from premigrate.model.planner import Policy, plan_for

pytestmark = pytest.mark.unit

WHO = "2024-01-10T10:00:00Z Ada <ada@example.com>"


def plan(*lines: str) -> sqitch.Plan:
    return sqitch.parse_plan("%project=p\n\n" + "\n".join(lines) + "\n")


class TestDependencies:
    def test_conflict_with_an_earlier_change_is_refused_with_its_line(self) -> None:
        with pytest.raises(MigrationFileError, match=r'line 5: change "b" conflicts with "a", deployed before it '
                                                     r"\(line 3\)"):
            sqitch_project.check_dependencies(plan(f"a {WHO}", "", f"b [!a] {WHO}"))

    def test_conflict_with_a_later_or_unknown_change_is_fine(self) -> None:
        sqitch_project.check_dependencies(plan(f"a [!b !gone] {WHO}", f"b {WHO}"))

    @pytest.mark.parametrize("dep", ["other:x", "!other:x"])
    def test_other_project_refused(self, dep: str) -> None:
        with pytest.raises(MigrationFileError, match=r'line 4: change "b" .* "other:x" of project other'):
            sqitch_project.check_dependencies(plan(f"a {WHO}", f"b [{dep}] {WHO}"))

    def test_own_project_prefix_is_fine(self) -> None:
        sqitch_project.check_dependencies(plan(f"a {WHO}", f"b [p:a] {WHO}"))

    def test_missing_requirement_and_cycle_are_the_plans_errors(self) -> None:
        with pytest.raises(MigrationFileError, match='line 3: Unknown change "nope" required by change "a"'):
            plan(f"a [nope] {WHO}")
        with pytest.raises(MigrationFileError, match='line 3: Change "a" planned 1 change before required change "b"'):
            plan(f"a [b] {WHO}", f"b [a] {WHO}")


class TestConf:
    def write(self, tmp_path: Path, text: str) -> Path:
        (tmp_path / "sqitch.conf").write_text(text)
        return tmp_path

    def test_default_layout_and_commented_settings_accepted(self, tmp_path: Path) -> None:
        root = self.write(tmp_path, '[core]\n\tengine = pg\n\t# top_dir = x\n\ttop_dir = .\n\tdeploy_dir = deploy/\n'
                                    '[core "pg"]\n\ttarget = t\n[deploy]\n\tverify = true\n')
        sqitch_project.read_conf(root, "postgresql")

    @pytest.mark.parametrize("section", ["core", 'engine "pg"', 'target "t"'])
    def test_moved_files_refused(self, tmp_path: Path, section: str) -> None:
        root = self.write(tmp_path, f"[{section}]\n  deploy_dir = db/deploy\n")
        with pytest.raises(MigrationFileError, match="sqitch.conf: line 2: deploy_dir = db/deploy: premigrate reads"):
            sqitch_project.read_conf(root, None)

    def test_engine_of_another_database_refused(self, tmp_path: Path) -> None:
        root = self.write(tmp_path, "[core]\nengine = sqlite\n")
        with pytest.raises(MigrationFileError, match="written for sqlite, the database is mysql"):
            sqitch_project.read_conf(root, "mysql")
        sqitch_project.read_conf(root, "sqlite")

    def test_unsupported_engine_refused(self, tmp_path: Path) -> None:
        root = self.write(tmp_path, "[core]\nengine = oracle\n")
        with pytest.raises(MigrationFileError, match="engine = oracle: premigrate runs sqitch projects for pg"):
            sqitch_project.read_conf(root, None)


REWORKED = f"""%project=p

users {WHO}
@v1.0 {WHO}

users [users@v1.0] {WHO} # later copy
"""


def folder(root: Path, plan_text: str, scripts: dict[str, str]) -> Path:
    (root / "sqitch.plan").write_text(plan_text)
    for name, text in scripts.items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(text)
    return root


class TestMigrations:
    def test_one_listed_migration_per_change_keyed_by_change_id(self, tmp_path: Path) -> None:
        root = folder(tmp_path, REWORKED, {"deploy/users@v1.0.sql": "CREATE TABLE users (id INT);\n",
                                           "revert/users@v1.0.sql": "DROP TABLE users;\n",
                                           "deploy/users.sql": "ALTER TABLE users ADD COLUMN e INT;\n",
                                           "verify/users.sql": "SELECT e FROM users;\n"})
        first, second = sqitch_project.migrations(root, None)
        changes = sqitch.load_project(root).changes
        assert (first.kind, first.key, first.position, first.version) == ("listed", changes[0].id, 1, None)
        assert (first.description, first.script, first.down_script, first.verify_script) == \
            ("users@v1.0", "deploy/users@v1.0.sql", "revert/users@v1.0.sql", None)
        assert (second.description, second.script, second.down_sql, second.verify_script) == \
            ("users", "deploy/users.sql", None, "verify/users.sql")
        assert second.key == changes[1].id != first.key
        assert first.checksum == checksum("CREATE TABLE users (id INT);\n")

    def test_edited_plan_line_of_a_deployed_change(self, tmp_path: Path) -> None:
        root = folder(tmp_path, f"%project=p\n\na {WHO} # one\nb {WHO}\n", {"deploy/a.sql": "SELECT 1;\n",
                                                                          "deploy/b.sql": "SELECT 2;\n"})
        deployed = sqitch_project.migrations(root, None)
        rows = [row(m) for m in deployed]
        assert [] == sqitch_project.edited_plan_lines(deployed, rows)
        (root / "sqitch.plan").write_text(f"%project=p\n\na {WHO} # one, reworded\nb {WHO}\n")
        edited = sqitch_project.migrations(root, None)
        # The note is part of a's id, and a's id is b's parent: both lines now give new ids.
        assert [(m.description, r.migration_id) for m, r in sqitch_project.edited_plan_lines(edited, rows)] == \
            [("a", deployed[0].id), ("b", deployed[1].id)]
        plan = plan_for(MigrationSet(listed=edited), rows, Policy("sqlite"))
        assert ["drift", "drift"] == [p.kind for p in plan.problems]
        assert "the plan line of change 'a' was edited after it was deployed" in plan.problems[0].message


def row(m: Migration) -> HistoryRow:
    return HistoryRow(m.id, None, m.description, "listed", m.script, m.checksum, datetime.now(timezone.utc), 1, "t",
                      STATE_APPLIED)
