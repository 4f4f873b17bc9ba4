"""Configuration: every option in one table, resolved by a pure function from (flags, environment).

Precedence: flag > environment > default. Nothing here reads os.environ: the CLI passes the environment in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from premigrate.model.durations import parse_duration
from premigrate.model.dsn import DEFAULT_PORTS, Dsn, normalize_dialect, parse_url
from premigrate.model.formats import NAMES as FORMAT_NAMES
from premigrate.errors import UsageError
from premigrate.model.versions import Version
from premigrate.settings import (
    ApplySettings, BaselineSettings, CallbackSettings, CheckSettings, ConnectionSettings, DownSettings, FleetSettings,
    FolderSettings, LintSettings, LockSettings, NewSettings, RepairSettings, ServeSettings, StatementSettings,
    VerifySettings, sections_from,
)

DEFAULT_SQLITE_FILE = "premigrate.db"
DEFAULT_TABLE = "premigrate_history"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Option:
    dest: str
    flag: str
    env: str
    help: str
    kind: str = "str"  # str | duration | bool | choice | int (>= 1) | count (>= 0) | version | list | shard
    default: Any = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    commands: tuple[str, ...] = ()  # empty: every command


FLEET_COMMANDS = ("up", "status", "check")
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
    Option("lint", "--lint", "PREMIGRATE_LINT",
           "lint pending files before applying: warn (log findings), error (refuse on error-level findings), off",
           kind="choice", default="warn", choices=("warn", "error", "off"), commands=("up",)),
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
           choices=("golang-migrate", "flyway", "dbmate", "laravel", "alembic", "goose", "sqlx", "atlas", "prisma",
                    "diesel", "drizzle", "popx", "sql-migrate", "liquibase", "sqitch"), commands=("baseline",)),
    Option("baseline_from_table", "--from-table", "PREMIGRATE_BASELINE_FROM_TABLE",
           "baseline --from: the tool's history table when it was configured to use another one ([schema.]name)",
           metavar="[SCHEMA.]TABLE", commands=("baseline",)),
    Option("baseline_map", "--map", "PREMIGRATE_BASELINE_MAP",
           "baseline --from alembic: file mapping alembic revision ids to versions (JSON object, or 'rev version' "
           "lines)", metavar="FILE", commands=("baseline",)),
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
           "sql-migrate, sqlx, atlas, prisma, diesel, popx, drizzle, plain; new: the layout of the file it writes "
           "(default: the folder's)",
           kind="choice", default="auto", choices=FORMAT_NAMES, metavar="FORMAT"),
    Option("allow_empty", "--allow-empty", "PREMIGRATE_ALLOW_EMPTY",
           "accept a migrations folder with no migrations (refused by default: it is usually a volume mounted at the "
           "wrong path)", kind="bool", default=False),
    Option("allow_empty_down", "--allow-empty-down", "PREMIGRATE_ALLOW_EMPTY_DOWN",
           "down: run a migration whose down part exists but is empty as a no-op and record it as rolled back",
           kind="bool", default=False, commands=("down",)),
    Option("dialect", "--dialect", "PREMIGRATE_LINT_DIALECT",
           "lint: SQL dialect (default: the configured database's, else postgresql)", kind="choice",
           choices=("postgresql", "mysql", "sqlite"), commands=("lint",)),
    Option("listen", "--listen", "PREMIGRATE_LISTEN", "serve: address to listen on", default="0.0.0.0:8080",
           metavar="HOST:PORT", commands=("serve",)),
    Option("expect_tables", "--expect-table", "PREMIGRATE_EXPECT_TABLES",
           "serve: a table that must exist (repeatable; the variable takes a comma-separated list)", kind="list",
           metavar="TABLE", commands=("serve",)),
    Option("health_cache", "--health-cache", "PREMIGRATE_HEALTH_CACHE",
           "serve: how long a database health reading is reused", kind="duration", default="2s",
           metavar="DURATION", commands=("serve",)),
    Option("unhealthy_after", "--unhealthy-after", "PREMIGRATE_UNHEALTHY_AFTER",
           "serve: /healthz answers 503 once database health readings have been failing for this long (0: never)",
           kind="duration", default="5m", metavar="DURATION", commands=("serve",)),
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
    "password_command": _ONLINE,
}


def options_for(command: str) -> tuple[Option, ...]:
    """The options `command` reads, in table order: its own, and the shared ones it uses."""
    return tuple(o for o in OPTIONS if command in (o.commands or SHARED_USES.get(o.dest, ALL_COMMANDS)))
OPTIONS_BY_DEST = {o.dest: o for o in OPTIONS}
SECRET_FILE_VARS = ("DATABASE_URL_FILE", "DB_PASSWORD_FILE")
PLACEHOLDER_PREFIX = "PREMIGRATE_PLACEHOLDER_"
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL", re.I)
DISCRETE_VARS = ("DB_DIALECT", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_PASSWORD_FILE")


@dataclass(frozen=True)
class Config:
    command: str
    dsn: Dsn
    dsn_source: str
    migrations_dir: Path
    table: str
    schema: str | None
    wait_timeout: float | None
    lock_timeout: float | None
    log_format: str
    log_level: str
    strict: bool = False
    allow_out_of_order: bool = False
    require_database: bool = False
    json_output: bool = False  # --json: commands print JSON instead of text
    default_sqlite: bool = False
    secrets: tuple[str, ...] = field(default=(), repr=False)
    placeholder_values: dict[str, str] = field(default_factory=dict, repr=False)
    # The process environment as cli/ read it: goose's `-- +goose ENVSUB ON` sections substitute from it.
    environment: dict[str, str] = field(default_factory=dict, repr=False)
    stdin_is_tty: bool = False
    # Command-specific sections: a command's own options are set, the others keep their defaults.
    locking: LockSettings = field(default_factory=LockSettings)
    connection: ConnectionSettings = field(default_factory=ConnectionSettings)
    statements: StatementSettings = field(default_factory=StatementSettings)
    folder: FolderSettings = field(default_factory=FolderSettings)
    apply: ApplySettings = field(default_factory=ApplySettings)
    down: DownSettings = field(default_factory=DownSettings)
    check: CheckSettings = field(default_factory=CheckSettings)
    repair: RepairSettings = field(default_factory=RepairSettings)
    baseline: BaselineSettings = field(default_factory=BaselineSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    lint: LintSettings = field(default_factory=LintSettings)
    new: NewSettings = field(default_factory=NewSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)
    verify: VerifySettings = field(default_factory=VerifySettings)
    callbacks: CallbackSettings = field(default_factory=CallbackSettings)

    @property
    def history_schema(self) -> str | None:
        return self.table.split(".", 1)[0] if "." in self.table else self.schema

    @property
    def history_table_name(self) -> str:
        return self.table.rsplit(".", 1)[-1]

    def summary_fields(self) -> dict[str, object]:
        return {
            "database": self.dsn.redacted(),
            "database_source": self.dsn_source,
            "dialect": self.dsn.dialect,
            "dir": str(self.migrations_dir),
            "table": self.table,
            "schema": self.schema,
            "wait_timeout_s": self.wait_timeout,
            "lock_timeout_s": self.lock_timeout,
        }


def _parse_bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UsageError(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def resolve_option(option: Option, flags: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """The option's value from its flag, else its environment variable, else its default, validated."""
    raw = flags.get(option.dest)
    source: str | None = option.flag
    if raw is None or (raw is False and option.kind == "bool"):
        if option.env in env:
            raw, source = env[option.env], option.env
        else:
            raw, source = option.default, None
    if raw is None:
        return None
    if option.kind == "bool":
        return raw if isinstance(raw, bool) else _parse_bool(raw, source or option.env)
    if option.kind == "duration":
        try:
            return parse_duration(str(raw))
        except ValueError as exc:
            raise UsageError(f"{source or option.flag}: {exc}") from None
    if option.kind == "int":
        text = str(raw).strip()
        if not text.isdigit() or int(text) < 1:
            raise UsageError(f"{source or option.flag}={raw!r} is not a whole number of at least 1")
        return int(text)
    if option.kind == "count":
        text = str(raw).strip()
        if not text.isdigit():
            raise UsageError(f"{source or option.flag}={raw!r} is not a whole number (0 or more)")
        return int(text)
    if option.kind == "version":
        try:
            return Version.parse(str(raw).strip())
        except ValueError:
            raise UsageError(f"{source or option.flag}={raw!r} is not a version (digits, optionally dotted: 3, "
                             "20260113155307, 1.2)") from None
    if option.kind == "list":
        items = raw if isinstance(raw, list) else str(raw).split(",")
        return tuple(item.strip() for item in items if item.strip())
    if option.kind == "shard":
        from premigrate.model.fleet import parse_shard  # only a fleet pays for it

        return parse_shard(str(raw), source=source or option.flag)
    if option.kind == "choice":
        value = str(raw).strip().lower()
        if value not in option.choices:
            raise UsageError(f"{source or option.flag}={raw!r} is not one of {', '.join(option.choices)}")
        return value
    return raw


