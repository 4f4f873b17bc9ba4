"""Plain command lines are parsed without argparse (cli/parser.py parse_plain), to the flags argparse yields."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from premigrate.cli import parser as cli
from premigrate.config import OPTIONS
from premigrate.errors import UsageError

_COMMANDS = [c for c in cli.COMMANDS if c != "new"]
# Values argparse takes as they are: empty, spaced, holding '=', a command's name, a flag's name after '=' only.
_VALUES = ["x", "", "a b", "k=v", "up", "ünïcode", "5s"]


def _argparse(argv: list[str]) -> dict[str, Any]:
    return vars(cli.build_parser().parse_args(argv))


def _accepted(command: str) -> list[Any]:
    return [o for o in OPTIONS if not o.commands or command in o.commands]


def _cases() -> list[Any]:
    cases = []
    for command in _COMMANDS:
        cases.append(pytest.param([command], id=f"{command}-bare"))
        every: list[str] = [command]
        for n, option in enumerate(_accepted(command)):
            value = _VALUES[n % len(_VALUES)]
            if option.kind == "bool":
                words = [option.flag]
            elif n % 2:
                words = [f"{option.flag}={value}"]
            else:
                words = [option.flag, value]
            cases.append(pytest.param([command, *words], id=f"{command}{option.flag}"))
            every += words
        cases.append(pytest.param(every, id=f"{command}-every-option"))
    cases += [
        pytest.param(["up", "--dir", "a", "--dir=b", "--dry-run", "--dry-run"], id="repeated"),
        pytest.param(["serve", "--expect-table", "a", "--expect-table=b", "--expect-table", "c"], id="list-appends"),
        pytest.param(["up", "--shard=-1/3", "--targets", "t"], id="attached-dash-value"),
        pytest.param(["up", "--dir=--json"], id="attached-flag-like-value"),
        pytest.param(["baseline", "--version", "3"], id="baseline-version"),
    ]
    return cases


class TestPlainCommandLines:
    @pytest.mark.parametrize("argv", _cases())
    def test_same_flags_as_argparse(self, argv: list[str]) -> None:
        plain = cli.parse_plain(argv)
        assert plain is not None
        assert _argparse(argv) == plain == cli.parse_args(argv)

    @pytest.mark.parametrize("argv", [
        pytest.param([], id="empty"),
        pytest.param(["--help"], id="help"),
        pytest.param(["up", "--help"], id="command-help"),
        pytest.param(["up", "-h"], id="short-help"),
        pytest.param(["--version"], id="version"),
        pytest.param(["up", "--di", "x"], id="abbreviation"),
        pytest.param(["up", "--placeholder", "a=1"], id="abbreviation-of-a-switch"),
        pytest.param(["--dir", "x", "up"], id="global-option-first"),
        pytest.param(["up", "--dir", "-x"], id="dash-value"),
        pytest.param(["up", "--shard", "-1/3"], id="negative-looking-value"),
        pytest.param(["up", "--targets", "-"], id="stdin-dash"),
        pytest.param(["up", "--dir"], id="missing-value"),
        pytest.param(["up", "--json=1"], id="switch-with-value"),
        pytest.param(["new", "add users"], id="positional-command"),
        pytest.param(["up", "--", "x"], id="double-dash"),
        pytest.param(["up", "extra"], id="stray-word"),
        pytest.param(["status", "--listen", "x"], id="option-of-another-command"),
        pytest.param(["upp"], id="unknown-command"),
        pytest.param(["up", "--bogus"], id="unknown-option"),
        pytest.param(["status", "--database-url=--"], id="attached-double-dash"),  # argparse drops the '--'
    ])
    def test_other_shapes_go_to_argparse(self, argv: list[str]) -> None:
        """parse_plain declines; parse_args then answers with argparse's flags, message or help as before."""
        assert cli.parse_plain(argv) is None

    @pytest.mark.parametrize("argv", [
        pytest.param(["up", "--di", "x"], id="abbreviation"),
        pytest.param(["up", "--dir", "-x"], id="dash-value"),
        pytest.param(["up", "--targets", "-"], id="stdin-dash"),
        pytest.param(["--dir", "x", "up"], id="global-option-first"),
    ])
    def test_declined_but_valid_lines_still_parse(self, argv: list[str]) -> None:
        try:
            expected: object = _argparse(cli._attach_dash_values(argv))
        except UsageError as exc:
            expected = exc.message
        try:
            got: object = cli.parse_args(argv)
        except UsageError as exc:
            got = exc.message
        assert expected == got

    @pytest.mark.parametrize("argv", [
        pytest.param(["status", "--database-url=--"], id="value"),
        pytest.param(["serve", "--expect-table=--"], id="list"),
    ])
    def test_flag_equals_double_dash_is_a_usage_error(self, argv: list[str]) -> None:
        """argparse leaves such a flag without a value (an empty list): refused here, not a crash later."""
        with pytest.raises(UsageError, match=rf"^{argv[1][:-3]} has no value .*see premigrate --help$"):
            cli.parse_args(argv)

    def test_a_plain_up_never_imports_argparse(self) -> None:
        code = ("import sys\nfrom premigrate.cli import parse_args\nparse_args(['up', '--dir', 'm', '--dry-run'])\n"
                "print(sorted(m for m in ('argparse', 'gettext', 'premigrate.cli.argparser') if m in sys.modules))")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "[]" == result.stdout.strip(), result.stderr
