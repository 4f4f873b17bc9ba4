"""Fleets: the list of targets one run migrates, how a Kubernetes Indexed Job splits it, and how outcomes add up.

Pure: no I/O. The engine reads the list (a file, stdin or a query), hands the text or rows here, runs each target
with the same folder, and reports through FleetSummary.

A target is one database URL, or `schema=NAME` (PostgreSQL) / `database=NAME` (MySQL/MariaDB) on the configured
server. Each target keeps its own history table and runner lock, so two fleets over the same targets (two pods of a
badly sized Job) still apply each migration exactly once per target: the second runner of a target waits for the
first one's lock and then finds nothing to do.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from premigrate.errors import UsageError
from premigrate.model.dsn import Dsn, parse_url


class TargetKind(StrEnum):
    URL = "url"
    SCHEMA = "schema"
    DATABASE = "database"


@dataclass(frozen=True)
class Target:
    """One target of a fleet: a database URL, or a schema or database on the configured server."""
    kind: TargetKind
    value: str = field(repr=False)  # the URL (may hold a password) or the schema/database name
    name: str  # what logs and summaries show: never a password
    line: int = 0  # where the list said it: its line, or the query's row (1-based)

    @property
    def dsn(self) -> Dsn | None:
        """The target's own URL, parsed; None for a schema or database on the configured server."""
        if self.kind is not TargetKind.URL:
            return None
        return parse_url(self.value, source=f"target on line {self.line}")


# Names a schema/database target may have: what can be written as a quoted identifier, without control characters
# (a newline would break log lines and status tables) and without the quote characters. Up to 64 characters, MySQL's
# and MariaDB's limit; PostgreSQL's (63 bytes) is checked against the configured server (commands/fleet.py).
_NAME = re.compile(r"[^\x00-\x1f\x7f\"`]{1,64}\Z")
_TRAILING_COMMENT = re.compile(r"\s#")
_ASSIGNMENT = re.compile(r"(?P<key>[A-Za-z_]+)\s*=\s*(?P<value>.*)\Z")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def parse_targets(text: str, *, source: str) -> list[Target]:
    """The targets of a list: one per line; blank lines and `#` comments are ignored; duplicates are refused."""
    targets: list[Target] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        _add(targets, seen, _parse_line(line, number, source), f"{source} line {number}", "line")
    return targets


