"""Matching another tool's history rows to the folder (commands/foreign_history.py), without a database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from premigrate.commands.foreign_history import match_foreign
from premigrate.model.migrations import load_migrations


def write(directory: Path, name: str, content: str = "SELECT 1;\n") -> None:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")


def rows(*versions: str) -> Any:
    def fetch(sql: str) -> list[tuple[Any, ...]]:
        assert sql.startswith("SELECT version FROM")
        return [(v,) for v in versions]
    return fetch


class TestDiesel:
    TABLES = ["__diesel_schema_migrations"]

    def test_suffixed_versions_match_their_folders(self, tmp_path: Path) -> None:
        """diesel 2.2 records `2026-05-27-120000-0000_x` as the string 202605271200000000 (version_from_string);
        it is that folder's row, not a migration missing from the folder (premigrate numbers it 20260527120000.1)."""
        write(tmp_path, "00000000000000_diesel_initial_setup/up.sql")
        write(tmp_path, "2026-05-26-120000-0000_a/up.sql")
        write(tmp_path, "2026-05-27-120000_b/up.sql")
        write(tmp_path, "2026-05-27-120000-0000_c/up.sql")
        write(tmp_path, "2026-05-27-130000-0000_d/up.sql")
        files = load_migrations(tmp_path, format="diesel")
        result = match_foreign("diesel", rows("00000000000000", "202605261200000000", "20260527120000",
                                              "202605271200000000"), self.TABLES, files)
        assert ["initial_setup", "a", "b", "c"] == [m.description.removeprefix("diesel_") for m in result.matched]
        assert [] == result.not_in_folder
        assert ["20260527130000.1"] == result.pending(files)

    def test_a_row_matches_only_its_exact_string(self, tmp_path: Path) -> None:
        """diesel keys applied migrations on the string: `0` or `2026052712000000000` is no folder's row, even
        where the number would be the same."""
        write(tmp_path, "00000000000000_diesel_initial_setup/up.sql")
        write(tmp_path, "2026-05-27-120000-0000_c/up.sql")
        files = load_migrations(tmp_path, format="diesel")
        result = match_foreign("diesel", rows("0", "2026052712000000000", "20260527120001"), self.TABLES, files)
        assert [] == result.matched
        assert ["0", "2026052712000000000", "20260527120001"] == result.not_in_folder

    def test_plain_files_keep_the_number_match(self, tmp_path: Path) -> None:
        """A diesel history adopted by a folder of `<version>_<name>.sql` files is matched by the leading number."""
        write(tmp_path, "20240101000001_a.sql")
        write(tmp_path, "20240101000002_b.sql")
        files = load_migrations(tmp_path)
        result = match_foreign("diesel", rows("20240101000001", "20240101000009"), self.TABLES, files)
        assert ["20240101000001"] == [m.id for m in result.matched]
        assert ["20240101000009"] == result.not_in_folder
