"""Discover and parse migration files. Pure reading: no database, no logging.

load_migrations scans the folder (base.scan refuses what is not a migration: a `*.sql` folder or FIFO, an unreadable
entry, a name with control characters), hands the entries to the reader of the chosen format (model/formats/: one
module per tool, `auto` detects per folder or per file), and assembles the parts into Migrations. An empty result is
refused unless allowed: a folder mounted at the wrong path must not look like "nothing to do".

premigrate's own file name patterns (`auto` and `plain`; the other tools' rules are in model/formats/), tried in
this order (first match wins):
  1. V<version>__<description>.sql       Flyway versioned (V1_1__x is version 1.1)
  2. U<version>__<description>.sql       Flyway undo: the down part of that version
  3. R__<description>.sql                Flyway repeatable: re-applied after the versioned ones when it changes
  4. YYYY_MM_DD_HHMMSS_<description>[.up|.down].sql   Laravel style, read as the one number YYYYMMDDHHMMSS
  5. <version>_<description>.up.sql / .down.sql       golang-migrate pair
  6. <version>[_<description>].sql       plain file; the whole file is the up part, unless it has dbmate sections
                                         (-- migrate:up / -- migrate:down)
Every other *.sql name is an error; files not ending in .sql, and names starting with a dot, are ignored.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from premigrate.model.durations import parse_duration
from premigrate.errors import MigrationFileError
from premigrate.lazy_re import LazyPattern
from premigrate.model.formats.base import MAX_FILE_BYTES, Part, scan, show
from premigrate.model.ordering import key_of
from premigrate.model.versions import Version

if TYPE_CHECKING:
    from premigrate.model.listed import Filters

__all__ = ["MAX_FILE_BYTES", "Migration", "MigrationSet", "checksum", "load_migrations", "parse_name"]
CHECKSUM_ALGORITHM = "sha256"

_V = r"\d+(?:\.\d+)*"
PATTERNS: list[tuple[str, LazyPattern]] = [
    # Flyway matches its V/U/R prefixes case-sensitively and the suffix without regard to case (flyway-core
    # ResourceNameParser.findPrefix: `startsWith(prefix)`): `v2__b.sql` is no Flyway migration, `V3__c.SQL` is one.
    ("flyway", LazyPattern(r"V(?P<version>\d+(?:[._]\d+)*)__(?P<description>.+)\.(?i:sql)\Z", re.S)),
    ("flyway-undo", LazyPattern(r"U(?P<version>\d+(?:[._]\d+)*)__(?P<description>.+)\.(?i:sql)\Z", re.S)),
    ("flyway-repeatable", LazyPattern(r"R__(?P<description>.+)\.(?i:sql)\Z", re.S)),
    ("laravel", LazyPattern(
        r"(?P<y>\d{4})_(?P<mo>\d{2})_(?P<d>\d{2})_(?P<t>\d{6})_(?P<description>.+?)(?:\.(?P<direction>up|down))?\.sql\Z",
        re.I | re.S)),
    ("pair", LazyPattern(rf"(?P<version>{_V})_(?P<description>.+)\.(?P<direction>up|down)\.sql\Z", re.I | re.S)),
    ("plain", LazyPattern(rf"(?P<version>{_V})(?:_(?P<description>.+))?\.sql\Z", re.I | re.S)),
]
_SECTION = LazyPattern(r"^[ \t]*--[ \t]*migrate:(?P<part>up|down)\b(?P<options>[^\n]*)$", re.M)
_DIRECTIVE = LazyPattern(r"^[ \t]*--[ \t]*premigrate:(?P<name>[A-Za-z0-9_-]*)(?P<arg>[^\n]*)$", re.M)
_DIRECTIVE_MARK = "premigrate:"  # in every directive: a file without it (most) skips the regex
# name -> the argument it takes: None (none), "rules" (lint rule ids), "duration" or "count"
KNOWN_DIRECTIVES: dict[str, str | None] = {
    "no-transaction": None, "draft": None, "placeholders": None, "allow": "rules",
    "ddl-lock-timeout": "duration", "statement-timeout": "duration", "lock-retries": "count",
}
# Directives that override a run option for one file: directive -> Config option name.
SETTING_DIRECTIVES = {"ddl-lock-timeout": "ddl_lock_timeout", "statement-timeout": "statement_timeout",
                      "lock-retries": "lock_retries"}
_RULE_LIST = LazyPattern(r"[A-Za-z][A-Za-z0-9_-]*(?:\s*,\s*[A-Za-z][A-Za-z0-9_-]*)*\Z")


@dataclass(frozen=True)
class Migration:
    """One migration of the folder: its identity, its up part and, where there is one, its down part."""
    kind: str  # versioned | repeatable | listed (model/listed.py: a changelog entry, identified by `key`)
    version: Version | None
    description: str
    script: str  # file name of the up part
    up_sql: str
    up_first_line: int  # line of the file where up_sql starts, so errors point into the file
    checksum: str  # "sha256:<hex>" of the up part (BOM stripped, CRLF -> LF)
    no_transaction: bool = False
    placeholders: bool = False  # `-- premigrate:placeholders`: ${NAME} is substituted in this file
    # Per-file overrides of run options, by option name (ddl_lock_timeout, statement_timeout: seconds, 0.0 = no limit;
    # lock_retries: a count). Only what the file sets.
    settings: tuple[tuple[str, float | int], ...] = ()
    down_sql: str | None = None
    down_script: str | None = None
    down_first_line: int = 1
    down_no_transaction: bool = False
    format: str = "plain"  # the format's name (model/formats): decides how the SQL is split into statements
    draft: bool = False  # `-- premigrate:draft`: written by `new`; refused by `up` while its up part is empty
    # goose `-- +goose ENVSUB ON` (formats/goose.py): whether it is on where the up and the down part start; None when
    # the file never turns it on. `environment` holds the values once a step is resolved (Policy.resolve); the
    # checksum stays that of the file's text.
    envsub: tuple[bool, bool] | None = None
    environment: Mapping[str, str] | None = field(default=None, repr=False, compare=False)
    # sqitch's verify/<change>.sql (formats/sqitch.py): run after the up part; if it raises, the change is reverted
    # with its down part and not recorded (engine/change_verify.py). Not part of the checksum, as in sqitch.
    verify_sql: str | None = None
    verify_script: str | None = None
    # A listed migration (kind "listed", model/listed.py): a change of a changelog (Liquibase changeset, sqitch
    # change) that names itself and runs in the changelog's order, not by version.
    key: str | None = None  # its identity, the history table's migration_id (listed.history_key: at most 191 chars)
    position: int = 0  # its place in the changelog's listing order, from 1
    rerun: str = "never"  # never | on_change (re-applied when its checksum changes) | always (every run)
    skip_reason: str | None = None  # why this run does not apply it (dbms, context, label); None: it runs
    valid_checksums: tuple[str, ...] = ()  # recorded checksums also accepted as unchanged ("ANY": every one)
    # The format's own record of the change (e.g. liquibase.Changeset): its splitting, preconditions, failOnError.
    source: object | None = field(default=None, repr=False, compare=False)
    # diesel's version string, or a dbmate file's name, compared as text to order the folder (model/ordering.py);
    # None: ordered by version.
    order: str | None = None

    @property
    def id(self) -> str:
        """The history table's key: the version, R:<description> for a repeatable, the key of a listed one."""
        if self.key is not None:
            return self.key
        return str(self.version) if self.version is not None else f"R:{self.description}"

    @property
    def is_empty(self) -> bool:
        return not _strip_comments_and_space(self.up_sql)


