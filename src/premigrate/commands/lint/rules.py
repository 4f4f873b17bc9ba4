"""The lint rules and the values every analyzer returns: RULES, Finding, and what one statement does (Effects)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from premigrate.errors import UsageError

ERROR = "error"
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)
DIALECTS = ("postgresql", "mysql", "sqlite")
STATEMENT_WIDTH = 120  # a finding shows the statement on one line, cut to this many characters


class LintUnavailable(UsageError):
    """The parser a dialect needs is not installed. `up --lint=warn` may log this and go on; `lint` cannot."""


@dataclass(frozen=True)
class Rule:
    """A lint rule: its severity, what goes wrong, the safe alternative, the dialects it applies to."""
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
    """One rule's finding on one statement."""
    rule: str
    severity: str  # error | warning
    script: str
    line: int  # line in the file where the statement starts (for parse-error: where the parser stopped)
    statement: str  # the statement on one line, abbreviated
    message: str  # what this statement does, then why that is unsafe on a live database
    fix: str  # the safe alternative


# (schema or None, name) as the database folds it
Table = tuple[str | None, str]


@dataclass(frozen=True)
class Hit:
    """One rule triggered by one statement, before allow comments and the new-table exemption apply."""

    rule: str
    subject: str  # what the statement does, e.g. "drops column users.email"
    # The tables it acts on. All created earlier in the same file -> exempt; empty -> never exempt.
    tables: tuple[Table, ...] = ()


@dataclass
class FileState:
    """What lint knows while it reads one file: whether it runs in a transaction, the tables it created."""
    transactional: bool
    created: list[Table] = field(default_factory=list)

    def is_new(self, table: Table) -> bool:
        schema, name = table
        return any(name == c_name and (schema is None or c_schema is None or schema == c_schema)
                   for c_schema, c_name in self.created)


class Unparsable(Exception):
    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass
class Effects:
    """What one statement does besides triggering rules: the tables it creates and the ones it renames."""

    hits: list[Hit] = field(default_factory=list)
    created: list[Table] = field(default_factory=list)
    renamed: list[tuple[Table, Table]] = field(default_factory=list)  # (old, new): new stays new if old was


# An analyzer reads one statement: (text, whether the file runs in a transaction) -> its effects.
Analyzer = Callable[[str, bool], Effects]


def display(table: Table) -> str:
    schema, name = table
    return f"{schema}.{name}" if schema else name
