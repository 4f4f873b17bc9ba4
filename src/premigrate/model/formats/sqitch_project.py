"""A sqitch project folder (sqitch.plan beside deploy/, revert/, verify/) as premigrate migrations: one listed
migration per plan change, in plan order.

Identity: a change is keyed on the change id sqitch itself records in sqitch.changes.change_id (Change.pm `id`: a
SHA1 of the project, the name, the parent change's id, the planner, the date, the dependencies and the note). That is
what makes a reworked change a migration of its own: `sqitch rework users` renames the deployed copy's scripts to
users@v1.0.sql and plans `users` again, and the first copy keeps its id (nothing about its plan line or its parent
changed) while the new copy gets a new one. Keyed on the name, the deployed copy would instead look edited.
The checksum is that of the deploy script, so an edited deployed script is drift (exit 5); an edited plan line of a
deployed change (a new id for a known name) is refused by name, as sqitch refuses it ("Cannot find change ... in
sqitch.plan", Engine.pm `_sync_plan`).

Refused, each naming its line: a plan line reverting a change (`-name`), a requirement or a conflict on another
project (premigrate has one history per folder, not sqitch's registry of projects), a conflict with a change planned
earlier (Engine.pm `check_deploy_dependencies`: deploying it always meets the conflict), a sqitch.conf that moves the
plan or the scripts (`top_dir`, `plan_file`, `deploy_dir`, ...; Target.pm), or one whose `core.engine` is not the
database's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from premigrate.drivers.base import STATE_APPLIED, HistoryRow
from premigrate.errors import MigrationFileError
from premigrate.model.formats.sqitch import Plan, PlanChange, load_project
from premigrate.model.migrations import Migration, checksum

# sqitch's engine names (App::Sqitch::Engine::<name>) for premigrate's dialects.
ENGINES = {"pg": "postgresql", "mysql": "mysql", "sqlite": "sqlite"}
# Target.pm: where a project's files are, when sqitch.conf moves them (core, engine "<name>" or target "<name>").
_LAYOUT = {"top_dir": ".", "plan_file": "sqitch.plan", "deploy_dir": "deploy", "revert_dir": "revert",
           "verify_dir": "verify", "extension": "sql", "reworked_dir": None, "reworked_deploy_dir": None,
           "reworked_revert_dir": None, "reworked_verify_dir": None}
_SECTION = re.compile(r'^\s*\[\s*(?P<name>[A-Za-z0-9.-]+)(?:\s+"(?P<sub>[^"]*)")?\s*\]')
_SETTING = re.compile(r"^\s*(?P<key>[A-Za-z][A-Za-z0-9_-]*)\s*(?:=\s*(?P<value>.*?))?\s*$")


def read_conf(root: Path, dialect: str | None) -> None:
    """sqitch.conf (git-config syntax, App::Sqitch::Config): refuse what would make sqitch read other files than
    premigrate does, and a project written for another database."""
    path = root / "sqitch.conf"
    if not path.is_file():
        return
    try:
        # utf-8-sig: a BOM before "[core]" would otherwise hide that section, and its settings, from the checks.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MigrationFileError(f"sqitch.conf: cannot read it ({exc})", file="sqitch.conf") from None
    section = sub = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].split(";", 1)[0]
        head = _SECTION.match(line)
        if head:
            section, sub = head.group("name").lower(), (head.group("sub") or "").lower()
            continue
        setting = _SETTING.match(line)
        if setting and line.strip() and dialect != "sqlite" and _is_variables(section, sub):
            raise MigrationFileError(
                f"sqitch.conf: line {number}: {setting.group('key')}: a script variable ([{section} \"{sub}\"]), "
                "which sqitch sets before each script (psql --set name=value for :name, MySQL SET @name = value); "
                "premigrate does not, so a script reading it would run with the variable unset. Write the value into "
                "the scripts and remove the setting", file="sqitch.conf", line=number)
        if not setting or not line.strip() or section not in ("core", "engine", "target"):
            continue
        key, value = setting.group("key").lower(), (setting.group("value") or "").strip().strip('"')
        if key in _LAYOUT and value.rstrip("/") != _LAYOUT[key]:
            raise MigrationFileError(
                f"sqitch.conf: line {number}: {key} = {value}: premigrate reads sqitch's default layout "
                "(sqitch.plan, deploy/, revert/ and verify/ beside it, .sql scripts); point --dir at the folder "
                "holding the plan and remove the setting", file="sqitch.conf", line=number)
        if section == "core" and key == "engine":
            wanted = ENGINES.get(value)
            if wanted is None:
                raise MigrationFileError(f"sqitch.conf: line {number}: engine = {value}: premigrate runs sqitch "
                                         f"projects for {', '.join(ENGINES)} only", file="sqitch.conf", line=number)
            if dialect is not None and wanted != dialect:
                raise MigrationFileError(f"sqitch.conf: line {number}: engine = {value}: the project is written for "
                                         f"{wanted}, the database is {dialect}", file="sqitch.conf", line=number)


def _is_variables(section: str, sub: str) -> bool:
    """Where sqitch reads script variables (Command/deploy.pm _collect_vars: core.variables, deploy.variables,
    target.<name>.variables with engine.<engine>.variables; revert and verify read theirs); Engine/pg.pm passes them
    to psql with --set, Engine/mysql.pm _set_vars as `SET @"name" = 'value'`; Engine/sqlite.pm ignores them."""
    if section in ("core", "deploy", "revert", "verify"):
        return sub == "variables"
    return section in ("target", "engine") and sub.endswith(".variables")


def check_dependencies(plan: Plan, file: str = "sqitch.plan") -> None:
    """What Plan.pm's check_changes leaves to deploy time (Engine.pm check_deploy_dependencies), decided here
    because premigrate deploys the whole plan in order: conflicts with a change planned earlier, and dependencies on
    other projects, which premigrate's one history cannot answer."""
    earlier: dict[str, PlanChange] = {}
    by_id: dict[str, PlanChange] = {}
    for change in plan.changes:
        for dep in (*change.requires, *change.conflicts):
            if dep.project is not None and dep.project != plan.project:
                how = "conflicts with" if dep.conflicts else "requires"
                raise MigrationFileError(
                    f'{file}: line {change.line}: change "{change.name}" {how} "{dep.as_string(plan.project)}" of '
                    f"project {dep.project}: premigrate keeps one project's history per folder and cannot check "
                    "another's", file=file, line=change.line)
        for dep in change.requires:
            # A requirement by change id: sqitch looks for it among the changes deployed before it (the registry
            # and this deploy's earlier changes) and refuses the deploy without it ("Missing required change").
            if dep.id is not None and dep.id not in by_id:
                raise MigrationFileError(
                    f'{file}: line {change.line}: change "{change.name}" requires change id {dep.id}, which no change '
                    "planned before it has; sqitch refuses to deploy it (\"Missing required change\"): require the "
                    "change by name, or drop the requirement", file=file, line=change.line)
        for dep in change.conflicts:
            hit = by_id.get(dep.id) if dep.id else earlier.get(dep.change or "") if dep.change else None
            if hit is not None:
                raise MigrationFileError(
                    f'{file}: line {change.line}: change "{change.name}" conflicts with "{dep.key}", deployed '
                    f"before it (line {hit.line}); sqitch refuses to deploy it (\"Conflicts with previously deployed "
                    "change\"): revert that change in the plan, or drop the conflict", file=file, line=change.line)
        earlier[change.name] = change
        by_id[change.id] = change


