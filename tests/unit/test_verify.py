"""The verify algorithm (engine/verify.py) over a fake database, and the pure schema diff it reports with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from premigrate.engine.verify import (
    DOWN_DIFFERS,
    DOWN_FAILED,
    NO_DOWN,
    NOT_VERIFIED,
    REAPPLY_DIFFERS,
    REAPPLY_FAILED,
    VERIFIED,
    RecordingTarget,
    Step,
    verify,
)
from premigrate.model.schema_diff import Difference, Schema, SchemaObject, diff

State = dict[tuple[str, str], SchemaObject]
Change = Callable[[State], None]


def add(kind: str, name: str, **attributes: object) -> Change:
    def apply(state: State) -> None:
        if (kind, name) in state:
            raise RuntimeError(f"{kind} {name} already exists")
        state[(kind, name)] = SchemaObject.of(kind, name, attributes)
    return apply


def drop(kind: str, name: str) -> Change:
    def apply(state: State) -> None:
        if (kind, name) not in state:
            raise RuntimeError(f"{kind} {name} does not exist")
        del state[(kind, name)]
    return apply


def add_if_missing(kind: str, name: str) -> Change:
    def apply(state: State) -> None:
        state.setdefault((kind, name), SchemaObject.of(kind, name))
    return apply


def both(*changes: Change) -> Change:
    def apply(state: State) -> None:
        for change in changes:
            change(state)
    return apply


@dataclass
class FakeDatabase:
    """Migrations as functions over a dict of schema objects."""

    migrations: dict[str, tuple[Change, Change | None]]
    state: State = field(default_factory=dict)
    data: dict[str, int] = field(default_factory=dict)

    def up(self, migration_id: str) -> None:
        self.migrations[migration_id][0](self.state)

    def down(self, migration_id: str) -> None:
        down = self.migrations[migration_id][1]
        assert down is not None, "verify must never run a down part that does not exist"
        down(self.state)

    def snapshot(self) -> Schema:
        return Schema.build(self.state.values())

    def reset(self) -> None:
        self.state.clear()

    def steps(self) -> list[Step]:
        return [Step(m, down is not None) for m, (_, down) in self.migrations.items()]


def statuses(report: object) -> dict[str, str]:
    return {r.migration_id: r.status for r in report.results}  # type: ignore[attr-defined]


class TestVerify:
    def test_clean_folder(self) -> None:
        """Every down restores and every up re-applies: all verified, exit 0, newest first."""
        db = FakeDatabase({
            "1": (add("table", "users"), drop("table", "users")),
            "2": (add("index", "users.by_email", definition="(email)"), drop("index", "users.by_email")),
        })
        target = RecordingTarget(db)
        report = verify(db.steps(), target)
        assert [("2", VERIFIED), ("1", VERIFIED)] == [(r.migration_id, r.status) for r in report.results]
        assert 0 == report.exit_code
        assert [("up", "1"), ("up", "2"), ("down", "2"), ("up", "2"), ("down", "2"),
                ("down", "1"), ("up", "1"), ("down", "1")] == target.calls

    def test_down_drops_the_wrong_index(self) -> None:
        """A down that drops another index than its up created is reported with both differences, exit 5."""
        db = FakeDatabase({
            "1": (both(add("table", "users"), add("index", "users.a", definition="(a)")), drop("table", "users")),
            "2": (add("index", "users.b", definition="(b)"), drop("index", "users.a")),
        })
        report = verify(db.steps(), db)
        result = report.results[0]
        assert ("2", DOWN_DIFFERS) == (result.migration_id, result.status)
        assert [Difference("index", "users.a", "removed", before="(a)"),
                Difference("index", "users.b", "added", after="(b)")] == list(result.differences)
        assert 5 == report.exit_code

    def test_up_not_rerunnable(self) -> None:
        """An up that fails the second time (data-dependent) is reapply_failed; the older one is checked on a
        database rebuilt from empty."""
        db = FakeDatabase({"1": (add("table", "t"), drop("table", "t"))}, )
        runs = {"n": 0}

        def data_dependent(state: State) -> None:
            runs["n"] += 1
            if runs["n"] > 1:
                raise RuntimeError("duplicate key value violates unique constraint")
            add("column", "t.c")(state)

        db.migrations["2"] = (data_dependent, drop("column", "t.c"))
        report = verify(db.steps(), db)
        assert {"2": REAPPLY_FAILED, "1": VERIFIED} == statuses(report)
        assert "duplicate key" in (report.results[0].error or "")
        assert ("database rebuilt from empty up to 1: re-applying 2 after its down failed"
                == report.results[1].detail)
        assert 5 == report.exit_code

    def test_up_differs_after_round_trip(self) -> None:
        """An up whose second run builds another schema is reapply_differs, with the difference."""
        db = FakeDatabase({"1": (add("table", "t"), drop("table", "t"))})
        runs = {"n": 0}

        def grows(state: State) -> None:
            runs["n"] += 1
            add("column", "t.c", type="int" if runs["n"] == 1 else "bigint")(state)

        db.migrations["2"] = (grows, drop("column", "t.c"))
        report = verify(db.steps(), db)
        assert {"2": REAPPLY_DIFFERS, "1": VERIFIED} == statuses(report)
        assert ["column t.c: type changed from 'int' to 'bigint'"] == [d.render() for d in report.results[0].differences]

    def test_no_down_part_then_rebuild(self) -> None:
        """A migration without down is reported; the older one is checked on a rebuilt database without it."""
        db = FakeDatabase({
            "1": (add("table", "a"), drop("table", "a")),
            "2": (add("table", "b"), None),
            "3": (add("table", "c"), drop("table", "c")),
        })
        target = RecordingTarget(db)
        report = verify(db.steps(), target)
        assert {"3": VERIFIED, "2": NO_DOWN, "1": VERIFIED} == statuses(report)
        assert "database rebuilt from empty up to 1: 2 has no down part" == report.results[2].detail
        assert 0 == report.exit_code
        assert [("up", "1"), ("up", "2"), ("up", "3"), ("down", "3"), ("up", "3"), ("down", "3"),
                ("reset", ""), ("up", "1"), ("down", "1"), ("up", "1"), ("down", "1")] == target.calls

    def test_rebuild_fails(self) -> None:
        """When the database cannot be rebuilt, the older migration is not verified, with the reason."""
        db = FakeDatabase({"1": (add("table", "a"), drop("table", "a")), "2": (add("table", "b"), None)})

        def cannot_reset() -> None:
            raise RuntimeError("permission denied to create database")

        db.reset = cannot_reset  # type: ignore[method-assign]
        report = verify(db.steps(), db)
        assert {"2": NO_DOWN, "1": NOT_VERIFIED} == statuses(report)
        assert ("permission denied to create database", "rebuilding the database up to 1 failed (2 has no down part)"
                ) == (report.results[1].error, report.results[1].detail)
        assert 5 == report.exit_code

    def test_down_fails(self) -> None:
        """A failing down is down_failed with its error; the older one is checked after a rebuild."""
        db = FakeDatabase({
            "1": (add("table", "a"), drop("table", "a")),
            "2": (add("table", "b"), drop("table", "nope")),
        })
        report = verify(db.steps(), db)
        assert {"2": DOWN_FAILED, "1": VERIFIED} == statuses(report)
        assert "does not exist" in (report.results[0].error or "")

    def test_folder_fails_to_apply(self) -> None:
        """A failing first up is the folder's failure: exit 4, nothing verified, no down run."""
        db = FakeDatabase({"1": (add("table", "a"), drop("table", "a")), "2": (add("table", "a"), None)})
        target = RecordingTarget(db)
        report = verify(db.steps(), target)
        assert (4, "2", ()) == (report.exit_code, report.apply_failed, report.results)
        assert "already exists" in (report.apply_error or "")
        assert [("up", "1"), ("up", "2")] == target.calls

    def test_leftover_of_newer_does_not_blame_older(self) -> None:
        """A down that leaves something behind is blamed alone; the older migration still verifies, also when the
        wrong down removed what the older one's down drops."""
        db = FakeDatabase({
            "1": (add("table", "a"), drop("table", "a")),
            "2": (both(add("table", "b"), add_if_missing("table", "b_log")), both(drop("table", "b"),
                                                                                  drop("table", "a"))),
        })
        report = verify(db.steps(), db)
        assert {"2": DOWN_DIFFERS, "1": VERIFIED} == statuses(report)
        assert ["table a removed", "table b_log added"] == [d.render() for d in report.results[0].differences]

    def test_interrupt_propagates(self) -> None:
        """SIGTERM's Interrupted (a BaseException) is not swallowed: the scratch context must see it."""
        class Stop(KeyboardInterrupt):
            pass

        def interrupted(state: State) -> None:
            raise Stop()

        db = FakeDatabase({"1": (add("table", "a"), interrupted)})
        with pytest.raises(Stop):
            verify(db.steps(), db)

    def test_json_shape(self) -> None:
        """as_dict carries exit code, per-migration status, message and rendered differences."""
        db = FakeDatabase({"1": (add_if_missing("table", "a"), both())})
        report = verify(db.steps(), db)
        data = report.as_dict()
        assert 5 == data["exit_code"]
        migration = data["migrations"][0]  # type: ignore[index]
        assert ("1", DOWN_DIFFERS, "table a added") == (
            migration["migration"], migration["status"], migration["differences"][0]["text"])


