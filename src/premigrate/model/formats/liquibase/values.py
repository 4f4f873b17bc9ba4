"""What a formatted SQL changelog holds: changesets and their preconditions; the errors that refuse one."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from premigrate.errors import MigrationFileError
from premigrate.model.formats.liquibase.expressions import context_matches, dbms_matches, label_filter_matches
from premigrate.model.formats.liquibase.patterns import DOCS


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
    """One changeset of a Liquibase formatted SQL changelog."""
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


def file_error(file: str, line: int, message: str) -> MigrationFileError:
    return MigrationFileError(f"{file}: line {line}: {message}", file=file, line=line)


def format_error(file: str, line: int, expected: str) -> MigrationFileError:
    # liquibase-core.properties formatted.changelog.exception.message, in one line
    return file_error(file, line, f"unexpected formatting; formatted SQL changelogs require known formats such as "
                              f"'{expected}' (see {DOCS})")
