"""The duration grammar shared by every flag: `500ms`, `30s`, `5m`, `1h`; a bare number is seconds; 0 is no limit."""

from __future__ import annotations

import re

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*\Z")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
# PostgreSQL's timeouts are milliseconds in a 32-bit integer (lock_timeout, statement_timeout: at most 2147483647 ms,
# about 596 hours); a longer one failed at the server after the run had begun, and a huge one overflowed a thread's
# wait. Every duration is held to it: 0 says "no limit" where that is what is meant.
MAX_SECONDS = 2147483


def parse_duration(text: str) -> float | None:
    """Seconds as a float, or None for `0` (no limit). Raises ValueError on anything else."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration: use e.g. 500ms, 30s, 5m, 1h, a number of seconds, or 0 for "
                         "no limit")
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than premigrate takes: at most {MAX_SECONDS // 3600}h "
                         f"({MAX_SECONDS}s), or 0 for no limit")
    return None if seconds == 0 else seconds


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "0 (no limit)"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    return f"{seconds:g}s"
