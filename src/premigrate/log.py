"""Logging: the only structlog.configure call. Events go to stderr; stdout is left to command output."""

from __future__ import annotations

import sys
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import quote

import structlog

from premigrate.dsn import REDACTED

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class SecretScrubber:
    """Replaces every known secret (and its URL-encoded form) in every string of an event, nested values too.

    Drivers can echo connection details in their messages; this is the last line of defence, so a password never
    reaches a log line whatever a library puts in an error.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        variants = set()
        for secret in secrets:
            if secret:
                variants.update({secret, quote(secret, safe=""), quote(secret)})
        # Longest first, so that a secret containing another is replaced whole.
        self.secrets = sorted(variants, key=len, reverse=True)

    def scrub(self, value: Any) -> Any:
        if not self.secrets:
            return value
        if isinstance(value, str):
            for secret in self.secrets:
                if secret in value:
                    value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        return value

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        return {k: self.scrub(v) for k, v in event.items()}


def configure(*, log_format: str = "json", level: str = "info", secrets: Iterable[str] = ()) -> None:
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.format_exc_info,
        SecretScrubber(secrets),
    ]
    if log_format == "console":
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    else:
        processors.append(structlog.processors.JSONRenderer(default=str))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, 20)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger() -> Any:
    return structlog.get_logger()
