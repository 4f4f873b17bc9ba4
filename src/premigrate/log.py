"""Logging: the only structlog.configure call. Events go to stderr; stdout is left to command output.

Start-up cost matters here: `up` runs on every pod start, and `import structlog` whole is a large share of a
no-op run (bench/bench.py measures it), most of it for parts premigrate never uses. Only the submodules behind
configure, the processors and the two renderers are loaded (see _load_structlog); the rest of the package loads the
moment anything asks for it.
"""

from __future__ import annotations

import logging  # already loaded by structlog.processors: no start-up cost
import sys
import threading
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import quote

from premigrate.model.dsn import REDACTED


def _load_structlog() -> None:
    """structlog with only the submodules premigrate uses loaded.

    The package's __init__ imports every submodule (stdlib logging integration and asyncio, the deprecated
    threadlocal module and its uuid/platform imports, testing helpers, a twisted probe). Here `structlog` is
    registered without running it, the needed submodules are imported, and the first read of any other name
    (`structlog.stdlib`, `structlog.testing.capture_logs`, ...) runs the real __init__, so every other user of
    structlog in the process sees the usual package.
    """
    if "structlog._config" not in sys.modules and "structlog" not in sys.modules:
        import importlib.util

        spec = importlib.util.find_spec("structlog")
        if spec is not None and spec.loader is not None and spec.submodule_search_locations is not None:
            package = importlib.util.module_from_spec(spec)
            loader = spec.loader
            lock = threading.Lock()

            def complete(name: str) -> Any:
                with lock:
                    if package.__dict__.get("__getattr__") is complete:
                        del package.__dict__["__getattr__"]
                        loader.exec_module(package)
                return getattr(package, name)

            package.__dict__["__getattr__"] = complete
            sys.modules["structlog"] = package


_load_structlog()
# Always `from structlog.<submodule> import name`: `from structlog import <submodule>` would ask the package for
# the attribute first and so run its whole __init__. structlog.configure and friends live in the private modules
# below; tests/unit/test_log.py and tests/unit/test_imports.py fail if a structlog release moves them.
from structlog._config import configure as _configure_structlog, get_logger as _get_structlog_logger  # noqa: E402
from structlog._native import make_filtering_bound_logger  # noqa: E402
from structlog._output import PrintLoggerFactory  # noqa: E402
from structlog.dev import ConsoleRenderer  # noqa: E402
from structlog.processors import JSONRenderer, TimeStamper, add_log_level, format_exc_info  # noqa: E402

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


class _LibraryWarnings(logging.Handler):
    """psycopg and PyMySQL report some conditions (a cancel that timed out, a connection closed after it) through the
    standard logging module; without a handler Python prints them to stderr as plain text, which would break the
    one-JSON-object-per-line contract. They become `library_warning` events, scrubbed like every other line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            get_logger().warning("library_warning", logger=record.name, error=record.getMessage())
        except Exception:  # noqa: BLE001 - logging must never raise into the library that logged
            self.handleError(record)


def configure(*, log_format: str = "json", level: str = "info", secrets: Iterable[str] = ()) -> None:
    chain: list[Any] = [
        add_log_level,
        TimeStamper(fmt="iso", utc=True, key="timestamp"),
        format_exc_info,
        SecretScrubber(secrets),
    ]
    if log_format == "console":
        chain.append(ConsoleRenderer(colors=False))
    else:
        chain.append(JSONRenderer(default=str))
    _configure_structlog(
        processors=chain,
        wrapper_class=make_filtering_bound_logger(_LEVELS.get(level, 20)),
        logger_factory=PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _LibraryWarnings)]:
        root.removeHandler(handler)
    bridge = _LibraryWarnings(logging.WARNING)
    root.addHandler(bridge)


def get_logger() -> Any:
    return _get_structlog_logger()
