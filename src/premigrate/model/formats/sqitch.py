"""sqitch projects: `sqitch.plan` read the way App::Sqitch reads it, and the deploy/revert/verify scripts it names.

Sources followed (sqitchers/sqitch):
- lib/App/Sqitch/Plan.pm `_parse`: pragmas until the first blank line (`%project`, `%syntax-version`, `%uri`, ...),
  then change lines `[+|-]name [deps] YYYY-MM-DDTHH:MM:SSZ planner <email> # note` and tag lines `@tag ...`, the
  `$name_re` name grammar, the error messages and their checks (duplicates since the last tag, reserved names,
  SHA1-like names, tags without a preceding change or with dependencies), reworked changes (a name planned again after
  a tag), and `check_changes`: every requirement of the project must be planned earlier (which also rules out cycles).
- lib/App/Sqitch/Plan/Depend.pm `parse`: `[!][project:]change[@tag]`, `[!][project:]@tag`, `[project:]<sha1>`.
- lib/App/Sqitch/Plan/Change.pm: `path_segments` (a reworked change's scripts are `name@tag.sql`, the first rework
  tag whose file exists), `info` and `id` (the change id sqitch stores in sqitch.changes.change_id).

Pure: the plan is parsed from text; `load_project` reads the plan and the scripts from a folder.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from premigrate.errors import MigrationFileError
from premigrate.model.client_commands import meta_command_line
from premigrate.model.formats.sqitch_deployed import DeployedChange as DeployedChange
from premigrate.model.formats.sqitch_deployed import DeployedMatch as DeployedMatch
from premigrate.model.formats.sqitch_deployed import match_deployed as match_deployed

SYNTAX_VERSION = "1.0.0"
_PUNCT = r"""\-!"#$%&'()*+,./:;<=>?@\[\\\]^`{|}~"""
NAME_RE = (rf"(?![{_PUNCT}])(?:(?![~/=%^\[\]]\d+(?:$|[ \t]))[^ \t:@#\\])+(?<![{_PUNCT}])\b")
_NAME = re.compile(rf"\A{NAME_RE}\Z")
_BLANK_OR_NOTE = re.compile(r"\A(?P<lspace>[ \t]*)(?:#[ \t]*(?P<note>.+)|$)")
_INLINE_NOTE = re.compile(r"(?P<rspace>[ \t]*)(?:[#][ \t]*(?P<note>.*))?$")
_PRAGMA = re.compile(rf"""\A(?P<lspace>[ \t]*)?[%](?P<hspace>[ \t]*)?
    (?P<name>[^{_PUNCT}](?:[^ \t=]*?[^{_PUNCT} \t])?)
    (?:(?P<lopspace>[ \t]*)(?P<operator>=)(?P<ropspace>[ \t]*)(?P<value>.+))?\Z""", re.VERBOSE)
_TS = r"(?P<yr>\d{4})-(?P<mo>\d{2})-(?P<dy>\d{2})T(?P<hr>\d{2}):(?P<mi>\d{2}):(?P<sc>\d{2})Z"
_TS_RE = re.compile(_TS)
_LINE = re.compile(rf"""^(?P<lspace>[ \t]*)?
    (?:[@]|(?P<lopspace>[ \t]*)(?P<operator>[+-])(?P<ropspace>[ \t]*))?
    (?P<name>{NAME_RE})(?P<pspace>[ \t]+)?
    (?:[\[](?P<dependencies>[^\]]+)[\]][ \t]*)?
    (?:{_TS}[ \t]*)?
    (?:(?P<planner_name>[^<]+)[ \t]+<(?P<planner_email>[^>]+)>)?
    $""", re.VERBOSE)
_DEPEND = re.compile(rf"""\A(?P<conflicts>!?)(?:(?P<project>{NAME_RE})[:])?
    (?:(?P<id>[0-9a-f]{{40}})
      |(?P<change>{NAME_RE})(?:[@](?P<tag>{NAME_RE}))?
      |(?:[@](?P<tag2>{NAME_RE}))?)\Z""", re.VERBOSE)
_ESCAPES = {"\\n": "\n", "\\r": "\r", "\\\\": "\\"}


