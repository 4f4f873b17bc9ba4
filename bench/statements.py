"""Many statements in one migration file: premigrate against the database's own client, on PostgreSQL and MariaDB.

    python bench/statements.py [--counts 10000,100000] [--db postgresql|mysql|all] [--lint off|warn]

One file of N small INSERTs into one table. The client baseline runs the same file: `psql -1 -f` (one transaction,
as premigrate wraps a PostgreSQL file) and `mariadb < file` (autocommit, as premigrate runs a MariaDB file). Each line
printed is `dialect statements premigrate_s client_s ratio`; the cost per statement must stay flat as N grows (a
quadratic progress write shows as a ratio that grows with N). Databases are created under unique names and dropped.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
import pymysql

PG_URL = os.environ.get("PREMIGRATE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MY_URL = os.environ.get("PREMIGRATE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/mysql")
ROOT = Path(__file__).resolve().parent.parent


def write_file(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "001_many.sql"
    with path.open("w") as out:
        out.write("CREATE TABLE bench_many (id int PRIMARY KEY, note varchar(40));\n")
        for i in range(1, count):
            out.write(f"INSERT INTO bench_many VALUES ({i}, 'row {i}');\n")
    return path


def timed(argv: list[str], **kwargs: object) -> float:
    started = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)  # type: ignore[call-overload]
    return time.monotonic() - started


def one(dialect: str, count: int, lint: str, work: Path) -> tuple[float, float]:
    name = f"pm_bench_{uuid.uuid4().hex[:10]}"
    folder = work / f"{dialect}-{count}"
    path = write_file(folder, count)
    admin = PG_URL if dialect == "postgresql" else MY_URL
    base = admin.rsplit("/", 1)[0]
    premigrate = [sys.executable, "-m", "premigrate", "up", "--dir", str(folder), "--lint", lint]
    env = dict(os.environ, PREMIGRATE_LOG_LEVEL="warning")
    if dialect == "postgresql":
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
            conn.execute(f"CREATE DATABASE {name}_c")
        try:
            ours = timed(premigrate + ["--database-url", f"{base}/{name}"], env=env)
            client = timed(["psql", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", f"{base}/{name}_c", "-f", str(path)])
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                conn.execute(f"DROP DATABASE IF EXISTS {name}_c WITH (FORCE)")
        return ours, client
    conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
            cur.execute(f"CREATE DATABASE {name}_c")
        ours = timed(premigrate + ["--database-url", f"{base}/{name}"], env=env)
        with path.open("rb") as stdin:
            client = timed(["mariadb", "-h", "127.0.0.1", "-u", "root", f"{name}_c"], stdin=stdin)
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
            cur.execute(f"DROP DATABASE IF EXISTS {name}_c")
        conn.close()
    return ours, client


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="10000,100000")
    parser.add_argument("--db", default="all", choices=("postgresql", "mysql", "all"))
    parser.add_argument("--lint", default="off", choices=("off", "warn"))
    args = parser.parse_args()
    dialects = ("postgresql", "mysql") if args.db == "all" else (args.db,)
    work = Path(tempfile.mkdtemp(prefix="pm-bench-statements-"))
    try:
        print("dialect     statements  premigrate_s  client_s  ratio", flush=True)
        for dialect in dialects:
            for count in (int(c) for c in args.counts.split(",")):
                ours, client = one(dialect, count, args.lint, work)
                print(f"{dialect:<11} {count:>10}  {ours:>12.1f}  {client:>8.1f}  {ours / client:>5.1f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
