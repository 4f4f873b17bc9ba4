"""Other tools' history tables (FOREIGN): where each tool keeps its table, and reading it into a Match for
`baseline --from TOOL`."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from premigrate.errors import ToolTableMissing, UsageError, ValidationFailed
from premigrate.model.migrations import Migration, MigrationSet
from premigrate.model.versions import Version

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class Foreign:
    """Another tool's history table: where it lives by default (schema None = the connection's own schema; the
    schema applies on the dialects in `schema_on` only, elsewhere the tool writes to the connected database) and the
    source that defines it."""
    table: str
    schema: str | None = None
    source: str = ""
    schema_on: tuple[str, ...] = ("postgresql",)


# Each tool's own table, as its source creates it (the e2e tests build exactly these columns).
FOREIGN: dict[str, Foreign] = {
    # pressly/goose internal/dialects/{postgres,mysql,sqlite3}.go CreateTable: goose_db_version(id, version_id,
    # is_applied, tstamp); ListMigrations reads "version_id, is_applied ORDER BY id DESC": the latest row per version
    # says whether it is applied (older goose inserted (v, false) on down, newer deletes the rows). Version 0 is the
    # row goose writes when it creates the table.
    "goose": Foreign("goose_db_version", source="pressly/goose internal/dialects/postgres.go"),
    # launchbadge/sqlx sqlx-postgres/src/migrate.rs ensure_migrations_table: _sqlx_migrations(version BIGINT PRIMARY
    # KEY, description, installed_on, success BOOLEAN, checksum, execution_time); dirty_version() is the first row
    # with success = false, a migration that failed half-way.
    "sqlx": Foreign("_sqlx_migrations", source="launchbadge/sqlx sqlx-postgres/src/migrate.rs"),
    # ariga/atlas cmd/atlas/internal/migrate/ent/schema/revision.go: atlas_schema_revisions(version, description,
    # type, applied, total, executed_at, execution_time, error, error_stmt, hash, partial_hashes, operator_version);
    # cmd/atlas/internal/cmdapi/migrate.go defaultRevisionSchema: in the schema atlas_schema_revisions unless the URL
    # is bound to a schema. sql/migrate/migrate.go RevisionType: 1 baseline, 2 execute, 4 resolved (bits).
    # applied < total, or an error, is a partially applied revision.
    "atlas": Foreign("atlas_schema_revisions", "atlas_schema_revisions",
                     source="ariga/atlas cmd/atlas/internal/migrate/ent/schema/revision.go",
                     schema_on=("postgresql", "mysql")),
    # prisma/prisma-engines schema-engine/connectors/sql-schema-connector/src/flavour/*: _prisma_migrations(id,
    # checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count).
    "prisma": Foreign("_prisma_migrations", source="prisma/prisma-engines sql-schema-connector flavour"),
    # diesel-rs/diesel diesel/src/migration/setup_migration_table.sql: __diesel_schema_migrations(version VARCHAR(50)
    # PRIMARY KEY, run_on TIMESTAMP); migrations_internals/src/lib.rs: the version is the folder name before the
    # first "_" with its "-" removed (2016-08-15-133237_x -> 20160815133237).
    "diesel": Foreign("__diesel_schema_migrations", source="diesel-rs/diesel diesel/src/migration"),
    # drizzle-team/drizzle-orm drizzle-orm/src/{pg,mysql,sqlite}-core/dialect.ts migrate(): __drizzle_migrations(id,
    # hash TEXT NOT NULL, created_at BIGINT), in the schema "drizzle" on PostgreSQL (migrationsSchema); migrator.ts:
    # hash = sha256 hex of the .sql file's text, created_at = the journal's "when".
    "drizzle": Foreign("__drizzle_migrations", "drizzle", source="drizzle-team/drizzle-orm */dialect.ts"),
    # ory/x popx/migrator.go: schema_migration(version VARCHAR(48) NOT NULL, version_self INT NOT NULL DEFAULT 0).
    "popx": Foreign("schema_migration", source="ory/x popx/migrator.go"),
    # rubenv/sql-migrate migrate.go MigrationRecord: gorp_migrations(id VARCHAR(255) PRIMARY KEY, applied_at); the
    # id is the file name.
    "sql-migrate": Foreign("gorp_migrations", source="rubenv/sql-migrate migrate.go"),
    # liquibase/liquibase sqlgenerator/core/CreateDatabaseChangeLogTableGenerator.java: DATABASECHANGELOG(ID, AUTHOR,
    # FILENAME, DATEEXECUTED, ORDEREXECUTED, EXECTYPE, MD5SUM, DESCRIPTION, COMMENTS, TAG, LIQUIBASE, CONTEXTS,
    # LABELS, DEPLOYMENT_ID); changelog/ChangeSet.java ExecType: EXECUTED, RERAN and MARK_RAN "ran", FAILED and
    # SKIPPED did not.
    "liquibase": Foreign("databasechangelog",
                         source="liquibase/liquibase CreateDatabaseChangeLogTableGenerator.java"),
    # sqitchers/sqitch lib/App/Sqitch/Engine/pg.sql (and mysql.sql, where the registry is the database "sqitch"):
    # sqitch.changes(change_id, script_hash, change, project, note, committed_at, committer_name, committer_email,
    # planned_at, planner_name, planner_email) "tracks the changes currently deployed" (a revert deletes its row).
    # On SQLite (Engine/sqlite.pm registry_uri) the registry is a separate database file.
    "sqitch": Foreign("changes", "sqitch", source="sqitchers/sqitch lib/App/Sqitch/Engine/pg.sql",
                      schema_on=("postgresql", "mysql")),
}


IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")


@dataclass
class Match:
    """Another tool's history read against the folder: what matched, what is only in that history."""
    tool: str
    matched: list[Migration] = field(default_factory=list)
    not_in_folder: list[str] = field(default_factory=list)  # in the tool's history, no file here
    notes: list[str] = field(default_factory=list)

    def pending(self, files: MigrationSet) -> list[str]:
        taken = {m.id for m in self.matched}
        return [m.id for m in files.all if m.id not in taken]


