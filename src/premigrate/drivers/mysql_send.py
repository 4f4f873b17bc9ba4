"""A migration statement sent; while the server runs it, the driver's look at the statement, the log events the
run held back (held_events.py says why and what keeps the log in order) and the run's Later work; then its result
read.

PyMySQL's Cursor.execute sends the statement and reads the answer in one call (Connection.query: _execute_command,
then _read_query_result). For the duration of one execute, the connection's _read_query_result is an instance
attribute that writes the held events and then reads as the class's method does: PyMySQL's own send and read, with
the events in between. tests/integration/test_mysql_send.py fails if a PyMySQL release renames the method or stops
reading through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pymysql

from premigrate import held_events


def execute_releasing(conn: pymysql.connections.Connection, cur: pymysql.cursors.Cursor, statement: str,
                      during: Callable[[], None]) -> Exception | None:
    """cur.execute(statement), and once it is sent: `during()` (the driver's own look at the statement, which
    nothing needs before the answer), the held events, then this thread's Later work. `during` runs exactly once,
    after the send or, when the statement never got that far, before this returns or raises. A failure to write the
    held events does not leave the answer unread (the session would be out of step with the server): it is
    returned, for the caller to raise once the statement's own outcome is known. A signal's Interrupted is raised
    where it arrives, as during the read."""
    read = conn._read_query_result  # type: ignore[attr-defined]
    failed: list[Exception] = []
    ran = False

    def release_then_read(unbuffered: bool = False) -> Any:
        nonlocal ran
        del conn._read_query_result  # type: ignore[attr-defined]  # the class's method again, for any later read
        ran = True
        during()
        try:
            held_events.release()
        except Exception as exc:  # noqa: BLE001 - raised by the caller after the answer is read
            failed.append(exc)
        held_events.run_work()  # keeps what it raises for its get()
        return read(unbuffered=unbuffered)

    conn._read_query_result = release_then_read  # type: ignore[attr-defined]
    try:
        cur.execute(statement)
    finally:
        conn.__dict__.pop("_read_query_result", None)
        if not ran:
            during()
    return failed[0] if failed else None
