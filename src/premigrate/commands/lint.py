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
from typing import Any
from dataclasses import asdict, dataclass, field

from premigrate.errors import UsageError, ValidationFailed
from premigrate.model.migrations import Migration
from premigrate.model.sql import SplitError, split_migration

ERROR = "error"
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)
DIALECTS = ("postgresql", "mysql", "sqlite")
STATEMENT_WIDTH = 120  # a finding shows the statement on one line, cut to this many characters


class LintUnavailable(UsageError):
    """The parser a dialect needs is not installed. `up --lint=warn` may log this and go on; `lint` cannot."""


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    title: str
    why: str  # what goes wrong on a live database
    fix: str  # the safe alternative
    dialects: tuple[str, ...]


_ALL = DIALECTS
_PG = ("postgresql",)
_PG_SQLITE = ("postgresql", "sqlite")

# Severity policy: error = data is destroyed, the running release breaks, or the migration fails on production
# data while passing on an empty dev database; warning = a lock or rewrite that blocks traffic for a while but
# ends by itself. `up --lint=error` refuses only on errors.
RULES: dict[str, Rule] = {rule.id: rule for rule in (
    Rule("drop-column", ERROR, "Drop a column",
         "code of the running release (still serving during a rollout) fails as soon as it reads or writes the "
         "column, and the data is gone",
         "expand/contract: release code that no longer uses the column first, then drop it in a later migration",
         _ALL),
    Rule("drop-table", ERROR, "Drop a table (or a schema or database with its tables)",
         "code of the running release that still uses the table fails, and the data is gone",
         "release code that no longer uses the table first, then drop it in a later migration (keep a backup)",
         _ALL),
    Rule("rename-column", ERROR, "Rename a column",
         "code of the running release uses the old name and fails the moment this commits: old and new releases "
         "cannot run side by side",
         "add the new column, write both, backfill, switch reads, then drop the old column in a later release",
         _ALL),
    Rule("rename-table", ERROR, "Rename a table",
         "code of the running release uses the old name and fails the moment this commits",
         "create the new table and move readers and writers over (or leave a view under the old name during the "
         "transition); drop the old name in a later release",
         _ALL),
    Rule("change-column-type", WARNING, "Change a column's type",
         "most type changes rewrite the table and its indexes while holding a lock that blocks reads and writes "
         "(PostgreSQL: ACCESS EXCLUSIVE; MySQL: table copy), and the running release may not handle the new type",
         "add a column of the new type, backfill it in batches, switch the code, drop the old column later; a "
         "change that needs no rewrite (PostgreSQL: varchar(n) to text or to a larger n) can be allowed",
         ("postgresql", "mysql")),
    Rule("add-not-null-column-without-default", ERROR, "Add a NOT NULL column without a default",
         "existing rows have no value for it: PostgreSQL and SQLite reject it on a non-empty table (it passes on "
         "an empty dev database), and inserts by the running release, which does not know the column, fail",
         "add it with a DEFAULT (no rewrite for a constant default on PostgreSQL 11+), or add it nullable, "
         "backfill, then set NOT NULL the safe way",
         _ALL),
    Rule("set-not-null", WARNING, "Set NOT NULL on an existing column",
         "PostgreSQL scans the whole table for NULLs while holding an ACCESS EXCLUSIVE lock: reads and writes wait",
         "ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID; VALIDATE CONSTRAINT c in a later migration; then "
         "SET NOT NULL skips the scan (PostgreSQL 12+); then drop the check",
         _PG),
    Rule("create-index-not-concurrently", WARNING, "Build an index without CONCURRENTLY",
         "building the index holds a lock that blocks every INSERT, UPDATE and DELETE on the table until the "
         "build ends, which takes minutes on a large table",
         "CREATE INDEX CONCURRENTLY in a file marked `-- premigrate:no-transaction`; for a UNIQUE or PRIMARY KEY "
         "constraint, build the unique index concurrently, then ADD CONSTRAINT ... USING INDEX",
         _PG),
    Rule("add-foreign-key-without-not-valid", WARNING, "Add a foreign key without NOT VALID",
         "checking every existing row holds a SHARE ROW EXCLUSIVE lock on both tables: writes to either wait "
         "until the scan ends",
         "ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID (instant), then VALIDATE CONSTRAINT in a later migration "
         "(it lets writes through while it scans)",
         _PG),
    Rule("add-check-without-not-valid", WARNING, "Add a check constraint without NOT VALID",
         "checking every existing row holds an ACCESS EXCLUSIVE lock on the table: reads and writes wait until "
         "the scan ends",
         "ADD CONSTRAINT ... CHECK (...) NOT VALID (instant), then VALIDATE CONSTRAINT in a later migration",
         _PG),
    Rule("truncate", ERROR, "TRUNCATE",
         "every row is removed at once and for good, under a lock that blocks all access to the table",
         "if the data must really go, say so with `-- premigrate:allow truncate`; otherwise DELETE ... WHERE",
         ("postgresql", "mysql")),
    Rule("update-without-where", WARNING, "UPDATE without WHERE",
         "every row is rewritten in one statement: all rows stay locked until it commits, concurrent writes "
         "wait, the table bloats and replicas lag; if the WHERE was forgotten, data is overwritten",
         "add a WHERE clause; for a backfill, update in batches by key range from a no-transaction file",
         _ALL),
    Rule("delete-without-where", ERROR, "DELETE without WHERE",
         "every row of the table is deleted",
         "add a WHERE clause; to empty a large table on purpose, delete in batches and allow it explicitly",
         _ALL),
    Rule("transaction-incompatible", ERROR, "Statement that cannot run in a transaction",
         "this file runs inside one transaction (it is not marked `-- premigrate:no-transaction`): there the "
         "statement fails every time, is ignored, or ends the transaction early so that the history row no "
         "longer commits together with the changes",
         "move the statement to its own migration file marked `-- premigrate:no-transaction`",
         _PG_SQLITE),
    Rule("transaction-noop", WARNING, "Statement a transaction turns into a no-op",
         "this file runs inside one transaction, where SQLite ignores `PRAGMA foreign_keys = ...` without an error: "
         "foreign keys stay as they were for the whole file",
         "if the file needs foreign keys off (a table rebuild), move the PRAGMA into a file marked "
         "`-- premigrate:no-transaction`, or run it in the connection's setup",
         ("sqlite",)),
    Rule("parse-error", WARNING, "Statement the linter cannot parse",
         "it was not checked for the rules above, and the database may reject it too",
         "fix the syntax; if the server accepts it, add `-- premigrate:allow parse-error`",
         _PG),
)}


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str  # error | warning
    script: str
    line: int  # line in the file where the statement starts (for parse-error: where the parser stopped)
    statement: str  # the statement on one line, abbreviated
    message: str  # what this statement does, then why that is unsafe on a live database
    fix: str  # the safe alternative


