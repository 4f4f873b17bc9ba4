"""A fleet's targets: the list (a file, standard input or a query's rows), this shard's slice, and the configuration
that points the single-target command at each one, checked whole before any target runs (docs/fleet.md)."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from premigrate.commands.common import CommandRun
from premigrate.config import Config
from premigrate.drivers import driver_class
from premigrate.errors import PremigrateError, UsageError
from premigrate.model.dsn import DEFAULT_PORTS, Dsn
from premigrate.model.fleet import Target, TargetKind, parse_targets, select, targets_from_rows


def read_targets(command: CommandRun) -> list[Target]:
    """The fleet's targets: the list file (or stdin), or the query's rows; then this shard's slice."""
    config = command.config
    fleet = config.fleet
    if fleet.targets is not None:
        # Named as given (--targets FILE or PREMIGRATE_TARGETS=FILE): not blamed on a flag nobody passed.
        source = "standard input" if fleet.targets == "-" else config.option_text("targets", fleet.targets)
        try:
            if fleet.targets == "-":
                text = sys.stdin.read()
            else:
                with open(fleet.targets, encoding="utf-8") as handle:
                    text = handle.read()
        except OSError as exc:
            raise UsageError(f"{source}: cannot read it: {exc.strerror or exc}; give a file listing one target "
                             "per line") from None
        except UnicodeDecodeError:
            raise UsageError(f"{source}: not UTF-8 text") from None
        targets = parse_targets(text, source=source)
    else:
        targets = _query_targets(command, fleet.targets_query or "")
    return select(targets, fleet.shard)


def _query_targets(command: CommandRun, sql: str) -> list[Target]:
    config = command.config
    dialect = config.dsn.dialect
    name = config.named("targets_query")
    if dialect == "sqlite":
        raise UsageError(f"{name}: SQLite has no schemas or databases to list; give SQLite files with "
                         "--targets, one sqlite:/// URL per line")
    kind = TargetKind.SCHEMA if dialect == "postgresql" else TargetKind.DATABASE
    with command.sessions.session(read_only=True) as driver:
        try:
            # fetch() binds parameters (none here), so both drivers read `%` as a placeholder's start: `%%` is
            # the literal `%` of a LIKE pattern.
            rows = driver.fetch(sql.replace("%", "%%"), ())
        except PremigrateError as exc:
            raise UsageError(f"{name} failed on {config.dsn.redacted()}: {exc.message}") from None
    return targets_from_rows(rows, kind=kind, source=name)


def target_config(base: Config, target: Target) -> Config:
    """The configuration that points the command at one target. Refuses what cannot mean anything there."""
    dialect = base.dsn.dialect
    if dialect == "postgresql" and target.kind is not TargetKind.URL and len(target.value.encode()) > 63:
        raise UsageError(f"target {target.name}: PostgreSQL names are at most 63 bytes (longer ones are cut "
                         "short by the server, which would migrate another schema or database)")
    if target.kind is TargetKind.SCHEMA:
        if dialect != "postgresql":
            raise UsageError(f"target {target.name}: schema= targets need PostgreSQL (the configured database is "
                             f"{dialect}); on MySQL/MariaDB use database=NAME")
        if base.schema is not None:
            # Named as given: a manifest's PREMIGRATE_SCHEMA is not blamed on a --schema nobody passed.
            raise UsageError(f"target {target.name}: {base.option_text('schema', base.schema)} is set too; a schema= "
                             f"target names its own schema: drop {base.named('schema')}")
        if "." in base.table:
            raise UsageError(f"target {target.name}: {base.option_text('table', base.table)} names a schema of its "
                             "own, so every schema target would share one history table; give "
                             f"{base.named('table')} without a schema")
        return replace(base, schema=target.value)
    if target.kind is TargetKind.DATABASE:
        if dialect == "sqlite":
            raise UsageError(f"target {target.name}: SQLite targets are files; list each as a sqlite:/// URL")
        return replace(base, dsn=replace(base.dsn, database=target.value))
    dsn = target.dsn
    assert dsn is not None
    if base.schema is not None and dsn.dialect != "postgresql":
        raise UsageError(f"target on line {target.line}: {base.named('schema')} applies to PostgreSQL only and "
                         f"this target is {dsn.dialect}")
    if "." in base.table and dsn.dialect != "postgresql":
        raise UsageError(f"target on line {target.line}: {base.option_text('table', base.table)} names a schema, "
                         "which only PostgreSQL has")
    try:  # a bad parameter is the list's error, found before any target runs
        driver_class(dsn.dialect).check_url(dsn)
    except UsageError as exc:
        raise UsageError(f"target on line {target.line} ({target.name}): {exc.message}") from None
    configured = base.dsn
    if dsn.password is None and configured.password is not None and _login(dsn) == _login(configured):
        # The configured server's password (DB_PASSWORD_FILE, DATABASE_URL_FILE, ...) serves a URL line on the same
        # server as the same user: the list need not hold it in clear.
        dsn = dsn.with_password(configured.password)
    return replace(base, dsn=dsn, secrets=base.secrets + tuple(dsn.secrets()))


def _login(dsn: Dsn) -> tuple[object, ...]:
    """Who connects where, as the server sees it: a port left out is the dialect's default."""
    return dsn.dialect, dsn.host, dsn.port or DEFAULT_PORTS.get(dsn.dialect), dsn.user


def _place(config: Config) -> tuple[object, ...]:
    """Where a target's history lives, however its line was written: a file, or a server's database and schema."""
    dsn = config.dsn
    if dsn.dialect == "sqlite":
        # The file itself: a symbolic link to it is the same target (and the same lock file).
        return dsn.dialect, os.path.realpath(dsn.database or "")
    # A PostgreSQL target without a schema keeps its history where the search_path puts it: `public` for every
    # role without a schema of its own name, so a URL line beside schema=public is the same target, taken twice.
    schema = config.schema or ("public" if dsn.dialect == "postgresql" and "." not in config.table else None)
    return _login(dsn)[:3] + (dsn.database, schema)


def check_targets(base: Config, targets: Sequence[tuple[Target, Config]]) -> None:
    """What can be known wrong before any target runs, beyond each line: the configured URL's parameters, which every
    schema= and database= target connects with (a bad one would fail each of them in turn), and duplicates."""
    if any(target.kind is not TargetKind.URL for target, _ in targets):
        driver_class(base.dsn.dialect).check_url(base.dsn)
    refuse_duplicates(targets)


def refuse_duplicates(targets: Sequence[tuple[Target, Config]]) -> None:
    """One target written twice (database=X beside a URL of the same database) would run twice: refused."""
    seen: dict[tuple[object, ...], Target] = {}
    for target, config in targets:
        first = seen.setdefault(_place(config), target)
        if first is not target:
            raise UsageError(f"target {target.name} is {first.name} again, written another way; list each target "
                             "once")
