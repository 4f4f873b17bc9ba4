"""Fleets, the pure part: target lists, shards of an Indexed Job, and how the targets' outcomes add up."""

from __future__ import annotations

import pytest

from premigrate.errors import UsageError
from premigrate.model.fleet import (
    FleetSummary,
    Shard,
    TargetKind,
    TargetResult,
    most_severe,
    outcome_name,
    parse_shard,
    parse_targets,
    progress,
    select,
    shard_from_environment,
    shard_of,
    targets_from_rows,
)

pytestmark = pytest.mark.unit


class TestParseTargets:
    def test_reads_urls_schemas_and_databases_skipping_blanks_and_comments(self) -> None:
        """Each non-blank, non-comment line is one target, in the list's order."""
        text = ("# tenants\n\nschema=tenant_a\n  database = shop_b  \n"
                "postgresql://app@db.internal:5432/c\n   # indented comment\n")
        targets = parse_targets(text, source="targets.txt")
        assert [(TargetKind.SCHEMA, "tenant_a", 3), (TargetKind.DATABASE, "shop_b", 4),
                (TargetKind.URL, "postgresql://app@db.internal:5432/c", 5)] == [
            (t.kind, t.value, t.line) for t in targets]

    def test_a_password_in_a_url_never_reaches_the_name(self) -> None:
        """Logs and summaries show a target by its name, which hides the URL's password."""
        (target,) = parse_targets("postgresql://app:s3cret@db:5432/c\n", source="targets.txt")
        assert "s3cret" not in target.name and "s3cret" not in repr(target)
        assert target.dsn is not None and "s3cret" == target.dsn.password

    @pytest.mark.parametrize("line", [
        pytest.param("tenant_a", id="bare-name"),
        pytest.param("table=x", id="unknown-key"),
        pytest.param("schema=", id="empty-name"),
        pytest.param('schema=a"b', id="quote"),
        pytest.param("schema=" + "x" * 65, id="too-long"),
    ])
    def test_refuses_a_line_that_is_not_a_target(self, line: str) -> None:
        """A line premigrate cannot read is a usage error naming the list and the line, never skipped."""
        with pytest.raises(UsageError, match=r"^targets\.txt line 2: "):
            parse_targets(f"schema=ok\n{line}\n", source="targets.txt")

    def test_does_not_echo_what_may_be_a_password(self) -> None:
        """A broken line with an @ in it is not repeated in the error: it may be a URL with a password."""
        with pytest.raises(UsageError) as caught:
            parse_targets("app:hunter2@db/c\n", source="targets.txt")
        assert "hunter2" not in str(caught.value)

    def test_refuses_a_duplicate(self) -> None:
        """A target listed twice would be migrated by two workers at once: refused, naming both lines."""
        with pytest.raises(UsageError, match="already on line 1"):
            parse_targets("schema=a\nschema=b\nschema=a\n", source="t")

    def test_rows_of_a_query_become_targets(self) -> None:
        """`--targets-query` rows name schemas (or databases)."""
        targets = targets_from_rows([("t1",), ("t2",)], kind=TargetKind.SCHEMA, source="--targets-query")
        assert ["schema=t1", "schema=t2"] == [t.name for t in targets]

    @pytest.mark.parametrize(("value", "error"), [
        pytest.param(None, "row 2: the name is NULL", id="null"),
        pytest.param(42, "row 2: the name is a int, not text", id="number"),
        pytest.param(["t9"], "row 2: the name is a list, not text", id="array"),
    ])
    def test_a_name_that_is_not_text_is_refused(self, value: object, error: str) -> None:
        """A NULL would leave a tenant unmigrated without a word; a number, a date or an array would name a schema
        after its Python text."""
        with pytest.raises(UsageError, match=error):
            targets_from_rows([("t1",), (value,)], kind=TargetKind.SCHEMA, source="--targets-query")

    def test_query_names_taken_as_they_are(self) -> None:
        """A binary column's value is its UTF-8 text, not b'...'; a name is not trimmed, and `#` starts no comment;
        64 characters (MySQL's limit) is a name."""
        long = "d" * 64
        rows = [(b"shop_1",), (bytearray(b"shop_2"),), (" spaced",), ("#hash",), (long,)]
        targets = targets_from_rows(rows, kind=TargetKind.DATABASE, source="--targets-query")
        assert ["shop_1", "shop_2", " spaced", "#hash", long] == [t.value for t in targets]

    @pytest.mark.parametrize(("line", "error"), [
        pytest.param("schema=pct%x", "holds a '%'", id="percent"),
        pytest.param("database=shop%%", "holds a '%'", id="percents"),
        pytest.param("schema=t1   # tenant one", "looks like a comment", id="trailing-comment"),
    ])
    def test_refuses_names_premigrate_cannot_take(self, line: str, error: str) -> None:
        """A '%' (premigrate's SQL carries the schema beside %s placeholders) and a comment at the end of a line
        are refused with the list, not met half-way through the run."""
        with pytest.raises(UsageError, match=error):
            parse_targets(line, source="t.txt")
        name = line.split("=", 1)[1]
        with pytest.raises(UsageError, match=error):
            targets_from_rows([(name,)], kind=TargetKind.SCHEMA, source="--targets-query")

    def test_query_refuses_what_is_not_a_name(self) -> None:
        """A row that repeats another, or bytes that are not UTF-8, is a usage error naming the row."""
        with pytest.raises(UsageError, match="row 2: target 'schema=t1' is already on row 1"):
            targets_from_rows([("t1",), ("t1",)], kind=TargetKind.SCHEMA, source="--targets-query")
        with pytest.raises(UsageError, match="row 1: the name is not UTF-8"):
            targets_from_rows([(b"\xff",)], kind=TargetKind.SCHEMA, source="--targets-query")


