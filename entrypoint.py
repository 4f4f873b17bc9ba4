#!/usr/bin/env python3
"""Container entry point: the same CLI as `premigrate`, exiting with its code.

Run in exec form so that PID 1 is this Python process and SIGTERM reaches
premigrate's own handler (which cancels the running statement, rolls back and
releases the runner lock before exiting 143).
"""
# Says to the package that it is the program, before its first import: premigrate/collector.py.
PREMIGRATE_COMMAND = True

from premigrate.cli import run  # noqa: E402

if __name__ == "__main__":
    run()
