"""The CLI at a terminal: down asks before the runner lock, the summary's counts, baseline rows in status, what an
interruption says, check --wait."""

from __future__ import annotations

import json
import signal
import time
from urllib.parse import urlsplit

from pathlib import Path

from premigrate.cli import interruption_note, summary_counts
from premigrate.commands import down
from premigrate.commands.common import CommandRun
from premigrate.config import load_config
from premigrate.engine.executor import RunStats
from premigrate.errors import LockTimeout
from premigrate.log import configure, get_logger
from tests.e2e.helpers import LIVENESS_S, LiveCli
from tests.support import TestDatabase, cli_env, popen_cli, run_cli, server_url

FILES = {
    "001_users.sql": "-- migrate:up\nCREATE TABLE users (id INTEGER PRIMARY KEY);\n-- migrate:down\nDROP TABLE users;\n",
    "002_notes.sql": "-- migrate:up\nCREATE TABLE notes (id INTEGER PRIMARY KEY);\n-- migrate:down\nDROP TABLE notes;\n",
}


def folder(tmp_path: Path, files: dict[str, str] = FILES) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def command_run(command: str, db: TestDatabase, directory: Path, **flags: object) -> CommandRun:
    # In this process the log chain may still write to a stream an earlier test captured and closed.
    configure(log_format="json")
    config = load_config(command, {"dir": str(directory), **flags}, {"DATABASE_URL": db.url}, stdin_is_tty=True)
    return CommandRun(config, get_logger())


class TestDownAsksFirst:
    def test_question_is_asked_before_the_runner_lock(self, db: TestDatabase, tmp_path: Path) -> None:
        """While down's question waits for an answer, another runner can take the runner lock."""
        directory = folder(tmp_path)
        assert 0 == run_cli("up", "--dir", str(directory), env={"DATABASE_URL": db.url}).returncode
        other = command_run("up", db, directory, lock_timeout="1s")
        taken: list[bool] = []

        def confirm(question: str) -> bool:
            try:
                with other.sessions.runner_lock():
                    taken.append(True)
            except LockTimeout:
                taken.append(False)
            return True

        assert 0 == down.run(command_run("down", db, directory, steps="1"), confirm=confirm)
        assert ([True], ["1"]) == (taken, [r["migration_id"] for r in db.history()])

    def test_history_changed_while_asked(self, db: TestDatabase, tmp_path: Path) -> None:
        """When the migrations to roll back changed while the question was asked, nothing is rolled back."""
        directory = folder(tmp_path)
        assert 0 == run_cli("up", "--dir", str(directory), "--to", "1", env={"DATABASE_URL": db.url}).returncode

        def confirm(question: str) -> bool:
            assert "001" in question or "1" in question
            run_cli("up", "--dir", str(directory), env={"DATABASE_URL": db.url})
            return True

        try:
            down.run(command_run("down", db, directory, steps="1"), confirm=confirm)
        except Exception as exc:  # noqa: BLE001 - the refusal is the expected outcome
            assert (5, True) == (getattr(exc, "exit_code", None), "history changed" in str(exc))
        else:
            raise AssertionError("down rolled back after the history changed under its question")
        assert ["1", "2"] == sorted(r["migration_id"] for r in db.history())

    def test_no_answer_rolls_back_nothing(self, db: TestDatabase, tmp_path: Path) -> None:
        """Answering no leaves every migration applied."""
        directory = folder(tmp_path)
        assert 0 == run_cli("up", "--dir", str(directory), env={"DATABASE_URL": db.url}).returncode
        try:
            down.run(command_run("down", db, directory, steps="1"), confirm=lambda question: False)
        except Exception as exc:  # noqa: BLE001
            assert 2 == getattr(exc, "exit_code", None)
        assert ["1", "2"] == sorted(r["migration_id"] for r in db.history())