# (schema or None, name) as the database folds it
_Table = tuple[str | None, str]


@dataclass(frozen=True)
class _Hit:
    """One rule triggered by one statement, before allow comments and the new-table exemption apply."""

    rule: str
    subject: str  # what the statement does, e.g. "drops column users.email"
    # The tables it acts on. All created earlier in the same file -> exempt; empty -> never exempt.
    tables: tuple[_Table, ...] = ()


@dataclass
class _FileState:
    transactional: bool
    created: list[_Table] = field(default_factory=list)

    def is_new(self, table: _Table) -> bool:
        schema, name = table
        return any(name == c_name and (schema is None or c_schema is None or schema == c_schema)
                   for c_schema, c_name in self.created)


class _Unparsable(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass
class _Effects:
    """What one statement does besides triggering rules: the tables it creates and the ones it renames."""

    hits: list[_Hit] = field(default_factory=list)
    created: list[_Table] = field(default_factory=list)
    renamed: list[tuple[_Table, _Table]] = field(default_factory=list)  # (old, new): new stays new if old was


# An analyzer reads one statement: (text, whether the file runs in a transaction) -> its effects.
_Analyzer = Callable[[str, bool], _Effects]


def lint_migrations(files: Iterable[Migration], dialect: str) -> list[Finding]:
    """Findings for the up part of every file, in the order given, each file's in line order."""
    if dialect not in DIALECTS:
        raise UsageError(f"lint: unknown dialect {dialect!r}; use one of {', '.join(DIALECTS)}")
    analyzer = _postgres_analyzer() if dialect == "postgresql" else _generic_analyzer(dialect)
    findings: list[Finding] = []
    for migration in files:
        findings.extend(_lint_file(migration, dialect, analyzer))
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


def _lint_file(migration: Migration, dialect: str, analyzer: _Analyzer) -> list[Finding]:
    first = migration.up_first_line
    try:
        statements = split_migration(migration, dialect)
    except SplitError as exc:
        return [_finding("parse-error", migration.script, exc.line, "", f"cannot split the file: {exc}")]
    lines = migration.up_sql.split("\n")
    # MySQL runs no file in a transaction (its DDL commits implicitly), so nothing there is transaction-incompatible.
    state = _FileState(transactional=not migration.no_transaction and dialect != "mysql")
    findings: list[Finding] = []
    previous_end = first - 1
    for statement in statements:
        end = statement.line + statement.text.count("\n")
        allowed = _allowed(lines[previous_end + 1 - first: end + 1 - first])
        previous_end = end
        shown = _one_line(statement.text)
        parse_text = _PLACEHOLDER.sub(_PLACEHOLDER_MARK + r"\1", statement.text)
        try:
            effects = analyzer(parse_text, state.transactional)
        except _Unparsable as exc:
            if "parse-error" not in allowed:
                line = statement.line + parse_text.count("\n", 0, exc.offset)
                findings.append(_finding("parse-error", migration.script, line, shown, str(exc)))
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
                findings.append(_finding(rule_id, migration.script, statement.line, shown,
                                         "; ".join(subjects[rule_id])))
        # Recorded after the statement's own hits: a statement never exempts itself.
        state.created.extend(effects.created)
        state.created.extend([new for old, new in effects.renamed if state.is_new(old)])
    return findings


def _finding(rule_id: str, script: str, line: int, statement: str, subject: str) -> Finding:
    rule = RULES[rule_id]
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


def _display(table: _Table) -> str:
    schema, name = table
    return f"{schema}.{name}" if schema else name


# -- PostgreSQL: pglast ----------------------------------------------------------------------------------------------
# Nodes are told apart by class name and enum member name, so only parse_sql needs the import.

def _postgres_analyzer() -> _Analyzer:
    try:
        # Imported here, not at the top: importing premigrate.commands.lint (and a no-op `up`) stays cheap.
        import pglast
        from pglast.parser import ParseError
    except ImportError:
        raise LintUnavailable("linting PostgreSQL needs the pglast package: pip install pglast") from None

    checks = _NotNullChecks()  # shared by all files of the run: the safe SET NOT NULL path spans three files

    def analyze(text: str, transactional: bool) -> _Effects:
        try:
            raw_statements = pglast.parse_sql(text)
        except ParseError as exc:
            offset = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else 0
            raise _Unparsable(str(exc.args[0]), offset) from None
        effects = _Effects()
        for raw in raw_statements:
            effects.hits.extend(_pg_hits(raw.stmt, transactional, checks))
            effects.created.extend(_pg_created(raw.stmt))
            if _kind(raw.stmt) == "RenameStmt" and _enum(raw.stmt.renameType) == "OBJECT_TABLE":
                old = _pg_table(raw.stmt.relation)
                effects.renamed.append((old, (old[0], raw.stmt.newname)))
        return effects

    return analyze


def _kind(node: object) -> str:
    return type(node).__name__


def _enum(value: object) -> str:
    return getattr(value, "name", "")


def _pg_table(range_var: Any) -> _Table:
    return (getattr(range_var, "schemaname", None) or None, range_var.relname)


@dataclass
class _NotNullChecks:
    """CHECK (col IS NOT NULL) constraints seen in this run, so that SET NOT NULL after VALIDATE is not flagged."""

    not_valid: dict[tuple[str, str], str] = field(default_factory=dict)  # (table, constraint) -> column
    proven: set[tuple[str, str]] = field(default_factory=set)  # (table, column)


def _pg_hits(stmt: Any, transactional: bool, checks: _NotNullChecks) -> list[_Hit]:
    hits: list[_Hit] = []
    if transactional:
        hits.extend(_pg_transaction_hits(stmt))
    if _kind(stmt) == "AlterTableStmt":
        hits.extend(_pg_alter_table(stmt, checks))
    check = _PG_CHECKS.get(_kind(stmt))
    if check is not None:
        hits.extend(check(stmt))
    for dml in _pg_dml(stmt):
        table = _pg_table(dml.relation)
        if dml.whereClause is None:
            if _kind(dml) == "UpdateStmt":
                hits.append(_Hit("update-without-where", f"updates every row of {_display(table)}", (table,)))
            else:
                hits.append(_Hit("delete-without-where", f"deletes every row of {_display(table)}", (table,)))
    return hits


_NO_TRANSACTION_STATEMENTS = {
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
}
# Statements that end or nest the transaction premigrate runs the file in. SAVEPOINT and friends are fine.
_TRANSACTION_CONTROL = {
    "TRANS_STMT_BEGIN": "BEGIN", "TRANS_STMT_START": "START TRANSACTION", "TRANS_STMT_COMMIT": "COMMIT",
    "TRANS_STMT_ROLLBACK": "ROLLBACK", "TRANS_STMT_PREPARE": "PREPARE TRANSACTION",
    "TRANS_STMT_COMMIT_PREPARED": "COMMIT PREPARED", "TRANS_STMT_ROLLBACK_PREPARED": "ROLLBACK PREPARED",
}


def _pg_transaction_hits(stmt: Any) -> list[_Hit]:
    """The statements PostgreSQL refuses inside a transaction block (ALTER TYPE ... ADD VALUE is allowed since 12)."""
    kind = _kind(stmt)
    what = _NO_TRANSACTION_STATEMENTS.get(kind)
    if kind == "IndexStmt" and stmt.concurrent:
        what = "CREATE INDEX CONCURRENTLY"
    elif kind == "DropStmt" and stmt.concurrent:
        what = "DROP INDEX CONCURRENTLY"
    elif kind == "ReindexStmt":
        if _enum(stmt.kind) in ("REINDEX_OBJECT_SYSTEM", "REINDEX_OBJECT_DATABASE"):
            what = "REINDEX " + _enum(stmt.kind).removeprefix("REINDEX_OBJECT_")
        elif _pg_option_on(stmt.params, "concurrently"):
            what = "REINDEX CONCURRENTLY"
    elif kind == "VacuumStmt" and stmt.is_vacuumcmd:  # ANALYZE alone is fine
        what = "VACUUM"
    elif kind == "ClusterStmt" and stmt.relation is None:
        what = "CLUSTER without a table name"
    elif kind == "AlterTableStmt":
        for cmd in stmt.cmds or ():
            if _enum(cmd.subtype) == "AT_DetachPartition" and getattr(cmd.def_, "concurrent", False):
                what = "DETACH PARTITION CONCURRENTLY"
    elif kind == "TransactionStmt" and _enum(stmt.kind) in _TRANSACTION_CONTROL:
        verb = _TRANSACTION_CONTROL[_enum(stmt.kind)]
        return [_Hit("transaction-incompatible",
                     f"{verb} ends or nests the transaction premigrate runs this file in")]
    if what is None:
        return []
    return [_Hit("transaction-incompatible", f"{what} cannot run inside a transaction block")]


def _pg_option_on(options: Any, name: str) -> bool:
    for option in options or ():
        if getattr(option, "defname", None) == name:
            arg = getattr(option, "arg", None)
            value = getattr(arg, "sval", getattr(arg, "boolval", True)) if arg is not None else True
            return str(value).lower() not in ("false", "off", "0")
    return False


def _pg_alter_table(stmt: Any, checks: _NotNullChecks) -> list[_Hit]:
    if _enum(stmt.objtype) != "OBJECT_TABLE":  # not ALTER INDEX, ALTER VIEW, ...
        return []
    table = _pg_table(stmt.relation)
    name = _display(table)
    hits: list[_Hit] = []

    def hit(rule: str, subject: str) -> None:
        hits.append(_Hit(rule, subject, (table,)))

    for cmd in stmt.cmds or ():
        subtype = _enum(cmd.subtype)
        if subtype == "AT_DropColumn":
            hit("drop-column", f"drops column {name}.{cmd.name}")
        elif subtype == "AT_AlterColumnType":
            hit("change-column-type", f"changes the type of column {name}.{cmd.name}")
        elif subtype == "AT_SetNotNull":
            # PostgreSQL 12+ skips the scan when a valid CHECK (col IS NOT NULL) proves it: the safe path.
            if (table[1], cmd.name) not in checks.proven:
                hit("set-not-null", f"sets NOT NULL on column {name}.{cmd.name}")
        elif subtype == "AT_AddColumn":
            _pg_add_column(cmd.def_, name, hit)
        elif subtype == "AT_AddConstraint":
            _pg_add_constraint(cmd.def_, name, hit)
            _pg_note_not_null_check(cmd.def_, table, checks)
        elif subtype == "AT_ValidateConstraint" and (table[1], cmd.name) in checks.not_valid:
            checks.proven.add((table[1], checks.not_valid[(table[1], cmd.name)]))
    return hits


def _pg_note_not_null_check(constraint: Any, table: _Table, checks: _NotNullChecks) -> None:
    expr = getattr(constraint, "raw_expr", None)
    if _enum(constraint.contype) != "CONSTR_CHECK" or _kind(expr) != "NullTest":
        return
    if _enum(expr.nulltesttype) != "IS_NOT_NULL" or _kind(expr.arg) != "ColumnRef" or len(expr.arg.fields) != 1:
        return
    column = getattr(expr.arg.fields[0], "sval", None)
    if column is None:
        return
    if not constraint.skip_validation:
        checks.proven.add((table[1], column))
    elif constraint.conname:
        checks.not_valid[(table[1], constraint.conname)] = column


_SERIAL_TYPES = {"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"}


def _pg_add_column(column: Any, table: str, hit: Callable[[str, str], None]) -> None:
    column_name = f"{table}.{column.colname}"
    kinds = {_enum(c.contype) for c in column.constraints or ()}
    type_name = column.typeName.names[-1].sval if column.typeName else ""
    not_null = bool({"CONSTR_NOTNULL", "CONSTR_PRIMARY"} & kinds) or column.is_not_null
    gets_values = bool({"CONSTR_DEFAULT", "CONSTR_IDENTITY", "CONSTR_GENERATED"} & kinds) or type_name in _SERIAL_TYPES
    if not_null and not gets_values:
        hit("add-not-null-column-without-default", f"adds NOT NULL column {column_name} without a default")
    # Column constraints cannot say NOT VALID, so each is checked against every row under lock.
    if "CONSTR_FOREIGN" in kinds:
        hit("add-foreign-key-without-not-valid", f"adds column {column_name} with REFERENCES")
    if "CONSTR_CHECK" in kinds:
        hit("add-check-without-not-valid", f"adds column {column_name} with a CHECK")
    if {"CONSTR_UNIQUE", "CONSTR_PRIMARY"} & kinds:
        hit("create-index-not-concurrently", f"adds column {column_name} with a unique index built under lock")


def _pg_add_constraint(constraint: Any, table: str, hit: Callable[[str, str], None]) -> None:
    kind = _enum(constraint.contype)
    label = f"{constraint.conname} " if constraint.conname else ""
    if kind == "CONSTR_FOREIGN" and not constraint.skip_validation:
        hit("add-foreign-key-without-not-valid", f"adds foreign key {label}on {table} without NOT VALID")
    elif kind == "CONSTR_CHECK" and not constraint.skip_validation:
        hit("add-check-without-not-valid", f"adds check constraint {label}on {table} without NOT VALID")
    elif kind in ("CONSTR_UNIQUE", "CONSTR_PRIMARY") and not constraint.indexname:
        what = "UNIQUE" if kind == "CONSTR_UNIQUE" else "PRIMARY KEY"
        hit("create-index-not-concurrently",
            f"adds {what} constraint {label}on {table}, which builds its index under lock")


def _pg_rename(stmt: Any) -> list[_Hit]:
    rename = _enum(stmt.renameType)
    if rename == "OBJECT_TABLE":
        table = _pg_table(stmt.relation)
        return [_Hit("rename-table", f"renames table {_display(table)} to {stmt.newname}", (table,))]
    if rename == "OBJECT_COLUMN" and _enum(stmt.relationType) == "OBJECT_TABLE":
        table = _pg_table(stmt.relation)
        return [_Hit("rename-column", f"renames column {_display(table)}.{stmt.subname} to {stmt.newname}",
                     (table,))]
    return []


def _pg_drop(stmt: Any) -> list[_Hit]:
    if _enum(stmt.removeType) == "OBJECT_SCHEMA" and _enum(stmt.behavior) == "DROP_CASCADE":
        schemas = ", ".join(name.sval for name in stmt.objects)
        return [_Hit("drop-table", f"drops schema {schemas} with every table in it (CASCADE)")]
    if _enum(stmt.removeType) != "OBJECT_TABLE":
        return []
    tables = []
    for names in stmt.objects:
        parts = [n.sval for n in names]
        tables.append((parts[-2] if len(parts) > 1 else None, parts[-1]))
    return [_Hit("drop-table", f"drops table {', '.join(_display(t) for t in tables)}", tuple(tables))]


def _pg_index(stmt: Any) -> list[_Hit]:
    if stmt.concurrent:
        return []
    table = _pg_table(stmt.relation)
    label = f"index {stmt.idxname}" if stmt.idxname else "an index"
    return [_Hit("create-index-not-concurrently", f"builds {label} on {_display(table)} without CONCURRENTLY",
                 (table,))]


def _pg_truncate(stmt: Any) -> list[_Hit]:
    tables = tuple(_pg_table(rv) for rv in stmt.relations)
    return [_Hit("truncate", f"truncates {', '.join(_display(t) for t in tables)}", tables)]


_PG_CHECKS: dict[str, Callable[[Any], list[_Hit]]] = {
    "DropdbStmt": lambda stmt: [_Hit("drop-table", f"drops database {stmt.dbname} with every table in it")],
    "RenameStmt": _pg_rename,
    "DropStmt": _pg_drop,
    "IndexStmt": _pg_index,
    "TruncateStmt": _pg_truncate,
}


def _pg_dml(stmt: Any) -> list[Any]:
    """UPDATE and DELETE that run now: the statement itself and those in its WITH clause (not function bodies)."""
    found = [stmt] if _kind(stmt) in ("UpdateStmt", "DeleteStmt") else []
    with_clause = getattr(stmt, "withClause", None)
    for cte in getattr(with_clause, "ctes", None) or ():
        found.extend(_pg_dml(cte.ctequery))
    return found


def _pg_created(stmt: Any) -> list[_Table]:
    kind = _kind(stmt)
    if kind == "CreateStmt":
        return [_pg_table(stmt.relation)]
    if kind == "CreateTableAsStmt" and stmt.into is not None:  # also materialized views
        return [_pg_table(stmt.into.rel)]
    if kind == "SelectStmt" and getattr(stmt, "intoClause", None) is not None:
        return [_pg_table(stmt.intoClause.rel)]
    return []


# -- MySQL/MariaDB and SQLite: a tokenizer and the statement shapes the rules are about ----------------------------

@dataclass(frozen=True)
class _Token:
    kind: str  # word | name (quoted identifier) | string | number | punct
    text: str  # a word as written; a quoted name without its quotes

    @property
    def word(self) -> str:
        """The keyword this token could be: only unquoted words are keywords."""
        return self.text.upper() if self.kind == "word" else ""


def _tokenize(sql: str, dialect: str) -> list[_Token]:
    is_my = dialect == "mysql"
    tokens: list[_Token] = []
    i, n = 0, len(sql)
    executable_comments = 0  # MySQL runs what is inside /*! ... */: read it as code
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith("--", i) and (not is_my or i + 2 >= n or sql[i + 2].isspace()):
            i = _line_end(sql, i)
        elif ch == "#" and is_my:
            i = _line_end(sql, i)
        elif is_my and (sql.startswith("/*!", i) or sql.startswith("/*M!", i)):
            i = sql.index("!", i) + 1
            while i < n and sql[i].isdigit():
                i += 1
            executable_comments += 1
        elif executable_comments and sql.startswith("*/", i):
            executable_comments -= 1
            i += 2
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch in "'`\"" or (ch == "[" and not is_my):
            close = "]" if ch == "[" else ch
            text, i = _quoted(sql, i, close, backslash=is_my and ch in "'\"")
            is_string = ch == "'" or (ch == '"' and is_my)  # MySQL: "..." is a string unless ANSI_QUOTES
            tokens.append(_Token("string" if is_string else "name", text))
        elif ch.isdigit():
            j = i
            while j < n and (sql[j].isalnum() or sql[j] in "._"):
                j += 1
            tokens.append(_Token("number", sql[i:j]))
            i = j
        elif ch.isalpha() or ch in "_$@":
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            tokens.append(_Token("word", sql[i:j]))
            i = j
        else:
            tokens.append(_Token("punct", ch))
            i += 1
    return tokens


def _line_end(sql: str, i: int) -> int:
    end = sql.find("\n", i)
    return len(sql) if end < 0 else end + 1


def _quoted(sql: str, i: int, close: str, *, backslash: bool) -> tuple[str, int]:
    out: list[str] = []
    j, n = i + 1, len(sql)
    while j < n:
        c = sql[j]
        if backslash and c == "\\" and j + 1 < n:
            out.append(sql[j + 1])
            j += 2
        elif c == close and close != "]" and j + 1 < n and sql[j + 1] == close:
            out.append(c)
            j += 2
        elif c == close:
            return "".join(out), j + 1
        else:
            out.append(c)
            j += 1
    return "".join(out), n


class _Reader:
    """A cursor over one statement's tokens."""

    def __init__(self, tokens: Sequence[_Token], dialect: str) -> None:
        self.tokens = tokens
        self.dialect = dialect
        self.i = 0

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.tokens[j].word if j < len(self.tokens) else ""

    def accept(self, *words: str) -> bool:
        """Consume the given words if they come next, in order."""
        for offset, word in enumerate(words):
            if self.peek(offset) != word:
                return False
        self.i += len(words)
        return True

    def at_end(self) -> bool:
        return self.i >= len(self.tokens)

    def name(self) -> _Table | None:
        """A possibly qualified table or column name; None when the next token is not one."""
        parts: list[str] = []
        while self.i < len(self.tokens) and self.tokens[self.i].kind in ("word", "name"):
            parts.append(self.tokens[self.i].text)
            self.i += 1
            if self.i < len(self.tokens) and self.tokens[self.i].text == "." and self.tokens[self.i].kind == "punct":
                self.i += 1
                continue
            break
        if not parts:
            return None
        # MySQL on Linux compares table names case-sensitively, but a migration that mixes cases for one table is
        # rare enough; SQLite folds. Lowercase so that CREATE TABLE Users ... ALTER TABLE users matches.
        return (parts[-2].lower() if len(parts) > 1 else None, parts[-1].lower())


def _split_commas(tokens: Sequence[_Token]) -> list[list[_Token]]:
    """Split at commas outside parentheses."""
    parts: list[list[_Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "punct" and token.text in "()":
            depth += 1 if token.text == "(" else -1
        if depth == 0 and token.kind == "punct" and token.text == ",":
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def _top_level_words(tokens: Sequence[_Token]) -> list[str]:
    words, depth = [], 0
    for token in tokens:
        if token.kind == "punct" and token.text in "()":
            depth += 1 if token.text == "(" else -1
        elif depth == 0 and token.word:
            words.append(token.word)
    return words


def _generic_analyzer(dialect: str) -> _Analyzer:
    def analyze(text: str, transactional: bool) -> _Effects:
        effects = _Effects()
        effects.hits = _generic_statement(_tokenize(text, dialect), dialect, transactional, effects)
        return effects

    return analyze


def _generic_statement(tokens: list[_Token], dialect: str, transactional: bool, effects: _Effects) -> list[_Hit]:
    reader = _Reader(tokens, dialect)
    first = reader.peek()
    if dialect == "sqlite" and transactional:
        hit = _sqlite_transaction_hit(reader)
        if hit is not None:
            return [hit]
    if first == "WITH":
        # WITH ... UPDATE/DELETE: the verb is the first top-level one after the common table expressions.
        depth = 0
        for index, token in enumerate(tokens):
            if token.kind == "punct" and token.text in "()":
                depth += 1 if token.text == "(" else -1
            elif depth == 0 and token.word in ("UPDATE", "DELETE", "SELECT", "INSERT", "REPLACE"):
                reader.i = index
                break
        first = reader.peek()
    if first == "CREATE":
        return _generic_create(reader, effects.created)
    if first == "ALTER":
        return _generic_alter(reader, effects)
    if first == "DROP":
        return _generic_drop(reader)
    if first == "RENAME" and dialect == "mysql":
        return _mysql_rename_table(reader, effects)
    if first == "TRUNCATE" and dialect == "mysql":
        reader.i += 1
        reader.accept("TABLE")
        table = reader.name()
        return [_Hit("truncate", f"truncates {_display(table)}", (table,))] if table else []
    if first in ("UPDATE", "DELETE"):
        return _generic_dml(reader, tokens[reader.i:])
    return []


def _generic_create(reader: _Reader, created: list[_Table]) -> list[_Hit]:
    reader.i += 1
    reader.accept("OR", "REPLACE")
    reader.accept("TEMPORARY") or reader.accept("TEMP")
    if reader.accept("TABLE"):
        reader.accept("IF", "NOT", "EXISTS")
        table = reader.name()
        if table:
            created.append(table)
    return []


def _generic_drop(reader: _Reader) -> list[_Hit]:
    reader.i += 1
    if reader.peek() in ("DATABASE", "SCHEMA") and reader.dialect == "mysql":
        reader.i += 1
        reader.accept("IF", "EXISTS")
        database = reader.name()
        return [_Hit("drop-table", f"drops database {database[1] if database else '?'} with every table in it")]
    if reader.accept("TEMPORARY") or not reader.accept("TABLE"):
        return []  # a temporary table belongs to this session only; DROP INDEX/VIEW/... are not table drops
    reader.accept("IF", "EXISTS")
    tables = []
    for part in _split_commas(reader.tokens[reader.i:]):
        table = _Reader(part, reader.dialect).name()
        if table:
            tables.append(table)
    if not tables:
        return []
    return [_Hit("drop-table", f"drops table {', '.join(_display(t) for t in tables)}", tuple(tables))]


def _mysql_rename_table(reader: _Reader, effects: _Effects) -> list[_Hit]:
    reader.i += 1
    if not reader.accept("TABLE") and not reader.accept("TABLES"):
        return []  # RENAME USER
    hits = []
    for part in _split_commas(reader.tokens[reader.i:]):
        pair = _Reader(part, reader.dialect)
        old = pair.name()
        if old and pair.accept("TO"):
            new = pair.name()
            if new:
                effects.renamed.append((old, new))
            hits.append(_Hit("rename-table", f"renames table {_display(old)} to {_display(new) if new else '?'}",
                             (old,)))
    return hits


# ALTER TABLE ... ADD/DROP followed by these is about an index, key or constraint, not a column (unless COLUMN)
_NOT_A_COLUMN = {"INDEX", "KEY", "UNIQUE", "PRIMARY", "FOREIGN", "CONSTRAINT", "FULLTEXT", "SPATIAL", "CHECK",
                 "PARTITION", "PERIOD", "SYSTEM", "DEFAULT", "VECTOR"}


def _generic_alter(reader: _Reader, effects: _Effects) -> list[_Hit]:
    reader.i += 1
    reader.accept("ONLINE")
    reader.accept("IGNORE")
    if not reader.accept("TABLE"):
        return []
    reader.accept("IF", "EXISTS")
    table = reader.name()
    if table is None:
        return []
    hits: list[_Hit] = []
    for spec in _split_commas(reader.tokens[reader.i:]):
        hits.extend(_alter_spec(_Reader(spec, reader.dialect), table, effects))
    return hits


def _alter_spec(spec: _Reader, table: _Table, effects: _Effects) -> list[_Hit]:
    name = _display(table)

    def hit(rule: str, subject: str) -> list[_Hit]:
        return [_Hit(rule, subject, (table,))]

    verb = spec.peek()
    spec.i += 1
    is_my = spec.dialect == "mysql"
    if verb == "ADD":
        has_column_word = spec.accept("COLUMN")
        if not has_column_word and spec.peek() in _NOT_A_COLUMN:
            return []
        spec.accept("IF", "NOT", "EXISTS")
        rest = spec.tokens[spec.i:]
        if rest and rest[0].kind == "punct" and rest[0].text == "(":  # MySQL: ADD COLUMN (a ..., b ...)
            definitions = _split_commas(rest[1:-1] if rest[-1].text == ")" else rest[1:])
        else:
            definitions = [list(rest)]
        hits = []
        for definition in definitions:
            hits.extend(_generic_add_column(_Reader(definition, spec.dialect), name, hit))
        return hits
    if verb == "DROP":
        has_column_word = spec.accept("COLUMN")
        if not has_column_word and spec.peek() in _NOT_A_COLUMN:
            return []
        spec.accept("IF", "EXISTS")
        column = spec.name()
        return hit("drop-column", f"drops column {name}.{column[1]}") if column else []
    if verb == "MODIFY" and is_my:
        spec.accept("COLUMN")
        spec.accept("IF", "EXISTS")
        column = spec.name()
        return hit("change-column-type", f"redefines column {name}.{column[1]} (MODIFY)") if column else []
    if verb == "CHANGE" and is_my:
        spec.accept("COLUMN")
        spec.accept("IF", "EXISTS")
        old, new = spec.name(), spec.name()
        if not old or not new:
            return []
        if old[1] != new[1]:
            return hit("rename-column", f"renames column {name}.{old[1]} to {new[1]} (CHANGE)")
        return hit("change-column-type", f"redefines column {name}.{old[1]} (CHANGE)")
    if verb == "CONVERT" and is_my:
        return hit("change-column-type", f"converts every text column of {name} to another character set")
    if verb == "RENAME":
        if spec.peek() in ("INDEX", "KEY", "CONSTRAINT"):
            return []
        if spec.accept("COLUMN") or (not is_my and spec.peek() not in ("TO", "AS") and spec.peek(1) == "TO"):
            old = spec.name()
            spec.accept("TO")
            new = spec.name()
            return hit("rename-column", f"renames column {name}.{old[1] if old else '?'} to {new[1] if new else '?'}")
        if spec.accept("TO") or spec.accept("AS") or is_my:  # MySQL: RENAME [TO|AS] new_name
            new = spec.name()
            if new:
                effects.renamed.append((table, new))
            return hit("rename-table", f"renames table {name} to {_display(new) if new else '?'}")
    return []


def _generic_add_column(column: _Reader, table: str, hit: Callable[[str, str], list[_Hit]]) -> list[_Hit]:
    name = column.name()
    if name is None:
        return []
    words = _top_level_words(column.tokens[column.i:])
    not_null = any(a == "NOT" and b == "NULL" for a, b in zip(words, words[1:])) or "PRIMARY" in words
    # DEFAULT, AUTO_INCREMENT and generated columns (AS (...) / GENERATED ALWAYS) give existing rows a value.
    gets_values = bool({"DEFAULT", "AUTO_INCREMENT", "AUTOINCREMENT", "AS", "GENERATED"} & set(words))
    if not_null and not gets_values:
        return hit("add-not-null-column-without-default", f"adds NOT NULL column {table}.{name[1]} without a default")
    return []


def _generic_dml(reader: _Reader, tokens: Sequence[_Token]) -> list[_Hit]:
    verb = reader.peek()
    reader.i += 1
    while reader.peek() in ("LOW_PRIORITY", "QUICK", "IGNORE"):
        reader.i += 1
    if reader.accept("OR"):  # SQLite: UPDATE OR REPLACE ...
        reader.i += 1
    reader.accept("FROM")
    table = reader.name()
    words = _top_level_words(tokens)
    # A join restricts the rows as a WHERE does (MySQL multi-table UPDATE/DELETE).
    if table is None or {"WHERE", "JOIN", "STRAIGHT_JOIN"} & set(words):
        return []
    if verb == "UPDATE":
        return [_Hit("update-without-where", f"updates every row of {_display(table)}", (table,))]
    return [_Hit("delete-without-where", f"deletes every row of {_display(table)}", (table,))]


def _sqlite_transaction_hit(reader: _Reader) -> _Hit | None:
    """What SQLite refuses, or silently ignores, inside the transaction premigrate runs the file in."""
    first = reader.peek()
    if first == "VACUUM":
        return _Hit("transaction-incompatible", "VACUUM cannot run inside a transaction")
    # ROLLBACK [TRANSACTION] TO a savepoint stays inside the transaction.
    if first in ("BEGIN", "COMMIT", "END") or (first == "ROLLBACK" and "TO" not in _top_level_words(reader.tokens)):
        return _Hit("transaction-incompatible", f"{first} ends or nests the transaction premigrate runs this file in")
    if first == "PRAGMA":
        pragma = _Reader(reader.tokens[1:], reader.dialect).name()
        sets = any(t.kind == "punct" and t.text in "=(" for t in reader.tokens)
        if pragma and sets and pragma[1] == "foreign_keys":
            return _Hit("transaction-noop", "PRAGMA foreign_keys is silently ignored inside a transaction")
        if pragma and sets and pragma[1] == "journal_mode":
            return _Hit("transaction-incompatible", "PRAGMA journal_mode fails inside a transaction")
    return None
