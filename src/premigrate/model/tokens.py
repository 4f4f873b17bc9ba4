"""The tokens of one MySQL/MariaDB or SQLite statement, as lint's generic rules read them (commands/lint/generic.py).
Strings and comments follow the splitter's rules (model/sql.py), whose helpers they share.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from premigrate.model.sql import skip_block_comment, skip_line

TokenKind = Literal["word", "name", "string", "number", "punct"]


@dataclass(frozen=True)
class Token:
    """One token of one statement, as lint reads it: comments are gone, quoting is resolved."""

    kind: TokenKind  # word | name (quoted identifier) | string | number | punct
    text: str  # a word as written; a quoted name or string without its quotes

    @property
    def word(self) -> str:
        """The keyword this token could be: only unquoted words are keywords."""
        return self.text.upper() if self.kind == "word" else ""


def tokens(sql: str, dialect: str) -> Iterator[Token]:
    """The tokens of one MySQL/MariaDB or SQLite statement (a text `split_migration` returned), for lint's rules.

    Strings, comments and quoting follow the splitter's rules above, plus what only a reader of the statement needs:
    MySQL's "..." is a string (unless ANSI_QUOTES), SQLite's [...] is a name, and MySQL's executable comments
    /*! ... */ and /*M! ... */ are read as code, because the server runs them.
    """
    is_my = dialect == "mysql"
    i, n = 0, len(sql)
    executable_comments = 0
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i) and (not is_my or i + 2 >= n or sql[i + 2].isspace()):
            i = skip_line(sql, i)
        elif ch == "#" and is_my:
            i = skip_line(sql, i)
        elif is_my and (sql.startswith("/*!", i) or sql.startswith("/*M!", i)):
            i = sql.index("!", i) + 1
            while i < n and sql[i].isdigit():
                i += 1
            executable_comments += 1
        elif executable_comments and sql.startswith("*/", i):
            executable_comments -= 1
            i += 2
        elif sql.startswith("/*", i):
            i = skip_block_comment(sql, i, nested=False)
        elif ch in "'`\"" or (ch == "[" and not is_my):
            close = "]" if ch == "[" else ch
            text, i = _quoted_value(sql, i, close, backslash=is_my and ch in "'\"")
            is_string = ch == "'" or (ch == '"' and is_my)
            yield Token("string" if is_string else "name", text)
        elif ch.isdigit():
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "._"):
                j += 1
            yield Token("number", sql[i:j])
            i = j
        elif ch.isalpha() or ch in "_$@":
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            yield Token("word", sql[i:j])
            i = j
        else:
            yield Token("punct", ch)
            i += 1


def _quoted_value(sql: str, i: int, close: str, *, backslash: bool) -> tuple[str, int]:
    """The value of the quoted text opening at i (escapes resolved) and the offset after it; [...] has no escapes."""
    out: list[str] = []
    j, n = i + 1, len(sql)
    while j < n:
        c = sql[j]
        if backslash and c == "\\" and j + 1 < n:
            out.append(sql[j + 1])
            j += 2
        elif c == close and close != "]" and j + 1 < n and sql[j + 1] == close:
            out.append(c)
            j += 2
        elif c == close:
            return "".join(out), j + 1
        else:
            out.append(c)
            j += 1
    return "".join(out), n
