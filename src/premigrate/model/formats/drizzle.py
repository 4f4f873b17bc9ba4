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
- The v1 layout (`<timestamp>_<name>/migration.sql` with `snapshot.json`) is recognised and refused.
"""

from __future__ import annotations

import json
import re

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
            raise MigrationFileError(f"no {JOURNAL}: Drizzle reads its migrations from the journal (Can't find "
                                     "meta/_journal.json file)", file=JOURNAL)
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
