from __future__ import annotations

import re

import pytest

from premigrate.model.sql import SplitError, split_statements


def texts(sql: str, dialect: str) -> list[str]:
    return [s.text for s in split_statements(sql, dialect)]


class TestCommon:
    @pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
    def test_semicolons_in_strings_and_comments(self, dialect: str) -> None:
        """Semicolons inside strings, quoted identifiers and comments do not end a statement."""
        sql = "INSERT INTO t VALUES ('a;b', 'it''s;');\n-- a; comment\nSELECT \"x;y\" FROM t; /* c; */ SELECT 2"
        assert ["INSERT INTO t VALUES ('a;b', 'it''s;')", "SELECT \"x;y\" FROM t", "SELECT 2"] == texts(sql, dialect)

    @pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
    def test_last_statement_without_semicolon(self, dialect: str) -> None:
        """A last statement without a terminator is still a statement."""
        assert ["SELECT 1", "SELECT 2"] == texts("SELECT 1;\nSELECT 2\n", dialect)

    @pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
    @pytest.mark.parametrize("sql", ["", "  \n", "-- only a comment\n", "/* block */", ";;", "-- a\n;\n-- b"])
    def test_comment_only_is_empty(self, dialect: str, sql: str) -> None:
        """Empty and comment-only text yields zero statements."""
        assert [] == texts(sql, dialect)

    @pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
    def test_non_ascii_identifiers(self, dialect: str) -> None:
        """Unquoted identifiers made of non-ASCII letters split like any other word (no crash)."""
        sql = "CREATE TABLE café (größe int, ñandú_2 int);\nINSERT INTO café VALUES (1, 2);\nSELECT größe FROM café"
        assert ["CREATE TABLE café (größe int, ñandú_2 int)", "INSERT INTO café VALUES (1, 2)",
                "SELECT größe FROM café"] == texts(sql, dialect)

    def test_lines_are_file_lines(self) -> None:
        """Each statement knows the line its first token is on, offset by the part's first line."""
        sql = "-- header\n\nCREATE TABLE a (id int);\n\n  SELECT\n  1;"
        assert [3 + 9, 5 + 9] == [s.line for s in split_statements(sql, "postgresql", first_line=10)]


class TestPostgres:
    def test_dollar_quotes(self) -> None:
        """$$ and $tag$ bodies keep their semicolons."""
        sql = ("CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\n"
               "DO $body$ BEGIN PERFORM 1; END $body$;\nSELECT 1")
        assert 3 == len(texts(sql, "postgresql"))
        assert texts(sql, "postgresql")[1].startswith("DO $body$")

    def test_dollar_inside_identifier_is_not_a_quote(self) -> None:
        """A $ inside an identifier (a$b) or a parameter ($1) does not open a dollar quote."""
        assert ["SELECT a$b$ FROM t", "SELECT 2"] == texts("SELECT a$b$ FROM t; SELECT 2", "postgresql")

    def test_nested_block_comments(self) -> None:
        """PostgreSQL block comments nest."""
        assert ["SELECT 2"] == texts("/* outer /* inner; */ still comment; */ SELECT 2", "postgresql")

    def test_escape_strings(self) -> None:
        """E'' strings take backslash escapes; standard strings do not."""
        assert ["SELECT E'a\\';b'", "SELECT 'c\\'", "SELECT 3"] == texts(
            "SELECT E'a\\';b'; SELECT 'c\\'; SELECT 3", "postgresql")

    def test_begin_atomic(self) -> None:
        """SQL-standard function bodies (BEGIN ATOMIC ... END) are one statement, CASE ... END inside too."""
        sql = ("CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; "
               "SELECT CASE WHEN true THEN 1 END; END; SELECT 2")
        assert 2 == len(texts(sql, "postgresql"))

    def test_unterminated_dollar_quote(self) -> None:
        """An unterminated dollar quote is an error with its line."""
        with pytest.raises(SplitError) as info:
            split_statements("SELECT 1;\nSELECT $x$ abc", "postgresql")
        assert 2 == info.value.line


