"""The exception tree. Every error a user can cause is one of these; each class owns its exit code.

    PremigrateError                 1  internal error (a bug)
    ├── UsageError                  2  bad flag, bad URL, unknown scheme, missing folder, conflicting settings
    ├── DatabaseUnavailable         3  not ready before --wait-timeout, authentication failed, unknown database
    │   ├── ConnectionLost          3/4 the connection broke mid-run (4 once a failed/in_progress row exists)
    │   ├── ReadOnlyServer          3  still a hot standby or read-only server when the wait is over
    │   └── PasswordCommandFailed   3  --password-command did not print a password
    ├── MigrationFailed             4  a migration's SQL failed (rolled back, or recorded as failed)
    │   └── CallbackFailed          4  a callback script failed
    ├── ValidationFailed            5  bad migration files, drift, out-of-order, failed or in-doubt earlier run
    │   ├── MigrationFileError      5  one file cannot be parsed
    │   ├── ToolTableMissing        5  baseline --from: the other tool's history table is not there
    │   └── TopologyRefused         5  statement pooling, Galera RSU: migrations cannot be applied safely there
    ├── LockTimeout                 6  the runner lock was not acquired within --lock-timeout
    ├── LockLost                    8  the runner lock was lost mid-run (its session ended, its lease was taken over)
    └── (PendingWork is not an error: `check` returns 7)

    Interrupted (a KeyboardInterrupt)  130 / 143  SIGINT / SIGTERM

Foreign errors (psycopg, PyMySQL, sqlite3, OSError) are mapped to these at the boundary with `raise ... from`.
Messages are one line, say what is wrong and how to fix it, and never contain a password.
"""

from __future__ import annotations

import signal


class PremigrateError(Exception):
    exit_code = 1

    def __init__(self, message: str, **fields: object) -> None:
        super().__init__(message)
        self.message = message
        # Structured details for the log line (sqlstate, version, line, ...).
        self.fields = fields

    def __str__(self) -> str:
        return self.message


class UsageError(PremigrateError):
    exit_code = 2


class DatabaseUnavailable(PremigrateError):
    exit_code = 3


class ConnectionLost(DatabaseUnavailable):
    """The connection broke after the run started."""

    def __init__(self, message: str, *, recorded: bool = False, **fields: object) -> None:
        super().__init__(message, **fields)
        # A failed or in_progress row was written before the loss: the run is in a recorded, resumable state.
        self.recorded = recorded
        if recorded:
            self.exit_code = 4


class MigrationFailed(PremigrateError):
    exit_code = 4


class CallbackFailed(MigrationFailed):
    """A callback script (beforeMigrate.sql, ...) failed: the run fails as a migration would."""


class ValidationFailed(PremigrateError):
    exit_code = 5


class MigrationFileError(ValidationFailed):
    pass


class ToolTableMissing(ValidationFailed):
    """baseline --from TOOL: no such table. `up --baseline-from` tells a fresh database (migrate it) from a database
    whose tool table is elsewhere (refused)."""


class LockTimeout(PremigrateError):
    exit_code = 6


class ReadOnlyServer(DatabaseUnavailable):
    """Connected to a server that cannot take writes (a hot standby, a read-only replica). While waiting it is
    transient (a failover in progress); once the wait is over it is final."""


class PasswordCommandFailed(DatabaseUnavailable):
    """--password-command did not produce a password: like any other failure to authenticate."""


class TopologyRefused(ValidationFailed):
    """A topology in which premigrate cannot apply migrations safely (statement pooling; Galera RSU unless
    allowed): nothing was changed, and rerunning alone will not help."""


class LockLost(PremigrateError):
    """The runner lock was lost while the run held it: its session ended (an idle timeout, a reaper, a proxy, an
    administrator), or its lease (--lock-mode table) expired and was taken over by another runner, e.g. after this
    one was paused (SIGSTOP, a VM freeze, a network partition). Another runner may have the lock, so this one stops
    before starting another statement; a lease's fence makes sure nothing commits after the loss."""

    exit_code = 8


class Interrupted(KeyboardInterrupt):
    """Raised by the signal handler.

    A KeyboardInterrupt on purpose: psycopg cancels the running query on the server when its wait is interrupted by
    one, so the statement stops instead of running on after we exit.
    """

    def __init__(self, signum: int, *, before_statement: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum
        # A fleet's worker stops at its next statement (engine/fleet_sessions.py): the statement was not sent, so
        # the record says the migration stopped before it, not that it may have taken effect.
        self.before_statement = before_statement


EXIT_CODES: list[tuple[str, str]] = [
    ("0", "success, including nothing to do"),
    ("1", "internal error (a bug: logged with its traceback as an internal_error event)"),
    ("2", "usage or configuration error (bad flag, bad URL, unknown scheme, missing folder)"),
    ("3", "database unavailable: not ready before --wait-timeout, authentication failed, unknown database"),
    ("4", "a migration failed (PostgreSQL/SQLite: rolled back; MySQL and no-transaction files: recorded as failed)"),
    ("5", "validation failed or refused: bad migration files, checksum drift, out-of-order, a failed or in-doubt"
          " earlier run; `repair` found something to repair"),
    ("6", "the runner lock was not acquired within --lock-timeout"),
    ("7", "work is pending: `check`, `plan` or `up --dry-run` found migrations not yet applied, or an afterMigrate"
          " still owed"),
    ("8", "the runner lock was lost mid-run (its session ended, or its lease was taken over after a pause): stopped"
          " before the next statement, nothing committed after the loss; the history row records where"),
    ("130/143", "interrupted by SIGINT / SIGTERM, after rolling back (or recording) and releasing the lock"),
]
