"""The argparse parsers of the command line: the full one (help, --version and every error message come from it),
and one that knows only the command named, which never speaks. cli/parser.py parses the plain command lines of a
pod without them: importing argparse and building a parser is about 5 ms of a no-op `up`."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from premigrate import __version__
from premigrate.errors import EXIT_CODES, UsageError
from premigrate.cli.help import add_options, command_epilog
from premigrate.cli.parser import COMMANDS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}; see premigrate --help")


class NeedFullParser(Exception):
    """The one-command parser met help, a version request or an error: the full parser must answer instead."""


class _OneCommandParser(_Parser):
    """Knows a single command, so it must never speak: its help or errors would list too few commands."""

    def error(self, message: str) -> NoReturn:
        raise NeedFullParser

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise NeedFullParser

    def _print_message(self, message: str, file: Any = None) -> None:
        raise NeedFullParser

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
    """The command line parser; with `only`, one that knows that command alone and raises NeedFullParser instead
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
