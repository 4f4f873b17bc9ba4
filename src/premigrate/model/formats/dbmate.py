"""dbmate files: `<version>_<description>.sql` with a `-- migrate:up` and a `-- migrate:down` section.

Follows amacneil/dbmate pkg/dbmate/migration.go (parseMigrationContents, parseMigrationOptions) and db.go
(FindMigrations, Migrate, Rollback), as of commit 0b6e2ee89962ae41638d3ee5be6eba994d94fcf4:

- A section line matches `(?m)^--\\s*migrate:up(\\s*$|\\s+\\S+)` (down: `(?m)^--\\s*migrate:down(\\s*$|\\s+\\S+)$`):
  at the start of a line, in lower case. An indented one, or one these regexes do not match (`-- migrate:up-x`, a
  down line with two options), is not a section line to dbmate; premigrate refuses it, naming the line, rather than
  read the file otherwise than dbmate.
- Both sections are required (ErrParseMissingUp, ErrParseMissingDown), up first (ErrParseWrongOrder), and only blank
  and `--` comment lines before the up line (ErrParseUnexpectedStmt).
- Options are the `key:value` words of a section's line; `transaction:false` (exactly: `m["transaction"] != "false"`)
  runs that section, up or down, outside a transaction. premigrate refuses any other option word, so a misspelt
  `transaction:FALSE`, which dbmate would take for a transaction, never runs otherwise than its author meant.
- Order: dbmate sorts a folder by file name as text and records the digits before the name's first non-digit as a
  string (FindMigrations: `sort.Slice(... FileName < FileName)`), so `10_b.sql` runs before `9_a.sql`. A folder of
  dbmate files carries its names as its order (model/ordering.py), as diesel's carries its version strings.
"""

from __future__ import annotations

import re

from premigrate.errors import MigrationFileError
from premigrate.model.formats.base import Part

# Go's \s and \S are ASCII ([\t\n\f\r ]); Python's would take other white space too.
_WS, _NON_WS = r"[\t\n\f\r ]", r"[^\t\n\f\r ]"
UP = re.compile(rf"^--{_WS}*migrate:up(?:{_WS}*$|{_WS}+{_NON_WS}+)", re.MULTILINE)
DOWN = re.compile(rf"^--{_WS}*migrate:down(?:{_WS}*$|{_WS}+{_NON_WS}+)$", re.MULTILINE)
# Every line that looks like a section line, indented or not: each must be one dbmate reads.
_LOOSE = re.compile(r"^[ \t]*--[ \t]*migrate:(?P<part>up|down)\b[^\n]*$", re.MULTILINE)
_COMMENT_OR_BLANK = re.compile(r"[\t\n\f\r ]*(?:--.*)?\Z", re.DOTALL)
_TRANSACTION = {"transaction:false": True, "transaction:true": False}


def split(part: Part) -> None:
    """Cut a dbmate file into its up and down parts, refusing what dbmate refuses or would read otherwise."""
    from premigrate.model.migrations import refuse_directive_above

    text, name = part.text, part.script
    for loose in _LOOSE.finditer(text):
        line = text.count("\n", 0, loose.start()) + 1
        shown = loose.group(0).strip()
        if loose.group(0)[:1] in (" ", "\t"):
            raise MigrationFileError(f"{name}: line {line}: {shown!r} is indented; dbmate reads '-- migrate:up' and "
                                     "'-- migrate:down' only at the start of a line: remove the indentation",
                                     file=name, line=line)
        strict = UP if loose.group("part") == "up" else DOWN
        if strict.match(text, loose.start()) is None:
            raise MigrationFileError(f"{name}: line {line}: dbmate does not read {shown!r} as a section line (it "
                                     "reads '-- migrate:up [option ...]' and '-- migrate:down [option]'): fix the line",
                                     file=name, line=line)
    ups, downs = list(UP.finditer(text)), list(DOWN.finditer(text))
    if not ups:
        raise MigrationFileError(f"{name}: no '-- migrate:up' line; dbmate requires one in every migration", file=name)
    if not downs:
        raise MigrationFileError(f"{name}: no '-- migrate:down' line; dbmate requires each migration to define a "
                                 "down block (it may be empty): add '-- migrate:down' after the up part", file=name)
    if len(ups) > 1 or len(downs) > 1:
        raise MigrationFileError(f"{name}: needs exactly one '-- migrate:up' and one '-- migrate:down' line",
                                 file=name)
    up, down = ups[0], downs[0]
    if down.start() < up.start():
        raise MigrationFileError(f"{name}: '-- migrate:down' comes before '-- migrate:up'; dbmate requires the up "
                                 "section first", file=name)
    before = text[:up.start()]
    for number, line_text in enumerate(before.split("\n"), 1):
        if not _COMMENT_OR_BLANK.match(line_text):
            raise MigrationFileError(f"{name}: SQL before the '-- migrate:up' line (line {number}) would never run; "
                                     "dbmate refuses it: move it into a section", file=name, line=number)
    refuse_directive_above(name, before, "-- migrate:up", "-- migrate:down")
    part.no_transaction = _no_transaction(name, text, up, "up")
    part.down_no_transaction = _no_transaction(name, text, down, "down")
    # From the start of each match: `\s*$` may run on over blank lines, so its end can lie lines below.
    up_start = _line_end(text, up.start()) + 1
    down_start = _line_end(text, down.start()) + 1
    part.first_line = text.count("\n", 0, up_start) + 1
    part.down_text = text[down_start:]
    part.down_first_line = text.count("\n", 0, down_start) + 1
    part.text = text[up_start:down.start()]


def _line_end(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end < 0 else end


def _no_transaction(name: str, text: str, marker: re.Match[str], section: str) -> bool:
    """Whether the section's line turns its transaction off: dbmate reads its `key:value` words into a map (a later
    word wins) and tests `m["transaction"] != "false"`, exactly."""
    line = text[marker.start():_line_end(text, marker.start())]
    keyword = f"migrate:{section}"
    off = False
    for word in line[line.index(keyword) + len(keyword):].split():
        if word not in _TRANSACTION:
            known = ("; dbmate turns the transaction off only for 'transaction:false', spelt exactly so, and keeps "
                     "it for anything else") if word.lower() in _TRANSACTION else ""
            raise MigrationFileError(f"{name}: unknown '-- {keyword}' option {word!r}{known}: write "
                                     "'transaction:false' or remove it", file=name)
        off = _TRANSACTION[word]
    return off


def order(parts: list[Part]) -> None:
    """A folder of dbmate files runs in its file names' text order (db.go FindMigrations): each part carries its name
    as its order (model/ordering.py). Two names with one premigrate version (`1_a.sql`, `01_b.sql`: dbmate versions
    "1" and "01") are refused when the folder is assembled (migrations._assemble), naming both."""
    for part in parts:
        part.order = part.script
