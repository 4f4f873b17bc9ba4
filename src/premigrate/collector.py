"""The cyclic garbage collector, paused while the `premigrate` command starts.

Start-up is almost all imports and configuration: some 20,000 long-lived objects (modules, functions, classes)
and hardly any garbage. With the collector on, their allocation alone sets it off about 30 times in a no-op `up`,
each pass walking the young objects for cycles that are not there: about 6 ms of CPU, 5-7 % of the whole run on
the machines bench/ measures (a no-op runs on every pod start). So when premigrate is the program (its console
script, `python -m premigrate`, the image's entrypoint.py), the package pauses the collector before its first
import, and `resume()` turns it back on once the command's code is loaded, before it reads a file or opens a
session. Everything from there on (applying 1,000 migrations, `serve`, a fleet) runs with the collector as usual;
the objects of the start-up are frozen first (gc.freeze), so the collections of a long run no longer walk them.

A program that imports premigrate as a library is never paused: the pause is the command's, not the package's.
"""


import gc
import os
import sys

_paused = False


def started_as_command() -> bool:
    """Whether this process is the `premigrate` command: its console script, `python -m premigrate` (the package is
    imported before its __main__ runs, with no __main__ file yet), or the image's entrypoint.py, which says so."""
    main = sys.modules.get("__main__")
    if getattr(main, "PREMIGRATE_COMMAND", False) is True:
        return True
    script = getattr(main, "__file__", None)
    if not isinstance(script, str):
        argv = getattr(sys, "orig_argv", [])
        return "-mpremigrate" in argv or any(arg == "-m" and argv[i + 1:i + 2] == ["premigrate"]
                                             for i, arg in enumerate(argv))
    return os.path.basename(script) == "premigrate"


def pause_for_start_up() -> None:
    """Pause the collector when this process is the command and the collector is on."""
    global _paused
    if not _paused and gc.isenabled() and started_as_command():
        gc.disable()
        _paused = True


def resume() -> None:
    """The command's start-up is over: freeze what it loaded, and collect as usual from here on. Idempotent; a
    no-op when nothing was paused (a library caller, a test calling cli.main)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def paused() -> bool:
    return _paused
