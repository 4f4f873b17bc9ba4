"""goose SQL migrations: `<version>_<description>.sql` with `-- +goose Up` / `-- +goose Down` sections.

Follows pressly/goose internal/sqlparser/parser.go (ParseSQLMigration, extractAnnotation, endsWithSemicolon) and
migration.go (NumericComponent), as of commit 520411a16119bd3b332613d1ff8312c4cc249673:

- An annotation is a line that, trimmed, starts with `--` and contains `+goose`. It must not start with white space
  (goose: "contains leading whitespace"); `--` is removed everywhere, then the first `+goose`, and the rest, trimmed,
  is compared case-insensitively with Up, Down, StatementBegin, StatementEnd, NO TRANSACTION, ENVSUB ON, ENVSUB OFF.
  Anything else is an error ("unknown annotation"), as in goose.
- The file must start (blank lines aside) with `-- +goose Up`; one Up, at most one Down after it.
- Outside StatementBegin/End a statement ends on a line whose last word before a `--` word ends with `;` (goose's
  line-based rule: a `;` inside a string at the end of a line ends the statement there too, exactly as in goose).
  Between StatementBegin and StatementEnd nothing is split. Comment and blank lines before a statement are dropped;
  inside one they are kept. Text left without its `;` at the end of a section is an error ("missing semicolon?"),
  reported for the direction being run, as goose's `up` and `down` commands parse only their own direction.
- `-- +goose NO TRANSACTION` anywhere makes the whole file (both directions) run outside a transaction.
- `-- +goose ENVSUB ON` / `OFF` switch substitution of the process environment on and off for the lines that follow,
  across the Up/Down boundary (the switch is a state of the whole file). goose substitutes each SQL line it keeps
  (not the comments and blank lines it drops before a statement, nor annotation lines) before its `;` rule looks at
  the line, with mfridman/interpolate (envsub.py). A substitution error fails the file in either direction, as goose
  interpolates the lines of both directions while it parses one. premigrate substitutes when a step is resolved
  (model/planner.py Policy.resolve, like its placeholders), so the checksum stays that of the file's text.
- Version: the digits before the first `_` of the name, a positive int64 (goose: "migration IDs must be greater
  than zero"). A `.go` migration beside the SQL files cannot run here and is refused by the folder reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from premigrate.model.formats.markers import GOOSE_MARKER, GOOSE_NAME
from premigrate.model.sql import SplitError, Statement

if TYPE_CHECKING:
    from premigrate.model.migrations import Migration

UP, DOWN = "up", "down"
_ANNOTATIONS = ("Up", "Down", "StatementBegin", "StatementEnd", "NO TRANSACTION", "ENVSUB ON", "ENVSUB OFF")
_BY_LOWER = {a.lower(): a for a in _ANNOTATIONS}
NAME, MARKER = GOOSE_NAME, GOOSE_MARKER  # formats/markers.py: detection does not load this module


class GooseError(SplitError):
    """What goose itself reports for the file, with the line."""


class EnvsubUnset(GooseError):
    """`${NAME?message}` with NAME unset: the environment, not the file, is wrong."""


@dataclass
class Section:
    """One direction of a goose file: where it starts in the file and its text (annotation lines included)."""

    text: str = ""
    first_line: int = 1
    statements: list[Statement] = field(default_factory=list)
    envsub: bool = False  # ENVSUB ON in effect where the section starts


@dataclass
class GooseFile:
    """A goose SQL file's sections and annotations."""
    up: Section
    down: Section | None
    no_transaction: bool
    envsub: bool = False  # the file turns ENVSUB ON somewhere


def annotation(line: str, number: int) -> str | None:
    """The goose annotation on this line, None for an ordinary line; GooseError for one goose rejects."""
    if "+goose" not in line or not line.strip().startswith("--"):
        return None
    if line.startswith((" ", "\t")):
        raise GooseError(f"annotation {line.strip()!r} has leading white space, which goose rejects", number)
    command = line.replace("--", "").replace("+goose", "", 1)
    if "+goose" in command:
        raise GooseError(f"{line.strip()!r} holds more than one '+goose' annotation", number)
    command = command.strip()
    if not command:
        raise GooseError("empty '-- +goose' annotation", number)
    found = _BY_LOWER.get(command.lower())
    if found is None:
        raise GooseError(f"unknown goose annotation {command!r}; goose knows {', '.join(_ANNOTATIONS)}", number)
    return found


def ends_with_semicolon(line: str) -> bool:
    """goose's endsWithSemicolon: the last white-space separated word before a word starting with `--` ends in `;`."""
    previous = ""
    for word in line.split():
        if word.startswith("--"):
            break
        previous = word
    return previous.endswith(";")


