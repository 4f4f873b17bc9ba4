"""A fleet at a terminal: the live progress line (one line rewritten in place, log lines above it), erased at the end
and on SIGTERM; never when stderr is a pipe, the log is JSON or TERM is dumb."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.helpers import LIVENESS_S, write
from tests.e2e.test_fleet import FleetOf, targets_file
from tests.support import cli_env, run_cli

ERASE = "\r\x1b[K"
RENDER = re.compile(r"fleet: (\d+) done, (\d+) failed, (\d+) remaining, [0-9.]+/s, [^\r\n\x1b]*")
CLOCK = re.compile(r"\d\d:\d\d:\d\d ")


class AtATerminal:
    """premigrate with stderr on a pseudo-terminal (stdout a pipe); what the terminal was sent, as it arrives."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        base = {k: v for k, v in cli_env().items() if k not in ("PREMIGRATE_LOG_FORMAT", "NO_COLOR", "TERM")}
        master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "premigrate", *args], env={**base, **env},
                                     stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL, text=True)
        os.close(slave)
        self._master = master
        self._shown = b""
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            with self._lock:
                self._shown += chunk
        os.close(self._master)

    @property
    def shown(self) -> str:
        with self._lock:
            return self._shown.decode()

    def wait_for(self, pattern: str) -> None:
        deadline = time.monotonic() + LIVENESS_S
        while re.search(pattern, self.shown) is None:
            assert time.monotonic() < deadline, f"{pattern!r} never shown: {self.shown[-2000:]!r}"
            assert self.proc.poll() is None, f"exited before {pattern!r}: {self.shown[-2000:]!r}"
            time.sleep(0.05)

    def finish(self) -> tuple[int, str, str]:
        stdout = self.proc.stdout.read() if self.proc.stdout else ""
        code = self.proc.wait(timeout=LIVENESS_S)
        self._reader.join(timeout=LIVENESS_S)
        return code, stdout, self.shown


def renders(shown: str) -> list[tuple[int, int, int]]:
    return [(int(m[1]), int(m[2]), int(m[3])) for m in RENDER.finditer(shown)]


def assert_tidy(shown: str) -> None:
    """Every drawing of the line is erased before anything else is written, and every log line starts at the start
    of its row: never after, or in the middle of, the progress line."""
    for match in RENDER.finditer(shown):
        assert shown[match.end():match.end() + len(ERASE)] == ERASE, shown[match.start():match.end() + 80]
    for row in shown.split("\n"):
        rest = row.rsplit("\x1b[K", 1)[-1].rstrip("\r")
        assert rest == "" or CLOCK.match(rest), repr(row)


@pytest.fixture
def schemas(tmp_path: Path) -> Iterator[FleetOf]:
    of = FleetOf("pg-schemas", tmp_path)
    try:
        yield of
    finally:
        of.drop()


def fleet_args(folder: Path, targets: Path, *args: str) -> tuple[str, ...]:
    return ("up", "--dir", str(folder), "--targets", str(targets), "--wait-timeout", "1s", *args)


class TestLiveLine:
    def test_counts_and_final_state(self, schemas: FleetOf, migrations_dir: Path, tmp_path: Path) -> None:
        """Four targets one after the other, one failing: the line counts them as they finish, log lines stay whole,
        and the last drawing says 4 done, 1 failed, 0 remaining before it is erased for the fleet's last lines."""
        write(migrations_dir, "001_slow.sql", "SELECT pg_sleep(0.6);\nCREATE TABLE a (id INTEGER);\n")
        lines = schemas.make(4)
        schemas.query(2, "CREATE TABLE a (id INTEGER)")  # this target's migration fails
        targets = targets_file(tmp_path / "targets.txt", lines)
        run = AtATerminal(*fleet_args(migrations_dir, targets, "--concurrency", "1"),
                          env={**schemas.env, "TERM": "xterm", "NO_COLOR": "1"})
        code, stdout, shown = run.finish()

        assert (4, 4) == (code, json.loads(stdout)["exit_code"]), shown[-3000:]
        drawn = renders(shown)
        assert (4, 1, 0) == drawn[-1], drawn
        assert len({done for done, _, _ in drawn} & {1, 2, 3}) >= 2, drawn  # it moved while the fleet ran
        assert all(done + remaining == 4 for done, _, remaining in drawn)
        assert_tidy(shown)
        after = shown[list(RENDER.finditer(shown))[-1].end():]
        assert after.startswith(ERASE) and "fleet_done" in after and "fleet: " not in after
        assert 4 == shown.count("target_done")

    def test_sigterm_erases_it(self, schemas: FleetOf, migrations_dir: Path, tmp_path: Path) -> None:
        """SIGTERM while two of three targets run: the line says it is stopping, its last drawing has the final
        counts (2 stopped, 1 never started), and it is erased before the summary; exit 143."""
        write(migrations_dir, "001_endless.sql", "SELECT pg_sleep(3600);\n")
        targets = targets_file(tmp_path / "targets.txt", schemas.make(3))
        run = AtATerminal(*fleet_args(migrations_dir, targets, "--concurrency", "2"),
                          env={**schemas.env, "TERM": "xterm", "NO_COLOR": "1"})
        run.wait_for(r"fleet: 0 done, 0 failed, 3 remaining")
        run.wait_for(r"migration_started.*\n(.|\n)*migration_started")
        run.proc.send_signal(signal.SIGTERM)
        code, _, shown = run.finish()

        assert 143 == code, shown[-3000:]
        last = list(RENDER.finditer(shown))[-1]
        assert ((2, 2, 1), True) == (renders(shown)[-1], "stopping" in last[0]), last[0]
        assert_tidy(shown)
        assert "fleet_done" in shown[last.end():] and "fleet: " not in shown[last.end():]

    def test_no_line_without_a_terminal(self, schemas: FleetOf, migrations_dir: Path, tmp_path: Path) -> None:
        """stderr a pipe: JSON lines only. At a terminal with JSON asked for, or TERM=dumb: no line either (and no
        escape sequence at all with TERM=dumb)."""
        write(migrations_dir, "001_slow.sql", "SELECT pg_sleep(0.6);\n")
        lines = schemas.make(3)
        for n, env in enumerate(({}, {"TERM": "xterm", "PREMIGRATE_LOG_FORMAT": "json"}, {"TERM": "dumb"})):
            targets = targets_file(tmp_path / f"targets{n}.txt", lines[n:n + 1])
            if n == 0:
                result = run_cli(*fleet_args(migrations_dir, targets), env=schemas.env)
                code, stderr = result.returncode, result.stderr
                assert all(json.loads(line) for line in stderr.splitlines())
            else:
                code, _, stderr = AtATerminal(*fleet_args(migrations_dir, targets), env={**schemas.env, **env}).finish()
            assert (0, False, False, True) == (code, "fleet: " in stderr, "\x1b[K" in stderr, "fleet_done" in stderr), env
            if n == 1:
                assert all(json.loads(line) for line in stderr.splitlines())
            if n == 2:
                assert ("\x1b" in stderr, "\r\n" in stderr) == (False, True)
