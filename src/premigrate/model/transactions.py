"""What a migration's statements say about transactions: which ones open or end one at the top level of the file,
and which ones cannot run inside one.

Pure functions over split statements (statements.split_statements already keeps `$$` bodies, DO blocks, MySQL
DELIMITER blocks and trigger bodies in one piece, so a BEGIN inside them never reaches this module on its own).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from premigrate.model.session_effects import MYSQL_LEADING_COMMENTS
from premigrate.model.sql import Statement

BEGIN, COMMIT, ROLLBACK = "begin", "commit", "rollback"

_WORDS = re.compile(r"[A-Za-z_]+")
# Words that may follow BEGIN when it opens a transaction (PostgreSQL, MySQL, SQLite). `BEGIN NOT ATOMIC` (a MariaDB
# compound statement) and `BEGIN ATOMIC` are bodies, not transactions.
_BEGIN_NEXT = {"WORK", "TRANSACTION", "DEFERRED", "IMMEDIATE", "EXCLUSIVE", "ISOLATION", "READ", "DEFERRABLE"}
_CONCURRENT_INDEX = re.compile(
    r"\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>(?:\"(?:[^\"]|\"\")+\"|[A-Za-z_][\w$]*)(?:\.(?:\"(?:[^\"]|\"\")+\"|[A-Za-z_][\w$]*))?)\s+ON\b",
    re.I,
)

@dataclass(frozen=True)
class Incompatible:
    """A statement that cannot run inside a transaction (or silently does nothing in one) on `dialect`.

    `reason` completes "statement k (line n) ..." in the runner's refusal; lint's finding says "`what` `effect`".
    `pattern` is matched at the start of the statement's text (leading white space skipped). `words`: every
    statement the pattern matches contains one of `words` (in any case, no letter or _ just before it), so that a
    file without any needs no splitting to be cleared before a run (modes.StepShapes.cleared;
    tests/unit/test_modes_screen.py checks each entry's examples).
    """

    dialect: str
    pattern: re.Pattern[str]
    words: tuple[str, ...]
    reason: str
    what: str
    effect: str = "cannot run inside a transaction block"
    # True: the database accepts it in a transaction and ignores it there. Not refused (sqlx and golang-migrate
    # folders run `PRAGMA foreign_keys = OFF` inside their transaction, where SQLite treats it as a no-op); lint
    # warns about it instead (transaction-noop).
    noop: bool = False


_REINDEX_CONCURRENTLY = (  # in the option list (unless switched off) or after the object kind
    r"REINDEX\s*(?:\((?=[^)]*\bCONCURRENTLY\b(?!\s+(?:FALSE|OFF|0)\b))[^)]*\)\s*\w+|\s*(?:\([^)]*\)\s*)?\w+\s+"
    r"CONCURRENTLY)\b")

# The one catalogue: the runner refuses these in a file it would wrap in a transaction, and lint flags them.
OUTSIDE_TRANSACTION: tuple[Incompatible, ...] = (
    Incompatible("postgresql", re.compile(r"CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY\b", re.I), ("CONCURRENTLY",),
                 "builds or drops an index CONCURRENTLY", "CREATE INDEX CONCURRENTLY"),
    Incompatible("postgresql", re.compile(r"DROP\s+INDEX\s+CONCURRENTLY\b", re.I), ("CONCURRENTLY",),
                 "builds or drops an index CONCURRENTLY", "DROP INDEX CONCURRENTLY"),
    Incompatible("postgresql", re.compile(_REINDEX_CONCURRENTLY, re.I | re.S), ("REINDEX",),
                 "reindexes CONCURRENTLY", "REINDEX CONCURRENTLY"),
    Incompatible("postgresql", re.compile(r"REINDEX\s*(\([^)]*\)\s*)?(SYSTEM|DATABASE)\b", re.I), ("REINDEX",),
                 "reindexes a whole database or its system catalogs", "REINDEX DATABASE or SYSTEM"),
    Incompatible("postgresql", re.compile(r"VACUUM\b", re.I), ("VACUUM",),
                 "is VACUUM, ALTER SYSTEM, or creates or drops a database or tablespace", "VACUUM"),
    Incompatible("postgresql", re.compile(r"ALTER\s+SYSTEM\b", re.I), ("SYSTEM",),
                 "is VACUUM, ALTER SYSTEM, or creates or drops a database or tablespace", "ALTER SYSTEM"),
    Incompatible("postgresql", re.compile(r"(CREATE|DROP)\s+(DATABASE|TABLESPACE)\b", re.I),
                 ("DATABASE", "TABLESPACE"), "is VACUUM, ALTER SYSTEM, or creates or drops a database or tablespace",
                 "CREATE or DROP DATABASE or TABLESPACE"),
    Incompatible("postgresql", re.compile(r"ALTER\s+DATABASE\b[^;]*\bSET\s+TABLESPACE\b", re.I | re.S),
                 ("TABLESPACE",), "moves a database to another tablespace", "ALTER DATABASE ... SET TABLESPACE"),
    Incompatible("postgresql", re.compile(r"CLUSTER(\s+VERBOSE|\s*\([^)]*\))?\s*\Z", re.I), ("CLUSTER",),
                 "is CLUSTER of every table", "CLUSTER without a table name"),
    Incompatible("postgresql", re.compile(r"ALTER\s+TABLE\b[^;]*\bDETACH\s+PARTITION\b[^;]*\bCONCURRENTLY\b",
                                          re.I | re.S), ("CONCURRENTLY",),
                 "detaches a partition CONCURRENTLY", "DETACH PARTITION CONCURRENTLY"),
    Incompatible("postgresql", re.compile(r"(CREATE|DROP)\s+SUBSCRIPTION\b", re.I), ("SUBSCRIPTION",),
                 "creates or drops a subscription", "CREATE or DROP SUBSCRIPTION"),
    Incompatible("sqlite", re.compile(r"VACUUM\b", re.I), ("VACUUM",), "is VACUUM", "VACUUM"),
    # Setting them, not reading them: a read works anywhere.
    Incompatible("sqlite", re.compile(r"PRAGMA\s+(\w+\.)?foreign_keys\s*(=|\()", re.I), ("PRAGMA",),
                 "is a PRAGMA that does nothing inside a transaction", "PRAGMA foreign_keys",
                 "is silently ignored inside a transaction", noop=True),
    Incompatible("sqlite", re.compile(r"PRAGMA\s+(\w+\.)?journal_mode\s*(=|\()", re.I), ("PRAGMA",),
                 "is a PRAGMA that fails inside a transaction", "PRAGMA journal_mode",
                 "fails inside a transaction"),
)


def incompatible(text: str, dialect: str, *, noops: bool = False) -> Incompatible | None:
    """The catalogue entry `text` (one statement) matches on `dialect`, or None when it can run in a transaction.

    Entries that the database merely ignores inside a transaction count only with `noops` (lint asks for them; the
    runner, which refuses what it returns, does not)."""
    stripped = text.lstrip()
    for entry in OUTSIDE_TRANSACTION:
        if entry.dialect == dialect and (noops or not entry.noop) and entry.pattern.match(stripped):
            return entry
    return None


@dataclass(frozen=True)
class Block:
    """A transaction the file opens and ends itself: statements first..last (1-based, both included)."""

    first: int
    last: int
    ends_with: str  # commit | rollback


class TransactionSyntaxError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


# The first words of every statement control() answers for (modes.StepShapes.cleared: a file without any of them
# has no block of its own, balanced or not).
CONTROL_WORDS = ("BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT")


def control(statement: Statement) -> str | None:
    """begin / commit / rollback when the statement opens or ends a transaction, else None."""
    words = [w.upper() for w in _WORDS.findall(statement.text[:80])[:3]]
    if not words:
        return None
    first, rest = words[0], words[1:]
    if first == "BEGIN" and (not rest or rest[0] in _BEGIN_NEXT or rest[:2] == ["NOT", "DEFERRABLE"]):
        return BEGIN
    if first == "START" and rest[:1] == ["TRANSACTION"]:
        return BEGIN
    if first == "COMMIT" and rest[:1] != ["PREPARED"]:
        return COMMIT
    if first == "END" and (not rest or rest[0] in ("WORK", "TRANSACTION")):
        return COMMIT
    if first in ("ROLLBACK", "ABORT") and "TO" not in rest and rest[:1] != ["PREPARED"]:
        return ROLLBACK
    return None


def blocks(statements: Sequence[Statement]) -> list[Block]:
    """The file's own transaction blocks, checked for balance: a BEGIN needs its COMMIT/ROLLBACK and vice versa."""
    found: list[Block] = []
    opened: int | None = None
    for index, statement in enumerate(statements, 1):
        kind = control(statement)
        if kind == BEGIN:
            if opened is not None:
                raise TransactionSyntaxError(
                    f"statement {index} opens a transaction inside the one opened by statement {opened}",
                    statement.line)
            opened = index
        elif kind in (COMMIT, ROLLBACK):
            if opened is None:
                raise TransactionSyntaxError(
                    f"statement {index} ({statement.text.split()[0].upper()}) ends a transaction the file never "
                    "opened", statement.line)
            found.append(Block(opened, index, kind))
            opened = None
    if opened is not None:
        raise TransactionSyntaxError(f"statement {opened} opens a transaction that the file never commits",
                                     statements[opened - 1].line)
    return found


def outside_transaction_only(statement: Statement, dialect: str) -> str | None:
    """Why the statement cannot run inside a transaction on `dialect`, or None when it can."""
    entry = incompatible(statement.text, dialect)
    return entry.reason if entry is not None else None


def concurrent_index_name(statement: Statement) -> str | None:
    """The index a `CREATE INDEX CONCURRENTLY name ON ...` builds, as written (quoted parts kept)."""
    match = _CONCURRENT_INDEX.match(statement.text)
    return match.group("name") if match else None


# MySQL/MariaDB `USE db` switches the session's current database: every later unqualified name of the migration
# (and of the migrations after it) would land in another database. Leading comments are skipped as the server does;
# a USE inside an executable comment (/*!USE db*/, /*M!100000 USE db */) is one the server runs.
_LEADING_USE = re.compile(MYSQL_LEADING_COMMENTS + r"(?:/\*M?!\d*\s*)?USE\b", re.I | re.S)


def switches_database(statement: Statement, dialect: str) -> bool:
    """Whether the statement is a MySQL `USE`: refused before anything runs."""
    return dialect == "mysql" and _LEADING_USE.match(statement.text) is not None
