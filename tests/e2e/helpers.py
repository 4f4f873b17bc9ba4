"""Helpers for the end-to-end tests: migration files, CLI shortcuts, live stderr reading, ports and a TCP proxy."""

from __future__ import annotations

import hashlib
import json
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.support import ROOT, CliResult, TestDatabase, cli_env, popen_cli, run_cli

ENTRYPOINT = ROOT / "entrypoint.py"
ISO_UTC = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00)\Z")
# Liveness bound for anything that should take about a second: generous on purpose, never a speed assertion.
LIVENESS_S = 30.0


# -- migration files --------------------------------------------------------------------------------------------

def write(directory: Path, name: str, text: str) -> Path:
    """Write a migration file as UTF-8 bytes, exactly as given (no newline translation)."""
    path = directory / name
    path.write_bytes(text.encode("utf-8"))
    return path


def file_checksum(text: str) -> str:
    """The checksum premigrate records: sha256 of the text after stripping a BOM and turning CRLF into LF."""
    normalized = text.removeprefix("\ufeff").replace("\r\n", "\n")
    return "sha256:" + hashlib.sha256(normalized.encode()).hexdigest()


def sleep_sql(dialect: str, seconds: float) -> str:
    """A statement that keeps the database busy for about `seconds` (SQLite: a bounded recursive count)."""
    if dialect == "postgresql":
        return f"SELECT pg_sleep({seconds});"
    if dialect == "mysql":
        return f"SELECT SLEEP({seconds});"
    rows = int(seconds * 3_000_000)
    return f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) SELECT count(*) FROM c;"


def endless_sql(dialect: str) -> str:
    """A statement that runs for (practically) ever: an hour on the servers, unbounded on SQLite."""
    if dialect == "postgresql":
        return "SELECT pg_sleep(3600);"
    if dialect == "mysql":
        return "SELECT SLEEP(3600);"
    return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;"


# -- running the CLI ----------------------------------------------------------------------------------------------

def db_env(db: TestDatabase, **extra: str) -> dict[str, str]:
    return {"DATABASE_URL": db.url, **extra}


def up(db: TestDatabase, migrations_dir: Path, *args: str, env: dict[str, str] | None = None,
       cwd: Path | None = None) -> CliResult:
    """`premigrate up --dir <migrations_dir>` against `db`, run in the test's temporary folder."""
    return run_cli("up", "--dir", str(migrations_dir), *args, env={**db_env(db), **(env or {})},
                   cwd=cwd or migrations_dir.parent)


def cmd(command: str, db: TestDatabase, migrations_dir: Path, *args: str) -> CliResult:
    return run_cli(command, "--dir", str(migrations_dir), *args, env=db_env(db), cwd=migrations_dir.parent)


def run_entrypoint(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
                   timeout: float = 120) -> CliResult:
    """`python entrypoint.py ...` (the container's entry) with the same clean environment as run_cli."""
    proc = subprocess.run([sys.executable, str(ENTRYPOINT), *args], env=cli_env(env), cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def output_of(result: CliResult) -> str:
    return result.stdout + result.stderr


def parse_timestamp(value: str) -> datetime:
    assert ISO_UTC.match(value), f"timestamp {value!r} is not ISO-8601 UTC"
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    offset = parsed.utcoffset()
    assert offset is not None and 0 == offset.total_seconds()
    return parsed.astimezone(timezone.utc)


class LiveCli:
    """A premigrate process whose stderr is read line by line in a thread, so a test can wait for an event."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.proc = popen_cli(*args, env=env, cwd=cwd)
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._stdout: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump_stderr, daemon=True),
            threading.Thread(target=self._pump_stdout, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            self._new.put(line)
        self._new.put(None)

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        self._stdout.append(self.proc.stdout.read())

    def wait_for_event(self, name: str, timeout: float = LIVENESS_S,
                       where: Callable[[dict[str, Any]], bool] = lambda e: True) -> dict[str, Any]:
        """The first stderr event called `name` (matching `where`); fails if the process ends or time runs out."""
        deadline = time.monotonic() + timeout
        for line in list(self.lines):
            event = json.loads(line)
            if event.get("event") == name and where(event):
                return event
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {name!r} event within {timeout} s; stderr so far:\n{''.join(self.lines)}")
            try:
                line = self._new.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"process ended without a {name!r} event; stderr:\n{''.join(self.lines)}")
            if line.strip():
                event = json.loads(line)
                if event.get("event") == name and where(event):
                    return event

    def finish(self, timeout: float = LIVENESS_S) -> CliResult:
        """Wait for the process to exit (killing it if it outlives `timeout`, which fails the test)."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            for thread in self._threads:
                thread.join(5)
            raise AssertionError(f"premigrate still running {timeout} s later; stderr:\n{''.join(self.lines)}")
        for thread in self._threads:
            thread.join(LIVENESS_S)
        return CliResult(code, "".join(self._stdout), "".join(self.lines))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


# -- ports and a delayed TCP proxy ----------------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound and released at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


class DelayedProxy:
    """After `delay` seconds, listen on `port` and forward every connection to `target`.

    Until then the port refuses connections, like a database that is still starting.
    """

    def __init__(self, port: int, target: tuple[str, int], delay: float) -> None:
        self.port = port
        self.target = target
        self.delay = delay
        self.listening_at: float | None = None
        self.connections = 0
        self._stop = threading.Event()
        self._server: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DelayedProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.close()
        self._thread.join(5)

    def _run(self) -> None:
        if self._stop.wait(self.delay):
            return
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        server.settimeout(0.2)
        self._server = server
        self.listening_at = time.monotonic()
        while not self._stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        source.settimeout(None)
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
