"""Valid SQL text runs: non-ASCII identifiers on every dialect, and the mysql client's DELIMITER command exactly as
the `mariadb` client reads it (the client itself is the reference: its -vvv echo shows each statement it sends)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from premigrate.model.sql import split_statements
from tests.e2e.helpers import cmd, up, write
from tests.support import TestDatabase

UNICODE = "CREATE TABLE café (größe int, ñandú int);\nINSERT INTO café (größe, ñandú) VALUES (7, 8);\n"

# Every kind of delimiter the client accepts; each block defines a procedure whose body holds `;` and ends with the
# delimiter glued to END, then a statement that holds the delimiter inside a string.
DELIMITERS = ["$$", "//", ";;", "#", "|", "@@", "END_OF_PROC", "%%%"]


def _delimiter_file(delimiter: str) -> str:
    return (
        "CREATE TABLE t (a int);\n"
        f"DELIMITER {delimiter}\n"
        "CREATE PROCEDURE p()\nBEGIN\n  INSERT INTO t VALUES (1);\n  INSERT INTO t VALUES (2);\n"
        f"END{delimiter}\n"
        f"INSERT INTO t VALUES (3 + 0 * LENGTH('x{delimiter}y')){delimiter}\n"
        "DELIMITER ;\n"
        "CALL p();\n"
    )


def _client_statements(db: TestDatabase, text: str) -> list[str]:
    """The statements the mariadb client sends for `text`, read from its -vvv echo."""
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client, "the mariadb client is needed as the reference for DELIMITER handling"
    parts = urlsplit(db.url)
    args = [client, "-vvv", "--batch", "-h", parts.hostname or "127.0.0.1", "-P", str(parts.port or 3306),
            "-u", unquote(parts.username or "root")]
    if parts.password:
        args.append(f"-p{unquote(parts.password)}")
    proc = subprocess.run([*args, db.name], input=text, capture_output=True, text=True, timeout=60, check=False)
    assert 0 == proc.returncode, proc.stderr
    return re.findall(r"^-{14}\n(.*?)\n-{14}\n", proc.stdout, flags=re.DOTALL | re.MULTILINE)


class TestNonAsciiIdentifiers:
    def test_up_and_plan(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Unquoted non-ASCII identifiers plan and apply on every dialect (exit 0, the row is there)."""
        write(migrations_dir, "001_unicode.sql", UNICODE)

        plan = cmd("plan", db, migrations_dir)
        result = up(db, migrations_dir)

        assert 7 == plan.returncode, plan.stderr  # 7: work is pending
        assert "CREATE TABLE café (größe int, ñandú int)" in plan.stdout
        assert "Traceback" not in plan.stderr + result.stderr
        assert 0 == result.returncode, result.stderr
        assert [(7, 8)] == [tuple(r) for r in db.query("SELECT größe, ñandú FROM café")]


class TestMysqlDelimiters:
    @pytest.mark.parametrize("dialect", ["mysql"])
    @pytest.mark.parametrize("delimiter", DELIMITERS)
    def test_statements_match_the_client(self, db: TestDatabase, delimiter: str) -> None:
        """premigrate splits a DELIMITER file into the very statements the mariadb client sends."""
        text = _delimiter_file(delimiter)

        expected = _client_statements(db, text)

        assert expected == [s.text for s in split_statements(text, "mysql")]

    @pytest.mark.parametrize("dialect", ["mysql"])
    @pytest.mark.parametrize("delimiter", ["$$", "//", ";;", "#", "END_OF_PROC"])
    def test_up_applies_like_the_client(self, db: TestDatabase, migrations_dir: Path, delimiter: str) -> None:
        """`up` applies a DELIMITER file (exit 0, recorded applied) and leaves the rows the client leaves."""
        write(migrations_dir, "001_proc.sql", _delimiter_file(delimiter))

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert ["applied"] == [r["state"] for r in db.history()]
        assert [1, 2, 3] == sorted(r[0] for r in db.query("SELECT a FROM t"))


