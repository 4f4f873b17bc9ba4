"""Liquibase formatted SQL, read as Liquibase reads it.

Inputs marked "from Liquibase" are transcribed from liquibase/liquibase
liquibase-standard/src/test/groovy/liquibase/parser/core/formattedsql/FormattedSqlChangeLogParserTest.groovy
(VALID_CHANGELOG and the invalid-format cases) and from the checksum values in
liquibase-integration-tests/.../UpgradeChecksumVersionIntegrationTest.groovy and SQLFileChangeTest.groovy.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from premigrate.errors import MigrationFileError
from premigrate.model.formats import liquibase as lb

pytestmark = pytest.mark.unit

# from Liquibase: VALID_CHANGELOG (an excerpt)
VALID = """\
--liquibase formatted sql

--property name:idProp value:1
--property name:authorProp value:nvoxland
--property name:tableNameProp value:table1

--changeset ${authorProp}:${idProp}
select * from ${tableNameProp};


--changeset "n voxland":"change 2" (stripComments:false splitStatements:false endDelimiter:X runOnChange:true runAlways:true contextFilter:y dbms:mysql runInTransaction:false failOnError:false)
create table table1 (
    id int primary key
);

--rollback delete from table1;
--rollback drop table table1;

--ChangeSet nvoxland:3
create table table2 (
    id int primary key
);
create table table3 (
    id int primary key
);
--rollback drop table table2;

--ChangeSet alwyn:4
select (*) from table2;
--rollback not required

-- changeset mysql:1
-- comment: this is a comment
create table mysql_boo (
    id int primary key
);
-- rollback drop table mysql_boo;

-- changeset multicontext:1 contextFilter:first,second,third
select 1;

--changeset bboisvert:with_preconditions
--preconditions onFail:MARK_RAN onerror:HALT onUpdateSql:FAIL
--precondition-sql-check expectedResult:"0 table(s)" select count(*) || ' table(s)' from information_schema.tables where table_name = 'my_table'
--precondition-sql-check expectedresult:0 select count(*) from information_schema.columns where table_name = 'my_table' and column_name = 'id'
create table my_table (
    id int primary key
);
-- rollback drop table my_table;

--changeset complexContext:1 contextFilter:"a or b"
select 1
"""


def parse(text: str, file: str = "changelog.sql") -> list[lb.Changeset]:
    return lb.parse_formatted_sql(text, file)


def error_of(text: str) -> MigrationFileError:
    with pytest.raises(MigrationFileError) as info:
        parse(text)
    return info.value


class TestValidChangelog:
    def test_identities_in_file_order(self) -> None:
        """Author and id come from the --changeset line, quotes stripped and properties expanded."""
        changesets = parse(VALID)
        assert [(c.author, c.id) for c in changesets] == [
            ("nvoxland", "1"), ("n voxland", "change 2"), ("nvoxland", "3"), ("alwyn", "4"), ("mysql", "1"),
            ("multicontext", "1"), ("bboisvert", "with_preconditions"), ("complexContext", "1")]
        assert [c.order for c in changesets] == list(range(1, 9))
        assert changesets[0].identity == "nvoxland:1:changelog.sql"
        assert changesets[0].sql == "select * from table1;"

    def test_attributes(self) -> None:
        """Every attribute of Liquibase's own example changeset is read."""
        second = parse(VALID)[1]
        assert (second.strip_comments, second.split_statements, second.end_delimiter) == (False, False, "X")
        assert (second.run_on_change, second.run_always, second.run_in_transaction) == (True, True, False)
        assert second.fail_on_error is False
        assert second.context == "y"
        assert second.dbms == ("mysql",)
        assert second.statements == ("create table table1 (\n    id int primary key\n);",)
        assert second.rollback == ("delete from table1", "drop table table1")

    def test_defaults(self) -> None:
        """A bare changeset splits, strips comments, runs in a transaction and has no rollback."""
        third = parse(VALID)[2]
        assert (third.strip_comments, third.split_statements, third.run_in_transaction) == (True, True, True)
        assert third.fail_on_error is None and third.dbms == () and third.context is None
        assert third.statements == ("create table table2 (\n    id int primary key\n)",
                                    "create table table3 (\n    id int primary key\n)")

    def test_rollback_not_required_is_empty(self) -> None:
        assert parse(VALID)[3].rollback == ()

    def test_comment_line(self) -> None:
        """`-- comment: x` inside a changeset is its comment, not SQL."""
        mysql = parse(VALID)[4]
        assert mysql.comment == "this is a comment"
        assert "comment" not in mysql.sql

    def test_preconditions(self) -> None:
        """onFail/onError and each sql-check with its expected result, quoted or not."""
        pre = parse(VALID)[6].preconditions
        assert pre is not None
        assert (pre.on_fail, pre.on_error, pre.on_sql_output) == ("MARK_RAN", "HALT", "FAIL")
        assert [(c.kind, c.expected_result) for c in pre.checks] == [("sql-check", "0 table(s)"), ("sql-check", "0")]
        assert (pre.checks[1].sql or "").startswith("select count(*) from information_schema.columns")
        assert pre.checks[0].line == 44

    def test_quoted_context(self) -> None:
        assert parse(VALID)[7].context == "a or b"
        assert parse(VALID)[5].context == "first,second,third"


