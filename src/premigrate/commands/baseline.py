"""Adopting a database whose schema already exists: which migration files to record as applied without running them.

`baseline --version V` takes every file up to V. `baseline --from TOOL` reads that tool's own history table in the
same database, so that a team can switch tools without re-running anything:
- golang-migrate: `schema_migrations(version, dirty)`, one row meaning "every version up to this one";
  refused while its dirty flag is set.
- flyway: `flyway_schema_history`, successful versioned rows (a BASELINE row covers everything up to it, an undo
  removes its version); repeatables are matched by description. Refused while a failed row is recorded.
- dbmate: `schema_migrations(version)`, the list of applied versions.
- laravel: `migrations(migration)`, file names such as 2026_01_13_155307_create_cache_table.
- alembic: `alembic_version(version_num)`, the head revision(s); revisions carry no order, so --map gives each one's
  version and every file up to the highest is taken.
- goose, sqlx, atlas, prisma, diesel, drizzle, popx, sql-migrate, liquibase, sqitch: see `FOREIGN` below, one entry per
  tool with the table it writes (and the source file that writes it). Matching keys on the version (or on the name or
  hash where the tool stores one); `--from-table [schema.]name` names a table the tool was configured to use instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from premigrate.errors import MigrationFileError, UsageError, ValidationFailed
from premigrate.model.migrations import Migration, MigrationSet, parse_name
from premigrate.model.history import digests, row_for
from premigrate.model.versions import Version

if TYPE_CHECKING:
    from premigrate.commands.common import CommandRun
    from premigrate.drivers.base import Driver

TOOL_TABLES = {
    "golang-migrate": "schema_migrations",
    "dbmate": "schema_migrations",
    "flyway": "flyway_schema_history",
    "laravel": "migrations",
    "alembic": "alembic_version",
}


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
TOOLS = tuple(TOOL_TABLES) + tuple(FOREIGN)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")


@dataclass
class Match:
    tool: str
    matched: list[Migration] = field(default_factory=list)
    not_in_folder: list[str] = field(default_factory=list)  # in the tool's history, no file here
    notes: list[str] = field(default_factory=list)

    def pending(self, files: MigrationSet) -> list[str]:
        taken = {m.id for m in self.matched}
        return [m.id for m in files.all if m.id not in taken]


def up_to(files: MigrationSet, version: Version) -> list[Migration]:
    return [m for m in files.versioned if m.version is not None and m.version <= version]


def require_version_in_folder(files: MigrationSet, version: Version, flag: str) -> None:
    if version not in {m.version for m in files.versioned}:
        raise UsageError(f"{flag} {version}: no migration with that version in the folder; name one of its files' "
                         "versions")


def _parse_version(text: Any, tool: str) -> Version:
    try:
        return Version.parse(str(text).strip())
    except ValueError:
        raise ValidationFailed(f"{tool}'s history holds {str(text)!r}, which is not a version premigrate can "
                               "match") from None


def match_tool(tool: str, fetch: Callable[[str], list[tuple[Any, ...]]], tables: list[str], files: MigrationSet,
               mapping: dict[str, Version] | None, *, dialect: str | None = None,
               from_table: str | None = None) -> Match:
    if tool in FOREIGN:
        return match_foreign(tool, fetch, tables, files, dialect=dialect, from_table=from_table)
    table = TOOL_TABLES[tool]
    if from_table:
        if "." in from_table or not _IDENTIFIER.match(from_table):
            raise UsageError(f"--from-table {from_table!r}: {tool} keeps its table in the connection's schema; give "
                             "a plain table name")
        table = from_table
    if table not in tables:
        raise ValidationFailed(f"baseline --from {tool}: no {table} table in this database; is this the database "
                               f"{tool} migrated (and, on PostgreSQL, is its schema on the search_path)?")
    result = Match(tool)
    by_version = {m.version: m for m in files.versioned}
    if tool == "golang-migrate":
        rows = fetch(f"SELECT version, dirty FROM {table}")
        if not rows:
            raise ValidationFailed("baseline --from golang-migrate: schema_migrations is empty: nothing to adopt")
        version, dirty = rows[0][0], rows[0][1]
        if dirty:
            raise ValidationFailed(f"baseline --from golang-migrate: version {version} is marked dirty (it failed "
                                   "half-way); fix the schema and clear the flag with `migrate force` first")
        head = _parse_version(version, tool)
        result.matched = up_to(files, head)
        if head not in by_version:
            result.not_in_folder.append(str(head))
        result.notes.append(f"golang-migrate is at version {head}: every file up to it is taken as applied")
    elif tool == "dbmate":
        versions = {_parse_version(r[0], tool) for r in fetch(f"SELECT version FROM {table}")}
        _take(result, versions, by_version)
    elif tool == "laravel":
        versions = set()
        for (name,) in fetch(f"SELECT migration FROM {table}"):
            try:
                version = parse_name(f"{name}.sql")[1]
            except MigrationFileError:
                result.not_in_folder.append(str(name))
                continue
            if version is not None:
                versions.add(version)
        _take(result, versions, by_version)
    elif tool == "flyway":
        _match_flyway(result, fetch, files, by_version, table)
    elif tool == "alembic":
        if mapping is None:
            raise UsageError("baseline --from alembic needs --map FILE: alembic revisions carry no order, so the "
                             "file maps each revision id to a version")
        heads = [r[0] for r in fetch(f"SELECT version_num FROM {table}")]
        if not heads:
            raise ValidationFailed("baseline --from alembic: alembic_version is empty: nothing to adopt")
        unmapped = [h for h in heads if h not in mapping]
        if unmapped:
            raise ValidationFailed(f"baseline --from alembic: revision {unmapped[0]} is not in the --map file; add "
                                   "it with the version of the matching migration file")
        head = max(mapping[h] for h in heads)
        result.matched = up_to(files, head)
        if head not in by_version:
            result.not_in_folder.append(str(head))
        result.notes.append(f"alembic head(s) {', '.join(heads)} map to version {head}: every file up to it is "
                            "taken as applied")
    return result


def _take(result: Match, versions: set[Version], by_version: dict[Version | None, Migration]) -> None:
    result.matched = [by_version[v] for v in sorted(versions) if v in by_version]
    result.not_in_folder += [str(v) for v in sorted(versions) if v not in by_version]


def _normal_description(text: str) -> str:
    return re.sub(r"[\s_]+", " ", text).strip().lower()


def _match_flyway(result: Match, fetch: Callable[[str], list[tuple[Any, ...]]], files: MigrationSet,
                  by_version: dict[Version | None, Migration], table: str = "flyway_schema_history") -> None:
    rows = fetch(f"SELECT version, description, type, success FROM {table} ORDER BY installed_rank")
    versions: set[Version] = set()
    repeatables: set[str] = set()
    baseline: Version | None = None
    for version, description, kind, success in rows:
        kind = str(kind or "").upper()
        if not success:
            raise ValidationFailed(f"baseline --from flyway: migration {version or description} is recorded as "
                                   "failed; run `flyway repair` (and fix the schema) first")
        if kind == "SCHEMA":
            continue
        if version is None:
            repeatables.add(_normal_description(str(description)))
            continue
        parsed = _parse_version(version, "flyway")
        if kind == "BASELINE":
            baseline = max(parsed, baseline) if baseline else parsed
        elif kind.startswith("UNDO"):
            versions.discard(parsed)
        elif kind != "DELETE":
            versions.add(parsed)
    if baseline is not None:
        versions |= {m.version for m in files.versioned if m.version is not None and m.version <= baseline}
        result.notes.append(f"flyway baseline at {baseline}: every file up to it is taken as applied")
    _take(result, versions, by_version)
    for migration in files.repeatable:
        if _normal_description(migration.description) in repeatables:
            result.matched.append(migration)
            repeatables.discard(_normal_description(migration.description))
    result.not_in_folder += [f"R__{d.replace(' ', '_')}" for d in sorted(repeatables)]
    if files.repeatable:
        result.notes.append("repeatables are matched by description and recorded with their current checksum")


def read_map(path: str) -> dict[str, Version]:
    """Revision -> version, from a JSON object or from lines of `revision version` (# comments allowed)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--map: cannot read {path!r}: {exc.strerror}") from None
    pairs: list[tuple[str, str]] = []
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise UsageError(f"--map {path!r}: not valid JSON: {exc}") from None
        pairs = [(str(k), str(v)) for k, v in data.items()]
    else:
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = re.split(r"\s*[=:\s]\s*", line, maxsplit=1)
            if len(parts) != 2:
                raise UsageError(f"--map {path!r}: line {number}: expected 'revision version'")
            pairs.append((parts[0], parts[1]))
    mapping = {}
    for revision, version in pairs:
        try:
            mapping[revision] = Version.parse(version.strip())
        except ValueError:
            raise UsageError(f"--map {path!r}: {version!r} (for revision {revision}) is not a version") from None
    return mapping


# -- the tools whose tables FOREIGN describes ------------------------------------------------------------------------

def _split_table(tool: str, from_table: str | None, dialect: str | None) -> tuple[str | None, str]:
    spec = FOREIGN[tool]
    if not from_table:
        return (spec.schema if dialect in spec.schema_on else None), spec.table
    parts = from_table.split(".")
    if len(parts) > 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise UsageError(f"--from-table {from_table!r}: expected [schema.]table, letters, digits and _ only")
    return (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0])