@dataclass
class MigrationSet:
    """The folder's migrations, versioned and repeatable, and what reading it noted."""
    versioned: list[Migration] = field(default_factory=list)
    repeatable: list[Migration] = field(default_factory=list)
    # What the format's own tool would ignore and premigrate therefore ignored (logged as warnings by the runner).
    notes: list[str] = field(default_factory=list)
    # Callback-shaped names (model/callbacks.py) left out of the migrations: the caller discovers and checks them.
    callback_files: list[str] = field(default_factory=list)
    # Listed migrations (kind "listed"), in listing order; a folder of listed migrations holds nothing else.
    listed: list[Migration] = field(default_factory=list)

    @property
    def all(self) -> list[Migration]:
        return self.versioned + self.repeatable + self.listed


# A file's text is hashed in slices of this many characters: encoding a 60 MiB text at once held a second copy of it
# at the run's peak of memory (the shipped manifests give the container 256 MiB).
CHECKSUM_SLICE = 1 << 20


def checksum(text: str) -> str:
    """The UTF-8 bytes' SHA-256 (slicing a str never splits a character, so the slices' bytes are the text's)."""
    digest = hashlib.sha256()
    for start in range(0, len(text), CHECKSUM_SLICE):
        digest.update(text[start:start + CHECKSUM_SLICE].encode())
    return f"{CHECKSUM_ALGORITHM}:{digest.hexdigest()}"