class TestChecksum:
    def test_changeset_checksum_matches_liquibase(self) -> None:
        """UpgradeChecksumVersionIntegrationTest: a changeset whose SQL is `select 1` is stored as 9:3b78b99..."""
        assert lb.checksum("select 1") == "9:3b78b9910981c62ca27148640fad7bc2"
        (changeset,) = parse("--liquibase formatted sql\n--changeset a:1\nselect 1\n")
        assert changeset.checksum == "9:3b78b9910981c62ca27148640fad7bc2"

    def test_whitespace_does_not_change_it(self) -> None:
        """Version 9 drops spaces, tabs and line ends before hashing: re-indenting is not drift."""
        a = parse("--liquibase formatted sql\n--changeset a:1\ncreate table t (id int);\n")[0]
        b = parse("--liquibase formatted sql\n--changeset a:1\ncreate  table t\r\n\t(id int);\n")[0]
        assert a.checksum == b.checksum

    def test_sql_comments_do_change_it(self) -> None:
        a = parse("--liquibase formatted sql\n--changeset a:1\ncreate table t (id int);\n")[0]
        b = parse("--liquibase formatted sql\n--changeset a:1\n/* new */ create table t (id int);\n")[0]
        assert a.checksum != b.checksum

    def test_inner_hash_matches_sqlfilechangetest(self) -> None:
        """SQLFileChangeTest: the change-level MD5 of Liquibase's procedure example."""
        text = ("CREATE OR REPLACE PROCEDURE testHello()\n                  LANGUAGE plpgsql\n                  AS $$\n"
                "        BEGIN\n                  raise notice 'value1';\n        END $$")
        assert hashlib.md5(text.encode().translate(None, b" \t\r\n")).hexdigest() == "8cfbd3e5970885470db17cd149feb637"

    def test_valid_checksum_lines(self) -> None:
        (c,) = parse("--liquibase formatted sql\n--changeset a:1\n--validCheckSum: 9:abc\n--validCheckSum: ANY\n"
                     "select 1\n")
        assert c.valid_checksums == ("9:abc", "ANY")
        assert c.checksum_is_valid("9:anything-else")


class TestSplitting:
    @pytest.mark.parametrize(("sql", "expected"), [
        pytest.param("a;b;", ["a", "b"], id="semicolons"),
        pytest.param("select 1\ngo\nselect 2", ["select 1", "select 2"], id="go-on-its-own-line"),
        pytest.param("select 1\n/\nselect 2", ["select 1", "select 2"], id="slash-on-its-own-line"),
        pytest.param("select 4 / 2; select 'a;b'", ["select 4 / 2", "select 'a;b'"], id="slash-and-string"),
        pytest.param("create procedure p begin select 1; select 2; end; select 3",
                     ["create procedure p begin select 1; select 2; end", "select 3"], id="begin-end"),
        pytest.param("begin transaction; select 1; commit", ["begin transaction", "select 1", "commit"],
                     id="begin-transaction-is-not-a-block"),
        pytest.param("select 1; -- a ; comment\nselect 2", ["select 1", "select 2"], id="comment-stripped"),
    ])
    def test_statements(self, sql: str, expected: list[str]) -> None:
        assert lb.split_statements(sql, strip_comments=True, split=True, end_delimiter=None) == expected

    def test_dollar_quoted_body_breaks_as_in_liquibase(self) -> None:
        """Liquibase's splitter does not know $$: the ; after END splits the function, as Liquibase does."""
        sql = "create function f() returns int as $$ begin return 1; end; $$ language plpgsql;"
        assert lb.split_statements(sql, strip_comments=True, split=True, end_delimiter=None) == [
            "create function f() returns int as $$ begin return 1; end", "$$ language plpgsql"]

    def test_end_delimiter(self) -> None:
        assert lb.split_statements("a; b//\nc//", strip_comments=True, split=True, end_delimiter="//") == [
            "a; b", "c"]

    def test_split_statements_false_keeps_one(self) -> None:
        assert lb.split_statements("a; b;", strip_comments=True, split=False, end_delimiter=None) == ["a; b;"]

    def test_strip_comments_false_keeps_them(self) -> None:
        assert lb.split_statements("/* x */ select 1;", strip_comments=False, split=True,
                                   end_delimiter=None) == ["/* x */ select 1"]


