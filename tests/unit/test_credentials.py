"""engine.credentials: --password-command runs a real command per connection, and its output never leaks."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from premigrate import log
from premigrate.engine.credentials import PasswordCommand, PasswordCommandFailed, registered_secrets
from premigrate.errors import UsageError


def script(tmp_path: Path, body: str, name: str = "token.py") -> str:
    """A Python script as the command, with a path that needs quoting (a space)."""
    folder = tmp_path / "bin dir"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(body)
    return f"{sys.executable} '{path}'"


def printing(tmp_path: Path, output: bytes) -> PasswordCommand:
    return PasswordCommand.parse(script(tmp_path, f"import sys; sys.stdout.buffer.write({output!r})"))


class TestParse:
    def test_split_like_a_shell_without_one(self, tmp_path: Path) -> None:
        """Quotes group words; $VARS, globs and pipes stay literal arguments."""
        command = PasswordCommand.parse("tool --name 'a b' $HOME '*' '|' x")
        assert ("tool", "--name", "a b", "$HOME", "*", "|", "x") == command.argv
        assert "tool" == command.program

    @pytest.mark.parametrize("text", [pytest.param("", id="empty"), pytest.param("   ", id="blank"),
                                      pytest.param("tool 'unclosed", id="unbalanced-quote")])
    def test_bad_values_are_usage_errors(self, text: str) -> None:
        """Exit 2 with a one-line message naming the option."""
        with pytest.raises(UsageError, match="--password-command") as error:
            PasswordCommand.parse(text)
        assert 2 == error.value.exit_code
        assert "\n" not in str(error.value)


class TestPassword:
    @pytest.mark.parametrize(("output", "password"), [
        pytest.param(b"tok3n\n", "tok3n", id="one-newline"),
        pytest.param(b"tok3n", "tok3n", id="no-newline"),
        pytest.param(b"tok3n\r\n", "tok3n", id="crlf"),
        pytest.param(b" spaced tok3n \n", " spaced tok3n ", id="spaces-kept"),
        pytest.param("pässwörd\n".encode(), "pässwörd", id="utf-8"),
    ])
    def test_stdout_less_one_trailing_newline_is_the_password(self, tmp_path: Path, output: bytes,
                                                             password: str) -> None:
        """Exactly one trailing newline is removed; everything else is the password."""
        assert password == printing(tmp_path, output)()

    def test_every_call_runs_the_command_again(self, tmp_path: Path) -> None:
        """No caching: each new connection gets a fresh token."""
        counter = str(tmp_path / "calls")
        command = PasswordCommand.parse(script(tmp_path, (
            f"import pathlib; p = pathlib.Path({counter!r}); n = int(p.read_text()) + 1 if p.exists() else 1;"
            " p.write_text(str(n)); print(f'token-{n}')")))
        assert ["token-1", "token-2", "token-3"] == [command() for _ in range(3)]

    def test_the_command_inherits_the_environment(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Cloud CLIs find their credentials in the environment (AWS_PROFILE, ...)."""
        monkeypatch.setenv("PM_TEST_TOKEN_SOURCE", "from-env")
        command = PasswordCommand.parse(script(tmp_path, "import os; print(os.environ['PM_TEST_TOKEN_SOURCE'])"))
        assert "from-env" == command()


