"""sqitch.changes, the registry of what is deployed now, matched against a plan (see sqitch.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from premigrate.model.formats.sqitch import Plan, PlanChange


# -- sqitch.changes: what is deployed now -----------------------------------------------------------------------------

@dataclass(frozen=True)
class DeployedChange:
    """One sqitch.changes row (lib/App/Sqitch/Engine/pg.sql): the changes deployed now, newest last."""
    change_id: str
    name: str
    project: str
    script_hash: str | None = None


@dataclass
class DeployedMatch:
    """A sqitch registry read against the plan."""
    deployed: list[PlanChange] = field(default_factory=list)  # in the registry by change id
    pending: list[PlanChange] = field(default_factory=list)
    edited: list[tuple[PlanChange, DeployedChange]] = field(default_factory=list)  # same name, another change id
    script_changed: list[PlanChange] = field(default_factory=list)  # deployed, but the deploy script's hash differs
    only_in_registry: list[DeployedChange] = field(default_factory=list)


def match_deployed(plan: Plan, rows: Iterable[DeployedChange]) -> DeployedMatch:
    """Pure: sqitch identifies a deployed change by its change id (a SHA1 of its plan line, its parent and its
    requirements), so a plan line that was edited after deploying no longer matches; such rows are reported with
    the plan change of the same name. Rows of other projects are ignored."""
    mine = [r for r in rows if r.project == plan.project]
    by_id = {r.change_id: r for r in mine}
    used: set[str] = set()
    result = DeployedMatch()
    for change in plan.changes:
        row = by_id.get(change.id)
        if row is not None:
            used.add(row.change_id)
            result.deployed.append(change)
            if row.script_hash and change.deploy_hash and row.script_hash != change.deploy_hash:
                result.script_changed.append(change)
            continue
        same_name = next((r for r in mine if r.name == change.name and r.change_id not in used), None)
        if same_name is not None:
            used.add(same_name.change_id)
            result.edited.append((change, same_name))
        else:
            result.pending.append(change)
    result.only_in_registry = [r for r in mine if r.change_id not in used]
    return result
