"""One formatted SQL file, read line by line the way Liquibase's parser reads it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from premigrate.model.formats.liquibase.checksum import checksum
from premigrate.model.formats.liquibase.patterns import (
    ALT_CHANGE_SET_NO_OTHER_INFO, ALT_CHANGE_SET_ONE, ALT_COMMENT_ONE, ALT_COMMENT_PLURAL, ALT_IGNORE,
    ALT_IGNORE_LINES_ONE, ALT_PRECONDITIONS_ONE, ALT_PRECONDITION_ONE, ALT_PROPERTY_ONE, ALT_ROLLBACK_ONE,
    ALT_VALID_CHECK_SUM_ONE, CHANGE_SET, COMMENT, CONTEXT, CONTEXT_FILTER, DBMS, DOCS, END_DELIMITER, ERROR_OPTIONS,
    FAIL_ON_ERROR, FAIL_OPTIONS, FIRST_LINE, FLAGS, IGNORE, IGNORE_LINES, INVALID_EMPTY_PRECONDITION, LABELS,
    LOGICAL_FILE_PATH, NAME, ON_ERROR, ON_FAIL, ON_SQL_OUTPUT, ON_UPDATE_SQL, PRECONDITION, PRECONDITIONS, PROPERTY,
    PRO_LINES, ROLLBACK, ROLLBACK_CHANGE_SET_AUTHOR, ROLLBACK_CHANGE_SET_ID, ROLLBACK_CHANGE_SET_PATH,
    ROLLBACK_END_DELIMITER, ROLLBACK_MULTI_LINE_END, ROLLBACK_MULTI_LINE_START, ROLLBACK_SPLIT_STATEMENTS,
    RUN_ALWAYS, RUN_IN_TRANSACTION, RUN_ON_CHANGE, RUN_WITH, SCHEMA_NAME, SPLIT_STATEMENTS, SQL_CHECK_RESULT,
    STRIP_COMMENTS, TABLE_NAME, VALID_CHECK_SUM, VALUE, VIEW_NAME,
)
from premigrate.model.formats.liquibase.split import java_trim, split_statements, unclosed_dollar_quote
from premigrate.model.formats.liquibase.values import Changeset, Precondition, Preconditions, file_error, format_error


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
        raise file_error(file, 1, "not a Liquibase formatted SQL changelog: its first line must be "
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
            raise format_error(file, n, "--property name:<name> value:<value>")
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
                        raise format_error(file, n, "--ignoreLines:end")
                continue
            if not argument.isdigit():
                raise file_error(file, n, f'unknown ignoreLines syntax: "{argument}" (a line count, or start ... end)')
            n = min(len(lines), n + int(argument))
            continue
        if ALT_IGNORE_LINES_ONE.fullmatch(line) or ALT_IGNORE.fullmatch(line):
            raise format_error(file, n, "--ignoreLines:<count|start>")
        changeset = CHANGE_SET.fullmatch(line)
        if changeset:
            close(final=False)
            current = _open(line, changeset, file, n, logical_path, expand)
            continue
        if ALT_CHANGE_SET_ONE.fullmatch(line) or ALT_CHANGE_SET_NO_OTHER_INFO.fullmatch(line):
            raise format_error(file, n, "--changeset <authorname>:<changesetId>")
        for name, pattern in PRO_LINES:
            if pattern.fullmatch(line):
                raise file_error(file, n, f"'{name}' in a formatted SQL changelog is a Liquibase Pro feature; list the "
                                      "files in a master changelog (XML or YAML) instead")
        if current is None:
            if COMMENT.fullmatch(line):
                raise file_error(file, n, f"formatted SQL changelogs do not allow comment lines outside of changesets "
                                      f"(see {DOCS})")
            continue
        n = _changeset_line(current, lines, line, n, file, expand)
    close(final=True)
    return result


def _property(line: str, file: str, number: int, expand: _Expander) -> None:
    name, value = _string(NAME, line), _string(VALUE, line)
    if name is None or value is None:
        raise format_error(file, number, "--property name:<name> value:<value>")
    for scope in (CONTEXT, CONTEXT_FILTER, LABELS, DBMS):
        if scope.fullmatch(line):
            raise file_error(file, number, f"--property {name}: a property scoped by context, labels or dbms is not "
                                       "supported; pass the value with the run's parameters instead")
    expand.define(expand(name), expand(value))


def _open(line: str, m: re.Match[str], file: str, number: int, logical_path: str | None,
          expand: _Expander) -> _Open:
    author_group, id_group = m.group(1), m.group(2)
    exact = re.compile(r"\s*--[\s]*changeset\s+" + re.escape(f"{author_group}:{id_group}") + r".*$", FLAGS)
    if not exact.fullmatch(line):
        raise format_error(file, number, "--changeset <authorname>:<changesetId>")
    change_id = expand(_strip_quotes(id_group))
    if not change_id.replace(":", "").replace(" ", ""):
        raise file_error(file, number, "the changeset id cannot be empty")
    path = _string(LOGICAL_FILE_PATH, line) or logical_path or file
    return _Open(author=expand(_strip_quotes(author_group)), id=change_id, path=normalize_path(expand(path)),
                 line=number, header=line)


def normalize_path(path: str) -> str:
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
        raise format_error(file, n, "--comment <comment>")
    elif valid:
        cs.valid_checksums.append(valid.group(1))
    elif ALT_VALID_CHECK_SUM_ONE.fullmatch(line):
        raise format_error(file, n, "--validCheckSum <checksum>")
    elif rollback:
        cs.rollback.append(rollback.group(1) + "\n")
        cs.rollback_line = cs.rollback_line or n
    elif ALT_ROLLBACK_ONE.fullmatch(line):
        raise format_error(file, n, "--rollback <rollback SQL>")
    elif ROLLBACK_MULTI_LINE_START.fullmatch(line):
        start = n
        cs.rollback_line = cs.rollback_line or n + 1
        while True:
            if n >= len(lines):
                raise file_error(file, start, "the /* liquibase rollback block is not closed with */")
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
        raise format_error(file, n, "--preconditions <onFail>|<onError>|<onUpdate>")
    elif precondition:
        cs.checks.append(_precondition(precondition.group(1), expand(precondition.group(2).strip()), file, n))
    elif ALT_PRECONDITION_ONE.fullmatch(line):
        raise format_error(file, n, "--precondition-sql-check")
    elif INVALID_EMPTY_PRECONDITION.fullmatch(line):
        kind = INVALID_EMPTY_PRECONDITION.fullmatch(line).group(1)  # type: ignore[union-attr]
        missing = {"sql-check": "its expectedResult and SQL", "table-exists": "table:<name>",
                   "view-exists": "view:<name>"}
        if kind in missing:
            raise file_error(file, n, f"--precondition-{kind} is missing {missing[kind]}")
        raise file_error(file, n, f"the '{kind}' precondition type is not supported (sql-check, table-exists, "
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
            raise file_error(file, n, f"--preconditions {name}:{value}: expected one of {', '.join(allowed)}")
    sql_output, update_sql = _string(ON_SQL_OUTPUT, body), _string(ON_UPDATE_SQL, body)
    if sql_output and update_sql:
        raise file_error(file, n, "--preconditions: set either onUpdateSql or onSqlOutput, not both")
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
        raise file_error(file, n, f"cannot read a sql-check precondition from {body!r}; write "
                              "'--precondition-sql-check expectedResult:<value> <sql>'")
    if kind in ("table-exists", "view-exists"):
        pattern = TABLE_NAME if kind == "table-exists" else VIEW_NAME
        word = "table" if kind == "table-exists" else "view"
        m = pattern.fullmatch(body)
        if not m:
            raise file_error(file, n, f"--precondition-{kind}: the {word} name was not given as {word}:<name>")
        return Precondition(kind, n, name=m.group(1), schema=_string(SCHEMA_NAME, body))
    raise file_error(file, n, f"the '{kind}' precondition type is not supported (sql-check, table-exists, view-exists)")


def _finish(cs: _Open, file: str, order: int, expand: _Expander,
            known: Mapping[tuple[str, str, str], Changeset], *, last: bool = False) -> Changeset:
    header = cs.header
    sql = java_trim(expand("".join(cs.body)))
    if not sql:
        raise file_error(file, cs.line, f"changeset {cs.author}:{cs.id} has no SQL; give it SQL or remove it")
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
    if not java_trim(text):
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
            raise file_error(file, cs.rollback_line, "'changesetId' not set in the rollback")
        if author is None:
            raise file_error(file, cs.rollback_line, "'changesetAuthor' not set in the rollback")
        target = known.get((normalize_path(path), author.strip(), change_id.strip()))
        if target is None:
            raise file_error(file, cs.rollback_line, f"rollback names changeset {path}::{change_id}::{author}, which "
                                                 "is not earlier in the changelog")
        return target.statements
    header = cs.header
    split = _bool(ROLLBACK_SPLIT_STATEMENTS, header, True)
    return tuple(split_statements(expand(text), strip_comments=False, split=split,
                                  end_delimiter=_string(ROLLBACK_END_DELIMITER, header)))
