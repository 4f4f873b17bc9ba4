"""StepShapes.cleared: the checks before a run pass a file without splitting it only when splitting it could neither
fail nor find anything those checks refuse (model/modes.py). Every refusal must still come before anything runs."""

from __future__ import annotations

import re

import pytest

from premigrate.errors import MigrationFileError, ValidationFailed
from premigrate.model import transactions
from premigrate.model.migrations import Migration
from premigrate.model.modes import StepShapes, refuse_database_switch, refuse_transaction_incompatible
from premigrate.model.planner import Reason, Step

# For every catalogue entry (by its `what`), statements it matches, in the spellings a folder may hold.
EXAMPLES = {
    "CREATE INDEX CONCURRENTLY": ["CREATE INDEX CONCURRENTLY i ON t (a)", "create unique index\nconcurrently i on t(a)"],
    "DROP INDEX CONCURRENTLY": ["DROP INDEX CONCURRENTLY IF EXISTS i"],
    "REINDEX CONCURRENTLY": ["REINDEX TABLE CONCURRENTLY t", "reindex (concurrently) index i",
                             "REINDEX (VERBOSE, CONCURRENTLY) TABLE t"],
    "REINDEX DATABASE or SYSTEM": ["REINDEX DATABASE app", "reindex (verbose) system app"],
    "VACUUM": ["VACUUM", "vacuum (analyze) t"],
    "ALTER SYSTEM": ["ALTER SYSTEM SET work_mem = '64MB'"],
    "CREATE or DROP DATABASE or TABLESPACE": ["CREATE DATABASE other", "drop tablespace fast",
                                              "CREATE TABLESPACE t LOCATION '/x'"],
    "ALTER DATABASE ... SET TABLESPACE": ["ALTER DATABASE app SET TABLESPACE fast"],
    "CLUSTER without a table name": ["CLUSTER", "cluster verbose", "CLUSTER (VERBOSE)"],
    "DETACH PARTITION CONCURRENTLY": ["ALTER TABLE m DETACH PARTITION m_2020 CONCURRENTLY"],
    "CREATE or DROP SUBSCRIPTION": ["CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p", "drop subscription s"],
    "PRAGMA foreign_keys": ["PRAGMA foreign_keys = OFF", "pragma main.foreign_keys(0)"],
    "PRAGMA journal_mode": ["PRAGMA journal_mode = WAL"],
}


def _migration(sql: str, *, format: str = "plain") -> Migration:
    return Migration(kind="versioned", version=None, description="x", script="1_x.sql", up_sql=sql, up_first_line=1,
                     checksum="c", format=format)


def _step(sql: str, **kwargs: str) -> Step:
    return Step(_migration(sql, **kwargs), Reason.PENDING)


def test_every_entry_has_examples() -> None:
    assert {e.what for e in transactions.OUTSIDE_TRANSACTION} == set(EXAMPLES)


@pytest.mark.parametrize("entry", transactions.OUTSIDE_TRANSACTION, ids=lambda e: f"{e.dialect}-{e.what}")
def test_what_an_entry_matches_holds_one_of_its_words(entry: transactions.Incompatible) -> None:
    """Each example is matched by its entry (so the examples are real), holds one of the entry's words, and a file of
    it is never cleared unsplit, with statements before it or not."""
    for statement in EXAMPLES[entry.what]:
        assert entry is transactions.incompatible(statement, entry.dialect, noops=True), statement
        assert any(re.search(rf"(?<![A-Za-z_]){word}", statement, re.I) for word in entry.words), statement
        if not entry.noop:
            shapes = StepShapes(entry.dialect, transactional_ddl=True)
            assert not shapes.cleared(_migration(f"CREATE TABLE a (id int);\n{statement};\n")), statement


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
def test_an_ordinary_file_is_cleared_without_a_split(dialect: str) -> None:
    """The checks pass a file of ordinary DDL without splitting it: it is split when it runs."""
    shapes = StepShapes(dialect, transactional_ddl=dialect != "mysql")
    step = _step("CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, at TIMESTAMP NOT NULL DEFAULT "
                 "CURRENT_TIMESTAMP);\nCREATE INDEX t_name ON t (name);\n-- a note; with a semicolon\n")
    refuse_transaction_incompatible(shapes, [step], single_transaction=False)
    refuse_database_switch(shapes, [step])
    assert shapes.known_statements(step.migration) is None
    assert 2 == len(shapes.statements(step.migration))