class TestSummaryAndStatus:
    def test_down_summary_counts_rolled_back(self, db: TestDatabase, tmp_path: Path) -> None:
        """down's summary says rolled_back, not applied."""
        directory = folder(tmp_path)
        run_cli("up", "--dir", str(directory), env={"DATABASE_URL": db.url})
        result = run_cli("down", "--dir", str(directory), "--steps", "2", "--yes", env={"DATABASE_URL": db.url})
        summary = result.find("summary")[0]
        assert (0, 2, False) == (result.returncode, summary.get("rolled_back"), "applied" in summary)

    def test_read_only_summary_has_no_count(self, db: TestDatabase, tmp_path: Path) -> None:
        """check's summary has neither an applied nor a rolled_back count."""
        directory = folder(tmp_path)
        run_cli("up", "--dir", str(directory), "--to", "1", env={"DATABASE_URL": db.url})
        result = run_cli("check", "--dir", str(directory), env={"DATABASE_URL": db.url})
        summary = result.find("summary")[0]
        assert (7, set()) == (result.returncode, {"applied", "rolled_back"} & set(summary))

    def test_status_shows_baseline_rows(self, db: TestDatabase, tmp_path: Path) -> None:
        """Rows recorded by baseline show as baseline in status, not as the file's kind."""
        directory = folder(tmp_path)
        env = {"DATABASE_URL": db.url}
        db.ensure_exists()
        assert 0 == run_cli("baseline", "--dir", str(directory), "--version", "1", env=env).returncode
        document = json.loads(run_cli("status", "--dir", str(directory), "--json", env=env).stdout)
        table = run_cli("status", "--dir", str(directory), env=env).stdout
        kinds = {m["id"]: m["kind"] for m in document["migrations"]}
        assert ({"1": "baseline", "2": "versioned"}, 1) == (kinds, table.count(" baseline "))

    def test_status_shows_the_baseline_description(self, db: TestDatabase, tmp_path: Path) -> None:
        """The description given to baseline is what status shows for that row, not the file's."""
        directory = folder(tmp_path)
        env = {"DATABASE_URL": db.url}
        db.ensure_exists()
        assert 0 == run_cli("baseline", "--dir", str(directory), "--version", "2", "--description", "from prod dump",
                            env=env).returncode
        document = json.loads(run_cli("status", "--dir", str(directory), "--json", env=env).stdout)
        table = run_cli("status", "--dir", str(directory), env=env).stdout
        assert {"1": "users", "2": "from prod dump"} == {m["id"]: m["description"] for m in document["migrations"]}
        assert "from prod dump" in table


class TestInterruptionNotes:
    def test_notes_name_what_was_stopped(self) -> None:
        """Only a run whose executor started statements says that the running statement was stopped."""
        began = RunStats(statements_began=True)
        notes = [interruption_note("wait", None), interruption_note("check", RunStats()),
                 interruption_note("up", RunStats()), interruption_note("up", began)]
        assert [False, False, False, True] == ["running statement was stopped" in n for n in notes]
        assert ({"applied": 0}, {"rolled_back": 0}, {}) == (summary_counts("up", None), summary_counts("down", None),
                                                            summary_counts("status", RunStats(applied=3)))

    def test_ctrl_c_during_wait(self, tmp_path: Path) -> None:
        """SIGINT while `wait` waits for a database that never answers says nothing was changed."""
        proc = popen_cli("wait", "--wait-timeout", "60s",
                         env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"})
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=LIVENESS_S)
        note = [line for line in stderr.splitlines() if '"interrupted"' in line]
        assert 130 == proc.returncode
        assert 1 == len(note) and "nothing was changed" in note[0] and "running statement" not in note[0]