# Executable comments alone on a line, as mariadb-dump writes them: MySQL's /*! ... */ and MariaDB's /*M! ... */.
EXECUTABLE_COMMENTS = ("/*!40101 SET NAMES utf8mb4 */;\n/*M!100616 SET NOTE_VERBOSITY=0 */;\n/* plain */;\n"
                       "-- then\n/*M!100000 CREATE TABLE m (id int) */;\nCREATE TABLE a (id int);\n")


class TestMysqlExecutableComments:
    @pytest.mark.parametrize("dialect", ["mysql"])
    def test_statements_match_the_client(self, db: TestDatabase) -> None:
        """A statement that is only an executable comment is sent, as the mariadb client sends it; a plain
        comment is not."""
        expected = _client_statements(db, EXECUTABLE_COMMENTS)

        assert expected == [s.text for s in split_statements(EXECUTABLE_COMMENTS, "mysql")]

    @pytest.mark.parametrize("dialect", ["mysql"])
    def test_up_runs_what_the_server_runs(self, db: TestDatabase, migrations_dir: Path) -> None:
        """MariaDB runs the text of /*M! ... */: the table it creates is there after `up`, as after the client."""
        write(migrations_dir, "001_dump.sql", EXECUTABLE_COMMENTS)

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert {"m", "a"} <= set(db.tables())
        assert ["applied"] == [r["state"] for r in db.history()]


# A schema with what a dump's statements carry: a function body with `;` and a backslash in a string, a view, an
# index, a comment; one row, for the dump with data.
SOURCE_SCHEMA = (
    "CREATE TABLE customer (id int PRIMARY KEY, name text NOT NULL DEFAULT E'a\\\\b');\n"
    "CREATE INDEX customer_name ON customer (name);\n"
    "CREATE VIEW customer_names AS SELECT name FROM customer;\n"
    "CREATE FUNCTION customer_count() RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN RETURN (SELECT count(*) FROM "
    "customer); END; $$;\n"
    "COMMENT ON TABLE customer IS 'who buys; and why';\n"
    "INSERT INTO customer VALUES (1, 'O''Brien');\n"
)


def _pg_dump(tmp_path: Path, *args: str) -> str:
    """What this machine's pg_dump writes for SOURCE_SCHEMA (run against a database of its own)."""
    source = TestDatabase.create("postgresql", tmp_path / "source")
    try:
        source.execute(SOURCE_SCHEMA)
        return subprocess.run(["pg_dump", "--no-owner", "--no-privileges", *args, "-d", source.url],
                              capture_output=True, text=True, check=True).stdout
    finally:
        source.drop()


