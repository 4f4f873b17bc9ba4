"""A PostgreSQL connection lost where only psycopg, not libpq, sees it is a lost connection, never a failed statement.

psycopg's wait loop raises `OperationalError("connection socket closed")` when select() flags the socket or fails on
it (psycopg/waiting.py); libpq has not seen the failure yet, so the connection is neither `closed` nor `broken`. Read
as a statement's error, that was exit 4 ("a row records it") on a run that recorded nothing; the fault suite's proxy
drops (tests/faults/test_proxy.py) met it under load.
"""

from __future__ import annotations

import os
import pytest

from premigrate.drivers import driver_class
from premigrate.drivers.base import DriverSettings, SqlError
from premigrate.errors import ConnectionLost
from premigrate.model.dsn import parse_url
from tests.support import TestDatabase


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_socket_closed_under_psycopg_is_connection_lost(db: TestDatabase) -> None:
    driver = driver_class("postgresql").connect(parse_url(db.url), DriverSettings(table="premigrate_history"))
    driver.prepare_session()
    conn = driver.conn  # type: ignore[attr-defined]
    fd = conn.pgconn.socket
    os.close(fd)  # the socket goes away beneath the connection: psycopg's select() fails on it
    try:
        with pytest.raises(ConnectionLost) as caught:
            driver.execute("SELECT 1")
    finally:
        # libpq still holds the number and closes it when the connection is finished, or garbage-collected later,
        # by which time the number may be another test's socket or pytest's capture file (that took the whole
        # test process down once). Give it a file of its own to close now.
        placeholder = os.open(os.devnull, os.O_RDWR)
        os.dup2(placeholder, fd)
        os.close(placeholder)
        driver.close()
    assert "connection socket closed" in caught.value.message
    assert not isinstance(caught.value, SqlError)


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_server_errors_stay_statement_errors(db: TestDatabase) -> None:
    """The rule is narrow: an error the server sent (it has a SQLSTATE) is still the statement's error."""
    driver = driver_class("postgresql").connect(parse_url(db.url), DriverSettings(table="premigrate_history"))
    driver.prepare_session()
    with pytest.raises(SqlError) as caught:
        driver.execute("SELECT * FROM no_such_table")
    assert caught.value.code == "42P01"
    driver.close()
