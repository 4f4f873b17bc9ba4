"""Command output on stdout: the `status` table and its JSON form."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from premigrate.log import SecretScrubber
from premigrate.model.planner import Plan
from premigrate.model.formats.base import show
from premigrate.model.migrations import Migration
from premigrate.model.sql import Statement


def write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `premigrate plan | head` is fine
        pass
    except OSError as exc:  # a full disk, a closed descriptor: the output is lost, and the run must say so
        from premigrate.errors import UsageError

        raise UsageError(f"cannot write the output to standard output: {exc.strerror or exc}; point it at a file "
                         "or pipe that can take it") from None


def _scrub(text: str, secrets: Sequence[str]) -> str:
    return str(SecretScrubber(secrets).scrub(text))


@dataclass(frozen=True)
class StepView:
    """One migration as `plan` shows it."""

    migration: Migration
    reason: str
    transaction: str
    timeouts: dict[str, Any]
    statements: Sequence[Statement]
    resume_from: int | None = None


def _limit(seconds: float | None) -> str:
    return "no limit" if not seconds else f"{seconds:g}s"


def plan_text(views: Sequence[StepView], plan: Plan, *, secrets: Sequence[str] = ()) -> str:
    if not views and plan.problems:  # a failed or unfinished row, drift: nothing runs, and it is not up to date
        lines = ["Nothing can be applied until the problems below are resolved."]
    elif not views and plan.owed:
        lines = ["No migration to apply; `up` runs the afterMigrate callback that a run still owes."]
    elif not views:
        lines = ["Nothing to apply: the database is up to date with the folder."]
    elif plan.problems:  # `up` refuses before applying any of them: the list is what would follow the fix
        lines = ["Nothing can be applied until the problems below are resolved. Then "
                 f"{len(views)} migration{'s' if len(views) != 1 else ''} would be applied, in this order:", ""]
    else:
        lines = [f"{len(views)} migration{'s' if len(views) != 1 else ''} to apply, in this order:", ""]
    for view in views:
        m = view.migration
        lines.append(f"== {m.id}  {show(m.description)}  ({show(m.script)}, {m.format}, {m.kind}, {view.reason})")
        lines.append(f"   transaction: {view.transaction}")
        t = view.timeouts
        statement = t.get("statement_timeout_s")
        lines.append(f"   timeouts: runner lock {_limit(t.get('runner_lock_timeout_s'))}; DDL lock "
                     f"{_limit(t.get('ddl_lock_timeout_s'))} per attempt, {t.get('lock_retries')} retries; statement "
                     f"{'the database default' if statement is None else _limit(statement)}")
        if view.resume_from:
            lines.append(f"   resumes at statement {view.resume_from} of {len(view.statements)}")
        lines.append(f"   statements: {len(view.statements)}")
        for statement in view.statements:
            if view.resume_from and view.statements.index(statement) + 1 < view.resume_from:
                continue
            lines.append(f"   -- line {statement.line}")
            lines.extend("   " + line for line in _scrub(statement.text, secrets).splitlines())
            lines.append("   ;")
            if statement.rows is not None:  # COPY ... FROM STDIN: its rows follow it in the file
                rows = statement.rows.count("\n")
                lines.append(f"   -- and its data: the {rows} line{'' if rows == 1 else 's'} after it in the file, "
                             "up to the line \\.")
        lines.append("")
    for problem in plan.problems:
        lines.append(f"REFUSED: {problem.message}")
    for warning in plan.warnings:
        lines.append(f"warning: {warning.message}")
    lines.extend(_owed_lines(plan))
    return "\n".join(lines).rstrip() + "\n"


def _owed_lines(plan: Plan) -> list[str]:
    """The callbacks a run still owes (model/owed.py), one line each."""
    from premigrate.model.owed import describe

    return [f"owed: {show(describe(row))}; the next `up` runs it" for row in plan.owed]


def owed_json(plan: Plan) -> list[dict[str, object]]:
    """The callbacks a run still owes, as status, plan and a fleet's status show them in JSON."""
    from premigrate.model.owed import as_json

    return as_json(plan.owed)


