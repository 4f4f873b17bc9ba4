"""Parameters put into premigrate's own SQL on MySQL as PyMySQL's Cursor.mogrify puts them, more cheaply.

mogrify sends every value through the connection's escape(), which dispatches on the value's type (str, bytes,
sequences, then the encoders' table) for each one. A MySQL run writes a migration's history row two or three times,
between round trips, with sixteen values each, and the row's id, version, description, file name, checksum and user
repeat in every write: here an int or None is written directly, and a string's literal is kept for the next write.
Every other value still goes through escape(), so the SQL sent is the same text mogrify makes.
"""

from __future__ import annotations

from typing import Any

import pymysql
from pymysql.constants import SERVER_STATUS

# How many string literals are kept before starting anew (error texts are seldom written twice).
KEPT_MAX = 1024


class KeptLiterals:
    """The literals of the strings bound on one connection, by the quoting rule they were written under."""

    def __init__(self) -> None:
        self._kept: dict[str, str] = {}
        # The session's NO_BACKSLASH_ESCAPES bit (sql_mode) when they were written: escape() reads it each time,
        # and a quote escaped under the other rule would end its literal early.
        self._mode = -1

    def bind(self, conn: pymysql.connections.Connection, sql: str, params: tuple[Any, ...] | None) -> str:
        """`sql` with `params` bound: `sql % literals`, as mogrify does; `sql` itself when `params` is None."""
        if params is None:
            return sql
        return sql % tuple(self.literals(conn, params))

    def literals(self, conn: pymysql.connections.Connection, params: tuple[Any, ...]) -> list[str]:
        """The literals of `params`, in order, under the session's quoting rule now (mode())."""
        mode = self.mode(conn)
        if mode != self._mode or len(self._kept) > KEPT_MAX:
            self._kept, self._mode = {}, mode
        kept, escape = self._kept, conn.escape
        literals = []
        for value in params:
            kind = type(value)
            if kind is str:
                literal = kept.get(value)
                if literal is None:
                    literal = kept[value] = escape(value)
            elif kind is int:
                literal = str(value)
            elif value is None:
                literal = "NULL"
            else:
                literal = escape(value)
            literals.append(literal)
        return literals

    @staticmethod
    def mode(conn: pymysql.connections.Connection) -> int:
        """The session's quoting rule: its NO_BACKSLASH_ESCAPES bit, which a literal made ahead must still match."""
        return int(conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES)  # type: ignore[attr-defined]
