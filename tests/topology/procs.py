"""Processes, ports and packages for the topology servers: started from Debian packages, stopped by PID, never left
behind.

Every server runs as a child of the test process, in a session of its own (a Ctrl-C in the terminal reaches pytest,
whose teardown then stops the servers in order, not the servers directly), with PR_SET_PDEATHSIG so that the kernel
kills it if the test process itself dies without a teardown (SIGKILL, a crash), and an atexit hook for the rest.
Ports come from 6450-6499, each claimed with a lock file so that test runs started at once on one machine never
pick the same port.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PORT_LOW, PORT_HIGH = 6450, 6499
PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "premigrate-topology-ports"
# How much of a server's log goes into a failure message.
LOG_TAIL_LINES = 60


class ServerFailed(RuntimeError):
    """A topology server did not install, start or answer in time. The message carries its logs."""


# -- packages -------------------------------------------------------------------------------------------------------

_apt_updated = False
_apt_lock = threading.Lock()


def which(binary: str) -> str | None:
    """`binary` on PATH or in the sbin folders (not always on a non-root PATH)."""
    return shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin:/usr/local/sbin")


def ensure_packages(needed: dict[str, str], timeout: float = 600.0) -> None:
    """Install the Debian packages whose files are missing. `needed` maps a file (a path or a binary name) to the
    package that ships it. `apt-get update` runs once per test session, before the first install: CI machines start
    without the package lists."""
    global _apt_updated
    missing = sorted({pkg for probe, pkg in needed.items()
                      if not (Path(probe).exists() if "/" in probe else which(probe))})
    if not missing:
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    # Wait for another apt (another engineer's test run) instead of failing on its lock.
    lock_wait = ["-o", "DPkg::Lock::Timeout=300"]
    with _apt_lock:
        if not _apt_updated:
            run(["apt-get", *lock_wait, "update"], timeout=timeout, env=env, what="apt-get update")
            _apt_updated = True
        run(["apt-get", *lock_wait, "install", "-y", "--no-install-recommends", *missing], timeout=timeout, env=env,
            what=f"apt-get install {' '.join(missing)}")
    still = [probe for probe in needed if not (Path(probe).exists() if "/" in probe else which(probe))]
    if still:
        raise ServerFailed(f"installed {', '.join(missing)} but still missing: {', '.join(still)}")


# -- short commands -------------------------------------------------------------------------------------------------


def run(argv: Sequence[str], *, timeout: float = 120.0, user: str | None = None, env: dict[str, str] | None = None,
        cwd: Path | None = None, what: str | None = None) -> str:
    """Run a short command to completion; its output goes into the error when it fails or overruns."""
    label = what or " ".join(argv)
    try:
        done = subprocess.run(list(argv), check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=timeout, user=user, env=env, cwd=cwd, text=True,
                              errors="replace", preexec_fn=_die_with_parent, start_new_session=True)
    except subprocess.TimeoutExpired as exc:
        out = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode(errors="replace")
        raise ServerFailed(f"{label}: no result within {timeout:.0f} s\n{_tail_text(out)}") from None
    except OSError as exc:
        raise ServerFailed(f"{label}: cannot run: {exc}") from None
    if done.returncode != 0:
        raise ServerFailed(f"{label}: exit {done.returncode}\n{_tail_text(done.stdout)}")
    return done.stdout


# -- ports ----------------------------------------------------------------------------------------------------------


class PortPool:
    """Free ports of 6450-6499 on 127.0.0.1, each held by an flock on its own file until released."""

    def __init__(self) -> None:
        self._held: dict[int, int] = {}
        self._mutex = threading.Lock()

    def take(self, count: int) -> list[int]:
        PORT_LOCK_DIR.mkdir(mode=0o1777, exist_ok=True)
        taken: list[int] = []
        with self._mutex:
            for port in range(PORT_LOW, PORT_HIGH + 1):
                if len(taken) == count:
                    break
                if port in self._held:
                    continue
                fd = os.open(PORT_LOCK_DIR / f"{port}.lock", os.O_CREAT | os.O_RDWR, 0o666)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(fd)
                    continue
                if not _bindable(port):
                    os.close(fd)
                    continue
                self._held[port] = fd
                taken.append(port)
            if len(taken) < count:
                for port in taken:
                    os.close(self._held.pop(port))
                raise ServerFailed(f"no {count} free ports left in {PORT_LOW}-{PORT_HIGH} on 127.0.0.1 "
                                   "(other test runs hold them; see lock files in " f"{PORT_LOCK_DIR})")
        return taken

    def release(self, ports: Iterable[int]) -> None:
        with self._mutex:
            for port in ports:
                fd = self._held.pop(port, None)
                if fd is not None:
                    os.close(fd)


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


PORTS = PortPool()


# -- long-running servers -------------------------------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec (after setuid, which would otherwise clear it): SIGKILL when the parent dies."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


# The default stop: ask, ask again (PgBouncer 1.23+ treats a second SIGTERM as "now"), then SIGKILL.
DEFAULT_STOP: tuple[tuple[int, float], ...] = ((signal.SIGTERM, 5.0), (signal.SIGTERM, 5.0))


@dataclass
class Server:
    """One long-running child process with its log file."""

    name: str
    argv: list[str]
    log_path: Path
    user: str | None = None
    env: dict[str, str] | None = None
    cwd: Path | None = None
    stop_sequence: tuple[tuple[int, float], ...] = DEFAULT_STOP
    extra_logs: tuple[Path, ...] = ()
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log: IO[bytes] | None = field(default=None, repr=False)

    def start(self) -> Server:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open for the server's whole life, closed by stop()
        if self.user:
            shutil.chown(self.log_path, self.user)
        try:
            self.popen = subprocess.Popen(
                self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, user=self.user,
                # preexec_fn only calls prctl(2), which is safe between fork and exec even with threads running.
                env=self.env, cwd=self.cwd, start_new_session=True, preexec_fn=_die_with_parent,  # noqa: PLW1509
            )
        except OSError as exc:
            raise ServerFailed(f"{self.name}: cannot start {self.argv[0]}: {exc}") from None
        _REGISTRY.add(self)
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL, the whole process group (SST helpers, ...): a crash, for the tests that need one."""
        if self.popen is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.popen.wait(timeout=30)

    def stop(self) -> None:
        """Stop by PID with the server's own signals, each given a bound; then SIGKILL the process group."""
        if self.popen is None:
            return
        try:
            for signum, bound in self.stop_sequence:
                if self.popen.poll() is not None:
                    break
                os.kill(self.pid, signum)
                try:
                    self.popen.wait(timeout=bound)
                except subprocess.TimeoutExpired:
                    continue
        finally:
            try:
                os.killpg(self.pid, signal.SIGKILL)  # helpers left in its group, or the server itself
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            if self._log is not None:
                self._log.close()
                self._log = None
            _REGISTRY.discard(self)

    def logs(self, lines: int = LOG_TAIL_LINES) -> str:
        parts = []
        for path in (self.log_path, *self.extra_logs):
            parts.append(f"--- {self.name}: {path} (last {lines} lines) ---\n{tail(path, lines)}")
        return "\n".join(parts)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(unreadable: {exc})"
    return _tail_text(text, lines)


