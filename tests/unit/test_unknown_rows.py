"""Rows this premigrate cannot read: which ones, and which premigrate the refusal sends the operator to."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from premigrate import __version__
from premigrate.drivers.base import HistoryRow
from premigrate.model.unknown_rows import unknown_message, unknown_value

WHEN = datetime(2026, 1, 1, tzinfo=timezone.utc)


def row(**changes: object) -> HistoryRow:
    return HistoryRow("3", "3", "c", "versioned", "003_c.sql", "sha256:x", WHEN, 1, "host", "applied",
                      premigrate_version=__version__).evolve(**changes)


class TestUnknownRows:
    @pytest.mark.parametrize(("changes", "expected"), [
        pytest.param({}, None, id="applied"),
        pytest.param({"kind": "baseline"}, None, id="baseline"),
        pytest.param({"kind": "listed", "state": "rolling_back"}, None, id="listed-rolling-back"),
        pytest.param({"state": "reverted"}, "state 'reverted'", id="state"),
        pytest.param({"kind": "undo"}, "kind 'undo'", id="kind"),
    ])
    def test_what_is_unknown(self, changes: dict[str, object], expected: str | None) -> None:
        """Every state and kind premigrate writes is known; anything else is named."""
        assert expected == unknown_value(row(**changes))

    def test_a_newer_version_is_named_as_the_one_to_use(self) -> None:
        """A row recorded by a later release sends the operator to that release, and to --forget."""
        message = unknown_message(row(state="reverted", premigrate_version="99.0"), "003_c.sql (version 3)")
        assert "premigrate 99.0 wrote it" in message and "settle it with premigrate 99.0" in message
        assert "`premigrate repair --forget 3`" in message and "\n" not in message

    @pytest.mark.parametrize("recorded", [__version__, "0.0.1", "", "dev"])
    def test_a_version_that_is_not_newer_is_named_but_not_recommended(self, recorded: str) -> None:
        """A row whose premigrate_version is not a later release (edited by hand, or changed by a later run that
        kept the column) is not sent back to that version."""
        message = unknown_message(row(state="reverted", premigrate_version=recorded), "003_c.sql (version 3)")
        assert "a newer premigrate wrote it" in message and f"settle it with premigrate {recorded}" not in message
        assert (f"premigrate_version is {recorded})" in message) == bool(recorded)
