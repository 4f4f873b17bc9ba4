"""sqitch plans, read as App::Sqitch reads them.

Plans marked "from sqitch" are transcribed from sqitchers/sqitch t/plans/*.plan (the inputs of its t/plan.t).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from premigrate.errors import MigrationFileError
from premigrate.model.formats import sqitch

pytestmark = pytest.mark.unit

WHO = "2012-07-16T17:25:07Z Barack Obama <potus@whitehouse.gov>"

# from sqitch: t/plans/multi.plan
MULTI = """%project=multi
# This is a note

# And there was a blank line.

hey 2012-07-16T17:25:07Z theory <t@heo.ry>
you 2012-07-16T17:25:07Z anna <a@n.na>
@foo 2012-07-16T17:24:07Z julie <j@ul.ie> # look, a tag!
   
this/rocks  2012-07-16T17:25:07Z Barack Obama <potus@whitehouse.gov>
hey-there 2012-07-16T17:25:07Z Barack Obama <potus@whitehouse.gov> # trailing note!
@bar 2012-07-16T17:25:07Z Barack Obama <potus@whitehouse.gov>
@baz 2012-07-16T17:25:07Z Barack Obama <potus@whitehouse.gov>
"""

# from sqitch: t/plans/project_deps.plan (dependencies, conflicts, cross-project, rework)
DEPS = f"""%project=dependencies

+roles {WHO}
+users    [roles] {WHO}
+add_user [users roles log:logger] {WHO}
+dr_evil {WHO}
@alpha {WHO}

+users [users@alpha] {WHO}
+del_user [!dr_evil users log:logger@beta1] {WHO}
"""


class TestPlan:
    def test_changes_tags_and_notes(self) -> None:
        plan = sqitch.parse_plan(MULTI)
        assert plan.project == "multi"
        assert [(c.name, c.line, c.tags) for c in plan.changes] == [
            ("hey", 6, ()), ("you", 7, ("foo",)), ("this/rocks", 10, ()), ("hey-there", 11, ("bar", "baz"))]
        assert plan.changes[3].note == "trailing note!"
        assert plan.changes[0].planner_name == "theory" and plan.changes[0].planner_email == "t@heo.ry"
        assert plan.changes[0].timestamp == "2012-07-16T17:25:07Z"

    def test_dependencies(self) -> None:
        plan = sqitch.parse_plan(DEPS)
        add_user = plan.changes[2]
        assert [(d.project, d.change) for d in add_user.requires] == [(None, "users"), (None, "roles"),
                                                                    ("log", "logger")]
        del_user = plan.changes[5]
        assert [d.key for d in del_user.conflicts] == ["dr_evil"]
        assert [d.as_string("dependencies") for d in del_user.requires] == ["users", "log:logger@beta1"]

    def test_rework(self) -> None:
        """A change planned again after a tag: the earlier copy's scripts are name@tag.sql."""
        plan = sqitch.parse_plan(DEPS)
        first, again = plan.changes[1], plan.changes[4]
        assert (first.name, first.rework_tags) == ("users", ("alpha",))
        assert again.rework_tags == ()
        assert sqitch.script_name(first, lambda _: False) == "users@alpha.sql"
        assert sqitch.script_name(again, lambda _: False) == "users.sql"

    def test_pragmas(self) -> None:
        # from sqitch: t/plans/pragmas.plan
        plan = sqitch.parse_plan("% syntax-version=1.0.0\n  %foo = bar    # lolz\n% project=pragmata\n"
                                 "% uri=https://github.com/sqitchers/sqitch/\n% strict\n\n"
                                 f"hey {WHO}\nyou {WHO}\n")
        assert plan.project == "pragmata" and plan.uri == "https://github.com/sqitchers/sqitch/"
        assert plan.pragmas["foo"] == "bar" and plan.pragmas["strict"] == "1"

    def test_change_id_is_sqitchs(self) -> None:
        """Change.pm: id = SHA1("change <len>\\0" + info), info listing project, change, parent, planner, date."""
        plan = sqitch.parse_plan(f"%project=p\n\na {WHO}\nb [a] {WHO} # why\n")
        info_a = "project p\nchange a\nplanner Barack Obama <potus@whitehouse.gov>\ndate 2012-07-16T17:25:07Z"
        id_a = hashlib.sha1(f"change {len(info_a)}\0{info_a}".encode()).hexdigest()
        info_b = (f"project p\nchange b\nparent {id_a}\nplanner Barack Obama <potus@whitehouse.gov>\n"
                  "date 2012-07-16T17:25:07Z\nrequires\n  + a\n\nwhy")
        assert [c.id for c in plan.changes] == [id_a, hashlib.sha1(f"change {len(info_b)}\0{info_b}".encode())
                                                .hexdigest()]


