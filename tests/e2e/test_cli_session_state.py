"""A migration cannot move premigrate's own bookkeeping, and what it sets in its session does not leak into the next
one: MySQL `USE` is refused (or caught after it runs), PostgreSQL search_path, role and timeouts are reset between
migrations, and the history table is always addressed by its qualified name."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.helpers import up, write
from tests.support import TestDatabase


@pytest.fixture
def other_db(db: TestDatabase) -> Iterator[str]:
    """A second database on the same server holding another application's history row for version 1."""
    name = f"pm_other_{uuid.uuid4().hex[:10]}"
    db.admin(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        db.admin(f"DROP DATABASE IF EXISTS {name}")


def _other_history(db: TestDatabase, other: str) -> list[tuple[str, str]]:
    rows = db.query("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (other,))
    if ("premigrate_history",) not in [tuple(r) for r in rows]:
        return []
    return [(r[0], r[1]) for r in db.query(f"SELECT migration_id, state FROM {other}.premigrate_history")]


@pytest.mark.parametrize("dialect", [pytest.param("mysql", id="mysql")])
class TestMysqlUse:
    @pytest.mark.parametrize("use", ["USE {}", "/*M!100000 USE {} */"], ids=["plain", "executable-comment"])
    def test_use_is_refused_before_anything_runs(self, db: TestDatabase, migrations_dir: Path,
                                                 other_db: str, use: str) -> None:
        """A migration that starts with `USE other_db` is refused (exit 5) and nothing changes, in either database;
        also when the USE is in a MariaDB executable comment, which the server runs."""
        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id int);\n")
        write(migrations_dir, "002_b.sql", f"-- switch\n{use.format(other_db)};\nCREATE TABLE b (id int);\n")

        result = up(db, migrations_dir)

        assert 5 == result.returncode, result.stderr
        assert "switches the current database (USE)" in result.find("error")[0]["error"]
        assert "a" not in db.tables()
        assert [] == _other_history(db, other_db)

    def test_history_writes_never_follow_a_use(self, db: TestDatabase, migrations_dir: Path, other_db: str) -> None:
        """A `USE` the check before the run cannot see (inside a MariaDB compound statement) never moves the
        history writes: the other database's own history row is untouched, the run stops non-zero, and this
        database's row tells the truth."""
        db.execute(f"CREATE TABLE {other_db}.premigrate_history (migration_id varchar(191) PRIMARY KEY, "
                   "state varchar(16))")
        db.execute(f"INSERT INTO {other_db}.premigrate_history VALUES ('1', 'theirs')")
        write(migrations_dir, "001_a.sql",
              f"CREATE TABLE a (id int);\nEXECUTE IMMEDIATE 'USE {other_db}';\nCREATE TABLE b (id int);\n")
        write(migrations_dir, "002_c.sql", "CREATE TABLE c (id int);\n")

        result = up(db, migrations_dir)

        assert result.returncode not in (0, 1), result.stderr
        assert [("1", "theirs")] == _other_history(db, other_db)
        assert "switched the current database" in result.find("error")[0]["error"]
        assert ["1"] == [r["migration_id"] for r in db.history()]
        assert "applied" != db.history()[0]["state"]
        assert "c" not in db.tables()


    @pytest.mark.parametrize("switch", ["prepared", "call"])
    def test_a_switch_without_the_word_use_is_caught_after_it_runs(self, db: TestDatabase, migrations_dir: Path,
                                                                   other_db: str, switch: str) -> None:
        """USE built from a string and run as a prepared statement, or by a procedure (on MariaDB its USE
        outlives the CALL): caught right after that statement, before the next one, and never recorded as
        applied."""
        build = f"CONCAT('US', 'E {other_db}')"
        if switch == "prepared":
            write(migrations_dir, "001_a.sql", f"CREATE TABLE a (id int);\nSET @q = {build};\nPREPARE s FROM @q;\n"
                                               "EXECUTE s;\nCREATE TABLE b (id int);\n")
        else:
            write(migrations_dir, "001_a.sql", f"CREATE TABLE a (id int);\nDELIMITER //\nCREATE PROCEDURE "
                                               f"switcher() BEGIN EXECUTE IMMEDIATE {build}; END//\nDELIMITER ;\n"
                                               "CALL switcher();\nCREATE TABLE b (id int);\n")

        result = up(db, migrations_dir)

        assert result.returncode not in (0, 1), result.stderr
        assert "switched the current database" in result.find("error")[0]["error"]
        assert "b" not in db.tables()
        assert [] == db.query(f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{other_db}'")
        assert ["failed"] == [r["state"] for r in db.history()]

    def test_session_state_does_not_reach_the_next_migration(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A user variable and a session variable set by 002 are gone when 003 runs (the session is restored
        after a migration that may have changed it; plain DDL, as in 001, leaves nothing to restore)."""
        write(migrations_dir, "001_a.sql", "CREATE TABLE a (id int);\nCREATE INDEX a_id ON a (id);\n")
        write(migrations_dir, "002_b.sql", "SET @leftover = 5;\nSET SESSION sql_mode = 'ANSI_QUOTES';\n"
                                           "CREATE TABLE b (id int);\n")
        write(migrations_dir, "003_c.sql", "CREATE TABLE c AS SELECT @leftover AS v, @@session.sql_mode AS mode;\n")

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        [(leftover, mode)] = db.query("SELECT v, mode FROM c")
        assert leftover is None and "ANSI_QUOTES" not in mode
        assert ["applied"] * 3 == [r["state"] for r in db.history()]


@pytest.mark.parametrize("dialect", [pytest.param("postgresql", id="postgresql")])
class TestPostgresSessionState:
    def test_search_path_does_not_leak_into_the_next_migration(self, db: TestDatabase,
                                                               migrations_dir: Path) -> None:
        """001's SET search_path does not decide where 002's tables go when both run in one process."""
        db.execute("CREATE SCHEMA elsewhere")
        write(migrations_dir, "001_a.sql", "SET search_path TO elsewhere;\nCREATE TABLE a (id int);\n")
        write(migrations_dir, "002_b.sql", "CREATE TABLE b (id int);\n")

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        where = dict(db.query("SELECT tablename, schemaname FROM pg_tables WHERE tablename IN ('a', 'b', "
                              "'premigrate_history')"))
        assert {"a": "elsewhere", "b": "public", "premigrate_history": "public"} == where
        assert ["applied", "applied"] == [r["state"] for r in db.history()]

    def test_set_role_neither_breaks_the_history_write_nor_leaks(self, db: TestDatabase,
                                                                  migrations_dir: Path) -> None:
        """A migration that switches to a role without rights on the history table is recorded, and the next
        migration runs as the user premigrate connected as again."""
        role = f"pm_role_{uuid.uuid4().hex[:8]}"
        db.admin(f"CREATE ROLE {role}")
        try:
            db.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
            write(migrations_dir, "001_a.sql", f"SET ROLE {role};\nCREATE TABLE a (id int);\n")
            write(migrations_dir, "002_b.sql", "CREATE TABLE b (id int);\n")
            write(migrations_dir, "003_c.sql",
                  f"-- premigrate:no-transaction\nSET ROLE {role};\nCREATE TABLE c (id int);\n")

            result = up(db, migrations_dir)

            assert 0 == result.returncode, result.stderr
            owners = dict(db.query("SELECT tablename, tableowner FROM pg_tables WHERE tablename IN ('a', 'b', 'c')"))
            assert {"a": role, "b": "postgres", "c": role} == owners
            assert ["applied"] * 3 == [r["state"] for r in db.history()]
        finally:
            db.execute(f"DROP OWNED BY {role}")
            db.admin(f"DROP ROLE IF EXISTS {role}")

    def test_a_role_set_at_connect_time_comes_back_after_set_role(self, db: TestDatabase,
                                                                   migrations_dir: Path) -> None:
        """With a role set for the database (ALTER DATABASE ... SET role), a migration's SET ROLE is undone back to
        that role, not to the login user: the next migration's table is the connect-time role's."""
        with connect_time_role(db) as (connect_role, other):
            write(migrations_dir, "001_a.sql", f"SET ROLE {other};\nCREATE TABLE a (id int);\n")
            write(migrations_dir, "002_b.sql", "CREATE TABLE b (id int);\n")

            result = up(db, migrations_dir)

            assert 0 == result.returncode, result.stderr
            owners = dict(db.query("SELECT tablename, tableowner FROM pg_tables WHERE tablename IN ('a', 'b')"))
            assert {"a": other, "b": connect_role} == owners
            assert ["applied"] * 2 == [r["state"] for r in db.history()]

    def test_the_history_write_is_made_as_the_connect_time_role(self, db: TestDatabase,
                                                                migrations_dir: Path) -> None:
        """After a migration's SET ROLE, premigrate writes its history row as the identity the session had at
        connect (here the role ALTER DATABASE ... SET role gives it, which created the history table), not as the
        login user: a trigger on the history table notes who writes."""
        with connect_time_role(db) as (connect_role, other):
            write(migrations_dir, "001_a.sql", "CREATE TABLE a (id int);\n")
            assert 0 == up(db, migrations_dir).returncode
            db.execute("CREATE TABLE writers (who text)")
            db.execute("GRANT INSERT ON writers TO PUBLIC")
            db.execute("CREATE FUNCTION note_writer() RETURNS trigger LANGUAGE plpgsql AS "
                       "$$ BEGIN INSERT INTO writers VALUES (current_user); RETURN NEW; END $$")
            db.execute("CREATE TRIGGER note BEFORE INSERT OR UPDATE ON premigrate_history FOR EACH ROW "
                       "EXECUTE FUNCTION note_writer()")
            write(migrations_dir, "002_b.sql", f"SET ROLE {other};\nCREATE TABLE b (id int);\n")

            result = up(db, migrations_dir)

            assert 0 == result.returncode, result.stderr
            assert {connect_role} == {row[0] for row in db.query("SELECT who FROM writers")}
            assert ["applied"] * 2 == [r["state"] for r in db.history()]

    def test_a_statement_timeout_does_not_leak(self, db: TestDatabase, migrations_dir: Path) -> None:
        """001's SET statement_timeout does not cut 002's slow statement short."""
        write(migrations_dir, "001_a.sql", "SET statement_timeout = '50ms';\nCREATE TABLE a (id int);\n")
        write(migrations_dir, "002_b.sql", "SELECT pg_sleep(0.3);\nCREATE TABLE b (id int);\n")

        result = up(db, migrations_dir)

        assert 0 == result.returncode, result.stderr
        assert {"a", "b"} <= db.tables()


@contextmanager
def connect_time_role(db: TestDatabase) -> Iterator[tuple[str, str]]:
    """Two new roles that may create tables in public, the first set as the database's role at connect (ALTER
    DATABASE ... SET role): (that role, the other). Dropped, with what they own, afterwards."""
    connect_role, other = (f"pm_role_{uuid.uuid4().hex[:8]}" for _ in range(2))
    for role in (connect_role, other):
        db.admin(f"CREATE ROLE {role}")
        db.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
    try:
        db.admin(f"ALTER DATABASE {db.name} SET role = '{connect_role}'")
        yield connect_role, other
    finally:
        db.admin(f"ALTER DATABASE {db.name} RESET role")
        for role in (connect_role, other):
            db.execute(f"DROP OWNED BY {role}")
            db.admin(f"DROP ROLE IF EXISTS {role}")
