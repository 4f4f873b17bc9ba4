"""Credentials written literally in SQL: masked wherever a statement's text, or a server's error quoting it, reaches a
log line, a stored row or a report.

A migration may set a password in clear (`ALTER ROLE app PASSWORD '...'`, `CREATE USER ... IDENTIFIED BY '...'`);
premigrate never knows that value as a secret (it is not one of its own credentials or placeholders), so the
scrubber in log.py cannot find it by value. It is found by its place in the grammar instead:

- PostgreSQL: `[ENCRYPTED] PASSWORD 'x'` in CREATE/ALTER ROLE and USER, `password 'x'` in the OPTIONS of a user
  mapping or a server (postgres_fdw, dblink_fdw);
- MySQL / MariaDB: `IDENTIFIED BY 'x'`, `IDENTIFIED WITH plugin BY|AS 'x'`, `IDENTIFIED VIA plugin USING 'x'`,
  `SET PASSWORD ... = 'x'`, `PASSWORD('x')`, `OLD_PASSWORD('x')`, `MASTER_PASSWORD = 'x'` (CHANGE MASTER TO, also
  `PRIMARY_PASSWORD`, `SOURCE_PASSWORD`);
- inside any literal: a libpq conninfo `password=x` (dblink_connect, CREATE SUBSCRIPTION ... CONNECTION) and the
  password of a URL `scheme://user:x@host` (FEDERATED's CONNECTION, connection strings).

The literal's quotes stay, its contents become *** (dsn.REDACTED). A statement cut short in a log line may end inside
the literal: the rest of the text is masked then.
"""

from __future__ import annotations

import re

from premigrate.model.dsn import REDACTED
from premigrate.lazy_re import LazyPattern

# A quoted literal, possibly cut short: '...' with '' or a backslash escaping a quote (MySQL, E''), "..." (MySQL
# without ANSI_QUOTES), or PostgreSQL's $tag$...$tag$.
_LITERAL = r"""(?:'(?:[^'\\]|''|\\.)*(?:'|\Z)|"(?:[^"\\]|""|\\.)*(?:"|\Z)|\$(?P<tag>\w*)\$.*?(?:\$(?P=tag)\$|\Z))"""

_BY_GRAMMAR = LazyPattern(
    r"(?P<lead>"
    # PASSWORD 'x', PASSWORD = 'x', PASSWORD('x'), MASTER_PASSWORD='x', password 'x' (OPTIONS); E'x', N'x', _utf8'x'
    r"(?:\b|_)PASSWORD\s*(?:=\s*|\(\s*)?(?:[EN]|_\w+\s*)?"
    r"|\bIDENTIFIED\s+(?:(?:WITH|VIA)\s+[\w'\"`]+\s+)?(?:BY|AS|USING)\s+(?:(?:PASSWORD|OLD_PASSWORD)\s*\(\s*)?"
    r")(?!'')(?P<literal>" + _LITERAL + ")",  # '' is no secret, and may be a conninfo's quote (below)
    re.IGNORECASE | re.DOTALL,
)
# Inside a literal or a message: a conninfo's password=x ('...' quoted or up to the next space or quote) and a URL's
# user:x@ part.
# The quoted form also as it reads inside an SQL literal, its quotes doubled: 'host=db password=''x'''.
_CONNINFO = LazyPattern(r"(?P<lead>\bpassword\s*=\s*)"
                        r"(?P<value>''(?:[^']|'(?!'))*(?:''|\Z)|'(?:[^'\\]|\\.)*(?:'|\Z)|[^\s'\"]+)", re.IGNORECASE)
_URL_PASSWORD = LazyPattern(r"(?P<lead>\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]*:)(?P<value>[^\s/@'\"]+)(?=@)",
                            re.IGNORECASE)
# One cheap test before the three above: most text (every event of a run without such SQL) has none of these.
_MAYBE = re.compile(r"password|identified|://", re.IGNORECASE)