class TestErrors:
    @pytest.mark.parametrize(("text", "line", "words"), [
        # from sqitch: t/plans/bad-change.plan
        pytest.param("%project=bad_change\n# This is a note\n\n# And there was a blank line.\n"
                     "what what what 2012-07-16T17:25:07Z Barack Obama <potus@whitehouse.gov> # OHNOEZ\n", 5,
                     "Invalid name", id="bad-name"),
        # from sqitch: t/plans/dupe-tag.plan
        pytest.param(f"%project=dupe_tag\n\nwhatever {WHO}\n@foo {WHO}\n\nhi {WHO}\n@bar {WHO}\n\n@stink  {WHO}\n\n"
                     f"@blah {WHO}\n@bar {WHO}\n", 12, 'Tag "bar" duplicates earlier declaration on line 7',
                     id="dupe-tag"),
        # from sqitch: t/plans/dupe-change.plan
        pytest.param(f"%project=dupe_change\n\nwhatever {WHO}\n@foo {WHO}\n\nhi {WHO}\ngreets {WHO}\ntallyho {WHO}\n"
                     f"greets {WHO}\n", 9, 'Change "greets" duplicates earlier declaration on line 7',
                     id="dupe-change"),
        # from sqitch: t/plans/reserved-tag.plan
        pytest.param(f"%project=reserved_tag\n\nhey {WHO}\n@foo {WHO}\n\n@bar {WHO}\n@HEAD {WHO}\n", 7,
                     '"@HEAD" is a reserved name', id="reserved-tag"),
        pytest.param(f"%project=p\n\n@foo {WHO}\n", 3, "declared without a preceding change", id="tag-first"),
        pytest.param(f"%project=p\n\na {WHO}\n@foo [a] {WHO}\n", 4, "Tags may not specify dependencies",
                     id="tag-deps"),
        pytest.param("%project=p\n\na 2012-07-16T17:25:07Z\n", 3, "Missing planner name and email",
                     id="no-planner"),
        pytest.param("%project=p\n\na Barack Obama <potus@whitehouse.gov>\n", 3, "Missing timestamp",
                     id="no-timestamp"),
        pytest.param(f"%project=p\n\na [b] {WHO}\n", 3, 'Unknown change "b" required by change "a"',
                     id="missing-requirement"),
        pytest.param(f"%project=p\n\na [b] {WHO}\nb [a] {WHO}\n", 3, 'Change "a" planned 1 change before required '
                     'change "b"', id="cycle"),
        pytest.param(f"%project=p\n\na [a] {WHO}\n", 3, "cannot require itself", id="self"),
        pytest.param(f"%project=p\n\na {WHO}\nb [a a] {WHO}\n", 4, 'Duplicate dependency "a"', id="dupe-dep"),
        pytest.param(f"%project=p\n\na [:x] {WHO}\n", 3, "not a valid dependency", id="bad-dep"),
        pytest.param(f"%project=p\nb {WHO}\n", 2, "a blank line must come between pragmas and changes",
                     id="no-blank-line"),
        pytest.param(f"%uri=x\n\na {WHO}\n", 1, "Missing %project", id="no-project"),
    ])
    def test_error_names_the_line(self, text: str, line: int, words: str) -> None:
        with pytest.raises(MigrationFileError) as info:
            sqitch.parse_plan(text)
        assert info.value.fields["line"] == line
        assert words in str(info.value)
        assert info.value.exit_code == 5

    def test_requirement_of_another_project_is_not_checked_here(self) -> None:
        plan = sqitch.parse_plan(f"%project=p\n\na [other:b] {WHO}\n")
        assert plan.changes[0].requires[0].project == "other"

    def test_requirement_before_a_tag(self) -> None:
        plan = sqitch.parse_plan(f"%project=p\n\na {WHO}\n@v1 {WHO}\n\nb [a@v1] {WHO}\n")
        assert plan.changes[1].requires[0].key == "a@v1"


