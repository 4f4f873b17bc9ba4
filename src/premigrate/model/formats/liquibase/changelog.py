"""Changelogs (one file, a folder with includeAll, a master changelog in XML or YAML) and DATABASECHANGELOG."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from premigrate.model.formats.liquibase.parse import normalize_path, is_formatted_sql, parse_formatted_sql
from premigrate.model.formats.liquibase.patterns import CHECKSUM_VERSION
from premigrate.model.formats.liquibase.values import Changeset, file_error


# -- changelogs: one file, a folder (includeAll), or a master changelog in XML or YAML ----------------------------

MASTER_SUFFIXES = (".xml", ".yaml", ".yml")


def load_changelog(root: Path, changelog: str | None = None, *,
                   parameters: Mapping[str, str] | None = None,
                   read: Callable[[Path], str] | None = None,
                   set_aside: frozenset[str] = frozenset()) -> list[Changeset]:
    """Every changeset, in changelog order. `changelog` (relative to `root`) is a master changelog (XML or YAML) or
    one formatted SQL file; without it the folder is read as `<includeAll path="."/>` would read it. `set_aside`:
    files of the folder that are premigrate's callback scripts (model/callbacks.py), never changelogs."""
    reader = read or (lambda p: p.read_text(encoding="utf-8"))
    loader = _Loader(root, reader, parameters)
    loader.set_aside = set_aside
    if changelog is None:
        loader.include_all(".", root, relative=False, source="(folder)", line=0, options={})
    elif changelog.lower().endswith(MASTER_SUFFIXES):
        loader.master(changelog)
    else:
        loader.include(changelog, source="(command line)", line=0)
    return loader.changesets