def parse_version(text: Any, tool: str) -> Version:
    try:
        return Version.parse(str(text).strip())
    except ValueError:
        raise ValidationFailed(f"{tool}'s history holds {str(text)!r}, which is not a version premigrate can "
                               "match") from None


def take_matched(result: Match, versions: set[Version], by_version: dict[Version | None, Migration]) -> None:
    result.matched = [by_version[v] for v in sorted(versions) if v in by_version]
    result.not_in_folder += [str(v) for v in sorted(versions) if v not in by_version]


# -- the tools whose tables FOREIGN describes ------------------------------------------------------------------------

def split_table(tool: str, from_table: str | None, dialect: str | None, from_table_name: str = "--from-table"
                 ) -> tuple[str | None, str]:
    spec = FOREIGN[tool]
    if not from_table:
        return (spec.schema if dialect in spec.schema_on else None), spec.table
    parts = from_table.split(".")
    if len(parts) > 2 or not all(IDENTIFIER.match(p) for p in parts):
        raise UsageError(f"{from_table_name} {from_table!r}: expected [schema.]table, letters, digits and _ only")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _quote(dialect: str | None, name: str) -> str:
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


def _locate(tool: str, fetch: Callable[[str], list[tuple[Any, ...]]], tables: list[str], dialect: str | None,
            from_table: str | None, from_table_name: str = "--from-table") -> str:
    """The tool's table as a qualified, quoted name for a SELECT, or a refusal saying where it was looked for."""
    schema, table = split_table(tool, from_table, dialect, from_table_name)
    if dialect == "sqlite":
        if tool == "sqitch" and not from_table:
            raise ValidationFailed("baseline --from sqitch: on SQLite sqitch keeps its registry in a separate "
                                   "database file (sqitch.db beside the database), which this connection cannot "
                                   "read; attach-free adoption is not supported on SQLite")
        schema = None
    candidates: list[tuple[str | None, str]] = [(schema, table)]
    if schema is not None and tool == "atlas" and not from_table:
        candidates.append((None, table))  # a URL bound to a schema keeps the revisions there
    for cand_schema, cand_table in candidates:
        if cand_schema is None:
            found = [t for t in tables if t.lower() == cand_table.lower()]
            if found:
                return _quote(dialect, found[0])
            continue
        rows = fetch("SELECT table_schema, table_name FROM information_schema.tables WHERE "
                     f"lower(table_schema) = '{cand_schema.lower()}' AND lower(table_name) = '{cand_table.lower()}'")
        if rows:  # quoted as the catalogue spells them
            return f"{_quote(dialect, str(rows[0][0]))}.{_quote(dialect, str(rows[0][1]))}"
    where = " or ".join(f"{s}.{t}" if s else t for s, t in candidates)
    raise ToolTableMissing(f"baseline --from {tool}: no {where} table in this database; is this the database {tool} "
                           "migrated (on PostgreSQL, is its schema on the search_path)? Name the table with "
                           "--from-table [schema.]name if it was configured differently", table=where)