def parse(text: str) -> GooseFile:
    """Validate a whole goose file the way goose does and cut it into its Up and Down sections."""
    lines = text.split("\n")
    up: Section | None = None
    down: Section | None = None
    no_transaction = False
    envsub = used = False
    offset = 0
    up_start = down_start = 0
    for index, line in enumerate(lines):
        number = index + 1
        found = annotation(line, number)
        if found == "Up":
            if up is not None:
                raise GooseError("duplicate '-- +goose Up' annotation", number)
            up = Section(first_line=number + 1, envsub=envsub)
            up_start = offset + len(line) + 1
        elif found == "Down":
            if up is None or down is not None:
                raise GooseError("'-- +goose Down' must follow '-- +goose Up' and appear once", number)
            down = Section(first_line=number + 1, envsub=envsub)
            up.text = text[up_start:offset]
            down_start = offset + len(line) + 1
        elif found == "NO TRANSACTION":
            no_transaction = True
        elif found in ("ENVSUB ON", "ENVSUB OFF"):
            envsub = found == "ENVSUB ON"
            used = used or envsub
        elif found is None and up is None and line.strip() and not line.strip().startswith("--"):
            raise GooseError("goose files must start with '-- +goose Up'", number)
        offset += len(line) + 1
    if up is None:
        raise GooseError("no '-- +goose Up' annotation; goose requires one", 1)
    if down is None:
        up.text = text[up_start:]
    else:
        down.text = text[down_start:]
    up.statements = split(up.text, UP, first_line=up.first_line, envsub=up.envsub)
    if down is not None:
        # goose's `up` parses the up direction only (migration.go run): a Down section whose last statement lacks
        # its ';' fails `goose down`, not `goose up`. Its annotations are checked now, as goose checks them in
        # either direction; the unfinished statement is reported when `down` splits it.
        down.statements = split(down.text, DOWN, first_line=down.first_line, unfinished_ok=True,
                                envsub=down.envsub)
    return GooseFile(up, down, no_transaction, used)


def split(section: str, direction: str, *, first_line: int, unfinished_ok: bool = False,
          envsub: bool = False) -> list[Statement]:
    """goose's statements of one section (the text after its Up or Down line), each with its line in the file."""
    return [statement for statement, _ in split_marked(section, direction, first_line=first_line,
                                                        unfinished_ok=unfinished_ok, envsub=envsub)]


def substitute(line: str, env: Mapping[str, str] | None, number: int) -> str:
    """One line under ENVSUB ON: substituted from `env`, or, without values (loading, lint), only checked for the
    syntax errors interpolate reports whatever the environment."""
    from premigrate.model.formats import envsub

    try:
        if env is None:
            envsub.check(line)
            return line
        return envsub.interpolate(env, line)
    except envsub.EnvsubUnset as exc:
        raise EnvsubUnset(f"variable substitution failed: {exc}", number) from None
    except envsub.EnvsubError as exc:
        raise GooseError(f"variable substitution failed: {exc}", number) from None


def split_marked(section: str, direction: str, *, first_line: int, unfinished_ok: bool = False,
                 envsub: bool = False, env: Mapping[str, str] | None = None) -> list[tuple[Statement, bool]]:
    """Like split, each statement paired with True when it is a StatementBegin/End block (sent as one piece).

    `envsub`: ENVSUB ON is in effect where the section starts; `env`: the values to substitute (None: not known)."""
    statements: list[tuple[Statement, bool]] = []
    buffer: list[str] = []
    buffer_line = 0
    in_block = False
    block_line = 0
    lines = section.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line does not start another one
    for index, line in enumerate(lines):
        number = first_line + index
        found = annotation(line, number)
        if found in ("Up", "Down"):
            raise GooseError(f"unexpected '-- +goose {found}' inside the {direction} section", number)
        if found == "StatementBegin":
            if in_block:
                raise GooseError("'-- +goose StatementBegin' inside another StatementBegin block", number)
            in_block, block_line = True, number
            continue
        if found == "StatementEnd":
            if not in_block:
                raise GooseError("'-- +goose StatementEnd' without '-- +goose StatementBegin'", number)
            in_block = False
            if buffer:
                statements.append((Statement("\n".join(buffer).strip(), buffer_line), True))
            buffer = []
            continue
        if found is not None:  # NO TRANSACTION, ENVSUB ON/OFF: directives, not SQL
            envsub = envsub if found == "NO TRANSACTION" else found == "ENVSUB ON"
            continue
        if not buffer and (line.strip().startswith("--") or not line.strip()):
            continue  # comments and blank lines before a statement are dropped, as goose does
        if not buffer:
            buffer_line = number
        if envsub:
            line = substitute(line, env, number)  # before the `;` rule looks at the line, as in goose
        buffer.append(line)
        if not in_block and ends_with_semicolon(line):
            statements.append((Statement("\n".join(buffer).strip(), buffer_line), False))
            buffer = []
    if in_block:
        raise GooseError("missing '-- +goose StatementEnd' for the StatementBegin", block_line)
    remaining = "\n".join(buffer).strip()
    if remaining and not unfinished_ok:
        raise GooseError(f"unfinished SQL in the {direction} section: missing semicolon?", buffer_line)
    return [(s, block) for s, block in statements if s.text]


def with_environment(migration: Migration, env: Mapping[str, str]) -> Migration:
    """The migration with the environment its ENVSUB sections read; every substituted line of both directions is
    checked now, before anything runs, as goose fails the file on any of them whichever direction it runs."""
    from premigrate.errors import MigrationFileError, UsageError

    assert migration.envsub is not None
    parts = [(migration.up_sql, UP, migration.up_first_line, migration.envsub[0])]
    if migration.down_sql is not None:
        parts.append((migration.down_sql, DOWN, migration.down_first_line, migration.envsub[1]))
    for text, direction, first_line, envsub in parts:
        try:
            split_marked(text, direction, first_line=first_line, envsub=envsub, env=env, unfinished_ok=True)
        except EnvsubUnset as exc:
            raise UsageError(f"{migration.script}: line {exc.line}: {exc}; set it in premigrate's environment (the "
                             "file turns '-- +goose ENVSUB ON')") from None
        except GooseError as exc:
            raise MigrationFileError(f"{migration.script}: line {exc.line}: {exc}", file=migration.script,
                                     line=exc.line) from None
    return replace(migration, environment=env)
