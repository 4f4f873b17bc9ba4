"""What only a database's own command-line client understands, met in a migration file (PostgreSQL): psql's
meta-commands, and COPY with the client. premigrate sends a file's SQL to the server itself, so a meta-command is
refused with its line before anything runs, except the two pg_dump writes to guard psql, which ask nothing of a
client that runs no meta-command. COPY ... FROM STDIN runs: its rows are read from the lines after it, as psql reads
them, and the driver sends them as the COPY's data; COPY ... TO STDOUT is refused. model/sql.py's splitter calls
here when it meets one of these, and only then loads this module.
"""

from __future__ import annotations

import re

from premigrate.model.sql import SplitError, leading_noise

# pg_dump (17.6, 16.10, 15.14, 14.19, 13.22 and later) opens and closes a plain-text dump with `\restrict KEY` and
# `\unrestrict KEY` (CVE-2025-8714; psql docs, app-psql.html, "\restrict"): psql meta-commands that forbid every
# other meta-command in between, so that a dump cannot make psql run one. premigrate runs no meta-command at all, so
# between statements they ask nothing of it and are read as comments; any other meta-command is refused.
RESTRICT = re.compile(r"\\(?:un)?restrict[ \t]+[A-Za-z0-9]+[ \t]*(?:\r?\n|\Z)")
_META_COMMAND = re.compile(r"\\[^\s\\]*")
_META_LINE = re.compile(r"^[ \t]*\\[A-Za-z!?]", re.MULTILINE)


def meta_command_line(text: str, dialect: str | None) -> tuple[int, str] | None:
    """The first line (its number and its command) that starts with a psql meta-command, read line by line as
    sqitch's scripts are checked (formats/sqitch.py); on PostgreSQL a pg_dump guard line is none (sqitch's psql
    runs it, and it asks nothing of premigrate)."""
    for meta in _META_LINE.finditer(text):
        at = text.index("\\", meta.start())
        if dialect != "postgresql" or RESTRICT.match(text, at) is None:
            return text.count("\n", 0, at) + 1, text[at:].split()[0]
    return None


def after_psql_command(sql: str, start: int, i: int, first_line: int) -> int:
    """Where the scan goes on after a backslash outside quotes and comments in PostgreSQL, where no SQL token starts
    with one: past a \\restrict or \\unrestrict line between statements. Anything else is a psql meta-command,
    which only psql understands: refused, with its line, before anything runs."""
    body = start + leading_noise(sql[start:i], "postgresql")  # where the statement before it begins
    restrict = RESTRICT.match(sql, i)
    if restrict and body >= i:
        return restrict.end()
    clause = _client_clause(sql[body:i]) if sql[body:body + 4].upper() == "COPY" else None
    if clause is not None:  # rows after a COPY with no `;`
        raise SplitError(_TO_STDOUT if clause.startswith("TO") else _NO_SEMICOLON,
                         first_line + sql.count("\n", 0, body))
    line = first_line + sql.count("\n", 0, i)
    command = _META_COMMAND.match(sql, i)
    raise SplitError(f"psql meta-command {command.group(0) if command else chr(92)}: premigrate sends the file's SQL "
                     "to the server itself, not through psql, and runs no meta-command; write it in SQL, or remove "
                     "the line", line)


_TO_STDOUT = ("COPY ... TO STDOUT sends its rows to the client, where nothing reads them in a migration; remove it, "
              "or COPY to a file on the database server")
_NO_SEMICOLON = ("COPY ... FROM STDIN takes its rows from the lines after it: end the statement with `;` and start the "
                 "rows on the next line")
_QUOTED_TEXT = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_CLIENT_COPY = re.compile(r"\b(FROM\s+STDIN|TO\s+STDOUT)\b", re.IGNORECASE)


def client_copy_rows(sql: str, end: int, text: str, line: int) -> tuple[int, int, int] | None:
    """For the COPY statement `text` (at `line`) that ends at `end` in `sql` (its `;`): None unless it copies with
    the client. COPY ... FROM STDIN takes its rows from the lines after it, up to a line `\\.`, as psql and Flyway
    read a file (psql docs, app-psql.html, "COPY ... FROM STDIN"; Flyway's PostgreSQLParser.readCopyData): where
    they start, end, and where the file goes on after the `\\.` line. COPY ... TO STDOUT is refused: its rows
    would go to the client, where nothing reads them in a migration."""
    clause = _client_clause(text)
    if clause is None:
        return None
    if clause.startswith("TO"):
        raise SplitError(_TO_STDOUT, line)
    newline = sql.find("\n", end)
    rest = sql[end + 1:newline if newline >= 0 else len(sql)]
    if end >= len(sql) or newline < 0 or not (rest.strip() == "" or rest.strip().startswith("--")):
        raise SplitError(_NO_SEMICOLON, line)
    rows_start = at = newline + 1
    while at < len(sql):
        line_end = sql.find("\n", at)
        line_end = len(sql) if line_end < 0 else line_end
        if sql[at:line_end].strip() == "\\.":
            return rows_start, at, line_end + 1
        at = line_end + 1
    raise SplitError("COPY ... FROM STDIN: its rows are not ended by a line `\\.`; a file cut short? End them with "
                     "that line, as pg_dump does", line)


def _client_clause(text: str) -> str | None:
    """FROM STDIN or TO STDOUT, when the COPY statement `text` copies with the client. Only the part after a COPY
    (query) is read, and strings and quoted names are left out, so that neither a query's table nor a file name
    `'... from stdin'` is mistaken for the clause."""
    tail = _QUOTED_TEXT.sub("''", text[4:])
    if tail.lstrip().startswith("("):
        depth = 0
        for at, ch in enumerate(tail):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0 and ch == ")":
                tail = tail[at + 1:]
                break
    clause = _CLIENT_COPY.search(tail)
    return " ".join(clause.group(1).upper().split()) if clause else None
