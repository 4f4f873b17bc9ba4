"""The console log format: one short aligned line per event, colour only when asked for, every field at debug."""

from __future__ import annotations

from premigrate.console import VALUE_LIMIT, ConsoleLines, short_transaction

STAMP = "2026-12-02T16:35:04.123456Z"
STARTED = {"event": "migration_started", "level": "info", "timestamp": STAMP, "version": "1",
           "description": "create users", "script": "001_create_users.sql", "statements": 2,
           "transaction": "per-migration (statements and history row commit together)", "reason": "new"}
ERROR = {"event": "error", "level": "error", "timestamp": STAMP, "error": "cannot connect: refused",
         "error_type": "DatabaseUnavailable", "exit_code": 3, "reason": "refused"}
LOADED = {"event": "config_loaded", "level": "info", "timestamp": STAMP, "command": "up", "version": "0.1.0",
          "database": "postgresql://app:***@db/app", "database_source": "DATABASE_URL", "dialect": "postgresql",
          "dir": "migrations", "table": "premigrate_history", "schema": None, "wait_timeout_s": 60.0,
          "lock_timeout_s": 600.0}


def render(event: dict[str, object], *, colours: bool = False, verbose: bool = False) -> str:
    return ConsoleLines(colours=colours, verbose=verbose)(None, str(event["level"]), dict(event))


class TestConsoleLines:
    def test_migration_started_golden(self) -> None:
        """The essentials only, the transaction mode by its short name."""
        assert ("16:35:04 info  migration_started      version=1 script=001_create_users.sql "
                "transaction=per-migration statements=2") == render(STARTED)

    def test_error_golden(self) -> None:
        """An error: its exit code, then the message."""
        assert "16:35:04 error error                  exit_code=3  cannot connect: refused" == render(ERROR)

    def test_a_message_without_fields_keeps_its_gap(self) -> None:
        """An event whose only text is its message ran the two together ('nothing_to_dono applied migration')."""
        event = {"event": "nothing_to_do", "level": "info", "timestamp": STAMP, "note": "no applied migration"}
        line = render(event)
        assert line.startswith("16:35:04 info  nothing_to_do") and line.endswith("  no applied migration"), line
        assert "nothing_to_dono" not in line

    def test_config_loaded_is_short(self) -> None:
        """config_loaded names the command, the (redacted) database and the folder, and fits 100 columns."""
        line = render(LOADED)
        assert "16:35:04 info  config_loaded          command=up database=postgresql://app:***@db/app dir=migrations" \
            == line
        assert len(line) <= 100

    def test_debug_shows_every_field(self) -> None:
        """At --log-level debug every field is on the line."""
        line = render(LOADED, verbose=True)
        assert all(f"{key}=" in line for key in ("database_source", "dialect", "table", "wait_timeout_s"))

    def test_colour_golden(self) -> None:
        """With colour: a dim time, a coloured level and a bold event name; without, no escape at all."""
        assert ("\x1b[2m16:35:04\x1b[0m \x1b[31;1merror\x1b[0m \x1b[1merror                 \x1b[0m "
                "\x1b[2mexit_code=\x1b[0m3  cannot connect: refused") == render(ERROR, colours=True)
        assert "\x1b" not in render(ERROR) + render(STARTED) + render(LOADED, verbose=True)

    def test_unknown_event_shows_its_fields(self) -> None:
        """An event without a list of essentials shows all its fields, long values cut."""
        line = render({"event": "lock_retry", "level": "warning", "timestamp": STAMP, "attempt": 2,
                       "statement": "x" * 200})
        assert line.startswith("16:35:04 warn  lock_retry             attempt=2 statement=xxx")
        assert line.endswith("x…") and VALUE_LIMIT == len(line.split("statement=")[1])

    def test_short_transaction(self) -> None:
        """The three modes' long texts become their names; other values pass through."""
        assert ["per-migration", "as-written", "none", "single", 3] == [
            short_transaction(v) for v in ("per-migration (statements and history row commit together)",
                                           "as written (the file opens ...)", "none (statement by statement)",
                                           "single", 3)]
