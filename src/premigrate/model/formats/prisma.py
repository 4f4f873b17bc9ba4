"""Prisma Migrate folders: `<timestamp>_<name>/migration.sql` beside `migration_lock.toml`.

Follows prisma/prisma-engines schema-engine/connectors/schema-connector/src/migrations_directory.rs
(list_migrations: the sub-folders, sorted by name, each with a `migration.sql`; `migration_lock.toml` holds
`provider = "<name>"` and Prisma refuses to apply the folder to another provider's database). Prisma applies each
`migration.sql` as one script and has no down migrations. The version premigrate records is the number before the
first `_` of the folder name (Prisma writes UTC timestamps there); folders run in name order, as in Prisma.
"""

from __future__ import annotations

import re
from pathlib import Path

from premigrate.errors import MigrationFileError
from premigrate.model.formats.base import Entry, Part, read_text, show
from premigrate.model.versions import Version

NAME = "prisma"
LOCK = "migration_lock.toml"
_FOLDER = re.compile(r"(?P<version>\d+)_(?P<description>.+)\Z", re.DOTALL)
_PROVIDER = re.compile(r'^\s*provider\s*=\s*"(?P<provider>[^"]*)"', re.MULTILINE)
# Prisma provider -> premigrate dialect
_PROVIDERS = {"postgresql": "postgresql", "postgres": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}


def declared_dialect(folder: Path) -> str | None:
    """The database a Prisma folder's migration_lock.toml names (its provider); None without one."""
    try:
        match = _PROVIDER.search((folder / LOCK).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    return _PROVIDERS.get(match.group("provider")) if match else None


def is_migration_folder(entry: Entry) -> bool:
    return entry.is_dir and (entry.path / "migration.sql").is_file()


class PrismaReader:
    name = NAME

    def detect(self, entries: list[Entry]) -> bool:
        return any(e.name == LOCK and not e.is_dir for e in entries)

    def read(self, entries: list[Entry], dialect: str | None, notes: list[str]) -> list[Part]:
        lock = next((e for e in entries if e.name == LOCK and not e.is_dir), None)
        if lock is not None:
            match = _PROVIDER.search(read_text(lock.path, LOCK))
            provider = match.group("provider") if match else None
            if provider is None:
                raise MigrationFileError(f"{LOCK}: no provider = \"...\" line", file=LOCK)
            wanted = _PROVIDERS.get(provider)
            if wanted is None:
                raise MigrationFileError(f"{LOCK}: provider {provider!r} is not a database premigrate runs "
                                         "(postgresql, mysql, sqlite)", file=LOCK)
            if dialect is not None and wanted != dialect:
                raise MigrationFileError(f"{LOCK}: these migrations were written for {provider} and the database is "
                                         f"{dialect}; Prisma refuses to apply them there, and so does premigrate",
                                         file=LOCK)
        else:
            notes.append(f"no {LOCK} in the folder: the database provider it was written for cannot be checked")
        parts: list[Part] = []
        for entry in entries:
            if not entry.is_dir:
                if entry.name != LOCK:
                    notes.append(f"{entry.name}: not a migration folder; ignored, as Prisma ignores files here")
                continue
            script = f"{entry.name}/migration.sql"
            if not (entry.path / "migration.sql").is_file():
                raise MigrationFileError(f"{show(entry.name)}/: a Prisma migration folder needs a migration.sql "
                                         "(Prisma refuses the folder without it)", file=entry.name)
            match = _FOLDER.match(entry.name)
            if match is None:
                raise MigrationFileError(f"{entry.name}/: premigrate needs Prisma folder names that start with their "
                                         "timestamp (<YYYYMMDDHHMMSS>_<name>), as prisma migrate writes them",
                                         file=entry.name)
            text = read_text(entry.path / "migration.sql", script)
            parts.append(Part(Version.parse(match.group("version")), match.group("description"), "up", script, text,
                              format=NAME))
        _check_order(parts)
        from premigrate.model.migrations import directives_into

        for part in parts:
            directives_into(part)
        return parts


def _check_order(parts: list[Part]) -> None:
    """Prisma runs folders in name order, premigrate in version order: they must agree."""
    by_name = [p.version for p in sorted(parts, key=lambda p: p.script)]
    if by_name != sorted(v for v in by_name if v is not None):
        raise MigrationFileError("the Prisma folders' name order differs from their timestamp order (timestamps of "
                                 "different lengths); rename them so both agree", file=parts[0].script)


READER = PrismaReader()
