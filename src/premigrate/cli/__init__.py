"""Command line: argv and os.environ are read here and only here; main() returns the exit code."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from premigrate import __version__, collector, held_events, kept
from premigrate.config import OFFLINE_COMMANDS, OPTIONS_BY_DEST, Config, load_config, resolve_option
from premigrate.errors import Interrupted, PremigrateError, UsageError
from premigrate.engine.interrupts import SignalGuard
from premigrate.eventlog import EventLog
from premigrate.cli.help import EXAMPLES as EXAMPLES, usage
from premigrate.cli.parser import COMMANDS as COMMANDS, build_parser as build_parser, named_command, parse_args
from premigrate.cli.summary import (  # noqa: F401 (re-exported: names the package had)
    READ_ONLY_COMMANDS, TERMINATION_MESSAGE_BYTES, finish_run, fit_termination_message, interruption_note,
    summary_counts,
)

if TYPE_CHECKING:
    from pathlib import Path

    from premigrate.commands.common import CommandRun
    from premigrate.engine.tracing import Tracer
    from premigrate.engine.runstats import RunStats


def _completion(args: list[str]) -> int:
    """`premigrate completion SHELL`: the script on stdout; anything else is a one-line usage error (exit 2)."""
    from premigrate.cli.completion import SHELLS, script

    if len(args) != 1 or args[0] not in SHELLS:
        sys.stderr.write(f"usage: premigrate completion {{{','.join(SHELLS)}}}  (e.g. eval \"$(premigrate "
                         "completion bash)\")\n")
        return 0 if args in (["--help"], ["-h"]) else 2
    sys.stdout.write(script(args[0], COMMANDS))
    return 0


def _early_log_settings(flags: Mapping[str, Any], env: Mapping[str, str], stderr_is_tty: bool) -> tuple[str, str]:
    """Log format and level before the full configuration is known, so that its errors are logged properly."""
    try:
        fmt = resolve_option(OPTIONS_BY_DEST["log_format"], flags, env)
    except UsageError:
        fmt = None
    try:
        level = resolve_option(OPTIONS_BY_DEST["log_level"], flags, env)
    except UsageError:
        level = "info"
    return fmt or ("console" if stderr_is_tty else "json"), level


def _early_secrets(flags: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """Passwords visible before the configuration is parsed, so that even an error about the configuration itself
    is scrubbed (the parsed configuration registers the definitive list)."""
    from urllib.parse import unquote, urlsplit

    secrets = [env.get("DB_PASSWORD", "")]
    for url in (flags.get("database_url"), env.get("DATABASE_URL"), env.get("PREMIGRATE_DATABASE_URL"),
                flags.get("scratch_url"), env.get("PREMIGRATE_SCRATCH_URL")):
        if not url:
            continue
        try:
            password = urlsplit(url.strip()).password
        except ValueError:
            password = None
        if password:
            secrets += [password, unquote(password)]
    return [s for s in secrets if s]


def run() -> NoReturn:
    """The `premigrate` command: main(), then exit without the interpreter's teardown.

    Tearing down the modules a database driver loads costs CPU on every pod start for nothing (bench/ measures a
    no-op run): by now every session is closed and every file written, and the kernel reclaims the rest. Output is
    flushed first.
    """
    code = main()
    held_events.release()  # a run's last held events, if an exit path came past the executor's own release
    kept.save()  # the dataclass methods and patterns this run compiled (premigrate/kept.py)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said anyway
            pass
    os._exit(code)


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    started = time.monotonic()
    env = os.environ if env is None else env
    argv = sys.argv[1:] if argv is None else list(argv)
    stderr_is_tty = sys.stderr.isatty()
    # https://no-color.org: any non-empty NO_COLOR turns colour off; output that is not a terminal never has it.
    # TERM=dumb: a terminal that understands no escape sequence, so neither colours nor a live line (liveline.py).
    terminal = stderr_is_tty and env.get("TERM") != "dumb"
    display = {"colours": terminal and not env.get("NO_COLOR"), "terminal": terminal}
    from premigrate import log as logging_setup

    command = "?"
    if not argv:
        sys.stderr.write(usage(COMMANDS))
        return 2
    if argv[0] == "completion":
        return _completion(argv[1:])
    try:
        flags = parse_args(argv)
        command = flags.pop("command")
    except UsageError as exc:
        command = named_command(argv)
        fmt, level = _early_log_settings({}, env, stderr_is_tty)
        logging_setup.configure(log_format=fmt, level=level, secrets=_early_secrets({}, env), **display)
        return finish_run(logging_setup.get_logger(), command, exc.exit_code, started, error=exc)
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)

    fmt, level = _early_log_settings(flags, env, stderr_is_tty)
    logging_setup.configure(log_format=fmt, level=level, secrets=_early_secrets(flags, env), **display)
    log = logging_setup.get_logger()
    tracers: list[Tracer] = []
    try:
        return _guarded_run(command, flags, env, started, log, stderr_is_tty, display, tracers)
    finally:
        for tracer in tracers:  # after the summary: a bounded flush, whatever the collector does
            tracer.shutdown()


def _guarded_run(command: str, flags: dict[str, Any], env: Mapping[str, str], started: float, log: EventLog,
                 stderr_is_tty: bool, display: dict[str, bool], tracers: list[Tracer]) -> int:
    """The command under the signal guard and its trace span; the summary line at the end, whatever happens."""
    from premigrate import log as logging_setup

    stats: RunStats | None = None
    fleet: dict[str, object] | None = None
    measured: dict[str, object] = {}

    def give_up(signum: int, grace_s: float) -> None:
        logging_setup.get_logger().error(
            "cleanup_timed_out", signal=str(Interrupted(signum)), grace_s=grace_s, exit_code=128 + signum,
            error="the clean-up after the signal did not finish (the database stopped answering); exiting anyway: "
                  "the runner lock ends with its session, and an unfinished row tells the next run where it stopped")

    with SignalGuard(on_give_up=give_up) as guard:
        try:
            config = load_config(command, flags, env, stderr_is_tty=stderr_is_tty, stdin_is_tty=sys.stdin.isatty())
            logging_setup.configure(log_format=config.log_format, secrets=config.secrets, **display,
                                    level=_level(config, flags, env, stderr_is_tty))
            log = logging_setup.get_logger()
            if config.default_sqlite and command not in OFFLINE_COMMANDS and not config.fleet.active:
                log.warning("no_database_configured", database=config.dsn.redacted(),
                            note="migrating a local SQLite file; set DATABASE_URL to migrate a real database")
            log.info("config_loaded", command=command, version=__version__, **_loaded_fields(config))
            from premigrate.commands.common import CommandRun

            tracer = _tracer(config, env, log)
            tracers.append(tracer)
            command_run = CommandRun(config, log, guard, tracer=tracer)
            stats = command_run.stats
            try:
                with tracer.run(command) as span:
                    code = _dispatch(command_run)
                    if code not in (0, 7):
                        span.fail(f"exit code {code}")
            finally:
                fleet = command_run.fleet_summary
                measured = command_run.stats.summary_fields() if command == "up" else {}
        except Interrupted as exc:
            log.warning("interrupted", signal=str(exc), exit_code=exc.exit_code,
                        note=interruption_note(command, stats))
            return finish_run(log, command, exc.exit_code, started, stats=stats, flags=flags, env=env,
                           measured=measured, fleet=fleet)
        except PremigrateError as exc:
            return finish_run(log, command, exc.exit_code, started, error=exc, stats=stats, flags=flags, env=env,
                           measured=measured, fleet=fleet)
        except Exception as exc:  # noqa: BLE001 - a bug: report it as one structured event with its traceback
            log.error("internal_error", error=f"{type(exc).__name__}: {exc}", exc_info=True)
            return finish_run(log, command, 1, started, stats=stats, flags=flags, env=env, measured=measured,
                           fleet=fleet)
    return finish_run(log, command, code, started, stats=stats, flags=flags, env=env, measured=measured, fleet=fleet)


def _tracer(config: Config, env: Mapping[str, str], log: EventLog) -> Tracer:
    """The run's tracer: a no-op (nothing of OpenTelemetry imported) unless OTEL_* settings ask for traces."""
    from premigrate.engine.tracing import Database, tracer_from_env

    dsn = config.dsn
    namespace = f"{dsn.database}|{config.schema}" if dsn.dialect == "postgresql" and config.schema else dsn.database
    tracer = tracer_from_env(env, secrets=config.secrets, version=__version__,
                             database=Database(dsn.dialect, namespace, dsn.host, dsn.port))
    if tracer.disabled_reason:
        log.warning("tracing_disabled", reason=tracer.disabled_reason, note="the run goes on untraced")
    return tracer