@dataclass(frozen=True)
class Dependency:
    """A sqitch requires or conflicts entry."""
    conflicts: bool
    project: str | None
    change: str | None
    tag: str | None
    id: str | None

    @property
    def key(self) -> str:
        """Depend.pm key_name: change, change@tag, @tag or the id."""
        parts = (self.change or "") + (f"@{self.tag}" if self.tag else "")
        return parts or (self.id or "")

    def as_string(self, project: str) -> str:
        if self.project is None or self.project == project:
            return self.key
        return f"{self.project}:{self.key}"

    def as_plan_string(self, project: str) -> str:
        return ("!" if self.conflicts else "") + self.as_string(project)


@dataclass(frozen=True)
class PlanChange:
    """One change of a sqitch plan."""
    name: str
    line: int
    order: int  # position in the plan, from 1
    project: str
    timestamp: str  # as written: 2012-07-16T17:25:07Z
    planner_name: str
    planner_email: str
    note: str
    requires: tuple[Dependency, ...]
    conflicts: tuple[Dependency, ...]
    tags: tuple[str, ...]  # tags declared right after this change (without the @)
    rework_tags: tuple[str, ...]  # for a change planned again later: the tags its script names may carry
    script_name: str  # "name.sql" or "name@tag.sql" for a reworked change, under deploy/, revert/, verify/
    id: str  # the change id sqitch records (SHA1 of its info)
    operator: str = ""  # "+" or "-" (a "-" line plans a revert; refused by the reader)
    deploy_sql: str | None = None
    revert_sql: str | None = None
    verify_sql: str | None = None
    deploy_hash: str | None = None  # SHA1 of the deploy script's bytes: sqitch.changes.script_hash (Change.pm)

    @property
    def is_reworked(self) -> bool:
        return bool(self.rework_tags)

    @property
    def identity(self) -> str:
        """What premigrate keys a change on: name, plus @tag for the earlier copies of a reworked change."""
        return self.script_name.removesuffix(".sql")


@dataclass
class Plan:
    """A sqitch plan file: the project, its pragmas, changes and tags."""
    project: str
    uri: str | None
    pragmas: dict[str, str]
    changes: list[PlanChange] = field(default_factory=list)
    tags: dict[str, int] = field(default_factory=dict)  # tag -> line


def _error(file: str, line: int, message: str) -> MigrationFileError:
    # App::Sqitch: "Syntax error in {file} at line {lineno}: {error}"
    return MigrationFileError(f"{file}: line {line}: {message}", file=file, line=line)


def _unescape(note: str | None) -> str:
    # Plan/Line.pm BUILDARGS: trimmed first (s/\A\s+//; s/\s+\z//), then \n, \r and \\ unescaped.
    return re.sub(r"\\[nr\\]", lambda m: _ESCAPES[m.group(0)], (note or "").strip())


def parse_dependency(text: str) -> Dependency | None:
    m = _DEPEND.match(text)
    if not m or not text:
        return None
    return Dependency(conflicts=bool(m.group("conflicts")), project=m.group("project"), change=m.group("change"),
                      tag=m.group("tag") or m.group("tag2"), id=m.group("id"))


_DEFAULT_PORT = {"http": "80", "https": "443", "ftp": "21"}
_URI = re.compile(r"\A(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):(?://(?P<user>[^/?#@]*@)?(?P<host>\[[^\]]*\]|[^/?#:]*)"
                  r"(?::(?P<port>\d*))?)?(?P<rest>.*)\Z", re.DOTALL)
_UNRESERVED = re.compile(r"[A-Za-z0-9\-_.~]")


def canonical_uri(uri: str) -> str:
    """What Change.pm puts in the info: `uri->canonical` (the CPAN URI module: URI.pm lowercases the scheme, decodes
    escaped unreserved characters and uppercases the other escapes' hex; URI/_server.pm lowercases the host and drops
    an empty or default port; URI/http.pm makes an empty path "/"), for the server-based schemes it knows."""
    uri = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)) if _UNRESERVED.fullmatch(
        chr(int(m.group(1), 16))) else "%" + m.group(1).upper(), uri)
    m = _URI.match(uri)
    if m is None:
        return uri
    scheme = m.group("scheme").lower()
    if scheme not in _DEFAULT_PORT or m.group("host") is None:
        return scheme + uri[len(scheme):]
    port = m.group("port")
    kept = f":{port}" if port and port != _DEFAULT_PORT[scheme] else ""
    rest = m.group("rest")
    if scheme in ("http", "https") and not rest:
        rest = "/"  # URI/http.pm: an empty path (and no query) with an authority is "/"
    return f"{scheme}://{m.group('user') or ''}{m.group('host').lower()}{kept}{rest}"


