"""Files that cannot run in a transaction, files that manage their own, and CREATE INDEX CONCURRENTLY."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import LIVENESS_S, LiveCli, cmd, db_env, up, write
from tests.support import TestDatabase

NO_TX = "-- premigrate:no-transaction\n"


def _indexes(db: TestDatabase) -> dict[str, bool]:
    """Index name -> valid, for the test database's own indexes (PostgreSQL)."""
    rows = db.query("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' "
                    "AND c.relname NOT LIKE 'premigrate%%'")
    return {name: valid for name, valid in rows}


@pytest.mark.parametrize("dialect", ["postgresql"])
class TestConcurrentIndexes:
    def test_three_concurrent_indexes_in_one_file(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A no-transaction file with three CREATE INDEX CONCURRENTLY statements applies, all three indexes valid."""
        write(migrations_dir, "001_t.sql", "CREATE TABLE t (a int, b int, c int);\n")
        write(migrations_dir, "002_idx.sql", NO_TX + "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"
              "CREATE INDEX CONCURRENTLY t_b ON t (b);\nCREATE INDEX CONCURRENTLY t_c ON t (c);\n")

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert {"t_a": True, "t_b": True, "t_c": True} == _indexes(db)
        row = db.history()[1]
        assert ("applied", 3, 3, 3) == (row["state"], row["statements_done"], row["statement_started"],
                                        row["statements_total"])

    def test_failure_leaves_no_invalid_index_and_resumes(self, db: TestDatabase, migrations_dir: Path) -> None:
        """Statement 2 (a unique index over duplicates) fails: failed row at statement 2, its invalid index dropped;
        after the data is fixed, `repair --resume` completes the file from statement 2."""
        write(migrations_dir, "001_t.sql", "CREATE TABLE t (a int, b int, c int);\n"
              "INSERT INTO t VALUES (1, 1, 1), (2, 1, 2);\n")
        write(migrations_dir, "002_idx.sql", NO_TX + "CREATE INDEX CONCURRENTLY t_a ON t (a);\n"
              "CREATE UNIQUE INDEX CONCURRENTLY t_b ON t (b);\nCREATE INDEX CONCURRENTLY t_c ON t (c);\n")

        failed = up(db, migrations_dir)

        assert 4 == failed.returncode, failed.stderr
        row = db.history()[1]
        assert ("failed", 1, 2) == (row["state"], row["statements_done"], row["statement_started"])
        assert "23505" in row["error"]
        assert {"t_a": True} == _indexes(db), "the invalid t_b must be gone"
        assert ["t_b"] == [e["index"] for e in failed.find("invalid_index_dropped")]

        refused = up(db, migrations_dir)
        assert 5 == refused.returncode
        assert "premigrate repair" in refused.find("error")[0]["error"]

        db.execute("UPDATE t SET b = 2 WHERE a = 2")
        resumed = cmd("repair", db, migrations_dir, "--resume")

        assert 0 == resumed.returncode, resumed.stderr
        assert {"t_a": True, "t_b": True, "t_c": True} == _indexes(db)
        assert ("applied", 3) == (db.history()[1]["state"], db.history()[1]["statements_done"])

    def test_leftover_invalid_index_dropped_before_the_retry(self, db: TestDatabase, migrations_dir: Path) -> None:
        """An invalid index of the same name left by an earlier failure (here: made by hand) is dropped before the
        statement runs, so CREATE INDEX CONCURRENTLY IF NOT EXISTS does not silently keep the broken index."""
        write(migrations_dir, "001_t.sql", "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1), (1);\n")
        assert 0 == up(db, migrations_dir).returncode
        conn = db.connect()
        try:
            with pytest.raises(Exception):
                conn.execute("CREATE UNIQUE INDEX CONCURRENTLY t_a ON t (a)")
        finally:
            conn.close()
        assert {"t_a": False} == _indexes(db)
        write(migrations_dir, "002_idx.sql", NO_TX + "CREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n")

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert {"t_a": True} == _indexes(db)
        assert ["t_a"] == [e["index"] for e in result.find("invalid_index_dropped")]

    def test_transactional_file_refused_before_anything_runs(self, db: TestDatabase, migrations_dir: Path) -> None:
        """CREATE INDEX CONCURRENTLY in a file without the directive: exit 5 naming the statement and the fix;
        the database is untouched (not even the history table)."""
        write(migrations_dir, "001_t.sql", "CREATE TABLE t (a int);\n")
        write(migrations_dir, "002_idx.sql", "CREATE INDEX CONCURRENTLY t_a ON t (a);\n")

        result = up(db, migrations_dir)

        assert 5 == result.returncode, result.stderr
        [error] = result.find("error")
        assert "002_idx.sql: statement 1 (line 1)" in error["error"]
        assert "-- premigrate:no-transaction" in error["error"]
        assert set() == db.tables()

    def test_alter_type_add_value_allowed_in_a_transaction(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "001_mood.sql", "CREATE TYPE mood AS ENUM ('ok');\nALTER TYPE mood ADD VALUE 'meh';\n")

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr


SQLITE_REBUILD = """PRAGMA foreign_keys=OFF;
BEGIN;
CREATE TABLE users_new (id INTEGER PRIMARY KEY, email TEXT NOT NULL);
INSERT INTO users_new (id, email) SELECT id, coalesce(email, '') FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
COMMIT;
PRAGMA foreign_keys=ON;
"""


class TestSelfManagedFiles:
    @pytest.mark.parametrize("dialect", ["sqlite"])
    def test_sqlite_table_rebuild(self, db: TestDatabase, migrations_dir: Path) -> None:
        """PRAGMA foreign_keys=OFF; BEGIN; ... COMMIT; runs as written (not wrapped), and is recorded applied."""
        write(migrations_dir, "001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT);\n"
              "CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER REFERENCES users (id));\n"
              "INSERT INTO users VALUES (1, NULL);\nINSERT INTO posts VALUES (1, 1);\n")
        write(migrations_dir, "002_rebuild.sql", SQLITE_REBUILD)

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        started = [e for e in result.find("migration_started") if e["version"] == "2"][0]
        assert started["transaction"].startswith("as written")
        assert [(1, "")] == db.query("SELECT id, email FROM users")
        row = db.history()[1]
        assert ("applied", 8, 8) == (row["state"], row["statements_done"], row["statements_total"])

    @pytest.mark.parametrize("dialect", ["postgresql", "mysql", "sqlite"])
    def test_failure_inside_the_block(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A statement failing inside the file's own transaction: exit 4, the block rolled back, a failed row that
        points at the block's BEGIN (statement 2), not past it."""
        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);\nBEGIN;\n"
              "INSERT INTO a VALUES (1);\nINSERT INTO a VALUES (1);\nCOMMIT;\n")

        result = up(db, migrations_dir)

        assert 4 == result.returncode, result.stderr
        assert [] == db.query("SELECT id FROM a")
        row = db.history()[0]
        assert ("failed", 1, 2) == (row["state"], row["statements_done"], row["statement_started"])
        assert "statement 4" in row["error"]

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_begin_inside_a_body_is_an_ordinary_file(self, db: TestDatabase, migrations_dir: Path) -> None:
        """BEGIN inside a DO block or a function body does not make the file self-managed."""
        write(migrations_dir, "001_f.sql", "CREATE TABLE a (id int);\n"
              "DO $$ BEGIN INSERT INTO a VALUES (1); END $$;\n"
              "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;\n")

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert result.find("migration_started")[0]["transaction"].startswith("per-migration")

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_unbalanced_block_refused(self, db: TestDatabase, migrations_dir: Path) -> None:
        write(migrations_dir, "001_a.sql", "BEGIN;\nCREATE TABLE a (id int);\n")

        result = up(db, migrations_dir)

        assert 5 == result.returncode, result.stderr
        assert "never commits" in result.find("error")[0]["error"]
        assert set() == db.tables()

    @pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
    def test_kill_inside_the_block_resumes_automatically(self, db: TestDatabase, migrations_dir: Path) -> None:
        """kill -9 while the file's own transaction runs: the block rolled back with its progress mark, so nothing is
        in doubt and the next `up` runs the block again and completes."""
        slow = ("SELECT pg_sleep(30);" if db.dialect == "postgresql" else
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;")
        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);\nBEGIN;\n"
              f"INSERT INTO a VALUES (1);\n{slow}\nCOMMIT;\nCREATE TABLE b (id INTEGER);\n")
        live = LiveCli("up", "--dir", str(migrations_dir), env=db_env(db), cwd=migrations_dir.parent)
        try:
            live.wait_for_event("migration_started")
            time.sleep(1.0)
            assert live.proc.poll() is None
            os.kill(live.proc.pid, signal.SIGKILL)
            live.proc.wait(timeout=LIVENESS_S)
        finally:
            live.kill()
        row = db.history()[0]
        assert ("in_progress", 1, 1) == (row["state"], row["statements_done"], row["statement_started"])
        assert [] == db.query("SELECT id FROM a")

        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id INTEGER PRIMARY KEY);\nBEGIN;\n"
              "INSERT INTO a VALUES (1);\nSELECT 1;\nCOMMIT;\nCREATE TABLE b (id INTEGER);\n")
        result = up(db, migrations_dir)

        # Statement 1 is unchanged, so resuming is safe even though the (not yet run) statement 4 changed.
        assert 0 == result.returncode, result.stderr
        assert [(1,)] == db.query("SELECT id FROM a")
        assert "b" in db.tables()


