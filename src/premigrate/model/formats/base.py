"""What every folder reader shares: the folder's entries, one parsed part of a migration, safe names in messages."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from premigrate.errors import MigrationFileError
from premigrate.model.versions import Version
from premigrate.lazy_re import LazyPattern

MAX_FILE_BYTES = 64 * 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def show(name: str) -> str:
    """A name as it may appear in a message or a table: control characters escaped, never raw."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}", name)


@dataclass(frozen=True)
class Entry:
    """One entry of the migrations folder: a regular file or a folder (anything else is refused while scanning)."""

    name: str
    path: Path
    is_dir: bool


@dataclass
class Part:
    """One migration part read from a file of some tool's format: up, down or repeatable."""
    version: Version | None
    description: str
    direction: str  # up | down | repeatable
    script: str
    text: str
    format: str = "plain"
    first_line: int = 1
    no_transaction: bool = False
    placeholders: bool = False
    draft: bool = False
    settings: tuple[tuple[str, float | int], ...] = ()
    down_text: str | None = None
    down_first_line: int = 1
    down_no_transaction: bool = False
    envsub: tuple[bool, bool] | None = None  # goose ENVSUB ON: (on where the up part starts, where the down starts)
    order: str | None = None  # diesel's version string, dbmate's file name: the folder's text order (model/ordering.py)


class FolderReader(Protocol):
    """One tool's folder layout. `detect` looks at names (and at most the first lines) only; `read` applies the
    tool's own rules and returns the parts premigrate runs, plus notes on what the tool itself would ignore."""

    name: str

    def detect(self, entries: list[Entry]) -> bool: ...

    def read(self, entries: list[Entry], dialect: str | None, notes: list[str]) -> list[Part]: ...


def describe_os_error(exc: OSError) -> str:
    return exc.strerror.lower() if exc.strerror else type(exc).__name__


def scan(directory: Path, prefix: str = "", *, option: str = "--dir") -> list[Entry]:
    """The folder's entries, sorted by name. Hidden names are skipped; a name with control characters, an unreadable
    entry, or a `*.sql` entry that is not a regular file is refused here, before anything connects. `prefix` (a
    sub-folder's path, `sub/`) is put before the names in messages. `option`: how messages name the option that
    gave the folder (Config.named: PREMIGRATE_DIR when the environment set it; the model knows no Config)."""
    from premigrate.errors import UsageError

    try:
        raw = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        raise UsageError(f"migrations folder {show(str(directory))!r} does not exist; create it or point {option} "
                         "at it") from None
    except NotADirectoryError:
        raise UsageError(f"{option} {show(str(directory))!r} is a file, not a folder") from None
    except PermissionError:
        raise UsageError(f"migrations folder {show(str(directory))!r} is not readable (permission denied)") from None
    entries: list[Entry] = []
    problems: list[str] = []
    for item in raw:
        name = item.name
        label = prefix + name
        if name.startswith("."):
            continue
        if _CONTROL.search(name):
            problems.append(f"'{show(label)}': the name holds a control character (newline, tab, ...); rename it")
            continue
        path = directory / name
        try:
            # The entry's own type where the folder listing gave it (no call per file); followed through a link,
            # as os.stat follows it: a link to a file is that file.
            is_dir = item.is_dir()
            mode = stat.S_IFDIR if is_dir else stat.S_IFREG if item.is_file() else os.stat(path).st_mode
        except OSError as exc:
            problems.append(f"{label}: cannot read it ({describe_os_error(exc)})")
            continue
        is_sql = name.lower().endswith(".sql")
        if stat.S_ISDIR(mode):
            if is_sql:
                problems.append(f"{label}: is a folder (or a link to one), not a migration file; a migration is a "
                                "regular file: move the folder out or rename it")
                continue
            entries.append(Entry(name, path, True))
        elif stat.S_ISREG(mode):
            entries.append(Entry(name, path, False))
        elif is_sql:
            problems.append(f"{label}: not a regular file (a FIFO, socket or device); a migration is a regular file")
    if problems:
        raise MigrationFileError("migrations folder refused: " + "; ".join(problems), file=problems[0].split(":")[0])
    return entries


