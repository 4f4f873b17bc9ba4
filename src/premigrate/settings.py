"""The typed sections of the configuration: one frozen value per group of command options, built once by
config.load_config from the resolved options, read by attribute (`config.apply.single_transaction`), never by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from premigrate.model.dsn import Dsn, parse_url
from premigrate.model.versions import Version

if TYPE_CHECKING:  # a single-target run never loads the fleet's model (hashlib and all)
    from premigrate.model.fleet import Shard


@dataclass(frozen=True)
class StatementSettings:
    """How migration statements run (up, plan, down, repair); a file's directives override the first three.
    Durations in seconds; None: no limit (ddl_lock_timeout) or the database's own setting (statement_timeout)."""

    ddl_lock_timeout: float | None = None
    statement_timeout: float | None = None
    lock_retries: int | None = None
    placeholders: bool = False  # --placeholders: ${NAME} is substituted in every file, not only where a file asks


@dataclass(frozen=True)
class FolderSettings:
    """How the migrations folder is read, by every command that reads it."""

    file_format: str = "auto"  # --format: whose rules the folder follows (model/formats/)
    allow_empty: bool = False  # --allow-empty: a folder with no migrations is not a mount at the wrong path
    contexts: tuple[str, ...] = ()  # --contexts: the run's Liquibase contexts
    labels: str | None = None  # --labels: the run's Liquibase label expression
    liquibase_strict: bool = False  # --liquibase-strict: Liquibase's statement splitting only (no dollar-quote fix)


@dataclass(frozen=True)
class LockSettings:
    """The runner lock (up, down, repair, baseline). mode: auto | advisory | table; lease in seconds."""

    mode: str = "auto"
    lease: float = 30.0
    allow_galera_rsu: bool = False


@dataclass(frozen=True)
class ConnectionSettings:
    """Every command that connects: the command that prints a fresh password for each new connection."""

    password_command: str | None = None


@dataclass(frozen=True)
class ApplySettings:
    """up and plan."""

    to: Version | None = None  # stop after this version
    dry_run: bool = False
    single_transaction: bool = False
    baseline_on_empty_history: Version | None = None
    lint: str = "off"  # warn | error | off
    verify: bool = True  # sqitch: run each change's verify script after its deploy (--no-verify: off)


@dataclass(frozen=True)
class DownSettings:
    """`down` options."""
    steps: int | None = None
    to: Version | None = None
    yes: bool = False
    allow_empty_down: bool = False  # --allow-empty-down: an empty down part runs as a no-op and is recorded


@dataclass(frozen=True)
class CheckSettings:
    """`check` options."""
    wait: bool = False  # --wait: poll until the database is current
    timeout: float | None = None  # --timeout in seconds; None: no limit


@dataclass(frozen=True)
class RepairSettings:
    """`repair` options."""
    resume: bool = False
    retry_current: bool = False
    skip_current: bool = False
    version: str | None = None
    mark_applied: str | None = None
    forget: str | None = None
    realign_checksums: bool = False


@dataclass(frozen=True)
class BaselineSettings:
    """`baseline` options."""
    version: Version | None = None
    description: str | None = None
    source: str | None = None  # --from TOOL
    map_file: str | None = None
    from_table: str | None = None  # --from-table [SCHEMA.]TABLE


@dataclass(frozen=True)
class ServeSettings:
    """`serve` options."""
    listen: str = "0.0.0.0:8080"
    expect_tables: tuple[str, ...] = ()
    health_cache: float = 0.0
    unhealthy_after: float = 0.0  # /healthz turns unhealthy after refreshes failed this long (0: never)
    summary_file: str | None = None  # the last up's summary, for /metrics


@dataclass(frozen=True)
class LintSettings:
    """`lint` options."""
    dialect: str | None = None


@dataclass(frozen=True)
class NewSettings:
    """`new` options."""
    description: str = ""
    file_format: str | None = None


@dataclass(frozen=True)
class FleetSettings:
    """up, status and check over many targets (docs/fleet.md). Inactive unless a target list is given."""

    targets: str | None = None  # --targets FILE, `-` for stdin
    targets_query: str | None = None  # --targets-query SQL, run on the configured database
    concurrency: int | None = None  # None: default_concurrency()
    shard: Shard | None = None  # --shard I/N, PREMIGRATE_SHARD, or JOB_COMPLETION_INDEX/PREMIGRATE_SHARDS
    fail_fast: bool = False

    @property
    def active(self) -> bool:
        return self.targets is not None or self.targets_query is not None


