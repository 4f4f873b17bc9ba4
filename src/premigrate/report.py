"""Command output on stdout: the `status` table and its JSON form."""

from __future__ import annotations

import json
from typing import Any

from premigrate.planner import Plan


def status_json(plan: Plan, *, database: str, table: str) -> str:
    migrations = [
        {
            "id": e.migration_id,
            "version": e.version,
            "description": e.description,
            "kind": e.kind,
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
        "pending": [s.migration.id for s in plan.steps],
        "problems": [{"kind": p.kind, "id": p.migration_id, "message": p.message} for p in plan.problems],
        "warnings": [{"kind": p.kind, "id": p.migration_id, "message": p.message} for p in plan.warnings],
    }
    return json.dumps(document, indent=2)


def status_table(plan: Plan) -> str:
    header = ("VERSION", "DESCRIPTION", "KIND", "STATE", "APPLIED AT (UTC)", "DURATION")
    rows = [header]
    for e in plan.entries:
        rows.append((
            e.version or "R",
            e.description,
            e.kind,
            e.state + (f" ({e.detail})" if e.detail and e.state not in ("applied", "pending") else ""),
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
    return "\n".join(lines)
