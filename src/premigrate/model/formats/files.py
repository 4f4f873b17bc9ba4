"""Formats where each migration is one file (or an up/down pair of files) in the folder itself.

- flyway: `V<ver>__<desc>.sql`, `U<ver>__<desc>.sql` (undo), `R__<desc>.sql` (repeatable). With `--format flyway`
  any other `*.sql` name is ignored, as Flyway ignores it, and named in a warning (flyway/flyway
  ResourceNameValidator: a non-matching name is skipped unless validateMigrationNaming is on). Its non-hidden
  sub-folders are read too, as Flyway's FileSystemScanner reads them: a file is named by its path (`v3/V3_1__x.sql`).
- golang-migrate: `<version>_<desc>.up.sql` / `.down.sql` (golang-migrate source/parse.go: Regex
  `^([0-9]+)_(.*)\\.(down|up)\\.(.*)$`); with `--format golang-migrate` other names are ignored, as the file source
  skips what it cannot parse.
- dbmate: see dbmate.py (both sections required, section lines at the start of a line, options spelt exactly, the
  folder in its file names' text order).
- goose, sql-migrate: see goose.py and sqlmigrate.py. goose reads only names ending in `.sql` in lower case
  (migrate.go collectMigrationsFS: `fs.Glob(fsys, "*.sql")` is case-sensitive): `--format goose` ignores the others.
- sqlx: `<i64>_<desc>.sql`, `.up.sql`/`.down.sql`; `-- no-transaction` as the file's first bytes runs it outside a
  transaction (launchbadge/sqlx sqlx-core/src/migrate/source.rs resolve_blocking_with_config). With
  `--format sqlx` a name without `_` or not ending in `.sql` is ignored, as sqlx ignores it; one whose part before
  the first `_` is not an integer is refused, as sqlx fails on it ("expected integer version prefix"). sqlx tests
  `-- no-transaction` on the text as read, byte-order mark included: a BOM before the marker is refused.
- plain: premigrate's own `<version>[_<desc>].sql` (and Laravel's `YYYY_MM_DD_HHMMSS_<desc>.sql`): the whole file
  is the up part; `-- premigrate:` directives; `-- migrate:up` / `-- migrate:down` sections.
- auto: each file by its markers first (goose, sql-migrate, dbmate sections, sqlx's `-- no-transaction`), then by
  its name (Flyway, golang-migrate pair, plain); every `*.sql` name must be one of these. A file with dbmate
  sections is dbmate's when it has a `-- migrate:down` line (dbmate requires one); with `-- migrate:up` alone it is
  premigrate's own plain file with an up section. A comment line that is nearly another tool's annotation
  (`-- +migrate up`, `-- goose Up`, `-- migrate:UP`: markers.NEAR_MISS) in a file not read as that tool's is
  refused: that tool would not run the file as plain SQL, down statements included, as premigrate would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from premigrate.errors import MigrationFileError
from premigrate.model.formats.base import (
    Entry,
    Part,
    read_text,
    show,
    unsupported_marker,
    walk,
)
from premigrate.model.formats.markers import GOOSE_MARKER, GOOSE_NAME, NEAR_MISS, SQL_MIGRATE_MARKER
from premigrate.model.versions import Version
from premigrate.lazy_re import LazyPattern

_DBMATE = LazyPattern(r"^[ \t]*--[ \t]*migrate:(?:up|down)\b", re.MULTILINE)
_DBMATE_DOWN = LazyPattern(r"^[ \t]*--[ \t]*migrate:down\b", re.MULTILINE)
_SQLX_NO_TX = "-- no-transaction"
_SQLX_NAME = LazyPattern(r"(?P<version>[+-]?\d+)_(?P<description>.*?)(?:\.(?P<direction>up|down))?\.sql\Z", re.DOTALL)
_GOOSE_GO = re.compile(r"\d+_.*\.go\Z", re.DOTALL)
# Another registered format's markers, by format: a file carrying them under a different explicit format is refused.
MARKERS: dict[str, LazyPattern] = {
    "goose": GOOSE_MARKER,
    "sql-migrate": SQL_MIGRATE_MARKER,
    "dbmate": _DBMATE,
}
# A literal each marker needs: most files hold none of them and skip the regexes (a no-op `up` reads every file).
HINTS = {"goose": "+goose", "sql-migrate": "+migrate", "dbmate": "migrate:"}


@dataclass
class FileFormat:
    """A format whose migrations are files in the folder itself."""

    name: str

    def detect(self, entries: list[Entry]) -> bool:
        return any(not e.is_dir and e.name.lower().endswith(".sql") for e in entries)

    def read(self, entries: list[Entry], dialect: str | None, notes: list[str]) -> list[Part]:
        parts: list[Part] = []
        if self.name == "flyway":
            # Flyway reads every non-hidden sub-folder of its location (flyway/flyway flyway-core FileSystemScanner
            # .findResourceNamesFromFileSystem), a migration's name being its file's own name.
            entries = walk(entries)
        for entry in entries:
            if entry.is_dir:
                if self.name == "auto":
                    raise MigrationFileError(_subfolder_message(entry), file=entry.name)
                notes.append(f"{entry.name}/: a folder, ignored as {self.name} ignores it")
                continue
            name = entry.name
            base = name.rsplit("/", 1)[-1]  # a sub-folder's file (Flyway's walk) is named by its path
            if _GOOSE_GO.match(base) and self.name in ("auto", "goose"):
                raise MigrationFileError(f"{name}: a goose Go migration; premigrate runs SQL migrations only, so this "
                                         "folder cannot be applied here", file=name)
            if not base.lower().endswith(".sql"):
                continue
            if self.name == "goose" and not base.endswith(".sql"):
                notes.append(f"{name}: goose reads only names ending in '.sql' in lower case; ignored, as goose "
                             "ignores it")
                continue
            if base != name:
                _check_nested(name, base, self.name)
            if self.name != "auto" and not self._name_matches(base):
                if self.name in ("goose", "dbmate", "sql-migrate", "plain"):
                    raise MigrationFileError(f"{name}: not a {self.name} migration name "
                                             f"({_EXAMPLES[self.name]})", file=name)
                if self.name == "sqlx" and "_" in base and base.split("_", 1)[1].endswith(".sql"):
                    raise MigrationFileError(f"{name}: sqlx fails on this name (\"expected integer version prefix\"): "
                                             "a .sql name with '_' must start with its integer version "
                                             f"({_EXAMPLES['sqlx']}); rename it or move it out", file=name)
                notes.append(f"{name}: the name is not a {self.name} migration name ({_EXAMPLES[self.name]}); "
                             f"ignored, as {self.name} ignores it")
                continue
            text = read_text(entry.path, name)
            tool = unsupported_marker(text)
            if tool is not None:
                hint = ("; a Liquibase changelog folder holds formatted SQL changelogs only (or a master changelog): "
                        "move the other files out, or pass --format liquibase" if tool.startswith("Liquibase") else "")
                raise MigrationFileError(f"{name}: carries {tool} markers, whose rules premigrate does not apply; "
                                         f"it is not run as plain SQL{hint}", file=name)
            fmt = self.name if self.name != "auto" else detect_file(base, text)
            # `auto` reads a lone `-- migrate:up` section as premigrate's own plain file's (detect_file).
            own = (fmt, "dbmate") if self.name == "auto" and fmt == "plain" else (fmt,)
            others = [f for f, marker in MARKERS.items() if f not in own and HINTS[f] in text and marker.search(text)]
            if others:
                raise MigrationFileError(f"{name}: read as {fmt} but it carries {others[0]} markers; "
                                         f"pass --format {others[0]} if that is the tool it was written for",
                                         file=name)
            if self.name == "auto":
                _refuse_near_miss(name, text, fmt)
            if fmt == "sqlx" and text.startswith(_SQLX_NO_TX) and _starts_with_bom(entry):
                raise MigrationFileError(f"{name}: a byte-order mark comes before '-- no-transaction'; sqlx tests the "
                                         "file's first bytes, so it does not see the marker behind the mark and would "
                                         "run the file in a transaction: remove the byte-order mark", file=name)
            part = read_file(fmt, name, text)
            if self.name == "flyway":
                # Flyway replaces ${name} placeholders in every file by default (placeholderReplacement=true) and
                # fails on one without a value: with --format flyway premigrate does the same.
                part.placeholders = True
            parts.append(part)
        if self.name in ("dbmate", "auto") and parts and all(p.format == "dbmate" for p in parts):
            from premigrate.model.formats import dbmate

            dbmate.order(parts)  # a folder dbmate could run: in its file names' text order, as dbmate runs it
        return _sql_migrate_ties(parts)

    def _name_matches(self, name: str) -> bool:
        from premigrate.model.migrations import PATTERNS

        matched = next((p for p, rx in PATTERNS if rx.match(name)), None)
        if self.name == "flyway":
            return matched in ("flyway", "flyway-undo", "flyway-repeatable")
        if self.name == "golang-migrate":
            return matched == "pair"
        if self.name == "sqlx":
            return _SQLX_NAME.match(name) is not None
        if self.name == "goose":
            return GOOSE_NAME.match(name) is not None
        return matched in ("plain", "laravel")


_EXAMPLES = {
    "flyway": "V1__create_users.sql, U1__create_users.sql or R__views.sql",
    "golang-migrate": "000001_create_users.up.sql and 000001_create_users.down.sql",
    "sqlx": "20240101000000_create_users.sql or 20240101000000_create_users.up.sql",
    "goose": "00001_create_users.sql or 20240101000000_create_users.sql",
    "dbmate": "20240101000000_create_users.sql",
    "sql-migrate": "1_create_users.sql",
    "plain": "001_create_users.sql",
}


def _check_nested(name: str, base: str, fmt: str) -> None:
    """A file in a sub-folder, read because Flyway reads sub-folders (`--format flyway`, or `auto` beside the atlas.sum
    of Atlas's flyway format): refused when Flyway would run it as a callback (it finds callbacks in sub-folders too:
    SqlScriptCallbackFactory takes every resource of the location), or, with `auto`, when it is no Flyway
    migration (Flyway would ignore it and Atlas does not hash it)."""
    from premigrate.model import callbacks
    from premigrate.model.migrations import PATTERNS

    if callbacks.parse_name(base) is not None:
        raise MigrationFileError(f"{name}: a Flyway callback name in a sub-folder (Flyway takes callbacks from "
                                 "sub-folders too); premigrate runs the callbacks beside the migrations only: move it "
                                 "up there", file=name)
    if fmt == "auto" and next((p for p, rx in PATTERNS if rx.match(base)), None) not in (
            "flyway", "flyway-undo", "flyway-repeatable"):
        raise MigrationFileError(f"{name}: in a sub-folder of a Flyway folder (read because Flyway reads sub-folders) "
                                 f"but not a Flyway migration name ({_EXAMPLES['flyway']}); Flyway would ignore it "
                                 "and Atlas does not hash it: move it out, or pass --format flyway to ignore it as "
                                 "Flyway does", file=name)


_NEAR_MISS_RULES = {
    "sql_migrate": "sql-migrate reads only '-- +migrate Up' and '-- +migrate Down', spelt exactly so at the start of "
                   "a line",
    "goose": "goose reads only lines holding '+goose' as annotations ('-- +goose Up', '-- +goose Down')",
    "dbmate": "dbmate reads only '-- migrate:up' and '-- migrate:down', in lower case at the start of a line",
}


def _refuse_near_miss(name: str, text: str, fmt: str) -> None:
    """`auto`: a comment line that is nearly another tool's annotation, in a file not read as that tool's. Its tool
    would not run the file as plain SQL (sql-migrate: "no Up/Down annotations found"; goose: "must start with
    '-- +goose Up'"; dbmate: ErrParseMissingUp), and premigrate must not either: its down statements would run."""
    for match in NEAR_MISS.finditer(text) if "--" in text else ():  # every such line is a `--` comment
        tool = match.lastgroup or ""
        if tool.replace("_", "-") == fmt or _DBMATE.match(match.group(0)):
            continue  # its own tool's line, read by that tool's rules; or premigrate's own `-- migrate:up`
        line = text.count("\n", 0, match.start()) + 1
        raise MigrationFileError(f"{name}: line {line}: {match.group(0).strip()!r} looks like an annotation, but "
                                 f"{_NEAR_MISS_RULES[tool]}, so the file would run as plain SQL, any down "
                                 "statements included: correct the line, or reword the comment", file=name, line=line)


def _starts_with_bom(entry: Entry) -> bool:
    """Whether the file's first bytes are a UTF-8 byte-order mark (read_text drops it; sqlx keeps it)."""
    try:
        with entry.path.open("rb") as handle:
            return handle.read(3) == b"\xef\xbb\xbf"
    except OSError:
        return False  # read a moment ago: a file gone since fails where it is run


def _subfolder_message(entry: Entry) -> str:
    return (f"{entry.name}/: a sub-folder that is not a migration of a known layout (Prisma "
            "<timestamp>_<name>/migration.sql beside migration_lock.toml, Diesel <version>_<name>/up.sql); move it "
            "out of the migrations folder, or pass --format for the tool that wrote it")


def _sql_migrate_ties(parts: list[Part]) -> list[Part]:
    """sql-migrate keys migrations by file name and orders them by the number before the first `_`, then by name
    (sql-migrate migrate.go Migration.Less), so two files may share a number (stellar-horizon has 8_add_aggregators
    and 8_create_asset_stats_table). premigrate keys them by version: the first of a number, by name, keeps it; the
    next ones become <number>.1, <number>.2, ... in name order, which is sql-migrate's order."""
    by_version: dict[Version, list[Part]] = {}
    for part in parts:
        if part.format == "sql-migrate" and part.version is not None:
            by_version.setdefault(part.version, []).append(part)
    for version, group in by_version.items():
        for rank, part in enumerate(sorted(group, key=lambda p: p.script)[1:], 1):
            part.version = Version((*(version.parts or (0,)), rank), f"{version.text}.{rank}")
    return parts


def detect_file(name: str, text: str) -> str:
    """The format of one file in an `auto` folder: its markers first, then its name."""
    from premigrate.model.migrations import PATTERNS

    if "+goose" in text and GOOSE_MARKER.search(text):
        return "goose"
    if "+migrate" in text and SQL_MIGRATE_MARKER.search(text):
        return "sql-migrate"
    pattern = next((p for p, rx in PATTERNS if rx.match(name)), None)
    if pattern in ("flyway", "flyway-undo", "flyway-repeatable"):
        return "flyway"
    if pattern in ("plain", "laravel") and "migrate:" in text and _DBMATE.search(text):
        # dbmate requires a down block (migration.go ErrParseMissingDown): without one the file is no dbmate file,
        # and premigrate's own plain files have taken a lone `-- migrate:up` section from the start.
        return "dbmate" if _DBMATE_DOWN.search(text) else "plain"
    if text.startswith(_SQLX_NO_TX) and _SQLX_NAME.match(name):
        return "sqlx"
    if pattern == "pair":
        return "golang-migrate"
    return "plain"


def read_file(fmt: str, name: str, text: str) -> Part:
    from premigrate.model.migrations import directives_into, parse_name, split_sections

    if fmt == "goose":
        return _goose(name, text)
    if fmt == "sql-migrate":
        return _sql_migrate(name, text)
    if fmt == "sqlx":
        match = _SQLX_NAME.match(name)
        if match is None:
            raise MigrationFileError(f"{name}: not a sqlx migration name ({_EXAMPLES['sqlx']})", file=name)
        try:
            sqlx_version = Version.parse(match.group("version").lstrip("+"))
        except ValueError:
            raise MigrationFileError(f"{name}: sqlx version {match.group('version')!r} is negative; premigrate "
                                     "orders versions from 0", file=name) from None
        part = Part(sqlx_version, match.group("description"), match.group("direction") or "up", name, text,
                    format="sqlx")
        part.no_transaction = text.startswith(_SQLX_NO_TX)
        directives_into(part)
        return part
    # A sub-folder's file (Flyway) is named by its own name and recorded by its path, as Flyway records it.
    _, version, description, direction = parse_name(name.rsplit("/", 1)[-1])
    part = Part(version, description, direction, name, text, format=fmt)
    if fmt == "dbmate":
        from premigrate.model.formats import dbmate

        dbmate.split(part)
    elif fmt == "plain" and direction == "up":
        split_sections(part)  # premigrate's own files take dbmate sections too, as before
        if part.down_text is not None:
            part.format = "dbmate"
    directives_into(part)
    return part


def _goose(name: str, text: str) -> Part:
    from premigrate.model.formats import goose
    from premigrate.model.migrations import directives_into, refuse_directive_above

    match = goose.NAME.match(name)
    if match is None:
        raise MigrationFileError(f"{name}: goose needs <version>_<description>.sql with a number before the first "
                                 "'_'", file=name)
    version = Version.parse(match.group("version"))
    if not 1 <= int(match.group("version")) < 2**63:
        raise MigrationFileError(f"{name}: goose versions are whole numbers from 1 to 2^63-1", file=name)
    try:
        parsed = goose.parse(text)
    except goose.GooseError as exc:
        raise MigrationFileError(f"{name}: line {exc.line}: {exc}", file=name, line=exc.line) from None
    refuse_directive_above(name, "\n".join(text.split("\n")[:parsed.up.first_line - 2]), "-- +goose Up",
                           "-- +goose Down")
    part = Part(version, match.group("description"), "up", name, parsed.up.text, format="goose",
                first_line=parsed.up.first_line, no_transaction=parsed.no_transaction)
    if parsed.down is not None:
        part.down_text = parsed.down.text
        part.down_first_line = parsed.down.first_line
        part.down_no_transaction = parsed.no_transaction
    if parsed.envsub:
        part.envsub = (parsed.up.envsub, parsed.down.envsub if parsed.down is not None else False)
    directives_into(part)
    part.no_transaction = part.no_transaction or parsed.no_transaction
    return part


def _sql_migrate(name: str, text: str) -> Part:
    from premigrate.model.formats import sqlmigrate
    from premigrate.model.migrations import directives_into, parse_name

    _, version, description, direction = parse_name(name)
    if direction != "up" or version is None:
        raise MigrationFileError(f"{show(name)}: a sql-migrate file holds both directions in one "
                                 "<version>_<description>.sql", file=name)
    try:
        parsed = sqlmigrate.parse(text)
    except sqlmigrate.SqlMigrateError as exc:
        raise MigrationFileError(f"{name}: line {exc.line}: {exc}", file=name, line=exc.line) from None
    # Up and Down sections may alternate, so each direction is read from the whole file when it is split.
    part = Part(version, description, "up", name, text, format="sql-migrate",
                no_transaction=parsed.up_no_transaction)
    if parsed.has_down:
        part.down_text = text
        part.down_no_transaction = parsed.down_no_transaction
    directives_into(part)
    part.no_transaction = part.no_transaction or parsed.up_no_transaction
    part.down_no_transaction = part.down_no_transaction or parsed.down_no_transaction
    return part


AUTO = FileFormat("auto")
FLYWAY = FileFormat("flyway")
GOLANG_MIGRATE = FileFormat("golang-migrate")
DBMATE = FileFormat("dbmate")
GOOSE = FileFormat("goose")
SQL_MIGRATE = FileFormat("sql-migrate")
SQLX = FileFormat("sqlx")
PLAIN = FileFormat("plain")
