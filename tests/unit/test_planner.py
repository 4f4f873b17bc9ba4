from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from premigrate.drivers.base import HistoryRow
from premigrate.model.planner import Policy, make_plan, resumable_rows
from premigrate.model.migrations import MigrationSet, load_migrations
from premigrate.model.sql import split_statements

POLICY = Policy("postgresql")
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def folder(tmp_path: Path, files: dict[str, str]) -> MigrationSet:
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    return load_migrations(tmp_path)


def applied(files: MigrationSet, migration_id: str, **changes: object) -> HistoryRow:
    migration = next(m for m in files.all if m.id == migration_id)
    row = HistoryRow(migration_id, str(migration.version) if migration.version else None, migration.description,
                     migration.kind, migration.script, migration.checksum, WHEN, 5, "host", "applied")
    return row.evolve(**changes)


THREE = {"001_a.sql": "CREATE TABLE a (id int);", "002_b.sql": "CREATE TABLE b (id int);",
         "003_c.sql": "CREATE TABLE c (id int); CREATE TABLE d (id int); CREATE TABLE e (id int);"}


class TestPending:
    def test_empty_history_plans_everything_in_order(self, tmp_path: Path) -> None:
        """With no history every migration is pending, in version order."""
        files = folder(tmp_path, THREE)
        plan = make_plan(files, [], POLICY)
        assert ["1", "2", "3"] == [s.migration.id for s in plan.steps]
        assert not plan.problems

    def test_applied_are_skipped(self, tmp_path: Path) -> None:
        """Applied migrations with the same checksum are not planned."""
        files = folder(tmp_path, THREE)
        plan = make_plan(files, [applied(files, "1"), applied(files, "2")], POLICY)
        assert ["3"] == [s.migration.id for s in plan.steps]

    def test_fully_applied_is_clean(self, tmp_path: Path) -> None:
        """Nothing pending and nothing wrong is a clean plan: up exits without the lock."""
        files = folder(tmp_path, THREE)
        plan = make_plan(files, [applied(files, i) for i in ("1", "2", "3")], POLICY)
        assert plan.clean
        assert {"applied"} == {e.state for e in plan.entries}