def _version_of(text: Any, tool: str) -> Version | None:
    """The version at the start of a name such as 20210101000000_init or 1_init.sql; None when it has none."""
    m = re.match(r"(\d+(?:\.\d+)*)", str(text).strip())
    return parse_version(m.group(1), tool) if m else None


def match_foreign(tool: str, fetch: Callable[[str], list[tuple[Any, ...]]], tables: list[str], files: MigrationSet,
                  *, dialect: str | None = None, from_table: str | None = None,
                  from_table_name: str = "--from-table") -> Match:
    """`from_table_name`: how errors name --from-table (Config.named: its environment variable when that set it)."""
    table = _locate(tool, fetch, tables, dialect, from_table, from_table_name)
    result = Match(tool)
    by_version = {m.version: m for m in files.versioned}
    versions: set[Version] = set()
    unparsed: list[str] = []
    if tool == "goose":
        latest: dict[Any, tuple[Any, Any]] = {}
        for row_id, version, applied in fetch(f"SELECT id, version_id, is_applied FROM {table} ORDER BY id"):
            latest[version] = (row_id, applied)
        for version, (_row_id, applied) in latest.items():
            if applied and str(version) != "0":
                versions.add(parse_version(version, tool))
    elif tool == "sqlx":
        for version, success in fetch(f"SELECT version, success FROM {table} ORDER BY version"):
            if not success:
                raise ValidationFailed(f"baseline --from sqlx: migration {version} is recorded as failed (dirty); "
                                       "fix the schema and remove or repair its _sqlx_migrations row first")
            versions.add(parse_version(version, tool))
    elif tool == "atlas":
        versions |= _atlas_versions(fetch, table, files, result)
    elif tool == "prisma":
        for name, finished, rolled_back in fetch(
                f"SELECT migration_name, finished_at, rolled_back_at FROM {table} ORDER BY started_at"):
            if rolled_back is not None:
                continue
            if finished is None:
                raise ValidationFailed(f"baseline --from prisma: migration {name} failed or did not finish; resolve "
                                       "it with `prisma migrate resolve` first")
            found = _version_of(name, tool)
            if found is None:
                unparsed.append(str(name))
            else:
                versions.add(found)
    elif tool == "diesel":
        _match_diesel(result, fetch, table, files)
        return result
    elif tool == "popx":
        for (version,) in fetch(f"SELECT version FROM {table}"):
            found = _version_of(str(version).replace("-", ""), tool)
            if found is None:
                unparsed.append(str(version))
            else:
                versions.add(found)
    elif tool == "sql-migrate":
        for (name,) in fetch(f"SELECT id FROM {table}"):
            found = _version_of(name, tool)
            if found is None:
                unparsed.append(str(name))
            else:
                versions.add(found)
    elif tool == "drizzle":
        _match_by_hash(result, fetch, table, files)
        return result
    elif tool == "liquibase" and files.listed:
        return _match_changesets(result, fetch, table, files)
    elif tool == "liquibase":
        for change_id, author, filename, exectype in fetch(
                f"SELECT id, author, filename, exectype FROM {table} ORDER BY orderexecuted"):
            kind = str(exectype or "").upper()
            if kind == "FAILED":
                raise ValidationFailed(f"baseline --from liquibase: changeset {filename}::{change_id}::{author} is "
                                       "recorded as FAILED; fix it with Liquibase first")
            if kind not in ("EXECUTED", "MARK_RAN", "RERAN"):
                continue
            # Until changesets are read as migrations, a changeset id that is a version matches that file.
            if re.fullmatch(r"\d+(?:\.\d+)*", str(change_id).strip()):
                versions.add(parse_version(change_id, tool))
            else:
                unparsed.append(f"{author}:{change_id}:{filename}")
    elif tool == "sqitch":
        return _match_sqitch(result, fetch, table, files, dialect)
    take_matched(result, versions, by_version)
    result.not_in_folder += unparsed
    return result


