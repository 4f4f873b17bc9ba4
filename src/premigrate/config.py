"""Configuration: every option in one table, resolved by a pure function from (flags, environment).

Precedence: flag > environment > default. Nothing here reads os.environ: the CLI passes the environment in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from premigrate.model.durations import parse_duration
from premigrate.model.dsn import DEFAULT_PORTS, Dsn, normalize_dialect, parse_url
from premigrate.errors import UsageError
from premigrate.model.versions import Version
# The option table lives in options.py; `from premigrate.config import OPTIONS` keeps working.
from premigrate.options import DEFAULT_SQLITE_FILE as DEFAULT_SQLITE_FILE
from premigrate.options import DEFAULT_TABLE as DEFAULT_TABLE
from premigrate.options import FLEET_COMMANDS as FLEET_COMMANDS
from premigrate.options import OFFLINE_COMMANDS as OFFLINE_COMMANDS
from premigrate.options import OPTIONS as OPTIONS
from premigrate.options import OPTIONS_BY_DEST as OPTIONS_BY_DEST
from premigrate.options import ALL_COMMANDS as ALL_COMMANDS
from premigrate.options import SHARED_USES as SHARED_USES
from premigrate.options import Option as Option
from premigrate.options import options_for as options_for
from premigrate.settings import (
    ApplySettings, BaselineSettings, CallbackSettings, CheckSettings, ConnectionSettings, DownSettings, FleetSettings,
    FolderSettings, LintSettings, LockSettings, NewSettings, RepairSettings, ServeSettings, StatementSettings,
    VerifySettings, sections_from,
)

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


SECRET_FILE_VARS = ("DATABASE_URL_FILE", "DB_PASSWORD_FILE")
PLACEHOLDER_PREFIX = "PREMIGRATE_PLACEHOLDER_"
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|KEY|CREDENTIAL", re.I)
DISCRETE_VARS = ("DB_DIALECT", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD", "DB_PASSWORD_FILE")


@dataclass(frozen=True)
class Config:
    """Everything a command run was configured with, read once from flags, environment and files."""
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
    # Where each option that was given came from, its flag or its environment variable (see named()).
    sources: dict[str, str] = field(default_factory=dict, repr=False)
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

    def named(self, dest: str) -> str:
        """How a message names an option: by what set it, so that a value from the environment is not blamed on a
        flag nobody passed."""
        return _named(self.sources, dest)

    def option_text(self, dest: str, value: object) -> str:
        """An option with its value as it was given: `--to 7`, or `PREMIGRATE_TO=7`."""
        name = self.named(dest)
        return f"{name} {value}" if name.startswith("--") else f"{name}={value}"

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


def _named(sources: Mapping[str, str], dest: str) -> str:
    return sources.get(dest) or OPTIONS_BY_DEST[dest].flag


def _parse_bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise UsageError(f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def option_source(option: Option, flags: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """Where the option's value comes from: its flag, its environment variable, or None (its default). An absent
    boolean flag parses as False, which must leave the choice to the environment."""
    given = flags.get(option.dest)
    if given is not None and not (given is False and option.kind == "bool"):
        return option.flag
    return option.env if option.env in env else None


def resolve_option(option: Option, flags: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """The option's value from its flag, else its environment variable, else its default, validated."""
    source = option_source(option, flags, env)
    raw = flags[option.dest] if source == option.flag else env[option.env] if source else option.default
    if raw is None:
        return None
    if option.kind == "bool":
        return raw if isinstance(raw, bool) else _parse_bool(raw, source or option.env)
    if option.kind == "duration":
        try:
            return parse_duration(str(raw))
        except ValueError as exc:
            if option.zero:  # the shared message says "0 for no limit", which is not what this option's 0 means
                raise UsageError(f"{source or option.flag}: {str(raw)!r} is not a duration: use e.g. 500ms, 30s, 5m, "
                                 f"1h, a number of seconds, or 0 for {option.zero}") from None
            raise UsageError(f"{source or option.flag}: {exc}") from None
    if option.kind == "int":
        text = str(raw).strip()
        if not _digits(text) or int(text) < 1:
            raise UsageError(f"{source or option.flag}={raw!r} is not a whole number of at least 1")
        return int(text)
    if option.kind == "count":
        text = str(raw).strip()
        if not _digits(text):
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
    except IsADirectoryError:
        # The classic mistake: the Secret volume's mount path, where the file is one of its keys inside it.
        raise UsageError(f"{var}: {path!r} is a folder; name the file inside it that holds the value (a Kubernetes "
                         "Secret volume holds one file per key: <mountPath>/<key>), or mount the key with subPath") \
            from None
    except PermissionError:
        raise UsageError(f"{var}: {path!r} cannot be read by this user (uid {_uid()}); make it readable to it (a "
                         "Kubernetes Secret volume's defaultMode, or the pod's fsGroup)") from None
    except OSError as exc:
        raise UsageError(f"{var}: cannot read {path!r}: {exc.strerror or exc}; mount the secret there or unset "
                         f"{var}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{var}: {path!r} is not UTF-8 text") from None
    # Secrets written with `echo` end in a newline; exactly one line ending is dropped, as Docker and Kubernetes users
    # expect, and a file saved on Windows ends its line with \r\n: kept, the \r made a password that never matched.
    return content.removesuffix("\r\n") if content.endswith("\r\n") else content.removesuffix("\n")


MIN_LEASE_S = 1.0


