"""Command output on standard output: what happens when it cannot be written."""

from __future__ import annotations

import errno
import io

import pytest

from premigrate.commands.report import write_stdout
from premigrate.errors import UsageError

pytestmark = pytest.mark.unit


class _Full(io.StringIO):
    def flush(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")


class _Closed(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def test_a_full_device_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """`status --json > /dev/full`: a usage error saying why (exit 2), not a traceback."""
    monkeypatch.setattr("sys.stdout", _Full())
    with pytest.raises(UsageError, match="cannot write the output to standard output: No space left on device"):
        write_stdout("{}")


def test_a_closed_pipe_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    """`premigrate plan | head`: the reader went away; nothing to report."""
    monkeypatch.setattr("sys.stdout", _Closed())
    write_stdout("line")