def read_secret_file(var: str, path: str, read: Callable[[str], str]) -> str:
    try:
        content = read(path)
    except OSError as exc:
        raise UsageError(f"{var}: cannot read {path!r}: {exc.strerror or exc}; mount the secret there or unset "
                         f"{var}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{var}: {path!r} is not UTF-8 text") from None
    # Secrets written with `echo` end in a newline; exactly one is dropped, as Docker and Kubernetes users expect.
    return content[:-1] if content.endswith("\n") else content


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def validate_identifier(value: str, what: str, *, allow_qualified: bool) -> str:
    parts = value.split(".")
    if len(parts) > 2 or (len(parts) == 2 and not allow_qualified):
        hint = " (schema.table is allowed on PostgreSQL only)" if len(parts) == 2 else ""
        raise UsageError(f"{what} {value!r} is not a valid name{hint}; use letters, digits and _")
    for part in parts:
        if not _IDENTIFIER.match(part) or len(part.encode()) > 63:
            raise UsageError(
                f"{what} {value!r} is not a valid SQL identifier: use letters, digits and _ "
                "(not starting with a digit), at most 63 bytes"
            )
    return value


def load_config(
    command: str,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    stderr_is_tty: bool = False,
    stdin_is_tty: bool = False,
    read_file: Callable[[str], str] = _read_text,
) -> Config:
    values = {o.dest: resolve_option(o, flags, env) for o in OPTIONS if not o.commands or command in o.commands}
    if (values.get("targets") or values.get("targets_query")) and values.get("shard") is None:
        from premigrate.model.fleet import shard_from_environment

        values["shard"] = shard_from_environment(env)
    if values.get("targets") and values.get("targets_query"):
        raise UsageError("--targets and --targets-query are both set; give the fleet's targets one way")
    require = bool(values["require_database"]) and command not in OFFLINE_COMMANDS
    dsn, dsn_source, default_sqlite = _resolve_dsn(flags, env, read_file, require=require)
    table_source = "--table" if flags.get("table") is not None or "PREMIGRATE_TABLE" not in env else "PREMIGRATE_TABLE"
    table = validate_identifier(values["table"], table_source, allow_qualified=dsn.dialect == "postgresql")
    schema = values.get("schema")
    if schema is not None:
        if dsn.dialect != "postgresql":
            raise UsageError(
                f"--schema applies to PostgreSQL only; on {dsn.dialect} the database named in the URL is the schema"
            )
        schema = validate_identifier(schema, "--schema", allow_qualified=False)
    if "lock_lease" in values and not values["lock_lease"]:  # "0" parses as "no limit"
        raise UsageError("--lock-lease must be more than 0 (e.g. 30s): a lease of no time could never be held")
    directory = str(values["dir"]).strip()
    if not directory:
        raise UsageError("--dir is empty; name the folder that holds the migration files")
    placeholder_values = {k[len(PLACEHOLDER_PREFIX):]: v for k, v in env.items() if k.startswith(PLACEHOLDER_PREFIX)}
    # Placeholder values that look like credentials are scrubbed from logs like the database password; so are the
    # environment's, which goose ENVSUB sections may substitute into a statement (same rule: the name says secret).
    sections = sections_from(command, values, flags)
    scratch = sections["verify"].scratch
    secrets = tuple(dsn.secrets()) + tuple(scratch.secrets() if scratch else ()) + tuple(
        v for k, v in placeholder_values.items() if v and _SECRET_NAME.search(k))
    secrets += tuple(dict.fromkeys(v for k, v in env.items() if v and _SECRET_NAME.search(k)
                                   and not k.startswith(PLACEHOLDER_PREFIX) and v not in secrets))
    return Config(
        command=command,
        dsn=dsn,
        dsn_source=dsn_source,
        migrations_dir=Path(directory),
        table=table,
        schema=schema,
        wait_timeout=values["wait_timeout"],
        lock_timeout=values["lock_timeout"],
        log_format=values["log_format"] or ("console" if stderr_is_tty else "json"),
        log_level=values["log_level"],
        strict=bool(values["strict"]),
        allow_out_of_order=bool(values["allow_out_of_order"]),
        require_database=bool(values["require_database"]),
        json_output=bool(values.get("json")),
        default_sqlite=default_sqlite,
        secrets=secrets,
        placeholder_values=placeholder_values,
        environment=dict(env),
        stdin_is_tty=stdin_is_tty,
        **sections,
    )


