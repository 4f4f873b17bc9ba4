"""Liquibase formatted SQL changelogs, read the way Liquibase reads them.

Sources followed (liquibase/liquibase, liquibase-standard/src/main/java/liquibase/):
- parser/AbstractFormattedChangeLogParser.java and parser/core/formattedsql/FormattedSqlChangeLogParser.java: the
  header, `--changeset author:id attr:value ...`, `--rollback`, `/* liquibase rollback */` blocks, `--comment`,
  `--validCheckSum`, `--ignoreLines`, `--property`, `--preconditions` and `--precondition-<type>` lines. Every
  regular expression below is transcribed from there (Java `matches()` = Python `fullmatch`, CASE_INSENSITIVE and
  Java's ASCII `\\s`/`\\w` = `re.I | re.A`), and the lines are tried in the same order, so a line means here what it
  means to Liquibase — including its surprises (a SQL comment line `-- comment ...` inside a changeset becomes the
  changeset's comment; `-- property ...` outside the `name: value:` form is an error).
- util/StringUtil.java processMultiLineSQL/isDelimiter/mergeTokens and util/grammar/SimpleSqlGrammar.jj: statement
  splitting on `;`, on `go` or `/` at the start of a line, or on `endDelimiter`, never inside BEGIN ... END (so a
  PostgreSQL `$$ ... $$` body that holds BEGIN/END splits exactly where Liquibase splits it).
- change/AbstractSQLChange.java generateCheckSum + NormalizingStream, change/CheckSum.java, changelog/ChangeSet.java
  generateCheckSum: the checksum version 9 that Liquibase 4.22+ writes to DATABASECHANGELOG.MD5SUM.
- util/ExpressionMatcher.java, ContextExpression.java, LabelExpression.java: context and label expressions.
- database/DatabaseList.java definitionMatches: `dbms` lists (`!x`, `all`, `none`); short names are Liquibase's:
  postgresql, mysql, mariadb (MariaDB is not `mysql` to Liquibase), sqlite.

Deliberate differences, each refused rather than guessed: a changeset without SQL (Liquibase reports it, except for the
last changeset of a file, to which it silently gives the previous changeset's SQL); `--property` lines scoped by
context/labels/dbms; Liquibase Pro lines (`--include`, `--includeAll`, `--rollbackSqlFile`, `--tagDatabase`), refused
with the message Liquibase gives without a licence.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from premigrate.errors import MigrationFileError

FLAGS = re.IGNORECASE | re.ASCII
CHECKSUM_VERSION = 9
DOCS = "https://docs.liquibase.com/concepts/changelogs/sql-format.html"


def _p(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, FLAGS)


# -- line patterns (AbstractFormattedChangeLogParser) -------------------------------------------------------------
FIRST_LINE = _p(r"^\s*--\s*liquibase\s*formatted.*")
PROPERTY = _p(r"\s*--[\s]*property\s+(.*:.*)\s+(.*:.*).*")
ALT_PROPERTY_ONE = _p(r"\s*?[-]+\s*property\s.*")
CHANGE_SET = _p(r'\s*--[\s]*changeset\s+("[^"]+"|[^:]+):\s*("[^"]+"|\S+).*')
ALT_CHANGE_SET_ONE = _p(r"-[\s]*changeset\s.*")
ALT_CHANGE_SET_NO_OTHER_INFO = _p(r"\s*--[\s]*changeset[\s]*.*$")
ROLLBACK = _p(r"\s*--[\s]*rollback (.*)")
ALT_ROLLBACK_ONE = _p(r"\s*-[\s]*rollback\s.*")
PRECONDITIONS = _p(r"\s*--[\s]*preconditions(.*)")
ALT_PRECONDITIONS_ONE = _p(r"\s*-[\s]*preconditions\s.*")
PRECONDITION = _p(r"\s*--[\s]*precondition\-([a-zA-Z0-9-]+) (.*)")
INVALID_EMPTY_PRECONDITION = _p(r"\s*--[\s]*precondition\-([a-zA-Z0-9-]+)")
ALT_PRECONDITION_ONE = _p(r"\s*-[\s]*precondition(.*)")
COMMENT = _p(r"--[\s]*comment:? (.*)")
ALT_COMMENT_PLURAL = _p(r"--[\s]*comments:? (.*)")
ALT_COMMENT_ONE = _p(r"-[\s]*comment:? (.*)")
VALID_CHECK_SUM = _p(r"--[\s]*validCheckSum:? (.*)")
ALT_VALID_CHECK_SUM_ONE = _p(r"^-[\s]*validCheckSum(.*)$")
IGNORE_LINES = _p(r"--[\s]*ignoreLines:(\w+)")
ALT_IGNORE_LINES_ONE = _p(r"-[\s]*?ignoreLines:(\w+).*$")
ALT_IGNORE = _p(r"--[\s]*ignore:(\w+)")
ROLLBACK_MULTI_LINE_START = _p(r"\s*/\*\s*liquibase\s*rollback\s*$")
ROLLBACK_MULTI_LINE_END = _p(r".*\s*\*/\s*$")
# attributes of a --changeset line
STRIP_COMMENTS = _p(r".*stripComments:(\w+).*")
SPLIT_STATEMENTS = _p(r".*splitStatements:(\w+).*")
ROLLBACK_SPLIT_STATEMENTS = _p(r".*rollbackSplitStatements:(\w+).*")
END_DELIMITER = _p(r".*\bendDelimiter:(\S*).*")
ROLLBACK_END_DELIMITER = _p(r".*\brollbackEndDelimiter:(\S*).*")
RUN_WITH = _p(r".*runWith:([\w\$\{\}]+).*")
RUN_ON_CHANGE = _p(r".*runOnChange:(\w+).*")
RUN_ALWAYS = _p(r".*runAlways:(\w+).*")
CONTEXT = _p(r'.*context:(".*?"|\S*).*')
CONTEXT_FILTER = _p(r'.*contextFilter:(".*?"|\S*).*')
LOGICAL_FILE_PATH = _p(r".*logicalFilePath:(\S*).*")
LABELS = _p(r'.*labels:(".*?"|\S*).*')
RUN_IN_TRANSACTION = _p(r".*runInTransaction:(\w+).*")
DBMS = _p(r".*dbms:([^,][\w!,]+).*")
IGNORE = _p(r".*ignore:(\w*).*")
FAIL_ON_ERROR = _p(r".*failOnError:(\w+).*")
ON_FAIL = _p(r".*onFail:(\w+).*")
ON_ERROR = _p(r".*onError:(\w+).*")
ON_UPDATE_SQL = _p(r".*onUpdateSQL:(\w+).*")
ON_SQL_OUTPUT = _p(r".*onSqlOutput:(\w+).*")
ROLLBACK_CHANGE_SET_ID = _p(r".*changeSetId:(\S+).*")
ROLLBACK_CHANGE_SET_AUTHOR = _p(r".*changesetAuthor:(\S+).*")
ROLLBACK_CHANGE_SET_PATH = _p(r".*changesetPath:(\S+).*")
SQL_CHECK_RESULT = [_p(r"^(?:expectedResult:)?(\w+) (.*)"), _p(r"^(?:expectedResult:)?'([^']+)' (.*)"),
                    _p(r'^(?:expectedResult:)?"([^"]+)" (.*)')]
NAME = _p(r".*name:\s*(\S+).*")
VALUE = _p(r".*value:\s*(\S+).*")
TABLE_NAME = _p(r".*table:(\w+).*")
VIEW_NAME = _p(r".*view:(\w+).*")
SCHEMA_NAME = _p(r".*schema:(\w+).*")
# InvalidFormattedSqlPatternsForOssUtil: Liquibase Pro lines
PRO_LINES = [("rollbackSqlFile", _p(r"\s*--[\s]*rollbackSqlFile[\s]+(.*)")),
             ("tagDatabase", _p(r"\s*?--[\s]*?tagDatabase:[\s]+?(.*)")),
             ("include", _p(r"\s*--[\s]*include[\s]+file:.*")),
             ("includeAll", _p(r"\s*--[\s]*includeAll[\s]+(.*)"))]
FAIL_OPTIONS = ("HALT", "CONTINUE", "MARK_RAN", "WARN")
ERROR_OPTIONS = ("HALT", "CONTINUE", "MARK_RAN", "WARN")


# -- values -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Precondition:
    """One `--precondition-<kind>` line.

    sql-check (expected_result, sql), table-exists or view-exists (name, schema).
    """
    kind: str
    line: int
    expected_result: str | None = None
    sql: str | None = None
    name: str | None = None
    schema: str | None = None


@dataclass(frozen=True)
class Preconditions:
    """`--preconditions onFail:... onError:...` and its checks, all of which must pass (Liquibase's implicit AND)."""
    on_fail: str = "HALT"
    on_error: str = "HALT"
    on_fail_message: str | None = None
    on_error_message: str | None = None
    on_sql_output: str | None = None
    checks: tuple[Precondition, ...] = ()


@dataclass(frozen=True)
class Changeset:
    author: str
    id: str
    path: str  # logical path: DATABASECHANGELOG.FILENAME (logicalFilePath, else the changelog's path)
    file: str  # the file it was read from, relative to the changelog root
    line: int  # line of its --changeset
    order: int  # position in the changelog, from 1
    sql: str  # the SQL body as Liquibase holds it (trimmed, properties expanded)
    sql_first_line: int
    statements: tuple[str, ...]
    rollback: tuple[str, ...] | None  # None: no rollback given; (): `--rollback empty` / `not required`
    checksum: str  # "9:<md5>", as Liquibase writes DATABASECHANGELOG.MD5SUM
    run_in_transaction: bool = True
    split_statements: bool = True
    strip_comments: bool = True
    end_delimiter: str | None = None
    run_on_change: bool = False
    run_always: bool = False
    fail_on_error: bool | None = None
    ignore: bool = False
    dbms: tuple[str, ...] = ()
    context: str | None = None  # the context filter expression
    labels: tuple[str, ...] = ()
    comment: str | None = None
    valid_checksums: tuple[str, ...] = ()
    preconditions: Preconditions | None = None
    run_with: str | None = None
    # The first statement Liquibase's split leaves with an unclosed PostgreSQL dollar quote ($$ or $tag$), by index:
    # Liquibase would send the halves of that body as two statements, which PostgreSQL rejects.
    broken_dollar_quote: int | None = None

    @property
    def identity(self) -> str:
        return f"{self.author}:{self.id}:{self.path}"

    def runs_on(self, dbms: str) -> bool:
        """Liquibase's DatabaseList.definitionMatches with an empty list meaning every database."""
        return dbms_matches(self.dbms, dbms)

    def matches_contexts(self, contexts: Collection[str]) -> bool:
        return context_matches(self.context, contexts)

    def matches_labels(self, label_filter: str | None) -> bool:
        return label_filter_matches(label_filter, self.labels)

    def checksum_is_valid(self, stored: str) -> bool:
        """True when a stored MD5SUM matches this changeset: its current checksum or a --validCheckSum (or ANY)."""
        if stored == self.checksum:
            return True
        return any(v.strip().upper() == "ANY" or v.strip() == stored for v in self.valid_checksums)


def _error(file: str, line: int, message: str) -> MigrationFileError:
    return MigrationFileError(f"{file}: line {line}: {message}", file=file, line=line)


def _format_error(file: str, line: int, expected: str) -> MigrationFileError:
    # liquibase-core.properties formatted.changelog.exception.message, in one line
    return _error(file, line, f"unexpected formatting; formatted SQL changelogs require known formats such as "
                              f"'{expected}' (see {DOCS})")


# -- tokens (SimpleSqlGrammar.jj) ---------------------------------------------------------------------------------

_WS = "[ \t\n\r\u0085\u00a0\u1680\u180e\u2000-\u200d\u2028\u2029\u202f\u205f\u2060\u3000\ufeff]+"
_IDENT = r"(?:[^\W\d]|[$@#])(?:\w|[$@#])*"
_QUOTED_IDENT = r'"[^\n\r"]+"|`[^\n\r`]+`|\[[^0-9\]][^\n\r\]]*\]'
_TOKENS: list[tuple[str, re.Pattern[str]]] = [
    ("ws", re.compile(_WS)),
    ("line_comment", re.compile(r"--[^\r\n]*")),
    ("comment", re.compile(r"/\*[^*]*\*+(?:[^*/][^*]*\*+)*/")),
    ("double", re.compile(r"\d*\.\d+(?:[eE][+-]?\d+)?|\d+\.(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+")),
    ("long", re.compile(r"\d+")),
    ("oracle_q", re.compile(r"N?Q'[^ \t\n\r]", re.IGNORECASE)),
    ("complex_ident", re.compile(rf"(?:{_IDENT}|{_QUOTED_IDENT})(?:[\r\n ]*\.[\r\n ]*(?:{_IDENT}|{_QUOTED_IDENT}))+")),
    ("ident", re.compile(_IDENT)),
    ("char_literal", re.compile(r"(?:RB|_utf8|[UENRB])?(?:'(?:''|\\[\s\S]|[^\\'])*(?:'|\\')"
                                r"|\"(?:\"\"|\\[\s\S]|[^\\\"])*(?:\"|\\\"))", re.IGNORECASE)),
    ("quoted_ident", re.compile(_QUOTED_IDENT)),
    ("symbol", re.compile(r"[!-/:-@\[-`{-~]")),
]
_ORACLE_CLOSE = {"[": "]", "{": "}", "(": ")", "<": ">"}


def tokenize(sql: str) -> list[tuple[str, str]]:
    """(kind, text) tokens, by JavaCC's rule: the longest match wins, ties go to the earlier declaration."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(sql)
    while i < n:
        best_kind, best_end = "", i
        for kind, pattern in _TOKENS:
            m = pattern.match(sql, i)
            if m and m.end() > best_end:
                best_kind, best_end = kind, m.end()
        if not best_kind:  # a character the grammar has no token for: kept as itself
            best_kind, best_end = "other", i + 1
        if best_kind == "oracle_q":
            close = _ORACLE_CLOSE.get(sql[best_end - 1], sql[best_end - 1])
            j, previous = best_end, ""
            while j < n:
                if previous == close and sql[j] == "'":
                    j += 1
                    break
                previous = sql[j]
                j += 1
            best_end = j
        tokens.append((best_kind, sql[i:best_end]))
        i = best_end
    return tokens


def _is_delimiter(piece: str, previous: str | None, end_delimiter: str | None) -> bool:
    if end_delimiter is None:
        return piece == ";" or (piece.lower() in ("go", "/") and
                                (previous is None or previous.endswith("\n")))
    if len(end_delimiter) == 1:
        if end_delimiter == "/" and previous is not None and not previous.endswith("\n"):
            return False  # a slash that is not at the start of a line is a division or a comment
        return piece.lower() == end_delimiter.lower()
    if piece.lower() == end_delimiter.lower():
        return True
    try:  # Liquibase matches (previous + piece) against "[\s\n\r]*" + endDelimiter as a regular expression
        return re.fullmatch(r"[\s\n\r]*" + end_delimiter.lower(), (str(previous) + piece).lower()) is not None
    except re.error:
        return False


def _merge_tokens(pieces: list[str], end_delimiter: str | None) -> list[str]:
    """Delimiters such as `//` span several tokens: join them back (StringUtil.mergeTokens)."""
    if end_delimiter is None:
        return pieces
    out: list[str] = []
    pending: list[str] = []
    for piece in pieces:
        if not pending:
            if end_delimiter.startswith(piece):
                pending.append(piece)
            else:
                out.append(piece)
            continue
        joined = "".join(pending) + piece
        if joined == end_delimiter:
            out.append(joined)
            pending = []
        elif end_delimiter.startswith(joined):
            pending.append(piece)
        else:
            out += pending + [piece]
            pending = []
    return out  # a dangling partial delimiter is dropped, as Liquibase drops it


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$")


def unclosed_dollar_quote(statement: str) -> bool:
    """True when a statement opens a PostgreSQL dollar quote it does not close (outside strings and comments)."""
    open_tag: str | None = None
    for kind, text in tokenize(statement):
        if kind in ("line_comment", "comment", "char_literal") and open_tag is None:
            continue
        for tag in _DOLLAR_TAG.findall(text) if kind in ("ident", "complex_ident", "other", "symbol") else []:
            if open_tag is None:
                open_tag = tag
            elif tag == open_tag:
                open_tag = None
    return open_tag is not None


def _java_trim(text: str) -> str:
    # String.trim / StringUtils.trimToNull: strips characters <= U+0020
    start, end = 0, len(text)
    while start < end and text[start] <= " ":
        start += 1
    while end > start and text[end - 1] <= " ":
        end -= 1
    return text[start:end]


def split_statements(sql: str, *, strip_comments: bool, split: bool, end_delimiter: str | None) -> list[str]:
    """StringUtil.processMultiLineSQL (non-strict mode, Liquibase's default)."""
    pieces = [text for kind, text in tokenize(sql.replace("\r", ""))
              if not (strip_comments and kind in ("line_comment", "comment"))]
    pieces = _merge_tokens(pieces, end_delimiter)
    statements: list[str] = []
    current: list[str] = []
    previous: str | None = None
    previous_delimiter = False
    in_clause = 0
    for i, piece in enumerate(pieces):
        following = next((p.strip() for p in pieces[i + 1:] if _java_trim(p)), None)
        following = following.lower() if following else None
        lower = piece.lower()
        if lower == "begin" and following not in ("transaction", "trans", "tran", "dialog", "conversation",
                                                   "distributed"):
            in_clause += 1
        if lower == "end" and in_clause > 0 and following not in ("transaction", "trans", "tran"):
            in_clause -= 1
        if in_clause == 0 and split and _is_delimiter(piece, previous, end_delimiter):
            text = _java_trim("".join(current))
            if text:
                statements.append(text)
            current = []
            previous_delimiter = True
        else:
            # no whitespace right after a delimiter, nor before a statement
            if (not previous_delimiter or _java_trim(piece)) and (current or _java_trim(piece)):
                current.append(piece)
            previous_delimiter = False
        previous = piece
    text = _java_trim("".join(current))
    if text:
        statements.append(text)
    return statements


# -- checksum (ChecksumVersion 9) ---------------------------------------------------------------------------------

def checksum(sql: str | None) -> str:
    """The changeset's MD5SUM: MD5 over "9:<md5 of the SQL's UTF-8 bytes without spaces, tabs, CR, LF>:"."""
    data = (sql or "").encode("utf-8")
    change = hashlib.md5(data.translate(None, b" \t\r\n")).hexdigest()
    outer = unicodedata.normalize("NFC", f"{CHECKSUM_VERSION}:{change}:".replace("\ufffd", ""))
    return f"{CHECKSUM_VERSION}:{hashlib.md5(outer.encode('utf-8')).hexdigest()}"


# -- contexts, labels, dbms ---------------------------------------------------------------------------------------

_NESTED = re.compile(r"\([^()]+\)")


def expression_matches(expression: str, items: Collection[str]) -> bool:
    """util/ExpressionMatcher.matches: `a and b`, `a or b`, `a, b` (or), `!a` / `not a`, parentheses, `@required`."""
    expression = _java_trim(expression)
    if expression == ":TRUE":
        return True
    if expression == ":FALSE":
        return False
    while "(" in expression:
        m = _NESTED.search(expression)
        if not m:
            raise ValueError(f"cannot parse expression {expression!r}")
        inner = expression_matches(expression[m.start() + 1:m.end() - 1], items)
        expression = f"{expression[:m.start()]} :{str(inner).upper()} {expression[m.end():]}"
    expression = re.sub(r"\s*,\s*", " or ", expression)
    ors = re.split(r"\s+or\s+", expression)
    if len(ors) > 1:
        return any(expression_matches(part, items) for part in ors)
    ands = re.split(r"\s+and\s+", expression)
    if len(ands) > 1:
        return all(expression_matches(part, items) for part in ands)
    negated = False
    if expression.startswith("!"):
        negated, expression = True, expression[1:].strip()
    elif expression.lower().startswith("not "):
        negated, expression = True, expression[4:].strip()
    elif re.match(r"^@\s*(!|not ).+", expression):
        negated, expression = True, re.sub(r"^@\s*(!|not )", "", expression, count=1).strip()
    required = False
    if expression.startswith("@"):
        required, expression = True, expression[1:].strip()
    if not required and expression.lower() == "nocontexts":
        return negated ^ (not items)
    if not required and not items:
        return True
    if expression.strip() == ":TRUE":
        return not negated
    if expression.strip() == ":FALSE":
        return negated
    for item in items:
        if item.startswith("@"):
            item = item[1:].strip()
        if item.lower() == expression.lower():
            return not negated
    return negated


def split_expressions(text: str | None) -> list[str]:
    """ContextExpression.splitAndTrimContextExpressions: commas outside parentheses separate alternatives."""
    text = _java_trim(text or "")
    if not text:
        return []
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")" and depth > 0:
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    while parts and not parts[-1]:
        parts.pop()
    return [p.lower() for p in parts]


def context_matches(changeset_context: str | None, runtime_contexts: Collection[str]) -> bool:
    """ContextExpression.matches: the changeset's filter against the run's --contexts."""
    expressions = split_expressions(changeset_context)
    runtime = [c.lower() for c in runtime_contexts]
    if not expressions:
        return not any(re.search(r"nocontexts", c, re.IGNORECASE) for c in runtime)
    return any(expression_matches(e, runtime) for e in expressions)


def label_filter_matches(label_filter: str | None, changeset_labels: Collection[str]) -> bool:
    """LabelExpression.matches: the run's --labels expression against the changeset's labels. Unlike contexts,
    LabelExpression splits on every comma (StringUtil.splitAndTrim), parentheses or not."""
    expressions = [p.strip().lower() for p in (label_filter or "").split(",") if p.strip()]
    if not expressions:
        return True
    labels = [label.lower() for label in changeset_labels]
    return any(expression_matches(e, labels) for e in expressions)


def dbms_matches(definition: Iterable[str], dbms: str) -> bool:
    items = [d for d in definition if d]
    if not items:
        return True
    if "all" in items:
        return True
    if "none" in items:
        return False
    if f"!{dbms}" in items:
        return False
    supported = {d for d in items if not d.startswith("!")}
    return not supported or dbms in supported


# -- one formatted SQL file ---------------------------------------------------------------------------------------

def is_formatted_sql(text: str) -> bool:
    """Liquibase's supports(): the first non-blank line matches `--liquibase formatted ...`."""
    for line in _lines(text):
        if line.strip():
            return FIRST_LINE.fullmatch(line) is not None
    return False


def _lines(text: str) -> list[str]:
    lines = re.split(r"\r\n|\r|\n", text.removeprefix("\ufeff"))
    if lines and lines[-1] == "":
        lines.pop()  # BufferedReader.readLine yields no empty line after a final newline
    return lines


def _bool(pattern: re.Pattern[str], line: str, default: bool) -> bool:
    m = pattern.fullmatch(line)
    return m.group(1).lower() == "true" if m else default  # Boolean.parseBoolean: anything else is false


def _string(pattern: re.Pattern[str], line: str) -> str | None:
    m = pattern.fullmatch(line)
    return m.group(1) if m else None


def _strip_quotes(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _string_attribute(body: str, name: str) -> str | None:
    """FormattedSqlChangeLogParser.parseStringAttribute: `name:value` or `name:"quoted value"`."""
    start, quote = -1, ""
    for i in range(len(body) + 1):
        char = body[i] if i < len(body) else " "
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'" and start >= 0 and i > start and body[i - 1] == ":":
            quote = char
        elif char.isspace():
            if start >= 0:
                token = body[start:i]
                colon = token.find(":")
                if colon > 0 and token[:colon].lower() == name.lower():
                    return token[colon + 1:].strip() or None
                start = -1
        elif start < 0:
            start = i
    return None


@dataclass
class _Open:
    """The changeset being read."""
    author: str
    id: str
    path: str
    line: int
    header: str
    body: list[str] = field(default_factory=list)
    body_first_line: int = 0
    rollback: list[str] = field(default_factory=list)
    rollback_line: int = 0
    comment: str | None = None
    valid_checksums: list[str] = field(default_factory=list)
    preconditions: dict[str, Any] | None = None
    checks: list[Precondition] = field(default_factory=list)


class _Expander:
    """ChangeLogParameters.expandExpressions for `--property` values and the caller's parameters: `${name}`."""

    def __init__(self, parameters: Mapping[str, str] | None) -> None:
        self.values: dict[str, str] = dict(parameters or {})

    def define(self, name: str, value: str) -> None:
        self.values.setdefault(name, value)  # the first definition wins, as in Liquibase

    def __call__(self, text: str) -> str:
        return re.sub(r"\$\{([^{}:]+)\}", lambda m: self.values.get(m.group(1), m.group(0)), text)


def parse_formatted_sql(text: str, file: str, *, order_start: int = 1,
                        parameters: Mapping[str, str] | None = None,
                        earlier: Iterable[Changeset] = ()) -> list[Changeset]:
    """The changesets of one formatted SQL changelog, in file order. `file` is its path relative to the changelog
    root (DATABASECHANGELOG.FILENAME unless a logicalFilePath says otherwise). `earlier` holds changesets of files
    read before this one, which a `--rollback changesetId:... changesetAuthor:...` may point at."""
    if not is_formatted_sql(text):
        raise _error(file, 1, "not a Liquibase formatted SQL changelog: its first line must be "
                              "'--liquibase formatted sql'")
    expand = _Expander(parameters)
    lines = _lines(text)
    logical_path: str | None = None
    result: list[Changeset] = []
    known: dict[tuple[str, str, str], Changeset] = {(c.path, c.author, c.id): c for c in earlier}
    current: _Open | None = None
    n = 0

    def close(final: bool) -> None:
        nonlocal current
        if current is None:
            return
        changeset = _finish(current, file, order_start + len(result), expand, known, last=final)
        result.append(changeset)
        known[(changeset.path, changeset.author, changeset.id)] = changeset
        current = None

    while n < len(lines):
        line = lines[n]
        n += 1
        header = FIRST_LINE.fullmatch(line)
        if PROPERTY.fullmatch(line):
            _property(line, file, n, expand)
            continue
        if ALT_PROPERTY_ONE.fullmatch(line):
            raise _format_error(file, n, "--property name:<name> value:<value>")
        if header and logical_path is None:
            logical_path = _string(LOGICAL_FILE_PATH, line)
        ignore_lines = IGNORE_LINES.fullmatch(line)
        if ignore_lines:
            argument = ignore_lines.group(1)
            if argument == "start":
                while n < len(lines):
                    line = lines[n]
                    n += 1
                    m = IGNORE_LINES.fullmatch(line)
                    if m and m.group(1) == "end":
                        break
                    if not m and ALT_IGNORE_LINES_ONE.fullmatch(line):
                        raise _format_error(file, n, "--ignoreLines:end")
                continue
            if not argument.isdigit():
                raise _error(file, n, f'unknown ignoreLines syntax: "{argument}" (a line count, or start ... end)')
            n = min(len(lines), n + int(argument))
            continue
        if ALT_IGNORE_LINES_ONE.fullmatch(line) or ALT_IGNORE.fullmatch(line):
            raise _format_error(file, n, "--ignoreLines:<count|start>")
        changeset = CHANGE_SET.fullmatch(line)
        if changeset:
            close(final=False)
            current = _open(line, changeset, file, n, logical_path, expand)
            continue
        if ALT_CHANGE_SET_ONE.fullmatch(line) or ALT_CHANGE_SET_NO_OTHER_INFO.fullmatch(line):
            raise _format_error(file, n, "--changeset <authorname>:<changesetId>")
        for name, pattern in PRO_LINES:
            if pattern.fullmatch(line):
                raise _error(file, n, f"'{name}' in a formatted SQL changelog is a Liquibase Pro feature; list the "
                                      "files in a master changelog (XML or YAML) instead")
        if current is None:
            if COMMENT.fullmatch(line):
                raise _error(file, n, f"formatted SQL changelogs do not allow comment lines outside of changesets "
                                      f"(see {DOCS})")
            continue
        n = _changeset_line(current, lines, line, n, file, expand)
    close(final=True)
    return result


def _property(line: str, file: str, number: int, expand: _Expander) -> None:
    name, value = _string(NAME, line), _string(VALUE, line)
    if name is None or value is None:
        raise _format_error(file, number, "--property name:<name> value:<value>")
    for scope in (CONTEXT, CONTEXT_FILTER, LABELS, DBMS):
        if scope.fullmatch(line):
            raise _error(file, number, f"--property {name}: a property scoped by context, labels or dbms is not "
                                       "supported; pass the value with the run's parameters instead")
    expand.define(expand(name), expand(value))


def _open(line: str, m: re.Match[str], file: str, number: int, logical_path: str | None,
          expand: _Expander) -> _Open:
    author_group, id_group = m.group(1), m.group(2)
    exact = re.compile(r"\s*--[\s]*changeset\s+" + re.escape(f"{author_group}:{id_group}") + r".*$", FLAGS)
    if not exact.fullmatch(line):
        raise _format_error(file, number, "--changeset <authorname>:<changesetId>")
    change_id = expand(_strip_quotes(id_group))
    if not change_id.replace(":", "").replace(" ", ""):
        raise _error(file, number, "the changeset id cannot be empty")
    path = _string(LOGICAL_FILE_PATH, line) or logical_path or file
    return _Open(author=expand(_strip_quotes(author_group)), id=change_id, path=_normalize_path(expand(path)),
                 line=number, header=line)


def _normalize_path(path: str) -> str:
    """DatabaseChangeLog.normalizePath: forward slashes, no leading ./ or /."""
    path = path.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return re.sub(r"/+", "/", path)


def _changeset_line(cs: _Open, lines: list[str], line: str, n: int, file: str, expand: _Expander) -> int:
    """One line inside a changeset (AbstractFormattedChangeLogParser.configureChangeSet); returns the next line."""
    comment = COMMENT.fullmatch(line)
    rollback = ROLLBACK.fullmatch(line)
    preconditions = PRECONDITIONS.fullmatch(line)
    precondition = PRECONDITION.fullmatch(line)
    valid = VALID_CHECK_SUM.fullmatch(line)
    if comment:
        cs.comment = comment.group(1)
    elif ALT_COMMENT_ONE.fullmatch(line) or ALT_COMMENT_PLURAL.fullmatch(line):
        raise _format_error(file, n, "--comment <comment>")
    elif valid:
        cs.valid_checksums.append(valid.group(1))
    elif ALT_VALID_CHECK_SUM_ONE.fullmatch(line):
        raise _format_error(file, n, "--validCheckSum <checksum>")
    elif rollback:
        cs.rollback.append(rollback.group(1) + "\n")
        cs.rollback_line = cs.rollback_line or n
    elif ALT_ROLLBACK_ONE.fullmatch(line):
        raise _format_error(file, n, "--rollback <rollback SQL>")
    elif ROLLBACK_MULTI_LINE_START.fullmatch(line):
        start = n
        cs.rollback_line = cs.rollback_line or n + 1
        while True:
            if n >= len(lines):
                raise _error(file, start, "the /* liquibase rollback block is not closed with */")
            inner = lines[n]
            n += 1
            if ROLLBACK_MULTI_LINE_END.fullmatch(inner):
                before = re.split(r"\*/\s*$", inner)[0]
                if before.strip():
                    cs.rollback.append(before)
                break
            cs.rollback.append(inner)  # Liquibase joins the block's lines without a separator
    elif preconditions:
        if cs.preconditions is not None:
            pass  # a second --preconditions line replaces the options, as setPreconditions does
        cs.preconditions = _preconditions(preconditions.group(1), file, n)
    elif ALT_PRECONDITIONS_ONE.fullmatch(line):
        raise _format_error(file, n, "--preconditions <onFail>|<onError>|<onUpdate>")
    elif precondition:
        cs.checks.append(_precondition(precondition.group(1), expand(precondition.group(2).strip()), file, n))
    elif ALT_PRECONDITION_ONE.fullmatch(line):
        raise _format_error(file, n, "--precondition-sql-check")
    elif INVALID_EMPTY_PRECONDITION.fullmatch(line):
        kind = INVALID_EMPTY_PRECONDITION.fullmatch(line).group(1)  # type: ignore[union-attr]
        missing = {"sql-check": "its expectedResult and SQL", "table-exists": "table:<name>",
                   "view-exists": "view:<name>"}
        if kind in missing:
            raise _error(file, n, f"--precondition-{kind} is missing {missing[kind]}")
        raise _error(file, n, f"the '{kind}' precondition type is not supported (sql-check, table-exists, "
                              "view-exists)")
    else:
        if not cs.body_first_line and line.strip():
            cs.body_first_line = n
        cs.body.append(line + "\n")
    return n


def _preconditions(body: str, file: str, n: int) -> dict[str, Any]:
    on_fail, on_error = _string(ON_FAIL, body), _string(ON_ERROR, body)
    for name, value, allowed in (("onFail", on_fail, FAIL_OPTIONS), ("onError", on_error, ERROR_OPTIONS)):
        if value is not None and value.upper() not in allowed:
            raise _error(file, n, f"--preconditions {name}:{value}: expected one of {', '.join(allowed)}")
    sql_output, update_sql = _string(ON_SQL_OUTPUT, body), _string(ON_UPDATE_SQL, body)
    if sql_output and update_sql:
        raise _error(file, n, "--preconditions: set either onUpdateSql or onSqlOutput, not both")
    fail_message = _string_attribute(body, "onFailMessage")
    error_message = _string_attribute(body, "onErrorMessage")
    return {"on_fail": (on_fail or "HALT").upper(), "on_error": (on_error or "HALT").upper(),
            "on_fail_message": _strip_quotes(fail_message) if fail_message else None,
            "on_error_message": _strip_quotes(error_message) if error_message else None,
            "on_sql_output": sql_output or update_sql}


def _precondition(kind: str, body: str, file: str, n: int) -> Precondition:
    if kind == "sql-check":
        for pattern in SQL_CHECK_RESULT:
            m = pattern.fullmatch(body)
            if m:
                return Precondition("sql-check", n, expected_result=m.group(1), sql=m.group(2))
        raise _error(file, n, f"cannot read a sql-check precondition from {body!r}; write "
                              "'--precondition-sql-check expectedResult:<value> <sql>'")
    if kind in ("table-exists", "view-exists"):
        pattern = TABLE_NAME if kind == "table-exists" else VIEW_NAME
        word = "table" if kind == "table-exists" else "view"
        m = pattern.fullmatch(body)
        if not m:
            raise _error(file, n, f"--precondition-{kind}: the {word} name was not given as {word}:<name>")
        return Precondition(kind, n, name=m.group(1), schema=_string(SCHEMA_NAME, body))
    raise _error(file, n, f"the '{kind}' precondition type is not supported (sql-check, table-exists, view-exists)")


def _finish(cs: _Open, file: str, order: int, expand: _Expander,
            known: Mapping[tuple[str, str, str], Changeset], *, last: bool = False) -> Changeset:
    header = cs.header
    sql = _java_trim(expand("".join(cs.body)))
    if not sql:
        raise _error(file, cs.line, f"changeset {cs.author}:{cs.id} has no SQL; give it SQL or remove it")
    strip = _bool(STRIP_COMMENTS, header, True)
    split = _bool(SPLIT_STATEMENTS, header, True)
    end_delimiter = _string(END_DELIMITER, header)
    if last and end_delimiter is None and sql.endswith("\n/"):
        # handleChangeSet/isNotEndDelimiter: only the file's last changeset, when its SQL ends with a "/" line,
        # gets the end delimiter "\n/$" (Oracle style); the others split on ";" as usual.
        end_delimiter = "\n/$"
    statements = split_statements(sql, strip_comments=strip, split=split, end_delimiter=end_delimiter)
    rollback = _rollback(cs, file, expand, known)
    context = _string(CONTEXT_FILTER, header) or _string(CONTEXT, header)
    labels = _string(LABELS, header)
    dbms = _string(DBMS, header)
    fail_on_error = _string(FAIL_ON_ERROR, header)
    preconditions = None
    if cs.preconditions is not None or cs.checks:
        preconditions = Preconditions(**(cs.preconditions or {}), checks=tuple(cs.checks))
    return Changeset(
        author=cs.author, id=cs.id, path=cs.path, file=file, line=cs.line, order=order, sql=sql,
        sql_first_line=cs.body_first_line or cs.line + 1, statements=tuple(statements), rollback=rollback,
        checksum=checksum(sql), run_in_transaction=_bool(RUN_IN_TRANSACTION, header, True), split_statements=split,
        strip_comments=strip, end_delimiter=end_delimiter, run_on_change=_bool(RUN_ON_CHANGE, header, False),
        run_always=_bool(RUN_ALWAYS, header, False),
        fail_on_error=None if fail_on_error is None else fail_on_error.lower() == "true",
        ignore=(_string(IGNORE, header) or "").lower() == "true",
        dbms=tuple(d.strip().lower() for d in expand(dbms).split(",") if d.strip()) if dbms else (),
        context=expand(_strip_quotes(context)) if context else None,
        labels=tuple(x.strip().lower() for x in expand(_strip_quotes(labels)).split(",") if x.strip()) if labels
        else (),  # Labels: split on commas, trimmed, lower case
        comment=cs.comment, valid_checksums=tuple(cs.valid_checksums), preconditions=preconditions,
        run_with=_string(RUN_WITH, header),
        broken_dollar_quote=next((i for i, s in enumerate(statements) if unclosed_dollar_quote(s)), None),
    )


def _rollback(cs: _Open, file: str, expand: _Expander,
              known: Mapping[tuple[str, str, str], Changeset]) -> tuple[str, ...] | None:
    text = "".join(cs.rollback)
    if not _java_trim(text):
        return None
    lowered = text.strip().lower()
    if re.match(r"^not required", lowered) or re.match(r"^empty", lowered):
        return ()
    if "changesetid" in lowered:
        flat = text.replace("\n", "").replace("\r", "")
        change_id = _string(ROLLBACK_CHANGE_SET_ID, flat)
        author = _string(ROLLBACK_CHANGE_SET_AUTHOR, flat)
        path = _string(ROLLBACK_CHANGE_SET_PATH, flat) or cs.path
        if change_id is None:
            raise _error(file, cs.rollback_line, "'changesetId' not set in the rollback")
        if author is None:
            raise _error(file, cs.rollback_line, "'changesetAuthor' not set in the rollback")
        target = known.get((_normalize_path(path), author.strip(), change_id.strip()))
        if target is None:
            raise _error(file, cs.rollback_line, f"rollback names changeset {path}::{change_id}::{author}, which "
                                                 "is not earlier in the changelog")
        return target.statements
    header = cs.header
    split = _bool(ROLLBACK_SPLIT_STATEMENTS, header, True)
    return tuple(split_statements(expand(text), strip_comments=False, split=split,
                                  end_delimiter=_string(ROLLBACK_END_DELIMITER, header)))


# -- changelogs: one file, a folder (includeAll), or a master changelog in XML or YAML ----------------------------

MASTER_SUFFIXES = (".xml", ".yaml", ".yml")


def load_changelog(root: Path, changelog: str | None = None, *,
                   parameters: Mapping[str, str] | None = None,
                   read: Callable[[Path], str] | None = None) -> list[Changeset]:
    """Every changeset, in changelog order. `changelog` (relative to `root`) is a master changelog (XML or YAML) or
    one formatted SQL file; without it the folder is read as `<includeAll path="."/>` would read it."""
    reader = read or (lambda p: p.read_text(encoding="utf-8"))
    loader = _Loader(root, reader, parameters)
    if changelog is None:
        loader.include_all(".", root, relative=False, source="(folder)", line=0, options={})
    elif changelog.lower().endswith(MASTER_SUFFIXES):
        loader.master(changelog)
    else:
        loader.include(changelog, source="(command line)", line=0)
    return loader.changesets


class _Loader:
    def __init__(self, root: Path, read: Callable[[Path], str], parameters: Mapping[str, str] | None) -> None:
        self.root = root
        self.read = read
        self.parameters = dict(parameters or {})
        self.changesets: list[Changeset] = []
        self.seen: set[str] = set()

    def _text(self, relative: str, source: str, line: int) -> str:
        path = self.root / relative
        try:
            return self.read(path)
        except FileNotFoundError:
            raise _error(source, line, f"{relative}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _error(source, line, f"{relative}: cannot read it ({exc})") from None

    def include(self, relative: str, source: str, line: int) -> None:
        relative = _normalize_path(relative)
        if relative in self.seen:
            return  # Liquibase includes a changelog once
        self.seen.add(relative)
        if relative.lower().endswith(MASTER_SUFFIXES):
            self.master(relative)
            return
        if not relative.lower().endswith(".sql"):
            raise _error(source, line, f"{relative}: only formatted SQL changelogs (.sql) and XML/YAML master "
                                       "changelogs are read")
        text = self._text(relative, source, line)
        if not is_formatted_sql(text):
            raise _error(relative, 1, "not a Liquibase formatted SQL changelog (its first line is not "
                                      "'--liquibase formatted sql'); plain SQL files are not read as changesets")
        found = parse_formatted_sql(text, relative, order_start=len(self.changesets) + 1,
                                    parameters=self.parameters, earlier=self.changesets)
        identities = {(c.path, c.author, c.id): c for c in self.changesets}
        for changeset in found:
            key = (changeset.path, changeset.author, changeset.id)
            if key in identities:
                first = identities[key]
                raise _error(relative, changeset.line, f"changeset {changeset.identity} is declared twice (first in "
                                                       f"{first.file} line {first.line})")
            identities[key] = changeset
        self.changesets += found

    def include_all(self, path: str, base: Path, *, relative: bool, source: str, line: int,
                    options: Mapping[str, Any]) -> None:
        folder = (base / path) if relative else (self.root / path)
        try:
            folder_rel = folder.resolve().relative_to(self.root.resolve())
        except ValueError:
            raise _error(source, line, f"includeAll {path!r} points outside the changelog folder") from None
        if not folder.is_dir():
            if options.get("errorIfMissingOrEmpty", True):
                raise _error(source, line, f"includeAll {path!r}: no such folder")
            return
        min_depth = int(options.get("minDepth", 0))
        max_depth = int(options.get("maxDepth", 2 ** 31 - 1))
        ends_with = str(options.get("endsWithFilter", "") or "")
        found: list[str] = []
        for directory, _dirs, files in os.walk(folder):
            depth = len(Path(directory).relative_to(folder).parts) + 1
            if depth < min_depth or depth > max_depth:
                continue
            for name in files:
                if name.startswith("."):
                    continue
                rel = PurePosixPath(*Path(directory, name).resolve().relative_to(self.root.resolve()).parts)
                text_name = str(rel)
                if ends_with and not text_name.lower().endswith(ends_with.lower()):
                    continue
                if text_name.lower().endswith((".sql",) + MASTER_SUFFIXES):
                    found.append(text_name)
        if not found and options.get("errorIfMissingOrEmpty", True):
            raise _error(source, line, f"includeAll {path!r} ({folder_rel}) holds no changelog")
        for name in sorted(found):  # getStandardChangeLogComparator: by path
            self.include(name, source, line)

    def master(self, relative: str) -> None:
        self.seen.add(_normalize_path(relative))
        text = self._text(relative, "(changelog)", 0)
        entries = _master_entries(text, relative)
        base = (self.root / relative).parent
        for kind, attrs, line in entries:
            known = {"include": {"file", "relativeToChangelogFile", "errorIfMissing"},
                     "includeAll": {"path", "relativeToChangelogFile", "errorIfMissingOrEmpty", "minDepth",
                                    "maxDepth", "endsWithFilter"}}[kind]
            unknown = sorted(set(attrs) - known)
            if unknown:
                raise _error(relative, line, f"{kind} attribute {unknown[0]!r} is not supported (supported: "
                                             f"{', '.join(sorted(known))})")
            is_relative = str(attrs.get("relativeToChangelogFile", "false")).lower() == "true"
            if kind == "include":
                target = attrs.get("file")
                if not target:
                    raise _error(relative, line, "include without a file attribute")
                target = str(target)
                if is_relative:
                    target = str(PurePosixPath(*(base / target).resolve().relative_to(self.root.resolve()).parts))
                self.include(target, relative, line)
            else:
                path = attrs.get("path")
                if not path:
                    raise _error(relative, line, "includeAll without a path attribute")
                options = {k: v for k, v in attrs.items() if k in ("minDepth", "maxDepth", "endsWithFilter")}
                options["errorIfMissingOrEmpty"] = str(attrs.get("errorIfMissingOrEmpty", "true")).lower() == "true"
                self.include_all(str(path), base, relative=is_relative, source=relative, line=line, options=options)


def _master_entries(text: str, file: str) -> list[tuple[str, dict[str, Any], int]]:
    if file.lower().endswith(".xml"):
        return _xml_entries(text, file)
    return _yaml_entries(text, file)


def _xml_entries(text: str, file: str) -> list[tuple[str, dict[str, Any], int]]:
    import xml.etree.ElementTree as ET
    from xml.parsers import expat

    lines: dict[int, int] = {}
    parser = ET.XMLParser()
    try:
        parser.feed(text)
        root = parser.close()
    except ET.ParseError as exc:
        raise _error(file, exc.position[0], f"not well-formed XML: {exc}") from None
    # ElementTree keeps no line numbers: find each element's line with a second, event-based pass.
    order: list[int] = []
    p = expat.ParserCreate()
    depth = [0]

    def start(_name: str, _attrs: dict[str, str]) -> None:
        depth[0] += 1
        if depth[0] == 2:
            order.append(p.CurrentLineNumber)

    def end(_name: str) -> None:
        depth[0] -= 1

    p.StartElementHandler = start
    p.EndElementHandler = end
    p.Parse(text, True)
    if _local(root.tag) != "databaseChangeLog":
        raise _error(file, 1, f"the root element is <{_local(root.tag)}>, not <databaseChangeLog>")
    out: list[tuple[str, dict[str, Any], int]] = []
    for index, child in enumerate(list(root)):
        line = order[index] if index < len(order) else 0
        lines[index] = line
        out.append(_entry(_local(child.tag), dict(child.attrib), file, line,
                          [_local(c.tag) for c in child]))
    return out


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _yaml_entries(text: str, file: str) -> list[tuple[str, dict[str, Any], int]]:
    import yaml  # type: ignore[import-untyped,unused-ignore]  # only a YAML master changelog pays for it

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _error(file, mark.line + 1 if mark else 1, f"not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict) or "databaseChangeLog" not in data:
        raise _error(file, 1, "a YAML master changelog holds a top-level 'databaseChangeLog:' list")
    items = data["databaseChangeLog"] or []
    if not isinstance(items, list):
        raise _error(file, 1, "'databaseChangeLog:' must be a list of include/includeAll entries")
    line_of: list[int] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "databaseChangeLog" and isinstance(value, yaml.SequenceNode):
                line_of = [item.start_mark.line + 1 for item in value.value]
    out = []
    for index, item in enumerate(items):
        line = line_of[index] if index < len(line_of) else 0
        if not isinstance(item, dict) or len(item) != 1:
            raise _error(file, line, "each databaseChangeLog entry is one of include:, includeAll:")
        (kind, attrs), = item.items()
        children = list(attrs.get("changes", [])) if kind == "changeSet" and isinstance(attrs, dict) else []
        names = [next(iter(c)) for c in children if isinstance(c, dict) and c]
        out.append(_entry(str(kind), dict(attrs) if isinstance(attrs, dict) else {}, file, line, names))
    return out


def _entry(kind: str, attrs: dict[str, Any], file: str, line: int,
           children: list[str]) -> tuple[str, dict[str, Any], int]:
    if kind in ("include", "includeAll"):
        return kind, attrs, line
    if kind == "changeSet":
        changes = [c for c in children if c not in ("comment", "rollback", "preConditions", "validCheckSum")]
        what = f"change type <{changes[0]}>" if changes else "a changeSet"
        raise _error(file, line, f"{what} in a master changelog is not supported: only include/includeAll of "
                                 "formatted SQL files are read; move the change into a formatted SQL changelog")
    raise _error(file, line, f"<{kind}> in a master changelog is not supported: only include/includeAll of formatted "
                             "SQL files are read")


# -- DATABASECHANGELOG: what has run --------------------------------------------------------------------------------

RAN_EXECTYPES = ("EXECUTED", "MARK_RAN", "RERAN")  # changelog/ChangeSet.java ExecType with ran = true


@dataclass(frozen=True)
class RanChangeset:
    """One DATABASECHANGELOG row (sqlgenerator/core/CreateDatabaseChangeLogTableGenerator.java)."""
    id: str
    author: str
    filename: str
    exectype: str
    md5sum: str | None
    order: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return _normalize_path(self.filename), self.author, self.id


@dataclass
class HistoryMatch:
    """The changelog against DATABASECHANGELOG, the way Liquibase's update and validate see them."""
    ran: list[Changeset] = field(default_factory=list)  # in the history with a matching (or accepted) checksum
    pending: list[Changeset] = field(default_factory=list)  # never ran (or ran as SKIPPED/FAILED)
    rerun: list[Changeset] = field(default_factory=list)  # runAlways, or runOnChange with a new checksum
    changed: list[tuple[Changeset, str]] = field(default_factory=list)  # checksum drift: (changeset, stored sum)
    unverifiable: list[tuple[Changeset, str]] = field(default_factory=list)  # stored by a checksum version != 9
    only_in_history: list[RanChangeset] = field(default_factory=list)
    failed: list[RanChangeset] = field(default_factory=list)


def match_history(changesets: Iterable[Changeset], rows: Iterable[RanChangeset]) -> HistoryMatch:
    """Pure: which changesets ran, which are pending, which drifted. Identity is path + author + id; a stored
    checksum of another checksum version (Liquibase before 4.22 wrote "8:...") cannot be recomputed here and is
    reported as unverifiable; a NULL MD5SUM is accepted (Liquibase fills it in on its next update)."""
    result = HistoryMatch()
    latest: dict[tuple[str, str, str], RanChangeset] = {}
    for ran in sorted(rows, key=lambda r: r.order):
        latest[ran.key] = ran
    seen: set[tuple[str, str, str]] = set()
    for changeset in changesets:
        key = (changeset.path, changeset.author, changeset.id)
        row = latest.get(key)
        seen.add(key)
        if row is None or row.exectype.upper() not in RAN_EXECTYPES:
            if row is not None and row.exectype.upper() == "FAILED":
                result.failed.append(row)
            result.pending.append(changeset)
            continue
        stored = (row.md5sum or "").strip()
        if changeset.run_always:
            result.rerun.append(changeset)
        elif not stored or changeset.checksum_is_valid(stored):
            result.ran.append(changeset)
        elif not stored.startswith(f"{CHECKSUM_VERSION}:"):
            result.unverifiable.append((changeset, stored))
        elif changeset.run_on_change:
            result.rerun.append(changeset)
        else:
            result.changed.append((changeset, stored))
    result.only_in_history = [r for k, r in latest.items() if k not in seen and r.exectype.upper() in RAN_EXECTYPES]
    return result
