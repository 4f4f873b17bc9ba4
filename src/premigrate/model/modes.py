"""How a step runs: the statements a migration splits into, the transactions a file opens itself, and the mode the
executor wraps it in. Pure: the same answers for `plan`, the checks before a run, and the run itself.

    transaction   statements and history row commit together (transactional DDL, no directive, not a resume)
    self-managed  the file opens and commits its own transaction(s); progress is recorded around them
    none          statement by statement, progress recorded after each (MySQL, no-transaction files, resumes)
    single        --single-transaction: every pending migration in one transaction (a flag of the run, not a mode
                  of one file: the executor decides it)
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from enum import StrEnum

from premigrate.errors import MigrationFileError, UsageError, ValidationFailed
from premigrate.model import transactions
from premigrate.model.migrations import Migration
from premigrate.model.planner import Reason, Step
from premigrate.model.sql import OWN_SPLITTERS, SPLIT_CAN_FAIL_ON, SplitError, Statement, split_migration
from premigrate.model.transactions import Block


class Mode(StrEnum):
    """How the executor wraps one file (the value is what the logs and `plan --json` have always said)."""

    TRANSACTION = "transaction"
    SELF_MANAGED = "self-managed"
    NONE = "none"


MODE_TEXT = {
    Mode.TRANSACTION: "per-migration (statements and history row commit together)",
    Mode.SELF_MANAGED: "as written (the file opens and commits its own transaction; progress recorded around it)",
    Mode.NONE: "none (statement by statement, progress recorded after each)",
}


class StepShapes:
    """The statements, blocks and mode of each migration on one database. Statements are split once per migration
    (keyed by the migration itself, so that two formats' rules never share a split): the checks, the plan, the mode
    and the run all ask for them."""

    def __init__(self, dialect: str, transactional_ddl: bool) -> None:
        self.dialect = dialect
        self.transactional_ddl = transactional_ddl
        self._splits: dict[tuple[Migration, bool], Sequence[Statement]] = {}
        self._splitting = threading.Lock()
        # The same splits by the migration's identity (the entry holds the migration, so its id stays its own): the
        # run asks for a file's statements several times between two round trips, and hashing a Migration (every
        # field of it) cost more there than the lookup.
        self._by_identity: dict[tuple[int, bool], tuple[Migration, Sequence[Statement]]] = {}
        # The blocks of each statement list asked about, by identity (the lists are the splits above, kept for the
        # run): the mode, the run and the next migration's first row each ask, four times a migration on MySQL.
        self._blocks: dict[int, tuple[Sequence[Statement], list[Block]]] = {}

    def cleared(self, migration: Migration) -> bool:
        """Whether the checks before a run can pass the up part without splitting it: a file whose format has no
        splitter of its own, whose text holds nothing the splitter can fail on (sql.SPLIT_CAN_FAIL_ON) and none of
        the words of what those checks look for (the first words of a transaction's BEGIN and COMMIT, which decide
        the file's mode and must balance; transactions.OUTSIDE_TRANSACTION's words; MySQL's USE). Such a file is
        split when it is sent, while the server works on the one before it: for a folder of ordinary files the
        checks then cost one search per file instead of a split (bench/: applying 1,000 files started about 50 ms
        sooner)."""
        if migration.format in OWN_SPLITTERS:
            return False
        text = migration.up_sql
        screen, words = _SCREENS.get(self.dialect) or self._screen()
        # First the words as plain substrings of the upper-cased text: a few searches in C, where the pattern tries
        # every alternative at every position (about 15 us for a small file, most of the time the checks take). For
        # an ASCII text upper() is the pattern's IGNORECASE, so a text holding none of them cannot match it; a text
        # holding one (END in APPEND) or any non-ASCII character (IGNORECASE folds the Kelvin sign to K) is searched.
        if text.isascii():
            upper = text.upper()
            if not any(word in upper for word in words):
                return True
        return screen.search(text) is None

    def _screen(self) -> tuple[re.Pattern[str], tuple[str, ...]]:
        """cleared()'s pattern for this dialect, and the words it looks for (upper-cased), built once per process."""
        # No letter or _ before a word: the patterns find theirs at a statement's start or after white space,
        # `(` or a version comment's digits (/*!50001USE db*/). After it: the catalogue's words may run straight
        # into the next (REINDEXSYSTEM matches REINDEX\s*SYSTEM), so any continuation counts; the words of
        # BEGIN, COMMIT and USE end where control()'s and the USE pattern's words do, at anything but a letter
        # or _ (`started_at` and `users` hold neither START nor USE).
        catalogue = [w for e in transactions.OUTSIDE_TRANSACTION if e.dialect == self.dialect and not e.noop
                     for w in e.words]
        whole = [*transactions.CONTROL_WORDS, *(["USE"] if self.dialect == "mysql" else [])]
        anywhere = SPLIT_CAN_FAIL_ON.get(self.dialect, ())
        alternatives = [rf"(?:{'|'.join(map(re.escape, anywhere))})"] if anywhere else []
        if catalogue:
            alternatives.append(rf"(?<![A-Za-z_])(?:{'|'.join(map(re.escape, catalogue))})")
        alternatives.append(rf"(?<![A-Za-z_])(?:{'|'.join(whole)})(?![A-Za-z_])")
        words = tuple(dict.fromkeys(w.upper() for w in (*anywhere, *catalogue, *whole)))
        built = _SCREENS[self.dialect] = (re.compile("|".join(alternatives), re.IGNORECASE), words)
        return built

    def statements(self, migration: Migration) -> Sequence[Statement]:
        """The up part's statements; a part that cannot be split is bad input (exit 5)."""
        return self._split(migration, down=False)

    def known_statements(self, migration: Migration) -> Sequence[Statement] | None:
        """The up part's statements if this run has split the file already, else None (nothing is split here)."""
        known = self._identified(migration, False)
        return known if known is not None else self._splits.get((migration, False))

    def shared_statements(self, migration: Migration) -> Sequence[Statement] | None:
        """For lint, which reads the run's split rather than splitting a file twice: the statements the run has, or
        splits now and keeps for itself when the checks passed the file unsplit (cleared: its split cannot fail);
        None for a file the run has not split (lint then splits it, and reports what fails)."""
        known = self.known_statements(migration)
        if known is None and self.cleared(migration):
            return self.statements(migration)
        return known

    def down_statements(self, migration: Migration) -> Sequence[Statement]:
        return self._split(migration, down=True)

    def _identified(self, migration: Migration, down: bool) -> Sequence[Statement] | None:
        """A split of this very migration object, found without hashing it; None if it has none yet."""
        known = self._by_identity.get((id(migration), down))
        return known[1] if known is not None and known[0] is migration else None

    def _split(self, migration: Migration, *, down: bool) -> Sequence[Statement]:
        known = self._identified(migration, down)
        if known is not None:
            return known
        key = (migration, down)
        with self._splitting:  # a fleet's workers share one StepShapes: each file is split once
            if key not in self._splits:
                try:
                    self._splits[key] = split_migration(migration, self.dialect, down=down)
                except SplitError as exc:
                    if down:
                        raise ValidationFailed(f"{migration.down_script}: line {exc.line}: {exc}") from None
                    raise ValidationFailed(f"{migration.script}: line {exc.line}: {exc}",
                                           script=migration.script) from None
            statements = self._splits[key]
            self._by_identity[(id(migration), down)] = (migration, statements)
            return statements

    def blocks(self, migration: Migration, statements: Sequence[Statement], script: str | None = None) -> list[Block]:
        """The transactions the file opens and ends itself; unbalanced ones are a file error."""
        known = self._blocks.get(id(statements))
        if known is not None and known[0] is statements:
            return known[1]
        try:
            found = transactions.blocks(statements)
        except transactions.TransactionSyntaxError as exc:
            raise MigrationFileError(f"{script or migration.script}: line {exc.line}: {exc}",
                                     file=script or migration.script) from None
        self._blocks[id(statements)] = (statements, found)
        return found

    def mode(self, step: Step) -> Mode:
        statements = self.statements(step.migration)
        if self.blocks(step.migration, statements):
            return Mode.SELF_MANAGED
        if self.transactional_ddl and not step.migration.no_transaction and step.reason != Reason.RESUME:
            return Mode.TRANSACTION
        return Mode.NONE

    def down_in_transaction(self, migration: Migration) -> bool:
        """Whether the down part runs in one transaction with the removal of its row. A down part that opens its
        own transaction runs as written, statement by statement."""
        statements = self.down_statements(migration)
        return (self.transactional_ddl and not migration.down_no_transaction
                and not self.blocks(migration, statements, migration.down_script))

    def stepwise(self, step: Step) -> bool:
        """Whether the step must run outside a transaction (so not inside --single-transaction)."""
        return (step.migration.no_transaction or step.reason == Reason.RESUME
                or bool(self.blocks(step.migration, self.statements(step.migration))))


# By dialect: what StepShapes.cleared searches a file for (built on first use).
_SCREENS: dict[str, tuple[re.Pattern[str], tuple[str, ...]]] = {}


def refuse_transaction_incompatible(shapes: StepShapes, steps: Sequence[Step], *, single_transaction: bool) -> None:
    """Refuse, before anything runs, a file the executor would wrap in a transaction that cannot run in one, or
    one that cannot be split (SplitError: exit 5). A file StepShapes.cleared passes is split only when it runs."""
    for step in steps:
        if not single_transaction and shapes.cleared(step.migration):
            continue
        statements = shapes.statements(step.migration)
        mode = shapes.mode(step)
        if mode != Mode.TRANSACTION and not (single_transaction and mode == Mode.NONE and shapes.transactional_ddl):
            continue
        for index, statement in enumerate(statements, 1):
            reason = transactions.outside_transaction_only(statement, shapes.dialect)
            if reason:
                raise MigrationFileError(
                    f"{step.migration.script}: statement {index} (line {statement.line}) {reason}, which cannot "
                    "run inside a transaction; add the line '-- premigrate:no-transaction' to the file so that "
                    "it runs statement by statement, with its progress recorded after each one",
                    file=step.migration.script)


def refuse_single_transaction_unsupported(transactional_ddl: bool, dialect: str,
                                          named: str = "--single-transaction") -> None:
    """A flag the database cannot honour is refused whatever the history holds, even with nothing pending. `named`:
    what set it (the flag, or PREMIGRATE_SINGLE_TRANSACTION: Config.named)."""
    if not transactional_ddl:
        raise UsageError(f"{named} needs transactional DDL (PostgreSQL or SQLite); "
                         f"{dialect} commits DDL statement by statement")


def refuse_single_transaction_steps(shapes: StepShapes, steps: Sequence[Step],
                                    named: str = "--single-transaction") -> None:
    refuse_single_transaction_unsupported(shapes.transactional_ddl, shapes.dialect, named)
    stepwise = [s.migration.script for s in steps if shapes.stepwise(s)]
    if stepwise:
        raise UsageError(f"{named} cannot include {', '.join(stepwise)}: it must run outside a "
                         "transaction; apply it in a run of its own")


def down_blocked_statement(shapes: StepShapes, migration: Migration) -> str | None:
    """Why a down part that runs in a transaction cannot (its first statement that must run outside one)."""
    if not shapes.down_in_transaction(migration):
        return None
    for index, statement in enumerate(shapes.down_statements(migration), 1):
        reason = transactions.outside_transaction_only(statement, shapes.dialect)
        if reason:
            return (f"{migration.down_script} (version {migration.id}): statement {index} of its down part "
                    f"{reason}, which cannot run inside a transaction; add '-- premigrate:no-transaction' to the "
                    "down part")
    return None


def refuse_database_switch(shapes: StepShapes, steps: Sequence[Step]) -> None:
    """Refuse, before anything runs, a migration that switches the session's current database (MySQL `USE`): its
    later statements, and premigrate's own bookkeeping, would act on another database."""
    for step in steps:
        if shapes.dialect != "mysql" or shapes.cleared(step.migration):
            continue
        for index, statement in enumerate(shapes.statements(step.migration), 1):
            if transactions.switches_database(statement, shapes.dialect):
                raise MigrationFileError(
                    f"{step.migration.script}: statement {index} (line {statement.line}) switches the current "
                    "database (USE); a migration runs in the database of the URL: qualify the names of another "
                    "database instead (other_db.table), or migrate that database with its own URL",
                    file=step.migration.script)
