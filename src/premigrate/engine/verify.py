"""`verify`: prove every down part of a folder on a scratch database, schema snapshot against schema snapshot.

The algorithm only needs four operations, received as a VerifyTarget, so the command can plug in the executor
(the one path that applies a migration in either direction, with its history rows), the catalog reader and the
scratch database:

1. From an empty database, apply every migration in order, taking a snapshot before the first and after each one:
   S[0] (empty), S[1] after the first migration, ... S[n] after all. A failure here is the folder's own failure
   (exit 4): nothing is verified.
2. Then, newest first, for each migration k:
   - no down part (a repeatable migration has none either): reported as such;
   - otherwise take a snapshot `current` (S[k+1] when all went well so far), run down, and compare with what down
     must leave: `current` with every object that k's first up changed (S[k] against S[k+1]) put back as it was in
     S[k] -- exactly S[k], the snapshot taken before k's up, when `current` is S[k+1];
   - run up again and compare with `current`, the schema after the first up (a difference, or a failure, means the
     up is not re-runnable after its down: data-dependent, or its down left something behind);
   - run down once more, so that the next older migration is undone with none of the newer ones in place (a newer
     foreign key would otherwise block dropping the table it references).
   Whenever the database is not known to be at S[k] after that (a newer migration has no down part, a down or up
   failed, a down did not restore the schema), the next migration with a down part is checked on a database
   rebuilt from empty up to it (reset, then up for each older one), so that one mistake is reported once, at the
   migration that made it, and never blamed on an older one. A rebuild that fails reports not_verified.

Reported per migration (newest first, as run): verified; down_differs (with the differences); down_failed;
reapply_failed; reapply_differs (with the differences); no_down; not_verified. Exit code: 0 when every down part
verified, 5 otherwise, 4 when the folder itself failed to apply.

Interrupted (SIGTERM/SIGINT) is a BaseException and is never caught here: it reaches the caller, whose scratch
database context drops the database on the way out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from premigrate.model.schema_diff import Difference, Schema, SchemaObject, diff

VERIFIED = "verified"
DOWN_DIFFERS = "down_differs"
DOWN_FAILED = "down_failed"
REAPPLY_FAILED = "reapply_failed"
REAPPLY_DIFFERS = "reapply_differs"
NO_DOWN = "no_down"
NOT_VERIFIED = "not_verified"
FAILURES = frozenset({DOWN_DIFFERS, DOWN_FAILED, REAPPLY_FAILED, REAPPLY_DIFFERS, NOT_VERIFIED})

EXIT_VERIFIED = 0
EXIT_APPLY_FAILED = 4
EXIT_NOT_VERIFIED = 5

_MESSAGES = {
    VERIFIED: "down restores the schema and up re-applies cleanly",
    DOWN_DIFFERS: "down does not restore the schema",
    DOWN_FAILED: "down failed",
    REAPPLY_FAILED: "re-applying up after down failed",
    REAPPLY_DIFFERS: "re-applying up after down gives another schema",
    NO_DOWN: "no down part",
    NOT_VERIFIED: "not verified",
}


class VerifyTarget(Protocol):
    """What verify needs from the engine. Each call raises on failure (any Exception); none is retried here."""

    def up(self, migration_id: str) -> None:
        """Apply the up part of a migration and record it, exactly as `up` does."""

    def down(self, migration_id: str) -> None:
        """Apply the down part of a migration and remove its record, exactly as `down` does."""

    def snapshot(self) -> Schema:
        """The schema as it is now (engine.schema_snapshot.snapshot on the scratch database)."""

    def reset(self) -> None:
        """Make the scratch database empty again (engine.scratch.recreate), history table included."""


@dataclass(frozen=True)
class Step:
    """A migration verify runs up, down and up again."""
    migration_id: str
    has_down: bool


@dataclass(frozen=True)
class MigrationResult:
    """What verify found for one migration."""
    migration_id: str
    status: str
    differences: tuple[Difference, ...] = ()
    error: str | None = None
    detail: str | None = None  # e.g. "verified in place: newer migrations still applied"

    @property
    def ok(self) -> bool:
        return self.status not in FAILURES

    @property
    def message(self) -> str:
        text = _MESSAGES[self.status]
        if self.error:
            text += f": {self.error}"
        if self.detail:
            text += f" ({self.detail})"
        return text

    def as_dict(self) -> dict[str, object]:
        return {"migration": self.migration_id, "status": self.status, "message": self.message,
                "differences": [d.as_dict() for d in self.differences], "error": self.error, "detail": self.detail}


@dataclass(frozen=True)
class VerifyReport:
    """verify's results for every migration, and the first failed apply."""
    results: tuple[MigrationResult, ...] = ()
    apply_failed: str | None = None  # migration id whose first up failed
    apply_error: str | None = None

    @property
    def exit_code(self) -> int:
        if self.apply_failed is not None:
            return EXIT_APPLY_FAILED
        return EXIT_VERIFIED if all(r.ok for r in self.results) else EXIT_NOT_VERIFIED

    def as_dict(self) -> dict[str, object]:
        return {"exit_code": self.exit_code, "apply_failed": self.apply_failed, "apply_error": self.apply_error,
                "migrations": [r.as_dict() for r in self.results]}

    def lines(self) -> list[str]:
        """The report for a person: one line per migration, one indented line per difference, a total."""
        if self.apply_failed is not None:
            return [f"the folder does not apply: {self.apply_failed}: {self.apply_error}"]
        out: list[str] = []
        for result in self.results:
            out.append(f"{result.migration_id}: {result.status}: {result.message}")
            out.extend(f"    {difference.render()}" for difference in result.differences)
        counts = {status: sum(1 for r in self.results if r.status == status) for status in (VERIFIED, NO_DOWN)}
        failed = sum(1 for r in self.results if not r.ok)
        out.append(f"{counts[VERIFIED]} verified, {failed} not verified, {counts[NO_DOWN]} without a down part")
        return out