class TestRollback:
    def test_multi_line_block(self) -> None:
        """`/* liquibase rollback` ... `*/`: Liquibase joins the block's lines without a separator."""
        (c,) = parse("--liquibase formatted sql\n--changeset a:1\ncreate table t (id int);\n"
                     "/* liquibase rollback\ndrop table t;\ndrop table u;\n*/\n")
        assert c.rollback == ("drop table t", "drop table u")

    def test_unclosed_block(self) -> None:
        e = error_of("--liquibase formatted sql\n--changeset a:1\nselect 1;\n/* liquibase rollback\ndrop table t;\n")
        assert e.fields["line"] == 4 and "not closed" in str(e)

    def test_rollback_by_changeset_reference(self) -> None:
        (_first, second) = parse("--liquibase formatted sql\n--changeset a:1\ndrop table t;\n"
                                "--changeset a:2\ncreate table t (id int);\n"
                                "--rollback changesetId:1 changesetAuthor:a\n")
        assert second.rollback == ("drop table t",)

    def test_rollback_reference_to_unknown_changeset(self) -> None:
        e = error_of("--liquibase formatted sql\n--changeset a:2\ncreate table t (id int);\n"
                     "--rollback changesetId:9 changesetAuthor:a\n")
        assert e.fields["line"] == 4


class TestFilters:
    @pytest.mark.parametrize(("expression", "contexts", "expected"), [
        # from Liquibase ExpressionMatcherTest / ContextExpressionTest
        pytest.param("a", [], True, id="no-runtime-contexts-runs-everything"),
        pytest.param("a", ["a"], True, id="match"),
        pytest.param("a", ["b"], False, id="no-match"),
        pytest.param("!a", ["a"], False, id="not"),
        pytest.param("not a", ["b"], True, id="not-word"),
        pytest.param("a and b", ["a"], False, id="and"),
        pytest.param("a and b", ["a", "b"], True, id="and-both"),
        pytest.param("a or b", ["b"], True, id="or"),
        pytest.param("(a or b) and !c", ["b", "c"], False, id="parentheses"),
        pytest.param("(a or b) and !c", ["b"], True, id="parentheses-true"),
        pytest.param("first,second", ["second"], True, id="comma-is-or"),
        pytest.param("@a", [], False, id="required"),
    ])
    def test_context_expression(self, expression: str, contexts: list[str], expected: bool) -> None:
        assert lb.context_matches(expression, contexts) is expected

    def test_no_context_matches_any_run(self) -> None:
        assert lb.context_matches(None, ["prod"]) is True

    def test_labels(self) -> None:
        assert lb.label_filter_matches("a and !b", ["a"]) is True
        assert lb.label_filter_matches("a and !b", ["a", "b"]) is False
        assert lb.label_filter_matches(None, ["x"]) is True

    @pytest.mark.parametrize(("dbms", "database", "expected"), [
        pytest.param("postgresql", "postgresql", True, id="listed"),
        pytest.param("postgresql,sqlite", "mysql", False, id="not-listed"),
        pytest.param("!sqlite", "postgresql", True, id="negated-other"),
        pytest.param("!sqlite", "sqlite", False, id="negated"),
        pytest.param("mysql", "mariadb", False, id="mariadb-is-not-mysql-to-liquibase"),
        pytest.param("all", "sqlite", True, id="all"),
        pytest.param("none", "sqlite", False, id="none"),
    ])
    def test_dbms(self, dbms: str, database: str, expected: bool) -> None:
        (c,) = parse(f"--liquibase formatted sql\n--changeset a:1 dbms:{dbms}\nselect 1\n")
        assert c.runs_on(database) is expected