class TestShards:
    def test_shards_are_disjoint_and_cover_every_target(self) -> None:
        """Every target lands in exactly one of N shards."""
        targets = parse_targets("\n".join(f"schema=t{i}" for i in range(500)), source="t")
        slices = [select(targets, Shard(i, 4)) for i in range(4)]
        names = [t.name for part in slices for t in part]
        assert sorted(names) == sorted(t.name for t in targets)
        assert all(len(part) > 60 for part in slices)  # roughly balanced: 125 expected each

    def test_adding_a_target_moves_no_other(self) -> None:
        """A target's shard depends on its own name only."""
        before = {f"t{i}": shard_of(f"t{i}", 8) for i in range(300)}
        after = {name: shard_of(name, 8) for name in [*before, "new-tenant"]}
        assert before == {name: after[name] for name in before}

    def test_one_more_shard_moves_only_about_one_in_n(self) -> None:
        """Going from 4 to 5 shards moves about a fifth of the targets, not most of them (as hash % N would)."""
        moved = sum(shard_of(f"t{i}", 4) != shard_of(f"t{i}", 5) for i in range(2000))
        assert 250 < moved < 550

    def test_is_the_same_in_every_process(self) -> None:
        """The placement is fixed by sha256, not by Python's per-process hash seed."""
        assert [1, 2, 2] == [shard_of(name, 4) for name in ("schema=a", "schema=b", "schema=c")]

    @pytest.mark.parametrize(("text", "expected"), [("0/4", Shard(0, 4)), (" 3 / 4 ", Shard(3, 4))])
    def test_parses_a_shard(self, text: str, expected: Shard) -> None:
        """`--shard I/N` counts I from 0, like JOB_COMPLETION_INDEX."""
        assert expected == parse_shard(text, source="--shard")

    @pytest.mark.parametrize("text", ["4/4", "1/0", "a/b", "1", "-1/3", "0/10001", "0/99999999999999999999"])
    def test_refuses_a_shard_that_does_not_exist(self, text: str) -> None:
        """A shard outside 0..N-1 is a usage error, not an empty slice that would exit 0 having done nothing."""
        with pytest.raises(UsageError, match="--shard"):
            parse_shard(text, source="--shard")

    def test_reads_an_indexed_job(self) -> None:
        """JOB_COMPLETION_INDEX with PREMIGRATE_SHARDS picks the pod's shard; PREMIGRATE_SHARD wins over them."""
        assert Shard(2, 5) == shard_from_environment({"JOB_COMPLETION_INDEX": "2", "PREMIGRATE_SHARDS": "5"})
        assert Shard(1, 3) == shard_from_environment({"PREMIGRATE_SHARD": "1/3", "JOB_COMPLETION_INDEX": "2"})
        assert shard_from_environment({}) is None

    def test_an_indexed_job_without_its_shard_count_is_refused(self) -> None:
        """Without PREMIGRATE_SHARDS every pod would take every target: refused with the fix."""
        with pytest.raises(UsageError, match="PREMIGRATE_SHARDS"):
            shard_from_environment({"JOB_COMPLETION_INDEX": "0"})

    def test_a_shard_count_without_an_indexed_job_is_refused(self) -> None:
        """PREMIGRATE_SHARDS without JOB_COMPLETION_INDEX: a Job that is not Indexed, whose every pod would take
        every target."""
        with pytest.raises(UsageError, match="completionMode: Indexed"):
            shard_from_environment({"PREMIGRATE_SHARDS": "4"})

    def test_the_summary_error_counts_the_targets_not_started(self) -> None:
        """After --fail-fast or a signal, the targets never started did not finish either."""
        from premigrate.cli.summary import _fleet_error

        fleet = {"targets": 4, "outcomes": {"migration_failed": 1, "not_started": 3},
                 "failed": [{"target": "schema=a", "exit_code": 4}]}
        assert _fleet_error(fleet).startswith("4 of 4 targets did not finish")
        assert "3 were not started" in _fleet_error(fleet)