def targets_from_rows(rows: Iterable[Sequence[object]], *, kind: TargetKind, source: str) -> list[Target]:
    """Targets from a query's rows (`--targets-query`): the first column of each row names a schema or database,
    taken as it is (a name is not a line of a list: no trimming, no comments); a binary column is read as UTF-8.
    Anything else is refused rather than turned into a name: a NULL (a tenant nobody would migrate, silently), a
    number, a date or an array (whose Python text would name a schema nobody meant)."""
    targets: list[Target] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        where = f"{source} row {number}"
        value = row[0] if row else None
        if value is None:
            raise UsageError(f"{where}: the name is NULL; leave such rows out in the query (WHERE ... IS NOT NULL) "
                             "if they are not targets")
        if isinstance(value, (bytes, bytearray, memoryview)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError(f"{where}: the name is not UTF-8 text; select it as text") from None
        if not isinstance(value, str):
            raise UsageError(f"{where}: the name is a {type(value).__name__}, not text; select it as text (CAST "
                             "... AS text on PostgreSQL, CAST ... AS CHAR on MySQL) if it is meant as a name")
        _add(targets, seen, _named(kind, value, where, number), where, "row")
    return targets


def _add(targets: list[Target], seen: dict[str, int], target: Target, where: str, unit: str) -> None:
    if target.name in seen:
        raise UsageError(f"{where}: target {target.name!r} is already on {unit} {seen[target.name]}; list each "
                         "target once")
    seen[target.name] = target.line
    targets.append(target)


def _parse_line(line: str, number: int, source: str) -> Target:
    where = f"{source} line {number}"
    if _URL.match(line):
        dsn = parse_url(line, source=where)
        return Target(TargetKind.URL, line, dsn.redacted(), number)
    assignment = _ASSIGNMENT.match(line)
    if not assignment or assignment["key"].lower() not in (TargetKind.SCHEMA.value, TargetKind.DATABASE.value):
        raise UsageError(f"{where}: expected a database URL, schema=NAME or database=NAME, got {_shown(line)}")
    return _named(TargetKind(assignment["key"].lower()), assignment["value"].strip(), where, number)


def _named(kind: TargetKind, name: str, where: str, number: int) -> Target:
    if not _NAME.match(name):
        raise UsageError(f"{where}: {kind.value} name {_shown(name)} must be 1-64 characters, without control "
                         "characters, double quotes or backticks")
    if "%" in name:
        # premigrate's SQL carries the schema in its text beside %s placeholders; --schema refuses it too.
        raise UsageError(f"{where}: {kind.value} name {_shown(name)} holds a '%', which premigrate does not take in "
                         "schema or database names")
    if _TRAILING_COMMENT.search(name):
        raise UsageError(f"{where}: {kind.value} name {_shown(name)} ends in what looks like a comment; a comment "
                         "takes a line of its own, starting with #")
    return Target(kind, name, f"{kind.value}={name}", number)


def _shown(text: str) -> str:
    # A line that is not a target may still be a URL with a typo: never echo what could be a password.
    return repr(text if "@" not in text and "password" not in text.lower() else "<hidden: it may hold a password>")


# -- shards ------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Shard:
    """This run's slice of a fleet: index of count."""
    index: int  # 0-based, as Kubernetes' JOB_COMPLETION_INDEX
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def takes(self, target: Target) -> bool:
        return shard_of(target.name, self.count) == self.index


# Rendezvous hashing weighs every shard for each target: N hashes per target. 10,000 pods of one Job is beyond any
# fleet's size, and keeps a typo (an extra digit or ten) from spinning a pod silently.
MAX_SHARDS = 10_000


def parse_shard(text: str, *, source: str) -> Shard:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match:
        raise UsageError(f"{source}: expected I/N, whole numbers with 0 <= I < N (shard I of N, I counted from 0 "
                         f"like JOB_COMPLETION_INDEX), got {text!r}")
    index, count = int(match[1]), int(match[2])
    if count > MAX_SHARDS:
        raise UsageError(f"{source}: {count} shards is more than {MAX_SHARDS}; each target is placed by weighing "
                         "every shard, so give the Job's completions (at most that many pods)")
    if count < 1 or index >= count:
        raise UsageError(f"{source}: shard {index}/{count} does not exist; use 0/{max(count, 1)} to "
                         f"{max(count, 1) - 1}/{max(count, 1)}")
    return Shard(index, count)


def shard_from_environment(env: Mapping[str, str]) -> Shard | None:
    """PREMIGRATE_SHARD, or a Kubernetes Indexed Job's JOB_COMPLETION_INDEX with PREMIGRATE_SHARDS; else None."""
    if env.get("PREMIGRATE_SHARD"):
        return parse_shard(env["PREMIGRATE_SHARD"], source="PREMIGRATE_SHARD")
    index = env.get("JOB_COMPLETION_INDEX")
    if index is None:
        if env.get("PREMIGRATE_SHARDS"):
            # A Job whose completionMode is not Indexed: every pod would run the whole list.
            raise UsageError("PREMIGRATE_SHARDS is set but JOB_COMPLETION_INDEX is not: run the Job with "
                             "completionMode: Indexed (Kubernetes sets JOB_COMPLETION_INDEX in each pod), or give "
                             "--shard I/N")
        return None
    shards = env.get("PREMIGRATE_SHARDS")
    if not shards:
        raise UsageError("JOB_COMPLETION_INDEX is set but PREMIGRATE_SHARDS is not: set it to the Job's completions "
                         "so every pod takes its own slice of the targets")
    return parse_shard(f"{index}/{shards}", source="JOB_COMPLETION_INDEX/PREMIGRATE_SHARDS")


def shard_of(name: str, count: int) -> int:
    """The shard that owns a target: rendezvous (highest random weight) hashing over the shard numbers.

    Each target is placed by its own name alone, so adding or removing a target moves no other target; changing the
    number of shards moves only about 1/N of them (those whose best shard changed), which plain `hash % N` would not.
    sha256, not hash(): the answer must be the same in every pod and every Python process.
    """
    def weight(shard: int) -> bytes:
        return hashlib.sha256(f"{shard}\x00{name}".encode()).digest()

    return max(range(count), key=weight)


def select(targets: Sequence[Target], shard: Shard | None) -> list[Target]:
    return list(targets) if shard is None else [t for t in targets if shard.takes(t)]


# -- outcomes ----------------------------------------------------------------------------------------------------------

# The fleet exits with its most severe target's code. Most severe first: a bug; a migration that failed (a database
# now needs attention); files refused (drift, a failed or in-doubt earlier run); a bad setting; a server that never
# answered; a lock held by another runner; work pending (check); success. A signal outranks them all: the run was
# stopped, so the fleet is not where the folder says.
# A lost runner lock (8) right after a bug: the target stopped mid-run because something ended its lock's session
# or took its lease, which the operator must look into before anything else.
SEVERITY = (1, 8, 4, 5, 2, 3, 6, 7, 0)


def severity_rank(code: int) -> int:
    if code >= 128:
        return -1
    return SEVERITY.index(code) if code in SEVERITY else 0


def most_severe(codes: Iterable[int]) -> int:
    return min(codes, key=severity_rank, default=0)


OUTCOMES = {0: "succeeded", 1: "internal_error", 2: "usage_error", 3: "unavailable", 4: "migration_failed",
            5: "refused", 6: "lock_timeout", 7: "pending", 8: "lock_lost"}


def outcome_name(code: int) -> str:
    return "interrupted" if code >= 128 else OUTCOMES.get(code, f"exit_{code}")


@dataclass(frozen=True)
class TargetResult:
    """How one fleet target ended."""
    target: str
    exit_code: int
    applied: int = 0
    message: str | None = None  # the error's one line, already scrubbed by the log's scrubber
    duration_ms: int = 0
    rows_affected: int = 0  # over the migrations it applied (the run summary's rows_affected, summed)
    statements_began: bool = False  # it started running migration statements (what a signal's note tells)


@dataclass
class FleetSummary:
    """The fleet's results so far, per target and in total."""
    total: int
    results: list[TargetResult] = field(default_factory=list)

    def add(self, result: TargetResult) -> None:
        self.results.append(result)

    @property
    def exit_code(self) -> int:
        return most_severe(r.exit_code for r in self.results)

    @property
    def not_started(self) -> int:
        return self.total - len(self.results)

    def counts(self) -> dict[str, int]:
        counted = Counter(outcome_name(r.exit_code) for r in self.results)
        if self.not_started:
            counted["not_started"] = self.not_started
        return dict(sorted(counted.items()))

    def as_dict(self) -> dict[str, object]:
        # The most severe first (then by name): where the list is cut short (the termination message), the targets
        # that set the exit code stay in it.
        failed = sorted((r for r in self.results if r.exit_code not in (0, 7)),
                        key=lambda r: (severity_rank(r.exit_code), r.target))
        return {
            "targets": self.total,
            "outcomes": self.counts(),
            "applied": sum(r.applied for r in self.results),
            "exit_code": self.exit_code,
            "failed": [{"target": r.target, "exit_code": r.exit_code, "outcome": outcome_name(r.exit_code),
                        "error": r.message} for r in failed],
        }


@dataclass(frozen=True)
class Progress:
    """A fleet_progress event's figures."""
    done: int
    failed: int
    remaining: int
    rate_per_s: float
    eta_s: float | None

    def line(self, *, stopping: bool = False) -> str:
        """The live line at a terminal: the `fleet_progress` figures in words."""
        rate = f"{self.rate_per_s:.2f}/s"
        tail = "stopping: waiting for the running targets" if stopping else f"ETA {_clock(self.eta_s)}"
        return (f"fleet: {self.done} done, {self.failed} failed, {self.remaining} remaining, {rate}, {tail}")


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def progress(summary: FleetSummary, elapsed_s: float) -> Progress:
    """The `fleet_progress` event's figures: targets finished, failed, left, the rate so far and the time to go."""
    done = len(summary.results)
    failed = sum(1 for r in summary.results if r.exit_code not in (0, 7))
    remaining = summary.total - done
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    eta = remaining / rate if rate > 0 else None
    return Progress(done, failed, remaining, round(rate, 2), None if eta is None else math.ceil(eta))
