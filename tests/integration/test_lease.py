"""The table runner lock (engine.lease) against the real servers: PostgreSQL, MariaDB, SQLite."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import pytest

from premigrate.engine import locking
from premigrate.engine.lease import Heartbeat, Holder, Lease, LeaseLock, LockLost, lock_table_name
from premigrate.errors import LockTimeout
from tests.support import TestDatabase

TABLE = lock_table_name("premigrate_history")
EXPIRY_BOUND_S = 15.0


def run(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cur = conn.cursor()
    try:
        cur.execute(sql, params) if params else cur.execute(sql)
        return list(cur.fetchall()) if cur.description else []
    finally:
        cur.close()


def wait_expired(lease: Lease, conn: Any) -> None:
    """Until the database's clock says the lease has expired."""
    deadline = time.monotonic() + EXPIRY_BOUND_S
    while True:
        state = lease.current(conn)
        assert state is not None
        if state.expired:
            return
        assert time.monotonic() < deadline, f"lease still not expired after {EXPIRY_BOUND_S} s: {state}"
        time.sleep(max(0.02, min(state.expires_in_s, 0.2)))


class Sessions:
    """Connections of one test, closed at its end; the lock table exists."""

    def __init__(self, db: TestDatabase) -> None:
        self.db = db
        self.opened: list[Any] = []

    def __call__(self) -> Any:
        if self.db.dialect == "sqlite":
            # As the SQLite driver opens it: usable from the heartbeat's and the racing runners' threads.
            conn = sqlite3.connect(str(self.db.path), isolation_level=None, check_same_thread=False, timeout=30)
        else:
            conn = self.db.connect()
        self.opened.append(conn)
        return conn

    def lease(self, holder: str, duration_s: float = 30.0) -> Lease:
        return Lease(self.db.dialect, TABLE, duration_s=duration_s,  # type: ignore[arg-type]
                     holder=Holder(holder, f"host-{holder}", 1000 + len(holder)))

    def param(self) -> str:
        return "?" if self.db.dialect == "sqlite" else "%s"

    def close(self) -> None:
        for conn in self.opened:
            with contextlib.suppress(Exception):  # a test may have broken it on purpose
                conn.close()


@pytest.fixture
def sessions(db: TestDatabase) -> Iterator[Sessions]:
    s = Sessions(db)
    conn = s()
    s.lease("setup").ensure_table(conn)
    run(conn, "CREATE TABLE history_writes (id INTEGER PRIMARY KEY)")
    try:
        yield s
    finally:
        s.close()


