"""Diesel folders: `<version>_<name>/up.sql` (+ `down.sql`, `metadata.toml`).

Follows diesel-rs/diesel diesel_migrations (commit 04cc1b0bc6578021db542464e6cd1a21e0d39235):
- migrations_internals::migrations_directories: files and names starting with `.` are skipped (loose files beside
  the folders are ignored), empty folders are skipped; every other folder must hold an `up.sql`
  (valid_sql_migration_directory), else UnknownMigrationFormat.
- version_from_string: the folder name before the first `_`, with every `-` removed (`2017-11-22-210044_x` is
  20171122210044); that string is what diesel records, and migrations run in its text order (MigrationVersion
  derives Ord on the string; migration_harness pending_migrations sorts by it). Each migration carries it as its
  order (model/ordering.py): vaultwarden's `2024-03-13_170000_x` (20240313) runs after 20240306170000, and `10_x`
  before `2_x`, as diesel runs them. premigrate's version (the history's id) stays a number: diesel 2.2+'s 4-digit
  suffix (`2026-05-27-120000-0000_x`: 202605271200000000) becomes 20260527120000.<suffix + 1> (here
  20260527120000.1), distinct from the suffix-less 20260527120000 of the same second.
- Two folders with one version: diesel keys its migrations by version (pending_migrations collects them into a
  HashMap), so it would run only one of them, whichever the directory listing gives last; refused.
- metadata.toml: `run_in_transaction` (TomlMetadata: default true without the file; `#[serde(default)]` makes it
  false when the file exists without the key, as in diesel).
- run_sql_from_file: an empty (zero-byte) up.sql or down.sql is an error (EmptyMigration); a missing down.sql can
  not be reverted (NoMigrationRevertFile).
"""

from __future__ import annotations

import re

from premigrate.errors import MigrationFileError
from premigrate.model.formats.base import Entry, Part, read_text, show
from premigrate.model.versions import Version

NAME = "diesel"
_TX = re.compile(r"^\s*run_in_transaction\s*=\s*(?P<value>true|false)\s*(?:#.*)?$", re.MULTILINE)


def is_migration_folder(entry: Entry) -> bool:
    return entry.is_dir and (entry.path / "up.sql").is_file()


class DieselReader:
    name = NAME

    def detect(self, entries: list[Entry]) -> bool:
        return any(is_migration_folder(e) for e in entries)

    def read(self, entries: list[Entry], dialect: str | None, notes: list[str]) -> list[Part]:
        parts: list[Part] = []
        versions: dict[str, str] = {}
        for entry in entries:
            if not entry.is_dir:
                notes.append(f"{entry.name}: a file beside the migration folders; ignored, as diesel ignores it")
                continue
            if not any(not p.name.startswith(".") for p in entry.path.iterdir()):
                notes.append(f"{entry.name}/: empty; ignored, as diesel ignores it")
                continue
            if not (entry.path / "up.sql").is_file():
                raise MigrationFileError(f"{show(entry.name)}/: not a diesel migration (no up.sql); diesel refuses "
                                         "the folder (UnknownMigrationFormat)", file=entry.name)
            raw_version = version_from_string(entry.name)
            if not (raw_version.isascii() and raw_version.isdigit()):  # str.isdigit() also takes `²`
                raise MigrationFileError(f"{entry.name}/: the version {raw_version!r} (before the first '_') is not "
                                         "a number; premigrate needs numeric versions", file=entry.name)
            if raw_version in versions:
                raise MigrationFileError(f"{entry.name}/ and {versions[raw_version]}/ have the same version "
                                         f"{raw_version}: diesel would run only one of them (it keys migrations by "
                                         "version), whichever the directory listing gives last; rename one",
                                         file=entry.name)
            versions[raw_version] = entry.name
            description = entry.name.split("_", 1)[1] if "_" in entry.name else ""
            up_script = f"{entry.name}/up.sql"
            up = _read_nonempty(entry, "up.sql")
            run_in_transaction = True
            metadata = entry.path / "metadata.toml"
            if metadata.is_file():
                match = _TX.search(read_text(metadata, f"{entry.name}/metadata.toml"))
                run_in_transaction = bool(match and match.group("value") == "true")
            part = Part(version_of(raw_version), description, "up", up_script, up, format=NAME,
                        no_transaction=not run_in_transaction, order=raw_version)
            parts.append(part)
            if (entry.path / "down.sql").is_file():
                down = _read_nonempty(entry, "down.sql", allow_empty=True)
                parts.append(Part(part.version, description, "down", f"{entry.name}/down.sql", down, format=NAME,
                                  no_transaction=not run_in_transaction, order=raw_version))
        from premigrate.model.migrations import directives_into

        for part in parts:
            directives_into(part)
        return parts


def version_from_string(name: str) -> str:
    """diesel's version of a migration folder name: what diesel writes into __diesel_schema_migrations.version and
    compares, as a string, with that table's rows (migrations_internals::version_from_string: the name before the
    first `_`, every `-` removed; migration_harness pending_migrations: a row is applied when its string equals it)."""
    return name.split("_", 1)[0].replace("-", "")


def folder_version(script: str) -> str:
    """diesel's version of the migration whose up part is `script` (`<folder>/up.sql`)."""
    return version_from_string(script.split("/", 1)[0])


def version_of(raw: str) -> Version:
    """premigrate's version for a diesel version (digits): up to 14 digits as one number, a longer one as the first
    14 digits, then the rest plus one (so that 202605271200000000 is not 20260527120000)."""
    if len(raw) <= 14:
        return Version.parse(raw)
    head = Version.parse(raw[:14]).parts or (0,)
    return Version((*head, int(raw[14:]) + 1), raw)


def _read_nonempty(entry: Entry, name: str, *, allow_empty: bool = False) -> str:
    script = f"{entry.name}/{name}"
    text = read_text(entry.path / name, script)
    if not text and not allow_empty:
        raise MigrationFileError(f"{script}: empty file; diesel refuses to run an empty migration (EmptyMigration)",
                                 file=script)
    return text


READER = DieselReader()
