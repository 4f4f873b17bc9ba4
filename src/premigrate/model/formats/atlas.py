"""Atlas versioned migration folders: `<version>[_<name>].sql` files in name order, guarded by `atlas.sum`.

Follows ariga/atlas sql/migrate/dir.go and lex.go (commit a5e0aecc2bb64143bf522734f8ad88e04885fca6):
- LocalDir.Files: the `*.sql` files of the folder itself (not its sub-folders), sorted by name.
- NewHashFile / HashFile.Sum / MarshalText: one running SHA-256; for each file its name is written, then (unless
  the file's first line is an `atlas:sum ignore` directive) its bytes, and the file's entry is base64 of the running
  digest so far. atlas.sum is `h1:<sum>` then `<name> h1:<hash>` lines; the sum is SHA-256 over every name and hash.
  Validate: a folder with files and no atlas.sum, a first line that does not match the entries, or entries that do
  not match the files, are refused (ErrChecksumNotFound, ErrChecksumMismatch). Nothing runs before this check.
- File directives: the comment lines at the top of a file, separated from the SQL by a blank line
  (LocalFile.comments). `atlas:txmode none` runs the file outside a transaction (`file`, the default, inside one);
  `atlas:sum`, `atlas:nolint` change nothing here. `atlas:checkpoint` (Atlas starts a new database from the last
  checkpoint) and any other directive are refused.
- `-- atlas:delimiter <d>` as the file's first line (Scanner.init): statements end at `<d>` (`\\n`, `\\t`, `\\r`
  unescaped) outside quotes, comments, parentheses and dollar quotes, and the line itself is not SQL.
- Version (LocalFile.Version): the name before the first `_`. premigrate needs it numeric, and the name order must
  equal the number order, else the folder is refused.
"""

from __future__ import annotations

import base64
import hashlib
import re

from premigrate.errors import MigrationFileError
from premigrate.model.formats.base import (
    Entry,
    Part,
    read_text,
    show,
    unsupported_marker,
)
from premigrate.model.sql import Statement
from premigrate.model.versions import Version

NAME = "atlas"
SUM_FILE = "atlas.sum"
# reDirective: `^([ -~]*)atlas:(\w+)(?: +([ -~]*))*`, matched at the very start of the text given.
_DIRECTIVE = re.compile(r"([ -~]*?)atlas:(\w+)(?: +([ -~]*))?")
_FILE_DIRECTIVE = re.compile(r"(?:#|--)\s*atlas:(\w+)(?: +(.*))?\Z")
_DOLLAR = re.compile(r"\$([A-Za-z\u00c8-\u00ff_][\w\u00c8-\u00ff]*)*\$")


def directive(content: str, name: str, prefix: str | None = None) -> str | None:
    """Atlas's directive(): the argument of `atlas:<name>` on the first line of `content`, or None."""
    match = _DIRECTIVE.match(content.split("\n", 1)[0])
    if match is None or match.group(2) != name or (prefix is not None and match.group(1) != prefix):
        return None
    return (match.group(3) or "").strip()


def file_comments(data: str) -> list[str]:
    """LocalFile.comments: the leading comment lines, only when a blank line separates them from the SQL."""
    comments: list[str] = []
    content = data
    while content.startswith(("#", "--")):
        index = content.find("\n")
        if index < 0:
            comments.append(content)
            return comments
        comments.append(content[:index].strip())
        content = content[index + 1:]
    return comments if content.lstrip(" \t").startswith("\n") else []


def hash_file(files: list[tuple[str, bytes]]) -> list[tuple[str, str]]:
    """NewHashFile: (name, base64 of the running SHA-256 after the file) per file not marked `atlas:sum ignore`."""
    running = hashlib.sha256()
    entries: list[tuple[str, str]] = []
    for name, data in files:
        running.update(name.encode())
        if directive(data.decode("utf-8", "replace"), "sum") == "ignore":
            continue
        running.update(data)
        entries.append((name, base64.b64encode(running.copy().digest()).decode()))
    return entries


def total_sum(entries: list[tuple[str, str]]) -> str:
    """HashFile.Sum."""
    digest = hashlib.sha256()
    for name, value in entries:
        digest.update(name.encode())
        digest.update(value.encode())
    return base64.b64encode(digest.digest()).decode()


def parse_sum_file(text: str) -> tuple[str, list[tuple[str, str]]]:
    lines = text.split("\n")
    header = lines[0].removeprefix("h1:")
    entries: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue  # bufio.Scanner yields no token for the final newline
        name, sep, value = line.partition("h1:")
        if not sep:
            raise MigrationFileError(f"{SUM_FILE}: line {line!r} is not '<file> h1:<hash>' (checksum file format "
                                     "invalid)", file=SUM_FILE)
        entries.append((name.strip(), value))
    return header, entries


