"""`up --baseline-from TOOL`: the first run adopts another tool's history, then applies the rest in the same run.

What `baseline --from TOOL` then `up` do in two steps, in one, so that an init container can switch tools in one
deploy: under the runner lock, when premigrate's history table is empty (or absent) and the tool's table is there,
the migrations the tool applied are recorded as baselined exactly as `baseline --from` records them (same matching,
same refusals, nothing created when it refuses), and `up` goes on with the rest.

- premigrate's history already has rows: the option does nothing (logged), so it can stay set on every deploy.
- The tool's table is missing and the schema has no table of its own: a fresh database, migrated from the first
  file (logged). Missing while the schema has tables: refused (exit 5), because applying every file on top of an
  existing schema is what the option is there to prevent (a wrong --from-table, schema or tool).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from premigrate.errors import ToolTableMissing, UsageError, ValidationFailed

if TYPE_CHECKING:
    from premigrate.commands.common import CommandRun
    from premigrate.commands.foreign_history import Match
    from premigrate.drivers.base import Driver, HistoryRow
    from premigrate.engine.sessions import HeldLock
    from premigrate.model.migrations import MigrationSet
    from premigrate.model.versions import Version

# baseline's modules are imported where they are used: `up` imports this module, and a run without --baseline-from
# (every run but an adopting first one) must not pay for them (tests/unit/test_imports.py).

FLAG = "up --baseline-from"


def check_options(command: CommandRun) -> dict[str, Version] | None:
    """Before any connection: options that cannot go together, and alembic's --map read (None without one)."""
    config = command.config
    tool = config.baseline.source
    if tool is None:
        for given, dest in ((config.baseline.from_table, "baseline_from_table"), (config.baseline.map_file,
                                                                                  "baseline_map")):
            if given:  # named by what set it: a manifest's variable is not blamed on a flag nobody passed
                raise UsageError(f"up {config.named(dest)}: it tells --baseline-from where the tool's history is; give "
                                 "--baseline-from TOOL too (PREMIGRATE_BASELINE_FROM), or drop it")
        return None
    on_empty = config.apply.baseline_on_empty_history
    if on_empty is not None:
        raise UsageError(f"up: give one of {config.option_text('up_baseline_from', tool)} (adopt the tool's history) "
                         f"and {config.option_text('baseline_on_empty_history', on_empty)} (take every file up to "
                         "that version), not both")
    if config.baseline.map_file and tool != "alembic":
        raise UsageError(f"{config.named('baseline_map')} is only for --baseline-from alembic")
    if tool == "alembic" and not config.baseline.map_file:
        raise UsageError("up --baseline-from alembic needs --map FILE: alembic revisions carry no order, so the file "
                         "maps each revision id to a version")
    if not config.baseline.map_file:
        return None
    from premigrate.commands import baseline

    return baseline.read_map(config.baseline.map_file, config.named("baseline_map"))


def preview(command: CommandRun, driver: Driver, files: MigrationSet, history: Sequence[HistoryRow],
            mapping: dict[str, Version] | None) -> tuple[list[HistoryRow], Match | None]:
    """Lock-free and read-only: the history as `up` will plan with it (the rows adoption would record added), and
    the match. A refusal is raised here already, before the runner lock and before anything changes."""
    if history:
        return list(history), None
    result = _match(command, driver, files, mapping, log_skip=False)
    if result is None:
        return [], None
    from premigrate.commands import baseline

    return baseline.rows(command, result.matched, {}), result


def adopt(command: CommandRun, driver: Driver, files: MigrationSet,
          mapping: dict[str, Version] | None) -> Match | None:
    """Under the runner lock, before the history table is created: what to record, or None (logged why)."""
    history = driver.read_history()
    if history:
        skipped(command, len(history))
        return None
    return _match(command, driver, files, mapping, log_skip=True)


def record(command: CommandRun, driver: Driver, lock: HeldLock, files: MigrationSet,
           result: Match) -> list[HistoryRow]:
    """Under the runner lock, the history table created: the adopted rows in one transaction; the new history."""
    from premigrate.commands import baseline

    baseline.record(command, driver, lock, result.matched, {})
    baseline.log_done(command, result, files)
    for entry in result.not_in_folder:
        # The tool's history is ahead of the folder: said as premigrate says it of its own history (planner.py).
        command.log.warning("migration_missing", migration_id=entry, script=None,
                            error=f"{entry} is in {result.tool}'s history but not in the folder (not recorded): the "
                                  "database is ahead of these migration files")
    return driver.read_history()


def skipped(command: CommandRun, rows: int) -> None:
    command.log.info("baseline_skipped", source=command.config.baseline.source,
                     reason=f"premigrate's history table already has {rows} row(s): nothing to adopt")


def _match(command: CommandRun, driver: Driver, files: MigrationSet, mapping: dict[str, Version] | None, *,
           log_skip: bool) -> Match | None:
    config = command.config
    tool = config.baseline.source
    assert tool is not None  # only called with --baseline-from
    from premigrate.commands import baseline
    from premigrate.engine.lease import lock_table_name

    tables = driver.list_tables()
    try:
        result = baseline.match_tool(tool, driver.fetch, tables, files, mapping, dialect=driver.dialect,
                                     from_table=config.baseline.from_table, names=config.named)
    except ToolTableMissing as exc:
        ours = {config.history_table_name.lower(), lock_table_name(config.history_table_name).lower()}
        own = sorted(t for t in tables if t.lower() not in ours)
        if own:
            shown = ", ".join(own[:5]) + (", ..." if len(own) > 5 else "")
            raise ToolTableMissing(
                f"{FLAG} {tool}: no {exc.fields.get('table')} table, but the database has {len(own)} table(s) of its "
                f"own ({shown}): applying every file from the first would run on top of them. Name the tool's table "
                "with --from-table [schema.]name (on PostgreSQL, check --schema and the search_path), or drop "
                "--baseline-from to migrate anyway", **exc.fields) from None
        if log_skip:
            command.log.info("baseline_skipped", source=tool,
                             reason=f"a fresh database: no {exc.fields.get('table')} table and no table of its own; "
                                    "migrating from the first file")
        return None
    except ValidationFailed as exc:
        # The refusals are baseline's, worded for its flag: here the flag is up's.
        raise type(exc)(exc.message.replace("baseline --from", FLAG, 1), **exc.fields) from None
    except UsageError as exc:
        raise UsageError(exc.message.replace("baseline --from", FLAG, 1), **exc.fields) from None
    if result.not_in_folder and config.strict:
        # --strict refuses a history ahead of the folder; the tool's history adopted is no exception.
        shown = ", ".join(result.not_in_folder[:5]) + (", ..." if len(result.not_in_folder) > 5 else "")
        raise ValidationFailed(f"{FLAG} {tool}: {len(result.not_in_folder)} migration(s) in {tool}'s history are not "
                               f"in the folder ({shown}): the database is ahead of these migration files (--strict); "
                               "add their files, or run without --strict to adopt the rest with a warning")
    return result
