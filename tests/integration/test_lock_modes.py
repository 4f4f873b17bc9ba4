"""Runners started with different --lock-mode exclude each other: a session lock (advisory) and a lease (table)
on the same history table, on the real servers (engine/tablelock.py: SessionLockBesideLease, LeaseOnSession)."""

from __future__ import annotations

import pytest

from premigrate.config import load_config
from premigrate.drivers import driver_class
from premigrate.drivers.base import DriverSettings, lock_key_text
from premigrate.engine import tablelock
from premigrate.model.dsn import parse_url
from tests.support import TestDatabase

pytestmark = pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])


def test_advisory_and_table_runners_exclude_each_other(db: TestDatabase) -> None:
    """Whichever takes its lock second sees the other's and lets go; once the first releases, the second gets it."""
    config = load_config("up", {"database_url": db.url}, {})
    key = lock_key_text(config.dsn.database or "", f"{config.history_schema or ''}.{config.history_table_name}")
    settings = DriverSettings(table=config.history_table_name)
    advisory_session = driver_class(db.dialect).connect(parse_url(db.url), settings)
    table_session = driver_class(db.dialect).connect(parse_url(db.url), settings)
    try:
        advisory = tablelock.SessionLockBesideLease(tablelock.lease_for(config), advisory_session)
        lease = tablelock.LeaseOnSession(tablelock.lease_for(config), table_session)
        assert advisory.try_lock(key)  # no lock table yet: no lease to respect
        tablelock.ensure_schema(table_session)
        lease.ensure_table()
        assert not lease.try_lock(key), "a runner in table mode went on while one in advisory mode held its lock"
        assert lease.lock_holder(key) is not None
        advisory_session.unlock(key)
        assert table_session.lock_holder(key) is None
        assert lease.try_lock(key)
        assert not advisory.try_lock(key), "a runner in advisory mode went on while a lease was held"
        assert advisory.lock_holder(key) is not None
        assert table_session.lock_holder(key) is None  # the session lock it took was given back at once
        lease.unlock(key)
        assert advisory.try_lock(key)
    finally:
        advisory_session.close()
        table_session.close()