@pytest.mark.parametrize(("dialect", "sql", "fmt"), [
    pytest.param("postgresql", "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql;", "plain", id="dollar"),
    pytest.param("postgresql", "\\set x 1\nCREATE TABLE t (id int);", "plain", id="backslash"),
    pytest.param("postgresql", "copy t from stdin;\n1\n\\.\n", "plain", id="copy"),
    pytest.param("mysql", "CREATE TABLE a (id int);\n/*!USE other*/;", "plain", id="mysql-use-in-a-comment"),
    pytest.param("mysql", "CREATE TABLE a (id int);\n/*!50001USE other*/;", "plain", id="mysql-use-after-a-version"),
    pytest.param("postgresql", "REINDEXSYSTEM app;", "plain", id="catalogue-word-run-on"),
    pytest.param("postgresql", "CREATE TABLE a (id int);\n1BEGIN;", "plain", id="control-word-after-a-digit"),
    pytest.param("postgresql", "CREATE TABLE t (id int);", "goose", id="own-splitter"),
])
def test_what_the_splitter_may_fail_on_is_split_before_the_run(dialect: str, sql: str, fmt: str) -> None:
    shapes = StepShapes(dialect, transactional_ddl=dialect != "mysql")
    assert not shapes.cleared(_migration(sql, format=fmt))


def test_a_file_that_cannot_be_split_is_still_refused_before_the_run() -> None:
    """An unterminated dollar quote after two ordinary files: exit 5 from the checks, naming the file's line."""
    shapes = StepShapes("postgresql", transactional_ddl=True)
    steps = [_step("CREATE TABLE a (id int);"), _step("CREATE TABLE b (id int);"),
             _step("CREATE TABLE c (id int);\nCREATE FUNCTION f() RETURNS int AS $body$ SELECT 1;\n")]
    with pytest.raises(ValidationFailed, match=r"1_x.sql: line 2: unterminated dollar-quoted string \$body\$"):
        refuse_transaction_incompatible(shapes, steps, single_transaction=False)


@pytest.mark.parametrize("single", [False, True])
def test_an_incompatible_statement_is_still_refused(single: bool) -> None:
    shapes = StepShapes("postgresql", transactional_ddl=True)
    steps = [_step("CREATE TABLE a (id int);"), _step("CREATE TABLE b (id int);\ncreate index concurrently i on b (id);")]
    with pytest.raises(MigrationFileError, match="statement 2 .line 2. builds or drops an index CONCURRENTLY"):
        refuse_transaction_incompatible(shapes, steps, single_transaction=single)


@pytest.mark.parametrize("sql", ["BEGIN;\nCREATE TABLE a (id int);\n", "CREATE TABLE a (id int);\ncommit;\n",
                                 "start transaction;\nCREATE TABLE a (id int);\nEND;\n", "ROLLBACK;", "abort;"])
def test_a_file_with_a_transaction_of_its_own_is_split_before_the_run(sql: str) -> None:
    """BEGIN/COMMIT in the file decide its mode, and an unbalanced block is refused before anything runs."""
    shapes = StepShapes("postgresql", transactional_ddl=True)
    assert not shapes.cleared(_migration(sql))
    words = {w.upper() for w in re.findall(r"[A-Za-z]+", sql)}
    assert words & set(transactions.CONTROL_WORDS)


def test_an_unbalanced_block_is_still_refused_before_the_run() -> None:
    shapes = StepShapes("postgresql", transactional_ddl=True)
    with pytest.raises(MigrationFileError, match="opens a transaction that the file never commits"):
        refuse_transaction_incompatible(shapes, [_step("CREATE TABLE a (id int);"), _step("BEGIN;\nCREATE TABLE b (id int);")],
                                        single_transaction=False)


def test_control_words_are_the_first_words_control_answers_for() -> None:
    """control() answers only for a statement whose first word is one of CONTROL_WORDS."""
    from premigrate.model.sql import Statement

    answered = {text.split()[0].upper() for text in ["BEGIN", "begin work", "START TRANSACTION", "COMMIT", "END",
                                                     "end transaction", "ROLLBACK", "ABORT"]
                if transactions.control(Statement(text, 1)) is not None}
    assert answered == set(transactions.CONTROL_WORDS)
    assert transactions.control(Statement("CREATE TABLE a (id int)", 1)) is None


