"""The examples in README.md and docs/ are real output: each code block marked `<!-- example: NAME ... -->` is run
here, command by command, and what the commands print is compared with what the page shows.

In a page, `...` stands for text that differs from run to run or is left out (a long line, a checksum). Timestamps,
durations, wait times and the server's version string are compared by shape, not by value. The commands a page
shows are checked word for word, so a page cannot show one command while this file runs another.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.helpers import free_port
from tests.support import ROOT, CliResult, TestDatabase, run_cli

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
MARKER = re.compile(r"^<!-- example: ([a-z0-9-]+)[^>]*-->\n```[a-z]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
SQLITE_URL = "sqlite:///app.db"

# Shapes compared instead of values.
ISO_TIME = (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", "<time>")
TABLE_TIME = (r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<time>")
MILLISECONDS = (r"\b\d+ ms\b", "<n> ms")
JSON_TIMINGS = (r'"(duration_ms|waited_ms)": \d+', r'"\1": <n>')
CONSOLE_TIMINGS = (r"\b(duration_ms|waited_ms)=\d+", r"\1=<n>")
CONSOLE_TIME = (r"(?m)^\d\d:\d\d:\d\d\b", "<time>")
SERVER = (r"server='[^']*'", "server=<server>")
EVERY_NUMBER = (r"\d+", "<n>")


def _examples() -> dict[str, str]:
    found: dict[str, str] = {}
    for page in PAGES:
        for name, body in MARKER.findall(page.read_text()):
            assert name not in found, f"two examples are named {name!r}"
            found[name] = body
    return found


EXAMPLES = _examples()
RUN = ("up-console", "up-summary-file", "status", "status-json", "check", "wait", "plan", "baseline-from-dbmate",
       "down-refused", "new", "lint", "repair-report", "repair-actions", "log-lines", "summary-line")
# Examples that are not commands: another test file parses them with the reader they describe.
RUN_ELSEWHERE = {"liquibase": "tests/unit/test_docs_formats.py", "liquibase-master": "tests/unit/test_docs_formats.py",
                 "sqitch": "tests/unit/test_docs_formats.py", "liquibase-run": "tests/e2e/test_cli_liquibase.py"}


def steps(name: str) -> list[tuple[str, str]]:
    """The example's commands (after `$ `), each with the output the page shows for it."""
    assert name in EXAMPLES, f"no block marked `<!-- example: {name} -->` in README.md or docs/"
    result: list[tuple[str, str]] = []
    for line in EXAMPLES[name].splitlines(keepends=True):
        if line.startswith("$ "):
            result.append((line[2:].rstrip("\n"), ""))
        else:
            assert result, f"example {name!r} must start with a `$ ` command line"
            command, output = result[-1]
            result[-1] = (command, output + line)
    return result


def _normalize(text: str, shapes: tuple[tuple[str, str], ...]) -> str:
    for pattern, replacement in shapes:
        text = re.sub(pattern, replacement, text)
    return text


def _pattern(shown: str) -> str:
    return ".*?".join(re.escape(part) for part in shown.split("..."))


def assert_shows(shown: str, printed: str, *shapes: tuple[str, str]) -> None:
    """What the command printed is what the page shows (`...` standing for any text)."""
    shown, printed = _normalize(shown, shapes), _normalize(printed, shapes)
    assert re.fullmatch(_pattern(shown), printed, re.DOTALL), (
        f"the page shows:\n{shown}\nthe command printed:\n{printed}")


def assert_shows_lines(shown: str, printed: str, *shapes: tuple[str, str]) -> None:
    """Each line the page shows is printed, in that order (the page may leave lines out)."""
    lines = _normalize(printed, shapes).splitlines()
    position = 0
    for line in _normalize(shown, shapes).splitlines():
        while position < len(lines) and not re.fullmatch(_pattern(line), lines[position]):
            position += 1
        assert position < len(lines), f"the page shows the line\n{line}\nwhich was not printed (in order) in:\n" + (
            "\n".join(lines))
        position += 1


def example_folder(tmp_path: Path) -> Path:
    """A copy of the repository's example migrations in `tmp_path/migrations`, as the pages use them."""
    return Path(shutil.copytree(ROOT / "migrations", tmp_path / "migrations"))


def sqlite(*args: str, cwd: Path) -> CliResult:
    return run_cli(*args, env={"DATABASE_URL": SQLITE_URL}, cwd=cwd)


def test_every_marked_example_is_run() -> None:
    """A marked example this file does not run, or a run example no page marks, fails here."""
    assert set(EXAMPLES) == set(RUN) | set(RUN_ELSEWHERE)
    root = Path(__file__).resolve().parents[2]
    for name, test_file in RUN_ELSEWHERE.items():
        assert f'"{name}"' in (root / test_file).read_text(), f"{test_file} does not run the example {name!r}"