class TestErrors:
    @pytest.mark.parametrize(("text", "line", "words"), [
        # from Liquibase: the "Unexpected formatting" cases of FormattedSqlChangeLogParserTest
        pytest.param("--liquibase formatted sql\n--changeset a:1\nselect 1;\n-changeset a:2\nselect 2;\n", 4,
                     "--changeset <authorname>:<changesetId>", id="one-dash-changeset"),
        pytest.param("--liquibase formatted sql\n--changeset a: 1\nselect 1;\n", 2,
                     "--changeset <authorname>:<changesetId>", id="space-after-colon"),
        pytest.param("--liquibase formatted sql\n--changeset without-id\nselect 1;\n", 2,
                     "--changeset <authorname>:<changesetId>", id="no-id"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\nselect 1;\n-rollback drop table x;\n", 4,
                     "--rollback", id="one-dash-rollback"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\n-comment: x\nselect 1;\n", 3, "--comment",
                     id="one-dash-comment"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\n--comments: x\nselect 1;\n", 3, "--comment",
                     id="plural-comments"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\n-validCheckSum 9:x\nselect 1;\n", 3,
                     "--validCheckSum", id="one-dash-validchecksum"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\n-preconditions onFail:HALT\nselect 1;\n", 3,
                     "--preconditions", id="one-dash-preconditions"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\n-precondition-sql-check 0 select 1\nselect 1;\n",
                     3, "--precondition-sql-check", id="one-dash-precondition"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\n--precondition-column-exists table:t\nselect 1;\n",
                     3, "not supported", id="unsupported-precondition"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\n--precondition-sql-check\nselect 1;\n", 3,
                     "missing", id="empty-sql-check"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\n--precondition-table-exists schema:x\nselect 1;\n",
                     3, "table:<name>", id="table-exists-without-table"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\n--preconditions onFail:EXPLODE\nselect 1;\n", 3,
                     "onFail", id="bad-onfail"),
        pytest.param("--liquibase formatted sql\n-- comment: outside\n--changeset a:1\nselect 1;\n", 2,
                     "outside of changesets", id="comment-outside-changeset"),
        pytest.param("--liquibase formatted sql\n--property foo\n--changeset a:1\nselect 1;\n", 2, "--property",
                     id="bad-property"),
        pytest.param("--liquibase formatted sql\n--ignoreLines:stop\n--changeset a:1\nselect 1;\n", 2,
                     "ignoreLines", id="bad-ignorelines"),
        pytest.param("--liquibase formatted sql\n-ignoreLines:2\n", 2, "--ignoreLines", id="one-dash-ignorelines"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\n--changeset a:2\nselect 1;\n", 2, "no SQL",
                     id="empty-changeset"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\nselect 1;\n--changeset a:2\n", 4, "no SQL",
                     id="empty-last-changeset"),
        pytest.param("--liquibase formatted sql\n--changeset a:1\nselect 1;\n--include file:x.sql\n", 4,
                     "Liquibase Pro", id="pro-include"),
        pytest.param("select 1;\n", 1, "--liquibase formatted sql", id="no-header"),
    ])
    def test_error_names_the_line(self, text: str, line: int, words: str) -> None:
        error = error_of(text)
        assert error.fields["line"] == line
        assert f"line {line}:" in str(error)
        assert words in str(error)
        assert error.exit_code == 5


class TestLines:
    def test_ignore_lines_count_and_block(self) -> None:
        text = ("--liquibase formatted sql\n--changeset a:1\nselect 1;\n--ignoreLines:1\nselect 'skipped';\n"
                "--ignoreLines:start\nselect 'also skipped';\n--ignoreLines:end\nselect 2;\n")
        (c,) = parse(text)
        assert c.statements == ("select 1", "select 2")

    def test_header_logical_file_path(self) -> None:
        (c,) = parse("--liquibase formatted sql logicalFilePath:db/changes.sql\n--changeset a:1\nselect 1\n")
        assert c.path == "db/changes.sql"

    def test_changeset_logical_file_path_and_labels(self) -> None:
        (c,) = parse("--liquibase formatted sql\n--changeset a:1 logicalFilePath:x.sql labels:L1,l2 ignore:true\n"
                     "select 1\n")
        assert (c.path, c.labels, c.ignore) == ("x.sql", ("l1", "l2"), True)

    def test_table_and_view_exists(self) -> None:
        (c,) = parse("--liquibase formatted sql\n--changeset a:1\n--preconditions onFail:CONTINUE\n"
                     "--precondition-table-exists table:person schema:public\n--precondition-view-exists view:v\n"
                     "select 1\n")
        assert c.preconditions is not None
        assert [(p.kind, p.name, p.schema) for p in c.preconditions.checks] == [
            ("table-exists", "person", "public"), ("view-exists", "v", None)]

    def test_sql_first_line(self) -> None:
        (c,) = parse("--liquibase formatted sql\n\n--changeset a:1\n--comment: x\n\nselect 1\n")
        assert c.sql_first_line == 6