@pytest.mark.parametrize("dialect", ["sqlite"])
class TestResumeWithPlaceholders:
    def test_interrupted_placeholder_file_resumes(self, db: TestDatabase, migrations_dir: Path) -> None:
        """The hashes of the statements that ran are of the resolved text: an interrupted no-transaction file with
        placeholders resumes by itself instead of being refused as changed."""
        write(migrations_dir, "001_a.sql", NO_TX + "-- premigrate:placeholders\nCREATE TABLE ${PREFIX}_a (id int);\n"
              "CREATE TABLE ${PREFIX}_b (id int);\n")
        env = {"PREMIGRATE_PLACEHOLDER_PREFIX": "shop"}
        assert 0 == up(db, migrations_dir, env=env).returncode
        # As a kill between statement 1 and 2 leaves it: statement 1 done, nothing in doubt, statement 2 not run.
        db.execute("DROP TABLE shop_b")
        db.execute("UPDATE premigrate_history SET state = 'in_progress', statements_done = 1, statement_started = 1")

        result = up(db, migrations_dir, env=env)

        assert 0 == result.returncode, result.stderr
        assert [2] == [e["from_statement"] for e in result.find("migration_resumed")]
        assert {"shop_a", "shop_b"} <= db.tables()
        assert "applied" == db.history()[0]["state"]
