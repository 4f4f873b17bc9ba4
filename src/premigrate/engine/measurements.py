"""Cheap measurements around a run: database size, and rows affected per statement as each driver reports them.

Database size, measured before and after a run only where it is cheap, and skipped with a reason otherwise:
- PostgreSQL: pg_database_size(current_database()). It walks the database's files, so it is bounded by a statement
  timeout (SIZE_TIMEOUT_S); it needs CONNECT on the database or pg_read_all_stats (a role whose CONNECT was revoked
  gets "permission denied"). Run under a savepoint where the session is inside a transaction, so a failure or
  timeout never aborts the caller's transaction; the session's statement_timeout is restored afterwards.
- MySQL/MariaDB: SUM(data_length + index_length) from information_schema.TABLES for the schema. These are InnoDB's
  estimates (statistics refreshed on ANALYZE TABLE or after enough changes; MySQL 8 also caches them for
  information_schema_stats_expiry seconds, set to 0 for this query); only tables the user may see are counted.
  Bounded by MariaDB's max_statement_time (SET STATEMENT ... FOR) or MySQL's MAX_EXECUTION_TIME hint.
- SQLite: page_count * page_size, read from the file header: always cheap.

Rows affected: what the driver reports after each statement, None where it reports nothing meaningful.
- psycopg: cursor.rowcount; -1 for statements without a count (DDL, SET).
- PyMySQL: cursor.rowcount is the server's affected-rows; DDL reports 0, which is not a row count. The MySQL
  driver connects with CLIENT.FOUND_ROWS, so an UPDATE counts the rows it matched (as PostgreSQL and SQLite do),
  not only those whose values changed.
- sqlite3: cursor.rowcount is sqlite3_changes() after INSERT/UPDATE/DELETE; -1 otherwise.
DDL (first keyword CREATE, ALTER, DROP, TRUNCATE, RENAME, COMMENT, GRANT, REVOKE) is reported as None on every
database, so that "0 rows" always means a statement that could have changed rows and changed none.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

SIZE_TIMEOUT_S = 2.0
SIZE_QUERIES = {
    "postgresql": "SELECT pg_database_size(current_database())",
    "mysql": "SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.TABLES "
             "WHERE table_schema = %s",
}
_DDL = frozenset({"CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT", "GRANT", "REVOKE"})
_FIRST_WORD = re.compile(r"(?:\s|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*([A-Za-z]+)", re.DOTALL)


@dataclass(frozen=True)
class Size:
    """The database's size, or why it was not measured."""
    bytes: int | None
    skipped: str | None = None  # why there is no figure

    def as_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes} if self.skipped is None else {"bytes": None, "skipped": self.skipped}


def database_size(connection: Any, dialect: str, schema: str | None = None, *,
                  timeout_s: float = SIZE_TIMEOUT_S) -> Size:
    """Size of the database (PostgreSQL, SQLite) or schema (MySQL) behind `connection`, or why it was skipped.
    Never raises for a database error: a measurement must not fail a run."""
    if dialect == "sqlite":
        return _sqlite_size(connection, schema or "main")
    if dialect == "postgresql":
        return _postgres_size(connection, timeout_s)
    if dialect == "mysql":
        return _mysql_size(connection, schema, timeout_s)
    raise ValueError(f"unknown dialect {dialect!r}")


def _sqlite_size(conn: Any, schema: str) -> Size:
    import sqlite3  # here only: the PostgreSQL and MySQL paths never load it

    prefix = f'"{schema}".' if schema != "main" else ""
    try:
        pages = conn.execute(f"PRAGMA {prefix}page_count").fetchone()[0]
        page_size = conn.execute(f"PRAGMA {prefix}page_size").fetchone()[0]
    except sqlite3.Error as exc:
        return Size(None, f"not measured: {exc}")
    return Size(int(pages) * int(page_size))


