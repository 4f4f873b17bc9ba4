from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from premigrate.config import load_config
from premigrate.drivers.base import HistoryRow
from premigrate.errors import UsageError
from premigrate.commands.repair import _action, _same_id, survey, survey_text
from premigrate.commands.repair.survey import survey_json
from premigrate.model.migrations import MigrationSet, load_migrations
from premigrate.model.sql import split_statements

WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)
FILES = {
    "001_a.sql": "CREATE TABLE a (id int);",
    "002_b.sql": "CREATE TABLE b (id int);\nCREATE TABLE c (id int);\nCREATE TABLE d (id int);\n"
                 "CREATE TABLE e (id int);\nCREATE TABLE f (id int);\n",
    "R__v.sql": "CREATE VIEW v AS SELECT 1;",
}


def folder(tmp_path: Path, files: dict[str, str] = FILES) -> MigrationSet:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    return load_migrations(tmp_path)


def row(files: MigrationSet, migration_id: str, state: str = "applied", done: int | None = None,
        **changes: object) -> HistoryRow:
    migration = next(m for m in files.all if m.id == migration_id)
    statements = split_statements(migration.up_sql, "mysql")
    done = len(statements) if done is None else done
    base = HistoryRow(migration_id, str(migration.version) if migration.version else None, migration.description,
                      migration.kind, migration.script, migration.checksum, WHEN, 5, "host", state,
                      statements_done=done, statements_total=len(statements), statement_started=done,
                      statement_hashes=tuple(s.digest for s in statements[:done]))
    return base.evolve(**changes)


def commands(item: object) -> list[str]:
    return [c.command for c in item.commands]  # type: ignore[attr-defined]


