"""The MySQL statement filters of model/session_effects.py: which statements may switch the current database (the server is
asked after them) and which may change the session's state (the session is restored before the next migration).
Both err towards "may": a miss would let a migration's state reach the next one or premigrate's own writes."""

from __future__ import annotations

import pytest

from premigrate.model.session_effects import may_change_session, may_switch_database
from premigrate.model.sql import Statement
from premigrate.model.transactions import switches_database


@pytest.mark.parametrize("text", [
    "USE other", "EXECUTE IMMEDIATE CONCAT('US', 'E other')", "execute s", "CALL switcher()",
    "BEGIN NOT ATOMIC USE other; END", "CREATE TABLE t (note text DEFAULT 'use')",
])
def test_may_switch_database(text: str) -> None:
    assert may_switch_database(text, "mysql")
    assert not may_switch_database(text, "postgresql")


@pytest.mark.parametrize("text", [
    "CREATE TABLE a (id int)", "CREATE INDEX a_id ON a (id)", "ALTER TABLE a ADD COLUMN b int",
    "DROP TABLE a", "RENAME TABLE a TO b", "TRUNCATE TABLE a", "INSERT INTO executed VALUES (1)",
])
def test_statements_that_cannot_switch_the_database(text: str) -> None:
    assert not may_switch_database(text, "mysql")


@pytest.mark.parametrize("text", [
    "CREATE TABLE a (id int)", "create index a_id on a (id)", "ALTER TABLE a ADD COLUMN b int DEFAULT 0",
    "DROP TABLE IF EXISTS a", "RENAME TABLE a TO b", "TRUNCATE a",
    "-- a comment\nCREATE TABLE a (id int)", "# a comment\n/* another */ ALTER TABLE a DROP COLUMN b",
])
def test_plain_ddl_leaves_the_session_alone(text: str) -> None:
    assert not may_change_session(text)


@pytest.mark.parametrize("text", [
    "SET SESSION sql_mode = 'ANSI_QUOTES'", "SET @x = 1", "INSERT INTO a VALUES (1)", "UPDATE a SET b = 1",
    "CREATE TEMPORARY TABLE tmp (id int)", "CREATE TABLE b AS SELECT f() AS v", "CREATE VIEW v AS SELECT 1",
    "CREATE TABLE b (id int) /*!50100 COMMENT 'x' */", "/*!40101 SET @saved = @@character_set_client */",
    "/*M!100101 SET sql_mode = '' */", "/*!40101 CREATE TABLE a (id int) */", "PREPARE s FROM @q",
    "START TRANSACTION", "LOCK TABLES a WRITE", "CALL p()", "SELECT @x := 1", "DO RELEASE_LOCK('x')",
    "ALTER TABLE a ADD COLUMN b int DEFAULT @x",
])
def test_anything_else_may_change_the_session(text: str) -> None:
    assert may_change_session(text)


@pytest.mark.parametrize("text", [
    "USE other", "use other", "-- first\nUSE other", "# first\n/* then */ USE other",
    "/*!USE other*/", "/*!50001 USE other */", "/*M!100000 USE other */", "/* plain */ /*M!USE other*/",
])
def test_a_leading_use_is_refused_before_the_run(text: str) -> None:
    """What the server runs as USE, leading comments skipped as it skips them: executable comments are code."""
    assert switches_database(Statement(text, 1), "mysql")
    assert not switches_database(Statement(text, 1), "postgresql")


@pytest.mark.parametrize("text", [
    "CREATE TABLE users (id int)", "/* USE other */ CREATE TABLE a (id int)", "-- USE other\nCREATE TABLE a (id int)",
    "/*!40101 SET NAMES utf8 */", "/*M!100000 SET @x = 1 */", "INSERT INTO a VALUES ('USE other')",
    "BEGIN NOT ATOMIC USE other; END", "USER_DEFINED()",
])
def test_statements_that_are_no_leading_use(text: str) -> None:
    """A USE in a plain comment or later in the statement is not a leading one (the check after each statement,
    may_switch_database, is what sees those)."""
    assert not switches_database(Statement(text, 1), "mysql")