class TestProject:
    def test_scripts_read_and_rework_file(self, tmp_path: Path) -> None:
        (tmp_path / "sqitch.plan").write_text(f"%project=p\n\nt {WHO}\n@v1 {WHO}\n\nt [t@v1] {WHO}\n")
        for kind in ("deploy", "revert", "verify"):
            (tmp_path / kind).mkdir()
            (tmp_path / kind / "t.sql").write_text(f"-- {kind} new\n")
            (tmp_path / kind / "t@v1.sql").write_text(f"-- {kind} old\n")
        plan = sqitch.load_project(tmp_path)
        assert [(c.script_name, c.deploy_sql, c.verify_sql) for c in plan.changes] == [
            ("t@v1.sql", "-- deploy old\n", "-- verify old\n"), ("t.sql", "-- deploy new\n", "-- verify new\n")]

    def test_missing_deploy_script(self, tmp_path: Path) -> None:
        (tmp_path / "sqitch.plan").write_text(f"%project=p\n\nt {WHO}\n")
        with pytest.raises(MigrationFileError, match='line 3: deploy/t.sql: no such script for change "t"'):
            sqitch.load_project(tmp_path)

    def test_psql_meta_command_refused(self, tmp_path: Path) -> None:
        (tmp_path / "sqitch.plan").write_text(f"%project=p\n\nt {WHO}\n")
        (tmp_path / "deploy").mkdir()
        (tmp_path / "deploy" / "t.sql").write_text("BEGIN;\n\\set ON_ERROR_STOP 1\nCOMMIT;\n")
        with pytest.raises(MigrationFileError, match=r"deploy/t.sql: line 2: psql meta-command \\set: premigrate sends"):
            sqitch.load_project(tmp_path)

    def test_pg_dump_guard_lines_pass_on_postgresql_only(self, tmp_path: Path) -> None:
        """A deploy script pasted from pg_dump keeps its \\restrict and \\unrestrict lines: sqitch's psql runs them,
        premigrate's splitter reads them as comments on PostgreSQL; elsewhere they stay refused meta-commands."""
        (tmp_path / "sqitch.plan").write_text(f"%project=p\n\nt {WHO}\n")
        (tmp_path / "deploy").mkdir()
        script = "\\restrict AbC123\nCREATE TABLE t (id int);\n\\unrestrict AbC123\n"
        (tmp_path / "deploy" / "t.sql").write_text(script)

        plan = sqitch.load_project(tmp_path, dialect="postgresql")

        assert script == plan.changes[0].deploy_sql
        for dialect in ("sqlite", "mysql", None):
            with pytest.raises(MigrationFileError, match=r"deploy/t.sql: line 1: psql meta-command \\restrict: "):
                sqitch.load_project(tmp_path, dialect=dialect)


# from sqitch: t/plan.t @bad_names, the tag-only bad names and the valid change and tag names
BAD_NAMES = ["^foo", "foo^", "foo^6", "foo^666", "%hi", "hi!", "foo@bar", "foo:bar", "foo\\bar", "+foo", "-foo",
             "@foo"]
GOOD_NAMES = ["foo", "12", "t", "6", "阱阪阬", "foo,bar", "beta1", "foo_", "_foo", "v1.0-1b", "v1.2-1", "v1.2+1",
              "v1.2_1"]


class TestNames:
    @pytest.mark.parametrize("name", BAD_NAMES)
    @pytest.mark.parametrize("prefix", ["+", "@"])
    def test_bad_names(self, name: str, prefix: str) -> None:
        with pytest.raises(MigrationFileError) as info:
            sqitch.parse_plan(f"%syntax-version=1.0.0\n%project=test\n\n{prefix}{name}", "baditem")
        assert info.value.fields["line"] == 4
        assert "Invalid name" in str(info.value)

    def test_slash_in_tag(self) -> None:
        with pytest.raises(MigrationFileError, match='line 4: Tag "foo/bar" contains illegal character /'):
            sqitch.parse_plan("%syntax-version=1.0.0\n%project=test\n\n@foo/bar 2012-07-16T17:25:07Z X <x@example.org>")

    @pytest.mark.parametrize("name", GOOD_NAMES)
    def test_good_change_and_tag_names(self, name: str) -> None:
        assert [c.name for c in sqitch.parse_plan(f"%project=foo\n\n{name} {WHO}").changes] == [name]
        plan = sqitch.parse_plan(f"%project=foo\n\nfoo {WHO}\n@{name} {WHO}")
        assert plan.changes[0].tags == (name,)