def normalize_text(text: str) -> str:
    # A checkout on Windows (CRLF, maybe a BOM) must not look like drift.
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def _strip_comments_and_space(sql: str) -> str:
    sql = re.sub(r"/\*.*?\*/", "", sql, flags=re.S)
    sql = re.sub(r"--[^\n]*", "", sql)
    return sql.strip().strip(";").strip()


def load_migrations(directory: Path, *, format: str = "auto", dialect: str | None = None,
                    allow_empty: bool = False, filters: Filters | None = None, option: str = "--dir") -> MigrationSet:
    """Read and parse every migration in `directory` by `format`'s rules. A broken folder fails here, before any
    connection; `dialect` (when known) lets a format check the database it was written for; `filters` say which
    changes of a changelog this run selects (listed migrations: model/listed.py); `option` is how messages name the
    option that gave the folder (--dir, or PREMIGRATE_DIR when the environment set it)."""
    from premigrate.model import formats

    entries = scan(directory, option=option)
    # Callback-shaped names (beforeMigrate.sql, afterMigrate__grants.sql, ...) are not migrations: set aside for
    # commands/common.load_callbacks, which checks and runs them.
    callback_files = [e.name for e in entries if not e.is_dir and e.name[:1] in _CALLBACK_INITIALS
                      and _is_callback(e.name)]
    if callback_files:
        entries = [e for e in entries if e.name not in set(callback_files)]
    notes: list[str] = []
    listed = formats.read_listed(directory, entries, format, dialect, filters)
    result = MigrationSet(listed=listed) if listed is not None else _assemble(formats.read(entries, format, dialect,
                                                                                          notes))
    result.notes = notes
    result.callback_files = callback_files
    if not result.all and not allow_empty:
        seen = f" ({len(entries)} entries there, none a migration" + (f" for --format {format}" if format != "auto"
                                                                      else "") + ")" if entries else ""
        raise MigrationFileError(
            f"no migrations in {show(str(directory.resolve()))!r}{seen}; mount your migrations folder there (docker "
            "run -v \"$PWD/migrations:/migrations\", a Kubernetes volume or a derived image) or point --dir / "
            "PREMIGRATE_DIR at it; pass --allow-empty (PREMIGRATE_ALLOW_EMPTY=1) if the project has none yet",
            file=str(directory))
    return result


# Every callback event id (Flyway's and premigrate's) starts with one of these, in lower case as Flyway matches it:
# other names never load model/callbacks.py.
_CALLBACK_INITIALS = ("a", "b", "c")


def _is_callback(name: str) -> bool:
    from premigrate.model import callbacks

    return callbacks.parse_name(name) is not None


def parse_name(name: str) -> tuple[str, Version | None, str, str]:
    """(pattern, version, description, direction) for a file name, or MigrationFileError."""
    for pattern_name, pattern in PATTERNS:
        match = pattern.match(name)
        if not match:
            continue
        groups = match.groupdict()
        description = groups.get("description") or ""
        if pattern_name == "flyway-repeatable":
            return pattern_name, None, description, "repeatable"
        if pattern_name == "laravel":
            version = Version.parse(groups["y"] + groups["mo"] + groups["d"] + groups["t"])
            version = Version(version.parts, name[:17])
        else:
            version = Version.parse(groups["version"])
        if pattern_name == "flyway-undo":
            direction = "down"
        else:
            direction = (groups.get("direction") or "up").lower()
        return pattern_name, version, description, direction
    raise MigrationFileError(
        f"{name}: the name matches no migration pattern; use e.g. 001_create_users.sql, "
        "20260113155307_create_users.sql, V1__create_users.sql or 001_x.up.sql/001_x.down.sql",
        file=name,
    )


