from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from premigrate import log


class TestScrubber:
    def test_replaces_secret_everywhere(self) -> None:
        """Secrets are replaced in nested values and in their URL-encoded form."""
        scrub = log.SecretScrubber(["p@ss/word"])
        event = {"error": "auth failed for p@ss/word", "url": "mysql://u:p%40ss%2Fword@h/x",
                 "nested": {"list": ["x p@ss/word y"]}}
        assert {"error": "auth failed for ***", "url": "mysql://u:***@h/x", "nested": {"list": ["x *** y"]}} == \
            scrub(None, "info", event)

    def test_case_folded_forms(self) -> None:
        """A placeholder's value written where PostgreSQL reads an identifier comes back folded to lower case in its
        error: masked too."""
        scrub = log.SecretScrubber(["SeCrEt-Value-42"])
        event = {"error": 'role "secret-value-42" does not exist; SECRET-VALUE-42'}
        assert {"error": 'role "***" does not exist; ***'} == scrub(None, "info", event)

    def test_a_short_password_leaves_the_url_and_the_versions_readable(self) -> None:
        """A one-character password garbled the redacted URL and the version list, and the gaps gave it away."""
        scrub = log.SecretScrubber(["1"])
        event = {"database": "mysql://app:***@127.0.0.1/shop", "versions": ["1", "2"], "error": "bad value 1"}
        assert {"database": "mysql://app:***@127.0.0.1/shop", "versions": ["1", "2"], "error": "bad value ***"} == \
            scrub(None, "info", event)

    def test_no_secrets_is_identity(self) -> None:
        """Without secrets the event passes unchanged."""
        event = {"event": "x", "n": 1}
        assert event == log.SecretScrubber([])(None, "info", dict(event))


# Short secrets and common words: each must leave event names, levels and unrelated words alone.
SHORT_SECRETS = ["e", "a", "1", "up", "ab", "app", "err", "info", "sql", "name", "true", "test", "user", "error",
                 "admin", "table", "applied", "password", "postgres", "migration"]


