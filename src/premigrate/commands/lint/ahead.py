"""`up --lint=warn`: the pending files linted while the run waits for the database, each file's findings logged just
before that file runs.

Why not all at once before the first migration, as `--lint=error` must: under `warn` nothing is refused, so lint
need not hold up the run, and its parse is CPU the run would otherwise spend before the first statement (70-90 ms
for 1,000 small files: pglast on PostgreSQL, the tokenizer on MySQL). Done while the run waits for the database,
which is most of an apply, it costs the run nothing. Each finding still reaches the log before its file touches the
database: the executor asks for a file's findings (report) before it starts that file, and the file is linted then
if it was not yet.

Two ways to find those waits:
- LintInWaits (MySQL): the driver gives the run's own thread each wait for a statement's answer (held_events.run_work,
  called once the statement is sent), and files are linted there, BATCH at a time. No thread: a second thread costs more
  than it saves here. On a run of 1,000 two-statement files a lint thread took 0.3 s of CPU more than the same lint
  on the run's thread (handing the interpreter's lock back and forth, waking each other), against 0.1 s for the
  lint itself, and much of it fell between an answer and the next statement.
- LintAhead (PostgreSQL, SQLite, whose drivers do not give those waits): a thread of its own. The thread only
  computes; logging stays on the run's thread, so events keep their order and their fields. Between two files the
  thread sleeps a moment, unless the run is waiting for it, so that a run coming back from the database takes the
  interpreter's lock at once instead of waiting out a switch interval (5 ms) behind the parser.

Both keep pace with the run: before the run asks for its first file they lint that file only, and after that at
most AHEAD files past the last one asked for. Until the first migration starts the run is busy on the CPU (the lock,
the topology checks, the plan), and every file parsed then is time taken from that start; once migrations run, the
run waits for the database most of the time, and that is when the rest is parsed.

Under warn, lint is advisory: whatever stops it (pglast not installed, or a bug in lint) is logged once as
`lint_unavailable`, with the error, and the run goes on unlinted. Nothing is raised into the executor, which may
have the next migration in flight when it asks (engine/together.py sends one ahead).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from premigrate import held_events
from premigrate.commands.lint.rules import Finding, LintUnavailable
from premigrate.eventlog import EventLog
from premigrate.model.migrations import Migration

YIELD_S = 0.0002  # the pause between two files while nobody waits for the thread: long enough to hand over the GIL
# How many files past the one the run last asked for the thread may lint. More than one: engine/together.py asks for
# the next file before the current one has finished, and the thread should never be the one the run waits for.
AHEAD = 16
# How many files LintInWaits lints together in one wait, once that many are allowed: a file linted alone in a wait
# runs cold (the run was away on the database, and the parser's code and data with it), at about five times the cost
# of one linted right after another. On a run of 200 two-statement MySQL files the run's work in the wait of a
# migration's first statement fell from ~650 us to ~240 us without lint; linted one per wait, lint was most of it.
BATCH = 8


UNLINTED = "applying without linting (--lint=warn)"  # lint_unavailable's note, here and in up.lint_gate


def log_finding(report: Callable[..., None], finding: Finding) -> None:
    """One `lint_finding` event (log.warning, or log.error for --lint=error), as up logs every finding."""
    report("lint_finding", rule=finding.rule, severity=finding.severity, script=finding.script, line=finding.line,
           error=finding.message, fix=finding.fix)


class LintWhileRunning:
    """What both ways share: the files given, their findings logged on report(), and what stopped lint, told once."""

    def __init__(self, migrations: Sequence[Migration], lint: Callable[[Sequence[Migration]], list[Finding]],
                 log: EventLog) -> None:
        self._lint = lint
        self._log = log
        self._pending = {m.id: i for i, m in enumerate(migrations)}  # given and not reported yet: their index
        self._failed: Exception | None = None  # what stopped lint: LintUnavailable, or a bug
        self._failure_told = False

    def report(self, migration_id: str) -> None:
        """Log the findings of the file about to run, once; a file lint was not given (or reached only after the run
        stopped it) is not linted here."""
        index = self._pending.pop(migration_id, None)
        if index is None:
            return
        findings = self._findings_of(migration_id, index)
        if findings is None:
            self._tell_failure()
            return
        for finding in findings:
            log_finding(self._log.warning, finding)

    def _findings_of(self, migration_id: str, index: int) -> list[Finding] | None:
        """The file's findings, once it is linted; None when lint stopped before it."""
        raise NotImplementedError

    def stop(self) -> None:
        """The run is over: lint no further file."""
        raise NotImplementedError

    def _tell_failure(self) -> None:
        """What stopped lint, told once: the run goes on unlinted."""
        failed = self._failed
        if failed is None or self._failure_told:
            return
        self._failure_told = True
        if isinstance(failed, LintUnavailable):
            self._log.warning("lint_unavailable", error=str(failed), note=UNLINTED)
        else:  # a bug in lint: its traceback, for a report
            self._log.warning("lint_unavailable", error=f"lint failed: {type(failed).__name__}: {failed}",
                              note="applying the rest without linting (--lint=warn); this is a bug in premigrate's "
                                   "lint: please report it with this event",
                              exc_info=(type(failed), failed, failed.__traceback__))