class TestMasterChangelog:
    def write(self, root: Path, files: dict[str, str]) -> None:
        for name, text in files.items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)

    def test_xml_include_and_include_all(self, tmp_path: Path) -> None:
        self.write(tmp_path, {
            "db/master.xml": '<?xml version="1.0"?>\n<databaseChangeLog xmlns="http://www.liquibase.org/xml/ns/'
                             'dbchangelog">\n  <include file="first.sql" relativeToChangelogFile="true"/>\n'
                             '  <includeAll path="db/more/"/>\n</databaseChangeLog>\n',
            "db/first.sql": "--liquibase formatted sql\n--changeset a:1\nselect 1\n",
            "db/more/b.sql": "--liquibase formatted sql\n--changeset a:3\nselect 3\n",
            "db/more/a.sql": "--liquibase formatted sql\n--changeset a:2\nselect 2\n",
        })
        changesets = lb.load_changelog(tmp_path, "db/master.xml")
        assert [(c.id, c.path) for c in changesets] == [("1", "db/first.sql"), ("2", "db/more/a.sql"),
                                                        ("3", "db/more/b.sql")]

    @pytest.mark.parametrize("relative", ["true", "false"])
    def test_a_leading_slash_stays_inside_the_folder(self, tmp_path: Path, relative: str) -> None:
        """Liquibase joins a relative path to the changelog's folder as a string ("<folder>/" + "/x", then "//"
        collapses: AbstractResource.resolveSiblingPath) and strips a leading '/' from one that is not: either way
        `/changesets/...` is read inside the folder (LucaVas/recruiter's master changelog)."""
        prefix = "" if relative == "true" else "db/"
        self.write(tmp_path, {
            "db/master.xml": f'<databaseChangeLog>\n  <include file="/{prefix}first.sql" '
                             f'relativeToChangelogFile="{relative}"/>\n  <includeAll path="/{prefix}changesets/" '
                             f'relativeToChangelogFile="{relative}"/>\n</databaseChangeLog>\n',
            "db/first.sql": "--liquibase formatted sql\n--changeset a:1\nselect 1\n",
            "db/changesets/a.sql": "--liquibase formatted sql\n--changeset a:2\nselect 2\n",
        })
        changesets = lb.load_changelog(tmp_path, "db/master.xml")
        assert [(c.id, c.path) for c in changesets] == [("1", "db/first.sql"), ("2", "db/changesets/a.sql")]

    @pytest.mark.parametrize("entry", ['<include file="../outside.sql" relativeToChangelogFile="true"/>',
                                       '<include file="../outside.sql"/>',
                                       '<includeAll path="../" relativeToChangelogFile="true"/>'])
    def test_a_path_outside_the_folder_is_refused(self, tmp_path: Path, entry: str) -> None:
        """Reaching out of the changelog folder is a changelog error naming the line, not a traceback."""
        (tmp_path / "outside.sql").write_text("--liquibase formatted sql\n--changeset a:9\nselect 9\n")
        root = tmp_path / "changelog"
        self.write(root, {"master.xml": f"<databaseChangeLog>\n  {entry}\n</databaseChangeLog>\n"})
        with pytest.raises(MigrationFileError, match="line 2: .*points outside the changelog folder"):
            lb.load_changelog(root, "master.xml")

    def test_yaml_master(self, tmp_path: Path) -> None:
        self.write(tmp_path, {
            "master.yaml": "databaseChangeLog:\n  - include:\n      file: one.sql\n",
            "one.sql": "--liquibase formatted sql\n--changeset a:1\nselect 1\n",
        })
        assert [c.id for c in lb.load_changelog(tmp_path, "master.yaml")] == ["1"]

    def test_other_change_type_refused_by_name(self, tmp_path: Path) -> None:
        self.write(tmp_path, {"master.xml": '<databaseChangeLog>\n  <changeSet id="1" author="a">\n'
                                            '    <createTable tableName="t"/>\n  </changeSet>\n</databaseChangeLog>\n'})
        with pytest.raises(MigrationFileError, match=r"line 2: change type <createTable>"):
            lb.load_changelog(tmp_path, "master.xml")

    def test_yaml_change_type_refused(self, tmp_path: Path) -> None:
        self.write(tmp_path, {"master.yaml": "databaseChangeLog:\n  - include:\n      file: a.sql\n"
                                             "  - changeSet:\n      id: 1\n      author: a\n      changes:\n"
                                             "        - addColumn:\n            tableName: t\n",
                              "a.sql": "--liquibase formatted sql\n--changeset a:1\nselect 1\n"})
        with pytest.raises(MigrationFileError, match=r"line 4: change type <addColumn>"):
            lb.load_changelog(tmp_path, "master.yaml")

    def test_folder_without_master_reads_in_name_order(self, tmp_path: Path) -> None:
        self.write(tmp_path, {"002.sql": "--liquibase formatted sql\n--changeset a:2\nselect 2\n",
                              "001.sql": "--liquibase formatted sql\n--changeset a:1\nselect 1\n"})
        assert [c.id for c in lb.load_changelog(tmp_path)] == ["1", "2"]

    def test_plain_sql_file_refused(self, tmp_path: Path) -> None:
        self.write(tmp_path, {"001.sql": "select 1;\n"})
        with pytest.raises(MigrationFileError, match="not a Liquibase formatted SQL changelog"):
            lb.load_changelog(tmp_path)

    def test_duplicate_identity_refused(self, tmp_path: Path) -> None:
        self.write(tmp_path, {"a.sql": "--liquibase formatted sql\n--changeset a:1 logicalFilePath:x\nselect 1\n",
                              "b.sql": "--liquibase formatted sql\n--changeset a:1 logicalFilePath:x\nselect 2\n"})
        with pytest.raises(MigrationFileError, match="b.sql: line 2: changeset a:1:x is declared twice"):
            lb.load_changelog(tmp_path)


