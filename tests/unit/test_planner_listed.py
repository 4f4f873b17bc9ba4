"""The planner's handling of listed migrations (model/listed.py), without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from premigrate.drivers.base import HistoryRow
from premigrate.model.listed import KEY_MAX, history_key
from premigrate.model.migrations import Migration, MigrationSet, checksum
from premigrate.model.planner import Policy, Reason, make_plan, plan_for

POLICY = Policy("postgresql")
WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def listed(key: str, position: int, sql: str = "CREATE TABLE t (id int);", **changes: object) -> Migration:
    migration = Migration(kind="listed", version=None, description=key.split("::")[1], script="changelog.sql",
                          up_sql=sql, up_first_line=2, checksum=checksum(sql), format="liquibase", key=key,
                          position=position)
    return replace(migration, **changes)  # type: ignore[arg-type]


def row(migration: Migration, **changes: object) -> HistoryRow:
    return HistoryRow(migration.id, None, migration.description, migration.kind, migration.script,
                      migration.checksum, WHEN, 1, "host", "applied").evolve(**changes)


A = listed("changelog.sql::1::ann", 1, "CREATE TABLE a (id int);")
B = listed("changelog.sql::2::bob", 2, "CREATE TABLE b (id int);")
C = listed("changelog.sql::3::ann", 3, "CREATE TABLE c (id int);")


def test_id_is_the_key_and_there_is_no_version() -> None:
    assert "changelog.sql::1::ann" == A.id
    assert A.version is None
    assert [A, B] == MigrationSet(listed=[A, B]).all


def test_pending_in_listing_order_not_in_name_or_file_order() -> None:
    """Steps follow `position`, whatever order the set holds them in."""
    plan = make_plan(MigrationSet(listed=[C, A, B]), [], POLICY)
    assert [A.id, B.id, C.id] == [s.migration.id for s in plan.steps]
    assert {Reason.PENDING} == {s.reason for s in plan.steps}
    assert [A.id, B.id, C.id] == [e.migration_id for e in plan.entries]
    assert not plan.problems


def test_applied_are_not_planned_and_a_gap_is_not_out_of_order() -> None:
    """A pending change listed before applied ones runs: changelog tools run every unrecorded change."""
    plan = make_plan(MigrationSet(listed=[A, B, C]), [row(A), row(C)], POLICY)
    assert [B.id] == [s.migration.id for s in plan.steps]
    assert not plan.problems
    assert ["applied", "pending", "applied"] == [e.state for e in plan.entries]


def test_fully_applied_is_clean() -> None:
    plan = make_plan(MigrationSet(listed=[A, B]), [row(A), row(B)], POLICY)
    assert plan.clean


def test_changed_never_rerun_is_drift() -> None:
    plan = make_plan(MigrationSet(listed=[A, B]), [row(A, checksum="sha256:old"), row(B)], POLICY)
    assert not plan.steps
    assert ["drift"] == [p.kind for p in plan.problems]
    assert A.id in plan.problems[0].message and "sha256:old" in plan.problems[0].message
    assert "changed" == plan.entries[0].state


def test_valid_checksum_covers_the_recorded_one() -> None:
    for valid in (("sha256:old",), ("any",), (" ANY ",)):
        migration = listed(A.id, 1, A.up_sql, valid_checksums=valid)
        plan = make_plan(MigrationSet(listed=[migration]), [row(A, checksum="sha256:old")], POLICY)
        assert plan.clean, valid
    other = listed(A.id, 1, A.up_sql, valid_checksums=("sha256:other",))
    assert ["drift"] == [p.kind for p in make_plan(MigrationSet(listed=[other]),
                                                   [row(A, checksum="sha256:old")], POLICY).problems]


def test_on_change_reapplied_when_changed_only() -> None:
    migration = listed(A.id, 1, A.up_sql, rerun="on_change")
    assert make_plan(MigrationSet(listed=[migration]), [row(migration)], POLICY).clean
    plan = make_plan(MigrationSet(listed=[migration]), [row(migration, checksum="sha256:old")], POLICY)
    assert [(migration.id, Reason.CHANGED)] == [(s.migration.id, s.reason) for s in plan.steps]
    assert plan.steps[0].row is not None  # the row is rewritten, not inserted again
    assert not plan.problems


def test_always_reapplied_every_run() -> None:
    migration = listed(A.id, 1, A.up_sql, rerun="always")
    plan = make_plan(MigrationSet(listed=[migration, B]), [row(migration), row(B)], POLICY)
    assert [(migration.id, Reason.ALWAYS)] == [(s.migration.id, s.reason) for s in plan.steps]
    assert plan.steps[0].row is not None
    # once applied it is current: check, wait and status do not wait for it
    assert [] == plan.outstanding and "applied" == plan.entries[0].state
    assert [Reason.PENDING] == [s.reason for s in make_plan(MigrationSet(listed=[migration]), [], POLICY).outstanding]
    changed = make_plan(MigrationSet(listed=[migration]), [row(migration, checksum="sha256:old")], POLICY)
    assert [Reason.CHANGED] == [s.reason for s in changed.steps]
    assert not changed.problems


def test_skipped_is_neither_run_nor_a_problem() -> None:
    skipped = listed(B.id, 2, B.up_sql, skip_reason="dbms mysql")
    plan = make_plan(MigrationSet(listed=[A, skipped, C]), [], POLICY)
    assert [A.id, C.id] == [s.migration.id for s in plan.steps]
    entry = plan.entries[1]
    assert ("skipped", "dbms mysql") == (entry.state, entry.detail)
    assert not plan.problems
    # applied earlier (another filter), now filtered out: stays applied, nothing to do
    assert make_plan(MigrationSet(listed=[skipped]), [row(skipped)], POLICY).clean


def test_history_key_not_in_folder_is_missing_like_a_versioned_row() -> None:
    gone = listed("changelog.sql::0::old", 0)
    plan = make_plan(MigrationSet(listed=[A]), [row(gone), row(A)], POLICY)
    assert ["missing"] == [w.kind for w in plan.warnings]
    assert not plan.problems
    strict = make_plan(MigrationSet(listed=[A]), [row(gone), row(A)], Policy("postgresql", strict=True))
    assert ["missing"] == [p.kind for p in strict.problems]


def test_failed_row_is_a_failed_problem() -> None:
    plan = plan_for(MigrationSet(listed=[A]), [row(A, state="failed", statement_started=1, statements_total=1)],
                    POLICY)
    assert ["failed"] == [p.kind for p in plan.problems]
    assert "changelog.sql (changelog.sql::1::ann)" in plan.problems[0].message
    assert not plan.steps


def test_interrupted_row_resumes() -> None:
    two = listed(A.id, 1, "CREATE TABLE a (id int); CREATE TABLE b (id int);")
    from premigrate.model.history import digests
    from premigrate.model.sql import split_statements

    hashes = digests(split_statements(two.up_sql, "postgresql"))[:1]
    plan = plan_for(MigrationSet(listed=[two]), [row(two, state="in_progress", statements_done=1,
                                                     statement_started=1, statements_total=2,
                                                     statement_hashes=hashes)], POLICY)
    assert [Reason.RESUME] == [s.reason for s in plan.steps]


def test_history_key_fits_the_column_and_stays_unique() -> None:
    short = "db/changelog.sql::1::ann"
    assert short == history_key(short)
    long_a, long_b = "x/" * 120 + "a.sql::1::ann", "x/" * 120 + "b.sql::1::ann"
    assert len(history_key(long_a)) == KEY_MAX
    assert history_key(long_a) != history_key(long_b)
    assert history_key(long_a) == history_key(long_a)
    assert history_key(long_a).startswith("x/x/")
