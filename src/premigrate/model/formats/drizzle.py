"""Drizzle Kit folders (0.x): `NNNN_<name>.sql` files listed, in order, by `meta/_journal.json`.

Follows drizzle-team/drizzle-orm drizzle-orm/src/migrator.ts readMigrationFiles (commit
b7862528fd8fc39bc2653a6c18dad7c1f4e68d10) and the dialects' migrate():
- The journal's `entries` define the migrations and their order; each is `<tag>.sql` beside `meta/` (a missing file
  is an error: "No file ... found"). A `.sql` file the journal does not list is never run by Drizzle; premigrate
  names it in a warning (with `--format drizzle`) and refuses it with `auto`.
- Statements: the file split at every `--> statement-breakpoint`, each piece sent as one query. premigrate also cuts
  a piece that holds several statements with the dialect's splitter, so each runs and is recorded on its own.
- Drizzle applies the pending migrations in one transaction; premigrate applies each in its own (or all in one with
  `--single-transaction`), which ends at the same schema.
- The journal's `dialect` must be the database's (Drizzle would fail part-way on another database's SQL; premigrate
  refuses before anything runs).
- The version premigrate records is the number before the first `_` of the tag (0000, 0001, ...).

The v1 layout (drizzle-kit v1, drizzle-orm 1.0.0-rc.4: branch rc5, commit 2ead15b9fede05eb30814a2e797afdf6123eac73),
drizzle-orm/src/migrator.ts readMigrationFiles and migrator.utils.ts, drizzle-kit generate-common.ts:
- `<YYYYMMDDHHMMSS>_<name>/migration.sql` (+ `snapshot.json`, which the migrator never reads). Every entry of the
  folder holding a `migration.sql` is a migration; anything else is ignored (named in a note). A folder that still
  has `meta/_journal.json` is refused by Drizzle v1 ("run drizzle-kit up"); `auto` reads it as 0.x (see below).
- Order: the entry names sorted (`localeCompare`); premigrate sorts by name and refuses two folders with the same
  14-digit timestamp, which would be one version here and whose order under a locale may differ from byte order.
- Statements: split at `--> statement-breakpoint`, as 0.x. Drizzle records hash = sha256 hex of the file's text,
  created_at = Date.UTC of the name's first 14 characters, and name = the folder name (v1 skips migrations by name).
  premigrate's version is that 14-digit timestamp; `baseline --from drizzle` matches by hash for both layouts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from premigrate.errors import MigrationFileError
from premigrate.model.formats.base import Entry, Part, read_text, show
from premigrate.model.sql import Statement
from premigrate.model.versions import Version

NAME = "drizzle"
BREAKPOINT = "--> statement-breakpoint"
JOURNAL = "meta/_journal.json"
_TAG = re.compile(r"(?P<version>\d+)_(?P<description>.+)\Z", re.DOTALL)
_DIALECTS = {"postgresql": "postgresql", "postgres": "postgresql", "pg": "postgresql", "mysql": "mysql",
             "sqlite": "sqlite", "turso": "sqlite"}


def has_journal(entries: list[Entry]) -> bool:
    meta = next((e for e in entries if e.is_dir and e.name == "meta"), None)
    return meta is not None and (meta.path / "_journal.json").is_file()


class DrizzleReader:
    name = NAME

    def detect(self, entries: list[Entry]) -> bool:
        return has_journal(entries)

    def read(self, entries: list[Entry], dialect: str | None, notes: list[str]) -> list[Part]:
        if not has_journal(entries):
            if any(e.is_dir and (e.path / V1_FILE).is_file() for e in entries):
                return read_v1(entries, dialect, notes, strict=False)
            raise MigrationFileError(f"no {JOURNAL} and no <timestamp>_<name>/{V1_FILE} folders: not a Drizzle "
                                     "migrations folder (0.x or v1)", file=JOURNAL)
        meta = next(e for e in entries if e.name == "meta")
        try:
            journal = json.loads(read_text(meta.path / "_journal.json", JOURNAL))
            listed = [(str(e["tag"]), int(e["when"])) for e in journal["entries"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise MigrationFileError(f"{JOURNAL}: not a Drizzle journal ({exc})", file=JOURNAL) from None
        wanted = _DIALECTS.get(str(journal.get("dialect", "")))
        if dialect is not None and wanted is not None and wanted != dialect:
            raise MigrationFileError(f"{JOURNAL}: these migrations were generated for {journal['dialect']} and the "
                                     f"database is {dialect}", file=JOURNAL)
        by_name = {e.name: e for e in entries if not e.is_dir}
        parts: list[Part] = []
        for tag, _ in listed:
            name = f"{tag}.sql"
            entry = by_name.pop(name, None)
            if entry is None:
                raise MigrationFileError(f"{show(name)}: listed in {JOURNAL} but not in the folder (Drizzle: No file "
                                         "found)", file=name)
            match = _TAG.match(tag)
            if match is None:
                raise MigrationFileError(f"{show(name)}: premigrate needs Drizzle tags that start with their number "
                                         "(0000_name)", file=name)
            parts.append(Part(Version.parse(match.group("version")), match.group("description"), "up", name,
                              read_text(entry.path, name), format=NAME))
        for name in sorted(by_name):
            if name.endswith(".sql"):
                notes.append(f"{name}: not in {JOURNAL}; ignored, as Drizzle never runs it")
        for entry in entries:
            if entry.is_dir and entry.name != "meta":
                notes.append(f"{entry.name}/: a sub-folder; ignored, as Drizzle reads only the journal's files")
        versions = [p.version for p in parts]
        if versions != sorted(v for v in versions if v is not None) or len(set(versions)) != len(versions):
            raise MigrationFileError(f"the order of {JOURNAL} differs from its tags' numbers; premigrate orders "
                                     "migrations by number", file=JOURNAL)
        from premigrate.model.migrations import directives_into

        for part in parts:
            directives_into(part)
        return parts


V1_NAME = re.compile(r"(?P<version>\d{14})_(?P<description>.+)\Z", re.DOTALL)
V1_FILE = "migration.sql"


def declared_dialect(folder: Path) -> str | None:
    """The database a Drizzle 0.x folder's journal says its SQL was generated for; None without one."""
    try:
        journal = json.loads((folder / JOURNAL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _DIALECTS.get(str(journal.get("dialect", ""))) if isinstance(journal, dict) else None


def is_v1_folder(entry: Entry) -> bool:
    """A drizzle-kit v1 migration folder: migration.sql beside snapshot.json (what `auto` recognises)."""
    return entry.is_dir and (entry.path / V1_FILE).is_file() and (entry.path / "snapshot.json").is_file()


def read_v1(entries: list[Entry], dialect: str | None, notes: list[str], *, strict: bool) -> list[Part]:
    """The v1 layout's migrations. `strict` (auto): every sub-folder must be a v1 migration and no loose .sql file
    may sit beside them; else Drizzle's own rule: entries without a migration.sql are ignored, with a note."""
    parts: list[Part] = []
    for entry in entries:  # sorted by name (base.scan)
        path = entry.path / V1_FILE
        if not entry.is_dir or not path.is_file():
            if strict and (entry.is_dir or entry.name.lower().endswith(".sql") or entry.name == "migration_lock.toml"):
                raise MigrationFileError(f"{show(entry.name)}{'/' if entry.is_dir else ''}: not a Drizzle v1 migration "
                                         f"(<timestamp>_<name>/{V1_FILE}) beside the Drizzle v1 folders; Drizzle "
                                         "would ignore it: move it out, or pass --format drizzle to ignore it as "
                                         "Drizzle does", file=entry.name)
            notes.append(f"{entry.name}: no {V1_FILE} in it; ignored, as Drizzle v1 ignores it")
            continue
        script = f"{entry.name}/{V1_FILE}"
        match = V1_NAME.match(entry.name)
        if match is None:
            raise MigrationFileError(f"{show(entry.name)}/: premigrate needs Drizzle v1 folder names that start with "
                                     "drizzle-kit's 14-digit timestamp (20250101120000_name)", file=script)
        _check_snapshot_dialect(entry, dialect)
        parts.append(Part(Version.parse(match.group("version")), match.group("description"), "up", script,
                          read_text(path, script), format=NAME))
    seen: dict[Version | None, str] = {}
    for part in parts:
        if part.version in seen:
            raise MigrationFileError(f"{show(part.script)} and {show(seen[part.version])}: two Drizzle v1 folders with "
                                     "the same timestamp; premigrate cannot order them as Drizzle would: rename one",
                                     file=part.script)
        seen[part.version] = part.script
    from premigrate.model.migrations import directives_into

    for part in parts:
        directives_into(part)
    return parts


def _check_snapshot_dialect(entry: Entry, dialect: str | None) -> None:
    """snapshot.json's `dialect` must be the database's, as the 0.x journal's (Drizzle itself does not check)."""
    if dialect is None:
        return
    try:
        snapshot = json.loads((entry.path / "snapshot.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the migrator never reads it
    wanted = _DIALECTS.get(str(snapshot.get("dialect", ""))) if isinstance(snapshot, dict) else None
    if wanted is not None and wanted != dialect:
        raise MigrationFileError(f"{show(entry.name)}/snapshot.json: these migrations were generated for "
                                 f"{snapshot['dialect']} and the database is {dialect}", file=entry.name)


def split_marked(text: str, *, first_line: int) -> list[tuple[Statement, bool]]:
    """The pieces between `--> statement-breakpoint` markers, each with its line (False: a piece may hold several
    statements, which the dialect's splitter cuts)."""
    pieces: list[tuple[Statement, bool]] = []
    offset = 0
    for piece in text.split(BREAKPOINT):
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            pieces.append((Statement(stripped, first_line + text.count("\n", 0, offset + lead)), False))
        offset += len(piece) + len(BREAKPOINT)
    return pieces


READER = DrizzleReader()
