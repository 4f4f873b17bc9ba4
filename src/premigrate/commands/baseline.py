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
- goose, sqlx, atlas, prisma, diesel, drizzle, popx, sql-migrate, liquibase, sqitch: see `FOREIGN` in
  foreign_history.py, one entry per tool with the table it writes (and the source file that writes it). Matching
  keys on the version (or on the name or hash where the tool stores one); `--from-table [schema.]name` names a table
  the tool was configured to use instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from premigrate.drivers.base import SqlError
from premigrate.errors import MigrationFileError, ToolTableMissing, UsageError, ValidationFailed
from premigrate.model.migrations import Migration, MigrationSet, parse_name
from premigrate.model.history import digests, row_for
from premigrate.model.versions import Version
from premigrate.options import OPTIONS_BY_DEST
from premigrate.commands.foreign_history import (  # noqa: F401 (FOREIGN and Foreign: the names baseline had)
    IDENTIFIER, FOREIGN, Foreign, Match, parse_version, take_matched, match_foreign, split_table,
)

if TYPE_CHECKING:
    from premigrate.commands.common import CommandRun
    from premigrate.drivers.base import Driver, HistoryRow
    from premigrate.engine.sessions import HeldLock

TOOL_TABLES = {
    "golang-migrate": "schema_migrations",
    "dbmate": "schema_migrations",
    "flyway": "flyway_schema_history",
    "laravel": "migrations",
    "alembic": "alembic_version",
}


TOOLS = tuple(TOOL_TABLES) + tuple(FOREIGN)


def up_to(files: MigrationSet, version: Version) -> list[Migration]:
    """Every migration up to `version` in the folder's order (a diesel folder's is its versions' text order)."""
    from premigrate.model.ordering import Ordering, key

    cut = Ordering(files).of_version(version)
    return [m for m in files.versioned if m.version is not None and key(m) <= cut]


def flag_of(dest: str) -> str:
    """An option's flag: how messages name it when no Config says what set it (match_tool's callers pass named)."""
    return OPTIONS_BY_DEST[dest].flag


def require_version_in_folder(files: MigrationSet, version: Version, option: str) -> None:
    """`option`: the option with its value as it was given (Config.option_text: `--version 5`, or
    `PREMIGRATE_BASELINE_VERSION=5`)."""
    if version not in {m.version for m in files.versioned}:
        raise UsageError(f"{option}: no migration with that version in the folder; name one of its files' "
                         "versions")


def match_tool(tool: str, fetch: Callable[[str], list[tuple[Any, ...]]], tables: list[str], files: MigrationSet,
               mapping: dict[str, Version] | None, *, dialect: str | None = None,
               from_table: str | None = None, names: Callable[[str], str] = flag_of) -> Match:
    """The folder's migrations that `tool`'s history table records as applied. `names`: how messages name an option
    by its dest (Config.named: its environment variable when that set it). A table whose columns are not the
    tool's (another tool's table of the same name: dbmate's and golang-migrate's are both schema_migrations) is
    refused, exit 5, rather than reported as a failed statement (exit 4)."""
    try:
        return _match_tool(tool, fetch, tables, files, mapping, dialect=dialect, from_table=from_table, names=names)
    except SqlError as exc:
        raise ValidationFailed(
            f"baseline --from {tool}: the history table there does not read as {tool}'s "
            f"({exc.message.splitlines()[0] if exc.message else exc.code}); nothing was recorded. Is this the database "
            f"{tool} migrated, with {tool}'s own table (another tool may use the same table name: pass that tool to "
            f"--from, or point {names('baseline_from_table')} at {tool}'s table)?") from exc


def check_from_table(tool: str, from_table: str | None, dialect: str | None, names: Callable[[str], str]) -> None:
    """A --from-table that cannot name a table of `tool` is a usage error (exit 2), found before connecting."""
    if not from_table:
        return
    if tool in FOREIGN:
        split_table(tool, from_table, dialect, names("baseline_from_table"))
    elif "." in from_table or not IDENTIFIER.match(from_table):
        raise UsageError(f"{names('baseline_from_table')} {from_table!r}: {tool} keeps its table in the "
                         "connection's schema; give a plain table name")


def _match_tool(tool: str, fetch: Callable[[str], list[tuple[Any, ...]]], tables: list[str], files: MigrationSet,
                mapping: dict[str, Version] | None, *, dialect: str | None, from_table: str | None,
                names: Callable[[str], str]) -> Match:
    if tool in FOREIGN:
        return match_foreign(tool, fetch, tables, files, dialect=dialect, from_table=from_table,
                             from_table_name=names("baseline_from_table"))
    check_from_table(tool, from_table, dialect, names)
    table = from_table or TOOL_TABLES[tool]
    if table not in tables:
        raise ToolTableMissing(f"baseline --from {tool}: no {table} table in this database; is this the database "
                               f"{tool} migrated (and, on PostgreSQL, is its schema on the search_path)?",
                               table=table)
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
        head = parse_version(version, tool)
        result.matched = up_to(files, head)
        if head not in by_version:
            result.not_in_folder.append(str(head))
        result.notes.append(f"golang-migrate is at version {head}: every file up to it is taken as applied")
    elif tool == "dbmate":
        versions = {parse_version(r[0], tool) for r in fetch(f"SELECT version FROM {table}")}
        take_matched(result, versions, by_version)
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
        take_matched(result, versions, by_version)
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
            raise ValidationFailed(f"baseline --from alembic: revision {unmapped[0]} is not in the "
                                   f"{names('baseline_map')} file; add it with the version of the matching migration "
                                   "file")
        from premigrate.model.ordering import Ordering

        head = max((mapping[h] for h in heads), key=Ordering(files).of_version)
        result.matched = up_to(files, head)
        if head not in by_version:
            result.not_in_folder.append(str(head))
        result.notes.append(f"alembic head(s) {', '.join(heads)} map to version {head}: every file up to it is "
                            "taken as applied")
    return result


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
        parsed = parse_version(version, "flyway")
        if kind == "BASELINE":
            baseline = max(parsed, baseline) if baseline else parsed
        elif kind.startswith("UNDO"):
            versions.discard(parsed)
        elif kind != "DELETE":
            versions.add(parsed)
    if baseline is not None:
        versions |= {m.version for m in up_to(files, baseline) if m.version is not None}
        result.notes.append(f"flyway baseline at {baseline}: every file up to it is taken as applied")
    take_matched(result, versions, by_version)
    for migration in files.repeatable:
        if _normal_description(migration.description) in repeatables:
            result.matched.append(migration)
            repeatables.discard(_normal_description(migration.description))
    result.not_in_folder += [f"R__{d.replace(' ', '_')}" for d in sorted(repeatables)]
    if files.repeatable:
        result.notes.append("repeatables are matched by description and recorded with their current checksum")