class TestValidation:
    def test_drift_names_file_and_both_checksums(self, tmp_path: Path) -> None:
        """An applied file that changed is a problem naming the file and both checksums."""
        files = folder(tmp_path, THREE)
        row = applied(files, "2", checksum="sha256:old")
        plan = make_plan(files, [applied(files, "1"), row], POLICY)
        assert ["drift"] == [p.kind for p in plan.problems]
        message = plan.problems[0].message
        assert "002_b.sql" in message and "sha256:old" in message and files.versioned[1].checksum in message
        assert "changed" == next(e.state for e in plan.entries if e.migration_id == "2")

    def test_out_of_order_refused(self, tmp_path: Path) -> None:
        """A pending migration older than the newest applied one is refused by default."""
        files = folder(tmp_path, THREE)
        plan = make_plan(files, [applied(files, "1"), applied(files, "3")], POLICY)
        assert ["out_of_order"] == [p.kind for p in plan.problems]
        assert "--allow-out-of-order" in plan.problems[0].message

    def test_out_of_order_allowed(self, tmp_path: Path) -> None:
        """--allow-out-of-order plans the older migration instead."""
        files = folder(tmp_path, THREE)
        plan = make_plan(files, [applied(files, "1"), applied(files, "3")], Policy("postgresql", allow_out_of_order=True))
        assert (["2"], []) == ([s.migration.id for s in plan.steps], plan.problems)

    def test_missing_is_warning(self, tmp_path: Path) -> None:
        """A history row without a file (database ahead of the image) is a warning, and the plan is clean."""
        files = folder(tmp_path, {"001_a.sql": "SELECT 1;"})
        ghost = applied(files, "1").evolve(migration_id="9", version="9", script="009_x.sql")
        plan = make_plan(files, [applied(files, "1"), ghost], POLICY)
        assert (True, ["missing"]) == (plan.clean, [w.kind for w in plan.warnings])

    def test_missing_is_problem_when_strict(self, tmp_path: Path) -> None:
        """--strict turns a missing file into a problem."""
        files = folder(tmp_path, {"001_a.sql": "SELECT 1;"})
        ghost = applied(files, "1").evolve(migration_id="9", version="9", script="009_x.sql")
        plan = make_plan(files, [applied(files, "1"), ghost], Policy("postgresql", strict=True))
        assert ["missing"] == [p.kind for p in plan.problems]

    def test_failed_row_refused(self, tmp_path: Path) -> None:
        """A failed row refuses the run, naming the version, the statement, the error and what took effect."""
        files = folder(tmp_path, THREE)
        row = applied(files, "3", state="failed", statements_done=1, statement_started=2, statements_total=3,
                      error="boom")
        plan = make_plan(files, [applied(files, "1"), applied(files, "2"), row], Policy("mysql", table="hist"))
        assert ["failed"] == [p.kind for p in plan.problems]
        message = plan.problems[0].message
        assert "statement 2 of 3" in message and "boom" in message and "statement 1 took effect" in message

    def test_failed_row_names_the_three_repair_commands(self, tmp_path: Path) -> None:
        """The refusal names the exact repair commands, and no raw SQL for the history table."""
        files = folder(tmp_path, THREE)
        row = applied(files, "3", state="failed", statements_done=2, statement_started=3, statements_total=3)
        message = make_plan(files, [applied(files, "1"), applied(files, "2"), row], POLICY).problems[0].message
        assert "`premigrate repair --resume`" in message
        assert "`premigrate repair --mark-applied 3`" in message and "`premigrate repair --forget 3`" in message
        assert "statements 1-2 took effect" in message
        assert "UPDATE" not in message and "DELETE" not in message

    def test_in_doubt_refused(self, tmp_path: Path) -> None:
        """A statement started but not done is in doubt: refused, never guessed."""
        files = folder(tmp_path, THREE)
        row = applied(files, "3", state="in_progress", statements_done=1, statement_started=2, statements_total=3)
        plan = make_plan(files, [applied(files, "1"), applied(files, "2"), row], Policy("mysql"))
        assert ["in_doubt"] == [p.kind for p in plan.problems]
        assert "statement 2 of 3" in plan.problems[0].message

    def test_in_doubt_names_retry_and_skip(self, tmp_path: Path) -> None:
        """The in-doubt refusal tells the operator to choose --retry-current or --skip-current."""
        files = folder(tmp_path, THREE)
        row = applied(files, "3", state="in_progress", statements_done=1, statement_started=2, statements_total=3)
        history = [applied(files, "1"), applied(files, "2"), row]
        message = make_plan(files, history, Policy("mysql")).problems[0].message
        assert "`premigrate repair --resume --retry-current` if statement 2 did not take effect" in message
        assert "`premigrate repair --resume --skip-current` if it did" in message

    def test_in_doubt_does_not_claim_the_run_stopped(self, tmp_path: Path) -> None:
        """A run that lost its lock may still be in its statement: the message says so and how to tell."""
        files = folder(tmp_path, THREE)
        row = applied(files, "3", state="in_progress", statements_done=1, statement_started=2, statements_total=3,
                      applied_by="pod-7")
        message = make_plan(files, [applied(files, "1"), applied(files, "2"), row], Policy("mysql")).problems[0].message
        assert "earlier run stopped" not in message
        assert "stopped while statement 2 of 3 was running, or may still be running it" in message
        assert "premigrate@pod-7" in message

    def test_in_doubt_first_statement_does_not_say_none_took_effect(self, tmp_path: Path) -> None:
        """Statement 1 in doubt: the refusal says nothing ran before it, not that no statement took effect."""
        files = folder(tmp_path, THREE)
        row = applied(files, "3", state="in_progress", statements_done=0, statement_started=1, statements_total=3)
        message = make_plan(files, [applied(files, "1"), applied(files, "2"), row], Policy("mysql")).problems[0].message
        assert "no statement ran before it" in message and "no statement took effect" not in message

    def test_several_unfinished_rows_name_the_version(self, tmp_path: Path) -> None:
        """With two unfinished rows, --resume must say which: the hint carries --version."""
        files = folder(tmp_path, THREE)
        two = applied(files, "2", state="failed", statements_done=0, statement_started=1, statements_total=1)
        three = applied(files, "3", state="failed", statements_done=0, statement_started=1, statements_total=3)
        messages = [p.message for p in make_plan(files, [applied(files, "1"), two, three], POLICY).problems]
        assert ["--resume --version 2", "--resume --version 3"] == [
            m[m.index("--resume"):m.index("`", m.index("--resume"))] for m in messages]
        assert "no statement took effect" in messages[0]

    def test_rolling_back_names_forget_and_mark_applied(self, tmp_path: Path) -> None:
        """A `down` that stopped half-way is settled with --forget or --mark-applied."""
        files = folder(tmp_path, THREE)
        row = applied(files, "3", state="rolling_back", statements_done=1, statement_started=2, statements_total=2)
        [problem] = make_plan(files, [applied(files, "1"), applied(files, "2"), row], POLICY).problems
        assert "rollback_incomplete" == problem.kind
        assert "`premigrate repair --forget 3`" in problem.message
        assert "`premigrate repair --mark-applied 3`" in problem.message

    def test_unfinished_row_without_file_names_forget(self, tmp_path: Path) -> None:
        """A failed row whose file is gone can be dropped with --forget."""
        files = folder(tmp_path, THREE)
        ghost = applied(files, "3", state="failed").evolve(migration_id="9", version="9", script="009_x.sql")
        [problem] = make_plan(files, [ghost], Policy("postgresql", allow_out_of_order=True)).problems
        assert "`premigrate repair --forget 9`" in problem.message