class TestPsqlOnlyText:
    """What only psql understands in a file: pg_dump's \\restrict guard lines are read as comments, any other
    meta-command and COPY ... TO STDOUT are refused with their line, COPY ... FROM stdin takes the rows after it
    (model/client_commands.py)."""

    def test_pg_dump_restrict_lines_are_comments(self) -> None:
        """The lines pg_dump 17.6 (16.10, 15.14, ...) writes around a plain dump leave the statements and their lines
        as they are."""
        dump = ("--\n-- PostgreSQL database dump\n--\n\n\\restrict KM4DCsAPBKSngNoCh2l\n\n-- Dumped from 17.6\n"
                "SET statement_timeout = 0;\nCREATE TABLE a (id int);\n\n--\n\n\\unrestrict KM4DCsAPBKSngNoCh2l\n\n")

        assert [("SET statement_timeout = 0", 8), ("CREATE TABLE a (id int)", 9)] == [
            (s.text, s.line) for s in split_statements(dump, "postgresql")]

    @pytest.mark.parametrize(("sql", "line", "command"), [
        ("SELECT 1;\n\\set ON_ERROR_STOP on\nSELECT 2;", 2, "\\set"),
        ("SELECT 1;\n-- next\n\\connect other\n", 3, "\\connect"),
        ("\\i other.sql\n", 1, "\\i"),
        ("SELECT 1 \\gset\n", 1, "\\gset"),
        ("SELECT 1\n\\restrict abc\n;", 2, "\\restrict"),  # inside a statement psql would still run it
    ])
    def test_meta_commands_are_refused_with_their_line(self, sql: str, line: int, command: str) -> None:
        with pytest.raises(SplitError, match=rf"^psql meta-command {re.escape(command)}: ") as info:
            split_statements(sql, "postgresql")
        assert line == info.value.line

    def test_backslashes_in_strings_and_comments_are_text(self) -> None:
        sql = "SELECT E'a\\\\b', 'c\\', $$ \\x $$, $t$ \\y $t$; /* \\z */ -- \\w\nSELECT 2"
        assert 2 == len(split_statements(sql, "postgresql"))

    def test_copy_from_stdin_takes_the_rows_after_it(self) -> None:
        """The rows run from the line after the COPY's `;` to a line `\\.`, whatever they hold (quotes, `;`,
        backslashes); the next statement's line is its line in the file; the rows count in the statement's digest."""
        sql = ("CREATE TABLE t (id int);\nCOPY public.t (id, name) FROM stdin;  -- the rows\n1\talice\n"
               "2\tO'Brien; \\N $$\n\\.\n\nCREATE INDEX i ON t (id);\nCOPY t FROM STDIN WITH (FORMAT csv);\n\\.\n")

        statements = split_statements(sql, "postgresql")

        assert [("CREATE TABLE t (id int)", 1, None),
                ("COPY public.t (id, name) FROM stdin", 2, "1\talice\n2\tO'Brien; \\N $$\n"),
                ("CREATE INDEX i ON t (id)", 7, None), ("COPY t FROM STDIN WITH (FORMAT csv)", 8, "")] == [
            (s.text, s.line, s.rows) for s in statements]
        other_rows = split_statements(sql.replace("alice", "bob"), "postgresql")[1]
        assert other_rows.text == statements[1].text and other_rows.digest != statements[1].digest

    @pytest.mark.parametrize(("sql", "line", "words"), [
        ("CREATE TABLE t (id int);\nCOPY t FROM stdin;\n1\n2\n", 2, "its rows are not ended by a line `\\.`"),
        ("SELECT 1;\n-- no terminator\ncopy t from STDIN\n1\n\\.\n", 3, "end the statement with `;`"),
        ("COPY t FROM stdin; SELECT 1;\n1\n\\.\n", 1, "end the statement with `;` and start the rows on the next"),
        ("COPY t FROM stdin", 1, "end the statement with `;`"),
        ("SELECT 1;\nCOPY (SELECT 1) TO\n  STDOUT WITH (FORMAT csv);", 2, "COPY ... TO STDOUT sends its rows to the"),
        ("SELECT 1;\nCOPY t TO STDOUT\n\\g out.txt\n", 2, "COPY ... TO STDOUT sends its rows to the"),
    ])
    def test_copy_with_the_client_that_cannot_run_is_refused_at_its_line(self, sql: str, line: int,
                                                                         words: str) -> None:
        with pytest.raises(SplitError, match=re.escape(words)) as info:
            split_statements(sql, "postgresql")
        assert line == info.value.line

    def test_copy_with_the_server_runs(self) -> None:
        """COPY from or to a server file or program stays a statement, whatever its strings and its query say."""
        sql = ("COPY t FROM '/srv/from stdin.csv'; COPY (SELECT * FROM stdin) TO '/x';\n"
               "COPY (SELECT 'a) FROM STDIN') TO PROGRAM 'gzip > /y'")
        assert 3 == len(split_statements(sql, "postgresql"))

    @pytest.mark.parametrize("dialect", ["mysql", "sqlite"])
    def test_other_dialects_keep_their_own_rules(self, dialect: str) -> None:
        """The psql rules are PostgreSQL's: elsewhere the text goes to the server as before."""
        assert ["\\restrict abc\nSELECT 1"] == texts("\\restrict abc\nSELECT 1;", dialect)


