"""What a migration's statements say about transactions: which ones open or end one at the top level of the file,
and which ones cannot run inside one.

Pure functions over split statements (statements.split_statements already keeps `$$` bodies, DO blocks, MySQL
DELIMITER blocks and trigger bodies in one piece, so a BEGIN inside them never reaches this module on its own).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

# (dialect, leading words) -> why it cannot run inside a transaction
_OUTSIDE_ONLY: list[tuple[str, re.Pattern[str], str]] = [
    ("postgresql", re.compile(r"(CREATE\s+(UNIQUE\s+)?|DROP\s+)INDEX\s+CONCURRENTLY\b", re.I),
     "builds or drops an index CONCURRENTLY"),
    ("postgresql", re.compile(r"REINDEX\b[^;]*\bCONCURRENTLY\b", re.I | re.S), "reindexes CONCURRENTLY"),
    ("postgresql", re.compile(r"(VACUUM|ALTER\s+SYSTEM|(CREATE|DROP)\s+(DATABASE|TABLESPACE))\b", re.I),
     "is VACUUM, ALTER SYSTEM, or creates or drops a database or tablespace"),
    ("postgresql", re.compile(r"ALTER\s+DATABASE\b[^;]*\bSET\s+TABLESPACE\b", re.I | re.S),
     "moves a database to another tablespace"),
    ("postgresql", re.compile(r"CLUSTER\s*\Z", re.I), "is CLUSTER of every table"),
    ("postgresql", re.compile(r"(CREATE|DROP)\s+SUBSCRIPTION\b", re.I), "creates or drops a subscription"),
    ("sqlite", re.compile(r"VACUUM\b", re.I), "is VACUUM"),
    # PRAGMA foreign_keys is not here: inside a transaction SQLite ignores it (a no-op, not an error), and sqlx and
    # golang-migrate folders run it there; lint warns about it instead (transaction-noop).
    ("sqlite", re.compile(r"PRAGMA\s+(\w+\.)?journal_mode\b", re.I),
     "is a PRAGMA that fails inside a transaction"),
]


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


def blocks(statements: list[Statement]) -> list[Block]:
    """The file's own transaction blocks, checked for balance: a BEGIN needs its COMMIT/ROLLBACK and vice versa."""
    found: list[Block] = []
    opened: int | None = None
    for index, statement in enumerate(statements, 1):
        kind = control(statement)
        if kind == BEGIN:
            if opened is not None:
                raise TransactionSyntaxError(
                    f"statement {index} opens a transaction inside the one opened by statement {opened}", statement.line)
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
    text = statement.text.lstrip()
    for where, pattern, reason in _OUTSIDE_ONLY:
        if where == dialect and pattern.match(text):
            return reason
    return None


def concurrent_index_name(statement: Statement) -> str | None:
    """The index a `CREATE INDEX CONCURRENTLY name ON ...` builds, as written (quoted parts kept)."""
    match = _CONCURRENT_INDEX.match(statement.text)
    return match.group("name") if match else None
