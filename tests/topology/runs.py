"""Helpers of the topology acceptance tests: migration folders that count their own runs, and runners whose log
lines can be waited for while they run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import cli_env

# Every migration records itself in this table: each version must appear exactly once, whatever the concurrency.
COUNTED = "CREATE TABLE IF NOT EXISTS applied_log (version text NOT NULL);\n"


def counted_migration(folder: Path, version: int, body: str = "", *, mysql: bool = False) -> None:
    """V{version}: creates table t{version} and records itself in applied_log (`body` goes first)."""
    text = "varchar(32)" if mysql else "text"
    (folder / f"{version:04d}_m{version}.sql").write_text(
        f"{body}CREATE TABLE IF NOT EXISTS applied_log (version {text} NOT NULL);\n"
        f"CREATE TABLE t{version} (id int);\n"
        f"INSERT INTO applied_log (version) VALUES ('{version}');\n")


class Runner:
    """A `premigrate` subprocess whose stderr lines are collected as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "premigrate", *args], env=cli_env(env), cwd=cwd,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.lines: list[str] = []
        self.stdout = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"event": "unparsed", "line": line})
        return out

    def find(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if predicate(event):
                    return event
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"no such log line within {timeout} s; got: {''.join(self.lines)[-3000:]}")

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def finish(self, timeout: float = 300.0) -> int:
        """Wait for the exit; stderr stays with the reader thread (communicate() would take lines from it)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        self._reader.join(timeout=10)
        assert self.proc.stdout is not None
        self.stdout = self.proc.stdout.read()
        return self.proc.returncode

    def output(self) -> str:
        return self.stdout + "".join(self.lines)

    def kill(self) -> None:
        """Clean-up: SIGKILL (after SIGCONT, for a stopped runner)."""
        if self.proc.poll() is None:
            for signum in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(self.proc.pid, signum)
                except ProcessLookupError:
                    pass
            self.proc.wait()