def directives_into(part: Part) -> None:
    """Apply the `-- premigrate:` directives of the part's text (and of its down section) to it."""
    name = part.script
    if part.direction in ("up", "repeatable"):
        found = _directives(name, part.text)
        part.no_transaction = part.no_transaction or "no-transaction" in found
        part.placeholders = "placeholders" in found
        part.draft = "draft" in found
        part.settings = tuple((SETTING_DIRECTIVES[d], v) for d, v in found.items() if d in SETTING_DIRECTIVES)
        if part.down_text is not None and part.down_text is not part.text:
            part.down_no_transaction = part.down_no_transaction or "no-transaction" in _directives(name, part.down_text)
    else:
        part.no_transaction = part.no_transaction or "no-transaction" in _directives(name, part.text)


def split_sections(part: Part) -> None:
    """dbmate-style `-- migrate:up` / `-- migrate:down` sections; a file without them is all up."""
    markers = list(_SECTION.finditer(part.text))
    if not markers:
        return
    ups = [m for m in markers if m.group("part") == "up"]
    downs = [m for m in markers if m.group("part") == "down"]
    if len(ups) != 1 or len(downs) > 1:
        raise MigrationFileError(
            f"{part.script}: needs exactly one '-- migrate:up' and at most one '-- migrate:down' line", file=part.script
        )
    up = ups[0]
    down = downs[0] if downs else None
    if down is not None and down.start() < up.start():
        raise MigrationFileError(f"{part.script}: '-- migrate:down' comes before '-- migrate:up'", file=part.script)
    before = part.text[: up.start()]
    if _strip_comments_and_space(before):
        line = part.text.count("\n", 0, up.start()) + 1
        raise MigrationFileError(
            f"{part.script}: SQL before the '-- migrate:up' line (line {line}) would never run; move it into a section",
            file=part.script,
        )
    refuse_directive_above(part.script, before, "-- migrate:up", "-- migrate:down")
    options = up.group("options").split()
    for option in options:
        # Spelt exactly, as dbmate matches it (formats/dbmate.py): `transaction:FALSE` is refused, not guessed at.
        if option == "transaction:false":
            part.no_transaction = True
        elif option != "transaction:true":
            raise MigrationFileError(f"{part.script}: unknown '-- migrate:up' option {option!r}", file=part.script)
    up_start = up.end() + 1
    up_end = down.start() if down else len(part.text)
    part.first_line = part.text.count("\n", 0, up_start) + 1
    if down is not None:
        down_start = down.end() + 1
        part.down_text = part.text[down_start:]
        part.down_first_line = part.text.count("\n", 0, down_start) + 1
    part.text = part.text[up_start:up_end]


def refuse_directive_above(script: str, header: str, up_marker: str, down_marker: str) -> None:
    """A `-- premigrate:` directive in the lines above a file's up section (`header`): refused. Each section's
    directives are its own (the down part runs with its own transaction mode), so one above both belongs to neither,
    and ignoring it would run the file otherwise than its author wrote (placeholders left as `${NAME}`)."""
    found = _DIRECTIVE.search(header) if _DIRECTIVE_MARK in header else None
    if found is not None:
        line = header.count("\n", 0, found.start()) + 1
        raise MigrationFileError(
            f"{script}: line {line}: '{found.group(0).strip()}' is above the '{up_marker}' line, where it applies to "
            f"no section; move it below '{up_marker}' (and repeat it below '{down_marker}' if the down part needs it "
            "too)", file=script)


