"""The cyclic garbage collector, paused while the `premigrate` command starts.

Start-up is almost all imports and configuration: some 20,000 long-lived objects (modules, functions, classes) and
hardly any garbage (a few hundred objects, which the freeze below then keeps for the run). With the collector on,
their allocation alone sets it off about 30 times in a no-op `up`, each pass walking the young objects for cycles
that are not there: about 6 ms of CPU, 5-7 % of the whole run on the machines bench/ measures (a no-op runs on
every pod start). So when premigrate is the program (its console script, `python -m premigrate`, the image's
entrypoint.py), the package pauses the collector before its first import, and `resume()` turns it back on once the
command's code is loaded, before it reads a file or opens a session. Everything from there on (applying 1,000
migrations, `serve`, a fleet) runs with the collector as usual; the objects of the start-up are frozen first
(gc.freeze), so the collections of a long run no longer walk them.

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
        return _runs_module(getattr(sys, "orig_argv", [])) == "premigrate"
    return os.path.basename(script) == "premigrate"


def _runs_module(argv: list[str]) -> str | None:
    """The module `python ... -m MODULE` runs, read as the interpreter reads its options; None for -c, a script or
    stdin (`python -c "..." -m premigrate` runs the -c code: -m and the rest are its arguments)."""
    words = iter(argv[1:])
    for word in words:
        if word[:1] != "-" or word in ("-", "--") or word.startswith("--"):
            return None  # a script, stdin, or a long option: no module named before it
        for at, letter in enumerate(word[1:], 1):
            if letter == "c":
                return None
            if letter in "mXW":  # the rest of the word, or the next word, is the option's value
                value = word[at + 1:] or next(words, "")
                if letter == "m":
                    return value
                break
    return None


def pause_for_start_up() -> None:
    """Pause the collector, when it is on (the package calls this when started_as_command())."""
    global _paused
    if not _paused and gc.isenabled():
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