def change_id(project: str, uri: str | None, name: str, parent: str | None, planner: str, timestamp: str,
              requires: list[str], conflicts: list[str], note: str) -> str:
    """Change.pm `info` and `id`: SHA1 of "change <length>\\0<info>"."""
    lines = [f"project {project}"]
    if uri:
        lines.append(f"uri {canonical_uri(uri)}")
    lines.append(f"change {name}")
    if parent:
        lines.append(f"parent {parent}")
    lines += [f"planner {planner}", f"date {timestamp}"]
    if requires:
        lines.append("requires\n  + " + "\n  + ".join(requires))
    if conflicts:
        lines.append("conflicts\n  - " + "\n  - ".join(conflicts))
    if note:
        lines += ["", note]
    content = "\n".join(lines).encode("utf-8")
    return hashlib.sha1(b"change " + str(len(content)).encode() + b"\0" + content).hexdigest()


@dataclass
class _Pending:
    """A plan line read, before its change id can be computed."""
    name: str
    line: int
    params: dict[str, str | None]
    requires: list[Dependency]
    conflicts: list[Dependency]
    tags: list[str] = field(default_factory=list)
    rework_tags: list[str] = field(default_factory=list)
    since_tag_pos: int = 0


def _parse_pragmas(lines: list[str], file: str) -> tuple[dict[str, str], int]:
    """The pragmas at the top of the plan, and the index of the line after them."""
    pragmas: dict[str, str] = {}
    n = 0
    # Pragmas: until the first blank line (a note-only line does not end them).
    while n < len(lines):
        raw = lines[n]
        n += 1
        blank = _BLANK_OR_NOTE.match(raw)
        if blank:
            if not blank.group("note"):
                break
            continue
        line = _INLINE_NOTE.sub("", raw, count=1)
        m = _PRAGMA.match(line)
        if not m:
            raise _error(file, n, "Invalid pragma; a blank line must come between pragmas and changes")
        name, value = m.group("name"), m.group("value")
        if name == "syntax-version":
            pragmas["syntax_version"] = SYNTAX_VERSION
        elif name == "project":
            if value is None or not _NAME.match(value):
                raise _error(file, n, f'invalid project name "{value}": project names must not begin with '
                                      'punctuation, contain "@", ":", "#", "\\", "[", "]", or blanks, or end in '
                                      'punctuation or digits following punctuation')
            pragmas["project"] = value
        else:
            pragmas[name] = value if value is not None else "1"
    return pragmas, n


def _parse_dependencies(text: str | None, file: str, n: int) -> tuple[list[Dependency], list[Dependency]]:
    """A plan line's [dependencies]: (requires, conflicts)."""
    requires: list[Dependency] = []
    conflicts: list[Dependency] = []
    if text:
        seen_deps: set[str] = set()
        for text_dep in re.split(r"[ \t]+", str(text).strip()):
            dep = parse_dependency(text_dep)
            if dep is None:
                raise _error(file, n, f'"{text_dep}" is not a valid dependency specification')
            if text_dep in seen_deps:
                raise _error(file, n, f'Duplicate dependency "{text_dep}"')
            seen_deps.add(text_dep)
            (conflicts if dep.conflicts else requires).append(dep)
    return requires, conflicts


def _checked_name(params: dict[str, str | None], line: str, kind: str, file: str, n: int) -> str:
    """The name of a plan line, once its name, timestamp and planner are known to be valid."""
    if not params.get("name") or (not params.get("yr") and _TS_RE.search(line)):
        raise _error(file, n, 'Invalid name; names must not begin with punctuation, contain "@", ":", "#", '
                              '"\\", "[", "]", or blanks, or end in punctuation or digits following punctuation')
    if not params.get("yr") and not params.get("planner_name"):
        raise _error(file, n, "Missing timestamp and planner name and email")
    if not params.get("yr"):
        raise _error(file, n, "Missing timestamp")
    if not params.get("planner_name"):
        raise _error(file, n, "Missing planner name and email")
    name = str(params["name"])
    if name in ("ROOT", "HEAD"):
        raise _error(file, n, f'"{"@" if kind == "tag" else ""}{name}" is a reserved name')
    if re.match(r"^[0-9a-f]{40}", name):
        raise _error(file, n, f'"{name}" is invalid because it could be confused with a SHA1 ID')
    return name


