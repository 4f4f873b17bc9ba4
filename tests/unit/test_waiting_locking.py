from __future__ import annotations

from typing import Any

import pytest

from premigrate.engine import locking
from premigrate.drivers.base import ConnectFailed
from premigrate.model.dsn import parse_url
from premigrate.errors import DatabaseUnavailable, LockTimeout
from premigrate.engine.waiting import BACKOFF_CAP_S, PROBE_INTERVAL_S, retry_delay, tcp_endpoint, wait_for_database


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RecordingLog:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.events.append((level, event, fields))

    def names(self) -> list[str]:
        return [e[1] for e in self.events]


class FakeDriver:
    def server_version(self) -> str:
        return "Fake 1"


def failing(failures: list[ConnectFailed], clock: FakeClock, cost: float = 0.0):
    attempts: list[float | None] = []

    def open_driver(connect_timeout: float | None) -> FakeDriver:
        attempts.append(connect_timeout)
        clock.now += cost
        if failures:
            raise failures.pop(0)
        return FakeDriver()

    return open_driver, attempts


# A SQLite DSN has no TCP endpoint, so no real probe is attempted.
DSN = parse_url("sqlite:///x.db")


def refused() -> ConnectFailed:
    return ConnectFailed("refused", transient=True, reason="refused")


class TestRetryDelay:
    def test_refused_polls_fast(self) -> None:
        """A refused port is probed every 25 ms, so a database coming up is noticed within a tenth of a second."""
        assert PROBE_INTERVAL_S == retry_delay("refused", 50)

    @pytest.mark.parametrize("reason", ["starting_up", "too_many_connections"])
    def test_busy_server_backs_off_with_jitter_and_cap(self, reason: str) -> None:
        """A busy server gets exponentially growing, jittered delays capped at 2 s."""
        assert retry_delay(reason, 1, rng=lambda: 0.0) < retry_delay(reason, 4, rng=lambda: 0.0)
        assert BACKOFF_CAP_S == retry_delay(reason, 30, rng=lambda: 1.0)
        assert retry_delay(reason, 5, rng=lambda: 0.0) != retry_delay(reason, 5, rng=lambda: 1.0)

    def test_tcp_endpoint(self) -> None:
        """Probes go to host:port; Unix sockets and SQLite have none."""
        assert ("db", 5432) == tcp_endpoint(parse_url("postgresql://u@db/x"))
        assert ("db", 3307) == tcp_endpoint(parse_url("mysql://u@db:3307/x"))
        assert None is tcp_endpoint(parse_url("postgresql:///x?host=/var/run/postgresql"))


