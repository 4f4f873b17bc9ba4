"""History rows this premigrate cannot read: a `state` or a `kind` it never writes, as a newer premigrate may. Pure.

Such a row says something this version cannot judge (is it applied? did it finish?), so every command that judges
rows refuses it (exit 5) with the same words rather than guess, and `repair --forget` drops it: dropping a row needs
no understanding of it, only the operator's word.
"""

from __future__ import annotations

from premigrate import __version__
from premigrate.drivers.base import HistoryRow, State
from premigrate.lazy_re import LazyPattern

KNOWN_STATES = frozenset(str(state) for state in State)
# The kinds premigrate writes: a file's own kind (versioned, repeatable, or listed for a changelog's change), and
# `baseline` for a versioned file that `baseline` recorded without running it (commands/baseline.py rows).
KNOWN_KINDS = frozenset({"versioned", "repeatable", "listed", "baseline"})

_RELEASE = LazyPattern(r"\d+(?:\.\d+)*")


def unknown_value(row: HistoryRow) -> str | None:
    """What of the row this premigrate does not know ("state 'reverted'", "kind 'undo'"), or None."""
    if row.state not in KNOWN_STATES:
        return f"state {row.state!r}"
    if row.kind not in KNOWN_KINDS:
        return f"kind {row.kind!r}"
    return None


def written_by(row: HistoryRow) -> str:
    """Which premigrate to settle the row with. The row's premigrate_version names the version that recorded it;
    a later run may have changed its state without changing that column, so it is named, not trusted."""
    recorded = row.premigrate_version.strip()
    if recorded and _newer(recorded):
        return f"premigrate {recorded} wrote it (the row's premigrate_version): settle it with premigrate {recorded}"
    named = f" (the row's premigrate_version is {recorded})" if recorded else ""
    return f"a newer premigrate wrote it{named}: settle it with the version that did"


def unknown_message(row: HistoryRow, where: str) -> str:
    """The one-line refusal of a row this premigrate cannot read, with the ways out."""
    return (f"{where} has {unknown_value(row)} in the history table, which this premigrate ({__version__}) does not "
            f"know: {written_by(row)}; or, taking responsibility for what the row records, drop it with "
            f"`premigrate repair --forget {row.migration_id}` (the next `up` then treats the file as pending)")


def _newer(version: str) -> bool:
    """Whether `version` is a later release than this one; False when either does not read as one."""
    theirs, ours = _RELEASE.match(version), _RELEASE.match(__version__)
    if theirs is None or ours is None:
        return False
    return tuple(map(int, theirs.group().split("."))) > tuple(map(int, ours.group().split(".")))
