"""The README is the user's manual: it must name every flag, variable, exit code and log event the code has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from premigrate.config import OPTIONS
from premigrate.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[2]
# The README and the reference pages in docs/ together.
README = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))])
SOURCE = "\n".join(p.read_text() for p in (ROOT / "src" / "premigrate").rglob("*.py"))
EVENTS = sorted(set(re.findall(r"\.(?:debug|info|warning|error)\(\s*\"([a-z_]+)\"", SOURCE))
                | set(re.findall(r"\.log\([^\"]*\"([a-z_]+)\"", SOURCE)))


class TestReadme:
    @pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.dest)
    def test_documents_every_option(self, option: object) -> None:
        """Each flag and its environment variable appear in the README."""
        assert f"`{option.flag}" in README and option.env in README  # type: ignore[attr-defined]

    @pytest.mark.parametrize("code", [c for c, _ in EXIT_CODES])
    def test_documents_every_exit_code(self, code: str) -> None:
        """Each exit code has a row in the README's table."""
        first = code.split("/")[0]
        assert re.search(rf"^\| {re.escape(first)}\b", README, re.M)

    def test_found_events(self) -> None:
        """The event scan finds the events the run is built on (a guard against a broken regex)."""
        assert {"config_loaded", "migration_applied", "summary", "wait_retrying"} <= set(EVENTS)

    @pytest.mark.parametrize("event", [e for e in EVENTS if e != "migrations_loaded"])
    def test_documents_every_event(self, event: str) -> None:
        """Each log event the code emits at info level or above is in the README's table."""
        assert f"| `{event}` |" in README
