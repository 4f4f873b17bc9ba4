"""Callback scripts named as Flyway names them: discovery only (pure reading, no database).

A callback is `<event>[__<description>].sql` in the migrations folder (or a --callbacks folder). The rules follow
Flyway's own resolution (flyway/flyway, flyway-core/src/main/java/org/flywaydb/core/internal/callback/
SqlScriptCallbackFactory.java and internal/resource/ResourceNameParser.java, read at c5e20fc):
- the suffix (.sql) is matched without regard to case (ResourceNameParser.stripSuffix upper-cases both sides);
- the event id is matched exactly, case and all (Event.fromId uses String.equals), as the longest known prefix
  (ResourceNameParser sorts prefixes longest first, so `afterMigrateError.sql` is never `afterMigrate` + "Error");
- what follows the event id must be empty or start with the separator `__`; `afterMigrateFoo.sql` is not a valid
  callback name (Flyway: "Invalid repeatable migration / callback name format") and we refuse it rather than guess;
- the description is the text after the first `__`, underscores read as spaces;
- several scripts for one event run in this order: the one without a description first, then by description in
  String.compareTo order (SqlScriptCallback.compareTo), i.e. by UTF-16 code unit;
- two files with the same name without suffix (`afterMigrate.sql` and `afterMigrate.SQL`) are an error.

Flyway fires many more events than premigrate does (beforeValidate, beforeUndo, beforeEachMigrateStatement, ...).
A file named after one of those is recognised and returned in `unsupported`, so the caller can refuse it with a
clear message instead of running nothing silently (or mistaking it for a migration).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SEPARATOR = "__"
SUFFIX = ".sql"

# The events premigrate runs, in the order they happen in one `up` (or `down`).
EVENTS: tuple[str, ...] = (
    "beforeMigrate",
    "beforeEachMigrate",
    "afterEachMigrate",
    "afterEachMigrateError",
    "afterMigrate",
    "afterMigrateError",
    "beforeDown",
    "afterDown",
)

# Every other event id Flyway knows (api/callback/Event.java at c5e20fc): names we recognise but do not run.
FLYWAY_ONLY_EVENTS: frozenset[str] = frozenset({
    "beforeClean", "afterClean", "afterCleanError",
    "beforeEachMigrateStatement", "afterEachMigrateStatement", "afterEachMigrateStatementError",
    "beforeRepeatables", "afterVersioned", "afterMigrateApplied",
    "beforeUndo", "beforeEachUndo", "beforeEachUndoStatement", "afterEachUndoStatement",
    "afterEachUndoStatementError", "afterEachUndo", "afterEachUndoError", "afterUndo", "afterUndoError",
    "beforeValidate", "afterValidate", "afterValidateError",
    "beforeBaseline", "afterBaseline", "afterBaselineError",
    "beforeRepair", "afterRepair", "afterRepairError",
    "beforeInfo", "afterInfo", "afterInfoError",
    "afterMigrateOperationFinish", "afterInfoOperationFinish",
    "createSchema", "beforeCreateSchema", "beforeConnect", "afterConnect",
})

# Longest first, as Flyway tries them.
_PREFIXES = sorted(set(EVENTS) | FLYWAY_ONLY_EVENTS, key=len, reverse=True)


@dataclass(frozen=True)
class Callback:
    """A callback file: the event it runs at, and its path."""
    event: str
    description: str  # "" when the file has no __description
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def sort_key(self) -> tuple[int, int, list[int]]:
        # Java's String.compareTo compares UTF-16 code units; Python compares code points. They differ only
        # for characters outside the BMP, so compare the UTF-16 units.
        units = self.description.encode("utf-16-be")
        return (EVENTS.index(self.event), 0 if not self.description else 1,
                [int.from_bytes(units[i:i + 2], "big") for i in range(0, len(units), 2)])


@dataclass(frozen=True)
class Callbacks:
    """What a folder holds: the callbacks premigrate runs, by event in run order, and the names it refuses."""

    by_event: dict[str, tuple[Callback, ...]] = field(default_factory=dict)
    unsupported: tuple[Path, ...] = ()  # Flyway callbacks for events premigrate never fires
    invalid: tuple[tuple[Path, str], ...] = ()  # (file, why) for names that start like a callback but are not one
    # Other *.sql files: in the migrations folder they are migrations (the loader judges them); in a --callbacks
    # folder, which holds nothing but callbacks, merge() refuses them.
    others: tuple[Path, ...] = ()
    folder: Path | None = None  # where they were found

    def for_event(self, event: str) -> tuple[Callback, ...]:
        if event not in EVENTS:
            raise ValueError(f"unknown callback event {event!r}")
        return self.by_event.get(event, ())

    @property
    def files(self) -> frozenset[str]:
        """Every file name the migration loader must leave alone (callbacks, and the refused ones it reports)."""
        names = {c.name for group in self.by_event.values() for c in group}
        names.update(p.name for p in self.unsupported)
        names.update(p.name for p, _ in self.invalid)
        return frozenset(names)

    def __bool__(self) -> bool:
        return bool(self.by_event)


def parse_name(filename: str) -> tuple[str, str] | str | None:
    """(event, description) for a callback name; None when the name is not callback-shaped at all; a message
    (str) when it starts with an event id but is not a valid callback name."""
    if not filename.upper().endswith(SUFFIX.upper()) or filename.startswith("."):
        return None
    stem = filename[: -len(SUFFIX)]
    for event in _PREFIXES:
        if stem.startswith(event):
            rest = stem[len(event):]
            if rest == "":
                return event, ""
            if rest.startswith(SEPARATOR):
                return event, rest[len(SEPARATOR):].replace("_", " ")
            return (f"{filename}: starts with the callback event {event!r} but is not a callback name; "
                    f"name it {event}{SUFFIX} or {event}{SEPARATOR}<description>{SUFFIX}")
    return None


def discover(folder: Path) -> Callbacks:
    """Callback files directly in `folder` (migrations are read from one folder level too)."""
    found: dict[str, list[Callback]] = {}
    unsupported: list[Path] = []
    invalid: list[tuple[Path, str]] = []
    others: list[Path] = []
    seen: dict[str, Path] = {}
    try:
        entries = sorted(os.listdir(folder))
    except FileNotFoundError:
        return Callbacks()
    for filename in entries:
        path = folder / filename
        parsed = parse_name(filename)
        if not path.is_file():
            continue
        if parsed is None:
            if filename.upper().endswith(SUFFIX.upper()) and not filename.startswith("."):
                others.append(path)
            continue
        if isinstance(parsed, str):
            invalid.append((path, parsed))
            continue
        event, description = parsed
        stem = filename[: -len(SUFFIX)]
        if stem in seen:
            why = (f"{filename}: more than one callback script called {stem} ({seen[stem].name} and {filename}); "
                   "keep one")
            invalid.append((path, why))
            continue
        seen[stem] = path
        if event in FLYWAY_ONLY_EVENTS:
            unsupported.append(path)
            continue
        found.setdefault(event, []).append(Callback(event, description, path))
    by_event = {event: tuple(sorted(group, key=Callback.sort_key)) for event, group in found.items()}
    return Callbacks(by_event=by_event, unsupported=tuple(unsupported), invalid=tuple(invalid),
                     others=tuple(others), folder=folder)


def not_a_callback(path: Path) -> str:
    """Why a *.sql file in a --callbacks folder is refused: nothing there is a migration, so a file that is not a
    callback name would run nowhere, and a misspelt callback (AfterMigrate.sql, after_migrate.sql) must not be
    skipped in silence."""
    stem = path.name[: -len(SUFFIX)]
    head, sep, tail = stem.partition(SEPARATOR)
    folded = {event.lower(): event for event in EVENTS}
    meant = folded.get(head.replace("_", "").replace("-", "").lower())
    hint = f" (did you mean {meant}{sep}{tail}{SUFFIX}?)" if meant else ""
    return (f"{path.name} in the callbacks folder {path.parent}: not a callback name{hint}; a callback is named "
            f"<event>{SUFFIX} or <event>{SEPARATOR}<description>{SUFFIX}, the event spelt exactly, case included, "
            f"as one of {', '.join(EVENTS)}; rename the file or move it out of the folder")


def _same_folder(a: Path | None, b: Path | None) -> bool:
    try:
        return a is not None and b is not None and os.path.samefile(a, b)
    except OSError:
        return False


def merge(first: Callbacks, second: Callbacks | None) -> Callbacks:
    """The callbacks of two folders (the migrations folder and --callbacks DIR), each event's scripts in run order.
    The second folder holds callbacks only: its other *.sql files are refused (not_a_callback)."""
    if second is None or _same_folder(first.folder, second.folder):
        return first  # --callbacks naming the migrations folder itself: its scripts once, its migrations left alone
    events = set(first.by_event) | set(second.by_event)
    by_event = {event: tuple(sorted(first.by_event.get(event, ()) + second.by_event.get(event, ()),
                                    key=Callback.sort_key)) for event in events}
    return Callbacks(by_event=by_event, unsupported=first.unsupported + second.unsupported,
                     invalid=first.invalid + second.invalid + tuple((p, not_a_callback(p)) for p in second.others),
                     others=first.others, folder=first.folder)