def parse_plan(text: str, file: str = "sqitch.plan") -> Plan:
    """Plan.pm `_parse` and `check_changes`. Every syntax or dependency error names its line."""
    lines = re.split(r"\r?\n", text.removeprefix("\ufeff"))
    if lines and lines[-1] == "":
        lines.pop()
    pragmas, n = _parse_pragmas(lines, file)
    if "project" not in pragmas:
        raise _error(file, 1, f"Missing %project pragma in {file}")
    project = pragmas["project"]
    plan = Plan(project=project, uri=pragmas.get("uri"), pragmas=pragmas)

    pending: list[_Pending] = []  # every change in plan order
    seen: dict[str, int] = {}  # line_no_for: names and @tags of earlier tag sections -> line
    tag_changes: dict[str, int] = {}  # changes since the last tag -> line
    current: list[_Pending] = []  # changes since the last tag, checked when the section closes
    by_name: dict[str, _Pending] = {}
    while n < len(lines):
        raw = lines[n]
        n += 1
        if _BLANK_OR_NOTE.match(raw):
            continue
        note_match = _INLINE_NOTE.search(raw)
        note = note_match.group("note") if note_match else None
        line = raw[:note_match.start()] if note_match else raw
        kind = "tag" if re.match(r"^[ \t]*[@]", line) else "change"
        m = _LINE.match(line)
        params: dict[str, str | None] = dict(m.groupdict()) if m else {}
        name = _checked_name(params, line, kind, file, n)
        params["note"] = _unescape(note)
        if kind == "tag":
            if "/" in name:
                raise _error(file, n, f'Tag "{name}" contains illegal character /')
            if not pending:
                raise _error(file, n, f'Tag "{name}" declared without a preceding change')
            key = f"@{name}"
            if key in seen:
                raise _error(file, n, f'Tag "{name}" duplicates earlier declaration on line {seen[key]}')
            if params.get("dependencies"):
                raise _error(file, n, "Tags may not specify dependencies")
            if current:
                _check_changes(project, seen, current, file)
                current = []
            pending[-1].tags.append(name)
            plan.tags[name] = n
            seen.update(tag_changes)
            seen[key] = n
            tag_changes = {}
            continue
        if name in tag_changes:
            raise _error(file, n, f'Change "{name}" duplicates earlier declaration on line {tag_changes[name]}')
        requires, conflicts = _parse_dependencies(params.get("dependencies"), file, n)
        change = _Pending(name, n, params, requires, conflicts)
        tag_changes[name] = n
        if name in by_name:
            duped = by_name[name]
            # The tags between the earlier copy and this one, newest first, then the earlier copy's own tags.
            index = pending.index(duped)
            rework: list[str] = []
            for later in reversed(pending[index + 1:]):
                rework += later.tags
            duped.rework_tags += rework + duped.tags
        by_name[name] = change
        pending.append(change)
        current.append(change)
    if current:
        _check_changes(project, seen, current, file)
    plan.changes = _finish(plan, pending)
    return plan


def _check_changes(project: str, seen: dict[str, int], changes: list[_Pending], file: str) -> None:
    """Plan.pm check_changes: each requirement of this project must be planned earlier (so no cycle can exist)."""
    position: dict[str, int] = {}
    for i, change in enumerate(changes, 1):
        position[change.name] = i
    done: dict[str, int] = {}
    for i, change in enumerate(changes, 1):
        for dep in change.requires:
            if dep.project is not None:
                if dep.project != project:
                    continue  # another project's change: checked against that project's registry at deploy time
            elif dep.id is not None:
                continue
            key = dep.key
            if re.search(r".@", key):
                name, tag = key.split("@", 1)
                if f"@{tag}" in seen and name in seen and seen[name] < seen[f"@{tag}"]:
                    continue
            elif key in seen or key in done:
                continue
            if key == change.name:
                raise _error(file, change.line, f'Change "{change.name}" cannot require itself')
            if key in position and key not in done:
                delta = position[key] - i
                raise _error(file, change.line, f'Change "{change.name}" planned {delta} change'
                                                f'{"s" if delta != 1 else ""} before required change "{key}"; '
                                                f'move "{change.name}" down {delta} line{"s" if delta != 1 else ""}')
            raise _error(file, change.line, f'Unknown change "{key}" required by change "{change.name}"')
        done[change.name] = i


