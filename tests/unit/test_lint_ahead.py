"""`up --lint=warn` lints on a thread of its own (commands/lint/ahead.py): each file's findings are logged by the
run's thread when that file is about to run, what stops the thread reaches the run, and a stopped run lints no
further. No database: the lint function and the log are stand-ins."""

from __future__ import annotations

import signal
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from premigrate.commands.lint.ahead import LintAhead
from premigrate.commands.lint.rules import Finding, LintUnavailable


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


def files(*ids: str) -> list[Any]:
    return [SimpleNamespace(id=i, script=f"{i}.sql") for i in ids]


def finding(script: str) -> Finding:
    return Finding("drop-column", "error", script, 1, "ALTER TABLE t DROP COLUMN c", "drops column t.c", "fix")


class Linter:
    """Lints one file per call, in the thread that calls; `gate` holds it back until the test opens it."""

    def __init__(self, fail_at: str | None = None, error: BaseException | None = None) -> None:
        self.linted: list[str] = []
        self.threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.fail_at, self.error = fail_at, error

    def __call__(self, migrations: list[Any]) -> list[Finding]:
        self.gate.wait(10)
        (migration,) = migrations
        self.threads.add(threading.current_thread().name)
        if migration.id == self.fail_at:
            assert self.error is not None
            raise self.error
        self.linted.append(migration.id)
        return [finding(migration.script)] if migration.id in ("2", "3") else []


def test_each_files_findings_are_logged_by_the_run_when_it_asks_for_them() -> None:
    linter, log = Linter(), Log()
    ahead = LintAhead(files("1", "2", "3"), linter, log)  # type: ignore[arg-type]
    ahead.report("1")
    assert [] == log.events
    ahead.report("2")
    assert [("lint_finding", "2.sql")] == [(e, f["script"]) for e, f in log.events]
    ahead.report("2")  # once only
    ahead.report("3")
    assert ["2.sql", "3.sql"] == [f["script"] for _, f in log.events]
    assert {"premigrate-lint"} == linter.threads  # never the run's own thread


def test_report_waits_for_a_file_the_thread_has_not_reached() -> None:
    linter, log = Linter(), Log()
    linter.gate.clear()
    ahead = LintAhead(files("1", "2"), linter, log)  # type: ignore[arg-type]
    threading.Timer(0.05, linter.gate.set).start()
    ahead.report("2")
    assert (["1", "2"], ["2.sql"]) == (linter.linted, [f["script"] for _, f in log.events])


def test_a_file_lint_was_not_given_is_not_linted() -> None:
    linter, log = Linter(), Log()
    ahead = LintAhead(files("1"), linter, log)  # type: ignore[arg-type]
    ahead.report("2")
    ahead.report("1")
    assert ([], ["1"]) == (log.events, linter.linted)


def test_lint_unavailable_is_told_once_and_the_run_goes_on() -> None:
    linter, log = Linter(fail_at="1", error=LintUnavailable("pglast is not installed")), Log()
    ahead = LintAhead(files("1", "2"), linter, log)  # type: ignore[arg-type]
    ahead.report("1")
    ahead.report("2")
    assert [("lint_unavailable", "pglast is not installed")] == [(e, f["error"]) for e, f in log.events]


def test_a_bug_in_lint_is_told_once_and_never_raised_into_the_run() -> None:
    """Under warn lint is advisory: a lint that fails (a bug) is logged with its traceback, the findings before it
    still come, and the run goes on; nothing is raised into the executor, which may have a migration in flight."""
    linter, log = Linter(fail_at="3", error=RuntimeError("a bug")), Log()
    ahead = LintAhead(files("1", "2", "3", "4"), linter, log)  # type: ignore[arg-type]
    for migration_id in ("1", "2", "3", "4"):
        ahead.report(migration_id)
    assert [("lint_finding", "2.sql"), ("lint_unavailable", "lint failed: RuntimeError: a bug")] == [
        (e, f.get("script") or f.get("error")) for e, f in log.events]
    assert log.events[1][1]["exc_info"][1] is linter.error


def test_a_stopped_run_lints_no_further_file() -> None:
    linter, log = Linter(), Log()
    linter.gate.clear()
    ahead = LintAhead(files("1", "2", "3"), linter, log)  # type: ignore[arg-type]
    ahead.stop()
    linter.gate.set()
    ahead._thread.join(5)
    assert not ahead._thread.is_alive()
    assert len(linter.linted) <= 1  # the file it was on when stopped, at most


