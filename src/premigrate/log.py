"""Logging: premigrate's own structlog logger. Events go to stderr; stdout is left to command output.

The logger is structlog's filtering bound logger (levels, bind(), the processor chain) over a small line writer
(_Lines). The processors are premigrate's: the secret scrubber, the console renderer (console.py), and the three
that structlog's processors module would give (the level, the UTC timestamp and the JSON renderer), which are a
line each here, written as structlog writes them. An event's exception is formatted by structlog's own
format_exc_info, loaded when an event first carries one. structlog's global configuration (structlog.configure,
structlog.get_logger) is neither read nor changed, so a program that imports premigrate keeps its own structlog
set-up, and premigrate's lines keep theirs.

Why not structlog.configure and structlog.processors: start-up. `up` runs on every pod start, and bench/bench.py
measures a no-op run against the driver's own floor. structlog's configuration module brings its console renderer,
its print logger and, for one exception class, pickle; its processors module (about 1,000 lines) brings its
traceback and call-site machinery. Together about 6 ms of a 90 ms run on the machines bench/ measures. Only the
submodules behind the bound logger are loaded (see _load_structlog); the rest of the package loads the moment
anything asks for it.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import warnings
from collections.abc import Iterable, MutableMapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

from premigrate.held_events import release_first
from premigrate.model.dsn import REDACTED
from premigrate.model.sql_secrets import credentials_in, redact_credentials
from premigrate.stand_ins import after_import, import_without

if TYPE_CHECKING:
    import logging

    from premigrate.liveline import LiveLineStream


def _load_structlog() -> None:
    """structlog with only the submodules premigrate uses loaded.

    The package's __init__ imports every submodule (stdlib logging integration and asyncio, the deprecated
    threadlocal module and its uuid/platform imports, testing helpers, a twisted probe). Here `structlog` is
    registered without running it, the needed submodules are imported, and the first read of any other name
    (`structlog.stdlib`, `structlog.testing.capture_logs`, ...) runs the real __init__, so every other user of
    structlog in the process sees the usual package.
    """
    if "structlog" not in sys.modules:
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
# structlog._native imports asyncio for async logging methods premigrate never calls (premigrate/stand_ins.py).
import_without("structlog._native", "asyncio")
# Always `from structlog.<submodule> import name`: `from structlog import <submodule>` would ask the package for
# the attribute first and so run its whole __init__. make_filtering_bound_logger and add_log_level live in the
# private modules below; tests/unit/test_log.py and tests/unit/test_imports.py fail if a structlog release moves them.
from structlog._log_levels import add_log_level  # noqa: E402
from structlog._native import make_filtering_bound_logger  # noqa: E402


def _timestamp(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The time of the event, in UTC, ISO 8601 with a Z: what structlog's TimeStamper(fmt="iso", utc=True) writes
    (structlog/processors.py, _make_stamper's stamper_iso_utc)."""
    event["timestamp"] = datetime.now(tz=timezone.utc).isoformat().replace("+00:00", "Z")
    return event


def _exception(logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """An event's `exc_info` as its `exception` text, by structlog's format_exc_info; the processors module is
    imported with the first event that has one (an internal error), not by every run."""
    if "exc_info" not in event:
        return event
    # structlog.processors imports logging (with string) and only names it in annotations and in a processor
    # premigrate does not use: a run whose libraries never import logging (PyMySQL, sqlite3) goes without.
    import_without("structlog.processors", "logging")
    from structlog.processors import format_exc_info

    return format_exc_info(logger, method, event)


def _json(logger: Any, method: str, event: MutableMapping[str, Any]) -> str:
    """The event as one JSON object: structlog's JSONRenderer(default=str) (structlog/processors.py), whose
    default-serializer argument turns any value JSON has no form for into its str()."""
    return json.dumps(event, default=str)


_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


# Fields whose values are premigrate's own vocabulary (event names, levels, states, dialects, versions, codes): never
# scrubbed, so alerting on them keeps working whatever the password is (a password `app` must not turn
# `migration_applied` into `migration_***lied`). Keys are never scrubbed either.
STRUCTURAL_FIELDS = frozenset({
    "event", "level", "timestamp", "logger", "command", "dialect", "state", "kind", "migration_id", "version",
    "status", "code_field", "sqlstate", "errno", "exit_code", "database_source", "signal", "method",
    # Migration ids (the folder's, as migration_id), and the database URL as Dsn.redacted() gives it (no password
    # in it): scrubbing a short password out of them garbled them (`127.0.0.***`, versions ["***", "2"]) and the
    # gaps showed what the password was.
    "versions", "database",
})
# A secret this long is replaced wherever it occurs, even inside a longer word; a shorter one (a common word, a few
# letters) only where it stands alone, since `e` or `app` inside `error` or `applied` is almost always a coincidence.
ANYWHERE_LENGTH = 12


def _forms(secret: str) -> set[str]:
    """The ways a secret shows up in messages: as is, URL-encoded (URLs, conninfo), quoted in an SQL literal the way
    PostgreSQL ('') and MySQL or libpq (backslash) escape it, escaped inside a JSON or Python string, and case-folded
    (a placeholder's value written where the server reads an identifier: PostgreSQL folds it to lower case in its
    error)."""
    forms = {
        secret,
        secret.lower(),
        secret.upper(),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret, safe=""),
        secret.replace("'", "''"),
        secret.replace("\\", "\\\\").replace("'", "\\'"),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
    }
    return {f for f in forms if f}


