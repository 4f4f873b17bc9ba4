"""The live line: erased before every write, drawn again only at the start of a line; the fleet's line in words."""

from __future__ import annotations

import io

from premigrate.liveline import ERASE, LiveLineStream
from premigrate.model.fleet import FleetSummary, TargetResult, progress


def test_passes_writes_through_until_a_line_is_shown() -> None:
    out = io.StringIO()
    stream = LiveLineStream(out)
    print("one", file=stream, flush=True)
    assert "one\n" == out.getvalue()


def test_line_kept_below_log_lines() -> None:
    """A log line arrives as its text then its newline (print): the line is erased before the text and drawn again
    only after the newline, never between the two."""
    out = io.StringIO()
    stream = LiveLineStream(out)
    stream.show("fleet: 1")
    stream.write("log line")
    assert "fleet: 1" + ERASE + "log line" == out.getvalue()
    stream.show("fleet: 2")  # mid-line: kept for later
    stream.write("\n")
    stream.show("fleet: 2")  # already drawn: nothing written
    stream.clear()
    stream.write("after\n")
    assert "fleet: 1" + ERASE + "log line\nfleet: 2" + ERASE + "after\n" == out.getvalue()


def test_too_wide_a_line_is_cut_to_one_row() -> None:
    out = io.StringIO()
    stream = LiveLineStream(out)
    stream.show("x" * 200)
    assert (79, True) == (len(out.getvalue()), out.getvalue().endswith("…"))


def test_progress_in_words() -> None:
    summary = FleetSummary(total=10, results=[TargetResult("a", 0), TargetResult("b", 4)])
    figures = progress(summary, elapsed_s=4.0)
    assert "fleet: 2 done, 1 failed, 8 remaining, 0.50/s, ETA 0:16" == figures.line()
    assert figures.line(stopping=True).endswith("stopping: waiting for the running targets")
    assert progress(FleetSummary(total=3), elapsed_s=1.0).line().endswith("ETA ?")
    assert progress(FleetSummary(total=8000, results=[TargetResult("a", 0)]), 1.0).line().endswith("ETA 2:13:19")
