"""PostgresDriver.check_url: the parameter values libpq checks only when it connects, and a database name the server
would cut short, are refused before any connection (exit 2), so that a typo is not waited on as if the server were
down."""

from __future__ import annotations

import pytest

from premigrate.drivers.postgres import PostgresDriver
from premigrate.errors import UsageError
from premigrate.model.dsn import parse_url


@pytest.mark.parametrize(("url", "error"), [
    pytest.param("postgresql://u@h/db?sslmode=bogus", "sslmode='bogus': not one of disable", id="sslmode"),
    pytest.param("postgresql://u@h/db?connect_timeout=abc", "connect_timeout='abc': not a whole number",
                 id="connect-timeout"),
    pytest.param("postgresql://u@h/db?target_session_attrs=master", "target_session_attrs='master'",
                 id="target-session-attrs"),
    pytest.param("postgresql://u@h/" + "d" * 64, "the database name is 64 bytes", id="long-name"),
])
def test_refused_before_connecting(url: str, error: str) -> None:
    with pytest.raises(UsageError, match=error):
        PostgresDriver.check_url(parse_url(url, source="test"))


@pytest.mark.parametrize("url", [
    "postgresql://u@h/db?sslmode=verify-full&connect_timeout=5&target_session_attrs=read-write",
    "postgresql://u@h/" + "d" * 63,
])
def test_accepted(url: str) -> None:
    PostgresDriver.check_url(parse_url(url, source="test"))
