from __future__ import annotations

import ssl

import pytest

from premigrate.drivers.mysql import ssl_kwargs
from premigrate.errors import UsageError


class TestSslModes:
    def test_no_parameters_means_preferred(self) -> None:
        """Without TLS parameters: PREFERRED, as the mysql client, with a context that loads no CA store."""
        kwargs = ssl_kwargs({})
        context = kwargs["ssl"]
        assert (ssl.CERT_NONE, False, False) == (context.verify_mode, context.check_hostname, kwargs["_require_tls"])
        assert 0 == context.cert_store_stats()["x509_ca"]

    def test_disabled(self) -> None:
        """ssl-mode=DISABLED turns TLS off."""
        assert {"ssl_disabled": True} == ssl_kwargs({"ssl-mode": "DISABLED"})

    @pytest.mark.parametrize(
        ("mode", "verify", "hostname", "required"),
        [
            pytest.param("PREFERRED", ssl.CERT_NONE, False, False, id="preferred"),
            pytest.param("REQUIRED", ssl.CERT_NONE, False, True, id="required"),
            pytest.param("VERIFY_CA", ssl.CERT_REQUIRED, False, True, id="verify-ca"),
            pytest.param("verify-identity", ssl.CERT_REQUIRED, True, True, id="verify-identity-lowercase"),
        ],
    )
    def test_modes(self, mode: str, verify: ssl.VerifyMode, hostname: bool, required: bool) -> None:
        """Each ssl-mode maps to the verification MySQL's own client performs for it."""
        kwargs = ssl_kwargs({"ssl-mode": mode})
        context = kwargs["ssl"]
        assert (verify, hostname, required) == (context.verify_mode, context.check_hostname, kwargs["_require_tls"])

    def test_ca_alone_means_verify_ca(self) -> None:
        """ssl-ca without ssl-mode verifies the server certificate against that CA."""
        kwargs = ssl_kwargs({"ssl-ca": "/etc/ssl/certs/ca-certificates.crt"})
        assert (ssl.CERT_REQUIRED, False) == (kwargs["ssl"].verify_mode, kwargs["ssl"].check_hostname)

    @pytest.mark.parametrize(
        ("params", "message"),
        [
            pytest.param({"ssl-mode": "SOMETIMES"}, "ssl-mode", id="bad-mode"),
            pytest.param({"ssl-ca": "/nonexistent/ca.pem"}, "cannot load ssl-ca", id="missing-ca"),
            pytest.param({"ssl-mode": "REQUIRED", "ssl-cert": "/nonexistent/c.pem"}, "cannot load ssl-cert",
                         id="missing-cert"),
        ],
    )
    def test_refuses(self, params: dict[str, str], message: str) -> None:
        """Bad TLS settings are configuration errors (exit 2), not tracebacks."""
        with pytest.raises(UsageError, match=message):
            ssl_kwargs(params)


class TestGreetingWindow:
    """A MySQL client waits for the server's greeting; a PostgreSQL server waits for the client: a mysql:// URL at
    PostgreSQL's port is told within the short greeting window, not after the whole connect timeout."""

    def attempt(self, monkeypatch: pytest.MonkeyPatch, hint: str | None) -> tuple[list[float], object]:
        import pymysql

        from premigrate.drivers import mysql as mysql_driver
        from premigrate.drivers import probe
        from premigrate.drivers.base import ConnectFailed, DriverSettings
        from premigrate.model.dsn import parse_url

        windows: list[float] = []

        def silent(kwargs: dict[str, object], require_tls: bool) -> object:
            windows.append(float(kwargs["read_timeout"]))  # type: ignore[arg-type]
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query (timed out)")

        monkeypatch.setattr(mysql_driver, "open_connection", silent)
        monkeypatch.setattr(probe, "wrong_protocol_hint", lambda dsn: hint)
        with pytest.raises(ConnectFailed) as failed:
            mysql_driver.MySQLDriver.connect(parse_url("mysql://u@127.0.0.1:5432/db", source="test"),
                                             DriverSettings(table="t", connect_timeout=30.0))
        return windows, failed.value

    def test_a_postgresql_port_is_told_within_the_window(self, monkeypatch: pytest.MonkeyPatch) -> None:
        windows, failure = self.attempt(monkeypatch, "127.0.0.1:5432 answered like PostgreSQL")
        assert [2.0] == windows
        assert "wrong_protocol" == getattr(failure, "reason", None)

    def test_a_slow_greeting_is_then_waited_for_in_full(self, monkeypatch: pytest.MonkeyPatch) -> None:
        windows, failure = self.attempt(monkeypatch, None)
        assert [2.0, 30.0] == windows
        assert (True, "connection_reset") == (getattr(failure, "transient", None), getattr(failure, "reason", None))
