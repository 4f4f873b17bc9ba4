"""History writes made ahead on MySQL (Driver.prepare_update, Driver.prepare_finish): bound while the statement
before them runs, sent once it is done. What is sent is always the write of the rows passed when sending: a draft
for other rows, or bound under another quoting rule, is not used; the final row's applied_at and execution_ms are
the ones passed then, not the draft's; and a value holding a % goes in as it is."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from premigrate.drivers.base import STATE_APPLIED
from premigrate.drivers.mysql_session import FinishDraft
from tests.integration.test_mysql_write_first import _lost, _Sessions
from tests.support import TestDatabase


@pytest.fixture
def sessions(mariadb: TestDatabase) -> Iterator[_Sessions]:
    """A lock session holding the lock, a migration session guarded by it, the row "statement 1 started"."""
    made = _Sessions(mariadb)
    yield made
    made.close()

LATER = datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)


def _stored(sessions: _Sessions, migration_id: str) -> dict[str, object]:
    columns = ("description", "state", "applied_at", "execution_ms", "statements_done", "statement_started")
    rows = sessions.db.query(f"SELECT {', '.join(columns)} FROM premigrate_history WHERE migration_id = "
                             f"'{migration_id}'")
    return dict(zip(columns, rows[0])) if rows else {}


def _finish(sessions: _Sessions, description: str = "d") -> tuple[object, object]:
    final = sessions.first.evolve(description=description, state=STATE_APPLIED, statements_done=2,
                                  statement_started=2, statement_hashes=("a", "b"))
    ahead = sessions.first.evolve(migration_id="2", version="2", script="2_e.sql", description="e")
    return final, ahead


def test_the_final_write_made_ahead_takes_the_time_it_is_sent_with(sessions: _Sessions) -> None:
    final, ahead = _finish(sessions, "grows 100% of t")
    holder = sessions.holder
    draft = holder.prepare_finish(final, ahead)
    assert isinstance(draft, FinishDraft)
    holder.finish_and_start(final.evolve(applied_at=LATER, execution_ms=4321), ahead, draft)
    assert {"description": "grows 100% of t", "state": "applied", "applied_at": LATER.replace(tzinfo=None),
            "execution_ms": 4321, "statements_done": 2, "statement_started": 2} == _stored(sessions, "1")
    assert ("e", 1) == (_stored(sessions, "2")["description"], _stored(sessions, "2")["statement_started"])


def test_a_final_draft_for_other_rows_is_not_used(sessions: _Sessions) -> None:
    final, ahead = _finish(sessions)
    holder = sessions.holder
    stale = holder.prepare_finish(final.evolve(description="stale"), ahead)
    holder.finish_and_start(final, ahead, stale)
    assert "d" == _stored(sessions, "1")["description"]
    other_ahead = holder.prepare_finish(final, ahead.evolve(description="stale"))
    holder.finish_and_start(final.evolve(execution_ms=7), ahead, other_ahead)
    assert ("e", 7) == (_stored(sessions, "2")["description"], _stored(sessions, "1")["execution_ms"])


def test_a_final_draft_bound_under_another_quoting_rule_is_not_used(sessions: _Sessions) -> None:
    r"""A backslash is doubled in a literal unless the session has NO_BACKSLASH_ESCAPES: a draft made before the
    session switched would store 'a\\b' (or end its literal early)."""
    final, ahead = _finish(sessions, "a\\b 'quoted'")
    holder = sessions.holder
    draft = holder.prepare_finish(final, ahead)
    holder._exec("SET SESSION sql_mode = CONCAT(@@session.sql_mode, ',NO_BACKSLASH_ESCAPES')")
    holder.finish_and_start(final, ahead, draft)
    assert "a\\b 'quoted'" == _stored(sessions, "1")["description"]


@pytest.mark.parametrize("no_backslash_escapes", [False, True])
def test_a_nul_in_a_final_draft_s_literal_is_stored_as_it_is(sessions: _Sessions,
                                                             no_backslash_escapes: bool) -> None:
    """The draft is kept in pieces around applied_at and execution_ms, found by a NUL put in their place. A NUL
    of the row's own is escaped (\\0) with backslash escapes; without them it reaches the statement as it is, and
    there is no draft: the write is bound when it is sent."""
    holder = sessions.holder
    if no_backslash_escapes:
        holder._exec("SET SESSION sql_mode = CONCAT(@@session.sql_mode, ',NO_BACKSLASH_ESCAPES')")
    final, ahead = _finish(sessions, "nul\0here")
    draft = holder.prepare_finish(final, ahead)
    assert (draft is None) == no_backslash_escapes
    holder.finish_and_start(final.evolve(applied_at=LATER, execution_ms=55), ahead, draft)
    stored = _stored(sessions, "1")
    assert ("nul\0here", LATER.replace(tzinfo=None), 55) == (
        stored["description"], stored["applied_at"], stored["execution_ms"])


def test_a_progress_write_made_ahead_is_used_only_for_its_rows(sessions: _Sessions) -> None:
    runner = sessions.runner
    stale = runner.prepare_update(sessions.second.evolve(statement_hashes=("prefix:1:stale",)), sessions.first)
    assert runner.hold_update(sessions.second, sessions.first, _lost, stale)
    runner.execute("CREATE TABLE t2 (id INT)")
    stored = sessions.db.query("SELECT statement_hashes, statement_started FROM premigrate_history")[0]
    assert ("prefix:1:ab", 2) == stored
    third = sessions.second.evolve(statements_done=2, statement_started=3, statement_hashes=("prefix:2:cd",))
    fitting = runner.prepare_update(third, sessions.second)
    assert runner.hold_update(third, sessions.second, _lost, fitting)
    runner.execute("CREATE TABLE t3 (id INT)")
    assert ("prefix:2:cd", 3) == sessions.db.query(
        "SELECT statement_hashes, statement_started FROM premigrate_history")[0]