# At a terminal these log only warnings and errors unless a level is asked for: their output is a table or a list.
QUIET_AT_A_TERMINAL = ("status", "check", "plan", "lint", "new")


def _level(config: Config, flags: Mapping[str, Any], env: Mapping[str, str], stderr_is_tty: bool) -> str:
    explicit = flags.get("log_level") is not None or "PREMIGRATE_LOG_LEVEL" in env
    # check --wait prints no table, and its check_waiting lines are all a person waiting has to go on.
    quiet = config.command in QUIET_AT_A_TERMINAL and not config.check.wait
    return "warning" if stderr_is_tty and not explicit and quiet else config.log_level


def _loaded_fields(config: Config) -> dict[str, object]:
    """config_loaded's fields; the commands that never open the database do not name one."""
    fields = config.summary_fields()
    if config.command in OFFLINE_COMMANDS:
        for key in ("database", "database_source", "wait_timeout_s", "lock_timeout_s", "table", "schema"):
            fields.pop(key, None)
        if config.command == "new" or (config.command == "lint" and config.default_sqlite):
            fields.pop("dialect", None)  # new takes none; lint's comes from the folder then (lint_done names it)
        if config.command == "lint" and config.lint.dialect:
            fields["dialect"] = config.lint.dialect
    elif config.command == "wait":
        fields.pop("dir", None)  # wait never reads the folder
    return fields