class TestCheckWait:
    def test_pending_becomes_current_while_it_waits(self, db: TestDatabase, tmp_path: Path) -> None:
        """check --wait reports pending, a concurrent up applies the files, check --wait then exits 0."""
        directory = folder(tmp_path)
        env = {"DATABASE_URL": db.url}
        assert 0 == run_cli("up", "--dir", str(directory), "--to", "1", env=env).returncode
        waiting = LiveCli("check", "--dir", str(directory), "--wait", "--timeout", "2m", env=env)
        try:
            first = waiting.wait_for_event("check_waiting")
            assert 0 == run_cli("up", "--dir", str(directory), env=env).returncode
            result = waiting.finish()
        finally:
            waiting.kill()
        assert (1, 0) == (first["pending"], result.returncode)
        assert ["up_to_date"] == [e for e in result.event_names() if e in ("up_to_date", "pending")]

    def test_timeout_while_pending_exits_7(self, db: TestDatabase, tmp_path: Path) -> None:
        """Nothing applies the pending file: check --wait --timeout 2s exits 7 and changes nothing."""
        directory = folder(tmp_path)
        env = {"DATABASE_URL": db.url}
        assert 0 == run_cli("up", "--dir", str(directory), "--to", "1", env=env).returncode
        result = run_cli("check", "--dir", str(directory), "--wait", "--timeout", "2s", env=env)
        assert (7, ["check_wait_timed_out"], ["1"]) == (
            result.returncode, [e["event"] for e in result.find("check_wait_timed_out")],
            [r["migration_id"] for r in db.history()])


class TestWrongProtocol:
    def _swapped(self, dialect: str) -> str:
        """A URL of `dialect` pointed at the other database's server port."""
        other = urlsplit(server_url("mysql" if dialect == "postgresql" else "postgresql"))
        user = "postgres" if dialect == "postgresql" else "root"
        return f"{dialect}://{user}@{other.hostname}:{other.port}/premigrate_probe"

    def test_postgresql_url_at_a_mysql_port(self) -> None:
        """PostgreSQL URL, MySQL port: exit 3 at once, one error line naming MySQL/MariaDB, no traceback."""
        result = run_cli("wait", "--wait-timeout", "60s", env={"DATABASE_URL": self._swapped("postgresql")})
        errors = result.find("error")
        assert (3, 1, "wrong_protocol") == (result.returncode, len(errors), errors[0]["reason"])
        assert "answered like MySQL/MariaDB, not PostgreSQL" in errors[0]["error"]
        assert "Traceback" not in result.stderr

    def test_mysql_url_at_a_postgresql_port(self) -> None:
        """MySQL URL, PostgreSQL port: exit 3 without waiting out --wait-timeout, the error names PostgreSQL."""
        result = run_cli("wait", "--wait-timeout", "5m", env={"DATABASE_URL": self._swapped("mysql")})
        errors = result.find("error")
        assert (3, 1, "wrong_protocol") == (result.returncode, len(errors), errors[0]["reason"])
        assert "answered like PostgreSQL, not MySQL/MariaDB" in errors[0]["error"]
        assert "Traceback" not in result.stderr

    def test_jdbc_and_ssl_flag(self) -> None:
        """A JDBC URL and ?ssl=true are usage errors (exit 2) with the fix, before any connection."""
        jdbc = run_cli("wait", env={"DATABASE_URL": "jdbc:postgresql://127.0.0.1:5432/x"})
        ssl = run_cli("wait", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/x?ssl=true"})
        assert (2, 2) == (jdbc.returncode, ssl.returncode)
        assert "drop the jdbc: prefix" in jdbc.find("error")[0]["error"]
        assert "sslmode=require" in ssl.find("error")[0]["error"]


def run_at_a_terminal(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """premigrate with stderr on a pseudo-terminal (stdout a pipe): exit code, stdout, what the terminal showed."""
    import os
    import pty
    import subprocess
    import sys

    base = {k: v for k, v in cli_env().items() if k not in ("PREMIGRATE_LOG_FORMAT", "NO_COLOR")}
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "premigrate", *args], env={**base, **env}, stdout=subprocess.PIPE,
                            stderr=slave, stdin=subprocess.DEVNULL, text=True)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    stdout = proc.stdout.read() if proc.stdout else ""
    return proc.wait(timeout=LIVENESS_S), stdout, shown.decode()


