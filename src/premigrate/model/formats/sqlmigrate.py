"""sql-migrate files: `-- +migrate Up` / `-- +migrate Down` sections in one `.sql` file.

Follows rubenv/sql-migrate sqlparse/sqlparse.go (ParseMigration, parseCommand, endsWithSemicolon) as of commit
563a2f031824f380dfadda9a5886679d883420f3, quirks included:

- A command is a line starting exactly with `-- +migrate ` (case-sensitive). Up, Down, StatementBegin and
  StatementEnd are understood; sql-migrate ignores any other command word, and so does this reader. `notransaction`
  after Up or Down runs that direction outside a transaction.
- A line starting with `-- ` (but not `-- +`) is dropped wherever it is, even inside a statement; a line starting
  with `-- +` never reaches the SQL. Lines before the first Up/Down are ignored.
- A statement ends on a line whose last word before a `--` word ends in `;`, except between StatementBegin and
  StatementEnd. Up and Down may alternate: every Up section adds to the up statements, every Down to the down ones.
- Errors (exit 5, naming the line): Up/Down while a statement is unfinished, StatementBegin without StatementEnd, no
  Up or Down at all, SQL left without its terminator at the end of the file.
- Names: sql-migrate sorts files by the number before the first `_` (or the whole name); premigrate reads the same
  `<version>_<description>.sql` names as its plain files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from premigrate.model.formats.goose import ends_with_semicolon
from premigrate.model.formats.markers import SQL_MIGRATE_MARKER
from premigrate.model.sql import SplitError, Statement

PREFIX = "-- +migrate "
MARKER = SQL_MIGRATE_MARKER  # formats/markers.py: detection does not load this module


class SqlMigrateError(SplitError):
    """What sql-migrate itself reports for the file, with the line."""


@dataclass
class Parsed:
    """A sql-migrate file's up and down statements and their options."""
    up: list[tuple[Statement, bool]] = field(default_factory=list)
    down: list[tuple[Statement, bool]] = field(default_factory=list)
    up_no_transaction: bool = False
    down_no_transaction: bool = False
    has_down: bool = False


def parse(text: str) -> Parsed:
    """The file's up and down statements (each flagged True when it is a StatementBegin/End block)."""
    parsed = Parsed()
    buffer: list[str] = []
    buffer_line = 0
    direction: str | None = None
    ignore_semicolons = False
    statement_ended = False
    block_line = 0
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for index, line in enumerate(lines):
        number = index + 1
        if line.startswith("-- ") and not line.startswith("-- +"):
            continue
        if line.startswith(PREFIX):
            fields = line[len(PREFIX):].split()
            if not fields:
                raise SqlMigrateError("incomplete '-- +migrate' command", number)
            command, options = fields[0], fields[1:]
            if command in ("Up", "Down"):
                if "".join(buffer).strip():
                    raise SqlMigrateError(f"'-- +migrate {command}' while the statement from line {buffer_line} "
                                          "has no terminating semicolon or StatementEnd", number)
                direction = command
                if command == "Up" and "notransaction" in options:
                    parsed.up_no_transaction = True
                if command == "Down":
                    parsed.has_down = True
                    if "notransaction" in options:
                        parsed.down_no_transaction = True
            elif command == "StatementBegin" and direction is not None:
                ignore_semicolons, block_line = True, number
            elif command == "StatementEnd" and direction is not None:
                statement_ended = ignore_semicolons
                ignore_semicolons = False
        if direction is None:
            continue
        if not line.startswith("-- +"):
            if not "".join(buffer).strip():
                buffer_line = number
            buffer.append(line)
        if (not ignore_semicolons and ends_with_semicolon(line)) or statement_ended:
            block = statement_ended
            statement_ended = False
            text_ = "\n".join(buffer).strip()
            if text_:
                target = parsed.up if direction == "Up" else parsed.down
                target.append((Statement(text_, buffer_line), block))
            buffer = []
    if ignore_semicolons:
        raise SqlMigrateError("'-- +migrate StatementBegin' with no matching '-- +migrate StatementEnd'", block_line)
    if direction is None:
        raise SqlMigrateError("no '-- +migrate Up' or '-- +migrate Down' line, so sql-migrate would run nothing", 1)
    if "".join(buffer).strip():
        raise SqlMigrateError("the last statement has no terminating semicolon or '-- +migrate StatementEnd'",
                              buffer_line)
    return parsed