def _quote(dialect: str | None, name: str) -> str:
    return f"`{name}`" if dialect == "mysql" else f'"{name}"'


def _locate(tool: str, fetch: Callable[[str], list[tuple[Any, ...]]], tables: list[str], dialect: str | None,
            from_table: str | None) -> str:
    """The tool's table as a qualified, quoted name for a SELECT, or a refusal saying where it was looked for."""
    schema, table = _split_table(tool, from_table, dialect)
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
    raise ValidationFailed(f"baseline --from {tool}: no {where} table in this database; is this the database {tool} "
                           "migrated (on PostgreSQL, is its schema on the search_path)? Name the table with "
                           "--from-table [schema.]name if it was configured differently")


def _version_of(text: Any, tool: str) -> Version | None:
    """The version at the start of a name such as 20210101000000_init or 1_init.sql; None when it has none."""
    m = re.match(r"(\d+(?:\.\d+)*)", str(text).strip())
    return _parse_version(m.group(1), tool) if m else None


def match_foreign(tool: str, fetch: Callable[[str], list[tuple[Any, ...]]], tables: list[str], files: MigrationSet,
                  *, dialect: str | None = None, from_table: str | None = None) -> Match:
    table = _locate(tool, fetch, tables, dialect, from_table)
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
                versions.add(_parse_version(version, tool))
    elif tool == "sqlx":
        for version, success in fetch(f"SELECT version, success FROM {table} ORDER BY version"):
            if not success:
                raise ValidationFailed(f"baseline --from sqlx: migration {version} is recorded as failed (dirty); "
                                       "fix the schema and remove or repair its _sqlx_migrations row first")
            versions.add(_parse_version(version, tool))
    elif tool == "atlas":
        baseline: Version | None = None
        for version, kind, applied, total, error in fetch(
                f"SELECT version, type, applied, total, error FROM {table} ORDER BY version"):
            if error or (applied or 0) < (total or 0):
                raise ValidationFailed(f"baseline --from atlas: revision {version} is partially applied ({applied} of "
                                       f"{total} statements{'; ' + str(error)[:200] if error else ''}); finish or "
                                       "fix it with `atlas migrate apply` / `atlas migrate set` first")
            parsed = _parse_version(version, tool)
            if int(kind or 0) & 1:  # RevisionTypeBaseline: everything up to it
                baseline = max(parsed, baseline) if baseline else parsed
            else:
                versions.add(parsed)
        if baseline is not None:
            versions |= {m.version for m in files.versioned if m.version is not None and m.version <= baseline}
            result.notes.append(f"atlas baseline at {baseline}: every file up to it is taken as applied")
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
    elif tool in ("diesel", "popx"):
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
                versions.add(_parse_version(change_id, tool))
            else:
                unparsed.append(f"{author}:{change_id}:{filename}")
    elif tool == "sqitch":
        projects = {str(r[0]) for r in fetch(f"SELECT DISTINCT project FROM {table}")}
        if len(projects) > 1:
            raise ValidationFailed(f"baseline --from sqitch: {table} holds several projects "
                                   f"({', '.join(sorted(projects))}); adopt them from the project's own plan")
        by_name = {m.description.lower(): m for m in files.versioned}
        for (name,) in fetch(f"SELECT {_quote(dialect, 'change')} FROM {table} ORDER BY committed_at"):
            migration = by_name.get(str(name).lower())
            if migration is None:
                result.not_in_folder.append(str(name))
            elif migration not in result.matched:
                result.matched.append(migration)
        result.notes.append("sqitch changes are matched by name to the files' descriptions")
        return result
    _take(result, versions, by_version)
    result.not_in_folder += unparsed
    return result


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