def _directives(name: str, text: str) -> dict[str, Any]:
    """The file's directives and their arguments. An unknown or malformed one is an error: a typo must not change
    how a file runs."""
    found: dict[str, Any] = {}
    for match in _DIRECTIVE.finditer(text) if _DIRECTIVE_MARK in text else ():
        directive = match.group("name").lower()
        arg = match.group("arg").strip()
        if directive not in KNOWN_DIRECTIVES:
            raise MigrationFileError(
                f"{name}: unknown directive '-- premigrate:{match.group('name')}{match.group('arg').rstrip()}'; "
                f"known: {', '.join('-- premigrate:' + d for d in KNOWN_DIRECTIVES)}",
                file=name,
            )
        takes = KNOWN_DIRECTIVES[directive]
        if takes == "rules" and not _RULE_LIST.match(arg):
            raise MigrationFileError(f"{name}: '-- premigrate:{directive}' needs rule ids, e.g. "
                                     f"'-- premigrate:{directive} drop-column'", file=name)
        if takes is None and arg:
            raise MigrationFileError(f"{name}: '-- premigrate:{directive}' takes no argument (got {arg!r})", file=name)
        value: Any = arg or True
        if takes == "duration":
            try:
                value = parse_duration(arg) or 0.0  # 0 in a file means "no limit", stated explicitly
            except ValueError as exc:
                raise MigrationFileError(f"{name}: '-- premigrate:{directive}': {exc}", file=name) from None
        elif takes == "count":
            if not (arg.isascii() and arg.isdigit()):
                raise MigrationFileError(f"{name}: '-- premigrate:{directive}' needs a whole number (0 or more), "
                                         f"e.g. '-- premigrate:{directive} 3' (got {arg!r})", file=name)
            value = int(arg)
        if directive in SETTING_DIRECTIVES and directive in found:
            raise MigrationFileError(f"{name}: '-- premigrate:{directive}' is given twice", file=name)
        found[directive] = value
    return found


def _assemble(parts: list[Part]) -> MigrationSet:
    ups: dict[Version, Part] = {}
    downs: dict[Version, Part] = {}
    repeatables: dict[str, Part] = {}
    for part in parts:
        if part.direction == "repeatable":
            key = part.description.lower()
            if key in repeatables:
                raise MigrationFileError(
                    f"{part.script} and {repeatables[key].script} are repeatables with the same description",
                    file=part.script,
                )
            repeatables[key] = part
            continue
        assert part.version is not None
        table = ups if part.direction == "up" else downs
        if part.version in table:
            other = table[part.version]
            raise MigrationFileError(
                f"{other.script} and {part.script} both carry version {part.version}; "
                "versions compare as numbers (001, 1 and 1.0 are the same), so renumber one",
                file=part.script,
            )
        table[part.version] = part
    for version, down_part in downs.items():
        up = ups.get(version)
        if up is None:
            raise MigrationFileError(f"{down_part.script}: a down part for version {version} with no up part",
                                     file=down_part.script)
        if up.down_text is not None:
            raise MigrationFileError(
                f"{up.script} has a '-- migrate:down' section and {down_part.script} is another down part for it",
                file=down_part.script,
            )
    result = MigrationSet()
    for version in sorted(ups, key=lambda v: key_of(v, ups[v].order)):
        up = ups[version]
        down = downs.get(version)
        result.versioned.append(
            Migration(
                kind="versioned",
                version=version,
                description=up.description,
                script=up.script,
                up_sql=up.text,
                up_first_line=up.first_line,
                checksum=checksum(up.text),
                no_transaction=up.no_transaction,
                placeholders=up.placeholders,
                settings=up.settings,
                down_sql=down.text if down else up.down_text,
                down_script=down.script if down else (up.script if up.down_text is not None else None),
                down_first_line=down.first_line if down else up.down_first_line,
                down_no_transaction=down.no_transaction if down else up.down_no_transaction,
                format=up.format,
                draft=up.draft,
                envsub=up.envsub,
                order=up.order,
            )
        )
    for key in sorted(repeatables):
        part = repeatables[key]
        result.repeatable.append(
            Migration(
                kind="repeatable",
                version=None,
                description=part.description,
                script=part.script,
                up_sql=part.text,
                up_first_line=1,
                checksum=checksum(part.text),
                no_transaction=part.no_transaction,
                placeholders=part.placeholders,
                settings=part.settings,
                format=part.format,
                draft=part.draft,
            )
        )
    return result