class TestFailures:
    SECRET_OUTPUT = "sup3r-s3cret-output"

    def assert_failed(self, command: PasswordCommand, match: str) -> PasswordCommandFailed:
        with pytest.raises(PasswordCommandFailed, match=match) as failed:
            command()
        error = failed.value
        assert 3 == error.exit_code
        assert "\n" not in str(error)
        assert self.SECRET_OUTPUT not in str(error) and self.SECRET_OUTPUT not in repr(error.fields)
        return error

    def test_a_failing_command_is_named_but_its_output_is_not_shown(self, tmp_path: Path) -> None:
        """Exit 3 naming the program and the status; neither its stdout nor its stderr appears."""
        command = PasswordCommand.parse(script(tmp_path, (
            f"import sys; print({self.SECRET_OUTPUT!r}); print({self.SECRET_OUTPUT!r}, file=sys.stderr);"
            " sys.exit(7)")) + f" --token={self.SECRET_OUTPUT}")
        error = self.assert_failed(command, "exited with status 7")
        assert sys.executable in str(error)
        assert "output is not shown" in str(error)

    def test_a_missing_program_is_named(self, tmp_path: Path) -> None:
        """Not found: the message says which program and how to fix it."""
        missing = str(tmp_path / "no-such-tool")
        error = self.assert_failed(PasswordCommand.parse(f"{missing} --secret {self.SECRET_OUTPUT}"), "not found")
        assert missing in str(error)

    def test_a_command_that_is_not_executable(self, tmp_path: Path) -> None:
        """Permission denied is its own message."""
        path = tmp_path / "token.sh"
        path.write_text("#!/bin/sh\necho x\n")
        path.chmod(0o644)
        if os.geteuid() == 0:
            path.chmod(0o000)  # root may execute any file with an x bit: leave none
        self.assert_failed(PasswordCommand.parse(str(path)), "cannot be executed")

    def test_a_hanging_command_is_stopped_with_everything_it_started(self, tmp_path: Path) -> None:
        """Past the timeout the command's whole process group is killed; the error says so."""
        child_pid = tmp_path / "child.pid"
        command = PasswordCommand.parse(script(tmp_path, (
            "import subprocess, sys, time;"
            f" child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
            f" open({str(child_pid)!r}, 'w').write(str(child.pid)); print({self.SECRET_OUTPUT!r}, flush=True);"
            " time.sleep(60)")), timeout_s=1.0)
        self.assert_failed(command, r"did not finish within 1 s")
        pid = int(child_pid.read_text())
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "the command's child outlived the timeout"

    def test_a_command_killed_by_a_signal(self, tmp_path: Path) -> None:
        """Death by signal is reported by the signal's name."""
        command = PasswordCommand.parse(script(tmp_path, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"))
        self.assert_failed(command, "killed by SIGKILL")

    @pytest.mark.parametrize(("output", "match"), [
        pytest.param(b"", "printed nothing", id="empty"),
        pytest.param(b"\n", "printed nothing", id="only-a-newline"),
        pytest.param(b"tok3n\nWARNING: " + SECRET_OUTPUT.encode() + b"\n", "more than one line", id="two-lines"),
        pytest.param(b"tok3n\n\n", "more than one line", id="two-newlines"),
        pytest.param(b"\xff\xfe" + SECRET_OUTPUT.encode(), "not UTF-8", id="not-utf-8"),
    ])
    def test_output_that_is_not_one_password_is_refused(self, tmp_path: Path, output: bytes, match: str) -> None:
        """Nothing, several lines or undecodable bytes: refused without showing them."""
        self.assert_failed(printing(tmp_path, output), match)


class TestScrubbing:
    def test_the_password_is_scrubbed_from_every_log_line(self, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
        """Registered before it is returned: loggers bound before and after both print *** in its place."""
        log.configure(log_format="json", level="info", secrets=["static-secret"])
        early = log.get_logger().bind(step="connect")
        password = printing(tmp_path, b"rot@ting/t0ken-4711\n")()
        assert password in registered_secrets()
        early.info("connect_failed", error=f"auth failed with {password}",
                   url="postgresql://u:rot%40ting%2Ft0ken-4711@h/db")
        log.get_logger().info("connected", note=f"token {password}; old static-secret")
        err = capsys.readouterr().err
        assert password not in err
        assert "rot%40ting" not in err
        lines = [json.loads(line) for line in err.splitlines()]
        assert "auth failed with ***" == lines[0]["error"]
        assert "postgresql://u:***@h/db" == lines[0]["url"]
        assert "token ***; old ***" == lines[1]["note"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
