"""Split a migration's SQL into statements, the way each database's own client would.

Statements run one at a time so that a failure names its statement and line, so that MySQL and no-transaction
files can record progress after each one, and because sqlite3's executescript() would commit behind our back.

Understood per dialect:
- all: '...' strings ('' escapes), "..." identifiers, -- line comments, /* */ block comments
- PostgreSQL: E'...' strings with backslash escapes, $$...$$ and $tag$...$tag$ bodies, nested block comments,
  BEGIN ATOMIC ... END bodies of SQL-standard functions (PostgreSQL 14+)
- MySQL/MariaDB: backslash escapes in strings, `backtick` identifiers, # comments, `--` only before white space,
  and the mysql client's DELIMITER command for procedures and triggers
- SQLite: CREATE TRIGGER ... BEGIN ... END bodies (SQLite's own tokenizer decides: sqlite3.complete_statement)
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, overload

from premigrate.lazy_re import LazyPattern

if TYPE_CHECKING:
    from premigrate.model.migrations import Migration

_DOLLAR_TAG = LazyPattern(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
# An unquoted identifier or keyword. Letters are Unicode letters: PostgreSQL, MySQL/MariaDB and SQLite all accept
# non-ASCII letters in unquoted identifiers (`CREATE TABLE café (größe int)`).
_WORD = LazyPattern(r"[^\W\d][\w$]*")
_DELIMITER_LINE = LazyPattern(r"[ \t]*DELIMITER[ \t]+(\S+)[ \t]*(?:\r?\n|\Z)", re.IGNORECASE)
# A COPY's rows are encoded a MiB at a time, to hash them and to send them (drivers/postgres_session.py): encoded whole,
# the rows of a dump near the 64 MiB file limit were a second copy beyond the manifests' 256 MiB.
ROWS_CHUNK = 1 << 20


@dataclass(frozen=True)
class Statement:
    """One statement of a migration, and the line it starts on."""
    text: str
    line: int  # 1-based line of the statement's first token, counted in the text given to split_statements
    # PostgreSQL's COPY ... FROM STDIN: the rows that follow it in the file, up to the line `\.` (psql's format),
    # which the driver sends as the COPY's data (model/client_commands.py). None for every other statement.
    rows: str | None = None

    @property
    def digest(self) -> str:
        """Short hash recorded per statement done, so a resume can prove the done part did not change."""
        digest = hashlib.sha256(self.text.encode())
        if self.rows is not None:  # a COPY's rows, hashed a chunk at a time: they can be most of a 64 MiB file
            digest.update(b"\n")
            for at in range(0, len(self.rows), ROWS_CHUNK):
                digest.update(self.rows[at:at + ROWS_CHUNK].encode())
        return digest.hexdigest()[:16]


class Statements(Sequence[Statement]):
    """The statements of one text, kept as offsets into it (three machine integers each) rather than as copies:
    a 64 MiB file of short statements took five times its size as Statement objects and stayed under the memory
    limit of the shipped manifests (256 MiB) only this way. Each access builds the Statement (a slice of the text)."""

    __slots__ = ("_ends", "_lines", "_rows", "_source", "_starts")

    def __init__(self, source: str) -> None:
        self._source = source
        self._starts = array("q")
        self._ends = array("q")
        self._lines = array("q")
        self._rows: dict[int, tuple[int, int]] | None = None  # index -> where a COPY's rows are in the text

    def _add(self, start: int, end: int, line: int, rows: tuple[int, int] | None = None) -> None:
        if rows is not None:
            self._rows = self._rows or {}
            self._rows[len(self._starts)] = rows
        self._starts.append(start)
        self._ends.append(end)
        self._lines.append(line)

    def _statement(self, index: int) -> Statement:
        rows = self._rows.get(index) if self._rows else None
        return Statement(self._source[self._starts[index]:self._ends[index]], self._lines[index],
                         self._source[rows[0]:rows[1]] if rows else None)

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> Statement: ...
    @overload
    def __getitem__(self, index: slice) -> list[Statement]: ...
    def __getitem__(self, index: int | slice) -> Statement | list[Statement]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("statement index out of range")
        return self._statement(index)

    def __iter__(self) -> Iterator[Statement]:
        if self._rows:
            yield from (self._statement(index) for index in range(len(self)))
            return
        source = self._source
        for start, end, line in zip(self._starts, self._ends, self._lines):
            yield Statement(source[start:end], line)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Statements({list(self)!r})"


class SplitError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


# The formats whose files split_migration cuts by the format's own rule; every other format's text goes to
# split_statements whole.
OWN_SPLITTERS = frozenset({"goose", "atlas", "drizzle", "liquibase", "sql-migrate"})
# What split_statements can fail on, by dialect (what to look for in the text, in any case): on PostgreSQL a `$` (an
# unterminated dollar quote), a backslash (a psql meta-command, client_commands.py) and COPY (its rows with the
# client). A text with none of these splits without an error; on MySQL and SQLite every text does.
SPLIT_CAN_FAIL_ON = {"postgresql": ("$", "\\", "COPY")}


def split_migration(migration: Migration, dialect: str, *, down: bool = False) -> Sequence[Statement]:
    """The statements of a migration's up (or down) part: every command that splits a migration asks here.

    One place, because a migration format may bring its own splitting rule (goose's StatementBegin/End, Drizzle's
    statement breakpoints, Liquibase's delimiters): planning, running, resuming and lint must all see the same list.
    """
    text, first_line = (migration.down_sql or "", migration.down_first_line) if down else \
        (migration.up_sql, migration.up_first_line)
    direction = "down" if down else "up"
    if migration.format == "goose":
        from premigrate.model.formats import goose

        envsub = migration.envsub is not None and migration.envsub[1 if down else 0]
        pieces = goose.split_marked(text, direction, first_line=first_line, envsub=envsub,
                                    env=migration.environment)
    elif migration.format == "atlas":
        from premigrate.model.formats import atlas

        custom = atlas.split(text, dialect, first_line=first_line)
        return custom if custom is not None else split_statements(text, dialect, first_line=first_line)
    elif migration.format == "drizzle":
        from premigrate.model.formats import drizzle

        pieces = drizzle.split_marked(text, first_line=first_line)
    elif migration.format == "liquibase":
        from premigrate.model.formats.liquibase import reader

        return reader.statements(migration, dialect, down=down)
    elif migration.format == "sql-migrate":  # each format here is in OWN_SPLITTERS
        from premigrate.model.formats import sqlmigrate

        parsed = sqlmigrate.parse(text)
        pieces = parsed.down if down else parsed.up
    else:
        return split_statements(text, dialect, first_line=first_line)
    # The tool's own rule cuts the text; a StatementBegin/End block goes to the database in one piece, as the tool
    # sends it. A line-based statement may still hold several (`a; b;` on one line), which the tool's driver sends
    # in one call: the dialect's splitter cuts those so that each runs, and is recorded, on its own.
    statements: list[Statement] = []
    for statement, block in pieces:
        statements.extend([statement] if block else
                          split_statements(statement.text, dialect, first_line=statement.line))
    return statements


def split_statements(sql: str, dialect: str, *, first_line: int = 1) -> Statements:
    """Statements of `sql` in order, without their terminators; comment-only chunks are dropped."""
    is_pg, is_my = dialect == "postgresql", dialect == "mysql"
    statements = Statements(sql)
    delimiter = ";"
    n, i = len(sql), 0
    start, atomic_depth, prev_word = 0, 0, ""  # start: where the current statement's text starts

    # Lines are counted from the previous statement on, not from the top: counting from 0 made a file of n
    # statements cost O(n^2) (minutes for 100,000 statements).
    counted = [0, first_line]  # offset counted up to, line number there
    match_word = _WORD.compiled().match  # called once per word: the compiled pattern's own method, from a local

    def flush(end: int) -> int | None:
        """Add the statement that ends at `end`; where the scan goes on when it is not at `end` (a COPY's rows)."""
        chunk = sql[start:end]
        body_offset = leading_noise(chunk, dialect)
        body = chunk[body_offset:]
        text = body.strip()
        if text:
            at = start + body_offset
            counted[1] += sql.count("\n", counted[0], at)
            counted[0] = at
            first = at + len(body) - len(body.lstrip())
            rows = _client_copy_rows(sql, end, text, counted[1]) if is_pg and text[:4].upper() == "COPY" else None
            statements._add(first, first + len(text), counted[1], rows and rows[:2])
            return rows[2] if rows else None
        return None

    while i < n:
        ch = sql[i]
        if is_my and ch in "Dd" and _at_statement_start(sql, start, i, dialect):
            match = _DELIMITER_LINE.match(sql, i)
            if match:
                delimiter = match.group(1)
                i = start = match.end()
                continue
        at_end = sql.startswith(delimiter, i) and (delimiter != ";" or atomic_depth == 0)
        # After DELIMITER the mysql client sends the text up to it as one query, whose `;`-separated statements the
        # server runs (multi-statements): `DROP PROCEDURE p; CREATE PROCEDURE p() BEGIN ...; END$$` is two statements.
        if at_end or (is_my and ch == ";" and delimiter != ";" and atomic_depth == 0):
            if dialect == "sqlite" and not _sqlite_complete(sql[start : i + 1]):
                i += 1  # inside a trigger body: SQLite's tokenizer says the statement is not over
                continue
            i = start = flush(i) or i + (len(delimiter) if at_end else 1)
            prev_word = ""
            atomic_depth = 0 if at_end else atomic_depth
            continue
        if ch == "'" or (ch == '"') or (ch == "`" and is_my):
            i = _skip_quoted(sql, i, ch, backslash=is_my or (is_pg and ch == "'" and _is_escape_string(sql, i)))
            continue
        if (ch == "-" and sql.startswith("--", i) and (not is_my or i + 2 >= n or sql[i + 2] in " \t\r\n")) or (
                ch == "#" and is_my):
            i = skip_line(sql, i)
            continue
        if ch == "/" and sql.startswith("/*", i):
            i = skip_block_comment(sql, i, nested=is_pg)
            continue
        if ch == "$" and is_pg:
            quoted_end = _dollar_quoted_end(sql, i, first_line)
            if quoted_end is not None:
                i = quoted_end
                continue
        if ch == "\\" and is_pg:
            i = _after_psql_command(sql, start, i, first_line)
            continue
        match = match_word(sql, i) if ch.isalpha() or ch == "_" else None
        if match:
            end = _word_end(sql, i, match.end(), delimiter)
            word = sql[i:end].upper()
            if is_pg or (is_my and delimiter != ";"):
                atomic_depth = _block_depth(sql, i, end, prev_word, atomic_depth, is_pg)
            prev_word = word
            i = end
            continue
        i += 1
    flush(n)
    return statements


_END_BEFORE = LazyPattern(r"\bEND\s+\Z", re.IGNORECASE)
_NEXT_WORD = LazyPattern(r"\s+([A-Za-z]+)")


def _block_depth(sql: str, i: int, end: int, prev_word: str, depth: int, is_pg: bool) -> int:
    """How deep the scan is, after the word sql[i:end], in a body whose `;` does not end the statement. PostgreSQL:
    BEGIN ATOMIC ... END (CASE ... END inside it). MySQL, between DELIMITER lines: a stored program's BEGIN ... END
    and CASE ... END [CASE]; END IF / LOOP / WHILE / REPEAT close blocks that never counted."""
    word = sql[i:end].upper()
    if is_pg:
        if word == "ATOMIC" and prev_word == "BEGIN":
            return depth + 1
        if depth and word == "CASE":
            return depth + 1
        return depth - 1 if depth and word == "END" else depth
    if word == "BEGIN" or (word == "CASE" and not _END_BEFORE.search(sql, max(0, i - 16), i)):
        return depth + 1
    if word == "END":
        following = _NEXT_WORD.match(sql, end)
        if following and following.group(1).upper() in ("IF", "LOOP", "WHILE", "REPEAT"):
            return depth
        return max(depth - 1, 0)
    return depth


def _word_end(sql: str, i: int, end: int, delimiter: str) -> int:
    """Where the word at i ends: at `end`, or where a DELIMITER other than ; begins inside it."""
    if delimiter != ";":
        # The mysql client looks for its delimiter at every position outside strings and comments, even
        # inside a word: `END$$` and `xEND_OF_PROC` end their statements (checked against the mariadb
        # client). A word stops where the delimiter begins, so split_statements sees it on its next pass.
        found = sql.find(delimiter, i + 1, end + len(delimiter) - 1)
        if found >= 0:
            return found
    return end


def _is_escape_string(sql: str, i: int) -> bool:
    return i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))