class TestLiquibaseOwnCases:
    """More cases transcribed from FormattedSqlChangeLogParserTest, with the results Liquibase's test expects."""

    END_DELIMITER_CHANGELOG = """
--liquibase formatted sql

-- changeset abcd:1 runOnChange:true endDelimiter:/ rollbackEndDelimiter:;
CREATE OR REPLACE PROCEDURE any_procedure_name is
BEGIN
    DBMS_MVIEW.REFRESH('LEAD_INST_FOS_MV', method => '?', atomic_refresh => FALSE, out_of_place => true);
END reany_procedure_name;
/


grant /*Beware, this comment should not be seen as a delimiter! */
    execute on any_procedure_name to ANY_USER1
/
grant execute on any_procedure_name to ANY_USER2
/
grant execute on any_procedure_name to ANY_USER3
/
-- rollback drop PROCEDURE refresh_all_fos_permission_views/
"""

    def test_end_delimiter_slash(self) -> None:
        """parse_withEndDelimiter: four statements, the comment stripped, BEGIN ... END kept whole."""
        (c,) = lb.parse_formatted_sql(self.END_DELIMITER_CHANGELOG.lstrip("\n"), "asdf.sql")
        assert c.end_delimiter == "/"
        assert list(c.statements) == [
            ("CREATE OR REPLACE PROCEDURE any_procedure_name is\nBEGIN\n"
             "    DBMS_MVIEW.REFRESH('LEAD_INST_FOS_MV', method => '?', atomic_refresh => FALSE, out_of_place => true);\n"
             "END reany_procedure_name;"),
            "grant \n    execute on any_procedure_name to ANY_USER1",
            "grant execute on any_procedure_name to ANY_USER2",
            "grant execute on any_procedure_name to ANY_USER3",
        ]

    def test_trailing_slash_of_last_changeset(self) -> None:
        """"example file": the SQL keeps its final '/', which ends the last changeset's only statement."""
        (c,) = parse("--liquibase formatted sql\n--changeset John Doe:12345\nCREATE PROC TEST\nAnother Line\n"
                      "END MY PROC;\n/")
        assert (c.author, c.id, c.sql) == ("John Doe", "12345", "CREATE PROC TEST\nAnother Line\nEND MY PROC;\n/")
        assert c.end_delimiter == "\n/$"  # set for the last changeset of a file only (isNotEndDelimiter)
        assert c.statements == ("CREATE PROC TEST\nAnother Line\nEND MY PROC;",)

    def test_trailing_slash_of_earlier_changeset_splits_on_semicolons(self) -> None:
        first, _ = parse("--liquibase formatted sql\n--changeset a:1\nCREATE PROC P;\nEND;\n/\n--changeset a:2\n"
                         "select 1\n")
        assert first.end_delimiter is None
        assert first.statements == ("CREATE PROC P", "END")  # a "/" line is a delimiter of its own

    @pytest.mark.parametrize(("dbms", "expected"), [
        pytest.param("db2,db2i", ("db2", "db2i"), id="two"),
        pytest.param("db2, db2i", ("db2",), id="space-ends-the-list"),
        pytest.param("db2,", ("db2",), id="trailing-comma"),
        pytest.param(",db2,", (), id="leading-comma-is-no-list"),
    ])
    def test_multiple_dbms(self, dbms: str, expected: tuple[str, ...]) -> None:
        """parse_multipleDbms."""
        (c,) = parse(f"--liquibase formatted sql\n\n--changeset John Doe:12345 dbms:{dbms}\ncreate table test (id int);\n")
        assert c.dbms == expected

    def test_multi_line_rollback_in_between(self) -> None:
        """parse_MultiLineRollbackInBetween: --rollback lines, a /* liquibase rollback */ block, --rollback empty."""
        text = """--liquibase formatted sql

--changeset eK:12345 (stripComments:false splitStatements:false endDelimiter:X runOnChange:true runAlways:true context:y dbms:mysql runInTransaction:false failOnError:false)
create table table1 (
    id int primary key
);

--rollback delete from table1;
--rollback drop table table1;

--changeset eK:12346 (stripComments:false splitStatements:false endDelimiter:X runOnChange:true runAlways:true context:y dbms:mysql runInTransaction:false failOnError:false)
create table table2 (
    id int primary key
);

/* liquibase rollback
 delete from table2;
 drop table table2;
*/

--ChangeSet nvoxland:3
select (*) from table3;
--rollback empty"""
        first, second, third = parse(text)
        assert first.rollback == ("delete from table1", "drop table table1")
        assert second.rollback == ("delete from table2", "drop table table2")
        assert third.rollback == ()

    def test_multi_line_rollback_ending_on_code_line(self) -> None:
        (c,) = parse("--liquibase formatted sql\n--changeset eK:12345\ncreate table table1 (id int);\n"
                     "/* liquibase rollback\n delete from table1;\n drop table table1; */\n")
        assert c.rollback == ("delete from table1", "drop table table1")

    def test_changeset_with_no_sql(self) -> None:
        """changeSetWithNoSQLFound: comment and rollback lines only is an error."""
        text = ("--liquibase formatted sql\n\n--changeset bharath.javaji1:1-PPgrant labels:CDW-394266   "
                "contextFilter:PP\n--comment GMDR - Cleanup of Talend Metrics\n--rollback GRANT x;\n\n"
                "--changeset bharath.javaji1:1-PRODgrant labels:CDW-394266   contextFilter:PRD\n"
                "--comment GMDR - Cleanup of Talend Metrics\n--rollback GRANT y;\n")
        assert error_of(text).fields["line"] == 3

    def test_ignore_lines_end_with_one_dash(self) -> None:
        """parse_withWithIgnoreLinesEndOneDash."""
        text = ("--liquibase formatted sql\n\n--changeset erz:2-create-multiple-tables splitStatements:true "
                "endDelimiter:;\ncreate table b (ID int);\n--ignoreLines:start\nfoo\n-ignoreLines:end\n"
                "create table e (ID int);\n")
        error = error_of(text)
        assert error.fields["line"] == 7 and "--ignoreLines:end" in str(error)

    def test_id_made_of_colons_and_spaces(self) -> None:
        """INVALID_CHANGESET_ID: an id that is only colons and spaces is refused."""
        error = error_of("--liquibase formatted sql\n--changeset nvoxland:: ::sid\ncreate table t (id int);\n")
        assert error.fields["line"] == 2

    def test_id_starting_with_colon(self) -> None:
        """`--changeset nvoxland::4` has the id ':4', as in VALID_CHANGELOG."""
        (c,) = parse("--liquibase formatted sql\n--changeset nvoxland::4\ncreate table t (id int);\n")
        assert c.id == ":4"

    def test_all_caps(self) -> None:
        """parse_withAllCaps: the header and --CHANGESET are case-insensitive."""
        text = ("--LIQUIBASE FORMATTED SQL\n\n--CHANGESET SOME_USER:ALL_CAPS_SCRIPT_1\nCREATE TABLE A (ID INT)\n\n"
                "--CHANGESET SOME_USER:ALL_CAPS_SCRIPT_2\nCREATE TABLE B (ID INT)\n")
        assert [c.id for c in parse(text)] == ["ALL_CAPS_SCRIPT_1", "ALL_CAPS_SCRIPT_2"]

    def test_property_name_case_and_spaced_value(self) -> None:
        """VALID_CHANGELOG_WITH_LEAD_SPACES: `nAmE:` and `value: sqlplus`."""
        (c,) = parse("  --liquibase formatted sql\n\n--property nAmE:tableNameProp value:table1\n"
                     "--property name:runwith value: sqlplus\n\n--changeset a:1 runWith:${runwith}\n"
                     "select * from ${tableNameProp};\n")
        assert c.sql == "select * from table1;"