# -- the command ------------------------------------------------------------------------------------------------------

def run(command: CommandRun) -> int:
    """`premigrate baseline`: record existing migrations as applied, on a database premigrate never migrated."""
    from premigrate.commands import report

    config, log = command.config, command.log
    files = command.load()
    version = config.baseline.version
    tool = config.baseline.source
    if (version is None) == (tool is None):
        raise UsageError("baseline needs exactly one of --version VERSION or --from TOOL")
    if version is not None:
        require_version_in_folder(files, version, "--version")
    elif config.baseline.map_file and tool != "alembic":
        raise UsageError("--map is only for baseline --from alembic")
    # Read before connecting: a bad map changes nothing.
    mapping = read_map(config.baseline.map_file) if config.baseline.map_file else None
    with command.sessions.locked_session() as (driver, _lock):
        history = driver.read_history()
        if history:
            raise ValidationFailed(
                f"baseline refused: the history table already has {len(history)} row(s); baseline is for a "
                "database premigrate has never migrated")
        # Match first (read-only): a refusal leaves the database exactly as it was, with no history table.
        if version is not None:
            result = Match("version", up_to(files, version))
            described = {str(version): config.baseline.description}
        else:
            assert tool is not None  # exactly one of --version and --from, checked above
            result = match_tool(tool, driver.fetch, driver.list_tables(), files, mapping,
                                dialect=driver.dialect, from_table=config.baseline.from_table)
            described = {}
        driver.ensure_schema()
        driver.ensure_history_table()
        record(command, driver, result.matched, {k: v for k, v in described.items() if v})
    report.write_stdout(report.baseline_text(result, files))
    log.info("baseline_done", source=result.tool, recorded=len(result.matched),
             not_in_folder=result.not_in_folder, pending=result.pending(files))
    return 0


def record(command: CommandRun, driver: Driver, migrations: list[Migration], description_for: dict[str, str]) -> None:
    """Rows for migrations that are already in the schema, written in one transaction."""
    with driver.transaction():
        for migration in migrations:
            statements = command.shapes.statements(migration)
            driver.insert_row(row_for(
                migration, statements, command.sessions.host,
                kind="baseline" if migration.kind == "versioned" else migration.kind,
                description=description_for.get(migration.id, migration.description),
                statements_done=len(statements), statement_started=len(statements),
                statement_hashes=digests(statements)))
    command.log.info("baseline_recorded", count=len(migrations), versions=[m.id for m in migrations])
