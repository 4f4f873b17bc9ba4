"""The password scan that every run of this suite goes through catches a password in either spelling."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.faults.harness import ODD_PASSWORD, SECRETS, Ledger


@pytest.mark.parametrize("line", [f"postgresql://u:{s}@h/db" for s in SECRETS]
                         + [f"mysql://u:{quote(ODD_PASSWORD, safe='')}@h/db"])
def test_scan_catches_each_password(line: str) -> None:
    """A line carrying any of the suite's passwords, raw or percent-encoded, fails the run that printed it."""
    ledger = Ledger()
    ledger.scan("clean line\n", "probe")
    with pytest.raises(AssertionError, match="a password was printed"):
        ledger.scan(f'{{"event": "x", "database": "{line}"}}\n', "probe")
    assert 1 == len(ledger.leaks)
