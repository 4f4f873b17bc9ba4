"""A Liquibase changelog folder read as listed migrations (model/listed.py): one per changeset, in changelog order.

The folder is the changelog root. Its changelog is, in this order: the one master changelog (a top-level *.xml,
*.yaml or *.yml holding `databaseChangeLog`), whose include/includeAll entries must point at formatted SQL files;
else every formatted SQL file of the folder and its sub-folders in path order, as `<includeAll path="."/>` reads
them (changelog.load_changelog). Each changeset becomes one migration:
  key       `<logical path>::<id>::<author>`, the order in which Liquibase prints a changeset's identity
            (ChangeSet.toString), shortened by listed.history_key only past the history column's 191 characters
  checksum  Liquibase's checksum version 9 (`9:<md5>`, as DATABASECHANGELOG.MD5SUM holds it); --validCheckSum
            values (or ANY) are accepted for an applied changeset whose text changed
  rerun     runAlways:true -> always, runOnChange:true -> on_change, else never
  skipped   ignore:true, a dbms list without this database, a context or label filter the run's --contexts or
            --labels leave out (changeset Liquibase's ChangeSetFilters would not visit)
  down      its --rollback lines or /* liquibase rollback */ block (`--rollback empty` / `not required`: nothing)
Statements are cut by Liquibase's own splitter (split.py) with the changeset's splitStatements, endDelimiter and
stripComments, except where that splitter would cut a PostgreSQL dollar-quoted body in two (Liquibase sends the
halves, which PostgreSQL rejects): that changeset is cut by premigrate's dollar-quote-aware splitter (model/sql.py)
instead; under --liquibase-strict (Filters.strict) it is refused, naming the fix Liquibase users apply.
runInTransaction:false runs it outside a transaction, statement by statement.
"""

from __future__ import annotations

import re
from dataclasses import replace
from collections.abc import Sequence
from pathlib import Path

from premigrate.errors import MigrationFileError
from premigrate.model.formats.base import Entry, show
from premigrate.model.formats.liquibase.changelog import MASTER_SUFFIXES, load_changelog
from premigrate.model.formats.liquibase.values import Changeset
from premigrate.model.formats.markers import LIQUIBASE_DBMS_NAMES, liquibase_dbms_name
from premigrate.model.listed import Filters, history_key
from premigrate.model.migrations import Migration
from premigrate.model.sql import Statement, split_statements as own_split

_MASTER_MARK = re.compile(r"databaseChangeLog")
# Liquibase's DatabaseList short names of the databases premigrate runs on.
DBMS_NAMES = LIQUIBASE_DBMS_NAMES
dbms_name = liquibase_dbms_name


def master_changelog(entries: Sequence[Entry]) -> str | None:
    """The folder's master changelog's name, None without one; several are refused (which one runs is unclear)."""
    found = [e.name for e in entries if not e.is_dir and e.name.lower().endswith(MASTER_SUFFIXES)
             and _MASTER_MARK.search(_head(e.path))]
    if len(found) > 1:
        raise MigrationFileError(f"{', '.join(show(n) for n in found)}: several master changelogs in the folder; "
                                 "keep the one Liquibase runs (the others may sit in a sub-folder it includes)",
                                 file=found[1])
    return found[0] if found else None