def expected_after_down(current: Schema, before_up: Schema, after_up: Schema) -> Schema:
    """`current` with every object the first up changed put back as it was before that up."""
    old, new = before_up.by_key(), after_up.by_key()
    changed = {key for key in old.keys() | new.keys() if old.get(key) != new.get(key)}
    kept: list[SchemaObject] = [obj for key, obj in current.by_key().items() if key not in changed]
    kept += [old[key] for key in changed if key in old]
    return Schema.build(kept)


def _error_text(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def verify(steps: Sequence[Step], target: VerifyTarget,
           on_result: Callable[[MigrationResult], None] | None = None) -> VerifyReport:
    """Run the verification described in the module docstring; on_result sees each result as it is decided."""
    snapshots: list[Schema] = [target.snapshot()]
    for step in steps:
        try:
            target.up(step.migration_id)
        except Exception as exc:  # noqa: BLE001 - any failure of the folder itself is reported, exit 4
            return VerifyReport(apply_failed=step.migration_id, apply_error=_error_text(exc))
        snapshots.append(target.snapshot())

    results: list[MigrationResult] = []

    def report(result: MigrationResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    # Why the database is not known to be at S[k+1] for the next migration k (None: it is), so that it has to be
    # rebuilt from empty up to k first.
    rebuild: str | None = None
    for k in range(len(steps) - 1, -1, -1):
        step = steps[k]
        name = step.migration_id
        if not step.has_down:
            report(MigrationResult(name, NO_DOWN))
            rebuild = rebuild or f"{name} has no down part"
            continue
        rebuilt: str | None = None
        if rebuild is not None:
            try:
                target.reset()
                for older in steps[: k + 1]:
                    target.up(older.migration_id)
            except Exception as exc:  # noqa: BLE001 - reported per migration; the next one tries again
                report(MigrationResult(name, NOT_VERIFIED, error=_error_text(exc),
                                       detail=f"rebuilding the database up to {name} failed ({rebuild})"))
                continue
            rebuilt = f"database rebuilt from empty up to {name}: {rebuild}"
            rebuild = None
        current = target.snapshot()
        try:
            target.down(name)
        except Exception as exc:  # noqa: BLE001 - reported per migration
            report(MigrationResult(name, DOWN_FAILED, error=_error_text(exc), detail=rebuilt))
            rebuild = f"the down part of {name} failed"
            continue
        after_down = target.snapshot()
        down_diff = tuple(diff(expected_after_down(current, snapshots[k], snapshots[k + 1]), after_down))
        try:
            target.up(name)
        except Exception as exc:  # noqa: BLE001 - reported per migration
            if down_diff:
                why = f"re-applying up then failed: {_error_text(exc)}"
                report(MigrationResult(name, DOWN_DIFFERS, down_diff,
                                       detail="; ".join(x for x in (why, rebuilt) if x)))
            else:
                report(MigrationResult(name, REAPPLY_FAILED, error=_error_text(exc), detail=rebuilt))
            rebuild = f"re-applying {name} after its down failed"
            continue
        reapply_diff = tuple(diff(current, target.snapshot()))
        if down_diff:
            also = "re-applying up also differs" if reapply_diff else None
            report(MigrationResult(name, DOWN_DIFFERS, down_diff,
                                   detail="; ".join(x for x in (also, rebuilt) if x) or None))
            rebuild = f"the down part of {name} does not restore the schema"
        elif reapply_diff:
            report(MigrationResult(name, REAPPLY_DIFFERS, reapply_diff, detail=rebuilt))
            rebuild = f"re-applying {name} gives another schema"
        else:
            report(MigrationResult(name, VERIFIED, detail=rebuilt))
        try:
            # Undo it again, so that the next older down runs with none of the newer objects in place.
            target.down(name)
        except Exception as exc:  # noqa: BLE001 - the state is unknown from here: rebuild for the next one
            rebuild = f"undoing {name} again failed: {_error_text(exc)}"
    return VerifyReport(results=tuple(results))


@dataclass
class RecordingTarget:
    """A VerifyTarget wrapper that records the calls made (for events and tests)."""

    inner: VerifyTarget
    calls: list[tuple[str, str]] = field(default_factory=list)

    def up(self, migration_id: str) -> None:
        self.calls.append(("up", migration_id))
        self.inner.up(migration_id)

    def down(self, migration_id: str) -> None:
        self.calls.append(("down", migration_id))
        self.inner.down(migration_id)

    def snapshot(self) -> Schema:
        return self.inner.snapshot()

    def reset(self) -> None:
        self.calls.append(("reset", ""))
        self.inner.reset()