class TestSchemaDiff:
    def test_equal(self) -> None:
        """Objects in another order are the same schema."""
        a = [SchemaObject.of("table", "t"), SchemaObject.of("column", "t.c", {"type": "int"})]
        assert Schema.build(a) == Schema.build(reversed(a))
        assert [] == diff(Schema.build(a), Schema.build(reversed(a)))

    def test_changed_attributes_one_line_each(self) -> None:
        """Each changed attribute is one difference with a readable line."""
        before = Schema.build([SchemaObject.of("column", "t.c", {"type": "int", "default": None})])
        after = Schema.build([SchemaObject.of("column", "t.c", {"type": "bigint", "default": "0"})])
        assert ["column t.c: default changed from none to '0'",
                "column t.c: type changed from 'int' to 'bigint'"] == [d.render() for d in diff(before, after)]

    def test_kind_order(self) -> None:
        """A removed table is listed before its columns, then other kinds in a fixed order."""
        before = Schema.build([SchemaObject.of("trigger", "t.x"), SchemaObject.of("column", "t.c"),
                               SchemaObject.of("table", "t")])
        assert ["table", "column", "trigger"] == [d.kind for d in diff(before, Schema())]

    def test_duplicate_names_kept(self) -> None:
        """Two identical unnamed objects stay two objects."""
        schema = Schema.build([SchemaObject.of("constraint", "t: CHECK (a)")] * 2)
        assert ["t: CHECK (a)", "t: CHECK (a) #2"] == schema.names("constraint")

    def test_unknown_kind(self) -> None:
        """A kind outside the list is a programming error."""
        with pytest.raises(ValueError):
            SchemaObject.of("synonym", "x")