class TestAcquire:
    def test_the_first_holder_takes_the_lease_and_a_second_does_not(self, sessions: Sessions) -> None:
        """One lease row, one holder: the second runner is refused while the first holds it."""
        a, b = sessions.lease("a"), sessions.lease("b")
        assert a.try_acquire(sessions()) is True
        assert b.try_acquire(sessions()) is False
        state = b.current(sessions())
        assert state is not None
        assert ("a", "host-a") == (state.holder, state.host)
        assert 0 < state.expires_in_s <= 30

    def test_the_holder_may_take_it_again_which_extends_it(self, sessions: Sessions) -> None:
        """Re-acquiring one's own lease keeps acquired_at and moves expires_at forward."""
        conn = sessions()
        a = sessions.lease("a", duration_s=5)
        assert a.try_acquire(conn)
        first = a.current(conn)
        time.sleep(0.05)
        longer = Lease(sessions.db.dialect, TABLE, duration_s=60, holder=a.holder)  # type: ignore[arg-type]
        assert longer.try_acquire(conn)
        second = a.current(conn)
        assert first is not None and second is not None
        assert first.acquired_at == second.acquired_at
        assert second.expires_at > first.expires_at
        assert second.version > first.version

    def test_a_released_lease_is_free_for_the_next_holder(self, sessions: Sessions) -> None:
        """release() expires the lease at once; the row stays and names the last holder until someone takes it."""
        conn = sessions()
        a, b = sessions.lease("a"), sessions.lease("b")
        assert a.try_acquire(conn)
        assert a.release(conn) is True
        assert a.holder_fields(conn) is None
        assert a.release(conn) is False
        assert b.try_acquire(sessions()) is True
        assert "b" == b.holder_fields(conn)["holder"]  # type: ignore[index]

    def test_an_expired_lease_is_taken_over(self, sessions: Sessions) -> None:
        """A holder that stopped renewing (killed, paused) loses the lease once it expires by the database's clock."""
        conn = sessions()
        a, b = sessions.lease("a", duration_s=0.3), sessions.lease("b")
        assert a.try_acquire(conn)
        assert b.try_acquire(conn) is False
        wait_expired(a, conn)
        assert b.try_acquire(sessions()) is True
        state = b.current(conn)
        assert state is not None and "b" == state.holder

    def test_racing_runners_never_both_hold_it(self, sessions: Sessions) -> None:
        """Eight runners try at the same instant, five rounds: exactly one wins each round."""
        runners = 8
        leases = [sessions.lease(f"r{i}") for i in range(runners)]
        conns = [sessions() for _ in range(runners)]
        for _ in range(5):
            barrier = threading.Barrier(runners)
            won: list[bool] = [False] * runners

            def attempt(i: int, barrier: threading.Barrier, won: list[bool]) -> None:
                barrier.wait()
                won[i] = leases[i].try_acquire(conns[i])

            threads = [threading.Thread(target=attempt, args=(i, barrier, won)) for i in range(runners)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert 1 == sum(won), won
            winner = won.index(True)
            state = leases[0].current(conns[0])
            assert state is not None and f"r{winner}" == state.holder
            assert leases[winner].release(conns[winner])

    def test_the_lease_fits_the_lock_poller(self, sessions: Sessions) -> None:
        """engine.locking.acquire polls a LeaseLock like a session lock: LockTimeout names the holder."""
        a, b = sessions.lease("a"), sessions.lease("b")
        assert a.try_acquire(sessions())

        class Log:
            def info(self, event: str, **fields: Any) -> None:
                pass

        # locking.acquire is typed for a Driver; a LeaseLock has the two methods it calls.
        waiting = cast(Any, LeaseLock(b, sessions()))
        with pytest.raises(LockTimeout, match="host-a"):
            locking.acquire(waiting, "runner", 0.3, Log())
        a.release(sessions())
        assert locking.acquire(waiting, "runner", 5.0, Log()) >= 0
        assert "b" == waiting.lock_holder("runner")["holder"]


class TestRenew:
    def test_renew_extends_the_lease_from_the_database_clock(self, sessions: Sessions) -> None:
        """A renewal sets expires_at to now + the lease, by the server's clock."""
        conn = sessions()
        a = sessions.lease("a", duration_s=2)
        assert a.try_acquire(conn)
        time.sleep(0.3)
        before = a.current(conn)
        assert a.renew(conn) is True
        after = a.current(conn)
        assert before is not None and after is not None
        assert after.expires_at > before.expires_at
        assert after.expires_in_s > before.expires_in_s

    def test_renew_after_a_takeover_raises_lock_lost(self, sessions: Sessions) -> None:
        """The paused holder's next heartbeat learns that the lease is gone, and who has it."""
        conn = sessions()
        a, b = sessions.lease("a", duration_s=0.3), sessions.lease("b")
        assert a.try_acquire(conn)
        wait_expired(a, conn)
        assert b.try_acquire(sessions())
        with pytest.raises(LockLost, match="now held by host-b") as lost:
            a.renew(conn)
        assert 8 == lost.value.exit_code
        assert "b" == lost.value.fields["now_held_by"]["holder"]  # type: ignore[index]

    def test_renew_of_an_expired_lease_raises_even_without_a_takeover(self, sessions: Sessions) -> None:
        """Held means ours and unexpired: a lease that ran out is lost even if nobody took it yet."""
        conn = sessions()
        a = sessions.lease("a", duration_s=0.3)
        assert a.try_acquire(conn)
        wait_expired(a, conn)
        with pytest.raises(LockLost, match="expired"):
            a.renew(conn)

    def test_the_heartbeat_keeps_the_lease_and_reports_its_loss(self, sessions: Sessions) -> None:
        """Renewed every third of the lease, it outlives it; a heartbeat slower than the lease meets LockLost."""
        a, b = sessions.lease("a", duration_s=0.6), sessions.lease("b")
        conn = sessions()
        assert a.try_acquire(conn)
        with Heartbeat(a, conn) as beat:
            time.sleep(1.5)
            assert b.try_acquire(sessions()) is False
            beat.check()
        assert beat.renewals >= 2

        slow = sessions.lease("slow", duration_s=0.3)
        slow_conn = sessions()
        wait_expired(a, conn)
        assert slow.try_acquire(slow_conn)
        with Heartbeat(slow, slow_conn, interval_s=1.0) as beat:
            wait_expired(slow, conn)
            assert b.try_acquire(sessions())
            deadline = time.monotonic() + EXPIRY_BOUND_S
            while beat.error is None and time.monotonic() < deadline:
                time.sleep(0.05)
            with pytest.raises(LockLost):
                beat.check()


class TestFence:
    def insert(self, sessions: Sessions, conn: Any, value: int) -> None:
        run(conn, f"INSERT INTO history_writes (id) VALUES ({sessions.param()})", (value,))

    def committed(self, sessions: Sessions) -> list[int]:
        return [r[0] for r in run(sessions(), "SELECT id FROM history_writes ORDER BY id")]

    def test_a_history_write_with_a_passing_fence_commits(self, sessions: Sessions) -> None:
        """While the lease is ours, the fence matches one row and the transaction commits."""
        conn = sessions()
        a = sessions.lease("a")
        assert a.try_acquire(sessions())
        run(conn, "BEGIN")
        self.insert(sessions, conn, 1)
        a.fence(conn)
        run(conn, "COMMIT")
        assert [1] == self.committed(sessions)

    def test_a_holder_paused_between_migrations_commits_nothing_after_a_takeover(self, sessions: Sessions) -> None:
        """Paused past its lease (SIGSTOP, a VM freeze) while another runner took over: its next history write
        fails the fence and is rolled back."""
        conn, lock_conn = sessions(), sessions()
        a, b = sessions.lease("a", duration_s=0.3), sessions.lease("b")
        assert a.try_acquire(lock_conn)
        wait_expired(a, lock_conn)  # the pause
        assert b.try_acquire(sessions())
        run(conn, "BEGIN")
        self.insert(sessions, conn, 1)
        with pytest.raises(LockLost, match="writing the history"):
            a.fence(conn)
        run(conn, "ROLLBACK")
        assert [] == self.committed(sessions)

    def test_a_holder_paused_inside_its_transaction_commits_nothing_after_a_takeover(
            self, sessions: Sessions) -> None:
        """Paused in the middle of a migration's transaction: on a server the lease is taken over meanwhile and the
        fence fails; on SQLite the open write transaction locks the whole file, so no takeover can happen at all."""
        conn, lock_conn = sessions(), sessions()
        a, b = sessions.lease("a", duration_s=0.3), sessions.lease("b")
        assert a.try_acquire(lock_conn)
        run(conn, "BEGIN")
        self.insert(sessions, conn, 1)
        wait_expired(a, lock_conn)  # the pause
        if sessions.db.dialect == "sqlite":
            impatient = sqlite3.connect(str(sessions.db.path), isolation_level=None, timeout=0.3)
            try:
                assert b.try_acquire(impatient) is False
            finally:
                impatient.close()
            with pytest.raises(LockLost, match="writing the history"):
                a.fence(conn)  # expired, even though nobody could take it
        else:
            assert b.try_acquire(sessions())
            with pytest.raises(LockLost, match="writing the history"):
                a.fence(conn)
        run(conn, "ROLLBACK")
        assert [] == self.committed(sessions)

    def test_an_expired_lease_fails_the_fence_even_without_a_takeover(self, sessions: Sessions) -> None:
        """Nobody took the lease yet, but it ran out during the transaction: nothing may be committed under it.
        (The expiry is checked against the clock at the fence, not at the start of the transaction.)"""
        conn, lock_conn = sessions(), sessions()
        a = sessions.lease("a", duration_s=0.5)
        assert a.try_acquire(lock_conn)
        run(conn, "BEGIN")
        self.insert(sessions, conn, 1)
        wait_expired(a, lock_conn)
        with pytest.raises(LockLost):
            a.fence(conn)
        run(conn, "ROLLBACK")
        assert [] == self.committed(sessions)

    def test_a_takeover_waits_for_the_commit_of_a_fenced_transaction(self, sessions: Sessions) -> None:
        """The fence holds the lease row until COMMIT: a runner that finds the lease expired meanwhile takes it
        only after that commit, and then sees the committed history write."""
        conn, lock_conn = sessions(), sessions()
        a, b = sessions.lease("a", duration_s=1.0), sessions.lease("b")
        assert a.try_acquire(lock_conn)
        run(conn, "BEGIN")
        self.insert(sessions, conn, 1)
        a.fence(conn)
        wait_expired(a, lock_conn)
        b_conn = sessions()
        taken: list[bool] = []
        taker = threading.Thread(target=lambda: taken.append(b.try_acquire(b_conn)))
        taker.start()
        taker.join(timeout=0.5)
        assert taker.is_alive(), "the takeover did not wait for the fenced transaction"
        run(conn, "COMMIT")
        taker.join(timeout=60)
        assert [True] == taken
        assert [1] == [r[0] for r in run(b_conn, "SELECT id FROM history_writes")]