class AtlasReader:
    name = NAME

    def detect(self, entries: list[Entry]) -> bool:
        return any(e.name == SUM_FILE and not e.is_dir for e in entries)

    def read(self, entries: list[Entry], dialect: str | None, notes: list[str]) -> list[Part]:
        files = sorted((e for e in entries if not e.is_dir and e.name.endswith(".sql")), key=lambda e: e.name.encode())
        for entry in entries:
            if entry.is_dir:
                notes.append(f"{entry.name}/: a sub-folder; ignored, as Atlas reads only the folder's own files")
        raw = [(e.name, e.path.read_bytes()) for e in files]
        other = other_dir_format(raw)  # first: its atlas.sum covers other files (hashed_files)
        if other is not None:
            raise MigrationFileError(f"{other[0]}: written in Atlas's {other[1]} directory format (atlas.sum beside "
                                     f"{other[1]} files); pass --format {other[1]}, or leave --format auto",
                                     file=other[0])
        self.verify(entries, raw)
        parts: list[Part] = []
        from premigrate.model.migrations import directives_into

        for entry in files:
            text = read_text(entry.path, entry.name)
            version_text = entry.name.removesuffix(".sql").split("_", 1)[0]
            if not version_text.isdigit():
                raise MigrationFileError(f"{show(entry.name)}: Atlas version {version_text!r} is not a number; "
                                         "premigrate needs numeric versions", file=entry.name)
            description = entry.name.removesuffix(".sql").split("_", 1)[1] if "_" in entry.name else ""
            part = Part(Version.parse(version_text), description, "up", entry.name, text, format=NAME)
            tool = unsupported_marker(text, but=NAME)
            if tool is not None:
                raise MigrationFileError(f"{entry.name}: carries {tool} markers, whose rules premigrate does not "
                                         "apply", file=entry.name)
            for comment in file_comments(text):
                found = _FILE_DIRECTIVE.match(comment)
                if found is None:
                    continue
                name, value = found.group(1), (found.group(2) or "").strip()
                if name == "txmode":
                    if value not in ("none", "file"):
                        raise MigrationFileError(f"{entry.name}: 'atlas:txmode {value}' is not a file transaction "
                                                 "mode (none or file)", file=entry.name)
                    part.no_transaction = value == "none"
                elif name == "checkpoint":
                    raise MigrationFileError(f"{entry.name}: an Atlas checkpoint file (a new database starts from "
                                             "it and skips the files before it); premigrate does not apply "
                                             "checkpoints", file=entry.name)
                elif name not in ("sum", "nolint", "delimiter"):
                    raise MigrationFileError(f"{entry.name}: Atlas directive 'atlas:{name}' is not one premigrate "
                                             "applies", file=entry.name)
            directives_into(part)
            parts.append(part)
        by_name = [p.version for p in parts]
        if by_name != sorted(v for v in by_name if v is not None):
            raise MigrationFileError("Atlas runs these files in name order and their versions would order them "
                                     "differently (versions of different lengths); rename them so both agree",
                                     file=parts[0].script)
        return parts

    def verify(self, entries: list[Entry], raw: list[tuple[str, bytes]]) -> None:
        sum_entry = next((e for e in entries if e.name == SUM_FILE and not e.is_dir), None)
        if sum_entry is None:
            if raw:
                raise MigrationFileError(f"no {SUM_FILE} beside the Atlas migration files (checksum file not "
                                         "found); run `atlas migrate hash` and commit it", file=SUM_FILE)
            return
        header, listed = parse_sum_file(read_text(sum_entry.path, SUM_FILE))
        if header != total_sum(listed):
            raise MigrationFileError(f"{SUM_FILE}: its first line does not match its entries (checksum mismatch): "
                                     "the file was edited by hand; run `atlas migrate hash`", file=SUM_FILE)
        computed = hash_file(raw)
        if total_sum(computed) == header:
            return
        listed_map, computed_map = dict(listed), dict(computed)
        for name, value in computed:
            if name not in listed_map:
                raise MigrationFileError(f"{name}: not in {SUM_FILE} (checksum mismatch): a file added without "
                                         "`atlas migrate hash`", file=name)
            if listed_map[name] != value:
                raise MigrationFileError(f"{name}: its hash differs from {SUM_FILE} (checksum mismatch): the file, "
                                         "or one before it, changed since `atlas migrate hash`", file=name)
        missing = [name for name, _ in listed if name not in computed_map]
        raise MigrationFileError(f"{', '.join(missing) or SUM_FILE}: listed in {SUM_FILE} but not in the folder "
                                 "(checksum mismatch)", file=SUM_FILE)