class _Loader:
    def __init__(self, root: Path, read: Callable[[Path], str], parameters: Mapping[str, str] | None) -> None:
        self.root = root
        self.read = read
        self.parameters = dict(parameters or {})
        self.changesets: list[Changeset] = []
        self.seen: set[str] = set()
        self.set_aside: frozenset[str] = frozenset()

    def _text(self, relative: str, source: str, line: int) -> str:
        path = self.root / relative
        try:
            return self.read(path)
        except FileNotFoundError:
            raise file_error(source, line, f"{relative}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise file_error(source, line, f"{relative}: cannot read it ({exc})") from None

    def include(self, relative: str, source: str, line: int) -> None:
        # A leading '/' names the search root, not the file system's (Liquibase's AbstractResource strips it).
        relative = normalize_path(relative).lstrip("/")
        self._inside(self.root / relative, relative, source, line)
        if relative in self.seen:
            return  # Liquibase includes a changelog once
        self.seen.add(relative)
        if relative.lower().endswith(MASTER_SUFFIXES):
            self.master(relative)
            return
        if not relative.lower().endswith(".sql"):
            raise file_error(source, line, f"{relative}: only formatted SQL changelogs (.sql) and XML/YAML master "
                                       "changelogs are read")
        text = self._text(relative, source, line)
        if not is_formatted_sql(text):
            raise file_error(relative, 1, "not a Liquibase formatted SQL changelog (its first line is not "
                                      "'--liquibase formatted sql'); plain SQL files are not read as changesets")
        found = parse_formatted_sql(text, relative, order_start=len(self.changesets) + 1,
                                    parameters=self.parameters, earlier=self.changesets)
        identities = {(c.path, c.author, c.id): c for c in self.changesets}
        for changeset in found:
            key = (changeset.path, changeset.author, changeset.id)
            if key in identities:
                first = identities[key]
                raise file_error(relative, changeset.line,
                                 f"changeset {changeset.identity} is declared twice (first in "
                                 f"{first.file} line {first.line})")
            identities[key] = changeset
        self.changesets += found

    def _inside(self, path: Path, named: str, source: str, line: int) -> Path:
        """`path` relative to the changelog folder; a file or folder outside it is refused."""
        try:
            return path.resolve().relative_to(self.root.resolve())
        except ValueError:
            raise file_error(source, line, f"{named!r} points outside the changelog folder") from None

    def include_all(self, path: str, base: Path, *, relative: bool, source: str, line: int,
                    options: Mapping[str, Any]) -> None:
        # Liquibase joins the paths as strings (AbstractResource.resolveSiblingPath: "<folder>/" + path) and then
        # collapses "//", and strips a leading '/' from a path that is not relative: either way a leading '/' stays
        # inside the changelog's folder (relative) or the search root.
        folder = (base if relative else self.root) / path.lstrip("/")
        folder_rel = self._inside(folder, f"includeAll {path}", source, line)
        if not folder.is_dir():
            if options.get("errorIfMissingOrEmpty", True):
                raise file_error(source, line, f"includeAll {path!r}: no such folder")
            return
        min_depth = int(options.get("minDepth", 0))
        max_depth = int(options.get("maxDepth", 2 ** 31 - 1))
        ends_with = str(options.get("endsWithFilter", "") or "")
        found: list[str] = []
        for directory, _dirs, files in os.walk(folder):
            depth = len(Path(directory).relative_to(folder).parts) + 1
            if depth < min_depth or depth > max_depth:
                continue
            for name in files:
                if name.startswith("."):
                    continue
                rel = PurePosixPath(*Path(directory, name).resolve().relative_to(self.root.resolve()).parts)
                text_name = str(rel)
                if (ends_with and not text_name.lower().endswith(ends_with.lower())) or text_name in self.set_aside:
                    continue
                if text_name.lower().endswith((".sql",) + MASTER_SUFFIXES):
                    found.append(text_name)
        if not found and options.get("errorIfMissingOrEmpty", True):
            raise file_error(source, line, f"includeAll {path!r} ({folder_rel}) holds no changelog")
        for name in sorted(found):  # getStandardChangeLogComparator: by path
            self.include(name, source, line)

    def master(self, relative: str) -> None:
        self.seen.add(normalize_path(relative))
        text = self._text(relative, "(changelog)", 0)
        entries = _master_entries(text, relative)
        base = (self.root / relative).parent
        for kind, attrs, line in entries:
            known = {"include": {"file", "relativeToChangelogFile", "errorIfMissing"},
                     "includeAll": {"path", "relativeToChangelogFile", "errorIfMissingOrEmpty", "minDepth",
                                    "maxDepth", "endsWithFilter"}}[kind]
            unknown = sorted(set(attrs) - known)
            if unknown:
                raise file_error(relative, line, f"{kind} attribute {unknown[0]!r} is not supported (supported: "
                                             f"{', '.join(sorted(known))})")
            is_relative = str(attrs.get("relativeToChangelogFile", "false")).lower() == "true"
            if kind == "include":
                target = attrs.get("file")
                if not target:
                    raise file_error(relative, line, "include without a file attribute")
                target = str(target)
                if is_relative:  # as includeAll: string-joined to the changelog's folder
                    inside = self._inside(base / target.lstrip("/"), f"include {target}", relative, line)
                    target = str(PurePosixPath(*inside.parts))
                self.include(target, relative, line)
            else:
                path = attrs.get("path")
                if not path:
                    raise file_error(relative, line, "includeAll without a path attribute")
                options = {k: v for k, v in attrs.items() if k in ("minDepth", "maxDepth", "endsWithFilter")}
                options["errorIfMissingOrEmpty"] = str(attrs.get("errorIfMissingOrEmpty", "true")).lower() == "true"
                self.include_all(str(path), base, relative=is_relative, source=relative, line=line, options=options)


def _master_entries(text: str, file: str) -> list[tuple[str, dict[str, Any], int]]:
    if file.lower().endswith(".xml"):
        return _xml_entries(text, file)
    return _yaml_entries(text, file)


def _xml_entries(text: str, file: str) -> list[tuple[str, dict[str, Any], int]]:
    import xml.etree.ElementTree as ET
    from xml.parsers import expat

    lines: dict[int, int] = {}
    parser = ET.XMLParser()
    try:
        parser.feed(text)
        root = parser.close()
    except ET.ParseError as exc:
        raise file_error(file, exc.position[0], f"not well-formed XML: {exc}") from None
    # ElementTree keeps no line numbers: find each element's line with a second, event-based pass.
    order: list[int] = []
    p = expat.ParserCreate()
    depth = [0]

    def start(_name: str, _attrs: dict[str, str]) -> None:
        depth[0] += 1
        if depth[0] == 2:
            order.append(p.CurrentLineNumber)

    def end(_name: str) -> None:
        depth[0] -= 1

    p.StartElementHandler = start
    p.EndElementHandler = end
    p.Parse(text, True)
    if _local(root.tag) != "databaseChangeLog":
        raise file_error(file, 1, f"the root element is <{_local(root.tag)}>, not <databaseChangeLog>")
    out: list[tuple[str, dict[str, Any], int]] = []
    for index, child in enumerate(list(root)):
        line = order[index] if index < len(order) else 0
        lines[index] = line
        out.append(_entry(_local(child.tag), dict(child.attrib), file, line,
                          [_local(c.tag) for c in child]))
    return out


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _yaml_entries(text: str, file: str) -> list[tuple[str, dict[str, Any], int]]:
    import yaml  # type: ignore[import-untyped,unused-ignore]  # only a YAML master changelog pays for it

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise file_error(file, mark.line + 1 if mark else 1, f"not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict) or "databaseChangeLog" not in data:
        raise file_error(file, 1, "a YAML master changelog holds a top-level 'databaseChangeLog:' list")
    items = data["databaseChangeLog"] or []
    if not isinstance(items, list):
        raise file_error(file, 1, "'databaseChangeLog:' must be a list of include/includeAll entries")
    line_of: list[int] = []
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == "databaseChangeLog" and isinstance(value, yaml.SequenceNode):
                line_of = [item.start_mark.line + 1 for item in value.value]
    out = []
    for index, item in enumerate(items):
        line = line_of[index] if index < len(line_of) else 0
        if not isinstance(item, dict) or len(item) != 1:
            raise file_error(file, line, "each databaseChangeLog entry is one of include:, includeAll:")
        (kind, attrs), = item.items()
        children = list(attrs.get("changes", [])) if kind == "changeSet" and isinstance(attrs, dict) else []
        names = [next(iter(c)) for c in children if isinstance(c, dict) and c]
        out.append(_entry(str(kind), dict(attrs) if isinstance(attrs, dict) else {}, file, line, names))
    return out


def _entry(kind: str, attrs: dict[str, Any], file: str, line: int,
           children: list[str]) -> tuple[str, dict[str, Any], int]:
    if kind in ("include", "includeAll"):
        return kind, attrs, line
    if kind == "changeSet":
        changes = [c for c in children if c not in ("comment", "rollback", "preConditions", "validCheckSum")]
        what = f"change type <{changes[0]}>" if changes else "a changeSet"
        raise file_error(file, line, f"{what} in a master changelog is not supported: only include/includeAll of "
                              "formatted SQL files are read; move the change into a formatted SQL changelog")
    raise file_error(file, line,
                     f"<{kind}> in a master changelog is not supported: only include/includeAll of formatted "
                     "SQL files are read")


# -- DATABASECHANGELOG: what has run --------------------------------------------------------------------------------

RAN_EXECTYPES = ("EXECUTED", "MARK_RAN", "RERAN")  # changelog/ChangeSet.java ExecType with ran = true


@dataclass(frozen=True)
class RanChangeset:
    """One DATABASECHANGELOG row (sqlgenerator/core/CreateDatabaseChangeLogTableGenerator.java)."""
    id: str
    author: str
    filename: str
    exectype: str
    md5sum: str | None
    order: int = 0

    @property
    def key(self) -> tuple[str, str, str]:
        return normalize_path(self.filename), self.author, self.id


@dataclass
class HistoryMatch:
    """The changelog against DATABASECHANGELOG, the way Liquibase's update and validate see them."""
    ran: list[Changeset] = field(default_factory=list)  # in the history with a matching (or accepted) checksum
    pending: list[Changeset] = field(default_factory=list)  # never ran (or ran as SKIPPED/FAILED)
    rerun: list[Changeset] = field(default_factory=list)  # runAlways, or runOnChange with a new checksum
    changed: list[tuple[Changeset, str]] = field(default_factory=list)  # checksum drift: (changeset, stored sum)
    unverifiable: list[tuple[Changeset, str]] = field(default_factory=list)  # stored by a checksum version != 9
    only_in_history: list[RanChangeset] = field(default_factory=list)
    failed: list[RanChangeset] = field(default_factory=list)


def match_history(changesets: Iterable[Changeset], rows: Iterable[RanChangeset]) -> HistoryMatch:
    """Pure: which changesets ran, which are pending, which drifted. Identity is path + author + id; a stored
    checksum of another checksum version (Liquibase before 4.22 wrote "8:...") cannot be recomputed here and is
    reported as unverifiable; a NULL MD5SUM is accepted (Liquibase fills it in on its next update)."""
    result = HistoryMatch()
    latest: dict[tuple[str, str, str], RanChangeset] = {}
    for ran in sorted(rows, key=lambda r: r.order):
        latest[ran.key] = ran
    seen: set[tuple[str, str, str]] = set()
    for changeset in changesets:
        key = (changeset.path, changeset.author, changeset.id)
        row = latest.get(key)
        seen.add(key)
        if row is None or row.exectype.upper() not in RAN_EXECTYPES:
            if row is not None and row.exectype.upper() == "FAILED":
                result.failed.append(row)
            result.pending.append(changeset)
            continue
        stored = (row.md5sum or "").strip()
        if changeset.run_always:
            result.rerun.append(changeset)
        elif not stored or changeset.checksum_is_valid(stored):
            result.ran.append(changeset)
        elif not stored.startswith(f"{CHECKSUM_VERSION}:"):
            result.unverifiable.append((changeset, stored))
        elif changeset.run_on_change:
            result.rerun.append(changeset)
        else:
            result.changed.append((changeset, stored))
    result.only_in_history = [r for k, r in latest.items() if k not in seen and r.exectype.upper() in RAN_EXECTYPES]
    return result
