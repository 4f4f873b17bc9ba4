"""A migration file near the 64 MiB limit migrates within the memory limit the shipped manifests give the container
(256 MiB), enforced on the premigrate process with RLIMIT_AS: exit 0 with a summary line, never an OOM kill."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.harness import LEDGER, make_database
from tests.support import CliResult, cli_env

LIMIT_BYTES = 256 * 1024 * 1024
FILE_BYTES = 60 * 1024 * 1024


def write_big(folder: Path, statement_bytes: int) -> int:
    """001 creates a table; 002 is about 60 MiB of INSERTs of about `statement_bytes` each. Returns their count."""
    folder.mkdir()
    (folder / "001_table.sql").write_text("CREATE TABLE big (id INTEGER PRIMARY KEY, note TEXT);\n")
    pad = "x" * max(0, statement_bytes - 60)
    count = 0
    size = 0
    with (folder / "002_big.sql").open("w") as out:
        while size < FILE_BYTES:
            line = f"INSERT INTO big VALUES ({count}, 'row {count} {pad}');\n"
            out.write(line)
            size += len(line)
            count += 1
    return count


def limited(*args: str, env: dict[str, str]) -> CliResult:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_BYTES, LIMIT_BYTES))

    # RLIMIT_AS counts address space, a container's memory limit counts pages in use. glibc reserves 64 MiB of
    # address space for each thread's malloc arena (three here: the runner, the signal watcher, the progress
    # reporter), used or not; with them the limit measured when the threads first allocated, not what the run uses,
    # and failed at random. One arena makes the address space track the memory in use.
    env = {**env, "MALLOC_ARENA_MAX": "1"}
    proc = subprocess.run([sys.executable, "-m", "premigrate", *args], env=cli_env(env), capture_output=True,
                          text=True, timeout=900, preexec_fn=limit)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize(("dialect", "statement_bytes"), [("sqlite", 110), ("postgresql", 1000)],
                         ids=["sqlite-small-statements", "postgresql-1k-statements"])
def test_file_at_the_size_limit_fits_in_256_mib(dialect: str, statement_bytes: int, tmp_path: Path) -> None:
    """60 MiB in one file, lint on (the default): applied under a 256 MiB address-space limit, lint skipped and
    said so, every row in place."""
    scenario = f"60 MiB file under 256 MiB: {dialect}"
    fdb = make_database(dialect, tmp_path)
    try:
        folder = tmp_path / "migrations"
        count = write_big(folder, statement_bytes)
        result = LEDGER.record(scenario, limited("up", "--dir", str(folder), env=fdb.env()))

        assert 0 == result.returncode, result.stderr[-3000:]
        assert 1 == len(result.find("summary")), result.stderr[-3000:]
        assert ["002_big.sql"] == [e["script"] for e in result.find("lint_skipped")]
        assert [(count,)] == [tuple(r) for r in fdb.q("SELECT count(*) FROM big")]
    finally:
        fdb.close()
        fdb.db.drop()


def write_big_copy(folder: Path) -> int:
    """001 creates a table; 002 loads about 60 MiB of rows with one COPY ... FROM stdin, as pg_dump writes them."""
    folder.mkdir()
    (folder / "001_table.sql").write_text("CREATE TABLE big (id INTEGER PRIMARY KEY, note TEXT);\n")
    count = 0
    size = 0
    with (folder / "002_rows.sql").open("w") as out:
        out.write("COPY public.big (id, note) FROM stdin;\n")
        while size < FILE_BYTES:
            line = f"{count}\trow {count} {'x' * 100}\n"
            out.write(line)
            size += len(line)
            count += 1
        out.write("\\.\n")
    return count


def test_copy_rows_at_the_size_limit_fit_in_256_mib(tmp_path: Path) -> None:
    """60 MiB of COPY rows in one file: loaded under the same 256 MiB limit, every row in place."""
    fdb = make_database("postgresql", tmp_path)
    try:
        folder = tmp_path / "migrations"
        count = write_big_copy(folder)
        result = LEDGER.record("60 MiB of COPY rows under 256 MiB: postgresql",
                               limited("up", "--dir", str(folder), env=fdb.env()))

        assert 0 == result.returncode, result.stderr[-3000:]
        assert [(count,)] == [tuple(r) for r in fdb.q("SELECT count(*) FROM big")]
    finally:
        fdb.close()
        fdb.db.drop()