class TestUp:
    def test_console_run(self, tmp_path: Path, postgres: TestDatabase) -> None:
        """docs/commands/up.md: the console log of a first `up --to 2` on PostgreSQL."""
        [(command, shown)] = steps("up-console")
        assert command == "DATABASE_URL=postgresql://postgres@127.0.0.1/app premigrate up --to 2 --log-format console"
        example_folder(tmp_path)
        result = run_cli("up", "--to", "2", "--log-format", "console", env={"DATABASE_URL": postgres.url},
                         cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        printed = result.stderr.replace(postgres.url, "postgresql://postgres@127.0.0.1/app")
        assert_shows(shown, printed, CONSOLE_TIME, CONSOLE_TIMINGS, SERVER)

    def test_summary_file(self, tmp_path: Path) -> None:
        """docs/commands/up.md: the one-line summary `--summary-file` receives."""
        [(command, shown)] = steps("up-summary-file")
        assert command == "premigrate up --to 2 --summary-file summary.json 2>/dev/null; cat summary.json"
        example_folder(tmp_path)
        result = sqlite("up", "--to", "2", "--summary-file", "summary.json", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert_shows(shown, (tmp_path / "summary.json").read_text(), JSON_TIMINGS,
                     (r'"premigrate_version": "[^"]+"', '"premigrate_version": <v>'))


class TestReadOnlyCommands:
    @pytest.fixture
    def half_applied(self, tmp_path: Path) -> Path:
        """The state status, check and plan are shown in: the example folder after `up --to 2`."""
        example_folder(tmp_path)
        result = sqlite("up", "--to", "2", "--lint", "off", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return tmp_path

    def test_status(self, half_applied: Path) -> None:
        """docs/commands/status.md: the table."""
        [(command, shown)] = steps("status")
        assert command == "premigrate status"
        result = sqlite("status", cwd=half_applied)
        assert result.returncode == 0, result.stderr
        assert_shows(shown, result.stdout, TABLE_TIME, MILLISECONDS)

    def test_status_json(self, half_applied: Path) -> None:
        """docs/commands/status.md: one migration of `status --json`, as jq prints it."""
        [(command, shown)] = steps("status-json")
        assert command == "premigrate status --json | jq '.migrations[0]'"
        result = sqlite("status", "--json", cwd=half_applied)
        assert result.returncode == 0, result.stderr
        first = json.dumps(json.loads(result.stdout)["migrations"][0], indent=2) + "\n"
        assert_shows(shown, first, ISO_TIME, JSON_TIMINGS)

    def test_check(self, half_applied: Path) -> None:
        """docs/commands/check.md: pending migrations are exit 7, with a `pending` event."""
        [(command, shown)] = steps("check")
        assert command == """premigrate check 2>&1 | grep -E '"pending"|"summary"'"""
        result = sqlite("check", cwd=half_applied)
        assert result.returncode == 7, result.stderr
        printed = "".join(line + "\n" for line in (result.stdout + result.stderr).splitlines()
                          if re.search(r'"pending"|"summary"', line))
        assert_shows(shown, printed, ISO_TIME, JSON_TIMINGS)

    def test_plan(self, half_applied: Path) -> None:
        """docs/commands/plan.md: the text plan, and exit 7 because there is work."""
        (command, shown), (echo, code) = steps("plan")
        assert (command, echo) == ("premigrate plan", "echo $?")
        result = sqlite("plan", cwd=half_applied)
        assert_shows(shown, result.stdout)
        assert result.returncode == int(code), result.stderr

    def test_wait(self, tmp_path: Path) -> None:
        """docs/commands/wait.md: a port that refuses connections, retried until --wait-timeout, then exit 3."""
        [(command, shown)] = steps("wait")
        assert command == ("DATABASE_URL=postgresql://postgres@127.0.0.1:5999/app premigrate wait --wait-timeout 1.2s"
                           " 2>&1 | grep -v config_loaded")
        port = free_port()  # the page's 5999, unless something listens there
        result = run_cli("wait", "--wait-timeout", "1.2s", cwd=tmp_path,
                         env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/app"})
        assert result.returncode == 3, result.stderr
        printed = "".join(line + "\n" for line in (result.stdout + result.stderr).splitlines()
                          if "config_loaded" not in line)
        assert_shows_lines(shown, printed, EVERY_NUMBER)


class TestWritingCommands:
    def test_baseline_from_dbmate(self, tmp_path: Path) -> None:
        """docs/commands/baseline.md: dbmate's history holds 1, 2 and 9; the folder has 1 to 4."""
        [(command, shown)] = steps("baseline-from-dbmate")
        assert command == "premigrate baseline --from dbmate"
        example_folder(tmp_path)
        with sqlite3.connect(tmp_path / "app.db") as conn:
            conn.execute("CREATE TABLE schema_migrations (version VARCHAR(128) PRIMARY KEY)")
            conn.executemany("INSERT INTO schema_migrations VALUES (?)", [("1",), ("2",), ("9",)])
        conn.close()
        result = sqlite("baseline", "--from", "dbmate", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert_shows(shown, result.stdout)

    def test_down_refused(self, tmp_path: Path) -> None:
        """docs/commands/down.md: 004 has no down part, so nothing is rolled back (exit 5)."""
        [(command, shown)] = steps("down-refused")
        assert command == "premigrate down --steps 2 --yes"
        example_folder(tmp_path)
        assert sqlite("up", "--lint", "off", cwd=tmp_path).returncode == 0
        result = sqlite("down", "--steps", "2", "--yes", cwd=tmp_path)
        assert result.returncode == 5, result.stderr
        assert_shows_lines(shown, result.stderr)

    def test_new(self, tmp_path: Path) -> None:
        """docs/commands/new.md: the next number, with the folder's zero padding."""
        [(command, shown)] = steps("new")
        assert command == 'premigrate new "add email index"'
        example_folder(tmp_path)
        result = run_cli("new", "add email index", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert_shows(shown, result.stdout)
        assert (tmp_path / shown.strip()).is_file()

    def test_lint(self, tmp_path: Path) -> None:
        """docs/commands/lint.md: the file shown, linted, prints the findings shown and exits 5 (an error-level one)."""
        (cat, sql), (command, shown) = steps("lint")
        assert (cat, command) == ("cat migrations/004_accounts.sql", "premigrate lint --dir migrations")
        (tmp_path / "migrations").mkdir()
        (tmp_path / "migrations" / "004_accounts.sql").write_text(sql)
        result = run_cli("lint", "--dir", "migrations", cwd=tmp_path)
        assert result.returncode == 5, result.stderr
        assert_shows(shown, result.stdout)

    def test_repair(self, tmp_path: Path, mariadb: TestDatabase) -> None:
        """docs/commands/repair.md: a MariaDB migration that failed at statement 3 of 5, reported, resumed by
        skipping the statement done by hand; then a comment edited in an applied file, realigned."""
        (cat, sql), (command, shown), (echo, code) = steps("repair-report")
        assert (cat, command, echo) == ("cat migrations/003_backfill_orders.sql", "premigrate repair", "echo $?")
        folder = tmp_path / "migrations"
        folder.mkdir()
        (folder / "001_orders.sql").write_text(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, placed_at DATETIME NOT NULL);\n")
        (folder / "002_users.sql").write_text(
            "-- Who placed an order.\nCREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(255) NOT NULL);\n")
        (folder / "003_backfill_orders.sql").write_text(sql)
        env = {"DATABASE_URL": mariadb.url}
        assert run_cli("up", "--lint", "off", cwd=tmp_path, env=env).returncode == 4
        database_name = (re.escape(mariadb.name), "app")

        result = run_cli("repair", cwd=tmp_path, env=env)
        assert_shows(shown, result.stdout, database_name)
        assert result.returncode == int(code), result.stderr

        (resume, resumed), (realign, realigned) = steps("repair-actions")
        assert (resume, realign) == ("premigrate repair --resume --skip-current",
                                     "premigrate repair --realign-checksums")
        result = run_cli("repair", "--resume", "--skip-current", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert_shows(resumed, result.stdout)
        users = folder / "002_users.sql"
        edited = "-- Who placed an order (one row per customer)."
        users.write_text(users.read_text().replace("-- Who placed an order.", edited))
        result = run_cli("repair", "--realign-checksums", cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert_shows(realigned, result.stdout)


def test_readme_quick_start(tmp_path: Path) -> None:
    """README.md: with no database configured, `premigrate up` migrates ./migrations into ./premigrate.db."""
    readme = (ROOT / "README.md").read_text()
    assert "premigrate up      # no database configured: migrates ./migrations into ./premigrate.db" in readme
    example_folder(tmp_path)
    result = run_cli("up", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.find("no_database_configured")
    with sqlite3.connect(tmp_path / "premigrate.db") as conn:
        applied = conn.execute("SELECT version FROM premigrate_history WHERE state = 'applied'").fetchall()
    conn.close()
    assert sorted(v for (v,) in applied) == ["1", "2", "3", "4"]


class TestLogLines:
    @pytest.fixture
    def events(self, tmp_path: Path) -> dict[str, dict[str, object]]:
        """The JSON events of `up --to 2` on the example folder, by name."""
        example_folder(tmp_path)
        result = sqlite("up", "--to", "2", "--lint", "off", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return {event["event"]: event for event in result.events}

    def test_log_lines(self, events: dict[str, dict[str, object]]) -> None:
        """docs/log-events.md: each line shown has the fields, in the order, of the real event."""
        lines = [json.loads(line) for line in EXAMPLES["log-lines"].splitlines()]
        assert [line["event"] for line in lines] == ["config_loaded", "migration_applied", "summary"]
        for line in lines:
            assert list(line) == list(events[str(line["event"])]), line["event"]

    def test_readme_summary_line(self, events: dict[str, dict[str, object]]) -> None:
        """README.md: the summary line shown has the fields, in the order, of the real one."""
        [line] = [json.loads(text) for text in EXAMPLES["summary-line"].splitlines()]
        assert list(line) == list(events["summary"])
        assert (line["event"], line["exit_code"], line["applied"]) == ("summary", 0, 2)