class TestSurvey:
    def test_failed_row_offers_resume_skip_mark_and_forget(self, tmp_path: Path) -> None:
        """A failed row needs repair and lists the four ways out, with what took effect."""
        files = folder(tmp_path)
        failed = row(files, "2", "failed", done=2, statement_started=3, error="[1146] no table")
        [item] = survey(files, [row(files, "1"), failed], "mysql").unfinished
        assert ["premigrate repair --resume", "premigrate repair --resume --skip-current",
                "premigrate repair --mark-applied 2", "premigrate repair --forget 2"] == commands(item)
        assert (True, 3, 3) == (item.needs_repair, item.current, item.line)
        assert "statements 1-2 took effect; statement 3 failed; statements 4-5 have not run" == item.outcome()

    def test_interrupted_between_statements_is_listed_but_not_needed(self, tmp_path: Path) -> None:
        """An in_progress row with nothing in doubt is resumed by `up` itself: listed, exit 0."""
        files = folder(tmp_path)
        result = survey(files, [row(files, "1"), row(files, "2", "in_progress", done=1)], "mysql")
        assert not result.needs_repair
        assert "premigrate up" == commands(result.unfinished[0])[0]

    def test_in_doubt_offers_retry_and_skip(self, tmp_path: Path) -> None:
        """A statement in doubt: --retry-current and --skip-current first."""
        files = folder(tmp_path)
        doubt = row(files, "2", "in_progress", done=1, statement_started=2)
        [item] = survey(files, [row(files, "1"), doubt], "mysql").unfinished
        assert ["premigrate repair --resume --retry-current", "premigrate repair --resume --skip-current"] == \
            commands(item)[:2]
        assert "statement 2 may or may not have taken effect" in item.outcome()

    def test_changed_done_statement_offers_no_resume(self, tmp_path: Path) -> None:
        """When a statement that ran changed in the file, --resume is not offered."""
        files = folder(tmp_path)
        failed = row(files, "2", "failed", done=2, statement_started=3)
        changed = folder(tmp_path, {"002_b.sql": FILES["002_b.sql"].replace("TABLE c", "TABLE cc")})
        [item] = survey(changed, [row(files, "1"), failed], "mysql").unfinished
        assert 2 == item.changed
        assert not any("--resume" in c for c in commands(item))

    def test_missing_file_offers_forget_only(self, tmp_path: Path) -> None:
        """A failed row without its file can only be forgotten."""
        files = folder(tmp_path)
        ghost = row(files, "2", "failed", done=1, statement_started=2).evolve(migration_id="9", version="9")
        [item] = survey(files, [row(files, "1"), ghost], "mysql").unfinished
        assert ["premigrate repair --forget 9"] == commands(item)

    def test_several_unfinished_rows_name_the_version(self, tmp_path: Path) -> None:
        """With two failed rows, each --resume command carries --version."""
        files = folder(tmp_path)
        history = [row(files, "1", "failed", done=0, statement_started=1),
                   row(files, "2", "failed", done=0, statement_started=1)]
        result = survey(files, history, "mysql")
        assert ["premigrate repair --resume --version 1", "premigrate repair --resume --version 2"] == [
            commands(u)[0] for u in result.unfinished]

    def test_checksum_changes_tell_cosmetic_from_sql(self, tmp_path: Path) -> None:
        """A comment-only edit keeps the statements; a changed statement is reported as such; repeatables skip."""
        files = folder(tmp_path)
        history = [row(files, "1"), row(files, "2"), row(files, "R:v")]
        edited = folder(tmp_path, {
            "001_a.sql": "-- the first table\n\nCREATE TABLE a (id int);\n",
            "002_b.sql": FILES["002_b.sql"].replace("TABLE d", "TABLE dd"),
            "R__v.sql": "CREATE VIEW v AS SELECT 2;",
        })
        changes = survey(edited, history, "mysql").checksum_changes
        assert [("1", None), ("2", 3)] == [(c.row.migration_id, c.changed) for c in changes]
        text = survey_text(survey(edited, history, "mysql"))
        assert "statements unchanged" in text and "statement 3 (line 3) differs" in text

    def test_in_doubt_first_statement_does_not_say_none_took_effect(self, tmp_path: Path) -> None:
        """Stopped during statement 1: the outcome does not say "no statement took effect" before saying that
        statement 1 may have."""
        files = folder(tmp_path)
        [item] = survey(files, [row(files, "1"), row(files, "2", "in_progress", done=0, statement_started=1)],
                        "mysql").unfinished
        assert "statement 1 may or may not have taken effect; statements 2-5 have not run" == item.outcome()

    def test_down_stopped_during_a_statement_is_in_doubt(self, tmp_path: Path) -> None:
        """A rolling_back row stopped in statement 2 without an error (killed, interrupted): in doubt, worded as for
        `up`, with what to do by hand for each way out."""
        files = folder(tmp_path)
        stopped = row(files, "2", "rolling_back", done=1, statement_started=2, statements_total=3)
        result = survey(files, [row(files, "1"), stopped], "mysql")
        [item] = result.unfinished
        assert (True, 2) == (item.in_doubt, item.current)
        assert ("its down part: statement 1 took effect; statement 2 may or may not have taken effect; statement 3 "
                "has not run") == item.outcome()
        assert ["premigrate repair --forget 2", "premigrate repair --mark-applied 2"] == commands(item)
        assert "statement 2 if it did not take effect, and statement 3" in item.commands[0].when
        assert "statement 1, and statement 2 if it took effect" in item.commands[1].when
        assert "`down` interrupted during statement 2 of 3 of its down part" in survey_text(result)
        assert [True] == [u["in_doubt"] for u in json.loads(survey_json(result, database="d", table="t"))["unfinished"]]

    def test_down_failed_at_a_statement_is_not_in_doubt(self, tmp_path: Path) -> None:
        """A rolling_back row that recorded its statement's error: that statement failed."""
        files = folder(tmp_path)
        failed = row(files, "2", "rolling_back", done=1, statement_started=2, statements_total=2, error="[1051] x")
        [item] = survey(files, [row(files, "1"), failed], "mysql").unfinished
        assert (False, "its down part: statement 1 took effect; statement 2 failed") == (item.in_doubt, item.outcome())

    @pytest.mark.parametrize(("changes", "unknown"), [
        pytest.param({"state": "reverted"}, "state 'reverted'", id="state"),
        pytest.param({"kind": "undo"}, "kind 'undo'", id="kind"),
    ])
    def test_unknown_row_needs_repair_and_can_only_be_forgotten(self, tmp_path: Path, changes: dict[str, str],
                                                                 unknown: str) -> None:
        """A state or kind this premigrate does not know: needs repair, names the premigrate that wrote it, and
        offers --forget alone (never "up resumes it by itself")."""
        files = folder(tmp_path)
        written = row(files, "2", premigrate_version="9.1.0", **changes)
        result = survey(files, [row(files, "1"), written], "mysql")
        [item] = result.unfinished
        assert (True, unknown, ["premigrate repair --forget 2"]) == (result.needs_repair, item.unknown, commands(item))
        text = survey_text(result)
        assert "which this premigrate (" in text and "premigrate 9.1.0 wrote it" in text
        assert "resumes it by itself" not in text
        [document] = json.loads(survey_json(result, database="d", table="t"))["unfinished"]
        assert (unknown, "9.1.0", False) == (document["unknown"], document["premigrate_version"], document["in_doubt"])

    def test_run_in_progress_is_said_first(self, tmp_path: Path) -> None:
        """With a runner lock holder, the report starts with the run in progress and its holder, and does not call
        the row interrupted."""
        files = folder(tmp_path)
        doubt = row(files, "2", "in_progress", done=1, statement_started=2)
        result = replace(survey(files, [row(files, "1"), doubt], "mysql"), run_in_progress={"pid": 7, "host": "h"})
        text = survey_text(result)
        assert text.startswith("A premigrate run is in progress: it holds the runner lock (held by pid=7, host=h)")
        assert "in_progress, running or interrupted during statement 2 of 5" in text
        assert "ways out, once no run holds the runner lock:" in text
        assert {"pid": 7, "host": "h"} == json.loads(survey_json(result, database="d", table="t"))["run_in_progress"]

    def test_clean_history_needs_nothing(self, tmp_path: Path) -> None:
        """Everything applied as in the folder: nothing to repair."""
        files = folder(tmp_path)
        result = survey(files, [row(files, "1"), row(files, "2"), row(files, "R:v")], "mysql")
        assert (False, [], []) == (result.needs_repair, result.unfinished, result.checksum_changes)
        assert survey_text(result).startswith("Nothing to repair")