def _resolve_dsn(
    flags: Mapping[str, Any], env: Mapping[str, str], read_file: Callable[[str], str], *, require: bool
) -> tuple[Dsn, str, bool]:
    url, source = _resolve_url(flags, env, read_file)
    password = _resolve_password(env, read_file)
    discrete = {k: env[k] for k in DISCRETE_VARS
                if env.get(k, "") != "" and k not in ("DB_PASSWORD", "DB_PASSWORD_FILE")}
    if url is not None:
        dsn = parse_url(url, source=source)
        if source != "--database-url":
            _check_agreement(dsn, discrete, source)
        if password is not None:
            if dsn.password is not None and dsn.password != password:
                raise UsageError(f"{source} and DB_PASSWORD disagree on the password; set it in one place only")
            dsn = dsn.with_password(password)
        return dsn, source, False
    if discrete:
        return _dsn_from_discrete(discrete, password), "DB_* variables", False
    if require:
        raise UsageError(
            "no database configured: set DATABASE_URL (or DATABASE_URL_FILE, or DB_DIALECT/DB_HOST/DB_NAME/...); "
            "PREMIGRATE_REQUIRE_DATABASE forbids the SQLite fallback"
        )
    return Dsn(dialect="sqlite", database=DEFAULT_SQLITE_FILE), "default", True


