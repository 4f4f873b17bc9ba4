"""popx folders (Ory Kratos, Hydra, Keto): one folder for every database, `<version>_<name>[.<dialect>][.autocommit]
.(up|down).sql`.

Follows ory/x popx (commit 31658d1bca30faf03d254253c57a190e9681b6b1):
- match.go MigrationFileRegexp
  `^(\\d+)_([^.]+)(\\.[a-z0-9]+)?(\\.autocommit)?\\.(up|down)\\.(sql)$`; a dialect pop does not
  support makes popx ignore the file; any other non-matching `.sql` name is an error.
- migration_info.go sortAndFilter: for each version and direction the file for the database's dialect wins over the
  dialect-less one; files for other dialects (`cockroach` included) are skipped. Versions compare as text.
- migration_box.go: every up needs a down of the same version (check); `.autocommit` runs the file outside a
  transaction; a file holding only comments and blank lines is not executed (isMigrationEmpty).
- migration_content.go: popx runs every file through Go's text/template. premigrate does not evaluate templates:
  a file holding `{{` is refused, naming it.
- migration_box.go walks sub-folders too; premigrate refuses a sub-folder instead of guessing what it holds.
"""

from __future__ import annotations

import re

from premigrate.errors import MigrationFileError
from premigrate.model.formats.base import Entry, Part, read_text, show
from premigrate.model.versions import Version

NAME = "popx"
FILE = re.compile(r"(\d+)_([^.]+)(\.[a-z0-9]+)?(\.autocommit)?\.(up|down)\.(sql)\Z")
# pop.CanonicalDialect -> premigrate's dialect (None: a database premigrate does not run, never applicable here)
_DIALECTS: dict[str, str | None] = {
    "postgres": "postgresql", "postgresql": "postgresql", "pg": "postgresql",
    "mysql": "mysql",
    "sqlite": "sqlite", "sqlite3": "sqlite",
    "cockroach": None, "cockroachdb": None, "crdb": None,
}


def is_popx_name(name: str) -> bool:
    """A name only popx writes: a dialect or `.autocommit` between the name and the direction."""
    match = FILE.match(name)
    return bool(match and (match.group(4) or (match.group(3) and match.group(3)[1:] in _DIALECTS)))


class PopxReader:
    name = NAME

    def detect(self, entries: list[Entry]) -> bool:
        return any(not e.is_dir and is_popx_name(e.name) for e in entries)

    def read(self, entries: list[Entry], dialect: str | None, notes: list[str]) -> list[Part]:
        chosen: dict[tuple[str, str], tuple[int, Entry, bool]] = {}  # (version, direction) -> (specificity, ...)
        for entry in entries:
            if entry.is_dir:
                raise MigrationFileError(f"{show(entry.name)}/: a sub-folder in a popx folder (popx would read the "
                                         "files inside it too); move it out", file=entry.name)
            if not entry.name.endswith(".sql"):
                continue
            match = FILE.match(entry.name)
            if match is None:
                raise MigrationFileError(f"{show(entry.name)}: does not match popx's file pattern "
                                         "<version>_<name>[.<dialect>][.autocommit].(up|down).sql (popx refuses "
                                         "it too)", file=entry.name)
            version, _, suffix, autocommit, direction, _ = match.groups()
            target = "all"
            if suffix == ".autocommit":  # popx: the autocommit group matched in the dialect's place
                autocommit, suffix = suffix, None
            if suffix:
                name = suffix[1:]
                if name not in _DIALECTS:
                    notes.append(f"{entry.name}: dialect {name!r} is not one popx supports; ignored, as popx "
                                 "ignores it")
                    continue
                target = _DIALECTS[name] or "cockroach"
            if target != "all" and target != dialect:
                continue
            specificity = 0 if target == "all" else 1
            key = (version, direction)
            previous = chosen.get(key)
            if previous is not None and previous[0] == specificity:
                raise MigrationFileError(f"{entry.name} and {previous[1].name} are both the {direction} migration "
                                         f"of version {version} for this database", file=entry.name)
            if previous is None or specificity > previous[0]:
                chosen[key] = (specificity, entry, bool(autocommit))
        parts: list[Part] = []
        versions = sorted({v for v, _ in chosen})
        for version in versions:
            up = chosen.get((version, "up"))
            down = chosen.get((version, "down"))
            if up is None:
                continue
            if down is None:
                raise MigrationFileError(f"{up[1].name}: migration {version} has no corresponding down migration "
                                         "(popx refuses the folder)", file=up[1].name)
            for (_, entry, autocommit), direction in ((up, "up"), (down, "down")):
                text = read_text(entry.path, entry.name)
                if "{{" in text:
                    raise MigrationFileError(f"{entry.name}: holds a Go template ('{{{{'), which popx evaluates and "
                                             "premigrate does not; it is not run as plain SQL", file=entry.name)
                description = FILE.match(entry.name).group(2)  # type: ignore[union-attr]
                parts.append(Part(Version.parse(version), description, direction, entry.name, text, format=NAME,
                                  no_transaction=autocommit))
        numeric = sorted(versions, key=lambda v: Version.parse(v))
        if numeric != versions:
            raise MigrationFileError("popx orders these versions as text and premigrate as numbers, and the two "
                                     "orders differ; pad the versions to one length", file=parts[0].script)
        from premigrate.model.migrations import directives_into

        for part in parts:
            directives_into(part)
        return parts


READER = PopxReader()
