"""What only a database's own command-line client understands, met in a migration file: psql's meta-commands and
COPY ... FROM stdin with its rows (PostgreSQL). premigrate sends a file's SQL to the server itself, so these are
refused with their line before anything runs, except the two pg_dump writes to guard psql, which ask nothing of a
client that runs no meta-command. model/sql.py's splitter calls here when it meets one of them, and only then
loads this module.
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


def after_psql_command(sql: str, start: int, i: int, first_line: int) -> int:
    """Where the scan goes on after a backslash outside quotes and comments in PostgreSQL, where no SQL token starts
    with one: past a \\restrict or \\unrestrict line between statements. Anything else is a psql meta-command (or
    the rows of a COPY ... FROM stdin), which only psql understands: refused, with its line, before anything runs."""
    body = start + leading_noise(sql[start:i], "postgresql")  # where the statement before it begins
    restrict = RESTRICT.match(sql, i)
    if restrict and body >= i:
        return restrict.end()
    if sql[body:body + 4].upper() == "COPY":  # its rows, after a COPY with no `;` to end it
        refuse_client_copy(sql[body:i], first_line + sql.count("\n", 0, body))
    line = first_line + sql.count("\n", 0, i)
    command = _META_COMMAND.match(sql, i)
    raise SplitError(f"psql meta-command {command.group(0) if command else chr(92)}: premigrate sends the file's SQL "
                     "to the server itself, not through psql, and runs no meta-command; write it in SQL, or remove "
                     "the line", line)


_QUOTED_TEXT = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")
_CLIENT_COPY = re.compile(r"\b(FROM\s+STDIN|TO\s+STDOUT)\b", re.IGNORECASE)


def refuse_client_copy(text: str, line: int) -> None:
    """COPY ... FROM STDIN reads its rows from the client, which psql sends from the lines after it (up to `\\.`);
    COPY ... TO STDOUT sends rows to the client. premigrate sends SQL only: refused with the statement's line. Only
    the part after a COPY (query) is read, and strings and quoted names are left out, so that neither a query's
    table nor a file name `'... from stdin'` is mistaken for the clause."""
    tail = _QUOTED_TEXT.sub("''", text[4:])
    if tail.lstrip().startswith("("):
        depth = 0
        for at, ch in enumerate(tail):
            depth += {"(": 1, ")": -1}.get(ch, 0)
            if depth == 0 and ch == ")":
                tail = tail[at + 1:]
                break
    clause = _CLIENT_COPY.search(tail)
    if clause is None:
        return
    if clause.group(1).upper().startswith("FROM"):
        why = ("reads its rows from the client, which psql sends from the lines after it; premigrate sends SQL only. "
               "Write the rows as INSERT statements (pg_dump --inserts), or COPY from a file on the database server")
    else:
        why = "sends its rows to the client, where nothing reads them in a migration; remove it"
    raise SplitError(f"COPY ... {' '.join(clause.group(1).upper().split())} {why}", line)