def test_up_goes_on_when_lint_fails_under_warn(tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A real `up --lint=warn` whose lint fails on the third file applies every file and exits 0: the failure is a
    lint_unavailable warning, not an internal error halfway through the run."""
    import json

    from premigrate.cli import main
    from premigrate.commands import lint

    folder = tmp_path / "migrations"
    folder.mkdir()
    for i in range(1, 6):
        (folder / f"{i:03d}_t{i}.sql").write_text(f"CREATE TABLE t{i} (id INTEGER);\n")
    real = lint.lint_migrations

    def failing(files: Any, *args: Any, **kwargs: Any) -> list[Finding]:
        if any(m.script == "003_t3.sql" for m in files):
            raise RuntimeError("a bug")
        return real(files, *args, **kwargs)

    monkeypatch.setattr(lint, "lint_migrations", failing)
    code = main(["up", "--log-format", "json", "--lint", "warn", "--dir", str(folder)],
                {"DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}"})
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (0, 5) == (code, events[-1]["applied"])
    assert ["lint failed: RuntimeError: a bug"] == [e["error"] for e in events if e["event"] == "lint_unavailable"]


def test_the_thread_keeps_pace_with_the_run() -> None:
    """Before the run asks for a file the thread lints the first one only (the run's start is CPU the parser would
    take from it); after, at most AHEAD files past the last one asked for."""
    from premigrate.commands.lint import ahead as module

    linter, log = Linter(), Log()
    ids = [str(i) for i in range(1, module.AHEAD + 6)]
    ahead = LintAhead(files(*ids), linter, log)  # type: ignore[arg-type]
    deadline = threading.Event()
    while not linter.linted and not deadline.wait(0.01):
        pass
    deadline.wait(0.2)  # time for the thread to go further, which it must not
    assert ["1"] == linter.linted
    ahead.report("1")
    deadline.wait(0.2)
    assert ids[:module.AHEAD + 1] == linter.linted  # "1" and the AHEAD after it
    ahead.report("3")
    deadline.wait(0.2)
    assert ids[:module.AHEAD + 3] == linter.linted  # two more: "3" is index 2
    ahead.stop()
    ahead._thread.join(5)
    assert not ahead._thread.is_alive()


# -- LintInWaits: MySQL's way, on the run's own thread, in its waits for the database ---------------------------

def wait_for_database() -> None:
    """What the MySQL driver does once a statement is sent (drivers/mysql_send.py)."""
    from premigrate import held_events

    held_events.run_work()


def in_waits(linter: Linter, *ids: str) -> Any:
    from premigrate.commands.lint.ahead import LintInWaits

    return LintInWaits(files(*ids), linter, Log())  # type: ignore[arg-type]


def test_in_waits_lints_the_files_left_together_on_the_runs_own_thread() -> None:
    linter = Linter()
    lint = in_waits(linter, "1", "2", "3", "4")
    try:
        wait_for_database()
        assert [] == linter.linted  # nothing before the run asks
        lint.report("1")  # no wait reached it: linted now
        assert ["1"] == linter.linted
        wait_for_database()  # the three left, fewer than a batch, in one wait
        assert ["1", "2", "3", "4"] == linter.linted
        wait_for_database()
        lint.report("2")
        lint.report("3")
        assert ["2.sql", "3.sql"] == [f["script"] for _, f in lint._log.events]
        assert ["1", "2", "3", "4"] == linter.linted  # reported files are not linted twice
        assert {threading.current_thread().name} == linter.threads
    finally:
        lint.stop()


def test_in_waits_lints_a_batch_once_one_is_allowed_and_keeps_pace_with_the_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A file linted alone in a wait runs cold: files go BATCH at a time, at most AHEAD past the last one the run
    asked for, and the last ones together."""
    from premigrate.commands.lint import ahead as module

    monkeypatch.setattr(module, "AHEAD", 4)
    monkeypatch.setattr(module, "BATCH", 2)
    linter = Linter()
    ids = [str(i) for i in range(1, 9)]
    lint = in_waits(linter, *ids)
    try:
        lint.report("1")  # allows up to "5"
        wait_for_database()
        assert ids[:3] == linter.linted
        wait_for_database()
        wait_for_database()
        assert ids[:5] == linter.linted
        lint.report("2")  # allows "6": one file, fewer than a batch
        wait_for_database()
        assert ids[:5] == linter.linted
        lint.report("3")  # allows "7": a batch
        wait_for_database()
        assert ids[:7] == linter.linted
        lint.report("4")  # allows "8", the last file: linted although alone
        wait_for_database()
        assert ids == linter.linted
    finally:
        lint.stop()


def test_in_waits_lint_failures_are_told_once_and_never_raised() -> None:
    linter = Linter(fail_at="2", error=RuntimeError("a bug"))
    lint = in_waits(linter, "1", "2", "3")
    try:
        lint.report("1")
        wait_for_database()  # lints "2", which fails: nothing raised here, in the wait
        wait_for_database()
        lint.report("2")
        lint.report("3")
        assert ["lint failed: RuntimeError: a bug"] == [f["error"] for _, f in lint._log.events]
        assert ["1"] == linter.linted  # nothing after the failure
    finally:
        lint.stop()


def test_a_signal_in_a_wait_leaves_the_file_for_report() -> None:
    """A signal's exception raised in lint goes up as it would from the read; the file is linted again when the
    run asks for it."""
    from premigrate.errors import Interrupted

    linter = Linter(fail_at="2", error=Interrupted(signal.SIGTERM))
    lint = in_waits(linter, "1", "2")
    try:
        lint.report("1")
        with pytest.raises(Interrupted):
            wait_for_database()
        linter.fail_at = None
        lint.report("2")
        assert (["1", "2"], ["2.sql"]) == (linter.linted, [f["script"] for _, f in lint._log.events])
    finally:
        lint.stop()


def test_a_stopped_run_lints_nothing_in_its_waits() -> None:
    from premigrate import held_events

    linter = Linter()
    lint = in_waits(linter, "1", "2", "3")
    lint.report("1")
    lint.stop()
    assert held_events.idle_work() is None
    wait_for_database()
    assert ["1"] == linter.linted
