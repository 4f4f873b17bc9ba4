"""Flag statements that are unsafe on a live database, before they reach one. Pure: no database, no logging.

    lint_migrations(files, dialect) -> [Finding]     one finding per rule per statement, in file and line order
    render_text(findings) / render_json(findings)     what `premigrate lint` prints
    has_errors(findings) / exit_code(findings)        5 when any finding is at error level, else 0
    RULES                                             rule id -> severity, title, why, safe alternative, dialects
    LintUnavailable (a UsageError, exit 2)            pglast is not installed; `up --lint=warn` may log it and go on

How statements are read:
- PostgreSQL: each statement (split as the runner splits it) is parsed by pglast, PostgreSQL's own parser, so
  strings, dollar quotes and comments can never be mistaken for SQL. A statement it cannot parse becomes a
  `parse-error` finding (warning): it was not checked.
- MySQL/MariaDB and SQLite: a tokenizer (quotes, comments, MySQL /*! */ executable comments) and a reader of the
  few statement shapes the rules are about (ALTER/CREATE/DROP/RENAME/TRUNCATE TABLE, UPDATE, DELETE, ...).
  sqlglot was tried and not used: it silently falls back to an opaque "Command" for RENAME TABLE and triggers
  (a silent miss), rejects `ADD COLUMN (a ..., b ...)`, and walks into procedure bodies that run later, not now.
- pglast is imported only when PostgreSQL statements are linted, never when this module is imported: a no-op
  `premigrate up` must not pay for loading a parser.

Not checked, by design: the down parts (undoing is meant to drop things), bodies of functions, procedures,
triggers and DO blocks (they run later, not during the migration), and whether a table existed before this file:
a table created earlier in the same file is new and empty, so the table rules do not fire on it.

A statement is silenced on purpose by `-- premigrate:allow RULE[,RULE]` on the lines just before it (after the
previous statement), inside it, or after its terminator on its last line. It silences those rules for that one
statement only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict

from premigrate.commands.lint.rules import (
    DIALECTS, ERROR, RULES, SEVERITIES, STATEMENT_WIDTH, WARNING, Analyzer, FileState, Finding, LintUnavailable,
    Unparsable,
)
from premigrate.errors import UsageError, ValidationFailed
from premigrate.model.migrations import Migration
from premigrate.model.sql import SplitError, Statement, split_migration
from premigrate.log import mask_statement

__all__ = ["RULES", "Finding", "LintUnavailable", "exit_code", "has_errors", "lint_migrations", "render_json",
           "render_text"]


def lint_migrations(files: Iterable[Migration], dialect: str,
                    split: Callable[[Migration], Sequence[Statement] | None] | None = None) -> list[Finding]:
    """Findings for the up part of every file, in the order given, each file's in line order.

    `split` hands over a file's statements as the caller splits it (a run shares its split:
    modes.StepShapes.shared_statements), or None to split it here."""
    if dialect not in DIALECTS:
        raise UsageError(f"lint: unknown dialect {dialect!r}; use one of {', '.join(DIALECTS)}")
    if dialect == "postgresql":
        from premigrate.commands.lint.postgres import postgres_analyzer

        analyzer = postgres_analyzer()
    else:
        from premigrate.commands.lint.generic import generic_analyzer

        analyzer = generic_analyzer(dialect)
    findings: list[Finding] = []
    for migration in files:
        findings.extend(_lint_file(migration, dialect, analyzer, split))
    return findings


def has_errors(findings: Iterable[Finding]) -> bool:
    return any(f.severity == ERROR for f in findings)


def exit_code(findings: Iterable[Finding]) -> int:
    # The same code as other validation failures: the files are not fit to apply.
    return ValidationFailed.exit_code if has_errors(findings) else 0


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    result = dict.fromkeys(SEVERITIES, 0)
    for finding in findings:
        result[finding.severity] += 1
    return result


def render_text(findings: Sequence[Finding]) -> str:
    blocks = [
        f"{f.script}:{f.line}: {f.severity} {f.rule}: {f.message}\n  {f.statement}\n  fix: {f.fix}"
        for f in findings
    ]
    n = counts(findings)
    total = (f"{len(findings)} finding{_s(len(findings))}: {n[ERROR]} error{_s(n[ERROR])}, "
             f"{n[WARNING]} warning{_s(n[WARNING])}") if findings else "no findings"
    return "\n\n".join([*blocks, total]) + "\n"


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps({"findings": [asdict(f) for f in findings], "counts": counts(findings)}, indent=2) + "\n"


def _s(n: int) -> str:
    return "" if n == 1 else "s"


# -- per file: statements, allow comments, exemptions --------------------------------------------------------------

_ALLOW = re.compile(r"--[ \t]*premigrate:allow\b(?P<arg>[^\n]*)", re.I)
_RULE_ID = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# ${NAME} placeholders (values unknown here) are replaced by a marked identifier before parsing, so that
# `${schema}.users` still reads as a table name, and put back in messages. The substitution never spans a line, so
# line numbers stay right.
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PLACEHOLDER_MARK = "premigrate_placeholder_"
_MARKED = re.compile(_PLACEHOLDER_MARK + r"([A-Za-z0-9_]+)", re.I)


def _self_managed(statements: Sequence[Statement]) -> bool:
    from premigrate.model import transactions

    try:
        return bool(transactions.blocks(statements))
    except transactions.TransactionSyntaxError:
        return False  # unbalanced: the file runs in premigrate's transaction, where its BEGIN/COMMIT are findings


def _lint_file(migration: Migration, dialect: str, analyzer: Analyzer,
               split: Callable[[Migration], Sequence[Statement] | None] | None = None) -> list[Finding]:
    first = migration.up_first_line
    known = split(migration) if split is not None else None
    try:
        statements = known if known is not None else split_migration(migration, dialect)
    except SplitError as exc:
        return [_finding("parse-error", migration.script, exc.line, "", f"cannot split the file: {exc}")]
    lines = migration.up_sql.split("\n")
    # MySQL runs no file in a transaction (its DDL commits implicitly), so nothing there is transaction-incompatible;
    # nor is anything in a file that opens and ends its own transactions (a sqitch script's BEGIN; ... COMMIT;),
    # which premigrate runs as written (model/modes.py, Mode.SELF_MANAGED).
    state = FileState(transactional=not migration.no_transaction and dialect != "mysql"
                      and not _self_managed(statements))
    findings: list[Finding] = []
    previous_end = first - 1
    for statement in statements:
        end = statement.line + statement.text.count("\n")
        allowed = _allowed(lines[previous_end + 1 - first: end + 1 - first])
        previous_end = end
        parse_text = _PLACEHOLDER.sub(_PLACEHOLDER_MARK + r"\1", statement.text)
        try:
            effects = analyzer(parse_text, state.transactional)
        except Unparsable as exc:
            if "parse-error" not in allowed:
                line = statement.line + parse_text.count("\n", 0, exc.offset)
                findings.append(_finding("parse-error", migration.script, line, _one_line(statement.text), str(exc),
                                         sql=statement.text))
            continue
        subjects: dict[str, list[str]] = {}
        for hit in effects.hits:
            if hit.rule in allowed or (hit.tables and all(state.is_new(t) for t in hit.tables)):
                continue
            subject = _MARKED.sub(r"${\1}", hit.subject)
            if subject not in subjects.setdefault(hit.rule, []):
                subjects[hit.rule].append(subject)
        for rule_id in RULES:  # one finding per rule, in table order, so output is stable
            if rule_id in subjects:
                findings.append(_finding(rule_id, migration.script, statement.line, _one_line(statement.text),
                                         "; ".join(subjects[rule_id]), sql=statement.text))
        # Recorded after the statement's own hits: a statement never exempts itself.
        state.created.extend(effects.created)
        state.created.extend([new for old, new in effects.renamed if state.is_new(old)])
    return findings


def _finding(rule_id: str, script: str, line: int, statement: str, subject: str, *, sql: str = "") -> Finding:
    """A finding on `sql`, whose credentials (a password a migration sets) are masked in the statement and in the
    parser's message quoting it: lint's output goes to CI logs without passing through the log's scrubber."""
    rule = RULES[rule_id]
    if sql:
        statement, subject = mask_statement(statement, sql), mask_statement(subject, sql)
    return Finding(rule.id, rule.severity, script, line, statement, f"{subject}: {rule.why}", rule.fix)


def _allowed(lines: Sequence[str]) -> set[str]:
    allowed: set[str] = set()
    for line in lines:
        for match in _ALLOW.finditer(line):
            allowed.update(rule.lower() for rule in _RULE_ID.findall(match.group("arg")))
    return allowed


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= STATEMENT_WIDTH else flat[: STATEMENT_WIDTH - 3] + "..."