def _postgres_size(conn: Any, timeout_s: float) -> Size:
    import psycopg

    # set_config(..., false) inside a (sub)transaction is undone when that rolls back, so a timeout or error puts
    # the session's statement_timeout back by itself; on success it is put back explicitly.
    try:
        previous = conn.execute("SHOW statement_timeout").fetchone()[0]
        with conn.transaction():  # a savepoint when the caller is inside a transaction, which a failure leaves intact
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{max(1, int(timeout_s * 1000))}ms",))
            value = conn.execute(SIZE_QUERIES["postgresql"]).fetchone()[0]
            conn.execute("SELECT set_config('statement_timeout', %s, false)", (previous,))
    except psycopg.errors.QueryCanceled:
        return Size(None, f"skipped: measuring took longer than {timeout_s:g}s")
    except psycopg.errors.InsufficientPrivilege as exc:
        return Size(None, f"skipped: not permitted ({exc.diag.message_primary or exc})")
    except psycopg.Error as exc:
        return Size(None, f"skipped: {exc.diag.message_primary or exc}")
    return Size(int(value))


def _mysql_size(conn: Any, schema: str | None, timeout_s: float) -> Size:
    import pymysql

    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), DATABASE()")
            version, current = cur.fetchone()
            target = schema or current
            if target is None:
                return Size(None, "skipped: no database selected")
            query = SIZE_QUERIES["mysql"]
            if "mariadb" in str(version).lower():
                query = f"SET STATEMENT max_statement_time = {timeout_s:g} FOR {query}"
            else:
                query = query.replace("SELECT ", f"SELECT /*+ MAX_EXECUTION_TIME({int(timeout_s * 1000)}) */ ", 1)
                with suppress(pymysql.MySQLError):  # MySQL 8 caches these figures for a day by default
                    cur.execute("SET SESSION information_schema_stats_expiry = 0")
            cur.execute(query, (target,))
            row = cur.fetchone()
    except pymysql.MySQLError as exc:
        code = exc.args[0] if exc.args else None
        if code in (1969, 3024, 1317):  # max_statement_time exceeded / MAX_EXECUTION_TIME / query interrupted
            return Size(None, f"skipped: measuring took longer than {timeout_s:g}s")
        if code in (1044, 1142, 1227):
            return Size(None, f"skipped: not permitted ({exc.args[1] if len(exc.args) > 1 else exc})")
        return Size(None, f"skipped: {exc.args[1] if len(exc.args) > 1 else exc}")
    return Size(int(row[0]))


def is_ddl(statement: str) -> bool:
    match = _FIRST_WORD.match(statement)
    return match is not None and match.group(1).upper() in _DDL


def rows_affected(statement: str, reported: int | None) -> int | None:
    """The driver's count for `statement` (cursor.rowcount), or None where it is not a row count."""
    if reported is None or reported < 0 or is_ddl(statement):
        return None
    return int(reported)


def reported_rowcount(cursor: Any) -> int | None:
    """cursor.rowcount of a psycopg, PyMySQL or sqlite3 cursor; None when the cursor has none."""
    value = getattr(cursor, "rowcount", None)
    return value if isinstance(value, int) and value >= 0 else None


@dataclass
class RowCounts:
    """Rows affected per statement of one migration, and the total of the known counts."""

    per_statement: list[int | None] = field(default_factory=list)

    def add(self, statement: str, reported: int | None) -> int | None:
        count = rows_affected(statement, reported)
        self.per_statement.append(count)
        return count

    @property
    def total(self) -> int:
        return sum(c for c in self.per_statement if c is not None)

    def as_dict(self) -> dict[str, Any]:
        return {"rows_affected": self.total, "rows_affected_per_statement": list(self.per_statement)}


class StatementRows:
    """Rows affected by statement index (1-based) of the migration running now; a retried statement's count replaces
    the earlier attempt's. A list, not a dict keyed by index: for a 60 MiB file of 640,000 short statements the dict
    and its integer keys grew by 70 MB while the file ran and took the run past the shipped 256 MiB memory limit."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: list[int | None] = []

    def __setitem__(self, index: int, count: int | None) -> None:
        missing = index - len(self._counts)
        if missing > 0:
            self._counts.extend([None] * missing)
        self._counts[index - 1] = count

    def first(self, total: int) -> list[int | None]:
        """The counts of statements 1..total, None where a statement has none (or did not run)."""
        counts = self._counts[:total]
        counts.extend([None] * (total - len(counts)))
        return counts

    def clear(self) -> None:
        self._counts.clear()
