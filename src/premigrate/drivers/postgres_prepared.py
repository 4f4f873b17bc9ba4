"""premigrate's own SQL in a one-message migration (drivers/postgres_together.py) as named prepared statements: the
guard that the migration before committed, the runner-lock check and the history INSERT. Each is the same text for
every migration of a run; sent as literal SQL, the server parses and plans it again each time, and that was most of
its cost. Measured on PostgreSQL 15 (the server's CPU time per execution, on 2 shared cores): the guard 55-95 µs
as literal SQL, 20-30 µs prepared; the lock check (a pg_locks read) 110-170 µs, 40-50 µs; the history INSERT of 16
columns 83-100 µs, 33-40 µs. A migration of two short DDL statements costs the server about 3 ms of CPU, of which
this saves about a twentieth.

Only on a direct connection: the server pid the session reads (pg_backend_pid()) is the one the server gave at
connect. Behind a pooler (PgBouncer and the like) a prepared statement may live on a backend the next transaction
does not get, which is why the driver's connections make none of their own (prepare_threshold=None); there the SQL
stays literal, as before.

Lifetime: a statement is prepared (a protocol Parse) at the start of the first batch that uses it, ahead of
anything in that batch that could fail, under a name not used before in the session (premigrate_own_<n>), so that
preparing again never meets a name that still exists. The names are forgotten, and the statements prepared again
under new names when next needed, after a batch that failed or was cut short (what ran of it is not known), and
after a migration statement that may drop them (DEALLOCATE, DISCARD: _DROPS_PREPARED); such a batch sends its own
SQL as literal text. A statement dropped all the same (a DEALLOCATE built inside a function) fails the batch on
premigrate's item with invalid_sql_statement_name (26000) before anything commits: the migration is rolled back and
runs again statement by statement (SqlError.prepared_gone, engine/executor.py), as literal SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

# What in a migration's statement may drop the session's prepared statements: DEALLOCATE [ALL], DISCARD ALL.
# A plain substring search, cheap on every statement; a false match only costs the next batch its Parse messages.
_DROPS_PREPARED = re.compile(r"dealloc|discard", re.IGNORECASE)
_PARAM = "%s"  # psycopg's placeholder in premigrate's own SQL
INVALID_STATEMENT_NAME = "26000"


class Call(NamedTuple):
    """One execution of premigrate's own SQL as a prepared statement: `sql` with $1..$n, `params` as text."""

    sql: str
    params: tuple[bytes | None, ...]


class Parse(NamedTuple):
    """The Parse message that prepares `sql` as `name`, sent ahead of the first Call of it."""

    name: bytes
    sql: str


def drops_prepared(text: str) -> bool:
    """Whether a migration's statement may drop the session's prepared statements."""
    return _DROPS_PREPARED.search(text) is not None


def numbered(sql: str) -> str:
    """premigrate's own SQL with psycopg's %s placeholders as the server's $1..$n (its text holds no other %)."""
    parts = sql.split(_PARAM)
    return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, 1))


class PreparedNames:
    """The names under which premigrate's own SQL is prepared on one session (see the module docstring)."""

    __slots__ = ("_made", "_names", "_numbered")

    def __init__(self) -> None:
        self._names: dict[str, bytes] = {}  # SQL ($n placeholders) -> the name it is prepared as
        self._made = 0
        self._numbered: dict[str, str] = {}

    def call(self, sql: str, params: Sequence[Any], encoding: str) -> Call | None:
        """`sql` (%s placeholders) with `params` as a Call; None when a value cannot go as text the way the
        literal SQL would carry it (a type other than text, a whole number or NULL; a NUL character, which a
        text parameter would cut short; a character the session's encoding lacks): then the literal SQL goes,
        and fails or not as it always did."""
        values: list[bytes | None] = []
        for value in params:
            if value is None:
                values.append(None)
            elif isinstance(value, str) and "\x00" not in value:
                try:
                    values.append(value.encode(encoding))
                except UnicodeEncodeError:
                    return None
            elif type(value) is int:
                values.append(str(value).encode())
            else:
                return None
        text = self._numbered.get(sql)
        if text is None:
            text = self._numbered[sql] = numbered(sql)
        return Call(text, tuple(values))

    def parses(self, items: Iterable[object]) -> list[Parse]:
        """The Parse messages a batch of `items` needs first: one for each Call whose SQL has no name yet."""
        needed: list[Parse] = []
        for item in items:
            if type(item) is Call and item.sql not in self._names:
                self._made += 1
                name = self._names[item.sql] = f"premigrate_own_{self._made}".encode()
                needed.append(Parse(name, item.sql))
        return needed

    def name(self, call: Call) -> bytes:
        return self._names[call.sql]

    def forget(self) -> None:
        """Prepare every statement again, under new names, when next needed."""
        self._names.clear()
