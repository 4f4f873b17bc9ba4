"""The typed sections of the configuration: one frozen value per group of command options, built once by
config.load_config from the resolved options, read by attribute (`config.apply.single_transaction`), never by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from premigrate.model.versions import Version


@dataclass(frozen=True)
class StatementSettings:
    """How migration statements run (up, plan, down, repair); a file's directives override the first three.
    Durations in seconds; None: no limit (ddl_lock_timeout) or the database's own setting (statement_timeout)."""

    ddl_lock_timeout: float | None = None
    statement_timeout: float | None = None
    lock_retries: int | None = None
    placeholders: bool = False  # --placeholders: ${NAME} is substituted in every file, not only where a file asks


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


@dataclass(frozen=True)
class DownSettings:
    steps: int | None = None
    to: Version | None = None
    yes: bool = False


@dataclass(frozen=True)
class RepairSettings:
    resume: bool = False
    retry_current: bool = False
    skip_current: bool = False
    version: str | None = None
    mark_applied: str | None = None
    forget: str | None = None
    realign_checksums: bool = False


@dataclass(frozen=True)
class BaselineSettings:
    version: Version | None = None
    description: str | None = None
    source: str | None = None  # --from TOOL
    map_file: str | None = None
    from_table: str | None = None  # --from-table [SCHEMA.]TABLE


@dataclass(frozen=True)
class ServeSettings:
    listen: str = "0.0.0.0:8080"
    expect_tables: tuple[str, ...] = ()
    health_cache: float = 0.0


@dataclass(frozen=True)
class LintSettings:
    dialect: str | None = None


@dataclass(frozen=True)
class NewSettings:
    description: str = ""
    file_format: str | None = None


def sections_from(command: str, values: Mapping[str, Any], flags: Mapping[str, Any]) -> dict[str, Any]:
    """The typed sections, from the resolved values of the command's options (absent: the section's default)."""
    value = values.get
    return {
        "locking": LockSettings(mode=value("lock_mode") or "auto",
                                lease=float(value("lock_lease") or LockSettings.lease),
                                allow_galera_rsu=bool(value("allow_galera_rsu"))),
        "connection": ConnectionSettings(password_command=value("password_command") or None),
        "statements": StatementSettings(ddl_lock_timeout=value("ddl_lock_timeout"),
                                        statement_timeout=value("statement_timeout"),
                                        lock_retries=value("lock_retries"), placeholders=bool(value("placeholders"))),
        "apply": ApplySettings(to=value("to") if command in ("up", "plan") else None, dry_run=bool(value("dry_run")),
                               single_transaction=bool(value("single_transaction")),
                               baseline_on_empty_history=value("baseline_on_empty_history"),
                               lint=value("lint") or "off"),
        "down": DownSettings(steps=value("steps"), to=value("to") if command == "down" else None,
                             yes=bool(value("yes"))),
        "repair": RepairSettings(resume=bool(value("repair_resume")), retry_current=bool(value("repair_retry_current")),
                                 skip_current=bool(value("repair_skip_current")), version=value("repair_version"),
                                 mark_applied=value("repair_mark_applied"), forget=value("repair_forget"),
                                 realign_checksums=bool(value("repair_realign_checksums"))),
        "baseline": BaselineSettings(version=value("baseline_version"), description=value("baseline_description"),
                                     source=value("baseline_from"), map_file=value("baseline_map"),
                                     from_table=value("baseline_from_table")),
        "serve": ServeSettings(listen=value("listen") or ServeSettings.listen,
                               expect_tables=value("expect_tables") or (), health_cache=value("health_cache") or 0.0),
        "lint": LintSettings(dialect=value("dialect")),
        "new": NewSettings(description=flags.get("new_description") or "", file_format=value("format")),
    }