def _pattern(form: str, anywhere: bool) -> str:
    """`form` as a regex; a short secret's form must not be glued to a letter, digit or _ on a side where it has one."""
    if anywhere:
        return re.escape(form)
    before = r"(?<!\w)" if re.match(r"\w", form[0]) else ""
    after = r"(?!\w)" if re.match(r"\w", form[-1]) else ""
    return before + re.escape(form) + after


class SecretScrubber:
    """Replaces every known secret in every string value of an event, nested values too; never in keys or in the
    STRUCTURAL_FIELDS.

    Drivers can echo connection details and statements in their messages; this is the last line of defence, so a
    password never reaches a log line, a stored history row or a report whatever a library puts in an error. The
    passwords a migration's SQL sets are masked too, by their place in the statement (model/sql_secrets.py).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        self._patterns: dict[str, str] = {}
        self.secrets: list[str] = []
        self._regex: re.Pattern[str] | None = None
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Widen the scrubber with secrets learnt after start-up (a password a command printed at connect time).

        Every logger shares the configured instance, so the new secret is removed from every later line."""
        patterns = dict(self._patterns)
        for secret in secrets:
            if secret:
                for form in _forms(secret):
                    patterns[form] = _pattern(form, len(secret) >= ANYWHERE_LENGTH)
        # Longest first, so that a secret containing another is replaced whole.
        ordered = sorted(patterns, key=len, reverse=True)
        regex = re.compile("|".join(patterns[f] for f in ordered)) if ordered else None
        # One assignment each: a thread scrubbing meanwhile uses the old or the new rules, both complete.
        self._patterns, self.secrets, self._regex = patterns, ordered, regex

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            # Credentials a statement spells out (model/sql_secrets.py) first: the known secrets' rules could
            # otherwise break the grammar that finds them.
            value = redact_credentials(value)
            return value if self._regex is None else self._regex.sub(REDACTED, value)
        if isinstance(value, dict):
            return {k: v if k in STRUCTURAL_FIELDS else self.scrub(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.scrub(v) for v in value)
        return value

    def __call__(self, logger: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        return self.scrub(dict(event))  # type: ignore[no-any-return]


# The scrubber of the configured log chain, shared with whatever stores text outside the logs (the history table's
# `error` column): one list of secrets, one set of rules.
_active = SecretScrubber(())


def scrub(value: Any) -> Any:
    """`value` scrubbed with the secrets the logs were configured with (unchanged before configure())."""
    return _active.scrub(value)


def add_secret(secret: str) -> None:
    """Scrub `secret` from every later log line and stored text, as if it had been known at configure()."""
    _active.add([secret])


def mask_statement(text: str, statement: str | None = None) -> str:
    """`text` (a statement, or a message about `statement`) with the credentials of `statement` (default: `text`)
    masked by the scrubber's own rules (by their place, then by value), for a report that does not pass through the
    log (lint's output)."""
    return str(SecretScrubber(credentials_in(text if statement is None else statement)).scrub(text))


def learn_credentials(statement: str) -> None:
    """The credentials a failed statement spells out (model/sql_secrets.credentials_in), scrubbed by value from
    every later log line, stored error and report: the server's error may quote one without its keyword."""
    values = credentials_in(statement)
    if values:
        _active.add(values)


# Fields the library warnings logged by this thread carry: a fleet worker's `target`, as its own events do.
_thread = threading.local()


def bind_thread(**fields: object) -> None:
    """Fields (a fleet worker's target) for every `library_warning` this thread logs; none: clears them."""
    _thread.fields = fields


# The root logger's handler that turns library warnings into events (_install_bridge).
_bridge: logging.Handler | None = None


def _install_bridge() -> None:
    """psycopg, tenacity and OpenTelemetry report some conditions (a cancel that timed out, a connection closed after
    it, a retry) through the standard logging module; without a handler Python prints them to stderr as plain text,
    which would break the one-JSON-object-per-line contract. They become `library_warning` events, scrubbed like
    every other line.

    Installed by configure() when logging is loaded, else the moment something imports it (stand_ins.after_import),
    so that a run whose libraries never use logging does not load it."""
    import logging

    global _bridge
    if _bridge is None:
        class LibraryWarnings(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                try:
                    get_logger().warning("library_warning", logger=record.name, error=record.getMessage(),
                                         **getattr(_thread, "fields", {}))
                except Exception:  # noqa: BLE001 - logging must never raise into the library that logged
                    self.handleError(record)

        _bridge = LibraryWarnings(logging.WARNING)
    logging.getLogger().addHandler(_bridge)  # once: a handler the root logger has already is not added again


def _warning_event(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                   file: Any = None, line: str | None = None) -> None:
    """warnings.showwarning once the log is configured: a warning a library raises through Python's `warnings`
    (which would print two lines of plain text to stderr) becomes a `library_warning` event, scrubbed like every
    other line, with `category` and `source` (file:line). Which warnings are shown is still the warnings filters'
    choice (-W, PYTHONWARNINGS). A warning written to a file someone names keeps Python's own format."""
    if file is not None:
        _showwarning(message, category, filename, lineno, file, line)
        return
    get_logger().warning("library_warning", logger="warnings", category=category.__name__, error=str(message),
                         source=f"{filename}:{lineno}", **getattr(_thread, "fields", {}))


# Python's own warnings.showwarning, for the warnings written to a named file.
_showwarning = warnings.showwarning


# The console log's stream when it can keep a live line (premigrate.liveline); None otherwise.
_live: LiveLineStream | None = None


def live_line() -> LiveLineStream | None:
    """The stream a live line can be shown on: the console log at a terminal that understands it; else None."""
    return _live


def configure(*, log_format: str = "json", level: str = "info", secrets: Iterable[str] = (),
              colours: bool = False, terminal: bool = False) -> None:
    """The log chain. `terminal`: stderr is a terminal that understands cursor movement (not TERM=dumb); with the
    console format, log lines then go through a LiveLineStream a fleet shows its progress line on."""
    global _active, _live, _logger
    _active = SecretScrubber(secrets)
    chain: list[Any] = [
        release_first,  # events held back by a run (held_events.py) are written before this one
        add_log_level,
        _timestamp,
        _exception,
        _active,
    ]
    stream: Any = sys.stderr
    _live = None
    if log_format == "console":
        from premigrate.console import ConsoleLines

        chain.append(ConsoleLines(colours=colours, verbose=level == "debug"))
        if terminal:
            from premigrate.liveline import LiveLineStream

            stream = _live = LiveLineStream(sys.stderr)
    else:
        chain.append(_json)
    # A structlog.BoundLoggerBase subclass, built as BoundLoggerBase(logger, processors, context); typed by structlog
    # as the FilteringBoundLogger protocol, which has no constructor.
    bound_logger: Any = make_filtering_bound_logger(_LEVELS.get(level, 20))
    _logger = bound_logger(_Lines(stream), chain, {})
    after_import("logging", _install_bridge)
    warnings.showwarning = _warning_event


# One lock for every line writer: fleet workers log from several threads, and a line is written whole.
_write_lock = threading.Lock()


class _Lines:
    """The logger structlog's bound logger hands each rendered event to: one line on `stream`, flushed at once
    (a log line must be out before a kill can take it). The method names are those a bound logger calls."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def msg(self, message: str) -> None:
        with _write_lock:
            self._stream.write(message + "\n")
            self._stream.flush()

    debug = info = warning = warn = error = err = critical = fatal = failure = exception = log = msg


# The logger of the latest configure(); None before the first.
_logger: Any = None


class _Latest:
    """What get_logger() returns: each call goes to the logger of the latest configure(), so a logger taken before
    the configuration was read (the CLI reconfigures once it knows the run's secrets, level and format) logs with
    the current chain. bind() returns a logger fixed to the chain of that moment."""

    def __getattr__(self, name: str) -> Any:
        if _logger is None:
            configure()
        return getattr(_logger, name)


_latest = _Latest()


def get_logger() -> Any:
    return _latest