class TestMySQL:
    def test_delimiter_blocks(self) -> None:
        """DELIMITER changes the terminator for procedures and triggers, and is not sent to the server."""
        sql = ("DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END //\n"
               "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END//\nDELIMITER ;\nSELECT 3;")
        assert ["CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
                "CREATE TRIGGER t BEFORE INSERT ON x FOR EACH ROW BEGIN SET NEW.a = 1; END",
                "SELECT 3"] == texts(sql, "mysql")

    @pytest.mark.parametrize("delimiter", ["$$", "//", ";;", "#", "|", "END_OF_PROC", "@@@"])
    def test_delimiter_right_after_a_word(self, delimiter: str) -> None:
        """A delimiter glued to the word before it (`END$$`) ends the statement, as in the mariadb client."""
        sql = (f"DELIMITER {delimiter}\nCREATE PROCEDURE p() BEGIN SELECT 1; END{delimiter}\n"
               f"SELECT 'a{delimiter}b' AS x{delimiter}\nDELIMITER ;\nSELECT 3;")
        assert ["CREATE PROCEDURE p() BEGIN SELECT 1; END", f"SELECT 'a{delimiter}b' AS x", "SELECT 3"] == texts(
            sql, "mysql")

    def test_several_statements_before_one_delimiter(self) -> None:
        """The mysql client sends the text up to the delimiter as one query and the server runs each statement in it
        (a real project's `DROP PROCEDURE IF EXISTS p; CREATE ... END;$$`): split there, but never inside the
        program's BEGIN ... END, whose IF, CASE and loops close with END IF, END CASE, ..."""
        body = ("CREATE DEFINER=`root`@`localhost` PROCEDURE p()\nBEGIN\n  IF 1 THEN SELECT 1; END IF;\n"
                "  CASE WHEN 1 THEN SELECT 2; END CASE;\n  lbl: LOOP LEAVE lbl; END LOOP lbl;\n"
                "  SELECT CASE WHEN 1 THEN 2 END, IF(1, 2, 3);\nEND")
        sql = f"DELIMITER $$\n\nDROP PROCEDURE IF EXISTS `p`;\n{body};$$\n\nDELIMITER ;\nSELECT 3;"
        assert ["DROP PROCEDURE IF EXISTS `p`", body, "SELECT 3"] == texts(sql, "mysql")

    def test_delimiter_is_case_sensitive_and_found_inside_words(self) -> None:
        """The client matches its delimiter exactly, anywhere outside strings and comments: xEND_OF_PROC ends a
        statement, end_of_proc does not."""
        sql = "DELIMITER END_OF_PROC\nSELECT 1 AS xEND_OF_PROC\nSELECT 2 AS y end_of_proc\nSELECT 3 END_OF_PROC"
        assert ["SELECT 1 AS x", "SELECT 2 AS y end_of_proc\nSELECT 3"] == texts(sql, "mysql")

    def test_backslash_escapes_and_backticks(self) -> None:
        """Backslash escapes in strings and backtick identifiers are understood."""
        assert ["INSERT INTO `t;x` VALUES ('a\\';b')", "SELECT 2"] == texts(
            "INSERT INTO `t;x` VALUES ('a\\';b'); SELECT 2", "mysql")

    def test_hash_comments_and_dash_rule(self) -> None:
        """# starts a comment; -- does only before white space (1--1 is arithmetic)."""
        assert ["SELECT 1--1", "SELECT 2 -- x;"] == texts("# c;\nSELECT 1--1;\nSELECT 2 -- x;\n", "mysql")

    def test_executable_comments_are_statements(self) -> None:
        """A statement that is only an executable comment is code, as the server reads it: MySQL's /*! ... */ and
        MariaDB's /*M! ... */ (which MariaDB runs; mariadb-dump writes such lines). A plain comment is dropped."""
        sql = ("/*!40101 SET NAMES utf8 */;\n/*M!100616 SET NOTE_VERBOSITY=0 */;\n/* plain */;\n"
               "-- lead\n/*M!100000 SET @x = 1 */;\nCREATE TABLE a (id int);")
        assert ["/*!40101 SET NAMES utf8 */", "/*M!100616 SET NOTE_VERBOSITY=0 */", "/*M!100000 SET @x = 1 */",
                "CREATE TABLE a (id int)"] == texts(sql, "mysql")