class LintInWaits(LintWhileRunning):
    """Lints `migrations` in order on the run's own thread, in the waits for the database that the driver gives it
    (held_events.set_idle): BATCH files in one wait once BATCH are allowed (or the last ones left); report(id) lints
    the file then if no wait has reached it."""

    def __init__(self, migrations: Sequence[Migration], lint: Callable[[Sequence[Migration]], list[Finding]],
                 log: EventLog) -> None:
        super().__init__(migrations, lint, log)
        self._migrations = list(migrations)
        self._next = 0  # the index of the next file to lint
        self._allowed = 0  # the index of the last file a wait may lint now (AHEAD past the last one asked for)
        self._findings: dict[str, list[Finding]] = {}
        held_events.set_idle(self._in_wait)

    def _in_wait(self) -> None:
        last = min(self._allowed, len(self._migrations) - 1)
        ready = last - self._next + 1
        if ready < BATCH and (ready <= 0 or last < len(self._migrations) - 1):
            return  # fewer than a batch allowed, and more files to come
        for _ in range(min(ready, BATCH)):
            linted = self._next
            self._lint_at(linted)
            if self._next == linted:
                return  # lint failed (told by report)

    def _lint_at(self, index: int) -> None:
        if self._failed is not None or index >= len(self._migrations):
            return
        migration = self._migrations[index]
        try:
            found = self._lint([migration])
        except Exception as exc:  # noqa: BLE001 - told by report (_tell_failure)
            self._failed = exc
            return
        # (A signal raised in lint leaves the file unlinted, for report to lint again.)
        self._findings[migration.id] = found
        self._next = max(self._next, index + 1)

    def _findings_of(self, migration_id: str, index: int) -> list[Finding] | None:
        self._allowed = max(self._allowed, index + AHEAD)
        if migration_id not in self._findings:
            self._lint_at(index)
        return self._findings.pop(migration_id, None)

    def stop(self) -> None:
        """The run is over: its waits lint no further file."""
        if held_events.idle_work() == self._in_wait:
            held_events.set_idle(None)


class LintAhead(LintWhileRunning):
    """Lints `migrations` in order on a daemon thread; report(id) logs one file's findings, in the run's thread."""

    def __init__(self, migrations: Sequence[Migration], lint: Callable[[Sequence[Migration]], list[Finding]],
                 log: EventLog) -> None:
        super().__init__(migrations, lint, log)
        self._allowed = 0  # the index of the last file the thread may lint now (AHEAD past the last one asked for)
        self._findings: dict[str, list[Finding]] = {}
        self._done = threading.Condition()
        self._waited_on = False
        self._stopped = False
        self._finished = False  # the thread has returned
        self._thread = threading.Thread(target=self._work, args=(list(migrations),), name="premigrate-lint",
                                        daemon=True)
        self._thread.start()

    def _work(self, migrations: list[Migration]) -> None:
        try:
            for index, migration in enumerate(migrations):
                with self._done:
                    while index > self._allowed and not self._stopped:
                        self._done.wait()
                if self._stopped:
                    return
                try:
                    found = self._lint([migration])
                except Exception as exc:  # noqa: BLE001 - told by the run's thread (_tell_failure)
                    self._failed = exc
                    return
                with self._done:
                    self._findings[migration.id] = found
                    self._done.notify_all()
                    waited_on = self._waited_on
                if not waited_on:
                    time.sleep(YIELD_S)
        finally:
            with self._done:
                self._finished = True
                self._done.notify_all()

    def _findings_of(self, migration_id: str, index: int) -> list[Finding] | None:
        with self._done:
            self._allowed = max(self._allowed, index + AHEAD)
            self._waited_on = True
            self._done.notify_all()
            while migration_id not in self._findings and not self._finished:
                self._done.wait()
            self._waited_on = False
            return self._findings.pop(migration_id, None)

    def stop(self) -> None:
        """The run is over: the thread lints no further file (the one it is on, it finishes)."""
        with self._done:
            self._stopped = True
            self._done.notify_all()
