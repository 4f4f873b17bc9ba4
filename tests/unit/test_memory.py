"""What a very large migration file costs in memory beyond its own text: the shipped manifests give the container
256 MiB and a file may be 64 MiB (tests/faults/test_large_files.py runs one end to end). Measured with tracemalloc,
in-process, so the figures do not depend on the allocator or the machine."""

from __future__ import annotations

import hashlib
import time
import tracemalloc
from collections.abc import Callable

from premigrate.engine.attempts import StatementAttempts
from premigrate.model.migrations import CHECKSUM_SLICE, checksum
from tests.unit.fakes import FakeDriver
from tests.unit.test_executor import RecordingLog

MIB = 1024 * 1024


def peak_bytes(action: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_checksum_of_a_large_text_holds_no_second_copy_of_it() -> None:
    text = "INSERT INTO t VALUES (1);\n" * (16 * MIB // 26)
    assert peak_bytes(lambda: checksum(text)) < 3 * MIB  # encoding it whole took another 16 MiB
    assert checksum(text) == "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_checksum_slices_never_split_a_character() -> None:
    """Multi-byte characters across every slice boundary: the same digest as the whole text's UTF-8 bytes."""
    text = "é€😀" * (CHECKSUM_SLICE // 2 + 7)
    assert checksum(text) == "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    assert checksum("") == "sha256:" + hashlib.sha256(b"").hexdigest()


def attempts() -> StatementAttempts:
    return StatementAttempts(FakeDriver(), RecordingLog(), time.monotonic, lambda m: None)  # type: ignore[arg-type,return-value]


def test_rows_affected_cost_a_pointer_per_statement() -> None:
    """200,000 statements' counts: one list slot each (a dict keyed by statement number took ~20 MB here)."""
    counts = attempts()
    total = 200_000

    def fill() -> None:
        for index in range(1, total + 1):
            counts.rows[index] = 1

    assert peak_bytes(fill) < 3 * MIB
    assert (total, [1] * total) == counts.row_counts(total)


def test_rows_affected_keep_the_last_attempt_and_none_where_unknown() -> None:
    counts = attempts()
    counts.rows[2] = 5
    counts.rows[4] = None
    counts.rows[2] = 7  # statement 2 retried
    assert (7, [None, 7, None, None, None]) == counts.row_counts(5)
    counts.rows.clear()
    assert (0, [None, None]) == counts.row_counts(2)
