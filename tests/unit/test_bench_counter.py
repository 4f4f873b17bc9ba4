"""bench/bench.py's MySQLCommandCounter, which the benchmark's "commands sent per migration" table comes from: one
query that holds several statements counts one round trip, and each of its statements as what it is."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


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
