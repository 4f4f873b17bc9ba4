"""`up --lint=warn` lints on a thread of its own (commands/lint/ahead.py): each file's findings are logged by the
run's thread when that file is about to run, what stops the thread reaches the run, and a stopped run lints no
further. No database: the lint function and the log are stand-ins."""

from __future__ import annotations

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


def test_a_bug_in_lint_is_raised_in_the_run_after_the_findings_before_it() -> None:
    linter, log = Linter(fail_at="3", error=RuntimeError("a bug")), Log()
    ahead = LintAhead(files("1", "2", "3"), linter, log)  # type: ignore[arg-type]
    ahead.report("1")
    ahead.report("2")
    with pytest.raises(RuntimeError, match="a bug"):
        ahead.report("3")
    assert ["2.sql"] == [f["script"] for _, f in log.events]


def test_a_stopped_run_lints_no_further_file() -> None:
    linter, log = Linter(), Log()
    linter.gate.clear()
    ahead = LintAhead(files("1", "2", "3"), linter, log)  # type: ignore[arg-type]
    ahead.stop()
    linter.gate.set()
    ahead._thread.join(5)
    assert not ahead._thread.is_alive()
    assert len(linter.linted) <= 1  # the file it was on when stopped, at most
