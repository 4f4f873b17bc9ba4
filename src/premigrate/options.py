"""Every option of every command in one table: its flag, its environment variable, its default, its commands.

config.py resolves them (flag > environment > default); the CLI builds its parsers from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from premigrate.model.formats import NAMES as FORMAT_NAMES

DEFAULT_SQLITE_FILE = "premigrate.db"
DEFAULT_TABLE = "premigrate_history"


@dataclass(frozen=True)
class Option:
    """One option: its flag, its environment variable, its help and how its value is read."""
    dest: str
    flag: str
    env: str
    help: str
    kind: str = "str"  # str | duration | bool | choice | int (>= 1) | count (>= 0) | version | list | shard
    default: Any = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    commands: tuple[str, ...] = ()  # empty: every command
    zero: str | None = None  # a duration whose 0 is not "no limit": what its 0 means (for its error message)


FLEET_COMMANDS = ("up", "status", "check")
# The tools whose history `baseline --from` and `up --baseline-from` read (commands/baseline.py, foreign_history.py).
BASELINE_TOOLS = ("golang-migrate", "flyway", "dbmate", "laravel", "alembic", "goose", "sqlx", "atlas", "prisma",
                  "diesel", "drizzle", "popx", "sql-migrate", "liquibase", "sqitch")
# Commands that take the runner lock.
_LOCKING = ("up", "down", "repair", "baseline")

OPTIONS: tuple[Option, ...] = (
    Option("database_url", "--database-url", "DATABASE_URL",
           "database URL: postgresql://, mysql://, mariadb://, sqlite:///file.db (also PREMIGRATE_DATABASE_URL, "
           "or DATABASE_URL_FILE naming a file that holds it)", metavar="URL"),
    Option("dir", "--dir", "PREMIGRATE_DIR", "folder of migration files (not recursive)", default="./migrations",
           metavar="PATH"),
    Option("table", "--table", "PREMIGRATE_TABLE",
           "history table name (schema.table allowed on PostgreSQL)", default=DEFAULT_TABLE, metavar="NAME"),
    Option("schema", "--schema", "PREMIGRATE_SCHEMA",
           "PostgreSQL only: search_path for migrations and schema of the history table (created if missing)",
           metavar="NAME"),
    Option("wait_timeout", "--wait-timeout", "PREMIGRATE_WAIT_TIMEOUT",
           "how long to wait for the database to accept connections", kind="duration", default="60s",
           metavar="DURATION"),
    Option("lock_timeout", "--lock-timeout", "PREMIGRATE_LOCK_TIMEOUT",
           "how long to wait for the runner lock held by another premigrate", kind="duration", default="600s",
           metavar="DURATION"),
    Option("lock_mode", "--lock-mode", "PREMIGRATE_LOCK_MODE",
           "runner lock: advisory (session lock), table (a lease row with a heartbeat and fencing), or auto (table "
           "behind a transaction pooler, on Galera and Group Replication, advisory elsewhere)", kind="choice",
           default="auto", choices=("auto", "advisory", "table"), commands=_LOCKING),
    Option("lock_lease", "--lock-lease", "PREMIGRATE_LOCK_LEASE",
           "table lock: how long a lease lasts without renewal; a killed runner's lock is taken over after it",
           kind="duration", default="30s", metavar="DURATION", commands=_LOCKING),
    Option("allow_galera_rsu", "--allow-galera-rsu", "PREMIGRATE_ALLOW_GALERA_RSU",
           "Galera: apply migrations although wsrep_OSU_method is RSU (schema changes on this node only)",
           kind="bool", default=False, commands=_LOCKING),
    Option("password_command", "--password-command", "PREMIGRATE_PASSWORD_COMMAND",
           "a command that prints the database password, run for every new connection (cloud IAM tokens); split "
           "like a shell would, run without one", metavar="CMD"),
    Option("ddl_lock_timeout", "--ddl-lock-timeout", "PREMIGRATE_DDL_LOCK_TIMEOUT",
           "how long one migration statement may wait for a table lock before the attempt is abandoned and retried "
           "(PostgreSQL lock_timeout, MySQL lock_wait_timeout, SQLite busy timeout)", kind="duration", default="5s",
           metavar="DURATION", commands=("up", "plan", "down", "repair", "verify")),
    Option("statement_timeout", "--statement-timeout", "PREMIGRATE_STATEMENT_TIMEOUT",
           "longest run of one migration statement (PostgreSQL statement_timeout, MariaDB max_statement_time, "
           "MySQL max_execution_time); 0: no limit", kind="duration", default="0", metavar="DURATION",
           commands=("up", "plan", "down", "repair", "verify")),
    Option("lock_retries", "--lock-retries", "PREMIGRATE_LOCK_RETRIES",
           "how many times a migration that hit a lock timeout or deadlock is retried, with growing jittered pauses",
           kind="count", default="10", metavar="N", commands=("up", "plan", "down", "repair", "verify")),
    Option("log_format", "--log-format", "PREMIGRATE_LOG_FORMAT",
           "json (default) or console (default when stderr is a terminal)", kind="choice",
           choices=("json", "console")),
    Option("log_level", "--log-level", "PREMIGRATE_LOG_LEVEL", "debug, info, warning or error", kind="choice",
           default="info", choices=("debug", "info", "warning", "error")),
    Option("strict", "--strict", "PREMIGRATE_STRICT",
           "fail (exit 5) when the history has migrations missing from the folder", kind="bool", default=False),
    Option("allow_out_of_order", "--allow-out-of-order", "PREMIGRATE_ALLOW_OUT_OF_ORDER",
           "apply pending migrations older than the newest applied one instead of failing", kind="bool",
           default=False),
    Option("require_database", "--require-database", "PREMIGRATE_REQUIRE_DATABASE",
           "exit 2 instead of falling back to ./premigrate.db when no database is configured", kind="bool",
           default=False),
    Option("json", "--json", "PREMIGRATE_JSON", "print JSON instead of text", kind="bool", default=False,
           commands=("status", "plan", "lint", "repair", "verify")),
    Option("to", "--to", "PREMIGRATE_TO",
           "up/plan: stop after this version; down: roll back the migrations after it", kind="version",
           metavar="VERSION", commands=("up", "plan", "down")),
    Option("dry_run", "--dry-run", "PREMIGRATE_DRY_RUN",
           "print what would run (as `plan` does) and change nothing", kind="bool", default=False, commands=("up",)),
    Option("single_transaction", "--single-transaction", "PREMIGRATE_SINGLE_TRANSACTION",
           "PostgreSQL/SQLite: apply all pending migrations in one transaction, all or nothing", kind="bool",
           default=False, commands=("up", "plan")),
    Option("placeholders", "--placeholders", "PREMIGRATE_PLACEHOLDERS",
           "replace ${NAME} in migration SQL with PREMIGRATE_PLACEHOLDER_NAME in every file", kind="bool",
           default=False, commands=("up", "plan", "down", "repair", "verify")),
    Option("baseline_on_empty_history", "--baseline-on-empty-history", "PREMIGRATE_BASELINE_ON_EMPTY_HISTORY",
           "on a first run against a schema that already has tables, record migrations up to VERSION as applied "
           "without running them", kind="version", metavar="VERSION", commands=("up",)),
    # The same variable as baseline's --from: the tool to adopt, whichever of the two commands reads it.
    Option("up_baseline_from", "--baseline-from", "PREMIGRATE_BASELINE_FROM",
           "on the first run (premigrate's history empty), adopt this tool's history as `baseline --from TOOL` does, "
           "then apply the rest; a no-op once premigrate's history has rows", kind="choice", choices=BASELINE_TOOLS,
           metavar="TOOL", commands=("up",)),
    Option("lint", "--lint", "PREMIGRATE_LINT",
           "lint pending files before applying: warn (log findings), error (refuse on error-level findings), off",
           kind="choice", default="warn", choices=("warn", "error", "off"), commands=("up",)),
    Option("no_verify", "--no-verify", "PREMIGRATE_NO_VERIFY",
           "sqitch projects: do not run a change's verify script after deploying it", kind="bool", default=False,
           commands=("up",)),
    Option("callbacks", "--callbacks", "PREMIGRATE_CALLBACKS",
           "also read callback scripts (beforeMigrate.sql, afterMigrate.sql, ...) from this folder", metavar="DIR",
           commands=("up", "down")),
    Option("callbacks_always", "--callbacks-always", "PREMIGRATE_CALLBACKS_ALWAYS",
           "run beforeMigrate/afterMigrate callbacks on every up, also with nothing to apply (takes the lock)",
           kind="bool", default=False, commands=("up",)),
    Option("summary_file", "--summary-file", "PREMIGRATE_SUMMARY_FILE",
           "up: also write the one-line JSON summary of the run to this file; serve: read the last run's figures "
           "from it for /metrics", metavar="PATH", commands=("up", "serve")),
    Option("termination_log", "--termination-log", "PREMIGRATE_TERMINATION_LOG",
           "Kubernetes termination message file, written when it exists and is writable", metavar="PATH",
           default="/dev/termination-log", commands=("up",)),
    Option("check_wait", "--wait", "PREMIGRATE_CHECK_WAIT",
           "check: poll (read-only, lock-free) until the database is current, up to --timeout; exit 0 once it is, "
           "7 if migrations are still pending at the timeout", kind="bool", default=False, commands=("check",)),
    Option("check_timeout", "--timeout", "PREMIGRATE_CHECK_TIMEOUT",
           "check --wait: how long to wait for the database to become current; 0: no limit", kind="duration",
           default="5m", metavar="DURATION", commands=("check",)),
    Option("baseline_version", "--version", "PREMIGRATE_BASELINE_VERSION",
           "baseline: record the migrations up to this version as applied", kind="version", metavar="VERSION",
           commands=("baseline",)),
    Option("baseline_description", "--description", "PREMIGRATE_BASELINE_DESCRIPTION",
           "baseline: description recorded for the baseline version's row", metavar="TEXT", commands=("baseline",)),
    Option("baseline_from", "--from", "PREMIGRATE_BASELINE_FROM",
           "baseline: read another tool's history table in the same database", kind="choice",
           choices=BASELINE_TOOLS, commands=("baseline",)),
    Option("baseline_from_table", "--from-table", "PREMIGRATE_BASELINE_FROM_TABLE",
           "baseline --from, up --baseline-from: the tool's history table when it was configured to use another one "
           "([schema.]name)", metavar="[SCHEMA.]TABLE", commands=("baseline", "up")),
    Option("baseline_map", "--map", "PREMIGRATE_BASELINE_MAP",
           "baseline --from alembic, up --baseline-from alembic: file mapping alembic revision ids to versions (JSON "
           "object, or 'rev version' lines)", metavar="FILE", commands=("baseline", "up")),
    Option("steps", "--steps", "PREMIGRATE_DOWN_STEPS", "down: roll back this many of the newest migrations",
           kind="int", metavar="N", commands=("down",)),
    Option("yes", "--yes", "PREMIGRATE_YES", "down: do not ask for confirmation (required without a terminal); "
           "verify: let it empty a --scratch-url database that holds tables or premigrate history",
           kind="bool", default=False, commands=("down", "verify")),
    Option("scratch_url", "--scratch-url", "PREMIGRATE_SCRATCH_URL",
           "verify: work in this database instead of a scratch database created beside the configured one",
           metavar="URL", commands=("verify",)),
    Option("format", "--format", "PREMIGRATE_FORMAT",
           "whose rules the folder follows: auto (detect per folder or file), flyway, golang-migrate, dbmate, goose, "
           "sql-migrate, sqlx, atlas, prisma, diesel, popx, drizzle, plain, liquibase, sqitch; new: the layout of the "
           "file it writes (default: the folder's)",
           kind="choice", default="auto", choices=FORMAT_NAMES, metavar="FORMAT"),
    Option("allow_empty", "--allow-empty", "PREMIGRATE_ALLOW_EMPTY",
           "accept a migrations folder with no migrations (refused by default: it is usually a volume mounted at the "
           "wrong path)", kind="bool", default=False),
    Option("contexts", "--contexts", "PREMIGRATE_CONTEXTS",
           "Liquibase changelogs: the run's contexts (comma-separated); a changeset whose context filter they do not "
           "match is skipped", metavar="LIST"),
    Option("labels", "--labels", "PREMIGRATE_LABELS",
           "Liquibase changelogs: a label expression (e.g. 'v1 and !beta'); a changeset whose labels it does not "
           "match is skipped", metavar="EXPRESSION"),
    Option("liquibase_strict", "--liquibase-strict", "PREMIGRATE_LIQUIBASE_STRICT",
           "Liquibase changelogs: split statements only as Liquibase does; refuse a changeset whose PostgreSQL "
           "dollar-quoted body Liquibase's splitter would cut (instead of splitting it on the statements PostgreSQL "
           "sees)", kind="bool", default=False),
    Option("allow_empty_down", "--allow-empty-down", "PREMIGRATE_ALLOW_EMPTY_DOWN",
           "down: run a migration whose down part exists but is empty as a no-op and record it as rolled back",
           kind="bool", default=False, commands=("down",)),
    Option("dialect", "--dialect", "PREMIGRATE_LINT_DIALECT",
           "lint: SQL dialect (default: the configured database's, else the folder's own (Drizzle, Prisma), else "
           "postgresql)", kind="choice",
           choices=("postgresql", "mysql", "sqlite"), commands=("lint",)),
    Option("listen", "--listen", "PREMIGRATE_LISTEN", "serve: address to listen on", default="0.0.0.0:8080",
           metavar="HOST:PORT", commands=("serve",)),
    Option("expect_tables", "--expect-table", "PREMIGRATE_EXPECT_TABLES",
           "serve: a table that must exist (repeatable; the variable takes a comma-separated list)", kind="list",
           metavar="TABLE", commands=("serve",)),
    Option("health_cache", "--health-cache", "PREMIGRATE_HEALTH_CACHE",
           "serve: how long a database health reading is reused (0: read the database on every request)",
           kind="duration", default="2s",
           metavar="DURATION", commands=("serve",), zero="no cache (read the database on every request)"),
    Option("unhealthy_after", "--unhealthy-after", "PREMIGRATE_UNHEALTHY_AFTER",
           "serve: /healthz answers 503 once database health readings have been failing for this long (0: never)",
           kind="duration", default="5m", metavar="DURATION", commands=("serve",),
           zero="never (/healthz does not look at the database readings)"),
    Option("targets", "--targets", "PREMIGRATE_TARGETS",
           "run over a fleet: a file listing one target per line (a database URL, schema=NAME or database=NAME on "
           "the configured server); - reads standard input", metavar="FILE", commands=FLEET_COMMANDS),
    Option("targets_query", "--targets-query", "PREMIGRATE_TARGETS_QUERY",
           "run over a fleet: a query on the configured database whose first column names each target's schema "
           "(PostgreSQL) or database (MySQL/MariaDB)", metavar="SQL", commands=FLEET_COMMANDS),
    Option("concurrency", "--concurrency", "PREMIGRATE_CONCURRENCY",
           "fleet: how many targets run at once (default: min(4, 2 x CPUs))", kind="int", metavar="N",
           commands=FLEET_COMMANDS),
    Option("shard", "--shard", "PREMIGRATE_SHARD",
           "fleet: take only shard I of N (I from 0) of the targets; default from a Kubernetes Indexed Job's "
           "JOB_COMPLETION_INDEX with PREMIGRATE_SHARDS", kind="shard", metavar="I/N", commands=FLEET_COMMANDS),
    Option("fail_fast", "--fail-fast", "PREMIGRATE_FAIL_FAST",
           "fleet: start no new target once one has failed", kind="bool", default=False, commands=FLEET_COMMANDS),
    Option("repair_resume", "--resume", "PREMIGRATE_REPAIR_RESUME",
           "repair: continue the failed or interrupted migration from where it stopped", kind="bool", default=False,
           commands=("repair",)),
    Option("repair_retry_current", "--retry-current", "PREMIGRATE_REPAIR_RETRY_CURRENT",
           "repair --resume: the statement in doubt did not take effect: run it again", kind="bool", default=False,
           commands=("repair",)),
    Option("repair_skip_current", "--skip-current", "PREMIGRATE_REPAIR_SKIP_CURRENT",
           "repair --resume: the statement in doubt (or the failed one) took effect: count it as done", kind="bool",
           default=False, commands=("repair",)),
    Option("repair_version", "--version", "PREMIGRATE_REPAIR_VERSION",
           "repair --resume: which unfinished migration, when there are several; repair --realign-checksums: "
           "realign this one even though its statements changed", metavar="VERSION", commands=("repair",)),
    Option("repair_mark_applied", "--mark-applied", "PREMIGRATE_REPAIR_MARK_APPLIED",
           "repair: record the unfinished migration VERSION as applied (you finished it by hand)", metavar="VERSION",
           commands=("repair",)),
    Option("repair_forget", "--forget", "PREMIGRATE_REPAIR_FORGET",
           "repair: delete the unfinished migration VERSION's row, so that the next up runs the whole file again",
           metavar="VERSION", commands=("repair",)),
    Option("repair_realign_checksums", "--realign-checksums", "PREMIGRATE_REPAIR_REALIGN_CHECKSUMS",
           "repair: record the current checksum of applied files edited since (comments, white space)", kind="bool",
           default=False, commands=("repair",)),
)
# Commands that never touch a database: no database needs to be configured for them.
OFFLINE_COMMANDS = ("new", "lint")
ALL_COMMANDS = ("up", "status", "check", "wait", "plan", "baseline", "down", "new", "lint", "serve", "repair")
_PLANNING = ("up", "plan", "status", "check", "down", "repair", "serve")
_ONLINE = tuple(c for c in ALL_COMMANDS if c not in OFFLINE_COMMANDS)
# The options every command accepts, and which commands actually read each one: a command's --help lists only
# those (the others are accepted, for scripts that pass one set of flags to every command, and ignored).
SHARED_USES: dict[str, tuple[str, ...]] = {
    "database_url": tuple(c for c in ALL_COMMANDS if c != "new"),
    "dir": tuple(c for c in ALL_COMMANDS if c != "wait"),
    "table": tuple(c for c in _ONLINE if c != "wait"),
    "schema": tuple(c for c in _ONLINE if c != "wait"),
    "wait_timeout": _ONLINE,
    "lock_timeout": ("up", "plan", "down", "baseline", "repair"),
    "log_format": ALL_COMMANDS,
    "log_level": ALL_COMMANDS,
    "strict": _PLANNING,
    "allow_out_of_order": _PLANNING,
    "require_database": _ONLINE,
    # The folder's format: every command that reads the folder (new: the layout of the file it writes).
    "format": tuple(c for c in ALL_COMMANDS if c != "wait"),
    "allow_empty": tuple(c for c in ALL_COMMANDS if c not in ("wait", "new")),
    # Which changesets of a changelog a run selects: every command that plans or checks the folder.
    "contexts": tuple(c for c in ALL_COMMANDS if c not in ("wait", "new")),
    "labels": tuple(c for c in ALL_COMMANDS if c not in ("wait", "new")),
    "liquibase_strict": tuple(c for c in ALL_COMMANDS if c not in ("wait", "new")),
    "password_command": _ONLINE,
}


def options_for(command: str) -> tuple[Option, ...]:
    """The options `command` reads, in table order: its own, and the shared ones it uses."""
    return tuple(o for o in OPTIONS if command in (o.commands or SHARED_USES.get(o.dest, ALL_COMMANDS)))


OPTIONS_BY_DEST = {o.dest: o for o in OPTIONS}