def read_map(path: str, name: str = "--map") -> dict[str, Version]:
    """Revision -> version, from a JSON object or from lines of `revision version` (# comments allowed). `name`: how
    errors name the option (Config.named: PREMIGRATE_BASELINE_MAP when the environment set it)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{name}: cannot read {path!r}: {exc.strerror}") from None
    pairs: list[tuple[str, str]] = []
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise UsageError(f"{name} {path!r}: not valid JSON: {exc}") from None
        pairs = [(str(k), str(v)) for k, v in data.items()]
    else:
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = re.split(r"\s*[=:\s]\s*", line, maxsplit=1)
            if len(parts) != 2:
                raise UsageError(f"{name} {path!r}: line {number}: expected 'revision version'")
            pairs.append((parts[0], parts[1]))
    mapping = {}
    for revision, version in pairs:
        try:
            mapping[revision] = Version.parse(version.strip())
        except ValueError:
            raise UsageError(f"{name} {path!r}: {version!r} (for revision {revision}) is not a version") from None
    return mapping


# -- the command ------------------------------------------------------------------------------------------------------

def run(command: CommandRun) -> int:
    """`premigrate baseline`: record existing migrations as applied, on a database premigrate never migrated."""
    from premigrate.commands import report
    from premigrate.commands.common import refuse_missing_database

    config = command.config
    files = command.load()
    version = config.baseline.version
    tool = config.baseline.source
    if version is not None and tool is not None:
        # Both were given the same way (a flag beats the other option's variable: settings._exclusive), so both are
        # named by what set them, as down names --steps and --to.
        raise UsageError(f"baseline needs exactly one of --version VERSION or --from TOOL, but "
                         f"{config.option_text('baseline_version', version)} and "
                         f"{config.option_text('baseline_from', tool)} are both given; keep only one of them")
    if version is None and tool is None:
        raise UsageError("baseline needs exactly one of --version VERSION or --from TOOL")
    if version is not None:
        require_version_in_folder(files, version, config.option_text("baseline_version", version))
    elif config.baseline.map_file and tool != "alembic":
        raise UsageError(f"{config.named('baseline_map')} is only for baseline --from alembic")
    # Read before connecting: a bad map changes nothing.
    mapping = read_map(config.baseline.map_file, config.named("baseline_map")) if config.baseline.map_file else None
    if tool is not None:
        check_from_table(tool, config.baseline.from_table, config.dsn.dialect, config.named)
    # A mistyped SQLite path would become a new empty database whose history says the migrations ran: `up` would
    # then skip them all.
    refuse_missing_database(command)
    with command.sessions.locked_session() as (driver, lock):
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
                                dialect=driver.dialect, from_table=config.baseline.from_table, names=config.named)
            described = {}
        driver.ensure_schema()
        driver.ensure_history_table()
        record(command, driver, lock, result.matched, {k: v for k, v in described.items() if v})
    report.write_stdout(report.baseline_text(result, files))
    log_done(command, result, files)
    return 0


def rows(command: CommandRun, migrations: list[Migration], description_for: dict[str, str]) -> list[HistoryRow]:
    """The rows that record migrations already in the schema as applied (kind `baseline` for versioned files)."""
    result = []
    for migration in migrations:
        statements = command.shapes.statements(migration)
        result.append(row_for(
            migration, statements, command.sessions.host,
            kind="baseline" if migration.kind == "versioned" else migration.kind,
            description=description_for.get(migration.id, migration.description),
            statements_done=len(statements), statement_started=len(statements),
            statement_hashes=digests(statements)))
    return result


def record(command: CommandRun, driver: Driver, lock: HeldLock, migrations: list[Migration],
           description_for: dict[str, str]) -> None:
    """Rows for migrations that are already in the schema, written in one transaction, under the runner lock."""
    with driver.transaction():
        lock.check_with(driver)  # inserts are not conditional on the lock: checked with the first of them
        for row in rows(command, migrations, description_for):
            driver.insert_row(row)
    command.log.info("baseline_recorded", count=len(migrations), versions=[m.id for m in migrations])


def log_done(command: CommandRun, result: Match, files: MigrationSet) -> None:
    """What was adopted: in the tool's history and the folder (recorded), only in the history, only in the folder."""
    command.log.info("baseline_done", source=result.tool, recorded=len(result.matched),
                     matched=[m.id for m in result.matched], not_in_folder=result.not_in_folder,
                     pending=result.pending(files), notes=result.notes)