class TestAtATerminal:
    def _env(self, tmp_path: Path) -> dict[str, str]:
        return {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "PREMIGRATE_DIR": str(folder(tmp_path))}

    def test_console_lines_in_colour(self, tmp_path: Path) -> None:
        """At a terminal: the console format, coloured, one line per event."""
        code, _, shown = run_at_a_terminal("up", env=self._env(tmp_path))
        assert (0, True, True) == (code, "\x1b[" in shown, "migration_applied" in shown)
        assert '"event"' not in shown

    def test_no_color(self, tmp_path: Path) -> None:
        """NO_COLOR set: the same lines without any escape sequence."""
        code, _, shown = run_at_a_terminal("up", env={**self._env(tmp_path), "NO_COLOR": "1"})
        assert (0, False, True) == (code, "\x1b[" in shown, "migration_applied" in shown)

    def test_not_a_terminal_is_json(self, tmp_path: Path) -> None:
        """stderr a pipe: JSON, no colour."""
        import subprocess
        import sys

        base = {k: v for k, v in cli_env().items() if k != "PREMIGRATE_LOG_FORMAT"}
        proc = subprocess.run([sys.executable, "-m", "premigrate", "up"], env={**base, **self._env(tmp_path)},
                              capture_output=True, text=True, timeout=LIVENESS_S)
        events = [json.loads(line)["event"] for line in proc.stderr.splitlines()]
        assert (0, False, "summary") == (proc.returncode, "\x1b[" in proc.stderr, events[-1])

    def test_status_at_a_terminal_logs_only_warnings(self, tmp_path: Path) -> None:
        """status at a terminal: the table on stdout, no info lines on the terminal; --log-level info brings them back."""
        env = self._env(tmp_path)
        run_cli("up", env=env)
        code, stdout, shown = run_at_a_terminal("status", env=env)
        assert (0, True, "") == (code, stdout.startswith("VERSION"), shown.strip())
        _, _, verbose = run_at_a_terminal("status", "--log-level", "info", env=env)
        assert "config_loaded" in verbose

    def test_new_and_lint_name_no_database(self, tmp_path: Path) -> None:
        """new and lint never open the database: config_loaded does not name one."""
        env = {"PREMIGRATE_DIR": str(folder(tmp_path)), "DATABASE_URL": "postgresql://app:pw@db.example/app"}
        for args in (("new", "add a thing"), ("lint",)):
            loaded = run_cli(*args, env=env).find("config_loaded")[0]
            assert set() == {"database", "database_source", "wait_timeout_s"} & set(loaded), args


class TestLongStatements:
    def test_migration_progress_in_json(self, postgres: TestDatabase, tmp_path: Path) -> None:
        """A statement running past 10 s is reported as migration_progress with its position and elapsed time."""
        directory = folder(tmp_path, {"001_slow.sql": "SELECT pg_sleep(11);\n"})
        result = run_cli("up", "--dir", str(directory), env={"DATABASE_URL": postgres.url})
        progress = result.find("migration_progress")
        assert (0, True) == (result.returncode, len(progress) >= 1)
        assert (1, 1, 1, True) == (progress[0]["migration"], progress[0]["migrations"], progress[0]["statement"],
                                   progress[0]["elapsed_s"] >= 10)

    def test_progress_line_at_a_terminal(self, postgres: TestDatabase, tmp_path: Path) -> None:
        """At a terminal a statement running a few seconds gets a progress line: migration k of N, elapsed."""
        directory = folder(tmp_path, {"001_quick.sql": "SELECT 1;\n", "002_slow.sql": "SELECT pg_sleep(5);\n"})
        code, _, shown = run_at_a_terminal("up", "--dir", str(directory), env={"DATABASE_URL": postgres.url,
                                                                                "NO_COLOR": "1"})
        lines = [line for line in shown.splitlines() if "migration_progress" in line]
        assert (0, True) == (code, len(lines) >= 1)
        assert "migration=2 migrations=2" in lines[0] and "elapsed_s=" in lines[0] and "pg_sleep" in lines[0]


class TestCheckWaitAtATerminal:
    def test_waiting_is_shown(self, tmp_path: Path) -> None:
        """check --wait at a terminal shows its check_waiting lines (plain check shows only warnings)."""
        env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}", "PREMIGRATE_DIR": str(folder(tmp_path)),
               "NO_COLOR": "1"}
        run_cli("up", "--to", "1", env=env)
        code, _, shown = run_at_a_terminal("check", "--wait", "--timeout", "1s", env=env)
        assert (7, True, True) == (code, "check_waiting" in shown, "check_wait_timed_out" in shown)