class TestAction:
    def _config(self, tmp_path: Path, **flags: object):
        return load_config("repair", flags, {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})

    @pytest.mark.parametrize(("flags", "expected"), [
        pytest.param({}, None, id="report"),
        pytest.param({"repair_resume": True, "repair_skip_current": True}, "resume", id="resume-skip"),
        pytest.param({"repair_forget": "3"}, "forget", id="forget"),
        pytest.param({"repair_realign_checksums": True, "repair_version": "3"}, "realign_checksums",
                     id="realign-named"),
    ])
    def test_accepted(self, tmp_path: Path, flags: dict[str, object], expected: str | None) -> None:
        """Each action alone, with the flags that go with it."""
        assert expected == _action(self._config(tmp_path, **flags))

    @pytest.mark.parametrize("flags", [
        pytest.param({"repair_resume": True, "repair_forget": "3"}, id="two-actions"),
        pytest.param({"repair_retry_current": True}, id="retry-without-resume"),
        pytest.param({"repair_resume": True, "repair_retry_current": True, "repair_skip_current": True},
                     id="retry-and-skip"),
        pytest.param({"repair_mark_applied": "3", "repair_version": "3"}, id="version-with-mark"),
        pytest.param({"repair_version": "3"}, id="version-alone"),
    ])
    def test_refused(self, tmp_path: Path, flags: dict[str, object]) -> None:
        """Combinations that do not make sense are usage errors (exit 2)."""
        with pytest.raises(UsageError):
            _action(self._config(tmp_path, **flags))


class TestSameId:
    @pytest.mark.parametrize(("given", "migration_id", "expected"), [
        pytest.param("3", "3", True, id="same"),
        pytest.param("003", "3", True, id="padded"),
        pytest.param("3.0", "3", True, id="trailing-zero"),
        pytest.param("R:v", "R:v", True, id="repeatable"),
        pytest.param("4", "3", False, id="other"),
        pytest.param("v", "R:v", False, id="bare-description"),
    ])
    def test_versions_compare_numerically(self, given: str, migration_id: str, expected: bool) -> None:
        """A version given on the command line matches the row however it is padded."""
        assert expected == _same_id(given, migration_id)
