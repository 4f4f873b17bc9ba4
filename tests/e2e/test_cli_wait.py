"""`wait`: exit 3 with wait_retrying events when nothing listens; exit 0 once the port starts answering."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.e2e.helpers import DelayedProxy, free_port, host_port, write
from tests.support import TestDatabase, run_cli, server_url

SERVERS = [pytest.param("postgresql", id="postgresql"), pytest.param("mysql", id="mysql")]
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def _url_on_port(url: str, port: int) -> str:
    """`url` with its host:port replaced by 127.0.0.1:`port`, keeping user, password and database."""
    parts = urlsplit(url)
    auth = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit((parts.scheme, f"{auth}127.0.0.1:{port}", parts.path, parts.query, parts.fragment))


class TestWaitOnClosedPort:
    @pytest.mark.parametrize("dialect", SERVERS)
    def test_times_out_with_exit_3(self, tmp_path: Path, dialect: str) -> None:
        """`wait --wait-timeout 1s` against a port nobody listens on exits 3 after logging wait_retrying."""
        url = _url_on_port(server_url(dialect), free_port())

        result = run_cli("wait", "--wait-timeout", "1s", env={"DATABASE_URL": url}, cwd=tmp_path, timeout=30)

        assert 3 == result.returncode, result.stderr
        retries = result.find("wait_retrying")
        assert 1 <= len(retries)
        assert {"refused"} == {e["reason"] for e in retries}
        assert all({"attempt", "next_delay_ms", "error"} <= set(e) for e in retries)
        assert [] == result.find("database_ready")
        [error] = result.find("error")
        assert "not ready" in error["error"]
        assert 3 == result.events[-1]["exit_code"]

    def test_retry_logging_is_rate_limited(self, tmp_path: Path) -> None:
        """Retries are logged at most once a second (by premigrate's own clock) although many attempts are made."""
        url = _url_on_port(server_url("postgresql"), free_port())

        result = run_cli("wait", "--wait-timeout", "2500ms", env={"DATABASE_URL": url}, cwd=tmp_path, timeout=30)

        assert 3 == result.returncode, result.stderr
        retries = result.find("wait_retrying")
        waited = [e["waited_ms"] for e in retries]
        assert all(later - earlier >= 999 for earlier, later in zip(waited, waited[1:])), waited
        attempts = [e["attempt"] for e in retries]
        assert sorted(set(attempts)) == attempts
        [error] = result.find("error")
        assert len(retries) < error["attempts"]

    @pytest.mark.parametrize("dialect", SERVERS)
    def test_up_times_out_without_creating_anything(self, db: TestDatabase, migrations_dir: Path,
                                                    dialect: str) -> None:
        """`up` against a closed port exits 3 after --wait-timeout and the real database stays empty."""
        write(migrations_dir, "001_t1.sql", "CREATE TABLE t1 (id INTEGER PRIMARY KEY);\n")
        url = _url_on_port(db.url, free_port())

        result = run_cli("up", "--dir", str(migrations_dir), "--wait-timeout", "1s", env={"DATABASE_URL": url},
                         cwd=migrations_dir.parent, timeout=30)

        assert 3 == result.returncode, result.stderr
        assert set() == db.tables()


class TestWaitForLateServer:
    @pytest.mark.parametrize("dialect", SERVERS)
    def test_exit_0_when_port_opens(self, tmp_path: Path, dialect: str) -> None:
        """`wait` against a port that starts forwarding to the real server after ~1 s exits 0 with database_ready."""
        admin = server_url(dialect)
        port = free_port()
        url = _url_on_port(admin, port)

        with DelayedProxy(port, host_port(admin, DEFAULT_PORTS[dialect]), delay=1.0) as proxy:
            result = run_cli("wait", "--wait-timeout", "30s", env={"DATABASE_URL": url}, cwd=tmp_path, timeout=60)

        assert 0 == result.returncode, result.stderr
        assert proxy.listening_at is not None
        assert 1 <= len(result.find("wait_retrying")), "the port was closed at first: a retry should be logged"
        [ready] = result.find("database_ready")
        assert 2 <= ready["attempts"]
        assert 0 == result.events[-1]["exit_code"]

    @pytest.mark.parametrize("dialect", SERVERS)
    def test_up_applies_once_port_opens(self, db: TestDatabase, migrations_dir: Path, dialect: str) -> None:
        """`up` that has to wait for the port applies its migration once the server answers."""
        write(migrations_dir, "001_t1.sql", "CREATE TABLE t1 (id INTEGER PRIMARY KEY);\n")
        port = free_port()

        with DelayedProxy(port, host_port(db.url, DEFAULT_PORTS[dialect]), delay=1.0):
            result = run_cli("up", "--dir", str(migrations_dir), "--wait-timeout", "30s",
                             env={"DATABASE_URL": _url_on_port(db.url, port)}, cwd=migrations_dir.parent,
                             timeout=60)

        assert 0 == result.returncode, result.stderr
        assert 1 <= len(result.find("wait_retrying"))
        assert "t1" in db.tables()


class TestWaitOnReadyDatabase:
    def test_exit_0_at_once(self, db: TestDatabase, tmp_path: Path) -> None:
        """`wait` against a database that is up exits 0 on the first attempt, creating nothing."""
        if db.dialect == "sqlite":
            db.query("SELECT 1")

        result = run_cli("wait", env={"DATABASE_URL": db.url}, cwd=tmp_path)

        assert 0 == result.returncode, result.stderr
        assert [1] == [e["attempts"] for e in result.find("database_ready")]
        assert set() == db.tables()


@pytest.mark.parametrize("dialect", ["mysql"])
class TestMysqlTlsModes:
    """This machine's MariaDB offers no TLS: PREFERRED (also the default) falls back to a plain connection,
    REQUIRED refuses to go on without it."""

    @pytest.mark.parametrize("mode", ["", "?ssl-mode=PREFERRED", "?ssl-mode=DISABLED"])
    def test_plain_connection_allowed(self, db: TestDatabase, mode: str) -> None:
        result = run_cli("wait", env={"DATABASE_URL": db.url + mode})

        assert 0 == result.returncode, result.stderr

    def test_required_refused(self, db: TestDatabase) -> None:
        result = run_cli("wait", "--wait-timeout", "2s", env={"DATABASE_URL": db.url + "?ssl-mode=REQUIRED"})

        assert 3 == result.returncode, result.stderr
        assert "SSL" in result.find("error")[0]["error"] or "TLS" in result.find("error")[0]["error"]
