from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from premigrate.commands import baseline, new as scaffold

from premigrate.model import placeholders
from premigrate.errors import UsageError
from premigrate.model.migrations import load_migrations
from premigrate.model.versions import Version

NOW = datetime(2026, 11, 21, 21, 30, 0, tzinfo=timezone.utc)


class TestPlaceholders:
    def test_substitutes_known(self) -> None:
        """${NAME} is replaced by its value, wherever it stands."""
        assert "CREATE TABLE app_t (v TEXT DEFAULT 'x-app_t')" == placeholders.substitute(
            "CREATE TABLE ${T} (v TEXT DEFAULT 'x-${T}')", {"T": "app_t"}, script="f.sql")

    def test_unknown_names_line(self) -> None:
        """An unknown placeholder is a configuration error naming the file, the line and the variable to set."""
        with pytest.raises(UsageError, match=r"f.sql: line 12: unknown placeholder \$\{MISSING\}.*"
                                             "PREMIGRATE_PLACEHOLDER_MISSING"):
            placeholders.substitute("SELECT 1;\nSELECT '${MISSING}';", {}, script="f.sql", first_line=11)

    def test_dollar_quotes_untouched(self) -> None:
        """PostgreSQL dollar quotes and $1 parameters are not placeholders."""
        sql = "CREATE FUNCTION f(int) RETURNS int AS $$ SELECT $1 $$ LANGUAGE sql"
        assert sql == placeholders.substitute(sql, {}, script="f.sql")


class TestAlembicMap:
    @pytest.mark.parametrize(
        "content",
        ['{"a1b2": "1", "c3d4": "2.1"}', "a1b2 1\n# comment\nc3d4 = 2.1\n", "a1b2: 1\nc3d4 2.1  # trailing\n"],
    )
    def test_formats(self, tmp_path: Path, content: str) -> None:
        """The map is a JSON object or lines of 'revision version'."""
        path = tmp_path / "map"
        path.write_text(content)
        assert {"a1b2": Version.parse("1"), "c3d4": Version.parse("2.1")} == baseline.read_map(str(path))

    def test_bad_version(self, tmp_path: Path) -> None:
        """A value that is not a version is refused, naming the revision."""
        path = tmp_path / "map"
        path.write_text("a1b2 head\n")
        with pytest.raises(UsageError, match="a1b2"):
            baseline.read_map(str(path))


class TestNew:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [("Add users table", "add_users_table"), ("add-email-index", "add_email_index"), ("v2 fix", "v2_fix")],
    )
    def test_description_normalized(self, text: str, expected: str) -> None:
        """Spaces and dashes become underscores, lower case."""
        assert expected == scaffold.normalize_description(text)

    @pytest.mark.parametrize("text", ["", "   ", "drop; table", "a/b", "_x", "é"])
    def test_description_refused(self, text: str) -> None:
        """Anything that would not make a clean file name is refused."""
        with pytest.raises(UsageError):
            scaffold.normalize_description(text)

    @pytest.mark.parametrize(
        ("existing", "expected"),
        [
            pytest.param([], "001", id="empty-folder"),
            pytest.param(["001_a.sql", "002_b.sql"], "003", id="sequence"),
            pytest.param(["1_a.sql", "9_b.sql"], "10", id="unpadded"),
            pytest.param(["0001_a.sql"], "0002", id="wider-padding"),
            pytest.param(["20260113155307_a.sql"], "20261121213000", id="timestamp"),
            pytest.param(["20261121213000_a.sql"], "20261121213001", id="timestamp-collision"),
            pytest.param(["2026_01_13_155307_a.sql"], "2026_11_21_213000", id="laravel"),
        ],
    )
    def test_next_version(self, tmp_path: Path, existing: list[str], expected: str) -> None:
        """The next number follows the folder's own numbering."""
        for name in existing:
            (tmp_path / name).write_text("SELECT 1;")
        files = load_migrations(tmp_path, allow_empty=True)
        assert expected == scaffold.next_version(files, scaffold.detect_style(tmp_path, files), NOW)[0]

    @pytest.mark.parametrize(
        ("existing", "style"),
        [
            pytest.param({"V1__a.sql": "x"}, "flyway", id="flyway"),
            pytest.param({"001_a.up.sql": "x", "001_a.down.sql": "y"}, "golang-migrate", id="pair"),
            pytest.param({"001_a.sql": "-- migrate:up\nx\n-- migrate:down\ny"}, "dbmate", id="sections"),
            pytest.param({"001_a.sql": "x"}, "plain", id="plain"),
        ],
    )
    def test_style_detected(self, tmp_path: Path, existing: dict[str, str], style: str) -> None:
        """The folder's existing style is the default for the new file."""
        for name, content in existing.items():
            (tmp_path / name).write_text(content)
        assert style == scaffold.detect_style(tmp_path, load_migrations(tmp_path))


def test_baseline_tool_choices_are_the_tools_read() -> None:
    """baseline --from and up --baseline-from offer exactly the tools whose history baseline reads."""
    from premigrate.commands.baseline import TOOLS
    from premigrate.options import BASELINE_TOOLS, OPTIONS_BY_DEST

    assert sorted(TOOLS) == sorted(BASELINE_TOOLS)
    assert OPTIONS_BY_DEST["baseline_from"].choices == OPTIONS_BY_DEST["up_baseline_from"].choices == BASELINE_TOOLS
