"""The examples in docs/liquibase.md and docs/sqitch.md are read by the readers and mean what the page says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from premigrate.model.formats import liquibase, sqitch

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = "\n".join((DOCS / name).read_text(encoding="utf-8") for name in ("liquibase.md", "sqitch.md"))


def example(name: str) -> str:
    m = re.search(rf"<!-- example: {re.escape(name)} -->\n```[a-z]*\n(.*?)```", PAGE, re.DOTALL)
    assert m, f"no example {name!r} in docs/liquibase.md or docs/sqitch.md"
    return m.group(1)


class TestLiquibaseExample:
    def test_changesets(self) -> None:
        """Three changesets with the identities, filters and precondition the page describes."""
        first, second, third = liquibase.parse_formatted_sql(example("liquibase"), "db/changes.sql")
        assert [c.identity for c in (first, second, third)] == [
            "alice:1:db/changes.sql", "alice:2:db/changes.sql", "bob:person-view:db/changes.sql"]
        assert first.rollback == ("DROP TABLE person",)
        assert (second.context, second.labels) == ("test", ("seed",))
        assert not second.matches_contexts(["prod"]) and second.matches_contexts(["test"])
        assert third.run_on_change
        assert third.preconditions is not None and third.preconditions.on_fail == "MARK_RAN"

    def test_master(self, tmp_path: Path) -> None:
        (tmp_path / "db" / "changes" / "later").mkdir(parents=True)
        (tmp_path / "db" / "master.xml").write_text(example("liquibase-master"))
        (tmp_path / "db" / "changes" / "001-person.sql").write_text(example("liquibase"))
        (tmp_path / "db" / "changes" / "later" / "002.sql").write_text(
            "--liquibase formatted sql\n--changeset carol:3\nSELECT 1;\n")
        changesets = liquibase.load_changelog(tmp_path, "db/master.xml")
        assert [c.identity for c in changesets][-1] == "carol:3:db/changes/later/002.sql"
        assert len(changesets) == 4


class TestSqitchExample:
    def test_plan(self) -> None:
        """The reworked `users` runs users@v1.0.sql first, then users.sql."""
        plan = sqitch.parse_plan(example("sqitch"))
        assert plan.project == "flipr"
        assert [(c.name, c.tags) for c in plan.changes] == [("appschema", ()), ("users", ("v1.0",)), ("users", ())]
        assert sqitch.script_name(plan.changes[1], lambda _: False) == "users@v1.0.sql"
        assert plan.changes[2].requires[0].key == "users@v1.0"


class TestLiquibaseRunExample:
    def test_run_example(self, tmp_path: Path) -> None:
        """The `up` example's changesets: keys, the dbms skip, runAlways with its context and precondition."""
        from premigrate.model.listed import Filters
        from premigrate.model.migrations import load_migrations

        (tmp_path / "changelog.sql").write_text(example("liquibase-run"))
        files = load_migrations(tmp_path, filters=Filters(dbms="sqlite", contexts=("prod",)))
        assert ["changelog.sql::1::alice", "changelog.sql::pg-only::alice", "changelog.sql::grants::alice"] == [
            m.id for m in files.listed]
        assert [None, "dbms:postgresql (this database is sqlite)", None] == [m.skip_reason for m in files.listed]
        grants = files.listed[2]
        assert grants.rerun == "always" and grants.down_sql == ""
        staging = load_migrations(tmp_path, filters=Filters(dbms="postgresql", contexts=("staging",))).listed
        assert [None, None] == [m.skip_reason for m in staging[:2]] and staging[2].skip_reason is not None