def _uid() -> str:
    getuid = getattr(os, "getuid", None)
    return str(getuid()) if getuid is not None else "?"


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
    read = [o for o in OPTIONS if not o.commands or command in o.commands]
    values = {o.dest: resolve_option(o, flags, env) for o in read}
    sources = {o.dest: source for o in read if (source := option_source(o, flags, env)) is not None}

    def named(dest: str) -> str:
        return _named(sources, dest)

    if (values.get("targets") or values.get("targets_query")) and values.get("shard") is None:
        from premigrate.model.fleet import shard_from_environment

        values["shard"] = shard_from_environment(env)
    if values.get("targets") and values.get("targets_query"):
        raise UsageError(f"{named('targets')} and {named('targets_query')} are both set; give the fleet's targets "
                         "one way")
    require = bool(values["require_database"]) and command not in OFFLINE_COMMANDS
    dsn, dsn_source, default_sqlite = _resolve_dsn(flags, env, read_file, require=require)
    no_database_ok = (*OFFLINE_COMMANDS, "wait", "completion", "verify")
    if (dsn.dialect == "mysql" and not dsn.database and command not in no_database_ok
            and not (values.get("targets") or values.get("targets_query"))):
        # The server would answer "No database selected" to the first history query: exit 4, as if a migration
        # had failed. (A fleet's database= targets name theirs; `wait` needs none; `verify` works in a scratch one.)
        raise UsageError(f"{dsn_source} names no database; MySQL keeps the history table in one: add it to the URL "
                         "(mysql://user@host/NAME)")
    table = validate_identifier(values["table"], named("table"), allow_qualified=dsn.dialect == "postgresql")
    schema = values.get("schema")
    if schema is not None:
        if dsn.dialect != "postgresql":
            raise UsageError(f"{named('schema')} applies to PostgreSQL only; on {dsn.dialect} the database named in "
                             "the URL is the schema")
        schema = validate_identifier(schema, named("schema"), allow_qualified=False)
    if "lock_lease" in values and (not values["lock_lease"] or values["lock_lease"] < MIN_LEASE_S):
        # "0" parses as "no limit". The heartbeat renews three times per lease over the network: a lease shorter
        # than a second would expire between two renewals of a healthy run and read as a lost lock (exit 8).
        raise UsageError(f"{named('lock_lease')} must be at least {MIN_LEASE_S:g}s (e.g. 30s): a shorter lease "
                         "expires between the heartbeat's renewals, and the run would stop as if it had lost the lock")
    directory = str(values["dir"]).strip()
    if not directory:
        raise UsageError(f"{named('dir')} is empty; name the folder that holds the migration files")
    _check_dependent(command, values, sources)
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
        sources=sources,
        **sections,
    )


def _check_dependent(command: str, values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    """Values that mean nothing as given are refused rather than ignored: whoever set them expects an effect."""
    password_command = values.get("password_command")
    if password_command is not None and not str(password_command).strip():
        raise UsageError(f"{_named(sources, 'password_command')} is empty; set it to the command that prints the "
                         "password (e.g. 'aws rds generate-db-auth-token --hostname H --port 5432 --username U'), or "
                         "unset it")
    if not (values.get("targets") or values.get("targets_query")):
        for dest in ("shard", "concurrency", "fail_fast"):
            if dest in sources and values.get(dest) not in (None, False):  # PREMIGRATE_FAIL_FAST=0 asks nothing
                raise UsageError(f"{_named(sources, dest)} applies to a fleet only, and no targets are given: add "
                                 "--targets FILE or --targets-query SQL (PREMIGRATE_TARGETS, PREMIGRATE_TARGETS_QUERY),"
                                 " or drop it")
    if command == "check" and "check_timeout" in sources and not values["check_wait"]:
        raise UsageError(f"{_named(sources, 'check_timeout')} needs --wait: a plain check reads the history once and "
                         "does not wait; add --wait (PREMIGRATE_CHECK_WAIT=1) or drop the timeout")


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
    if password is not None:
        # A password with nothing to use it on: the URL or the DB_* variables went missing (a secret mounted, the
        # ConfigMap not), and the SQLite fallback would migrate a throwaway file and report success.
        given = "DB_PASSWORD_FILE" if env.get("DB_PASSWORD_FILE") else "DB_PASSWORD"
        raise UsageError(f"{given} is set but no database is: set DATABASE_URL (or DB_DIALECT, DB_HOST, DB_NAME, "
                         "...) for the database it is the password of")
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


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() also takes "²", which int() then refuses."""
    return text.isascii() and text.isdigit()


def _port(value: str) -> int:
    if not _digits(value) or not 0 < int(value) < 65536:
        raise UsageError(f"DB_PORT={value!r} is not a port number between 1 and 65535")
    return int(value)


def _dsn_from_discrete(values: Mapping[str, str], password: str | None) -> Dsn:
    if "DB_DIALECT" not in values:
        raise UsageError(f"{', '.join(values)} set without DB_DIALECT; set DB_DIALECT=postgresql, mysql or sqlite")
    dialect = normalize_dialect(values["DB_DIALECT"], source="DB_DIALECT", scheme=False)
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
            given: object = normalize_dialect(value, source=name, scheme=False)
        elif name == "DB_PORT":
            given = _port(value)
        else:
            given = value
        if given != url_values[name]:
            raise UsageError(f"{source} and {name} disagree; set the database in one place only")