class TestReportText:
    def test_lines(self) -> None:
        """One line per migration, its differences indented, and a total."""
        db = FakeDatabase({
            "1": (add("table", "a"), drop("table", "a")),
            "2": (add("table", "b"), None),
            "3": (both(add("table", "c"), add("index", "c.i", definition="(x)")), drop("table", "c")),
        })

        def keep_index(state: State) -> None:
            del state[("table", "c")]

        db.migrations["3"] = (db.migrations["3"][0], keep_index)
        report = verify(db.steps(), db)
        assert [("3: down_differs: down does not restore the schema (re-applying up then failed: index c.i already "
                "exists)"),
                "    index c.i added ('(x)')",
                "2: no_down: no down part",
                ("1: verified: down restores the schema and up re-applies cleanly (database rebuilt from empty up to "
                "1: re-applying 3 after its down failed)"),
                "1 verified, 1 not verified, 1 without a down part"] == report.lines()

    def test_apply_failure_line(self) -> None:
        """A folder that does not apply is one line naming the migration and the error."""
        db = FakeDatabase({"1": (drop("table", "nope"), None)})
        assert ["the folder does not apply: 1: table nope does not exist"] == verify(db.steps(), db).lines()


class TestMessagesInScratch:
    @pytest.mark.parametrize("advice", [
        "recorded as failed: fix the cause, then run `premigrate repair` to see the ways to finish it",
        "its history row stays rolling_back and records which statements of the down part ran: run "
        "`premigrate repair` to see the ways out",
    ])
    def test_repair_advice_is_replaced(self, advice: str) -> None:
        """The executor's advice to repair a history row is about verify's scratch database, never the configured
        one: verify says to fix the file and run verify again instead."""
        from premigrate.commands.verify import in_scratch

        message = in_scratch(f"3_a.sql: statement 4 of 4 (line 4) failed: [1060] Duplicate column name 'zz'; {advice}")
        assert "premigrate repair" not in message and "rolling_back" not in message, message
        assert message.startswith("3_a.sql: statement 4 of 4 (line 4) failed: [1060] Duplicate column name 'zz'; ")
        assert message.endswith("there is nothing to repair; fix the file and run verify again"), message

    def test_other_messages_unchanged(self) -> None:
        from premigrate.commands.verify import in_scratch

        assert "1_a.sql: statement 1 of 1 (line 1) failed: boom; rolled back" == in_scratch(
            "1_a.sql: statement 1 of 1 (line 1) failed: boom; rolled back")