def _match_diesel(result: Match, fetch: Callable[[str], list[tuple[Any, ...]]], table: str,
                  files: MigrationSet) -> None:
    """diesel's rows against the folder. diesel writes a migration's version string (migrations_internals
    version_from_string: the folder name before the first `_`, `-` removed, so `2026-05-27-120000-0000_x` is
    `202605271200000000`) and takes a folder as applied when a row holds that very string (diesel_migrations
    migration_harness.rs pending_migrations: a HashMap keyed by MigrationVersion, a string; diesel-rs/diesel
    04cc1b0bc6578021db542464e6cd1a21e0d39235). Diesel folders are matched so, by their folder name, not by
    premigrate's number for them (a suffixed version is 20260527120000.1 there). Files in another layout (a diesel
    folder rewritten as `<version>_<name>.sql`) keep the match by the leading number."""
    from premigrate.model.formats.diesel import NAME, folder_version

    folders = {folder_version(m.script): m for m in files.versioned if m.format == NAME}
    by_version = {m.version: m for m in files.versioned if m.format != NAME}
    taken: set[str] = set()
    for (version,) in fetch(f"SELECT version FROM {table}"):
        text = str(version)
        if text in folders:
            taken.add(folders[text].id)
            continue
        found = _version_of(text.replace("-", ""), "diesel") if by_version else None
        if found in by_version:
            taken.add(by_version[found].id)
        else:
            result.not_in_folder.append(text)
    result.matched = [m for m in files.versioned if m.id in taken]  # in the folder's order
    result.not_in_folder.sort()


def _match_changesets(result: Match, fetch: Callable[[str], list[tuple[Any, ...]]], table: str,
                      files: MigrationSet) -> Match:
    """A Liquibase changelog read as changesets (formats/liquibase/reader.py) against DATABASECHANGELOG, by path,
    author and id, the way Liquibase's update sees them (liquibase.match_history): what ran is adopted, a changeset
    edited since it ran (no runOnChange, no --validCheckSum covering it) is refused, a runOnChange one edited since
    is left pending so that the next `up` runs it, as Liquibase's next update would."""
    from premigrate.model.formats.liquibase import Changeset, RanChangeset, match_history

    rows = [RanChangeset(str(i), str(a), str(f), str(e or ""), None if m is None else str(m), int(o or 0))
            for i, a, f, e, m, o in fetch(f"SELECT id, author, filename, exectype, md5sum, orderexecuted FROM {table}")]
    found = match_history([m.source for m in files.listed if isinstance(m.source, Changeset)], rows)
    if found.failed:
        row = found.failed[0]
        raise ValidationFailed(f"baseline --from liquibase: changeset {row.filename}::{row.id}::{row.author} is "
                               "recorded as FAILED; fix it with Liquibase first")
    if found.changed:
        names = ", ".join(f"{c.path}::{c.id}::{c.author} (ran as {stored}, now {c.checksum})"
                          for c, stored in found.changed)
        raise ValidationFailed(f"baseline --from liquibase: changed since Liquibase ran them: {names}; restore them "
                               "as they ran (Liquibase itself refuses this changelog), or list the recorded sum in a "
                               "--validCheckSum line")
    ran = {id(c) for c in found.ran} | {id(c) for c in found.rerun if c.run_always} | \
        {id(c) for c, _ in found.unverifiable}
    result.matched = [m for m in files.listed if id(m.source) in ran]
    result.not_in_folder += [f"{r.filename}::{r.id}::{r.author}" for r in found.only_in_history]
    if found.unverifiable:
        result.notes.append(f"{len(found.unverifiable)} changeset(s) recorded with a checksum of another Liquibase "
                            "version: adopted without comparing their text")
    return result