class TestMatchHistory:
    TEXT = ("--liquibase formatted sql\n--changeset a:1\nselect 1\n--changeset a:2 runOnChange:true\nselect 2\n"
            "--changeset a:3 runAlways:true\nselect 3\n--changeset a:4\n--validCheckSum: ANY\nselect 4\n"
            "--changeset a:5\nselect 5\n--changeset a:6\nselect 6\n")

    def row(self, change_id: str, md5: str | None, exectype: str = "EXECUTED", order: int = 1) -> lb.RanChangeset:
        return lb.RanChangeset(change_id, "a", "c.sql", exectype, md5, order)

    def test_each_outcome(self) -> None:
        """Ran, runOnChange re-run, runAlways, validCheckSum ANY, drift, a v8 sum, pending and only-in-history."""
        one, two, three, four, five, six = lb.parse_formatted_sql(self.TEXT, "c.sql")
        result = lb.match_history([one, two, three, four, five, six], [
            self.row("1", lb.checksum("select 1")),
            self.row("2", "9:old"), self.row("3", lb.checksum("select 3")), self.row("4", "9:whatever"),
            self.row("5", "9:edited"), self.row("6", "8:0a36c7b201a287dd3348e8dd19e44be7"),
            self.row("9", "9:x"),
        ])
        assert [c.id for c in result.ran] == ["1", "4"]
        assert [c.id for c in result.rerun] == ["2", "3"]
        assert [(c.id, s) for c, s in result.changed] == [("5", "9:edited")]
        assert [c.id for c, _ in result.unverifiable] == ["6"]
        assert [r.id for r in result.only_in_history] == ["9"]
        assert result.pending == []

    def test_failed_and_skipped_rows_are_pending(self) -> None:
        (one,) = lb.parse_formatted_sql("--liquibase formatted sql\n--changeset a:1\nselect 1\n", "c.sql")
        failed = lb.match_history([one], [self.row("1", None, "FAILED")])
        assert (failed.pending, [r.id for r in failed.failed]) == ([one], ["1"])
        assert lb.match_history([one], [self.row("1", None, "SKIPPED")]).pending == [one]

    def test_null_checksum_is_accepted(self) -> None:
        (one,) = lb.parse_formatted_sql("--liquibase formatted sql\n--changeset a:1\nselect 1\n", "c.sql")
        assert lb.match_history([one], [self.row("1", None, "MARK_RAN")]).ran == [one]