def test_a_word_inside_another_is_no_reason_to_split() -> None:
    shapes = StepShapes("mysql", transactional_ddl=False)
    assert shapes.cleared(_migration("CREATE TABLE users (id int, used int, filesystem_id int);"))
    assert StepShapes("postgresql", transactional_ddl=True).cleared(
        _migration("CREATE TABLE runs (started_at timestamp, ended_at timestamp, backend text);"))


def test_a_versioned_use_is_refused_before_the_run_on_mysql() -> None:
    """/*!50001USE other*/ is a USE the server runs: refused, the file split for it."""
    shapes = StepShapes("mysql", transactional_ddl=False)
    with pytest.raises(MigrationFileError, match="switches the current database"):
        refuse_database_switch(shapes, [_step("CREATE TABLE a (id int);\n/*!50001USE other*/;")])


def test_a_use_is_still_refused_on_mysql() -> None:
    shapes = StepShapes("mysql", transactional_ddl=False)
    with pytest.raises(MigrationFileError, match="switches the current database"):
        refuse_database_switch(shapes, [_step("CREATE TABLE a (id int);\nUSE other;\nCREATE TABLE b (id int);")])


def test_single_transaction_splits_every_file() -> None:
    """--single-transaction asks each file's blocks (a file with its own BEGIN cannot join the one transaction)."""
    shapes = StepShapes("postgresql", transactional_ddl=True)
    step = _step("CREATE TABLE a (id int);")
    refuse_transaction_incompatible(shapes, [step], single_transaction=True)
    assert shapes.known_statements(step.migration) is not None


def _pattern_only(dialect: str, sql: str) -> bool:
    from premigrate.model import modes

    StepShapes(dialect, transactional_ddl=True).cleared(_migration("SELECT 1;"))  # builds the dialect's screen
    return modes._SCREENS[dialect][0].search(sql) is None


_SAMPLES = [
    "CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);",
    "CREATE TABLE runs (started_at timestamp, ended_at timestamp, backend text, appended int);",  # END, START inside
    "ALTER TABLE t ADD COLUMN system_id int;", "UPDATE t SET x = 'Database';", "-- VACUUM later\nSELECT 1;",
    "create index concurrently i on t (a);", "begin;\ncreate table a (id int);\ncommit;",
    "CREATE TABLE a (id int);\n/*!50001USE other*/;", "INSERT INTO t VALUES ('$1');", "COPYRIGHT 2026",
    "ROLLBAC\u212a;",  # the Kelvin sign: IGNORECASE folds it to k, str.upper() leaves it
    "CREATE TABLE caf\u00e9 (id int);", "REINDEXSYSTEM app;", "CREATE TABLE users (id int);\nuse other;",
]


@pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
@pytest.mark.parametrize("sql", _SAMPLES)
def test_the_word_search_agrees_with_the_pattern(dialect: str, sql: str) -> None:
    """cleared() looks for the screen's words as substrings of the upper-cased text before it runs the pattern: it
    must answer exactly as the pattern alone does, on words inside others, in any case, and on non-ASCII text."""
    shapes = StepShapes(dialect, transactional_ddl=dialect != "mysql")
    assert _pattern_only(dialect, sql) == shapes.cleared(_migration(sql))


def test_a_kelvin_sign_is_not_cleared_on_the_word_search() -> None:
    """The pattern (IGNORECASE) reads ROLLBAC<Kelvin sign> as ROLLBACK: the word search must not clear it."""
    assert not StepShapes("postgresql", transactional_ddl=True).cleared(_migration("ROLLBAC\u212a;"))


def test_an_ascii_file_without_the_words_never_runs_the_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pattern tries every alternative at every position (most of the checks' time for 1,000 small files): an
    ASCII file that holds none of its words is cleared on the word search alone."""
    from premigrate.model import modes

    shapes = StepShapes("postgresql", transactional_ddl=True)
    shapes.cleared(_migration("SELECT 1;"))

    class Refusing:
        def search(self, text: str) -> None:
            raise AssertionError(f"the pattern ran on {text!r}")

    pattern, words = modes._SCREENS["postgresql"]
    monkeypatch.setitem(modes._SCREENS, "postgresql", (Refusing(), words))
    assert shapes.cleared(_migration("CREATE TABLE t (id int, name text);\nCREATE INDEX i ON t (name);"))
    with pytest.raises(AssertionError, match="the pattern ran"):
        shapes.cleared(_migration("CREATE TABLE caf\u00e9 (id int);"))
