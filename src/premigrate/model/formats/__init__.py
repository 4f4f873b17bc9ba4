"""The folder readers, one per tool's layout, and `auto`, which picks one per folder or per file.

Registered formats (one vocabulary for `--format`, `status`, `plan` and `new`):
  flyway, golang-migrate, dbmate, goose, sql-migrate, sqlx, plain   (files.py: one file, or a pair, per migration)
  atlas (atlas.py)                                                  (files checked against atlas.sum)
  popx (popx.py)                                                    (one folder for every database)
  drizzle (drizzle.py)                                              (files listed by meta/_journal.json)
  prisma (prisma.py), diesel (diesel.py)                            (one sub-folder per migration)
`auto` reads a folder with atlas.sum as Atlas, one with meta/_journal.json as Drizzle, one with popx's
dialect-suffixed names as popx, a folder of sub-folders as Prisma (beside migration_lock.toml) or Diesel (each holds
up.sql), and a folder of files file by file (files.detect_file); whatever it cannot place with certainty is
refused, naming it.
Drizzle v1 folders (<timestamp>_<name>/migration.sql beside snapshot.json) are read as Drizzle (drizzle.read_v1).
sqitch (sqitch_project.py): a folder with sqitch.plan, read into listed migrations in plan order (read_listed).
liquibase (liquibase/reader.py): a changelog folder (a master changelog, or formatted SQL files), read into listed
migrations in changelog order (read_listed).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from premigrate.errors import MigrationFileError
from premigrate.model.formats.base import Entry, FolderReader, Part, show

if TYPE_CHECKING:
    from premigrate.model.listed import Filters
    from premigrate.model.migrations import Migration

# Every reader is imported only when a folder needs it: the no-op `up` of a folder of plain files pays for files.py.
_READERS: dict[str, tuple[str, str]] = {
    "flyway": ("files", "FLYWAY"),
    "golang-migrate": ("files", "GOLANG_MIGRATE"),
    "dbmate": ("files", "DBMATE"),
    "goose": ("files", "GOOSE"),
    "sql-migrate": ("files", "SQL_MIGRATE"),
    "sqlx": ("files", "SQLX"),
    "atlas": ("atlas", "READER"),
    "prisma": ("prisma", "READER"),
    "diesel": ("diesel", "READER"),
    "popx": ("popx", "READER"),
    "drizzle": ("drizzle", "READER"),
    "plain": ("files", "PLAIN"),
}
# Formats whose unit is a changelog entry, not a file: read into listed migrations (model/listed.py) by read_listed.
LISTED: tuple[str, ...] = ("liquibase", "sqitch")
NAMES: tuple[str, ...] = ("auto", *_READERS, *LISTED)


def reader(name: str) -> FolderReader:
    module, attribute = _READERS[name] if name != "auto" else ("files", "AUTO")
    found: FolderReader = getattr(importlib.import_module(f"premigrate.model.formats.{module}"), attribute)
    return found


def read_listed(directory: Path, entries: list[Entry], fmt: str, dialect: str | None,
                filters: Filters | None = None) -> list[Migration] | None:
    """The listed migrations of a changelog folder (`--format liquibase` or `sqitch`; `auto`: a folder with
    sqitch.plan, or one Liquibase's markers name), or None for a folder of files."""
    if fmt == "sqitch" or (fmt == "auto" and any(e.name == "sqitch.plan" and not e.is_dir for e in entries)):
        from premigrate.model.formats import sqitch_project

        loose = [e.name for e in entries if not e.is_dir and e.name.lower().endswith(".sql")]
        if loose and fmt == "auto":
            raise MigrationFileError(f"{', '.join(show(n) for n in loose)}: .sql files beside sqitch.plan, which "
                                     "sqitch would ignore (it runs the scripts under deploy/ that the plan names); "
                                     "move them out, or pass --format sqitch to ignore them as it does",
                                     file=loose[0])
        return sqitch_project.migrations(directory, dialect)
    if fmt == "liquibase" or (fmt == "auto" and is_liquibase_folder(entries)):
        from premigrate.model.formats.liquibase import reader as liquibase
        from premigrate.model.listed import Filters

        return liquibase.read_folder(directory, entries, filters or Filters())
    return None


def is_liquibase_folder(entries: list[Entry]) -> bool:
    """`auto`: a folder with a master changelog, or whose first .sql file (by name) is a formatted SQL changelog.
    Only that one file's head is read: a later formatted file among plain ones is refused by the file reader, which
    names it. The Liquibase parsers load only for a folder that is Liquibase's."""
    from premigrate.model.formats.markers import LIQUIBASE_HEADER, LIQUIBASE_MASTER_MARK, LIQUIBASE_MASTER_SUFFIXES

    masters = [e for e in entries if not e.is_dir and e.name.lower().endswith(LIQUIBASE_MASTER_SUFFIXES)]
    if any(LIQUIBASE_MASTER_MARK in _head(e, 65536) for e in masters):
        return True
    first = next((e for e in entries if not e.is_dir and e.name.lower().endswith(".sql")), None)
    if first is None:
        return False
    head = next((line for line in _head(first, 4096).splitlines() if line.strip()), "")
    return "--" in head and LIQUIBASE_HEADER.match(head) is not None  # the common file has no header: no regex


def _head(entry: Entry, size: int) -> str:
    try:
        with entry.path.open("rb") as handle:
            return handle.read(size).decode("utf-8", errors="replace").removeprefix("\ufeff")
    except OSError:
        return ""


def read(entries: list[Entry], fmt: str, dialect: str | None, notes: list[str]) -> list[Part]:
    """The parts of every migration in the folder, read by `fmt`'s rules (or by `auto` detection)."""
    if fmt != "auto":
        return reader(fmt).read(entries, dialect, notes)
    if any(e.name == "atlas.sum" and not e.is_dir for e in entries):
        return _read_atlas_sum_folder(entries, dialect, notes)
    if any(e.is_dir and e.name == "meta" for e in entries) and reader("drizzle").detect(entries):
        v1 = [e for e in entries if e.is_dir and e.name != "meta" and (e.path / "snapshot.json").is_file()]
        if v1:
            raise MigrationFileError(f"{show(v1[0].name)}/: a Drizzle v1 folder beside a 0.x meta/_journal.json; "
                                     "Drizzle v1 refuses this folder until `drizzle-kit up` converts it: run it, or "
                                     "pass --format drizzle to read the journal's files only", file=v1[0].name)
        unlisted = drizzle_unlisted(entries)
        if unlisted:
            raise MigrationFileError(f"{show(unlisted[0])}: not in meta/_journal.json, so Drizzle would never run "
                                     "it; move it out, or pass --format drizzle to ignore it as Drizzle does",
                                     file=unlisted[0])
        return reader("drizzle").read(entries, dialect, notes)
    # popx names carry a dialect or `.autocommit` between the name and the direction: at least three dots.
    if any(e.name.count(".") >= 3 for e in entries) and reader("popx").detect(entries):
        return reader("popx").read(entries, dialect, notes)
    if _has_folders(entries) and any(e.is_dir and (e.path / "snapshot.json").is_file() for e in entries):
        from premigrate.model.formats import drizzle

        return drizzle.read_v1(entries, dialect, notes, strict=True)
    return reader(detect(entries)).read(entries, dialect, notes) if _has_folders(entries) else \
        reader("auto").read(entries, dialect, notes)


def _read_atlas_sum_folder(entries: list[Entry], dialect: str | None, notes: list[str]) -> list[Part]:
    """`auto` for a folder with atlas.sum: Atlas's own format, or the files of one of its other directory formats
    (`atlas migrate --dir-format goose|golang-migrate|flyway|dbmate`), whose sum is checked over the files Atlas
    hashes in that format before they are read by their own tool's rules. Of these formats only Flyway's reads
    sub-folders (ariga/atlas sql/sqltool/tool.go FlywayDir.Files walks them; LocalDir.Files, which the others use,
    reads the folder's own files): with no `.sql` file beside atlas.sum, the sub-folders' files tell the format."""
    from premigrate.model.formats import atlas
    from premigrate.model.formats.base import walk

    folders = [e for e in entries if e.is_dir]
    files = [e for e in entries if not e.is_dir and e.name.endswith(".sql")]
    raw = [(e.name, e.path.read_bytes()) for e in files or walk(folders)]
    other = atlas.other_dir_format(raw)
    if folders and (other is None or other[1] != "flyway"):
        sub = show(folders[0].name)
        if other is None:
            why = ("the files beside it are in Atlas's own directory format, which reads only the folder's own files"
                   if files else "no migration file is beside it and the sub-folders hold no Flyway migration (only "
                   "Atlas's flyway format reads sub-folders)")
            raise MigrationFileError(f"{sub}/: a sub-folder beside atlas.sum; {why}, so Atlas would ignore it: move "
                                     "it out, or pass --format atlas to ignore it as Atlas does", file=folders[0].name)
        raise MigrationFileError(f"{sub}/: a sub-folder beside atlas.sum and {other[1]} files ({show(other[0])}); "
                                 f"Atlas's {other[1]} directory format reads only the folder's own files (only its "
                                 "flyway format reads sub-folders), so Atlas would ignore it: move it out, or pass "
                                 f"--format {other[1]} to read the folder by {other[1]}'s rules alone",
                                 file=folders[0].name)
    if other is None:
        return reader("atlas").read(entries, dialect, notes)
    if folders:  # Flyway: the sub-folders' files too, named by their path, as Atlas hashes them and Flyway runs them
        entries = [e for e in entries if not e.is_dir] + walk(folders)
        raw = [(e.name, e.path.read_bytes()) for e in entries if e.name.endswith(".sql")]
    atlas.READER.verify(entries, atlas.hashed_files(other[1], raw))
    return reader("auto").read(entries, dialect, notes)


def drizzle_unlisted(entries: list[Entry]) -> list[str]:
    notes: list[str] = []
    reader("drizzle").read(entries, None, notes)
    return [n.split(":")[0] for n in notes]


def _has_folders(entries: list[Entry]) -> bool:
    return any(e.is_dir for e in entries)


def detect(entries: list[Entry]) -> str:
    """`auto` for a folder of sub-folders: Prisma or Diesel when every sub-folder says so, else a refusal."""
    folders = [e for e in entries if e.is_dir]
    from premigrate.model.formats import diesel, prisma

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
    if kind == "prisma" and not reader("prisma").detect(entries):
        raise MigrationFileError("sub-folders holding migration.sql but no migration_lock.toml beside them: pass "
                                 "--format prisma if Prisma wrote them", file=folders[0].name)
    return kind