class TestUnknownRows:
    @pytest.mark.parametrize(("changes", "words"), [
        pytest.param({"state": "reverted"}, "has state 'reverted' in the history table", id="state"),
        pytest.param({"kind": "undo"}, "has kind 'undo' in the history table", id="kind-applied"),
        pytest.param({"kind": "undo", "state": "in_progress", "statements_done": 1, "statement_started": 1,
                      "statements_total": 3}, "has kind 'undo'", id="kind-in-progress"),
    ])
    def test_refused_naming_the_value_and_the_way_out(self, tmp_path: Path, changes: dict[str, object],
                                                      words: str) -> None:
        """A state or kind this premigrate does not know is refused (never applied, resumed or taken as applied),
        naming the premigrate that wrote it and `repair --forget`."""
        files = folder(tmp_path, THREE)
        row = applied(files, "3", premigrate_version="9.1.0", **changes)
        plan = make_plan(files, [applied(files, "1"), applied(files, "2"), row], POLICY)
        [problem] = plan.problems
        assert ("unknown_row", []) == (problem.kind, plan.steps)
        assert words in problem.message and "premigrate 9.1.0" in problem.message
        assert "`premigrate repair --forget 3`" in problem.message
        assert [] == resumable_rows([row])

    def test_status_shows_the_rows_own_kind(self, tmp_path: Path) -> None:
        """status shows the unknown kind the row holds, not the file's."""
        files = folder(tmp_path, THREE)
        plan = make_plan(files, [applied(files, "1", kind="undo")], POLICY)
        assert ["undo"] == [e.kind for e in plan.entries if e.migration_id == "1"]

    def test_unknown_repeatable_row_is_not_reapplied(self, tmp_path: Path) -> None:
        """A changed repeatable whose row has an unknown kind is refused rather than applied again."""
        files = folder(tmp_path, {"R__v.sql": "CREATE VIEW v AS SELECT 1;"})
        row = applied(files, "R:v", kind="undo", checksum="sha256:old")
        plan = make_plan(files, [row], POLICY)
        assert (["unknown_row"], []) == ([p.kind for p in plan.problems], plan.steps)

    def test_unknown_row_without_its_file_is_a_problem(self, tmp_path: Path) -> None:
        """An applied row of an unknown kind whose file is gone is refused, not merely warned about as missing."""
        files = folder(tmp_path, THREE)
        ghost = applied(files, "3", kind="undo").evolve(migration_id="9", version="9", script="009_x.sql")
        plan = make_plan(files, [ghost], Policy("postgresql", allow_out_of_order=True))
        assert ["unknown_row"] == [p.kind for p in plan.problems]
        assert "009_x.sql (version 9, not in the folder) has kind 'undo'" in plan.problems[0].message


