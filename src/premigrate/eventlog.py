"""The logger every layer takes: structlog's bound logger, as far as premigrate uses it.

A Protocol rather than structlog's own type, so that tests pass a recording stand-in and no module needs structlog
to type its `log` parameter.
"""

from __future__ import annotations

from typing import Any, Protocol


class EventLog(Protocol):
    """One structured event per call: the event name, then its fields."""

    def debug(self, event: str, **fields: Any) -> Any: ...
    def info(self, event: str, **fields: Any) -> Any: ...
    def warning(self, event: str, **fields: Any) -> Any: ...
    def error(self, event: str, **fields: Any) -> Any: ...
    def log(self, level: int, event: str, **fields: Any) -> Any:
        """An event at a numeric level (logging.INFO, logging.ERROR): the run summary's level depends on its exit."""
