"""--password-command: a fresh password for every new connection, printed by a command.

Managed databases hand out short-lived tokens instead of passwords (AWS RDS/Aurora IAM: `aws rds
generate-db-auth-token`, 15 minutes; Google Cloud SQL IAM: `gcloud sql generate-login-token`; Azure AD:
`az account get-access-token`). A run, its lock session and its helper sessions may outlive one token, so the command
runs again for every connection that is opened, and nothing is cached.

The command is split like a shell would (shlex) but run without one: no expansion, no pipes, no injection. Its
stdout, with one trailing newline removed, is the password. Its output is never shown: not on failure, not in a
log line (the password is added to the log scrubber before anyone can log it), not in an error; a failure names
only the program (its arguments may hold a secret too) and how it failed.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from premigrate import log
from premigrate.errors import PasswordCommandFailed, UsageError

if TYPE_CHECKING:
    import subprocess

DEFAULT_TIMEOUT_S = 30.0
# After the kill on a timeout, how long to wait for the process to be reaped and its pipes to close.
_REAP_S = 5.0


@dataclass(frozen=True)
class PasswordCommand:
    """The --password-command to run for each new connection."""
    argv: tuple[str, ...]
    timeout_s: float = DEFAULT_TIMEOUT_S
    # How failures name the option: its flag or the environment variable it came from (Config.named), so that a
    # command set in a manifest's PREMIGRATE_PASSWORD_COMMAND is not blamed on a flag nobody passed.
    source: str = "--password-command"

    @classmethod
    def parse(cls, text: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, source: str = "--password-command"
              ) -> PasswordCommand:
        """Split the option's value into argv (shell quoting rules, no shell). Bad values are usage errors."""
        import shlex  # here, like subprocess below: only runs with a password command load them

        try:
            argv = tuple(shlex.split(text))
        except ValueError as exc:
            raise UsageError(f"{source}: cannot split the command ({exc}); quote it as you would in a shell") from None
        if not argv:
            raise UsageError(f"{source} is empty; give the command that prints the password, e.g."
                             " 'aws rds generate-db-auth-token --hostname H --port 5432 --username U'")
        if not timeout_s > 0:
            raise UsageError(f"{source}: the timeout must be more than 0 seconds")
        return cls(argv, float(timeout_s), source)

    @property
    def program(self) -> str:
        """How errors name the command: the program alone, since its arguments may hold a secret."""
        return self.argv[0]

    def __call__(self) -> str:
        """Run the command once and return the password it printed (registered with the log scrubber first)."""
        import subprocess

        try:
            process = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                # A group of its own: a timeout kills whatever it started too (a wrapper script's children).
                start_new_session=True, close_fds=True,
            )
        except FileNotFoundError:
            raise self._failed("was not found; give its full path or add its folder to PATH") from None
        except PermissionError:
            raise self._failed("cannot be executed (permission denied)") from None
        except OSError as exc:
            raise self._failed(f"could not be started ({exc.strerror or type(exc).__name__})") from None
        try:
            stdout, _ = process.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise self._failed(f"did not finish within {self.timeout_s:g} s and was stopped") from None
        except BaseException:  # interrupted (SIGTERM/SIGINT): leave nothing running behind
            _kill_group(process)
            raise
        if process.returncode != 0:
            if process.returncode < 0:
                how = f"was killed by {signal.Signals(-process.returncode).name}"
            else:
                how = f"exited with status {process.returncode}"
            raise self._failed(f"{how} (its output is not shown: it may hold secrets; run it by hand to see it)")
        return register_secret(self._password(stdout))

    def _password(self, stdout: bytes) -> str:
        try:
            text = stdout.decode("utf-8")
        except UnicodeDecodeError:
            raise self._failed("printed bytes that are not UTF-8; it must print the password alone") from None
        if text.endswith("\n"):
            text = text[:-1].removesuffix("\r")
        if not text:
            raise self._failed("printed nothing; it must print the password on stdout")
        if "\n" in text or "\0" in text:
            raise self._failed("printed more than one line; it must print the password alone (messages belong on"
                               " stderr)")
        return text

    def _failed(self, what: str) -> PasswordCommandFailed:
        return PasswordCommandFailed(f"{self.source} {self.program!r} {what}", program=self.program,
                                     reason="password_command")


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    import subprocess

    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.communicate(timeout=_REAP_S)
    except subprocess.TimeoutExpired:
        pass


# -- the log scrubber -----------------------------------------------------------------------------------------------

_registered: set[str] = set()
_registered_lock = threading.Lock()


def register_secret(secret: str) -> str:
    """Add `secret` to the scrubber of the logging configured now, and remember it for any configured later
    (pass registered_secrets() to log.configure). Returns the secret.

    log.configure builds the scrubber from the secrets known at start-up; a token is only known at connect
    time. Every bound logger shares that scrubber instance, so widening its list covers them all at once.
    """
    if not secret:
        return secret
    with _registered_lock:
        _registered.add(secret)
        log.add_secret(secret)
    return secret


def registered_secrets() -> tuple[str, ...]:
    """Every password a command printed in this process, for log.configure(secrets=...)."""
    with _registered_lock:
        return tuple(_registered)