class TestWait:
    def test_first_attempt_success(self) -> None:
        """A database that answers at once is used at once, with one database_ready event."""
        clock, log = FakeClock(), RecordingLog()
        open_driver, attempts = failing([], clock)
        wait_for_database(open_driver, DSN, 60, log, clock=clock, sleep=clock.sleep)
        assert (1, ["database_ready"]) == (len(attempts), log.names())

    def test_transient_failures_are_retried(self) -> None:
        """Transient failures are retried until the database answers."""
        clock, log = FakeClock(), RecordingLog()
        open_driver, attempts = failing([refused() for _ in range(10)], clock)
        wait_for_database(open_driver, DSN, 60, log, clock=clock, sleep=clock.sleep)
        assert 11 == len(attempts)
        assert "database_ready" == log.names()[-1]
        assert 10 == log.events[-1][2]["attempts"] - 1

    def test_retry_logging_is_throttled(self) -> None:
        """The first failure is logged, then at most one wait_retrying line a second."""
        clock, log = FakeClock(), RecordingLog()
        open_driver, _ = failing([refused() for _ in range(200)], clock)  # 200 x 25 ms = 5 s
        wait_for_database(open_driver, DSN, 60, log, clock=clock, sleep=clock.sleep)
        retries = [e for e in log.events if e[1] == "wait_retrying"]
        assert 5 <= len(retries) <= 7
        assert 1 == retries[0][2]["attempt"]

    def test_unresolvable_host_says_so_on_the_first_attempt(self) -> None:
        """A host name that does not resolve is named as such on the first wait_retrying line, with the limit."""
        clock, log = FakeClock(), RecordingLog()
        dns = [ConnectFailed("cannot resolve host 'dbb'", transient=True, reason="dns") for _ in range(3)]
        open_driver, _ = failing(dns, clock)
        wait_for_database(open_driver, DSN, 60, log, clock=clock, sleep=clock.sleep)
        first = [e for e in log.events if e[1] == "wait_retrying"][0][2]
        assert (1, True) == (first["attempt"], "does not resolve" in first["hint"] and "60s" in first["hint"])

    @pytest.mark.parametrize("reason", ["auth", "unknown_database", "other"])
    def test_final_failures_are_not_retried(self, reason: str) -> None:
        """Authentication failures and unknown databases fail at once (exit 3)."""
        clock, log = FakeClock(), RecordingLog()
        open_driver, attempts = failing([ConnectFailed("no", transient=False, reason=reason)], clock)
        with pytest.raises(DatabaseUnavailable):
            wait_for_database(open_driver, DSN, 60, log, clock=clock, sleep=clock.sleep)
        assert 1 == len(attempts)

    def test_gives_up_after_timeout(self) -> None:
        """Past --wait-timeout the wait fails with exit 3, counting the attempts."""
        clock, log = FakeClock(), RecordingLog()
        open_driver, attempts = failing([refused() for _ in range(10_000)], clock)
        with pytest.raises(DatabaseUnavailable, match="not ready after 2s") as info:
            wait_for_database(open_driver, DSN, 2.0, log, clock=clock, sleep=clock.sleep)
        assert 3 == info.value.exit_code
        assert 2.0 <= clock.now < 2.1
        assert 70 < len(attempts) < 90  # 2 s / 25 ms, no busy loop at the deadline

    def test_retries_transient_then_fails_on_final(self) -> None:
        """A database that starts up and then rejects the password fails without waiting out the timeout."""
        clock, log = FakeClock(), RecordingLog()
        failures = [refused(), ConnectFailed("starting", transient=True, reason="starting_up"),
                    ConnectFailed("bad password", transient=False, reason="auth")]
        open_driver, attempts = failing(failures, clock)
        with pytest.raises(DatabaseUnavailable, match="authentication failed"):
            wait_for_database(open_driver, DSN, 60, log, clock=clock, sleep=clock.sleep)
        assert 3 == len(attempts)


class FakeLockSession:
    def __init__(self, free_after: int | None) -> None:
        self.free_after = free_after
        self.tries = 0

    def try_lock(self, key: str) -> bool:
        self.tries += 1
        return self.free_after is not None and self.tries > self.free_after

    def lock_holder(self, key: str) -> dict[str, Any]:
        return {"pid": 4242, "application_name": "premigrate@other"}