class TestScrubberLeavesStructureAlone:
    """Keys, event names, levels and other structural fields are never scrubbed; values lose the secret only where it
    stands as the secret, not inside an unrelated word."""

    @pytest.mark.parametrize("secret", SHORT_SECRETS)
    def test_event_level_and_keys_survive(self, secret: str) -> None:
        """Event names, levels, timestamps and keys come out exactly as they went in."""
        event = {"event": "migration_applied", "level": "error", "timestamp": "2026-01-01T00:00:00Z",
                 "command": "up", "dialect": "postgresql", "state": "applied", "version": "1", "migration_id": "1",
                 "error": "x", "applied": 1, "password": "y"}
        scrubbed = log.SecretScrubber([secret])(None, "error", dict(event))
        assert list(event) == list(scrubbed)
        assert {k: event[k] for k in log.STRUCTURAL_FIELDS if k in event} == {
            k: scrubbed[k] for k in log.STRUCTURAL_FIELDS if k in scrubbed}

    @pytest.mark.parametrize("secret", SHORT_SECRETS)
    def test_unrelated_words_survive(self, secret: str) -> None:
        """A message that holds the secret only inside longer words is left as it is."""
        text = (f"x{secret} {secret}x {secret}_{secret} migration_applied errors information "
                f"tables users applications {secret}1 0{secret}")
        assert text == log.SecretScrubber([secret]).scrub(text)

    @pytest.mark.parametrize("secret", SHORT_SECRETS + ["p'w", "a\\b", "p@ss", "#1", "x y"])
    @pytest.mark.parametrize("template", [
        pytest.param("syntax error near 'CREATE USER u IDENTIFIED BY '{q}'' at line 1", id="mysql-echo"),
        pytest.param("ERROR: syntax error at or near \"PASSWORD\"\nLINE 1: ALTER ROLE u PASSWORD '{q}' x",
                     id="postgres-echo"),
        pytest.param("connection to postgresql://u:{enc}@db/app failed", id="url"),
        pytest.param("password={raw} host=db", id="conninfo"),
        pytest.param('{{"password": "{js}"}}', id="json"),
        pytest.param("{raw}", id="whole-value"),
        pytest.param("auth failed: {raw}.", id="before-punctuation"),
    ])
    def test_secret_in_a_message_is_removed(self, secret: str, template: str) -> None:
        """A secret is removed from a message in the forms drivers show it: quoted in SQL (doubled or backslash-escaped
        quotes), URL-encoded, raw, JSON-escaped."""
        sql_quoted = secret.replace("'", "''")
        for q in {sql_quoted, secret.replace("\\", "\\\\").replace("'", "\\'")}:
            text = template.format(q=q, enc=quote(secret, safe=""), raw=secret, js=json.dumps(secret)[1:-1])
            scrubbed = log.SecretScrubber([secret]).scrub(text)
            assert "***" in scrubbed, (secret, text)
            leftover = scrubbed.replace("PASSWORD", "").replace("password", "")
            for form in {secret, quote(secret, safe=""), sql_quoted}:
                assert not _standalone(form, leftover), (secret, text, scrubbed)

    def test_long_secret_removed_even_inside_a_word(self) -> None:
        """A secret of 12 characters or more is removed wherever it occurs, even glued to other letters."""
        secret = "Zq8vR2kLm4Tx"
        assert "abc***def" == log.SecretScrubber([secret]).scrub(f"abc{secret}def")

    def test_json_line_with_short_secrets(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Through the configured chain: with passwords `e` and `app` the event name and level are intact and the
        message loses only the secret."""
        log.configure(log_format="json", level="info", secrets=["e", "app"])
        log.get_logger().error("migration_applied", error="IDENTIFIED BY 'e' for app in application")
        record = json.loads(capsys.readouterr().err.splitlines()[-1])
        assert ("migration_applied", "error", "IDENTIFIED BY '***' for *** in application") == (
            record["event"], record["level"], record["error"])

    def test_shared_scrub_follows_configure(self) -> None:
        """log.scrub uses the secrets of the last configure() (what the history table's text is scrubbed with)."""
        log.configure(log_format="json", level="info", secrets=["hunter2"])
        assert "bad *** here" == log.scrub("bad hunter2 here")
        log.configure(log_format="json", level="info", secrets=[])
        assert "bad hunter2 here" == log.scrub("bad hunter2 here")


def _standalone(form: str, text: str) -> bool:
    import re

    return re.search(r"(?<![\w])" + re.escape(form) + r"(?![\w])", text) is not None


class TestJsonLines:
    def test_one_object_per_line_with_required_keys(self, capsys: pytest.CaptureFixture[str]) -> None:
        """JSON mode writes one object per line to stderr with event, level and a UTC timestamp."""
        log.configure(log_format="json", level="info", secrets=["hunter2"])
        log.get_logger().info("database_ready", note="password hunter2")
        log.get_logger().debug("hidden")
        captured = capsys.readouterr()
        assert "" == captured.out
        lines = captured.err.splitlines()
        assert 1 == len(lines)
        record = json.loads(lines[0])
        assert ("database_ready", "info", "password ***") == (record["event"], record["level"], record["note"])
        assert record["timestamp"].endswith("Z")

    def test_rendered_as_structlogs_processors_render(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Level, timestamp and JSON are written as structlog's add_log_level, TimeStamper(fmt="iso", utc=True) and
        JSONRenderer(default=str) write them (log.py keeps its own one-line versions of the last two)."""
        import datetime as dt
        import decimal
        from pathlib import Path

        from structlog.processors import JSONRenderer, TimeStamper

        log.configure(log_format="json", level="info")
        fields = {"path": Path("/m/1.sql"), "n": decimal.Decimal("1.50"), "raw": b"x", "nested": {"t": (1, "a")}}
        log.get_logger().warning("probe", **fields)
        line = capsys.readouterr().err.strip()
        record = json.loads(line)
        stamped = TimeStamper(fmt="iso", utc=True, key="timestamp")(None, "warning", {})["timestamp"]
        assert len(stamped) == len(record["timestamp"]) and record["timestamp"].endswith("Z")
        assert abs(dt.datetime.fromisoformat(record["timestamp"]) - dt.datetime.fromisoformat(stamped)).total_seconds() < 60
        expected = {**fields, "event": "probe", "level": "warning", "timestamp": record["timestamp"]}
        assert JSONRenderer(default=str)(None, "warning", expected) == line

    def test_an_exception_is_formatted_and_scrubbed(self, capsys: pytest.CaptureFixture[str]) -> None:
        """exc_info=True (an internal error) becomes the traceback text under `exception`, secrets scrubbed."""
        log.configure(log_format="json", level="info", secrets=["hunter2"])
        try:
            raise RuntimeError("connect failed for hunter2")
        except RuntimeError:
            log.get_logger().error("internal_error", exc_info=True)
        record = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
        assert "exc_info" not in record
        assert record["exception"].startswith("Traceback (most recent call last):")
        assert "RuntimeError: connect failed for ***" in record["exception"] and "hunter2" not in record["exception"]

    def test_a_logger_taken_early_follows_the_latest_configure(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The CLI takes its logger before the configuration is read and configures again after: the early logger
        then writes with the new secrets, level and format, as the summary line of a failed run does."""
        log.configure(log_format="json", level="warning", secrets=[])
        early = log.get_logger()
        log.configure(log_format="json", level="debug", secrets=["hunter2"])
        early.debug("config_loaded", note="password hunter2")
        lines = capsys.readouterr().err.splitlines()
        assert ["password ***"] == [json.loads(line)["note"] for line in lines]
        log.configure(log_format="console", level="info", secrets=["hunter2"])
        early.info("database_ready", note="password hunter2")
        line = capsys.readouterr().err.strip()
        assert "database_ready" in line and "***" in line and "hunter2" not in line and not line.startswith("{")


def test_library_warning_names_the_threads_target(capsys: pytest.CaptureFixture[str]) -> None:
    """A driver library's warning logged by a fleet worker carries the worker's target; once cleared, none."""
    import logging

    log.configure(log_format="json")
    log.bind_thread(target="schema=t_001")
    logging.getLogger("psycopg").warning("connection closed")
    log.bind_thread()
    logging.getLogger("psycopg").warning("again")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [("library_warning", "schema=t_001"), ("library_warning", None)] == [
        (e["event"], e.get("target")) for e in lines]


# A library that imports logging and warns at once, in its own import (as psycopg, tenacity or OpenTelemetry may):
# run in a fresh interpreter, where nothing has loaded logging yet (premigrate/log.py no longer does).
_LIBRARY = "import logging\nlogging.getLogger('lib').warning('pool %s closed', 'p1')\n"
_LIBRARY_RUN = """
import sys
sys.path.insert(0, sys.argv[1])
from premigrate import log
log.configure(log_format="json")
log.configure(log_format="json", secrets=["p1"])  # configured again, as the CLI does once the config is read
assert "logging" not in sys.modules, "loaded before any library asked for it"
{load}
import logging
logging.getLogger("other").warning("later")
print([type(h).__name__ for h in logging.getLogger().handlers], type(logging.__loader__).__name__)
"""


@pytest.mark.parametrize("load", [
    pytest.param("import lib_that_logs", id="library-imports-logging"),
    pytest.param("import logging.handlers\nimport lib_that_logs", id="submodule-first"),
    pytest.param("import structlog.processors\nstructlog.processors.logging.getLogger('lib').warning('pool p1 closed')",
                 id="through-structlogs-reference"),
    # A spec looked up without loading the module must not use up the hook.
    pytest.param("import importlib.util, pkgutil\nimportlib.util.find_spec('logging')\npkgutil.find_loader('logging')\n"
                 "import lib_that_logs", id="spec-looked-up-first"),
])
def test_a_library_loading_logging_after_configure_logs_json(tmp_path: Path, load: str) -> None:
    """logging is loaded only when a library imports it; its warnings, from the first one on (logged during that
    library's own import), are library_warning JSON lines, scrubbed, never Python's plain-text fallback."""
    (tmp_path / "lib_that_logs.py").write_text(_LIBRARY)
    result = subprocess.run([sys.executable, "-c", _LIBRARY_RUN.format(load=load), str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert 0 == result.returncode, result.stderr
    assert all(line.startswith("{") for line in result.stderr.splitlines()), result.stderr  # no plain text
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert [("library_warning", "lib", "pool *** closed"), ("library_warning", "other", "later")] == [
        (e["event"], e["logger"], e["error"]) for e in events]
    # One bridge; logging keeps its own loader (premigrate/stand_ins.after_import leaves nothing on it).
    assert result.stdout.strip() in ("['LibraryWarnings'] SourceFileLoader", "['LibraryWarnings'] SourcelessFileLoader")


_WARNING_RUN = """
import sys, warnings
from premigrate import log
log.configure(log_format="json", secrets=["p1"])
log.bind_thread(target="schema=t_001")
warnings.warn("pool p1 closed", UserWarning)
warnings.warn("ignored by the filters", PendingDeprecationWarning)  # not shown by default: nor logged
warnings.warn_explicit("to a file", RuntimeWarning, "lib.py", 7)
warnings.showwarning("named file", UserWarning, "lib.py", 8, file=sys.stdout)
"""


def test_a_python_warning_is_a_json_line() -> None:
    """A library's warnings.warn (plain text on stderr by default) is a library_warning JSON line, scrubbed, with its
    category and source; the warnings filters still decide what is shown, and a warning written to a file someone
    names keeps Python's format."""
    result = subprocess.run([sys.executable, "-c", _WARNING_RUN], capture_output=True, text=True, timeout=60)
    assert 0 == result.returncode, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]  # no plain text: every line is JSON
    assert [("library_warning", "UserWarning", "pool *** closed", "<string>:6", "schema=t_001"),
            ("library_warning", "RuntimeWarning", "to a file", "lib.py:7", "schema=t_001")] == [
        (e["event"], e["category"], e["error"], e["source"], e["target"]) for e in events]
    assert "lib.py:8: UserWarning: named file" in result.stdout