class TestMatchDeployed:
    def test_by_change_id(self, tmp_path: Path) -> None:
        """Deployed by id; an edited plan line (new id, same name) is reported; other projects are ignored."""
        (tmp_path / "sqitch.plan").write_text(f"%project=p\n\na {WHO}\nb {WHO}\nc {WHO}\n")
        (tmp_path / "deploy").mkdir()
        for name in "abc":
            (tmp_path / "deploy" / f"{name}.sql").write_bytes(f"create table {name} (id int);\r\n".encode())
        plan = sqitch.load_project(tmp_path)
        a, _b, c = plan.changes
        assert a.deploy_hash == hashlib.sha1(b"create table a (id int);\r\n").hexdigest()
        result = sqitch.match_deployed(plan, [
            sqitch.DeployedChange(a.id, "a", "p", a.deploy_hash),
            sqitch.DeployedChange("f" * 40, "b", "p"),
            sqitch.DeployedChange(c.id, "c", "other"),
            sqitch.DeployedChange("e" * 40, "gone", "p"),
        ])
        assert [x.name for x in result.deployed] == ["a"]
        assert [(x.name, r.change_id) for x, r in result.edited] == [("b", "f" * 40)]
        assert [x.name for x in result.pending] == ["c"]
        assert [r.name for r in result.only_in_registry] == ["gone"]

    def test_script_changed(self, tmp_path: Path) -> None:
        (tmp_path / "sqitch.plan").write_text(f"%project=p\n\na {WHO}\n")
        (tmp_path / "deploy").mkdir()
        (tmp_path / "deploy" / "a.sql").write_text("create table a (id int);\n")
        plan = sqitch.load_project(tmp_path)
        result = sqitch.match_deployed(plan, [sqitch.DeployedChange(plan.changes[0].id, "a", "p", "0" * 40)])
        assert [x.name for x in result.script_changed] == ["a"]


class TestChangeIdEdges:
    """The change id must be the one sqitch records, or `up --baseline-from sqitch` would not find a deployed change
    (nor any change after it: each id carries its parent's) and would deploy it again."""

    @staticmethod
    def _id(info: str) -> str:
        return hashlib.sha1(f"change {len(info.encode())}\0{info}".encode()).hexdigest()

    def test_note_trimmed_as_sqitch_trims_it(self) -> None:
        # Plan/Line.pm BUILDARGS: the note is trimmed (s/\A\s+//; s/\s+\z//) before it goes into the info.
        plan = sqitch.parse_plan(f"%project=p\n\na {WHO} # why  \t\n")
        info = "project p\nchange a\nplanner Barack Obama <potus@whitehouse.gov>\ndate 2012-07-16T17:25:07Z\n\nwhy"
        assert (plan.changes[0].note, plan.changes[0].id) == ("why", self._id(info))

    def test_note_of_blanks_is_no_note(self) -> None:
        plan = sqitch.parse_plan(f"%project=p\n\na {WHO} #   \n")
        info = "project p\nchange a\nplanner Barack Obama <potus@whitehouse.gov>\ndate 2012-07-16T17:25:07Z"
        assert plan.changes[0].id == self._id(info)

    def test_planner_name_kept_as_sqitch_reads_it(self) -> None:
        # Plan.pm $planner_re: (?<planner_name>[^<]+)[[:blank:]]+<...>: greedy, so with two blanks before "<" the
        # name keeps one; format_planner joins it and "<email>" with a blank (Plan/Change.pm), nothing trims it.
        plan = sqitch.parse_plan("%project=p\n\na 2012-07-16T17:25:07Z Barack Obama  <potus@whitehouse.gov>\n")
        info = "project p\nchange a\nplanner Barack Obama  <potus@whitehouse.gov>\ndate 2012-07-16T17:25:07Z"
        assert plan.changes[0].id == self._id(info)

    @pytest.mark.parametrize(("written", "canonical"), [
        ("https://github.com/sqitchers/sqitch/", "https://github.com/sqitchers/sqitch/"),
        ("HTTPS://GitHub.COM", "https://github.com/"),
        ("https://example.com:443/x", "https://example.com/x"),
        ("http://example.com:8080", "http://example.com:8080/"),
        ("https://example.com/a%7eb%2f", "https://example.com/a~b%2F"),
        ("urn:uuid:ABC", "urn:uuid:ABC"),
        ("https://[::1]:443", "https://[::1]/"),
    ])
    def test_uri_canonical_as_sqitch_writes_it(self, written: str, canonical: str) -> None:
        # Change.pm info: 'uri ' . $self->uri->canonical (the URI module's canonical form).
        plan = sqitch.parse_plan(f"%project=p\n%uri={written}\n\na {WHO}\n")
        info = (f"project p\nuri {canonical}\nchange a\nplanner Barack Obama <potus@whitehouse.gov>\n"
                "date 2012-07-16T17:25:07Z")
        assert plan.changes[0].id == self._id(info)
