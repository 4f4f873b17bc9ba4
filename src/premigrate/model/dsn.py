"""Database URLs: parsed into a Dsn that never shows its password in repr(), str() or redacted()."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from premigrate.errors import UsageError
from premigrate.lazy_re import LazyPattern

DIALECT_ALIASES = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "pgsql": "postgresql",
    "mysql": "mysql",
    "mariadb": "mysql",
    "sqlite": "sqlite",
    "sqlite3": "sqlite",
}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
# Query parameters whose values are secrets (libpq accepts `password` and `sslpassword` in the URL).
SECRET_PARAMS = frozenset({"password", "sslpassword"})
REDACTED = "***"
# The characters that end a part of a URL early when they appear raw in a user name or password.
ENCODE_HINT = ("percent-encode any of : / ? # @ in the user name or password "
               "(: is %3A, / is %2F, ? is %3F, # is %23, @ is %40)")


def normalize_dialect(name: str, *, source: str, scheme: bool = True) -> str:
    """The dialect a URL's scheme (`scheme`) or a setting's value names."""
    # `postgresql+psycopg://` (SQLAlchemy style) is common in existing environments: the driver part is ignored.
    base = name.lower().split("+", 1)[0]
    try:
        return DIALECT_ALIASES[base]
    except KeyError:
        known = "postgresql://, postgres://, mysql://, mariadb:// or sqlite:///" if scheme else \
            "postgresql, mysql, mariadb or sqlite"
        raise UsageError(f"{source}: unknown database type {name!r}; use {known}") from None


@dataclass(frozen=True)
class Dsn:
    """A parsed database URL (the password never shows in its repr)."""
    dialect: str  # postgresql | mysql | sqlite
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None  # for SQLite: the file path
    params: tuple[tuple[str, str], ...] = ()
    # "mariadb" for a mariadb:// URL: formats that tell MariaDB from MySQL (Liquibase's dbms) read it; else None.
    flavor: str | None = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"Dsn({self.redacted()!r})"

    __str__ = __repr__

    @property
    def params_dict(self) -> dict[str, str]:
        return dict(self.params)

    def secrets(self) -> list[str]:
        """Every secret this DSN carries, for the log scrubber."""
        values = [self.password] if self.password else []
        values += [v for k, v in self.params if k in SECRET_PARAMS and v]
        return values

    def with_password(self, password: str | None) -> Dsn:
        return Dsn(self.dialect, self.host, self.port, self.user, password, self.database, self.params, self.flavor)

    def redacted(self) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:///{self.database}" if self.database else "sqlite://"
        userinfo = ""
        if self.user or self.password:
            userinfo = quote(self.user or "", safe="")
            if self.password:
                userinfo += ":" + REDACTED
            userinfo += "@"
        host = self.host or ""
        if ":" in host and "," not in host:  # IPv6 literal (a host list is kept as written)
            host = f"[{host}]"
        port = f":{self.port}" if self.port else ""
        query = ""
        if self.params:
            query = "?" + urlencode([(k, REDACTED if k in SECRET_PARAMS else v) for k, v in self.params])
        return f"{self.dialect}://{userinfo}{host}{port}/{quote(self.database or '', safe='')}{query}"


# Other drivers' TLS switches (JDBC, node-postgres, Rails, SQLAlchemy), which libpq and PyMySQL do not know.
_SSL_FLAGS = {"ssl", "usessl", "requiressl", "sslenabled", "tls"}
_SSL_MODE_HINT = {
    "postgresql": "use sslmode=require (or verify-full to check the certificate and host name)",
    "mysql": "use ssl-mode=REQUIRED (or VERIFY_IDENTITY to check the certificate and host name)",
}


def _refuse_ssl_flag(params: tuple[tuple[str, str], ...], dialect: str, source: str) -> None:
    for name, _ in params:
        if name.lower() in _SSL_FLAGS:
            raise UsageError(f"{source}: ?{name}= is not a {dialect} URL parameter; {_SSL_MODE_HINT[dialect]}")


_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")  # every run reads one URL: compiled with the module (kept.py)


def parse_url(url: str, *, source: str = "DATABASE_URL") -> Dsn:
    """Parse a database URL. Errors name the source and never echo the URL (it may hold a password)."""
    url = url.strip()
    if not url:
        raise UsageError(f"{source} is empty; set it to e.g. postgresql://user@host:5432/dbname")
    match = _SCHEME.match(url)
    if not match:
        raise UsageError(f"{source} is not a URL: it must start with a scheme such as postgresql://, mysql:// or sqlite:///")
    if match.group(1).lower() == "jdbc":
        inner = re.match(r"jdbc:([A-Za-z][A-Za-z0-9+.-]*):", url, re.I)
        scheme = inner.group(1).lower() if inner else "postgresql"
        raise UsageError(f"{source}: a JDBC URL; drop the jdbc: prefix and use "
                         f"{scheme}://user:password@host:port/dbname (JDBC's ;name=value properties do not apply)")
    dialect = normalize_dialect(match.group(1), source=source)
    if dialect == "sqlite":
        return _parse_sqlite(url, source)
    # A raw '#' or '@' in a password does not fail to parse: it moves the rest of the URL into a fragment or the host,
    # and libpq then fills the gaps from PGHOST/PGDATABASE, so another database would be migrated. A database URL has
    # no use for a fragment, one '@' at most, and a host: anything else is refused before any connection.
    if "#" in url:
        raise UsageError(f"{source}: the URL has a '#', which would cut it short (a fragment); {ENCODE_HINT}")
    url, host_list = _split_host_list(url, dialect, source)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        # urlsplit raises the same ValueError for an unclosed '[' as for a bad port, and the fixes differ.
        host = re.split(r"[/?]", url.split("://", 1)[-1], maxsplit=1)[0].rpartition("@")[2]
        if "[" in host and "]" not in host:
            raise UsageError(f"{source}: the host's '[' is not closed; write an IPv6 address in brackets, e.g. "
                             f"{dialect}://user@[::1]/dbname") from None
        raise UsageError(f"{source}: the port is not a number between 1 and 65535; {ENCODE_HINT}") from None
    if parts.netloc.count("@") > 1:
        raise UsageError(f"{source}: the URL has more than one '@' before the host; {ENCODE_HINT}")
    if "@" not in parts.netloc and "@" in parts.path + parts.query:
        # `user:pa/ss@host` or `user:12?x@host`: the raw '/' or '?' ended the authority inside the password.
        raise UsageError(f"{source}: the URL has an '@' after the host; {ENCODE_HINT}")
    if not parts.netloc and not parts.path.strip("/"):
        raise UsageError(f"{source}: no host and no database name; use e.g. {dialect}://user@host/dbname")
    if port == 0:
        raise UsageError(f"{source}: the port is not a number between 1 and 65535")
    database = unquote(parts.path.lstrip("/")) or None
    if database and "/" in database:
        raise UsageError(
            f"{source}: the database name contains '/'; the path of the URL must be just /dbname; {ENCODE_HINT}")
    try:
        params = tuple(parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)))
    except ValueError:
        raise UsageError(f"{source}: the query string is malformed; use ?name=value&name=value") from None
    _refuse_ssl_flag(params, dialect, source)
    if not parts.hostname and not (dialect == "postgresql" and {"host", "hostaddr"} & {k for k, _ in params}):
        socket = " (or a socket directory: ?host=/run/postgresql)" if dialect == "postgresql" else ""
        raise UsageError(
            f"{source}: the URL names no host; use {dialect}://user:password@host/dbname{socket}; {ENCODE_HINT}")
    return Dsn(
        dialect=dialect,
        host=host_list or (unquote(parts.hostname) if parts.hostname else None),
        port=None if host_list else port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        database=database,
        params=params,
        flavor="mariadb" if match.group(1).lower().split("+", 1)[0] == "mariadb" else None,
    )


_NETLOC = LazyPattern(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?)(?P<hosts>[^/?#@]*)(?P<tail>.*)\Z", re.S)
_HOST_PORT = LazyPattern(r"(?:\[[0-9A-Fa-f:.]+\]|[^:\[\]]+)(?::\d{1,5})?\Z")


def _split_host_list(url: str, dialect: str, source: str) -> tuple[str, str | None]:
    """libpq multi-host URLs (postgresql://h1:5432,h2:5432/db?target_session_attrs=read-write): the host list is
    kept as written ("h1:5432,h2:5432", see split_hosts) and the URL parsed with one placeholder host in its place."""
    match = _NETLOC.match(url) if "," in url else None  # no comma, no host list: the common URL skips the regex
    if match is None or "," not in match["hosts"]:
        return url, None
    if dialect != "postgresql":
        raise UsageError(f"{source}: several hosts in one URL are a PostgreSQL (libpq) feature; {dialect} takes one")
    items = match["hosts"].split(",")
    for item in items:
        if not _HOST_PORT.match(item) or (":" in item.rsplit("]", 1)[-1]
                                          and not 0 < int(item.rsplit(":", 1)[1]) < 65536):
            raise UsageError(f"{source}: the host list must be host[:port],host[:port],... (one host is not)")
    return match["head"] + "multi-host.invalid" + match["tail"], unquote(match["hosts"])


def split_hosts(host: str, default_port: int | None) -> tuple[str, str] | None:
    """A host list "h1:5432,h2,h3:5433" as libpq's host and port parameters ("h1,h2,h3", "5432,5432,5433");
    None for a single host."""
    if "," not in host:
        return None
    hosts, ports = [], []
    for item in host.split(","):
        name, port = item, None
        tail = item.rsplit("]", 1)[-1]
        if ":" in tail:
            name, port = item.rsplit(":", 1)
        hosts.append(name.strip("[]"))
        ports.append(port or str(default_port or ""))
    return ",".join(hosts), ",".join(ports)


def _parse_sqlite(url: str, source: str) -> Dsn:
    # sqlite:///relative/path.db and sqlite:////absolute/path.db: everything after "sqlite://" and one "/" is the path.
    rest = url.split(":", 1)[1]
    if not rest.startswith("///"):
        raise UsageError(f"{source}: a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db")
    path, _, query = rest[3:].partition("?")
    path = unquote(path)
    if query:
        raise UsageError(f"{source}: SQLite URLs take no query parameters")
    if not path or path == ":memory:":
        raise UsageError(
            f"{source}: an in-memory or empty SQLite path would migrate a throwaway database; name a file, "
            "e.g. sqlite:///app.db"
        )
    return Dsn(dialect="sqlite", database=path)