def _skip_quoted(sql: str, i: int, quote: str, *, backslash: bool) -> int:
    j = i + 1
    n = len(sql)
    while j < n:
        c = sql[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and sql[j + 1] == quote:  # doubled quote is an escaped quote
                j += 2
                continue
            return j + 1
        j += 1
    # An unterminated literal runs to the end, as the server would see it; the server reports the error.
    return n


def skip_line(sql: str, i: int) -> int:
    end = sql.find("\n", i)
    return len(sql) if end < 0 else end + 1


# A function of its own so that split_statements stays within 80 lines (tests/unit/test_sizes.py).
def _dollar_quoted_end(sql: str, i: int, first_line: int) -> int | None:
    """Where the PostgreSQL dollar-quoted string starting at `i` ends; None when `$` opens none there."""
    match = _DOLLAR_TAG.match(sql, i)
    if match and not (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
        tag = match.group(0)
        close = sql.find(tag, match.end())
        if close < 0:
            raise SplitError(f"unterminated dollar-quoted string {tag}", first_line + sql.count("\n", 0, i))
        return close + len(tag)
    return None


# What only psql understands (model/client_commands.py) is rare in a file: its rules load when a file has some.
def _after_psql_command(sql: str, start: int, i: int, first_line: int) -> int:
    from premigrate.model.client_commands import after_psql_command

    return after_psql_command(sql, start, i, first_line)


def _client_copy_rows(sql: str, end: int, text: str, line: int) -> tuple[int, int, int] | None:
    from premigrate.model.client_commands import client_copy_rows

    return client_copy_rows(sql, end, text, line)


def _restrict_line_end(text: str, i: int) -> int | None:
    from premigrate.model.client_commands import RESTRICT

    restrict = RESTRICT.match(text, i)
    return restrict.end() if restrict else None


def skip_block_comment(sql: str, i: int, *, nested: bool) -> int:
    depth = 0
    j = i
    n = len(sql)
    while j < n:
        if sql.startswith("/*", j):
            depth = depth + 1 if nested or depth == 0 else depth
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    return n


def leading_noise(chunk: str, dialect: str) -> int:
    """Offset of the first character that is neither white space nor a comment. MySQL's executable comments
    /*! ... */ and MariaDB's /*M! ... */ are code, as they are to the server (MariaDB runs /*M!100000 SET ... */ and
    mariadb-dump writes such lines): a chunk of them alone is a statement, never dropped as a comment."""
    i = 0
    n = len(chunk)
    while i < n:
        if chunk[i].isspace():
            i += 1
        elif chunk.startswith("--", i) or (dialect == "mysql" and chunk[i] == "#"):
            i = skip_line(chunk, i)
        elif dialect == "postgresql" and chunk[i] == "\\" and (restrict_end := _restrict_line_end(chunk, i)):
            i = restrict_end
        elif chunk.startswith("/*", i) and not chunk.startswith("/*!", i) and not (
                dialect == "mysql" and chunk.startswith("/*M!", i)):
            i = skip_block_comment(chunk, i, nested=dialect == "postgresql")
        else:
            return i
    return n


def _at_statement_start(sql: str, start: int, i: int, dialect: str) -> bool:
    """True when position i begins a line and only white space and comments precede it in this statement."""
    line_start = sql.rfind("\n", 0, i) + 1
    if sql[line_start:i].strip(" \t"):
        return False
    return start + leading_noise(sql[start:i], dialect) >= i


def _sqlite_complete(text: str) -> bool:
    """SQLite's own tokenizer decides; sqlite3 is imported only here, so PostgreSQL and MySQL runs never load it."""
    import sqlite3

    return sqlite3.complete_statement(text)