class TestOutcomes:
    @pytest.mark.parametrize(("codes", "expected"), [
        pytest.param([0, 0], 0, id="all-good"),
        pytest.param([0, 7, 0], 7, id="pending"),
        pytest.param([3, 4, 0], 4, id="failure-over-unavailable"),
        pytest.param([5, 3], 5, id="refusal-over-unavailable"),
        pytest.param([6, 3], 3, id="unavailable-over-lock"),
        pytest.param([4, 1], 1, id="bug-first"),
        pytest.param([1, 143], 143, id="signal-first"),
        pytest.param([4, 8, 5], 8, id="lost-lock-over-failure"),
        pytest.param([8, 1], 1, id="bug-over-lost-lock"),
        pytest.param([], 0, id="empty"),
    ])
    def test_the_fleet_exits_with_the_most_severe_code(self, codes: list[int], expected: int) -> None:
        """One failed target makes the fleet fail, with the worst of the codes."""
        assert expected == most_severe(codes)

    def test_every_exit_code_has_an_outcome_name(self) -> None:
        """Each documented exit code (premigrate --help's table) has a name in the summary's outcomes."""
        from premigrate.errors import EXIT_CODES

        codes = [int(code) for code, _ in EXIT_CODES if code.isdigit()]
        assert all(not outcome_name(code).startswith("exit_") for code in codes), [outcome_name(c) for c in codes]
        assert "lock_lost" == outcome_name(8) and "interrupted" == outcome_name(143)

    def test_summary_counts_and_lists_every_failed_target(self) -> None:
        """The summary counts each outcome and lists each failed target with its code and message."""
        summary = FleetSummary(total=5)
        for result in [TargetResult("schema=a", 0, applied=2), TargetResult("schema=c", 4, message="boom"),
                       TargetResult("schema=b", 3, message="down"), TargetResult("schema=d", 0, applied=1)]:
            summary.add(result)
        data = summary.as_dict()
        assert {"migration_failed": 1, "not_started": 1, "succeeded": 2, "unavailable": 1} == data["outcomes"]
        assert 3 == data["applied"] and 4 == data["exit_code"]
        # The most severe first, so that a list cut short to fit keeps the targets that set the exit code.
        assert [("schema=c", 4, "boom"), ("schema=b", 3, "down")] == [
            (f["target"], f["exit_code"], f["error"]) for f in data["failed"]]  # type: ignore[attr-defined]

    def test_progress_reports_rate_and_eta(self) -> None:
        """fleet_progress: done, failed, remaining, targets per second and the seconds still to go."""
        summary = FleetSummary(total=100)
        for i in range(40):
            summary.add(TargetResult(f"schema=t{i}", 4 if i < 2 else 0))
        figures = progress(summary, elapsed_s=20.0)
        assert (40, 2, 60, 2.0, 30) == (figures.done, figures.failed, figures.remaining, figures.rate_per_s,
                                        figures.eta_s)
        assert progress(FleetSummary(total=3), 0.0).eta_s is None

    def test_outcome_names_cover_every_documented_code(self) -> None:
        """Every documented exit code has its own outcome name in the summary's counts; signals are `interrupted`."""
        names = [outcome_name(code) for code in (0, 1, 2, 3, 4, 5, 6, 7)]
        assert len(set(names)) == 8 and not any(name.startswith("exit_") for name in names)
        assert "interrupted" == outcome_name(143) == outcome_name(130)
