"""The end of a run: the one-line summary event, and the summary written for Kubernetes and --summary-file."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from premigrate import __version__
from premigrate.config import OPTIONS_BY_DEST, resolve_option
from premigrate.errors import PremigrateError, UsageError
from premigrate.eventlog import EventLog

if TYPE_CHECKING:
    from premigrate.engine.runstats import RunStats


# Commands that only read: at a terminal they log warnings and errors only, and their summary has no count.
READ_ONLY_COMMANDS = ("status", "check", "plan", "wait", "lint", "new", "serve")


# What a signal stopped, by command: the read-only commands never change anything.
_STOPPED = {
    "wait": "stopped waiting for the database; nothing was changed",
    "serve": "the server stopped; nothing was changed",
    "new": "stopped; no file was created",
}


def interruption_note(command: str, stats: RunStats | None) -> str:
    """What the interrupted run had actually been doing, for the `interrupted` event."""
    if stats is not None and stats.stopped_note:
        return stats.stopped_note
    if command in _STOPPED:
        return _STOPPED[command]
    if command in READ_ONLY_COMMANDS:
        return "stopped; this command is read-only: nothing was changed"
    if stats is not None and stats.statements_began:
        return ("the running statement was stopped, its transaction rolled back (or its row recorded) and the "
                "runner lock released")
    return "stopped before any migration statement ran; nothing was changed (a runner lock held was released)"


def summary_counts(command: str, stats: RunStats | None) -> dict[str, int]:
    """The summary's count: migrations applied (up, repair) or rolled back (down); none for the others."""
    if command in ("up", "repair"):
        return {"applied": stats.applied if stats is not None else 0}
    if command == "down":
        return {"rolled_back": stats.rolled_back if stats is not None else 0}
    return {}


def _summary_targets(command: str, flags: Mapping[str, Any] | None, env: Mapping[str, str]) -> list[str]:
    """Where `up` writes its one-line JSON summary: the termination message file and --summary-file."""
    if command != "up" or flags is None:
        return []
    targets = []
    for dest in ("termination_log", "summary_file"):
        try:
            path = resolve_option(OPTIONS_BY_DEST[dest], flags, env)
        except UsageError:
            continue
        if not path:
            continue
        # The termination log is written only where Kubernetes (or the user) provides it; --summary-file always.
        if dest == "summary_file" or os.access(path, os.W_OK):
            targets.append(path)
    return targets


# Kubernetes keeps at most 4096 bytes of a termination message.
TERMINATION_MESSAGE_BYTES = 4096


def _summary_file(flags: Mapping[str, Any] | None, env: Mapping[str, str]) -> str | None:
    try:
        path = resolve_option(OPTIONS_BY_DEST["summary_file"], flags or {}, env)
    except UsageError:
        return None
    return str(path) if path else None


def fit_termination_message(summary: dict[str, object], fleet: dict[str, object]) -> str:
    """The summary, with the fleet's list of failed targets cut short when the whole would not fit (the counts
    per outcome stay exact; the summary file and stdout keep the whole list)."""
    import json

    every = fleet.get("failed")
    failed = list(every) if isinstance(every, list) else []
    total = len(failed)
    while True:
        shown: dict[str, object] = {**fleet, "failed": failed}
        if len(failed) < total:
            shown["failed_not_shown"] = total - len(failed)
        text = json.dumps({**summary, "fleet": shown})
        if len(text.encode()) < TERMINATION_MESSAGE_BYTES or not failed:
            return text
        failed = failed[: len(failed) // 2]


def _fleet_error(fleet: Mapping[str, object]) -> str:
    failed = fleet.get("failed")
    count = len(failed) if isinstance(failed, list) else 0
    outcomes = fleet.get("outcomes")
    not_started = outcomes.get("not_started", 0) if isinstance(outcomes, Mapping) else 0
    text = f"{count + not_started} of {fleet.get('targets')} targets did not finish; fleet.failed lists each that ran"
    text += " with its exit code and error"
    return text + (f", and {not_started} were not started (the next run takes them)" if not_started else "")


def finish_run(log: EventLog, command: str, code: int, started: float, *, error: PremigrateError | None = None,
            stats: RunStats | None = None, flags: Mapping[str, Any] | None = None,
            env: Mapping[str, str] | None = None, measured: Mapping[str, object] | None = None,
            fleet: dict[str, object] | None = None) -> int:
    if error is not None:
        log.error("error", error=error.message, error_type=type(error).__name__, exit_code=code, **error.fields)
    duration_ms = round((time.monotonic() - started) * 1000)
    for path in _summary_targets(command, flags, env or {}):
        import json

        summary: dict[str, object] = {
            "command": command, "exit_code": code, **summary_counts(command, stats), "duration_ms": duration_ms,
            "premigrate_version": __version__, "error": error.message if error else None, **(measured or {})}
        if fleet is not None:
            summary["fleet"] = fleet
            if error is None and code not in (0, 7):  # the targets' own errors are in fleet.failed
                summary["error"] = _fleet_error(fleet)
        # These files are read past the log (kubectl describe shows the termination message): scrubbed like it, as
        # a server's error may quote the SQL that carried a password or a placeholder's secret.
        from premigrate.log import scrub

        summary = scrub(summary)
        text = json.dumps(summary)
        if fleet is not None and path != _summary_file(flags, env or {}):
            text = fit_termination_message(summary, cast(dict[str, object], summary["fleet"]))  # scrubbed above
        try:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError as exc:
            log.warning("summary_write_failed", path=path, error=exc.strerror)
    log.log(20 if code in (0, 7) else 40, "summary", command=command, **summary_counts(command, stats),
            duration_ms=duration_ms, exit_code=code, **(measured or {}))
    return code
