"""The command line's parser: the commands, and two shortcuts before the full argparse parser (cli/argparser.py): a
plain command line, a pod's, is read without argparse (importing it and building a parser is about 5 ms of a no-op
`up`); any other first meets a parser that knows only the command named (building all twelve subparsers costs more
than a no-op `up` spends on its database)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from premigrate.config import OPTIONS, Option
from premigrate.errors import UsageError

if TYPE_CHECKING:
    import argparse

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


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argparse parser of the command line (cli/argparser.py); with `only`, one that knows that command alone."""
    from premigrate.cli import argparser

    return argparser.build_parser(only)


def parse_args(argv: list[str]) -> dict[str, Any]:
    """The flags of a command line, with "command": what the full argparse parser yields, whichever parser answers.

    A plain command line (a pod's) needs no argparse at all (parse_plain). Otherwise the first word naming a command
    is usually the command (it may also be an option's value, as in `--dir up status`): a parser that knows only it
    is tried. Whenever that parser would print or fail, the full parser parses again, so help, --version and every
    error message come out exactly as they always have. When it succeeds, the full parser would have taken the same
    path: same global options, same subparser."""
    plain = parse_plain(argv)
    if plain is not None:
        return plain
    from premigrate.cli.argparser import NeedFullParser

    argv = _attach_dash_values(argv)
    command = next((word for word in argv if word in COMMANDS), None)
    if command is not None:
        try:
            flags = vars(build_parser(only=command).parse_args(argv))
        except NeedFullParser:
            pass
        else:
            if flags.get("command") == command:
                return _with_values(flags)
    try:
        return _with_values(vars(build_parser().parse_args(argv)))
    except UsageError:  # `premigrate --dry-run up`: a flag only the command accepts, given before it
        own = {o.flag for o in OPTIONS if command in o.commands}
        misplaced = [w.split("=", 1)[0] for w in argv[:argv.index(command)] if w.split("=", 1)[0] in own] \
            if command is not None else []
        if not misplaced:
            raise
        raise UsageError(f"{misplaced[0]} must come after the command: premigrate {command} {misplaced[0]} ...") \
            from None


def _with_values(flags: dict[str, Any]) -> dict[str, Any]:
    """argparse drops a '--' even from `--flag=--`, and then yields an empty list for the flag: a usage error here,
    not a crash of the configuration that expects text."""
    for option in OPTIONS:
        value = flags.get(option.dest)
        if isinstance(value, list) and (option.kind != "list" or any(isinstance(v, list) for v in value)):
            raise UsageError(f"{option.flag} has no value ({option.flag}=-- gives none: argparse drops the '--'); "
                             "see premigrate --help")
    return flags


def parse_plain(argv: list[str]) -> dict[str, Any] | None:
    """The flags of a command line in the plain shape, as argparse would yield them; None for any other shape.

    Plain: the command first (not `new`, which takes a positional), then only options that command accepts, each
    spelled in full: `--flag value` (a value not starting with '-'), `--flag=value`, or a switch alone. argparse
    takes exactly these words so: an exact flag wins over abbreviations; a value not starting with '-' is never
    read as an option; a repeated option keeps its last value, a list option appends, a switch is True; an absent
    option is absent (every option's argparse default is SUPPRESS: cli/help.py). Anything else (help, --version,
    abbreviations, a global option before the command, `--`, a value starting with '-', a mistake) goes to argparse,
    which answers as it always has; TestPlainCommandLines holds the two to the same result."""
    if not argv or argv[0] not in COMMANDS or argv[0] == "new":
        return None
    command = argv[0]
    accepted = _accepted(command)
    flags: dict[str, Any] = {"command": command}
    words = iter(argv[1:])
    for word in words:
        flag, attached, value = word.partition("=")
        option = accepted.get(flag)
        if option is None:
            return None
        if option.kind == "bool":
            if attached:
                return None  # argparse: "ignored explicit argument"
            flags[option.dest] = True
            continue
        if not attached:
            following = next(words, None)
            if following is None or following.startswith("-"):
                return None
            value = following
        elif value == "--":
            return None  # argparse drops a '--' even from `--flag=--` (and then has no value)
        if option.kind == "list":
            flags.setdefault(option.dest, []).append(value)
        else:
            flags[option.dest] = value
    return flags


def _accepted(command: str) -> dict[str, Option]:
    """The options a command's parser accepts, by flag: its own and every command's (cli/help.py add_options)."""
    return {o.flag: o for o in OPTIONS if not o.commands or command in o.commands}


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
