"""A sqitch project as premigrate migrations: sqitch.conf, the dependency checks left to deploy time."""

from __future__ import annotations

from pathlib import Path

import pytest

from premigrate.errors import MigrationFileError
from premigrate.model.formats import sqitch, sqitch_project

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
