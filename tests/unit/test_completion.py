"""Shell completion generated from the option table: bash's own completion machinery is run on the script."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from pathlib import Path

import pytest

from premigrate.cli import COMMANDS, main
from premigrate.cli.completion import script
from premigrate.config import OPTIONS_BY_DEST, options_for


def generated(shell: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert 0 == main(["completion", shell], env={})
    return out.getvalue()


def bash_complete(path: Path, *words: str) -> list[str]:
    """What bash offers for the command line `words` (the last one being completed)."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = (f"source {path}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _premigrate; "
               'printf "%s\\n" "${COMPREPLY[@]}"')
    done = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, timeout=30, check=True)
    return [line for line in done.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "premigrate.bash"
    path.write_text(generated("bash"))
    return path


class TestBash:
    def test_registers_the_function(self, bash_script: Path) -> None:
        """complete -p shows premigrate completed by the generated function."""
        done = subprocess.run(["bash", "--norc", "-c", f"source {bash_script}; complete -p premigrate"],
                              capture_output=True, text=True, timeout=30, check=True)
        assert "complete -F _premigrate premigrate" == done.stdout.strip()

    def test_commands(self, bash_script: Path) -> None:
        """The first word completes to the commands."""
        assert sorted(set(COMMANDS) | {"completion", "--help", "--version"}) == sorted(bash_complete(bash_script,
                                                                                                      "premigrate", ""))

    @pytest.mark.parametrize("command", sorted(COMMANDS))
    def test_each_command_offers_exactly_its_options(self, bash_script: Path, command: str) -> None:
        """After a command, -- completes to the options its help lists, and no other."""
        assert sorted([o.flag for o in options_for(command)] + ["--help"]) == sorted(
            bash_complete(bash_script, "premigrate", command, "--"))

    def test_choices_and_paths(self, bash_script: Path, tmp_path: Path) -> None:
        """A choice option completes to its choices; a PATH option to file names."""
        assert ["console"] == bash_complete(bash_script, "premigrate", "up", "--log-format", "c")
        assert list(OPTIONS_BY_DEST["lint"].choices) == bash_complete(bash_script, "premigrate", "up", "--lint", "")
        (tmp_path / "migrations_here").mkdir()
        assert [str(tmp_path / "migrations_here")] == bash_complete(bash_script, "premigrate", "up", "--dir",
                                                                     str(tmp_path / "migr"))


class TestOtherShells:
    def test_zsh_and_fish_name_every_option_of_every_command(self) -> None:
        """zsh and fish scripts come from the same table: every command and each of its flags appears."""
        zsh, fish = generated("zsh"), generated("fish")
        for command in COMMANDS:
            assert f"    {command}) _arguments" in zsh
            for option in options_for(command):
                assert f"'{option.flag}[" in zsh
                assert f"__fish_seen_subcommand_from {command}' -l {option.flag[2:]} " in fish

    @pytest.mark.parametrize("shell, check", [("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
    def test_syntax(self, shell: str, check: list[str], tmp_path: Path) -> None:
        """The script parses in its shell (where that shell is installed)."""
        if shutil.which(check[0]) is None:
            pytest.skip(f"{check[0]} is not installed")
        path = tmp_path / f"premigrate.{shell}"
        path.write_text(script(shell, COMMANDS))
        done = subprocess.run([*check, str(path)], capture_output=True, text=True, timeout=30)
        assert (0, "") == (done.returncode, done.stderr)

    def test_unknown_shell_is_exit_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An unknown shell: one usage line on stderr, exit 2, nothing on stdout."""
        assert 2 == main(["completion", "tcsh"], env={})
        captured = capsys.readouterr()
        assert ("", 1) == (captured.out, len(captured.err.splitlines()))