def _mask_literal(match: re.Match[str]) -> str:
    literal = match.group("literal")
    if literal[1:-1] in ("?", REDACTED):  # masked already (a trace's query text masks every literal with '?')
        return match.group(0)
    if literal.startswith("$"):
        tag = f"${match.group('tag') or ''}$"
        return match.group("lead") + tag + REDACTED + (tag if literal.endswith(tag) and len(literal) > len(tag) else "")
    quote = literal[0]
    closed = len(literal) > 1 and literal.endswith(quote)
    return match.group("lead") + quote + REDACTED + (quote if closed else "")


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    if value.startswith("''"):
        return match.group("lead") + "''" + REDACTED + ("''" if len(value) > 3 and value.endswith("''") else "")
    if value.startswith("'"):
        return match.group("lead") + "'" + REDACTED + ("'" if len(value) > 1 and value.endswith("'") else "")
    return match.group("lead") + REDACTED


def redact_credentials(text: str) -> str:
    """`text` with the credentials SQL spells out literally replaced by ***; unchanged when it has none."""
    if not _MAYBE.search(text):
        return text
    # A conninfo first: inside an SQL literal its quoted password reads password=''x''.
    text = _CONNINFO.sub(_mask_value, text)
    text = _BY_GRAMMAR.sub(_mask_literal, text)
    return _URL_PASSWORD.sub(_mask_value, text)


# The value after PASSWORD / IDENTIFIED BY written without quotes: a typo the server rejects, quoting the value
# back in its error without the keyword beside it. Only read from a statement that failed (credentials_in), never
# from other text: "password authentication failed" is no credential.
_BARE = LazyPattern(r"(?:\bPASSWORD\s*=\s*|\bPASSWORD\s+FOR\s+[^=;]+=\s*|\bPASSWORD\s+(?!FOR\b)"
                    r"|\bIDENTIFIED\s+(?:(?:WITH|VIA)\s+[\w`]+\s+)?(?:BY|AS|USING)\s+)(?P<value>[^\s'\"`;,()=]+)",
                    re.IGNORECASE)
_NOT_VALUES = frozenset({"NULL", "DEFAULT", "PASSWORD", "OLD_PASSWORD", "RANDOM", "EXPIRE", "VALID", "LOCK", "FOR"})
# Where PASSWORD and IDENTIFIED BY name a credential: statements about roles and users. Elsewhere `password` is
# mostly a column (`ADD COLUMN password integer`), and the word after it no secret.
_CREDENTIAL_STATEMENT = LazyPattern(r"\s*(?:(?:CREATE|ALTER)\s+(?:ROLE|USER|GROUP)\b|SET\s+PASSWORD\b|GRANT\b)",
                                    re.IGNORECASE)


def credentials_in(statement: str) -> list[str]:
    """The credentials a statement spells out, as values: the contents of the literals redact_credentials masks, and
    a value written without quotes after PASSWORD or IDENTIFIED BY. When a statement fails, the run scrubs these by
    value from then on (log.learn_credentials), so that a server error quoting one without its keyword is masked too:
    PostgreSQL's `syntax error at or near ""x""` for a double-quoted password, MySQL's `near 'x'`."""
    if not _MAYBE.search(statement):
        return []
    found: list[str] = []
    for match in _BY_GRAMMAR.finditer(statement):
        literal = match.group("literal")
        if literal.startswith("$"):
            tag = f"${match.group('tag') or ''}$"
            found.append(literal[len(tag):-len(tag)] if literal.endswith(tag) and len(literal) > len(tag) else "")
        else:
            found.append(literal[1:-1] if len(literal) > 1 and literal.endswith(literal[0]) else literal[1:])
    for pattern in (_CONNINFO, _URL_PASSWORD):
        found += [m.group("value").strip("'") for m in pattern.finditer(statement)]
    if _CREDENTIAL_STATEMENT.match(statement):
        found += [m.group("value") for m in _BARE.finditer(statement) if m.group("value").upper() not in _NOT_VALUES]
    return [value for value in dict.fromkeys(found) if value and value not in ("?", REDACTED)]

