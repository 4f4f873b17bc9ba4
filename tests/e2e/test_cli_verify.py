"""`premigrate verify` end to end on PostgreSQL, MariaDB and SQLite: the round trip through the executor on a scratch
database, the report (text and --json), exit codes 0/5/4, the refusals, and the scratch database gone afterwards,
also after SIGTERM."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.e2e.helpers import LIVENESS_S, LiveCli, db_env, endless_sql, up, write
from tests.integration.test_verify_databases import folder
from tests.support import CliResult, TestDatabase, run_cli


def write_folder(migrations_dir: Path, dialect: str, *, broken: bool) -> None:
    """The acceptance folder of the verify tests, as sectioned files (`-- migrate:up` / `-- migrate:down`)."""
    for name, up_sql, down_sql in folder(dialect, broken=broken):
        text = "-- migrate:up\n" + "".join(f"{s};\n" for s in up_sql)
        if down_sql is not None:
            text += "-- migrate:down\n" + "".join(f"{s};\n" for s in down_sql)
        write(migrations_dir, f"{name}.sql", text)


def verify(db: TestDatabase, migrations_dir: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
    return run_cli("verify", "--dir", str(migrations_dir), *args, env={**db_env(db), **(env or {})},
                   cwd=migrations_dir.parent)


def scratch_exists(db: TestDatabase, name: str) -> bool:
    """Whether the scratch database (server) or file (SQLite, beside the configured file) still exists."""
    if db.dialect == "postgresql":
        return bool(db.query("SELECT count(*) FROM pg_database WHERE datname = %s", (name,))[0][0]) or bool(
            db.query("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (name,))[0][0])
    if db.dialect == "mysql":
        return bool(db.query("SELECT count(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s",
                             (name,))[0][0])
    return any(name in p.name for p in Path(db.url.removeprefix("sqlite:///")).parent.iterdir())


def scratch_name(result: CliResult) -> str:
    started = result.find("verify_started")
    assert 1 == len(started), result.stderr
    return str(started[0]["scratch"])


class TestVerifyCommand:
    def test_acceptance_folder(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A wrong down and an up not re-runnable after its down are each reported, the rest verified: exit 5."""
        write_folder(migrations_dir, db.dialect, broken=True)
        result = verify(db, migrations_dir, "--json")
        assert 5 == result.returncode, result.stderr
        report = json.loads(result.stdout)
        assert {"6": "reapply_failed", "5": "down_differs", "4": "verified", "3": "no_down", "2": "verified",
                "1": "verified"} == {m["migration"]: m["status"] for m in report["migrations"]}
        wrong = next(m for m in report["migrations"] if m["migration"] == "5")
        assert [("index", "added"), ("index", "removed")] == [(d["kind"], d["change"]) for d in wrong["differences"]]
        assert {"5", "6"} == {e["migration_id"] for e in result.find("verify_migration_failed")}
        assert [5] == [e["exit_code"] for e in result.find("verify_finished")]
        assert not scratch_exists(db, scratch_name(result))
        assert set() == db.tables(), "verify touched the configured database"

    def test_clean_folder(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A folder whose down parts all restore the schema: exit 0, a text report, the scratch database gone."""
        write_folder(migrations_dir, db.dialect, broken=False)
        result = verify(db, migrations_dir)
        assert 0 == result.returncode, result.stderr
        assert ["4: verified", "3: no_down", "2: verified", "1: verified"] == [
            ": ".join(line.split(": ")[:2]) for line in result.stdout.splitlines()[:4]]
        assert "3 verified, 0 not verified, 1 without a down part" == result.stdout.splitlines()[-1]
        assert not scratch_exists(db, scratch_name(result))

    def test_folder_that_does_not_apply(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A migration whose up fails: exit 4, naming it, and nothing verified."""
        write(migrations_dir, "001_a.sql", "-- migrate:up\nCREATE TABLE a (id INTEGER);\n-- migrate:down\nDROP TABLE a;\n")
        write(migrations_dir, "002_b.sql", "CREATE TABLE no_such_table_here_either (id INTEGER REFERENCES nope (id));\n"
              "INSERT INTO nope VALUES (1);\n")
        result = verify(db, migrations_dir, "--json")
        assert 4 == result.returncode, result.stderr
        assert "2" == json.loads(result.stdout)["apply_failed"]
        assert ["2"] == [e["migration_id"] for e in result.find("verify_apply_failed")]
        # MySQL records the failed migration (no transactional DDL): its row is in the scratch database, so the
        # message must not send the operator to repair the configured one.
        apply_error = json.loads(result.stdout)["apply_error"]
        assert "premigrate repair" not in apply_error, apply_error
        if db.dialect == "mysql":
            assert "fix the file and run verify again" in apply_error, apply_error
        assert not scratch_exists(db, scratch_name(result))

    def test_refuses_beside_a_migrated_database(self, db: TestDatabase, migrations_dir: Path) -> None:
        """A configured database with premigrate history: exit 2, no scratch database created."""
        write_folder(migrations_dir, db.dialect, broken=False)
        assert 0 == up(db, migrations_dir).returncode
        result = verify(db, migrations_dir)
        assert 2 == result.returncode, result.stderr
        assert "has premigrate history" in result.find("error")[0]["error"]
        assert [] == result.find("verify_started")

    def test_scratch_url_with_history_needs_yes(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--scratch-url naming the migrated database itself is refused without --yes, emptied and used with it."""
        write_folder(migrations_dir, db.dialect, broken=False)
        assert 0 == up(db, migrations_dir).returncode
        refused = verify(db, migrations_dir, "--scratch-url", db.url)
        assert 2 == refused.returncode, refused.stderr
        assert "--yes" in refused.find("error")[0]["error"]
        assert 4 == len(db.history()), "a refused verify changed the database"
        result = verify(db, migrations_dir, "--scratch-url", db.url, "--yes")
        assert 0 == result.returncode, result.stderr
        assert ["verify_emptying_scratch"] == [e for e in result.event_names() if e == "verify_emptying_scratch"]

    def test_scratch_url_of_another_database_type_is_refused(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--scratch-url of another type than the configured database proves nothing about it: exit 2 naming both,
        nothing created; with no database configured (the SQLite default) any type of scratch database is used."""
        write_folder(migrations_dir, db.dialect, broken=False)
        other = ("postgresql://postgres@127.0.0.1:1/nowhere" if db.dialect == "sqlite"
                 else f"sqlite:///{migrations_dir.parent / 'scratch.db'}")
        refused = verify(db, migrations_dir, "--scratch-url", other)
        assert 2 == refused.returncode, refused.stderr
        error = refused.find("error")[0]["error"]
        assert f"is a {'postgresql' if db.dialect == 'sqlite' else 'sqlite'} database" in error, error
        assert f"is {db.dialect}" in error, error
        assert [] == refused.find("verify_started")
        assert not (migrations_dir.parent / "scratch.db").exists()
        unconfigured = run_cli("verify", "--dir", str(migrations_dir), "--scratch-url", db.url,
                               cwd=migrations_dir.parent)
        assert 0 == unconfigured.returncode, unconfigured.stderr

    def test_sigterm_drops_the_scratch_database(self, db: TestDatabase, migrations_dir: Path) -> None:
        """SIGTERM while a migration runs on the scratch database: exit 143 and the scratch database is gone."""
        write(migrations_dir, "001_a.sql", "-- migrate:up\nCREATE TABLE a (id INTEGER);\n-- migrate:down\nDROP TABLE a;\n")
        write(migrations_dir, "002_slow.sql", endless_sql(db.dialect) + "\n")
        live = LiveCli("verify", "--dir", str(migrations_dir), env=db_env(db), cwd=migrations_dir.parent)
        try:
            started = live.wait_for_event("verify_started")
            live.wait_for_event("migration_started", where=lambda e: e.get("version") == "2")
            assert scratch_exists(db, started["scratch"])
            live.proc.send_signal(signal.SIGTERM)
            result = live.finish(timeout=LIVENESS_S)
        finally:
            live.kill()
        assert 143 == result.returncode, result.stderr
        assert not scratch_exists(db, started["scratch"])
        # Statements ran (in the scratch database): the note says where, not "nothing was changed".
        note = result.find("interrupted")[0]["note"]
        assert "which was dropped; the configured database was not touched" in note, note
        assert "nothing was changed" not in note, note

    def test_placeholders(self, db: TestDatabase, migrations_dir: Path) -> None:
        """--placeholders fills ${NAME} in as `up` would; an unknown one is exit 2 before any scratch database."""
        write(migrations_dir, "001_a.sql", "-- migrate:up\nCREATE TABLE ${T} (id INTEGER);\n"
              "-- migrate:down\nDROP TABLE ${T};\n")
        missing = verify(db, migrations_dir, "--placeholders")
        assert 2 == missing.returncode, missing.stderr
        assert [] == missing.find("verify_started")
        result = verify(db, migrations_dir, "--placeholders", env={"PREMIGRATE_PLACEHOLDER_T": "things"})
        assert 0 == result.returncode, result.stderr
        assert ["verified"] == [e["status"] for e in result.find("verify_migration")]
