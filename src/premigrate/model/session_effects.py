"""What a MySQL/MariaDB statement may do to its session, judged from its text: switch the current database, or
change the session's state. Cheap filters that err towards "may": the driver asks the server, or restores the
session, after a statement that may (drivers/mysql.py, drivers/mysql_session.py); a miss would let a migration's
state reach the next migration or premigrate's own writes."""

from __future__ import annotations

import re

from premigrate.lazy_re import LazyPattern


# What the server skips before a MySQL/MariaDB statement's first word: whitespace and comments. Not the executable
# comments /*! ... */ and MariaDB's /*M! ... */: the server runs their text, so they are the statement's code.
MYSQL_LEADING_COMMENTS = r"(?:\s+|--[^\n]*(?:\n|\Z)|#[^\n]*(?:\n|\Z)|/\*(?!M?!).*?\*/)*"

# MySQL/MariaDB: what can switch the session's current database where the check before the run (a leading USE,
# model/transactions.switches_database) cannot see it: USE inside a compound statement or a string, dynamic
# SQL (MariaDB's EXECUTE IMMEDIATE, and EXECUTE of a prepared statement, run USE built from any string), and CALL
# (on MariaDB a procedure's dynamic USE outlives the call).
_SWITCH_WORD = LazyPattern(r"\b(?:USE|EXECUTE|CALL)\b", re.I)


def may_switch_database(text: str, dialect: str) -> bool:
    """Whether the statement holds the word USE, EXECUTE or CALL anywhere: the session asks the server for the
    current database after it runs (drivers/mysql_session.database_changed). A cheap filter, so that other
    statements cost nothing."""
    return dialect == "mysql" and _SWITCH_WORD.search(text) is not None


# MySQL/MariaDB statements that leave the session as they found it: DDL that runs no code of the user's and
# touches no variable. Anything else (DML: a trigger may SET a variable; CREATE TABLE ... SELECT and views: a
# stored function may; temporary tables; executable comments) may change the session, and the next migration gets
# a restored one (drivers/mysql_session.restore_session). A filter that errs towards "may change".
_SESSION_NEUTRAL_FIRST = LazyPattern(MYSQL_LEADING_COMMENTS + r"(?:CREATE|ALTER|DROP|RENAME|TRUNCATE)\b", re.I | re.S)
_SESSION_WORDS = LazyPattern(r"\b(?:SELECT|TEMPORARY)\b|@|/\*M?!", re.I)


def may_change_session(text: str) -> bool:
    """Whether a MySQL statement may change its session's state (variables, temporary tables, prepared
    statements, the current database): False only for plain DDL."""
    return _SESSION_NEUTRAL_FIRST.match(text) is None or _SESSION_WORDS.search(text) is not None
