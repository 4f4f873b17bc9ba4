"""`premigrate new`: the next migration file, in the folder's own style and numbering."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from premigrate.errors import UsageError
from premigrate.model.migrations import MigrationSet, parse_name

TIMESTAMP_DIGITS = 14  # YYYYMMDDHHMMSS
LARAVEL = re.compile(r"\d{4}_\d{2}_\d{2}_\d{6}_")
_DESCRIPTION = re.compile(r"[a-z0-9][a-z0-9_]*\Z")

DRAFT = ("-- Written by `premigrate new`: `up` refuses this migration until it holds SQL. To apply it empty on\n"
         "-- purpose, delete the next line.\n-- premigrate:draft\n")
TEMPLATES = {
    "plain": "-- {title}\n-- The whole file is the up migration; it runs in one transaction with its history row\n"
             "-- (PostgreSQL, SQLite). Add '-- premigrate:no-transaction' for statements that cannot run in one.\n"
             + DRAFT + "\n",
    "dbmate": "-- {title}\n-- migrate:up\n" + DRAFT + "\n\n-- migrate:down\n"
              "-- Undo the up part here; leave it empty if it cannot be undone safely.\n\n",
    "golang-migrate-up": "-- {title}\n-- Up migration; the matching .down.sql undoes it.\n" + DRAFT + "\n",
    "golang-migrate-down": "-- {title}: undo\n"
                           "-- Leave this file empty if the up migration cannot be undone safely.\n\n",
    "flyway": "-- {title}\n-- Flyway-style versioned migration: the whole file is the up migration.\n" + DRAFT + "\n",
    "goose": "-- {title}\n-- +goose Up\n" + DRAFT + "\n\n-- +goose Down\n\n",
    "sql-migrate": "-- {title}\n-- +migrate Up\n" + DRAFT + "\n\n-- +migrate Down\n\n",
    "sqlx-up": "-- {title}\n-- Up migration; the matching .down.sql undoes it.\n" + DRAFT + "\n",
    "sqlx-down": "-- {title}: undo\n\n",
    "prisma": "-- {title}\n" + DRAFT + "\n",
    "atlas": "-- {title}\n" + DRAFT + "\n",
    "drizzle": "-- {title}\n" + DRAFT + "\n",
    "diesel-up": "-- {title}\n" + DRAFT + "\n",
    "diesel-down": "-- This file should undo anything in `up.sql`\n",
}


def normalize_description(text: str) -> str:
    """`Add users table` -> `add_users_table`; refuses what would not make a valid file name."""
    normalized = re.sub(r"[\s\-]+", "_", text.strip()).lower()
    if not normalized or not _DESCRIPTION.match(normalized) or len(normalized) > 200:
        raise UsageError(
            f"description {text!r} would not make a valid migration name: use ASCII letters (a-z), digits, spaces, - "
            "and _ (at most 200), starting with a letter or digit")
    return normalized


def detect_style(directory: Path, files: MigrationSet) -> str:
    """The format most of the folder's migrations are in (plain for an empty folder)."""
    styles: Counter[str] = Counter(m.format for m in files.versioned)
    return styles.most_common(1)[0][0] if styles else "plain"


def next_version(files: MigrationSet, style: str, now: datetime) -> tuple[str, bool]:
    """(version text, laravel) for the new file: the next sequence number, or a UTC timestamp."""
    versions = [m.version for m in files.versioned if m.version is not None]
    newest = max(versions, default=None)
    laravel = any(m.format == "plain" and LARAVEL.match(m.script) for m in files.versioned)
    if style == "popx":
        return now.strftime("%Y%m%d%H%M%S") + "000000", False
    if style == "drizzle":
        return str(max((v.parts[0] if v.parts else 0 for v in versions), default=-1) + 1).zfill(4), False
    if style in ("prisma", "diesel", "atlas") or (newest is not None and len(str(newest.parts[0])) >= TIMESTAMP_DIGITS):
        newest = newest if newest is not None and len(str(newest.parts[0])) >= TIMESTAMP_DIGITS else None
        stamp = now
        while newest is not None and int(stamp.strftime("%Y%m%d%H%M%S")) <= newest.parts[0]:
            stamp += timedelta(seconds=1)
        text = stamp.strftime("%Y_%m_%d_%H%M%S" if laravel else "%Y%m%d%H%M%S")
        return text, laravel
    number = (newest.parts[0] + 1) if newest is not None and newest.parts else 1
    if style == "flyway":
        return str(number), False
    widths = [len(re.match(r"V?(\d+)", m.script, re.IGNORECASE).group(1)) for m in files.versioned  # type: ignore[union-attr]
              if re.match(r"V?\d+", m.script, re.IGNORECASE)]
    width = max(widths, default=3)
    return str(number).zfill(width), False


