"""bench/bench.py: the MariaDB baseline with the record per statement does what it stands for: each migration's
tables, a history row per migration finished at the end, and on the wire the commits premigrate's statement-level
record costs (four per two-statement migration: the merged row write, statement 1, "1 done, 2 started", statement
2)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit

import pytest

from tests.support import TestDatabase

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("premigrate_bench", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("client", ["mariadb", "python"])
def test_the_recorded_client_baseline_applies_and_records_every_migration(tmp_path: Path, client: str) -> None:
    """The same statements, from the mariadb client or from Python (bench.PY_RECORDED: PyMySQL, the history writes
    on one session and the migration statements on another)."""
    bench = _bench()
    n = 4
    script = bench.write_recorded_sql(tmp_path / "recorded.sql", n)
    text = script.read_text()
    # Per migration: the merged INSERT, two DDL statements, one UPDATE between them; one UPDATE at the end.
    assert (n, n, n, n, 1) == (text.count("INSERT INTO bench_history"), text.count("CREATE TABLE bench_t"),
                               text.count("CREATE INDEX"), text.count("UPDATE bench_history SET done = 1"),
                               text.count("UPDATE bench_history SET done = 2"))
    db = TestDatabase.create("mysql", tmp_path)
    try:
        url = urlsplit(db.url)
        if client == "python":
            runner = tmp_path / "recorded_my.py"
            runner.write_text(bench.PY_RECORDED)
            env = {"BENCH_FLOOR_HOST": url.hostname or "127.0.0.1", "BENCH_FLOOR_PORT": str(url.port or 3306),
                   "BENCH_FLOOR_USER": url.username or "root", "BENCH_FLOOR_PASSWORD": url.password or "",
                   "BENCH_FLOOR_DB": db.name}
            subprocess.run([sys.executable, str(runner), str(script)], check=True, capture_output=True, timeout=120,
                           env=env)
        else:
            with script.open("rb") as sql:
                subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h", url.hostname or "127.0.0.1",
                                "-P", str(url.port or 3306), "-u", url.username or "root", db.name],
                               stdin=sql, check=True, capture_output=True, timeout=120,
                               env={"PATH": "/usr/bin:/bin", **({"MYSQL_PWD": url.password} if url.password else {})})
        assert {f"bench_t{i:04d}" for i in range(1, n + 1)} | {"bench_history"} == db.tables()
        assert [(i, 2, 2) for i in range(1, n + 1)] == [
            tuple(int(v) for v in row) for row in db.query("SELECT version, done, started FROM bench_history "
                                                           "ORDER BY version")]
    finally:
        db.drop()


def test_a_run_says_when_the_source_changed_while_it_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/.venv runs the checkout's files as they are at each moment: a run during which they changed measured a
    mix, and its header says so."""
    bench = _bench()
    commit, _ = bench.premigrate_source()  # this checkout's own
    assert commit != "unknown" and len(commit) >= 7
    monkeypatch.setattr(bench, "premigrate_source", lambda: ("abc1234", ""))
    assert "commit abc1234" == bench.describe_source(("abc1234", ""))
    assert ("commit abc1234 with changes in src/; the source changed during the run (now commit abc1234)"
            == bench.describe_source(("abc1234", "0f0f")))
    assert ("commit 9999999; the source changed during the run (now commit abc1234)"
            == bench.describe_source(("9999999", "")))


def _query(text: str) -> bytes:
    payload = b"\x03" + text.encode()
    return len(payload).to_bytes(3, "little") + b"\x00" + payload


def test_a_query_of_several_statements_is_one_round_trip_and_counts_each_write() -> None:
    counter = _bench().MySQLCommandCounter("premigrate_history")
    stream = counter.stream()
    stream.feed(_query("CREATE TABLE t1 (id INT)"))
    stream.feed(_query("SET SESSION sql_mode = @@session.sql_mode;\n"
                       "UPDATE `d`.`premigrate_history` SET statement_started = 2 WHERE migration_id = '1';\n"
                       "CREATE INDEX t1_id ON t1 (id)"))
    stream.feed(_query("INSERT INTO `d`.`premigrate_history` (migration_id) VALUES ('1'), ('2') "
                       "ON DUPLICATE KEY UPDATE migration_id = VALUES(migration_id)"))
    counts = counter.as_dict(1)
    assert (3, 4, 2) == (counts["round_trips"], counts["commits"], counts["history_writes"])
