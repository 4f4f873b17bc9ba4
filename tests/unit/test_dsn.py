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

    @pytest.mark.parametrize("url", ["postgresql://u:secret@[::1/d", "mysql://u:secret@[::1",
                                     "postgresql://[fe80::1:5432/d"])
    def test_unclosed_ipv6_bracket(self, url: str) -> None:
        """An IPv6 host whose '[' is not closed is named as such, not as a bad port or an unencoded password."""
        with pytest.raises(UsageError) as info:
            parse_url(url, source="--database-url")
        message = str(info.value)
        assert message.startswith("--database-url: the host's '[' is not closed; write an IPv6 address in brackets")
        assert "port" not in message and "secret" not in message


class TestUnencodedPasswordCharacters:
    """A raw '#', '@', '/' or '?' in a password must not silently change what the URL means."""

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            pytest.param("postgresql://postgres:x@#y@127.0.0.1:5433/db", "'#'", id="pg-hash-after-at"),
            pytest.param("postgresql://app:P@ss#2024@db:5432/app", "'#'", id="pg-at-and-hash"),
            pytest.param("mysql://app:pass#2024@db/app", "'#'", id="mysql-hash"),
            pytest.param("postgresql://app:pw@db/app#", "'#'", id="empty-fragment"),
            pytest.param("postgresql://app:P@ss@db/app", "more than one '@'", id="pg-two-at"),
            pytest.param("mariadb://app:a@b@c@db/app", "more than one '@'", id="mysql-three-at"),
            pytest.param("postgresql://app:pw@/app", "no host", id="pg-empty-host"),
            pytest.param("postgresql:///app", "no host", id="pg-no-authority"),
            pytest.param("mysql://app:pw@/app", "no host", id="mysql-empty-host"),
            pytest.param("mysql:///app", "no host", id="mysql-no-authority"),
            pytest.param("mysql://app:12/ab@db/app", "'@' after the host", id="slash-in-password"),
            pytest.param("postgresql://app:12?ab@db/app", "'@' after the host", id="question-mark-in-password"),
            pytest.param("postgresql://app:pa/ss@db/app", "port", id="slash-makes-a-port"),
        ],
    )
    def test_refused_with_a_hint(self, url: str, message: str) -> None:
        """The URL is a configuration error that names the problem and says how to percent-encode, without echoing
        the password."""
        with pytest.raises(UsageError, match=message) as info:
            parse_url(url)
        text = str(info.value)
        assert "%23" in text and "%40" in text
        assert "\n" not in text
        for secret in ("P@ss", "2024", "pass#", "12/ab", "12?ab", "pa/ss"):
            assert secret not in text

    @pytest.mark.parametrize(
        ("url", "password", "host", "database"),
        [
            pytest.param("postgresql://app:P%40ss%232024@db:5432/app", "P@ss#2024", "db", "app", id="pg-encoded"),
            pytest.param("mysql://app:x%40%23y%2F%3F@127.0.0.1/app", "x@#y/?", "127.0.0.1", "app",
                         id="mysql-encoded"),
        ],
    )
    def test_percent_encoded_is_accepted(self, url: str, password: str, host: str, database: str) -> None:
        """The percent-encoded form of the same password parses to the intended host, database and password."""
        dsn = parse_url(url)
        assert (password, host, database) == (dsn.password, dsn.host, dsn.database)

    def test_socket_directory_is_a_host(self) -> None:
        """On PostgreSQL a ?host=/socket/dir names the server, so the authority may be empty."""
        assert "/run/postgresql" == parse_url("postgresql:///app?host=/run/postgresql").params_dict["host"]

    @pytest.mark.parametrize("url", ["sqlite:///a#b.db", "sqlite:////data/x@y#z.db"])
    def test_sqlite_paths_keep_hash_and_at(self, url: str) -> None:
        """SQLite URLs are file paths: '#' and '@' are part of the file name."""
        assert url.split("sqlite:///", 1)[1] == parse_url(url).database


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


class TestForeignUrlHints:
    @pytest.mark.parametrize("url, scheme", [
        ("jdbc:postgresql://db.example.com:5432/app", "postgresql://"),
        ("jdbc:mysql://db.example.com:3306/app?user=app", "mysql://"),
        ("JDBC:mariadb://db/app", "mariadb://"),
    ])
    def test_jdbc_prefix(self, url: str, scheme: str) -> None:
        """A JDBC URL is refused with the fix: drop the jdbc: prefix, and the scheme to use."""
        with pytest.raises(UsageError) as caught:
            parse_url(url)
        assert ("drop the jdbc: prefix", scheme) == (
            "drop the jdbc: prefix" if "drop the jdbc: prefix" in caught.value.message else caught.value.message,
            scheme if scheme in caught.value.message else caught.value.message)

    @pytest.mark.parametrize("url, fix", [
        ("postgresql://u@h/db?ssl=true", "sslmode=require"),
        ("postgres://u@h/db?sslmode=disable&SSL=1", "sslmode=require"),
        ("mysql://u@h/db?useSSL=true", "ssl-mode=REQUIRED"),
        ("mariadb://u@h/db?ssl=1", "ssl-mode=REQUIRED"),
    ])
    def test_ssl_flag_points_at_the_mode(self, url: str, fix: str) -> None:
        """Another driver's ssl=true switch is refused with the dialect's own TLS parameter."""
        with pytest.raises(UsageError) as caught:
            parse_url(url)
        assert fix in caught.value.message and "\n" not in caught.value.message

    def test_sslmode_itself_is_accepted(self) -> None:
        """The real parameters still pass."""
        assert {"sslmode": "require"} == parse_url("postgresql://u@h/db?sslmode=require").params_dict


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