def create(directory: Path, files: MigrationSet, description: str, style: str | None, now: datetime) -> list[Path]:
    desc = normalize_description(description)
    if style == "liquibase" or (files.listed and (not style or style == "auto")
                                and files.listed[0].format == "liquibase"):
        # A changelog's changes are entries of its files, not files: a file written here would not be one.
        raise UsageError("new writes migration files, and this is a changelog: add a '--changeset <author>:<id>' "
                         "block (and its '--rollback') to a Liquibase formatted SQL file instead")
    if style == "sqitch" and not files.listed:
        raise UsageError("new does not write sqitch changes: a sqitch project's plan lists them; add one with `sqitch "
                         "add NAME` (a plan line and its deploy/revert/verify scripts)")
    if files.listed:
        # A sqitch plan lists its changes: a file written here would never run.
        raise UsageError(f"{str(directory)!r} is a sqitch project, whose plan lists its changes: add one with `sqitch "
                         "add NAME` (a plan line and its deploy/revert/verify scripts); a file written by `new` would "
                         "not be in the plan, so it would never run")
    if not style or style == "auto":
        style = detect_style(directory, files)
    version, _ = next_version(files, style, now)
    title = description.strip()
    if style == "flyway":
        names = {f"V{version}__{desc}.sql": TEMPLATES["flyway"]}
    elif style in ("golang-migrate", "sqlx"):
        names = {f"{version}_{desc}.up.sql": TEMPLATES[f"{style}-up"],
                 f"{version}_{desc}.down.sql": TEMPLATES[f"{style}-down"]}
    elif style == "atlas":
        names = {f"{version}_{desc}.sql": TEMPLATES["atlas"]}
    elif style == "popx":
        names = {f"{version}_{desc}.up.sql": TEMPLATES["golang-migrate-up"],
                 f"{version}_{desc}.down.sql": TEMPLATES["golang-migrate-down"]}
    elif style == "drizzle":
        names = {f"{version}_{desc}.sql": TEMPLATES["drizzle"]}
    elif style == "prisma":
        names = {f"{version}_{desc}/migration.sql": TEMPLATES["prisma"]}
    elif style == "diesel":
        # diesel runs a folder in its versions' text order (model/ordering.py): a version such as `9` sorts after
        # every timestamp, so the new folder would run before it, not last.
        later = [m.script.split("/", 1)[0] for m in files.versioned if m.order is not None and m.order >= version]
        if later:
            raise UsageError(f"new: {later[0]}/ sorts after {version} in diesel's order (the text order of the "
                             "versions), so a new migration would run before it, not last; rename that folder to a "
                             "timestamp version, or name the new folder yourself")
        stamp = f"{version[:4]}-{version[4:6]}-{version[6:8]}-{version[8:]}"
        names = {f"{stamp}_{desc}/up.sql": TEMPLATES["diesel-up"], f"{stamp}_{desc}/down.sql": TEMPLATES["diesel-down"]}
    else:
        names = {f"{version}_{desc}.sql": TEMPLATES[style]}
    created = []
    for name, template in names.items():
        path = directory / name
        if "/" not in name:
            parse_name(name)  # the name must be one premigrate reads back
        try:
            path.parent.mkdir(exist_ok=True)
            with path.open("x", encoding="utf-8") as handle:
                handle.write(template.format(title=title))
        except FileExistsError:
            raise UsageError(f"{path} already exists") from None
        except OSError as exc:
            raise UsageError(f"cannot create {path}: {exc.strerror}") from None
        created.append(path)
    if style == "atlas":
        _rehash_atlas(directory)
    elif style in ATLAS_DIR_FORMATS and (directory / "atlas.sum").is_file():
        _rehash_atlas(directory, style)  # `atlas migrate new --dir-format <style>` rehashes these too
    if style == "drizzle":
        _add_to_journal(directory, created[0].stem, now)
    return created


def _add_to_journal(directory: Path, tag: str, now: datetime) -> None:
    """Drizzle runs only what meta/_journal.json lists: the new file is appended there, as drizzle-kit does."""
    import json

    path = directory / "meta" / "_journal.json"
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        journal = {"version": "7", "dialect": "postgresql", "entries": []}
    entries = journal.setdefault("entries", [])
    previous = entries[-1] if entries else {}
    entries.append({"idx": len(entries), "version": previous.get("version", "7"),
                    "when": int(now.timestamp() * 1000), "tag": tag, "breakpoints": True})
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(journal, indent=2) + "\n", encoding="utf-8")


# The other tools' formats Atlas keeps an atlas.sum for (`atlas migrate --dir-format`).
ATLAS_DIR_FORMATS = ("flyway", "golang-migrate", "goose", "dbmate")


def _rehash_atlas(directory: Path, fmt: str | None = None) -> None:
    """atlas.sum names every file: a file added without rehashing is refused, so `new` rehashes, as
    `atlas migrate new` does. `fmt`: one of Atlas's other directory formats, whose sum covers the files Atlas hashes
    in that format, in its order (model/formats/atlas.py hashed_files; Flyway's sub-folders included)."""
    from premigrate.model.formats.atlas import SUM_FILE, hash_file, hashed_files, total_sum
    from premigrate.model.formats.base import scan, walk

    if fmt is None:
        files = sorted((p for p in directory.glob("*.sql") if p.is_file()), key=lambda p: p.name.encode())
        raw = [(p.name, p.read_bytes()) for p in files]
    else:
        found = scan(directory)
        found = walk(found) if fmt == "flyway" else [e for e in found if not e.is_dir]
        raw = hashed_files(fmt, [(e.name, e.path.read_bytes()) for e in found if e.name.endswith(".sql")])
    entries = hash_file(raw)
    text = f"h1:{total_sum(entries)}\n" + "".join(f"{name} h1:{value}\n" for name, value in entries)
    (directory / SUM_FILE).write_text(text, encoding="utf-8")
