"""What `premigrate COMMAND --help` and a bare `premigrate` show: the options a command reads, grouped, and examples."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from premigrate.config import OPTIONS, Option, options_for

if TYPE_CHECKING:
    import argparse


# Help groups, by option: the command's own options come first under "COMMAND options".
_GROUPS = (
    ("database", ("database_url", "wait_timeout", "require_database")),
    ("migrations and history", ("dir", "table", "schema", "strict", "allow_out_of_order")),
    ("locks and statements", ("lock_timeout", "ddl_lock_timeout", "statement_timeout", "lock_retries",
                              "placeholders")),
    ("output", ("json", "log_format", "log_level")),
)
_GROUP_OF = {dest: title for title, dests in _GROUPS for dest in dests}

EXAMPLES: dict[str, tuple[str, ...]] = {
    "up": ("DATABASE_URL=postgresql://app@db/app premigrate up", "premigrate up --to 20260101120000 --dry-run",
           "premigrate up --single-transaction --lock-timeout 2m"),
    "status": ("premigrate status", "premigrate status --json | jq '.pending'"),
    "check": ("premigrate check && echo current",
              "premigrate check --wait --timeout 10m     # an app's initContainer waits for the migration Job"),
    "wait": ("premigrate wait --wait-timeout 2m",),
    "plan": ("premigrate plan", "premigrate plan --to 3 --json"),
    "baseline": ("premigrate baseline --version 5", "premigrate baseline --from flyway"),
    "down": ("premigrate down --steps 1", "premigrate down --to 3 --yes"),
    "new": ("premigrate new 'add users email index'", "premigrate new 'create orders' --format goose"),
    "lint": ("premigrate lint", "premigrate lint --dialect mysql --json"),
    "serve": ("premigrate serve --listen 0.0.0.0:8080 --expect-table users",),
    "repair": ("premigrate repair", "premigrate repair --resume", "premigrate repair --mark-applied 4"),
    "verify": ("premigrate verify", "premigrate verify --json > verify.json",
               "premigrate verify --scratch-url postgresql://ci@localhost/scratch --yes"),
}


def _option_kwargs(option: Option) -> dict[str, Any]:
    import argparse  # here, not at the top: a plain command line is parsed without argparse (cli/parser.py)

    help_text = f"{option.help} [env {option.env}"
    help_text += f"; default {option.default}]" if option.default not in (None, False) else "]"
    kwargs: dict[str, Any] = {"dest": option.dest, "help": help_text, "default": argparse.SUPPRESS}
    if option.kind == "bool":
        kwargs["action"] = "store_true"
    elif option.kind == "list":
        kwargs["action"] = "append"
        kwargs["metavar"] = option.metavar or "VALUE"
    else:
        kwargs["metavar"] = option.metavar or (option.choices and "{" + ",".join(option.choices) + "}") or "VALUE"
    return kwargs


def add_options(parser: argparse.ArgumentParser, command: str | None) -> None:
    """The options `parser` accepts. A command's help lists the ones it reads, grouped; shared options it does not
    read are still accepted (one set of flags for every command in a script) but not listed."""
    import argparse  # only a parser being built reads it (cli/parser.py parses a plain command line without it)

    if command is None:
        for option in OPTIONS:
            if not option.commands:
                parser.add_argument(option.flag, **_option_kwargs(option))
        return
    used = {o.dest for o in options_for(command)}
    groups = {f"{command} options": parser.add_argument_group(f"{command} options")}
    for option in OPTIONS:
        if option.commands and command not in option.commands:
            continue
        kwargs = _option_kwargs(option)
        if option.dest not in used:
            parser.add_argument(option.flag, **dict(kwargs, help=argparse.SUPPRESS))
            continue
        title = f"{command} options" if option.commands and option.dest not in _GROUP_OF else \
            _GROUP_OF.get(option.dest, "other")
        if title not in groups:
            groups[title] = parser.add_argument_group(title)
        groups[title].add_argument(option.flag, **kwargs)


def command_epilog(command: str) -> str:
    lines = ["examples:"] + [f"  {example}" for example in EXAMPLES.get(command, ())]
    lines += ["", "exit codes, the environment and durations: premigrate --help"]
    return "\n".join(lines)


def usage(commands: Mapping[str, str]) -> str:
    """What a bare `premigrate` prints: the commands, and where to read more."""
    import textwrap  # here, not at the top: only help text needs it, and every run imports this module

    width = max(len(name) for name in commands)
    lines = ["usage: premigrate COMMAND [OPTIONS]", "", "commands:"]
    for name, summary in commands.items():
        wrapped = textwrap.wrap(summary, 96 - width)
        lines.append(f"  {name:<{width}}  {wrapped[0]}")
        lines += [" " * (width + 4) + more for more in wrapped[1:]]
    lines += ["", "premigrate COMMAND --help lists a command's options; premigrate --help the exit codes;",
              "premigrate completion bash|zsh|fish prints a shell completion script."]
    return "\n".join(lines) + "\n"