class TestResume:
    def _row(self, files: MigrationSet, done: int) -> HistoryRow:
        statements = split_statements(files.versioned[2].up_sql, "mysql")
        return applied(files, "3", state="in_progress", statements_done=done, statement_started=done,
                       statements_total=3, statement_hashes=tuple(s.digest for s in statements[:done]))

    def test_interrupted_between_statements_resumes(self, tmp_path: Path) -> None:
        """An in_progress row with nothing in doubt is resumed automatically."""
        files = folder(tmp_path, THREE)
        row = self._row(files, 1)
        plan = make_plan(files, [applied(files, "1"), applied(files, "2"), row], Policy("mysql"))
        assert ([("3", "resume")], []) == ([(s.migration.id, s.reason) for s in plan.steps], plan.problems)

    def test_changed_done_statement_blocks_resume(self, tmp_path: Path) -> None:
        """If a statement that already ran changed in the file, resuming is refused."""
        files = folder(tmp_path, THREE)
        row = self._row(files, 2)
        (tmp_path / "003_c.sql").write_text("CREATE TABLE c (id int); CREATE TABLE dd (id int); CREATE TABLE e (id int);")
        files = load_migrations(tmp_path)
        plan = make_plan(files, [applied(files, "1"), applied(files, "2"), row], Policy("mysql"))
        assert ["resume_mismatch"] == [p.kind for p in plan.problems]
        message = plan.problems[0].message
        assert "statement 2, which already ran, has changed" in message
        assert "`premigrate repair --mark-applied 3`" in message and "`premigrate repair --forget 3`" in message

    def test_changed_pending_statement_still_resumes(self, tmp_path: Path) -> None:
        """A statement that never ran may change (the fix for a failure): the resume goes ahead."""
        files = folder(tmp_path, THREE)
        row = self._row(files, 1)
        (tmp_path / "003_c.sql").write_text("CREATE TABLE c (id int); CREATE TABLE dd (id int); CREATE TABLE e (id int);")
        files = load_migrations(tmp_path)
        plan = make_plan(files, [applied(files, "1"), applied(files, "2"), row], Policy("mysql"))
        assert ["resume"] == [s.reason for s in plan.steps]


class TestRepeatables:
    def test_new_and_changed_run_after_versioned(self, tmp_path: Path) -> None:
        """Repeatables run after the versioned migrations, when new or when their checksum changed."""
        files = folder(tmp_path, {"001_a.sql": "SELECT 1;", "R__b.sql": "SELECT 2;", "R__c.sql": "SELECT 3;"})
        stale = applied(files, "R:b", checksum="sha256:old")
        same = applied(files, "R:c")
        plan = make_plan(files, [stale, same], POLICY)
        assert [("1", "pending"), ("R:b", "changed")] == [(s.migration.id, s.reason) for s in plan.steps]

    def test_unchanged_repeatable_not_planned(self, tmp_path: Path) -> None:
        """A repeatable whose checksum matches is not re-applied."""
        files = folder(tmp_path, {"R__b.sql": "SELECT 2;"})
        assert make_plan(files, [applied(files, "R:b")], POLICY).clean


class TestPrefixHashRows:
    """Progress rows record their done part as one prefix hash; a resume still proves it unchanged."""

    def test_unchanged_prefix_resumes_and_a_changed_one_is_refused(self, tmp_path: Path) -> None:
        """An unchanged done part resumes; an edit to statement 1 of 2 done is refused, naming the range."""
        from premigrate.model.history import PrefixHasher
        from premigrate.model.sql import split_statements

        files = folder(tmp_path, THREE)
        three = next(m for m in files.all if m.id == "3")
        row = applied(files, "3", state="in_progress", statements_done=2, statement_started=2, statements_total=3,
                      statement_hashes=PrefixHasher(split_statements(three.up_sql, "mysql")).progress(2))
        history = [applied(files, "1"), applied(files, "2"), row]
        plan = make_plan(files, history, Policy("mysql"))
        assert [] == plan.problems and ["resume"] == [s.reason for s in plan.steps]

        (tmp_path / "edited").mkdir()
        edited = folder(tmp_path / "edited", THREE | {"003_c.sql": THREE["003_c.sql"].replace("c (id", "cc (id")})
        edited_history = [applied(edited, "1"), applied(edited, "2"), row.evolve(checksum="sha256:old")]
        problems = make_plan(edited, edited_history, Policy("mysql")).problems
        assert ["resume_mismatch"] == [p.kind for p in problems]
        assert "a statement among 1-2" in problems[0].message