def _resolve_url(
    flags: Mapping[str, Any], env: Mapping[str, str], read_file: Callable[[str], str]
) -> tuple[str | None, str]:
    if flags.get("database_url") is not None:
        return flags["database_url"], "--database-url"
    present = [name for name in ("DATABASE_URL", "PREMIGRATE_DATABASE_URL", "DATABASE_URL_FILE") if env.get(name)]
    if len(present) > 1:
        raise UsageError(f"{' and '.join(present)} are both set; set only one of them")
    if not present:
        return None, ""
    name = present[0]
    if name == "DATABASE_URL_FILE":
        return read_secret_file(name, env[name], read_file).strip(), f"DATABASE_URL_FILE ({env[name]})"
    return env[name], name


def _resolve_password(env: Mapping[str, str], read_file: Callable[[str], str]) -> str | None:
    if env.get("DB_PASSWORD") and env.get("DB_PASSWORD_FILE"):
        raise UsageError("DB_PASSWORD and DB_PASSWORD_FILE are both set; set only one of them")
    if env.get("DB_PASSWORD_FILE"):
        return read_secret_file("DB_PASSWORD_FILE", env["DB_PASSWORD_FILE"], read_file)
    return env.get("DB_PASSWORD") or None


def _port(value: str) -> int:
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UsageError(f"DB_PORT={value!r} is not a port number between 1 and 65535")
    return int(value)


def _dsn_from_discrete(values: Mapping[str, str], password: str | None) -> Dsn:
    if "DB_DIALECT" not in values:
        raise UsageError(f"{', '.join(values)} set without DB_DIALECT; set DB_DIALECT=postgresql, mysql or sqlite")
    dialect = normalize_dialect(values["DB_DIALECT"], source="DB_DIALECT")
    if dialect == "sqlite":
        if not values.get("DB_NAME"):
            raise UsageError("DB_DIALECT=sqlite needs DB_NAME, the path of the database file")
        return Dsn(dialect="sqlite", database=values["DB_NAME"])
    if not values.get("DB_NAME"):
        raise UsageError(f"DB_DIALECT={values['DB_DIALECT']} needs DB_NAME, the database to migrate")
    host = values.get("DB_HOST") or "localhost"
    # DB_HOST is a host name or address only (on PostgreSQL also a socket directory, which starts with '/'): a
    # user, password, port or path pasted into it would be read as another host.
    if any(c in host for c in "@#?") or ("/" in host and not (dialect == "postgresql" and host.startswith("/"))):
        raise UsageError(
            "DB_HOST must be a host name or address only; put the user in DB_USER, the password in DB_PASSWORD, "
            "the port in DB_PORT and the database in DB_NAME")
    return Dsn(
        dialect=dialect,
        host=host,
        port=_port(values["DB_PORT"]) if "DB_PORT" in values else DEFAULT_PORTS[dialect],
        user=values.get("DB_USER"),
        password=password,
        database=values["DB_NAME"],
    )


def _check_agreement(dsn: Dsn, discrete: Mapping[str, str], source: str) -> None:
    """A URL and DB_* variables may both be set only where they say the same thing."""
    url_values: dict[str, object] = {
        "DB_DIALECT": dsn.dialect,
        "DB_HOST": dsn.host,
        "DB_PORT": dsn.port or DEFAULT_PORTS.get(dsn.dialect),
        "DB_NAME": dsn.database,
        "DB_USER": dsn.user,
    }
    for name, value in discrete.items():
        if name == "DB_DIALECT":
            given: object = normalize_dialect(value, source=name)
        elif name == "DB_PORT":
            given = _port(value)
        else:
            given = value
        if given != url_values[name]:
            raise UsageError(f"{source} and {name} disagree; set the database in one place only")
