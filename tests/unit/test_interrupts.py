"""The grace period after SIGTERM: a clean-up that hangs still ends in exit 143, with a line saying why."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent("""
    import os, signal, sys, time
    from premigrate.errors import Interrupted
    from premigrate.engine.interrupts import SignalGuard

    def give_up(signum, grace_s):
        print(f"giving up after {grace_s} s on {signum}", flush=True)

    with SignalGuard(on_give_up=give_up, grace_s=0.3):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except Interrupted:
            time.sleep(60)  # a clean-up stuck on a database that stopped answering
    print("never reached")
""")


def test_hung_cleanup_exits_143_after_the_grace_period() -> None:
    proc = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=30)

    assert 143 == proc.returncode, proc.stderr
    assert f"giving up after 0.3 s on {15}" in proc.stdout
    assert "never reached" not in proc.stdout


def test_normal_cleanup_keeps_its_own_exit() -> None:
    """A clean-up that finishes in time is not cut short: the program's own code stands."""
    program = PROGRAM.replace("time.sleep(60)", "sys.exit(3)")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)

    assert 3 == proc.returncode, proc.stderr
    assert "giving up" not in proc.stdout


def test_grace_timer_ends_with_the_guard() -> None:
    """A clean-up that finished inside the guard leaves no timer behind: a process that goes on (serve in a test,
    an embedding program) is not ended by a grace period that belonged to a finished run."""
    program = PROGRAM.replace("time.sleep(60)", "pass").replace('print("never reached")',
                                                               'time.sleep(1.5); print("still running")')
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)

    assert (0, "still running") == (proc.returncode, proc.stdout.strip()), proc.stderr


def test_exit_hooks_run_before_an_immediate_exit() -> None:
    """The exit hooks (a fleet's live line erased) run before the grace period's exit and a second signal's."""
    hooked = PROGRAM.replace("with SignalGuard(on_give_up=give_up, grace_s=0.3):",
                             "guard = SignalGuard(on_give_up=give_up, grace_s=0.3)\n"
                             "guard.exit_hooks.append(lambda: print('hook ran', flush=True))\n"
                             "with guard:")
    second = hooked.replace("time.sleep(60)", "os.kill(os.getpid(), signal.SIGINT); time.sleep(60)")
    for program, code in ((hooked, 143), (second, 130)):
        proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30)
        assert (code, True) == (proc.returncode, "hook ran" in proc.stdout), proc.stderr
