"""The folder readers, one per tool's layout, and `auto`, which picks one per folder or per file.

Registered formats (one vocabulary for `--format`, `status`, `plan` and `new`):
  flyway, golang-migrate, dbmate, goose, sql-migrate, sqlx, plain   (files.py: one file, or a pair, per migration)
  atlas (atlas.py)                                                  (files checked against atlas.sum)
  popx (popx.py)                                                    (one folder for every database)
  drizzle (drizzle.py)                                              (files listed by meta/_journal.json)
  prisma (prisma.py), diesel (diesel.py)                            (one sub-folder per migration)
`auto` reads a folder with atlas.sum as Atlas, one with meta/_journal.json as Drizzle, one with popx's dialect-suffixed names as popx, a folder of sub-folders as Prisma (beside migration_lock.toml) or Diesel (each holds up.sql), and a
folder of files file by file (files.detect_file); whatever it cannot place with certainty is refused, naming it.
Drizzle v1 folders (<timestamp>_<name>/migration.sql beside snapshot.json) are recognised and refused.
"""

from __future__ import annotations

from premigrate.errors import MigrationFileError
from premigrate.model.formats import atlas, diesel, drizzle, popx, prisma
from premigrate.model.formats.base import Entry, FolderReader, Part, show
from premigrate.model.formats.files import FileFormat

READERS: dict[str, FolderReader] = {
    "flyway": FileFormat("flyway"),
    "golang-migrate": FileFormat("golang-migrate"),
    "dbmate": FileFormat("dbmate"),
    "goose": FileFormat("goose"),
    "sql-migrate": FileFormat("sql-migrate"),
    "sqlx": FileFormat("sqlx"),
    "atlas": atlas.AtlasReader(),
    "prisma": prisma.PrismaReader(),
    "diesel": diesel.DieselReader(),
    "popx": popx.PopxReader(),
    "drizzle": drizzle.DrizzleReader(),
    "plain": FileFormat("plain"),
}
NAMES: tuple[str, ...] = ("auto", *READERS)
# Layouts recognised only to refuse them: (how to recognise, what it is).
_UNREGISTERED = "premigrate does not read {tool} folders yet; it refuses them rather than run them by other rules"


def read(entries: list[Entry], fmt: str, dialect: str | None, notes: list[str]) -> list[Part]:
    """The parts of every migration in the folder, read by `fmt`'s rules (or by `auto` detection)."""
    if fmt != "auto":
        return READERS[fmt].read(entries, dialect, notes)
    if READERS["atlas"].detect(entries):
        folders = [e for e in entries if e.is_dir]
        if folders:
            raise MigrationFileError(f"{show(folders[0].name)}/: a sub-folder in an Atlas migration folder, which "
                                     "Atlas would ignore; move it out, or pass --format atlas to ignore it as Atlas "
                                     "does", file=folders[0].name)
        return READERS["atlas"].read(entries, dialect, notes)
    if READERS["drizzle"].detect(entries):
        unlisted = drizzle_unlisted(entries)
        if unlisted:
            raise MigrationFileError(f"{show(unlisted[0])}: not in meta/_journal.json, so Drizzle would never run "
                                     "it; move it out, or pass --format drizzle to ignore it as Drizzle does",
                                     file=unlisted[0])
        return READERS["drizzle"].read(entries, dialect, notes)
    if READERS["popx"].detect(entries):
        return READERS["popx"].read(entries, dialect, notes)
    return READERS[detect(entries)].read(entries, dialect, notes) if _has_folders(entries) else \
        FileFormat("auto").read(entries, dialect, notes)


def drizzle_unlisted(entries: list[Entry]) -> list[str]:
    notes: list[str] = []
    READERS["drizzle"].read(entries, None, notes)
    return [n.split(":")[0] for n in notes]


def _has_folders(entries: list[Entry]) -> bool:
    _refuse_unregistered(entries)
    return any(e.is_dir for e in entries)


def _refuse_unregistered(entries: list[Entry]) -> None:
    for entry in entries:
        if entry.is_dir and (entry.path / "snapshot.json").is_file():
            raise MigrationFileError(f"{show(entry.name)}/snapshot.json: a Drizzle v1 migration folder; " +
                                     _UNREGISTERED.format(tool="Drizzle v1"), file=entry.name)


def detect(entries: list[Entry]) -> str:
    """`auto` for a folder of sub-folders: Prisma or Diesel when every sub-folder says so, else a refusal."""
    folders = [e for e in entries if e.is_dir]
    unknown = [e for e in folders if not prisma.is_migration_folder(e) and not diesel.is_migration_folder(e)]
    if unknown:
        names = ", ".join(f"{show(e.name)}/" for e in unknown)
        raise MigrationFileError(
            f"{names}: not a migration of a known layout (Prisma <timestamp>_<name>/migration.sql beside "
            "migration_lock.toml, Diesel <version>_<name>/up.sql); move it out of the migrations folder, or pass "
            "--format for the tool that wrote the folder", file=unknown[0].name)
    loose = [e.name for e in entries if not e.is_dir and e.name.lower().endswith(".sql")]
    kinds = {"prisma" if prisma.is_migration_folder(e) else "diesel" for e in folders}
    if len(kinds) > 1:
        raise MigrationFileError("the sub-folders mix Prisma (migration.sql) and Diesel (up.sql) migrations; pass "
                                 "--format prisma or --format diesel", file=folders[0].name)
    kind = kinds.pop()
    if loose:
        raise MigrationFileError(f"{', '.join(show(n) for n in loose)}: loose .sql files beside {kind} migration "
                                 f"folders, which {kind} would ignore; move them out, or pass --format {kind} to "
                                 "ignore them as it does", file=loose[0])
    if kind == "prisma" and not READERS["prisma"].detect(entries):
        raise MigrationFileError("sub-folders holding migration.sql but no migration_lock.toml beside them: pass "
                                 "--format prisma if Prisma wrote them", file=folders[0].name)
    return kind