def default_concurrency() -> int:
    """A few workers: each mostly waits on its server, but the parsing and logging share one interpreter."""
    import os

    return max(1, min(4, 2 * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class CallbackSettings:
    """up and down: callback scripts (model/callbacks.py)."""

    dir: Path | None = None  # --callbacks DIR, read besides the migrations folder
    always: bool = False  # --callbacks-always: beforeMigrate/afterMigrate also when nothing is pending


@dataclass(frozen=True)
class VerifySettings:
    """`verify` options."""
    scratch: Dsn | None = None  # --scratch-url: the database verify works in (None: a scratch database it creates)
    yes: bool = False


def _exclusive(values: Mapping[str, Any], flags: Mapping[str, Any], dest: str, other: str) -> Any:
    """The value of `dest`, one of two options that exclude each other, unless only the environment gave it and the
    other is on the command line: the flag wins (PREMIGRATE_BASELINE_FROM, set for `up --baseline-from` in the same
    environment, does not turn `baseline --version 5` into a conflict; nor PREMIGRATE_TO, set for a staged `up --to`,
    `down --steps 1`). Both given the same way: both kept, and the command refuses the pair."""
    if flags.get(dest) is None and flags.get(other) is not None:
        return None
    return values.get(dest)


def sections_from(command: str, values: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """The typed sections, from the resolved values of the command's options (absent: the section's default)."""
    value = values.get
    scratch_source = "--scratch-url" if flags.get("scratch_url") is not None else "PREMIGRATE_SCRATCH_URL"
    return {
        "locking": LockSettings(mode=value("lock_mode") or "auto",
                                lease=float(value("lock_lease") or LockSettings.lease),
                                allow_galera_rsu=bool(value("allow_galera_rsu"))),
        "connection": ConnectionSettings(password_command=value("password_command") or None),
        "statements": StatementSettings(ddl_lock_timeout=value("ddl_lock_timeout"),
                                        statement_timeout=value("statement_timeout"),
                                        lock_retries=value("lock_retries"), placeholders=bool(value("placeholders"))),
        "folder": FolderSettings(file_format=value("format") or "auto", allow_empty=bool(value("allow_empty")),
                                 contexts=tuple(c.strip() for c in (value("contexts") or "").split(",") if c.strip()),
                                 labels=value("labels") or None, liquibase_strict=bool(value("liquibase_strict"))),
        "apply": ApplySettings(to=value("to") if command in ("up", "plan") else None, dry_run=bool(value("dry_run")),
                               single_transaction=bool(value("single_transaction")),
                               baseline_on_empty_history=value("baseline_on_empty_history"),
                               lint=value("lint") or "off", verify=not value("no_verify")),
        "down": DownSettings(steps=_exclusive(values, flags, "steps", "to"),
                             to=_exclusive(values, flags, "to", "steps") if command == "down" else None,
                             yes=bool(value("yes")), allow_empty_down=bool(value("allow_empty_down"))),
        "check": CheckSettings(wait=bool(value("check_wait")), timeout=value("check_timeout") or None),
        "repair": RepairSettings(resume=bool(value("repair_resume")), retry_current=bool(value("repair_retry_current")),
                                 skip_current=bool(value("repair_skip_current")), version=value("repair_version"),
                                 mark_applied=value("repair_mark_applied"), forget=value("repair_forget"),
                                 realign_checksums=bool(value("repair_realign_checksums"))),
        "baseline": BaselineSettings(version=_exclusive(values, flags, "baseline_version", "baseline_from"),
                                     description=value("baseline_description"),
                                     source=_exclusive(values, flags, "baseline_from", "baseline_version")
                                     or value("up_baseline_from"),
                                     map_file=value("baseline_map"),
                                     from_table=value("baseline_from_table")),
        # An empty --listen is refused by serve (exit 2), not replaced by the default: only an absent one is.
        "serve": ServeSettings(listen=str(ServeSettings.listen if value("listen") is None else value("listen")),
                               expect_tables=value("expect_tables") or (), health_cache=value("health_cache") or 0.0,
                               unhealthy_after=value("unhealthy_after") or 0.0,
                               summary_file=value("summary_file") if command == "serve" else None),
        "lint": LintSettings(dialect=value("dialect")),
        "verify": VerifySettings(scratch=parse_url(str(value("scratch_url")), source=scratch_source)
                                 if value("scratch_url") else None, yes=bool(value("yes"))),
        "callbacks": CallbackSettings(dir=Path(str(value("callbacks"))) if value("callbacks") else None,
                                      always=bool(value("callbacks_always"))),
        "new": NewSettings(description=flags.get("new_description") or "", file_format=value("format")),
        "fleet": FleetSettings(targets=value("targets") or None, targets_query=value("targets_query") or None,
                               concurrency=value("concurrency"), shard=value("shard"),
                               fail_fast=bool(value("fail_fast"))),
    }