class TestLock:
    def test_acquires_when_freed(self) -> None:
        """The lock is polled until it is free, then lock_acquired is logged."""
        clock, log = FakeClock(), RecordingLog()
        session = FakeLockSession(free_after=5)
        locking.acquire(session, "k", 600, log, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
        assert (6, "lock_acquired") == (session.tries, log.names()[-1])
        assert "lock_waiting" == log.names()[0]

    def test_times_out_naming_the_holder(self) -> None:
        """Past --lock-timeout the run fails with exit 6, naming who holds the lock."""
        clock, log = FakeClock(), RecordingLog()
        with pytest.raises(LockTimeout, match="pid=4242") as info:
            locking.acquire(FakeLockSession(None), "k", 12, log, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
        assert 6 == info.value.exit_code
        assert 12 <= clock.now < 13
        waiting = [e for e in log.events if e[1] == "lock_waiting"]
        assert 3 == len(waiting)  # at 0, 5 and 10 s
        assert 4242 == waiting[0][2]["holder"]["pid"]

    def test_polling_slows_down_but_stays_responsive(self) -> None:
        """Polls back off to at most half a second."""
        clock, log = FakeClock(), RecordingLog()
        with pytest.raises(LockTimeout):
            locking.acquire(FakeLockSession(None), "k", 30, log, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
        assert max(clock.sleeps) <= locking.POLL_MAX_S


class TestHeldLockKeepalive:
    """The held runner lock keeps its session busy and notices when the lock is gone."""

    class LockSession:
        def __init__(self) -> None:
            self.asked = 0
            self.held = True

        def lock_held(self, key: str) -> bool:
            self.asked += 1
            return self.held

        def blockers(self, session_id: int) -> list[dict[str, object]]:
            return []

    def test_keepalive_asks_while_idle_and_notices_a_lost_lock(self) -> None:
        """The keepalive queries the idle lock session; once the lock is gone, check() raises LockLost (exit 8)."""
        import time

        from premigrate.engine.sessions import HeldLock
        from premigrate.errors import LockLost

        session = self.LockSession()
        held = HeldLock(session, "k", 0.02)  # type: ignore[arg-type]
        try:
            deadline = time.monotonic() + 5
            while session.asked < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert session.asked >= 2
            session.held = False
            while held.lost is None and time.monotonic() < deadline:
                time.sleep(0.01)
            with pytest.raises(LockLost) as raised:
                held.check()
            assert 8 == raised.value.exit_code
            assert "another premigrate may have taken it" in raised.value.message
        finally:
            held.close()

    def test_check_asks_the_lock_session(self) -> None:
        """check() before a migration queries the session: a lock taken away is LockLost at once."""
        from premigrate.engine.sessions import HeldLock
        from premigrate.errors import LockLost

        session = self.LockSession()
        held = HeldLock(session, "k", None)  # type: ignore[arg-type]
        held.check()
        session.held = False
        with pytest.raises(LockLost):
            held.check()
        held.close()


class TestHeldLockVouch:
    """A write the lock session just answered stands in for the check before the next migration: no query of its
    own, unless the migration session sent anything since, a second went by, or the lock is known lost."""

    class Migrating:
        statements_sent = 0

        def check_later(self, lost: object) -> bool:
            return False  # the lock session is asked (LockSession.asked counts it)

    def held(self) -> tuple[TestHeldLockKeepalive.LockSession, object]:
        from premigrate.engine.sessions import HeldLock

        session = TestHeldLockKeepalive.LockSession()
        return session, HeldLock(session, "k", 3600)  # type: ignore[arg-type]

    def test_a_vouched_lock_is_not_asked_again(self) -> None:
        session, held = self.held()
        driver = self.Migrating()
        try:
            held.vouch(driver)  # type: ignore[attr-defined]
            held.check_with(driver)  # type: ignore[attr-defined]
            assert 0 == session.asked
            held.check_with(driver)  # type: ignore[attr-defined]  # a vouch is used once
            assert 1 == session.asked
        finally:
            held.close()  # type: ignore[attr-defined]

    def test_the_migration_session_sent_something_since(self) -> None:
        from premigrate.errors import LockLost

        session, held = self.held()
        driver = self.Migrating()
        try:
            held.vouch(driver)  # type: ignore[attr-defined]
            driver.statements_sent += 1
            session.held = False
            with pytest.raises(LockLost):
                held.check_with(driver)  # type: ignore[attr-defined]
            assert 1 == session.asked
        finally:
            held.close()  # type: ignore[attr-defined]

    def test_a_vouch_expires(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import time

        import premigrate.engine.sessions as sessions

        session, held = self.held()
        driver = self.Migrating()
        try:
            held.vouch(driver)  # type: ignore[attr-defined]
            later = time.monotonic() + sessions.VOUCH_S + 0.1
            monkeypatch.setattr(sessions.time, "monotonic", lambda: later)
            held.check_with(driver)  # type: ignore[attr-defined]
            assert 1 == session.asked
        finally:
            held.close()  # type: ignore[attr-defined]

    def test_another_session_or_a_known_loss_is_checked(self) -> None:
        from premigrate.errors import LockLost

        session, held = self.held()
        driver, other = self.Migrating(), self.Migrating()
        try:
            held.vouch(driver)  # type: ignore[attr-defined]
            held.check_with(other)  # type: ignore[attr-defined]
            assert 1 == session.asked
            held.vouch(driver)  # type: ignore[attr-defined]
            held.lost = "the lock session ended"  # type: ignore[attr-defined]  # the keepalive found it gone
            with pytest.raises(LockLost):
                held.check_with(driver)  # type: ignore[attr-defined]
        finally:
            held.close()  # type: ignore[attr-defined]
