"""`premigrate completion bash|zsh|fish`: shell completion scripts generated from the option table, so that a new
option completes the moment it is in config.OPTIONS, for exactly the commands whose help lists it."""

from __future__ import annotations

from collections.abc import Mapping

from premigrate.config import Option, options_for

SHELLS = ("bash", "zsh", "fish")
# Metavars whose values are paths: completed as file names.
_PATH_METAVARS = ("PATH", "FILE")


def _takes_value(option: Option) -> bool:
    return option.kind != "bool"


def _is_path(option: Option) -> bool:
    return (option.metavar or "") in _PATH_METAVARS


def _summary(text: str) -> str:
    """The help's first clause, for zsh and fish descriptions."""
    return text.split(";")[0].split(" (")[0].strip()


def script(shell: str, commands: Mapping[str, str]) -> str:
    if shell == "bash":
        return _bash(commands)
    if shell == "zsh":
        return _zsh(commands)
    return _fish(commands)


def _bash(commands: Mapping[str, str]) -> str:
    names = " ".join(commands)
    value_cases = []
    seen: set[str] = set()
    for command in commands:
        for option in options_for(command):
            if option.flag in seen or not _takes_value(option):
                continue
            seen.add(option.flag)
            if option.choices:
                value_cases.append(f'        {option.flag}) COMPREPLY=($(compgen -W "{" ".join(option.choices)}" '
                                   '-- "$cur")); return;;')
            elif _is_path(option):
                value_cases.append(f'        {option.flag}) COMPREPLY=($(compgen -f -- "$cur")); return;;')
            else:
                value_cases.append(f"        {option.flag}) return;;")
    command_cases = [f'        {command}) words="{" ".join(o.flag for o in options_for(command))} --help";;'
                     for command in commands]
    lines = [
        "# premigrate completion for bash: eval \"$(premigrate completion bash)\"",
        "_premigrate() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
        f'    local commands="{names}" command="" words="" i',
        "    for ((i = 1; i < COMP_CWORD; i++)); do",
        '        case " $commands " in *" ${COMP_WORDS[i]} "*) command="${COMP_WORDS[i]}"; break;; esac',
        "    done",
        '    case "$prev" in',
        *value_cases,
        "    esac",
        '    case "$command" in',
        '        "") words="$commands completion --help --version";;',
        *command_cases,
        "    esac",
        '    COMPREPLY=($(compgen -W "$words" -- "$cur"))',
        "}",
        "complete -F _premigrate premigrate",
    ]
    return "\n".join(lines) + "\n"


def _zsh_quote(text: str) -> str:
    return text.replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh(commands: Mapping[str, str]) -> str:
    described = " ".join(f"'{name}:{_zsh_quote(_summary(summary))}'" for name, summary in commands.items())
    cases = []
    for command in commands:
        specs = []
        for option in options_for(command):
            spec = f"'{option.flag}[{_zsh_quote(_summary(option.help))}]"
            if option.choices:
                spec += f":{option.metavar or 'value'}:({' '.join(option.choices)})"
            elif _is_path(option):
                spec += f":{option.metavar}:_files"
            elif _takes_value(option):
                spec += f":{option.metavar or 'value'}: "
            specs.append(spec + "'")
        cases.append(f"    {command}) _arguments {' '.join(specs)} ;;")
    lines = [
        "#compdef premigrate",
        "# premigrate completion for zsh: premigrate completion zsh > \"${fpath[1]}/_premigrate\"",
        "_premigrate() {",
        f"  local -a commands; commands=({described} 'completion:print a shell completion script')",
        "  if (( CURRENT == 2 )); then _describe command commands; return; fi",
        "  case ${words[2]} in",
        *cases,
        "    completion) _values shell bash zsh fish ;;",
        "  esac",
        "}",
        '_premigrate "$@"',
    ]
    return "\n".join(lines) + "\n"


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _fish(commands: Mapping[str, str]) -> str:
    names = " ".join(commands)
    lines = ["# premigrate completion for fish:",
             "#   premigrate completion fish > ~/.config/fish/completions/premigrate.fish",
             "complete -c premigrate -f"]
    for name, summary in commands.items():
        lines.append(f"complete -c premigrate -n 'not __fish_seen_subcommand_from {names} completion' -a {name} "
                     f"-d {_fish_quote(_summary(summary))}")
    lines.append(f"complete -c premigrate -n 'not __fish_seen_subcommand_from {names} completion' -a completion "
                 "-d 'print a shell completion script'")
    lines.append("complete -c premigrate -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'")
    for command in commands:
        for option in options_for(command):
            line = (f"complete -c premigrate -n '__fish_seen_subcommand_from {command}' -l {option.flag[2:]} "
                    f"-d {_fish_quote(_summary(option.help))}")
            if option.choices:
                line += f" -x -a {_fish_quote(' '.join(option.choices))}"
            elif _is_path(option):
                line += " -r -F"
            elif _takes_value(option):
                line += " -x"
            lines.append(line)
    return "\n".join(lines) + "\n"
