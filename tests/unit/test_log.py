from __future__ import annotations

import json

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

    def test_no_secrets_is_identity(self) -> None:
        """Without secrets the event passes unchanged."""
        event = {"event": "x", "n": 1}
        assert event == log.SecretScrubber([])(None, "info", dict(event))


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
