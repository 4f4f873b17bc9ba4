"""`premigrate wait`: wait until the database accepts connections (up to --wait-timeout), then exit 0."""

from __future__ import annotations

from premigrate.commands.common import EXIT_OK, CommandRun


def run(command: CommandRun) -> int:
    with command.sessions.session(read_only=True):
        return EXIT_OK