def walk(entries: list[Entry], prefix: str = "") -> list[Entry]:
    """The files of `entries` and of every sub-folder below them, named by their path from the folder (`sub/V2__x.sql`,
    `/` between the parts), in Go's fs.WalkDir order: each folder's entries by name, a sub-folder's files where the
    sub-folder's name falls (the order Atlas's FlywayDir walks in). Hidden names are skipped, as Atlas and Flyway skip
    hidden folders; each sub-folder is scanned with scan's refusals. A link to a folder is refused: Go's walk does not
    follow it and Flyway's scanner does, and a link back up would never end."""
    files: list[Entry] = []
    for entry in entries:
        name = f"{prefix}{entry.name}"
        if not entry.is_dir:
            files.append(Entry(name, entry.path, False))
        elif entry.path.is_symlink():
            raise MigrationFileError(f"{show(name)}/: a link to a folder; Atlas's walk of a Flyway folder does not "
                                     "follow it and Flyway does, so premigrate refuses it: move the folder in its "
                                     "place", file=name)
        else:
            files.extend(walk(scan(entry.path, f"{show(name)}/"), f"{name}/"))
    return files


def read_text(path: Path, name: str) -> str:
    """A migration file's text: UTF-8, no NUL byte, at most 64 MiB, BOM dropped, CRLF read as LF."""
    try:
        # One open and the size of what was opened (a folder of 1,000 files is read on every start): no second
        # lookup of the path, and a file over the limit is refused before it is read.
        with open(path, "rb", buffering=0) as file:
            size = os.fstat(file.fileno()).st_size
            if size > MAX_FILE_BYTES:
                raise MigrationFileError(
                    f"{name}: {size} bytes is over the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit for a migration "
                    "file", file=name)
            data = file.readall()  # a file that grew past the limit since is refused below
    except OSError as exc:
        raise MigrationFileError(f"{name}: cannot read it ({describe_os_error(exc)})", file=name) from None
    if len(data) > MAX_FILE_BYTES:
        raise MigrationFileError(f"{name}: over the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit for a migration file",
                                 file=name)
    nul = data.find(b"\x00")
    if nul >= 0:
        raise MigrationFileError(f"{name}: contains a NUL byte at offset {nul}; it is not a text file", file=name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise MigrationFileError(
            f"{name}: invalid UTF-8 at byte {exc.start} (line {line}); save the file as UTF-8", file=name) from None
    # A checkout on Windows (CRLF, maybe a BOM) must not look like drift.
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


# Markers of tools whose rules premigrate does not apply: a file carrying one is refused, never run as plain SQL.
# Each with a literal its pattern cannot match without, so that the common file, which holds none, costs a substring
# test instead of a regex scan (and a no-op run never compiles them: premigrate/lazy_re.py).
UNSUPPORTED_MARKERS: tuple[tuple[str, str, LazyPattern], ...] = (
    ("Liquibase ('--liquibase formatted sql')", "--",
     LazyPattern(r"\A\s*--\s*liquibase\s+formatted\s+sql", re.IGNORECASE)),
    ("Drizzle ('--> statement-breakpoint')", "statement-breakpoint", LazyPattern(r"-->\s*statement-breakpoint")),
    # Only the directives that change how Atlas runs a file: `atlas:nolint` (lint) and `atlas:sum` (the hash) are
    # comments to every runner, Atlas's own included (Atlas writes them into files of its other directory formats).
    ("Atlas ('-- atlas:' directive)", "atlas:",
     LazyPattern(r"^--\s*atlas:(?:txmode|delimiter|txtar)\b", re.MULTILINE)),
)


def unsupported_marker(text: str, *, but: str | None = None) -> str | None:
    """The tool whose markers the text carries (other than `but`'s own), or None."""
    for tool, hint, pattern in UNSUPPORTED_MARKERS:
        if but is not None and tool.lower().startswith(but):
            continue
        if hint in text and pattern.search(text):
            return tool
    return None
