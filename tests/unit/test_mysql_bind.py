"""drivers/mysql_literals.KeptLiterals: a history write's parameters put into its SQL exactly as PyMySQL's mogrify
puts them, with the literal of each string kept for the next write of the same row, and dropped when the session's
quoting rule changes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pymysql
import pytest
from pymysql.constants import SERVER_STATUS

from premigrate.drivers.mysql_literals import KeptLiterals

NO_BACKSLASH_ESCAPES = SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES

VALUES: tuple[Any, ...] = (
    "plain", "it's", 'dou"ble', "back\\slash", "nul\x00byte", "new\nline\r\x1a", "unicode é ✓ 🎉", "", "%s %% %d",
    0, -5, 10 ** 20, True, False, None, 1.5, Decimal("1.10"),
    datetime(2026, 12, 5, 14, 30, 48, 793000, tzinfo=timezone.utc), datetime(2026, 1, 2, 3, 4, 5),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))), date(2026, 1, 2), b"by'tes",
    ("x", 1),
)


class Bound:
    """A connection that never connects (escaping needs no server) and the literals kept for it."""

    def __init__(self, status: int) -> None:
        self.conn = pymysql.connections.Connection(defer_connect=True)
        self.conn.server_status = status  # type: ignore[attr-defined]
        self.literals = KeptLiterals()

    def bind(self, sql: str, params: tuple[Any, ...] | None) -> str:
        return self.literals.bind(self.conn, sql, params)


def mogrify(made: Bound, sql: str, params: tuple[Any, ...] | None) -> str:
    return str(pymysql.cursors.Cursor(made.conn).mogrify(sql, params))


@pytest.mark.parametrize("status", [0, NO_BACKSLASH_ESCAPES])
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_each_value_is_bound_as_mogrify_binds_it(status: int, value: Any) -> None:
    made = Bound(status)
    sql = "UPDATE t SET a = %s WHERE id = %s"
    assert mogrify(made, sql, (value, "k")) == made.bind(sql, (value, "k"))
    assert mogrify(made, sql, (value, "k")) == made.bind(sql, (value, "k"))  # kept: the same


def test_a_whole_row_and_the_edge_cases_of_the_sql() -> None:
    made = Bound(0)
    sql = "INSERT INTO t VALUES (" + ", ".join(["%s"] * len(VALUES)) + ")"
    assert mogrify(made, sql, VALUES) == made.bind(sql, VALUES)
    assert "SELECT '100%'" == made.bind("SELECT '100%'", None)  # no parameters: left as it is
    assert mogrify(made, "SELECT '100%%'", ()) == made.bind("SELECT '100%%'", ())


def test_a_string_is_escaped_once_for_every_write_of_a_row() -> None:
    made = Bound(0)
    calls: list[Any] = []
    escape = made.conn.escape
    made.conn.escape = lambda value, mapping=None: calls.append(value) or escape(value)  # type: ignore[method-assign]
    row = ("0001", "1", "create t", "t.sql", "sha256:" + "a" * 64, 3, None)
    sql = "UPDATE t SET " + ", ".join(["c = %s"] * len(row))
    made.bind(sql, row)
    assert ["0001", "1", "create t", "t.sql", "sha256:" + "a" * 64] == calls
    calls.clear()
    second = made.bind(sql, row)  # the row's next write
    assert [] == calls
    assert mogrify(made, sql, row) == second


def test_the_kept_literals_are_dropped_when_the_quoting_rule_changes() -> None:
    """NO_BACKSLASH_ESCAPES (sql_mode) changes how a quote is escaped: a literal kept under the other rule would
    break out of its quotes."""
    made = Bound(0)
    assert "SELECT 'it\\'s'" == made.bind("SELECT %s", ("it's",))
    made.conn.server_status = NO_BACKSLASH_ESCAPES  # type: ignore[attr-defined]
    assert "SELECT 'it''s'" == made.bind("SELECT %s", ("it's",))
    assert mogrify(made, "SELECT %s", ("it's",)) == made.bind("SELECT %s", ("it's",))