def _finish(plan: Plan, pending: list[_Pending]) -> list[PlanChange]:
    out: list[PlanChange] = []
    parent: str | None = None
    for order, change in enumerate(pending, 1):
        p = change.params
        timestamp = f"{p['yr']}-{p['mo']}-{p['dy']}T{p['hr']}:{p['mi']}:{p['sc']}Z"
        # As Plan.pm's greedy $planner_re leaves it (a double blank before "<" keeps one): it is in the change id.
        planner_name = str(p["planner_name"])
        planner = f"{planner_name} <{p['planner_email']}>"
        ident = change_id(plan.project, plan.uri, change.name, parent, planner, timestamp,
                          [d.as_string(plan.project) for d in change.requires],
                          [d.as_string(plan.project) for d in change.conflicts], str(p.get("note") or ""))
        parent = ident
        out.append(PlanChange(
            name=change.name, line=change.line, order=order, project=plan.project, timestamp=timestamp,
            planner_name=planner_name, planner_email=str(p["planner_email"]), note=str(p.get("note") or ""),
            requires=tuple(change.requires), conflicts=tuple(change.conflicts), tags=tuple(change.tags),
            rework_tags=tuple(change.rework_tags), script_name=f"{change.name}.sql", id=ident,
            operator=str(p.get("operator") or "")))
    return out


def script_name(change: PlanChange, exists: Callable[[str], bool]) -> str:
    """Change.pm _path_segments: a reworked change's scripts carry the first rework tag whose deploy file exists."""
    if not change.rework_tags:
        return f"{change.name}.sql"
    *dirs, base = change.name.split("/")
    prefix = "/".join(dirs + [""]) if dirs else ""
    first = None
    for tag in change.rework_tags:
        candidate = f"{prefix}{base}@{tag}.sql"
        first = first or candidate
        if exists(candidate):
            return candidate
    return str(first)


def load_project(root: Path, *, plan_file: str = "sqitch.plan", need_revert: bool = False,
                 dialect: str | None = None) -> Plan:
    """The plan with each change's scripts read from deploy/, revert/ and verify/ (the layout `sqitch init`
    makes). A missing deploy script is an error naming the plan line; psql meta-commands are refused."""
    path = root / plan_file
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MigrationFileError(f"{plan_file}: not found in {root}", file=plan_file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationFileError(f"{plan_file}: cannot read it ({exc})", file=plan_file) from None
    plan = parse_plan(text, plan_file)
    changes = []
    for change in plan.changes:
        if change.operator == "-":
            raise _error(plan_file, change.line, f'change "{change.name}" is planned as a revert ("-"); '
                                                 "premigrate deploys plans of \"+\" changes only")
        name = script_name(change, lambda candidate: (root / "deploy" / candidate).is_file())
        scripts: dict[str, str | None] = {}
        hashes: dict[str, str] = {}
        for kind in ("deploy", "revert", "verify"):
            script = root / kind / name
            if not script.is_file():
                if kind == "deploy" or (kind == "revert" and need_revert):
                    raise _error(plan_file, change.line, f"{kind}/{name}: no such script for change "
                                                         f'"{change.name}"')
                scripts[kind] = None
                continue
            try:
                raw = script.read_bytes()
                body = raw.decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
            except (OSError, UnicodeDecodeError) as exc:
                raise MigrationFileError(f"{kind}/{name}: cannot read it ({exc})", file=f"{kind}/{name}") from None
            meta = meta_command_line(body, dialect)
            if meta:
                raise MigrationFileError(f"{kind}/{name}: line {meta[0]}: psql meta-command {meta[1]}: premigrate "
                                         "sends the script's SQL to the database itself, without psql; write it in "
                                         "SQL (or drop the line)", file=f"{kind}/{name}", line=meta[0])
            scripts[kind] = body
            if kind == "deploy":
                hashes[kind] = hashlib.sha1(raw).hexdigest()  # Change.pm _deploy_hash: SHA1 of the raw file
        changes.append(PlanChange(**{**change.__dict__, "script_name": name, "deploy_sql": scripts["deploy"],
                                     "revert_sql": scripts["revert"], "verify_sql": scripts["verify"],
                                     "deploy_hash": hashes.get("deploy")}))
    plan.changes = changes
    return plan