def plan_json(views: Sequence[StepView], plan: Plan, *, database: str, secrets: Sequence[str] = ()) -> str:
    document = {
        "database": database,
        "pending": [
            {
                "id": v.migration.id,
                "version": str(v.migration.version) if v.migration.version is not None else None,
                "description": v.migration.description,
                "kind": v.migration.kind,
                "format": v.migration.format,
                "script": v.migration.script,
                "reason": v.reason,
                "transaction": v.transaction.split(" ", 1)[0],
                "timeouts": v.timeouts,
                "resume_from": v.resume_from,
                "statements": [{"line": s.line, "sql": _scrub(s.text, secrets)} for s in v.statements],
            }
            for v in views
        ],
        "count": len(views),
        "problems": [{"kind": p.kind, "id": p.migration_id, "message": p.message} for p in plan.problems],
        "warnings": [{"kind": p.kind, "id": p.migration_id, "message": p.message} for p in plan.warnings],
        "callbacks_owed": owed_json(plan),
    }
    return json.dumps(document, indent=2)


def status_json(plan: Plan, *, database: str, table: str) -> str:
    migrations = [
        {
            "id": e.migration_id,
            "version": e.version,
            "description": e.description,
            "kind": e.kind,
            "format": e.format,
            "script": e.script,
            "state": e.state,
            "applied_at": e.applied_at.isoformat() if e.applied_at else None,
            "duration_ms": e.execution_ms,
            "detail": e.detail,
        }
        for e in plan.entries
    ]
    counts: dict[str, int] = {}
    for e in plan.entries:
        counts[e.state] = counts.get(e.state, 0) + 1
    document: dict[str, Any] = {
        "database": database,
        "table": table,
        "migrations": migrations,
        "counts": counts,
        "pending": [s.migration.id for s in plan.outstanding],
        "problems": [{"kind": p.kind, "id": p.migration_id, "message": p.message} for p in plan.problems],
        "warnings": [{"kind": p.kind, "id": p.migration_id, "message": p.message} for p in plan.warnings],
        "callbacks_owed": owed_json(plan),
    }
    return json.dumps(document, indent=2)


def status_table(plan: Plan) -> str:
    listed = bool(plan.entries) and all(e.kind == "listed" for e in plan.entries)
    header = ("ID" if listed else "VERSION", "DESCRIPTION", "KIND", "FORMAT", "STATE", "APPLIED AT (UTC)", "DURATION")
    rows = [header]
    for e in plan.entries:
        rows.append((
            e.version or (show(e.migration_id) if e.kind == "listed" else "R"),  # a listed one's key
            show(e.description),  # a name from the history table may hold anything: never a raw newline here
            e.kind,
            e.format or "-",
            e.state + (f" ({show(e.detail)})" if e.detail and e.state not in ("applied", "pending") else ""),
            e.applied_at.strftime("%Y-%m-%d %H:%M:%S") if e.applied_at else "-",
            f"{e.execution_ms} ms" if e.execution_ms is not None else "-",
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(r)).rstrip() for r in rows]
    if len(rows) == 1:
        lines.append("(no migrations in the folder and none in the history)")
    counts: dict[str, int] = {}
    for e in plan.entries:
        counts[e.state] = counts.get(e.state, 0) + 1
    lines.append("")
    lines.append(", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "nothing")
    lines.extend(_owed_lines(plan))
    return "\n".join(lines)


def baseline_text(result: Any, files: Any) -> str:
    recorded = [m.id for m in result.matched]
    source = "--version" if result.tool == "version" else f"{result.tool}'s history"
    lines = [f"baseline: {len(recorded)} migration(s) recorded as applied without running them: "
             f"{', '.join(recorded) or 'none'}"]
    if result.tool != "version":
        lines.append(f"  in {source} and in the folder: {', '.join(recorded) or 'none'}")
        lines.append(f"  in {source} but not in the folder (not recorded): {', '.join(result.not_in_folder) or 'none'}")
    pending = result.pending(files)
    lines.append(f"  in the folder, not taken as applied (the next `up` applies them): {', '.join(pending) or 'none'}")
    lines += [f"  note: {note}" for note in result.notes]
    return "\n".join(lines)
