from __future__ import annotations

import pytest

from premigrate.model.dsn import parse_url
from premigrate.errors import UsageError


class TestParse:
    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            pytest.param("postgresql://app:secret@db:5433/app", ("postgresql", "db", 5433, "app", "secret", "app"),
                         id="postgresql"),
            pytest.param("postgres://app@db/app", ("postgresql", "db", None, "app", None, "app"), id="postgres-alias"),
            pytest.param("postgresql+psycopg://app@db/app", ("postgresql", "db", None, "app", None, "app"),
                         id="sqlalchemy-style"),
            pytest.param("mysql://root@127.0.0.1:3306/x", ("mysql", "127.0.0.1", 3306, "root", None, "x"), id="mysql"),
            pytest.param("mariadb://u:p%40ss%2Fw@h/x", ("mysql", "h", None, "u", "p@ss/w", "x"),
                         id="mariadb-percent-encoded-password"),
            pytest.param("postgresql://[::1]:5432/x", ("postgresql", "::1", 5432, None, None, "x"), id="ipv6"),
        ],
    )
    def test_server_urls(self, url: str, expected: tuple[object, ...]) -> None:
        """Server URLs split into dialect, host, port, user, password and database."""
        dsn = parse_url(url)
        assert expected == (dsn.dialect, dsn.host, dsn.port, dsn.user, dsn.password, dsn.database)

    @pytest.mark.parametrize(
        ("url", "path"),
        [("sqlite:///relative/path.db", "relative/path.db"), ("sqlite:////abs/path.db", "/abs/path.db"),
         ("sqlite3:///x.db", "x.db")],
    )
    def test_sqlite(self, url: str, path: str) -> None:
        """Three slashes start a relative path, four an absolute one."""
        assert path == parse_url(url).database

    def test_query_parameters_kept(self) -> None:
        """Query parameters pass through to the driver."""
        assert {"sslmode": "require", "connect_timeout": "5"} == parse_url(
            "postgresql://u@h/d?sslmode=require&connect_timeout=5").params_dict

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            pytest.param("oracle://x/y", "unknown database type 'oracle'", id="unknown-scheme"),
            pytest.param("not a url", "not a URL", id="no-scheme"),
            pytest.param("", "empty", id="empty"),
            pytest.param("postgresql://u:secret@h:99999/d", "port", id="bad-port"),
            pytest.param("postgresql://u:secret@h:abc/d", "port", id="port-not-number"),
            pytest.param("sqlite://relative.db", "sqlite:///", id="sqlite-two-slashes"),
            pytest.param("sqlite:///:memory:", "throwaway", id="sqlite-memory"),
            pytest.param("postgresql://u:secret@h/a/b", "'/'", id="path-with-slash"),
        ],
    )
    def test_refuses(self, url: str, message: str) -> None:
        """Malformed URLs are configuration errors that never echo the password."""
        with pytest.raises(UsageError, match=message) as info:
            parse_url(url)
        assert "secret" not in str(info.value)


class TestRedaction:
    def test_password_never_shown(self) -> None:
        """repr, str and redacted() hide the password, including one in the query string."""
        dsn = parse_url("postgresql://app:hunter2@db:5432/app?sslmode=require&password=qs-secret")
        for text in (repr(dsn), str(dsn), dsn.redacted()):
            assert "hunter2" not in text and "qs-secret" not in text
        assert "postgresql://app:***@db:5432/app?sslmode=require&password=%2A%2A%2A" == dsn.redacted()
        assert ["hunter2", "qs-secret"] == dsn.secrets()

    def test_no_password_no_stars(self) -> None:
        """A URL without a password is shown as it is."""
        assert "mysql://root@h/x" == parse_url("mysql://root@h/x").redacted()


class TestHostLists:
    def test_multi_host_url_keeps_the_list_and_libpq_gets_hosts_and_ports(self) -> None:
        """A libpq multi-host URL parses; the driver hands libpq parallel host and port lists."""
        from premigrate.drivers.base import DriverSettings
        from premigrate.drivers.postgres import PostgresDriver

        dsn = parse_url("postgresql://app:pw@db1:5433,db2/app?target_session_attrs=read-write")
        assert "db1:5433,db2" == dsn.host
        assert "postgresql://app:***@db1:5433,db2/app?target_session_attrs=read-write" == dsn.redacted()
        params = PostgresDriver.conninfo_params(dsn, DriverSettings(table="t"))
        assert ("db1,db2", "5433,5432") == (params["host"], params["port"])
        assert "read-write" == params["target_session_attrs"]

    def test_db_host_list_with_one_port(self) -> None:
        """DB_HOST=db1,db2 with DB_PORT: the port applies to every host."""
        from premigrate.config import load_config
        from premigrate.drivers.base import DriverSettings
        from premigrate.drivers.postgres import PostgresDriver

        config = load_config("status", {}, {"DB_DIALECT": "postgresql", "DB_HOST": "db1,db2", "DB_PORT": "6432",
                                            "DB_NAME": "app"})
        params = PostgresDriver.conninfo_params(config.dsn, DriverSettings(table="t"))
        assert ("db1,db2", "6432,6432") == (params["host"], params["port"])

    @pytest.mark.parametrize("url", ["postgresql://u@h1:99999,h2/app", "mysql://u@h1,h2/app",
                                     "postgresql://u@h1,,h2/app"])
    def test_bad_host_lists_are_usage_errors(self, url: str) -> None:
        """A bad port in the list, an empty host, or a list on MySQL: exit 2, the URL not echoed."""
        with pytest.raises(UsageError) as caught:
            parse_url(url)
        assert url not in str(caught.value)
