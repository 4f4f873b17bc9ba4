"""The command line's parser: the commands, their options (cli/help.py adds them), and the shortcut of parsing with
a parser that knows only the command named (building all twelve subparsers costs more than a no-op `up` spends on
its database)."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from premigrate import __version__
from premigrate.config import OPTIONS
from premigrate.errors import EXIT_CODES, UsageError
from premigrate.cli.help import add_options, command_epilog

COMMANDS = {
    "up": "wait for the database, take the runner lock, apply pending migrations, record them",
    "status": "list every migration with its state (read-only, no lock)",
    "check": "exit 0 when fully migrated, 7 when migrations are pending, 5 on drift or a failed run (read-only)",
    "wait": "wait until the database accepts connections, then exit 0",
    "plan": "print what `up` would run now, with its SQL; exit 7 when there is work, 0 when none (no lock)",
    "baseline": "record existing migrations as applied without running them (--version V, or --from TOOL)",
    "down": "roll back applied migrations newest first, using their down parts (--steps N or --to V)",
    "new": "create the next migration file in the folder's style and numbering",
    "lint": "flag statements that are unsafe on a live database (no database needed)",
    "serve": "sidecar HTTP server: /healthz, /health/database, /health/ready, /metrics (read-only)",
    "verify": "prove every down part on a scratch database: up, then down and up again per migration, schemas "
              "compared; exit 0 when all verify, 5 otherwise, 4 when the folder does not apply",
    "repair": "show failed or interrupted migrations and settle them: --resume, --mark-applied V, --forget V, "
              "--realign-checksums",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see premigrate --help")


class _NeedFullParser(Exception):
    """The one-command parser met help, a version request or an error: the full parser must answer instead."""


class _OneCommandParser(_Parser):
    """Knows a single command, so it must never speak: its help or errors would list too few commands."""

    def error(self, message: str) -> NoReturn:
        raise _NeedFullParser

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _NeedFullParser

    def _print_message(self, message: str, file: Any = None) -> None:
        raise _NeedFullParser

    def _get_formatter(self) -> argparse.HelpFormatter:
        # Nothing is ever formatted for display here: add_argument only checks its metavar with a formatter. A fixed
        # width spares a terminal-size query per option and the import of shutil (with bz2 and lzma).
        return argparse.RawDescriptionHelpFormatter(prog=self.prog, width=100)


def _epilog() -> str:
    lines = ["exit codes:"] + [f"  {code:<8} {meaning}" for code, meaning in EXIT_CODES]
    lines += [
        "",
        "environment: every flag has the variable shown in its help; flags win over the environment.",
        "  DATABASE_URL_FILE           file holding the URL (Docker/Kubernetes secrets); one line ending dropped",
        "  DB_DIALECT, DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, DB_PASSWORD_FILE",
        "                              the database as separate variables instead of a URL",
        "  PG* variables of libpq (PGHOST, PGSSLMODE, ...) still apply underneath for PostgreSQL",
        "durations: 500ms, 30s, 5m, 1h; a bare number is seconds; 0 means no limit",
        "completion: `premigrate completion bash|zsh|fish` prints a shell completion script",
    ]
    return "\n".join(lines)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line parser; with `only`, one that knows that command alone and raises _NeedFullParser instead
    of printing anything (building all twelve subparsers costs more than a no-op `up` spends on its database)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = (_Parser if only is None else _OneCommandParser)(
        prog="premigrate",
        description="Apply pending SQL migrations before the application starts: wait for the database, take a "
                    "runner lock, apply each pending migration in order, record it, exit non-zero on failure.",
        epilog=_epilog(),
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"premigrate {__version__}")
    # Global flags are accepted before the command too (premigrate --dir x up), not only after it.
    add_options(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                     parser_class=type(parser))
    for name, summary in COMMANDS.items():
        if only is not None and name != only:
            continue
        sub = commands.add_parser(name, help=summary, description=summary, epilog=command_epilog(name),
                                  formatter_class=formatter)
        if name == "new":
            sub.add_argument("new_description", metavar="DESCRIPTION",
                             help="what the migration does, e.g. 'add users email index'")
        add_options(sub, name)
    return parser


def parse_args(argv: list[str]) -> dict[str, Any]:
    # The first word naming a command is usually the command (it may also be an option's value, as in
    # `--dir up status`): try a parser that knows only it. Whenever that parser would print or fail, the full
    # parser parses again, so help, --version and every error message come out exactly as they always have. When it
    # succeeds, the full parser would have taken the same path: same global options, same subparser.
    argv = _attach_dash_values(argv)
    command = next((word for word in argv if word in COMMANDS), None)
    if command is not None:
        try:
            flags = vars(build_parser(only=command).parse_args(argv))
        except _NeedFullParser:
            pass
        else:
            if flags.get("command") == command:
                return flags
    try:
        return vars(build_parser().parse_args(argv))
    except UsageError:  # `premigrate --dry-run up`: a flag only the command accepts, given before it
        own = {o.flag for o in OPTIONS if command in o.commands}
        misplaced = [w.split("=", 1)[0] for w in argv[:argv.index(command)] if w.split("=", 1)[0] in own] \
            if command is not None else []
        if not misplaced:
            raise
        raise UsageError(f"{misplaced[0]} must come after the command: premigrate {command} {misplaced[0]} ...") \
            from None


# The flags that take a value (the next word, unless attached with `=`).
_TAKES_VALUE = frozenset(o.flag for o in OPTIONS if o.kind != "bool")


def _attach_dash_values(argv: list[str]) -> list[str]:
    """`--shard -1/3` as `--shard=-1/3`: argparse takes a value starting with '-' for an option (unless it is a plain
    negative number) and only says one is missing; attached, it reaches the option's own check of the value."""
    words: list[str] = []
    for word in argv:
        if words and words[-1] in _TAKES_VALUE and word[:1] == "-" and word[1:2].isdigit():
            words[-1] = f"{words[-1]}={word}"
        else:
            words.append(word)
    return words


def named_command(argv: list[str]) -> str:
    """The command a command line names, for the summary of one argparse refused: its first word that is neither an
    option nor an option's value, where argparse looks for the command; "?" when that word is not a command
    (`upp --dir status`: a mistyped command, not status)."""
    words = iter(argv)
    for word in words:
        if word == "--":
            break
        if word.startswith("-"):
            if word in _TAKES_VALUE:  # --dir up: "up" is the folder
                next(words, None)
            continue
        return word if word in COMMANDS else "?"
    return "?"