class TestDollarQuotes:
    def test_split_body_is_flagged(self) -> None:
        """Liquibase cuts a $$ body holding BEGIN ... END; the changeset says which statement it left open."""
        (c,) = parse("--liquibase formatted sql\n--changeset a:1\ncreate function f() returns int as $$\n"
                     "begin return 1; end;\n$$ language plpgsql;\n")
        assert c.broken_dollar_quote == 0

    @pytest.mark.parametrize("header", [
        pytest.param("--changeset a:1 splitStatements:false", id="not-split"),
        pytest.param("--changeset a:1 endDelimiter:GO", id="own-delimiter"),
    ])
    def test_whole_body_is_not_flagged(self, header: str) -> None:
        (c,) = parse(f"--liquibase formatted sql\n{header}\ncreate function f() returns int as $$\n"
                     "begin return 1; end;\n$$ language plpgsql;\n")
        assert c.broken_dollar_quote is None

    @pytest.mark.parametrize(("statement", "expected"), [
        pytest.param("select $$a;b$$", False, id="closed"),
        pytest.param("select $body$ x $$ y $body$", False, id="tagged"),
        pytest.param("select '$$'", False, id="in-string"),
        pytest.param("select $1, $2", False, id="parameters"),
        pytest.param("$$ language plpgsql", True, id="open"),
    ])
    def test_unclosed(self, statement: str, expected: bool) -> None:
        assert lb.unclosed_dollar_quote(statement) is expected


class TestRegexEndDelimiter:
    def test_multi_character_delimiter_is_a_regular_expression(self) -> None:
        """A multi-character endDelimiter is matched as a regular expression against the text before it, as
        StringUtil.isDelimiter does; public Oracle changelogs use `\\n\\s*/\\s*\\n|\\n\\s*/\\s*$` this way."""
        text = ("--liquibase formatted sql\n--changeSet dev:2 stripComments:false "
                "endDelimiter:\\n\\s*/\\s*\\n|\\n\\s*/\\s*$\nBEGIN\npkg.x('a');\nEND;\n/\nselect 1 from dual\n/\n")
        (c,) = parse(text)
        assert c.statements == ("BEGIN\npkg.x('a');\nEND;", "select 1 from dual")