def _head(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(65536).decode("utf-8", errors="replace")
    except OSError:
        return ""


def read_folder(directory: Path, entries: Sequence[Entry], filters: Filters) -> list[Migration]:
    """Every changeset of the folder's changelog as a listed migration, in changelog order."""
    from premigrate.model.formats.base import read_text

    # The folder's files that are not among `entries` were set aside as callback scripts (load_migrations).
    listed = {e.name for e in entries}
    set_aside = frozenset(p.name for p in directory.iterdir() if p.is_file() and p.name not in listed)
    changesets = load_changelog(directory, master_changelog(entries),
                                read=lambda path: read_text(path, str(path.relative_to(directory))),
                                set_aside=set_aside)
    migrations = [migration_of(c, filters) for c in changesets]
    if filters.strict and filters.dbms == "postgresql":
        _refuse_broken_dollar_quotes(migrations)
    return migrations


def _refuse_broken_dollar_quotes(migrations: Sequence[Migration]) -> None:
    """--liquibase-strict: a changeset Liquibase's splitter would cut inside a dollar quote fails under Liquibase;
    strict mode refuses it before anything runs instead of splitting it as PostgreSQL would."""
    for migration in migrations:
        changeset = migration.source
        if migration.skip_reason is None and isinstance(changeset, Changeset) and \
                changeset.broken_dollar_quote is not None:
            raise MigrationFileError(
                f"{changeset.file}: line {changeset.line}: changeset {migration.id}: Liquibase's splitter cuts its "
                f"dollar-quoted body (statement {changeset.broken_dollar_quote + 1}), so PostgreSQL rejects the "
                "halves, as it does under Liquibase; put splitStatements:false (or an endDelimiter) on its "
                "--changeset line, or run without --liquibase-strict to have it split on the statements PostgreSQL "
                "sees", file=changeset.file, line=changeset.line)


def migration_of(changeset: Changeset, filters: Filters) -> Migration:
    rollback = changeset.rollback
    return Migration(
        kind="listed", version=None, description=_description(changeset), script=changeset.file,
        up_sql=changeset.sql, up_first_line=changeset.sql_first_line, checksum=changeset.checksum,
        no_transaction=not changeset.run_in_transaction,
        down_sql=None if rollback is None else "\n".join(rollback),
        down_script=None if rollback is None else changeset.file, down_first_line=changeset.line,
        down_no_transaction=not changeset.run_in_transaction,
        format="liquibase", key=history_key(f"{changeset.path}::{changeset.id}::{changeset.author}"),
        position=changeset.order,
        rerun="always" if changeset.run_always else "on_change" if changeset.run_on_change else "never",
        skip_reason=skip_reason(changeset, filters), valid_checksums=changeset.valid_checksums, source=changeset)


def refiltered(migrations: Sequence[Migration], filters: Filters) -> list[Migration]:
    """The migrations with their skips judged again under `filters` (the server's own dbms name, once known)."""
    return [replace(m, skip_reason=skip_reason(m.source, filters)) if isinstance(m.source, Changeset) else m
            for m in migrations]


def _description(changeset: Changeset) -> str:
    comment = (changeset.comment or "").strip()
    return comment[:200] if comment else f"{changeset.author}:{changeset.id}"


def skip_reason(changeset: Changeset, filters: Filters) -> str | None:
    """Why Liquibase's filters would leave the changeset out of this run (IgnoreChangeSetFilter, DbmsChangeSetFilter,
    ContextChangeSetFilter, LabelChangeSetFilter), or None."""
    if changeset.ignore:
        return "ignore:true"
    if filters.dbms is not None and not changeset.runs_on(filters.dbms):
        return f"dbms:{','.join(changeset.dbms)} (this database is {filters.dbms})"
    if not changeset.matches_contexts(filters.contexts):
        return f"context {changeset.context!r} does not match --contexts {','.join(filters.contexts) or '(none)'}"
    if not changeset.matches_labels(filters.labels):
        return f"labels {','.join(changeset.labels) or '(none)'} do not match --labels {filters.labels!r}"
    return None


def statements(migration: Migration, dialect: str, *, down: bool = False) -> list[Statement]:
    """The statements Liquibase would send for the changeset (or its rollback); see the module docstring for the
    one case cut by premigrate's splitter instead."""
    changeset = migration.source
    if not isinstance(changeset, Changeset):  # a migration rebuilt without its source: the text, split as premigrate
        text = (migration.down_sql or "") if down else migration.up_sql
        return list(own_split(text, dialect))
    if down:
        return [Statement(s, changeset.line) for s in changeset.rollback or ()]
    if changeset.broken_dollar_quote is not None and dialect == "postgresql":
        return list(own_split(migration.up_sql, dialect, first_line=migration.up_first_line))
    return [Statement(s, _line_of(changeset, s)) for s in changeset.statements]


def _line_of(changeset: Changeset, statement: str) -> int:
    head = statement[:60]
    at = changeset.sql.find(head)
    return changeset.sql_first_line + changeset.sql.count("\n", 0, at) if at >= 0 else changeset.sql_first_line