def _atlas_versions(fetch: Callable[[str], list[tuple[Any, ...]]], table: str, files: MigrationSet,
                    result: Match) -> set[Version]:
    """Atlas' applied revisions; a baseline revision stands for every file up to it."""
    versions: set[Version] = set()
    baseline: Version | None = None
    for version, kind, applied, total, error in fetch(
            f"SELECT version, type, applied, total, error FROM {table} ORDER BY version"):
        if error or (applied or 0) < (total or 0):
            raise ValidationFailed(f"baseline --from atlas: revision {version} is partially applied ({applied} of "
                                   f"{total} statements{'; ' + str(error)[:200] if error else ''}); finish or "
                                   "fix it with `atlas migrate apply` / `atlas migrate set` first")
        parsed = parse_version(version, "atlas")
        if int(kind or 0) & 1:  # RevisionTypeBaseline: everything up to it
            baseline = max(parsed, baseline) if baseline else parsed
        else:
            versions.add(parsed)
    if baseline is not None:
        from premigrate.commands.baseline import up_to

        versions |= {m.version for m in up_to(files, baseline) if m.version is not None}
        result.notes.append(f"atlas baseline at {baseline}: every file up to it is taken as applied")
    return versions


def _match_sqitch(result: Match, fetch: Callable[[str], list[tuple[Any, ...]]], table: str, files: MigrationSet,
                  dialect: str | None) -> Match:
    """sqitch's changes, matched by name to the files' descriptions (one project only)."""
    projects = {str(r[0]) for r in fetch(f"SELECT DISTINCT project FROM {table}")}
    if len(projects) > 1:
        raise ValidationFailed(f"baseline --from sqitch: {table} holds several projects "
                               f"({', '.join(sorted(projects))}); adopt them from the project's own plan")
    by_id = {m.id: m for m in files.listed if m.format == "sqitch"}
    if by_id:
        # The folder is the sqitch project itself: its changes carry the ids sqitch recorded (formats/sqitch.py).
        rows = fetch(f"SELECT change_id, {_quote(dialect, 'change')} FROM {table} ORDER BY committed_at")
        deployed = {str(r[0]) for r in rows}
        unmatched = {m.description.split("@", 1)[0]: m for m in by_id.values() if m.id not in deployed}
        for change_id, name in rows:
            if str(change_id) in by_id:
                result.matched.append(by_id[str(change_id)])
            elif str(name) in unmatched:
                _refuse_edited(str(name), str(change_id), unmatched[str(name)])
            else:
                result.not_in_folder.append(f"{name} ({change_id})")
        result.notes.append("sqitch changes are matched by change id to the project's plan")
        return result
    by_name = {m.description.lower(): m for m in files.versioned}
    for (name,) in fetch(f"SELECT {_quote(dialect, 'change')} FROM {table} ORDER BY committed_at"):
        migration = by_name.get(str(name).lower())
        if migration is None:
            result.not_in_folder.append(str(name))
        elif migration not in result.matched:
            result.matched.append(migration)
    result.notes.append("sqitch changes are matched by name to the files' descriptions")
    return result


def _refuse_edited(name: str, deployed_id: str, planned: Migration) -> None:
    """A deployed change whose plan line was edited since: its id is another, so adopting the rest would leave it
    pending and deploy it again over what sqitch deployed. sqitch refuses such a plan too ("Cannot find change
    <id> (<name>) in sqitch.plan", lib/App/Sqitch/Engine.pm _sync_plan)."""
    raise ValidationFailed(
        f'baseline --from sqitch: change "{name}" is deployed as {deployed_id}, but its line in sqitch.plan now '
        f"gives {planned.id}: its plan line (note, date, planner, requirements), a change before it, or the plan's "
        "%project or %uri was edited after sqitch deployed it, and it would be deployed again. Restore the plan as "
        "it was deployed (sqitch refuses this plan too), then run again")


def _match_by_hash(result: Match, fetch: Callable[[str], list[tuple[Any, ...]]], table: str,
                   files: MigrationSet) -> None:
    """drizzle records sha256(file text) per migration: match each file whose hash is recorded."""
    import hashlib

    hashes = [str(r[0]) for r in fetch(f"SELECT hash FROM {table} ORDER BY created_at")]
    by_hash = {hashlib.sha256(m.up_sql.encode("utf-8")).hexdigest(): m for m in files.versioned}
    for value in hashes:
        if value in by_hash:
            result.matched.append(by_hash.pop(value))
        else:
            result.not_in_folder.append(f"sha256:{value[:12]}")
    result.notes.append("drizzle migrations are matched by the sha256 of each file")