class TestSQLite:
    def test_trigger_body(self) -> None:
        """A trigger's BEGIN ... END body is one statement (SQLite's own tokenizer decides)."""
        sql = ("CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); UPDATE c SET x = 1; END;\n"
               "CREATE TABLE d (id int);")
        assert 2 == len(texts(sql, "sqlite"))


class TestLinearSplitting:
    def test_lines_are_counted_once_not_from_the_top_per_statement(self) -> None:
        """Splitting n statements scans each character for newlines about once: counting from the top of the file
        for every statement made 100,000 statements take minutes."""
        from premigrate.model.sql import split_statements

        class Scanned(str):
            scanned = 0

            def count(self, sub: str, start: int | None = None, end: int | None = None) -> int:  # type: ignore[override]
                Scanned.scanned += (len(self) if end is None else end) - (start or 0)
                return str.count(self, sub, start, end)

        text = Scanned("".join(f"INSERT INTO t VALUES ({i});\n" for i in range(2000)))
        statements = split_statements(text, "postgresql")
        assert 2000 == len(statements) and 2000 == statements[-1].line
        assert Scanned.scanned <= 2 * len(text), Scanned.scanned


class TestTokens:
    def test_mysql_tokens_resolve_quoting_and_read_executable_comments(self) -> None:
        """MySQL: a "..." is a string, `...` a name, /*! ... */ is code and # a comment."""
        from premigrate.model.tokens import tokens

        sql = "ALTER TABLE `my``t` /*!50100 ADD c int */ DEFAULT \"a\\\"b\" # gone\n"
        assert [("word", "ALTER"), ("word", "TABLE"), ("name", "my`t"), ("word", "ADD"), ("word", "c"),
                ("word", "int"), ("word", "DEFAULT"), ("string", 'a"b')] == \
            [(t.kind, t.text) for t in tokens(sql, "mysql")]

    def test_sqlite_tokens_read_brackets_and_double_quotes_as_names(self) -> None:
        """SQLite: [...] and "..." are names, -- needs no space after it."""
        from premigrate.model.tokens import tokens

        assert [("word", "DROP"), ("name", "a b"), ("punct", "."), ("name", 'c"d')] == \
            [(t.kind, t.text) for t in tokens('DROP [a b]--x\n."c""d"', "sqlite")]