class TestPsqlOnlyText:
    """A migration made by pg_dump: its \\restrict guard lines are no SQL and ask nothing of premigrate; its COPY ...
    FROM stdin takes the rows after it, as psql does; every other psql meta-command needs psql: refused before
    anything runs (exit 5)."""

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_a_pg_dump_schema_dump_applies(self, db: TestDatabase, migrations_dir: Path, tmp_path: Path) -> None:
        """pg_dump --schema-only output (this pg_dump writes \\restrict and \\unrestrict) as the baseline migration:
        applied, exit 0, the objects there; the plan shows no guard line."""
        dump = _pg_dump(tmp_path, "--schema-only")
        assert re.search(r"^\\restrict \w+$", dump, re.MULTILINE), "this pg_dump predates its \\restrict lines"
        write(migrations_dir, "001_baseline.sql", dump)

        plan = cmd("plan", db, migrations_dir)
        result = up(db, migrations_dir)

        assert 7 == plan.returncode, plan.stderr
        assert "restrict" not in plan.stdout
        assert 0 == result.returncode, result.stderr[-2000:]
        assert {"customer", "premigrate_history"} == db.tables()
        assert [(0,)] == db.query("SELECT customer_count()")

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_a_pg_dump_with_data_loads_its_rows(self, db: TestDatabase, migrations_dir: Path, tmp_path: Path) -> None:
        """A dump with data carries its rows after COPY ... FROM stdin: `up` loads them as psql does from the same
        file (exit 0, the same rows, counted for the COPY statement)."""
        dump = _pg_dump(tmp_path)
        assert re.search(r"^COPY public\.customer .* FROM stdin;$", dump, re.MULTILINE)
        write(migrations_dir, "001_dump.sql", dump)
        psql_db = TestDatabase.create("postgresql", tmp_path / "psql")
        try:
            subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", psql_db.url, "-f",
                            str(migrations_dir / "001_dump.sql")], check=True, capture_output=True, text=True)
            expected = psql_db.query("SELECT id, name FROM customer ORDER BY id")
        finally:
            psql_db.drop()

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr[-2000:]
        assert [(1, "O'Brien")] == expected == db.query("SELECT id, name FROM customer ORDER BY id")
        copy_at = next(i for i, s in enumerate(split_statements(dump, "postgresql")) if s.rows is not None)
        assert 1 == result.find("migration_applied")[0]["rows_affected_per_statement"][copy_at]

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_a_bad_row_fails_its_migration_at_the_copy(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A row the server refuses fails the migration (exit 4) naming the COPY statement and its line; the
        migration is rolled back whole, the one before it stays applied."""
        write(migrations_dir, "001_first.sql", "CREATE TABLE first (id int);\n")
        write(migrations_dir, "002_rows.sql", "CREATE TABLE t (id int);\n\nCOPY t (id) FROM stdin;\n1\nnot a number\n"
                                              "\\.\n")

        result = up(db, migrations_dir)

        assert 4 == result.returncode, result.stderr[-2000:]
        error = result.find("error")[0]
        assert error["error"].startswith("002_rows.sql: statement 2 of 2 (line 3) failed: [22P02] "), error["error"]
        assert "(row 2 of the COPY's data)" in error["error"]
        assert {"first", db.table} == db.tables()
        assert ["applied"] == [r["state"] for r in db.history()]

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_copy_rows_in_a_file_without_transaction(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Statement by statement with progress recorded (no transaction), the COPY's rows load too."""
        write(migrations_dir, "001_rows.sql", "-- premigrate:no-transaction\nCREATE TABLE t (id int, name text);\n"
                                              "COPY t FROM stdin;\n1\ta;b\n2\t\\N\n\\.\nCREATE INDEX t_id ON t (id);\n")

        plan = cmd("plan", db, migrations_dir)
        result = up(db, migrations_dir)

        assert "   COPY t FROM stdin\n   ;\n   -- and its data: the 2 lines after it in the file" in plan.stdout

        assert 0 == result.returncode, result.stderr[-2000:]
        assert [(1, "a;b"), (2, None)] == db.query("SELECT id, name FROM t ORDER BY id")
        assert [("applied", 3)] == [(r["state"], r["statements_done"]) for r in db.history()]

    @pytest.mark.parametrize("dialect", ["postgresql"])
    @pytest.mark.parametrize("meta", ["\\set ON_ERROR_STOP on", "\\connect other", "\\i more.sql"])
    def test_a_meta_command_is_refused_before_anything_runs(self, db: TestDatabase, migrations_dir: Path,
                                                             meta: str) -> None:
        write(migrations_dir, "001_first.sql", "CREATE TABLE first (id int);\n")
        write(migrations_dir, "002_meta.sql", f"CREATE TABLE second (id int);\n-- then\n{meta}\nSELECT 1;\n")

        result = up(db, migrations_dir)

        assert 5 == result.returncode, result.stderr[-2000:]
        error = result.find("error")[0]["error"]
        assert error.startswith(f"002_meta.sql: line 3: psql meta-command {meta.split()[0]}: ")
        assert set() == db.tables()