def load(root: Path, dialect: str | None) -> Plan:
    """The project's plan with its scripts, checked."""
    read_conf(root, dialect)
    plan = load_project(root, dialect=dialect)
    check_dependencies(plan)
    return plan


def migrations(root: Path, dialect: str | None) -> list[Migration]:
    """One listed migration per plan change, in plan order: deploy/ is its up part, revert/ its down part, verify/
    runs after the deploy (engine/change_verify.py)."""
    plan = load(root, dialect)
    return [migration(change) for change in plan.changes]


def migration(change: PlanChange) -> Migration:
    assert change.deploy_sql is not None  # load_project refuses a change without its deploy script
    name = change.script_name
    return Migration(
        kind="listed", version=None, description=change.identity, script=f"deploy/{name}", up_sql=change.deploy_sql,
        up_first_line=1, checksum=checksum(change.deploy_sql), down_sql=change.revert_sql,
        down_script=f"revert/{name}" if change.revert_sql is not None else None, format="sqitch",
        verify_sql=change.verify_sql, verify_script=f"verify/{name}" if change.verify_sql is not None else None,
        key=change.id, position=change.order)


def edited_plan_lines(listed: Sequence[Migration], rows: Sequence[HistoryRow]) -> list[tuple[Migration, HistoryRow]]:
    """Recorded changes whose plan line was edited since: the row's id is no longer in the plan, and a change of the
    same name (description) is not recorded. Its new id would make it pending, and deploying it again would fail
    half-way or double its effect; sqitch refuses such a plan ("Cannot find change <id> (<name>) in sqitch.plan",
    Engine.pm `_sync_plan`), so does premigrate."""
    keys = {m.id for m in listed}
    recorded = {r.migration_id for r in rows}
    lost = {r.description: r for r in rows if r.migration_id not in keys and r.state == STATE_APPLIED}
    return [(m, lost[m.description]) for m in listed if m.id not in recorded and m.description in lost]
