#!/usr/bin/env python3
"""Container entry point: the same CLI as `premigrate`, exiting with its code.

Run in exec form so that PID 1 is this Python process and SIGTERM reaches
premigrate's own handler (which cancels the running statement, rolls back and
releases the runner lock before exiting 143).
"""
from premigrate.cli import run

if __name__ == "__main__":
    run()