def _tail_text(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, servers: Sequence[Server],
               interval: float = 0.2) -> float:
    """Poll `check` until it is true; fail with the servers' logs when one of them exits or `timeout` passes.
    Returns the seconds waited."""
    started = time.monotonic()
    last_error = ""
    while True:
        try:
            if check():
                return time.monotonic() - started
        except Exception as exc:  # noqa: BLE001 - not ready yet: remembered for the failure message
            last_error = f"{type(exc).__name__}: {exc}".strip()
        for server in servers:
            if not server.alive():
                code = server.popen.returncode if server.popen else "?"
                raise ServerFailed(f"{what}: {server.name} exited with {code} before it was ready\n{server.logs()}")
        if time.monotonic() - started > timeout:
            logs = "\n".join(server.logs() for server in servers)
            raise ServerFailed(f"{what}: not ready within {timeout:.0f} s (last error: {last_error or 'none'})\n{logs}")
        time.sleep(interval)


class _Registry:
    """Every server still running, stopped at interpreter exit if a teardown did not run."""

    def __init__(self) -> None:
        self._servers: list[Server] = []
        self._mutex = threading.Lock()

    def add(self, server: Server) -> None:
        with self._mutex:
            self._servers.append(server)

    def discard(self, server: Server) -> None:
        with self._mutex:
            if server in self._servers:
                self._servers.remove(server)

    def running(self) -> list[Server]:
        with self._mutex:
            return list(self._servers)

    def stop_all(self) -> None:
        for server in reversed(self.running()):
            server.kill()
            self.discard(server)


_REGISTRY = _Registry()
atexit.register(_REGISTRY.stop_all)


def running_servers() -> list[Server]:
    return _REGISTRY.running()


def stop_all() -> None:
    _REGISTRY.stop_all()


def private_dir(prefix: str) -> Path:
    """A temporary folder that the servers' own users (postgres, mysql) can traverse, marked with our PID.

    Folders of earlier runs whose process is gone (killed before its teardown) are removed first."""
    for stale in Path(tempfile.gettempdir()).glob(f"{prefix}*/owner.pid"):
        try:
            owner = int(stale.read_text())
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(stale.parent, ignore_errors=True)
        except (OSError, ValueError):
            continue
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    (path / "owner.pid").write_text(str(os.getpid()))
    return path


def chown_tree(path: Path, user: str) -> None:
    shutil.chown(path, user, user)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            shutil.chown(os.path.join(root, name), user, user)