def hashed_files(fmt: str, raw: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The files Atlas hashes into atlas.sum for a folder in its `fmt` directory format, in its order (ariga/atlas
    sql/sqltool/tool.go at the commit above; each Dir's Checksum() hashes what its Files() returns):
    - golang-migrate (GolangMigrateDir.Files): the `*.up.sql` files only, by name; the down files are not hashed.
    - flyway (FlywayDir.Files, flywayFiles.add/names): the only format that reads sub-folders: fs.WalkDir walks every
      non-hidden one, and a file's name in atlas.sum is its path from the folder (`v3/V3_1__x.sql`); files whose own
      name ends in `.sql`, is at least four characters long and starts with V, B or R (U undo files are not hashed),
      taken in the walk's order: the latest baseline first, then the versioned files by flywayVersionCompare (dot- or
      underscore-separated numbers), then the repeatable ones.
    - goose, dbmate (LocalDir.Files): every `*.sql` file, by name.
    `raw` holds (name, bytes), a sub-folder's files named by their path. Atlas sorts with Go's sort.Slice, which keeps
    the walk order of equal keys for up to 12 files: this keeps it always (a stable sort)."""
    # The walk visits each folder's entries by name, a sub-folder's files where its name falls: the order of the
    # paths' parts, compared part by part.
    by_name = sorted(raw, key=lambda item: [part.encode() for part in item[0].split("/")])
    if fmt == "golang-migrate":
        return [item for item in by_name if item[0].endswith(".up.sql")]
    if fmt != "flyway":
        return by_name
    baseline: tuple[str, bytes] | None = None
    versioned: list[tuple[str, bytes]] = []
    repeatable: list[tuple[str, bytes]] = []
    for item in by_name:
        base = item[0].rsplit("/", 1)[-1]
        if not base.endswith(".sql") or len(base) < 4 or base[0] not in "VBR":
            continue
        if base[0] == "B":
            if baseline is not None and _flyway_version(item[0]) < _flyway_version(baseline[0]):
                continue
            baseline = item
            # As in flywayFiles.add: a file's path against a version, as strings ("V..." is always the greater).
            versioned = [v for v in versioned if v[0] > _flyway_version(item[0])]
        elif base[0] == "V":
            if baseline is None or _flyway_version(baseline[0]) < _flyway_version(item[0]):
                versioned.append(item)
        else:
            repeatable.append(item)
    versioned.sort(key=lambda item: _flyway_order(_flyway_version(item[0])))
    return ([baseline] if baseline is not None else []) + versioned + repeatable


def _flyway_version(path: str) -> str:
    """flywayVersion: the text of the file's own name between the prefix letter and `__` (none for a repeatable)."""
    name = path.rsplit("/", 1)[-1]
    return "" if name[0] == "R" else name.removesuffix(".sql").split("__", 1)[0][1:]


def _flyway_order(version: str) -> list[int]:
    """flywayVersionCompare's key: the version's `.`/`_`-separated parts as numbers (0 for what is not one)."""
    return [int(part) if part.isdigit() else 0 for part in version.replace("_", ".").split(".")]


def other_dir_format(raw: list[tuple[str, bytes]]) -> tuple[str, str] | None:
    """(file, format) when the folder is in one of Atlas's other directory formats (`atlas migrate --dir-format`
    goose, golang-migrate, flyway, dbmate also write atlas.sum): those files follow that tool's rules."""
    from premigrate.model.formats.files import MARKERS

    for name, data in raw:
        text = data.decode("utf-8", "replace")
        for fmt, marker in MARKERS.items():
            if marker.search(text):
                return name, fmt
        if name.endswith((".up.sql", ".down.sql")):
            return name, "golang-migrate"
        if re.match(r"[VUR]\d*_", name.rsplit("/", 1)[-1]):
            return name, "flyway"
    return None


def split(text: str, dialect: str, *, first_line: int) -> list[Statement] | None:
    """Statements of a file whose first line is `-- atlas:delimiter <d>`; None when it has no such line."""
    value = directive(text, "delimiter", "-- ")
    if value is None:
        return None
    delimiter = value.replace("\\n", "\n").replace("\\r", "\r").replace("\\t", "\t")
    if not delimiter:
        raise MigrationFileError("empty atlas:delimiter")
    newline = text.find("\n")
    body_start = newline + 1 if newline >= 0 else len(text)
    statements: list[Statement] = []
    i = start = body_start
    depth = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if depth == 0 and text.startswith(delimiter, i):
            _emit(text, start, i, first_line, statements)
            i = start = i + len(delimiter)
            continue
        if ch in "'\"`":
            close = i + 1
            while close < n and text[close] != ch:
                close += 2 if text[close] == "\\" and dialect == "mysql" else 1
            i = close + 1
        elif ch == "(":
            depth += 1
            i += 1
        elif ch == ")":
            depth = max(depth - 1, 0)
            i += 1
        elif text.startswith("--", i) or (ch == "#" and dialect == "mysql"):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif ch == "$" and (match := _DOLLAR.match(text, i)):
            end = text.find(match.group(0), match.end())
            i = n if end < 0 else end + len(match.group(0))
        else:
            i += 1
    _emit(text, start, n, first_line, statements)
    return statements


def _emit(text: str, start: int, end: int, first_line: int, statements: list[Statement]) -> None:
    chunk = text[start:end]
    stripped = chunk.strip()
    if stripped:
        offset = start + (len(chunk) - len(chunk.lstrip()))
        statements.append(Statement(stripped, first_line + text.count("\n", 0, offset)))


READER = AtlasReader()
