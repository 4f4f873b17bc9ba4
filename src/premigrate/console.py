"""The console log format: one short, aligned line per event for a person at a terminal.

JSON stays the format for machines (every field, unchanged). Here each event shows its essentials: a time, the level,
the event name, then the few fields that say what happened, and a message (an error, a hint, a note) last. At
`--log-level debug` every field is shown. Colours only when asked for (the CLI decides: a terminal, and NO_COLOR
unset).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

_RESET = "\x1b[0m"
_LEVEL_COLOURS = {"debug": "\x1b[2m", "info": "\x1b[32m", "warning": "\x1b[33m", "error": "\x1b[31;1m"}
_LABELS = {"warning": "warn"}  # five columns for every level
_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
EVENT_WIDTH = 22
VALUE_LIMIT = 48  # a field value longer than this is cut (messages and _WHOLE fields are not)
# What names a thing the reader may need to copy: never cut.
_WHOLE = frozenset({"database", "dir", "script", "path", "table"})

# Fields never shown on the console line: the line itself carries them, or they repeat what the event says.
_ALWAYS_HIDDEN = frozenset({"event", "level", "timestamp"})
# Free text, shown after the fields without a key.
_MESSAGES = ("error", "hint", "note")
# The essentials of the frequent events; an event not listed shows all its fields.
ESSENTIALS: dict[str, tuple[str, ...]] = {
    "config_loaded": ("command", "database", "dir"),
    "database_ready": ("server", "waited_ms"),
    "migration_started": ("version", "script", "transaction", "statements"),
    "migration_applied": ("version", "script", "duration_ms"),
    "migration_resumed": ("version", "script", "from_statement"),
    "rollback_started": ("version", "script", "transaction"),
    "rolled_back": ("version", "script", "duration_ms"),
    "lock_acquired": ("waited_ms",),
    "lock_released": (),
    "lock_waiting": ("holder", "waited_ms"),
    "plan": ("pending", "versions"),
    "pending": ("pending", "versions"),
    "wait_retrying": ("attempt", "reason", "waited_ms"),
    "summary": ("command", "applied", "rolled_back", "exit_code", "duration_ms"),
    "error": ("exit_code",),
    "interrupted": ("signal", "exit_code"),
    "check_waiting": ("pending", "problems", "reachable"),
    "migration_progress": ("migration", "migrations", "version", "statement", "statements", "elapsed_s", "sql"),
}


def short_transaction(value: object) -> object:
    """The mode's name, without its explanation: `per-migration (statements and history row ...)` -> per-migration."""
    if not isinstance(value, str):
        return value
    if value.startswith("as written"):
        return "as-written"
    return value.split(" ", 1)[0]


def _text(value: object, whole: bool = False) -> str:
    if isinstance(value, (list, tuple)):
        text = ",".join(str(v) for v in value)
    elif value is None:
        text = "-"
    else:
        text = str(value)
    if len(text) > VALUE_LIMIT and not whole:
        text = text[:VALUE_LIMIT - 1] + "…"
    return f"'{text}'" if " " in text else text


class ConsoleLines:
    """A structlog renderer: the event dictionary to one line of text."""

    def __init__(self, *, colours: bool, verbose: bool) -> None:
        self.colours = colours
        self.verbose = verbose

    def _paint(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.colours else text

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
        name = str(event.get("event", ""))
        level = str(event.get("level", method))
        stamp = str(event.get("timestamp", ""))
        clock = stamp[11:19] if len(stamp) >= 19 else stamp
        keys = [k for k in event if k not in _ALWAYS_HIDDEN and k not in _MESSAGES]
        if not self.verbose and name in ESSENTIALS:
            keys = [k for k in ESSENTIALS[name] if k in event]
        fields = []
        for key in keys:
            value = short_transaction(event[key]) if key == "transaction" else event[key]
            if key == "exception":
                continue
            text = _text(value, whole=key in _WHOLE)
            fields.append(f"{self._paint(_DIM, key + '=')}{text}")
        messages = [str(event[k]) for k in _MESSAGES if event.get(k)]
        label = f"{_LABELS.get(level, level):<5}"
        parts = [self._paint(_DIM, clock), self._paint(_LEVEL_COLOURS.get(level, ""), label),
                 self._paint(_BOLD, f"{name:<{EVENT_WIDTH}}")]
        line = " ".join(parts) + " " + " ".join(fields)
        if messages:
            line = line.rstrip() + "  " + " — ".join(messages)  # rstrip took the event name's padding too
        if event.get("exception"):
            line += "\n" + str(event["exception"])
        return line.rstrip()