def _confirm(question: str) -> bool:
    try:
        answer = input(question)
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def _dispatch(command_run: CommandRun) -> int:
    """Load the command's module (imported only when that command runs), end the start-up, run the command."""
    command_function = _command_function(command_run)
    collector.resume()  # start-up is over: from here on the run makes garbage worth collecting (collector.py)
    return command_function()


def _command_function(command_run: CommandRun) -> Callable[[], int]:
    config = command_run.config
    command = config.command
    if config.fleet.active:
        from premigrate.commands import fleet

        return lambda: fleet.run_command(command_run)
    if command == "up":
        from premigrate.commands import up

        return lambda: up.run(command_run)
    if command == "plan":
        from premigrate.commands import plan

        return lambda: plan.run(command_run)
    if command in ("status", "check"):
        from premigrate.commands import status

        return lambda: status.run(command_run) if command == "status" else status.check(command_run)
    if command == "wait":
        from premigrate.commands import wait

        return lambda: wait.run(command_run)
    if command == "baseline":
        from premigrate.commands import baseline

        return lambda: baseline.run(command_run)
    if command == "down":
        from premigrate.commands import down

        return lambda: down.run(command_run, confirm=_confirm if config.stdin_is_tty else None)
    if command == "new":
        return lambda: _new(command_run)
    if command == "repair":
        from premigrate.commands import repair

        return lambda: repair.run(command_run)
    if command == "lint":
        return lambda: _lint(command_run)
    if command == "verify":
        from premigrate.commands import verify

        return lambda: verify.run(command_run)
    if command == "serve":
        from premigrate.commands.serve import serve

        return lambda: int(serve(config, command_run.log, listen=config.serve.listen,
                                 expect_tables=config.serve.expect_tables or (),
                                 cache_seconds=config.serve.health_cache or 0.0,
                                 unhealthy_after=config.serve.unhealthy_after))
    raise UsageError(f"unknown command {command!r}")


def _new(command_run: CommandRun) -> int:
    from datetime import datetime, timezone

    from premigrate.commands import new as scaffold
    from premigrate.commands.report import write_stdout

    config = command_run.config
    if not config.migrations_dir.is_dir():
        raise UsageError(f"migrations folder {str(config.migrations_dir)!r} does not exist; create it or point "
                         f"{config.named('dir')} at it")
    created = scaffold.create(config.migrations_dir, command_run.load(), config.new.description or "",
                              config.new.file_format, datetime.now(timezone.utc))
    for path in created:
        command_run.log.info("migration_created", path=str(path))
    write_stdout("\n".join(str(p) for p in created))
    return 0


def _declared_dialect(folder: Path) -> str | None:
    """With no database configured, the database the folder says its SQL is for (a Drizzle journal's dialect, a
    Prisma lock file's provider): `lint` then reads the SQL as `up` would run it."""
    from premigrate.model.formats import drizzle, prisma

    return drizzle.declared_dialect(folder) or prisma.declared_dialect(folder)


def _lint(command_run: CommandRun) -> int:
    from premigrate.commands import lint
    from premigrate.commands.report import write_stdout

    config = command_run.config
    dialect = config.lint.dialect or (_declared_dialect(config.migrations_dir) or "postgresql"
                                      if config.default_sqlite else config.dsn.dialect)
    findings = lint.lint_migrations(command_run.load().all, dialect)
    write_stdout(lint.render_json(findings) if config.json_output else lint.render_text(findings))
    errors = sum(f.severity == "error" for f in findings)
    command_run.log.info("lint_done", dialect=dialect, findings=len(findings), errors=errors)
    return 5 if lint.has_errors(findings) else 0
