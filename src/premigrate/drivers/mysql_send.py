"""A migration statement sent, the log events the run held back written while the server runs it, then its result
read (held_events.py says why and what keeps the log in order).

PyMySQL's Cursor.execute sends the statement and reads the answer in one call (Connection.query: _execute_command,
then _read_query_result). For the duration of one execute, the connection's _read_query_result is an instance
attribute that writes the held events and then reads as the class's method does: PyMySQL's own send and read, with
the events in between. tests/unit/test_mysql_send.py fails if a PyMySQL release renames the method or stops reading
through it.
"""

from __future__ import annotations

from typing import Any

import pymysql

from premigrate import held_events


def execute_releasing(conn: pymysql.connections.Connection, cur: pymysql.cursors.Cursor,
                      statement: str) -> Exception | None:
    """cur.execute(statement), writing the held events once it is sent. A failure to write them does not leave the
    answer unread (the session would be out of step with the server): it is returned, for the caller to raise once
    the statement's own outcome is known. A signal's Interrupted is raised where it arrives, as during the read."""
    if not held_events.pending():
        cur.execute(statement)
        return None
    read = conn._read_query_result  # type: ignore[attr-defined]
    failed: list[Exception] = []

    def release_then_read(unbuffered: bool = False) -> Any:
        del conn._read_query_result  # type: ignore[attr-defined]  # the class's method again, for any later read
        try:
            held_events.release()
        except Exception as exc:  # noqa: BLE001 - raised by the caller after the answer is read
            failed.append(exc)
        return read(unbuffered=unbuffered)

    conn._read_query_result = release_then_read  # type: ignore[attr-defined]
    try:
        cur.execute(statement)
    finally:
        conn.__dict__.pop("_read_query_result", None)
    return failed[0] if failed else None
