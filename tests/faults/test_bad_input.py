"""A corpus of bad input: each case gets its documented exit code and a one-line message naming the problem, prints
no traceback, and leaves the database exactly as it was (schema and history compared before and after)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from premigrate.model.migrations import MAX_FILE_BYTES
from tests.faults.harness import (
    LEDGER, MARKS, ODD_PASSWORD, PG_PASSWORD, WRONG_PASSWORD, FaultDatabase, Spec, check_invariant,
    make_database, premigrate, public_copy, run_as_nobody, single_error, snapshot, traced_migration, write_spec,
)

SCENARIO = "bad input"


@dataclass
class World:
    """One database per dialect with two migrations applied, and the folder they came from."""

    dbs: dict[str, FaultDatabase]
    specs: dict[str, Spec]
    base: Path
    tmp: Path


@dataclass
class Case:
    """`build(folder, world)` edits a fresh copy of the applied folder and returns extra args and environment."""

    code: int
    needles: tuple[str, ...]
    build: Callable[[Path, World], tuple[list[str], dict[str, str]]]
    dialect: str = "postgresql"
    command: str = "up"
    as_nobody: bool = False
    extra: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, mysql_user: tuple[str, str]) -> Iterator[World]:
    tmp = tmp_path_factory.mktemp("bad-input")
    base = tmp / "applied"
    base.mkdir()
    dbs, specs = {}, {}
    for dialect in ("postgresql", "mysql", "sqlite"):
        folder = tmp / dialect
        folder.mkdir()
        fdb = make_database(dialect, folder, mysql_user if dialect == "mysql" else None)
        spec = Spec(dialect)
        spec.migrations = {1: [MARKS], 2: traced_migration(dialect, 2, 0, index=True)}
        dbs[dialect], specs[dialect] = fdb, spec
    write_spec(base, specs["postgresql"], [1, 2])  # no dialect-specific SQL in these two
    for dialect, fdb in dbs.items():
        result = premigrate(SCENARIO, "up", "--dir", str(base), env=fdb.env(), cwd=tmp)
        assert 0 == result.returncode, result.stderr
    try:
        yield World(dbs, specs, base, tmp)
    finally:
        for fdb in dbs.values():
            fdb.close()
            fdb.db.drop()


def add(*pairs: tuple[str, bytes | str]) -> Callable[[Path, World], tuple[list[str], dict[str, str]]]:
    def build(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
        for name, content in pairs:
            (folder / name).write_bytes(content.encode() if isinstance(content, str) else content)
        return [], {}
    return build


def args(*extra: str, **env: str) -> Callable[[Path, World], tuple[list[str], dict[str, str]]]:
    return lambda folder, world: (list(extra), dict(env))


def _oversized(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    with open(folder / "0003_huge.sql", "wb") as f:
        f.truncate(MAX_FILE_BYTES + 1)  # sparse: no 64 MiB written to disk
    return [], {}


def _self_loop(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    os.symlink("0003_loop.sql", folder / "0003_loop.sql")
    return [], {}


def _two_link_loop(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    os.symlink("0004_b.sql", folder / "0003_a.sql")
    os.symlink("0003_a.sql", folder / "0004_b.sql")
    return [], {}


def _dangling(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    os.symlink("nowhere/0003_gone.sql", folder / "0003_gone.sql")
    return [], {}


def _fifo(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    os.mkfifo(folder / "0003_pipe.sql")
    return [], {}


def _unreadable(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    path = folder / "0003_secret.sql"
    path.write_text("CREATE TABLE t_3 (id INTEGER);\n")
    os.chmod(path, 0o000)
    return [], {}


def _drift(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    path = folder / "0002_step_2.sql"
    path.write_text(path.read_text() + "-- edited after it was applied\nSELECT 1;\n")
    return [], {}


def _missing_dir(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    return ["--dir", str(folder / "no-such-folder")], {}


def _dir_is_file(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    return ["--dir", str(folder / "0001_step_1.sql")], {}


def _url(dialect: str, **replace: str) -> Callable[[Path, World], tuple[list[str], dict[str, str]]]:
    """A case whose DATABASE_URL is the world's URL for `dialect` with parts swapped in (user, password, db,
    query, port)."""
    def build(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
        from urllib.parse import quote, urlsplit, urlunsplit
        parts = urlsplit(world.dbs[dialect].url)
        user = replace.get("user", parts.username or "")
        password = replace.get("password", parts.password or "")
        port = replace.get("port", str(parts.port))
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{port}"
        path = "/" + replace.get("db", parts.path.lstrip("/"))
        return [], {"DATABASE_URL": urlunsplit((parts.scheme, netloc, path, replace.get("query", ""), ""))}
    return build


def _url_and_file(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    secret = folder.parent / "url.txt"
    secret.write_text(world.dbs["postgresql"].url + "\n")
    return [], {"DATABASE_URL_FILE": str(secret)}


def _missing_url_file(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    return [], {"DATABASE_URL": "", "DATABASE_URL_FILE": str(folder.parent / "no-such-secret.txt")}


def _sqlite_missing(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
    return [], {"DATABASE_URL": f"sqlite:///{folder.parent / 'never-created.db'}"}


def _pending_and(*extra: str) -> Callable[[Path, World], tuple[list[str], dict[str, str]]]:
    """A case with a pending migration, so that refusing it is what keeps the database unchanged."""
    def build(folder: Path, world: World) -> tuple[list[str], dict[str, str]]:
        (folder / "0003_pending.sql").write_text(UP)
        return list(extra), {}
    return build


def _raw(url: str) -> Callable[[Path, World], tuple[list[str], dict[str, str]]]:
    return lambda folder, world: ([], {"DATABASE_URL": url})


UP = "CREATE TABLE t_9 (id INTEGER);\n"
PG = "postgresql"
CASES: dict[str, Case] = {
    # -- the migrations folder: exit 5, naming the file -----------------------------------------------------------
    "name-no-version": Case(5, ("create_users.sql",), add(("create_users.sql", UP))),
    "name-flyway-without-version": Case(5, ("V__nothing.sql",), add(("V__nothing.sql", UP))),
    "name-dash": Case(5, ("0003-users.sql",), add(("0003-users.sql", UP))),
    "name-negative": Case(5, ("-3_neg.sql",), add(("-3_neg.sql", UP))),
    "duplicate-padding": Case(5, ("0002_step_2.sql", "2_again.sql"), add(("2_again.sql", UP))),
    "duplicate-flyway": Case(5, ("V2__again.sql",), add(("V2__again.sql", UP))),
    "duplicate-trailing-zero": Case(5, ("2.0_again.sql",), add(("2.0_again.sql", UP))),
    "invalid-utf8": Case(5, ("0003_bytes.sql",), add(("0003_bytes.sql", b"CREATE TABLE t_3 (n \xff\xfe);\n"))),
    "latin1": Case(5, ("0003_latin1.sql",), add(("0003_latin1.sql", "CREATE TABLE caf\xe9 (id INTEGER);\n"
                                                                     .encode("latin-1")))),
    "utf16": Case(5, ("0003_utf16.sql",), add(("0003_utf16.sql", "CREATE TABLE t_3 (id INTEGER);\n"
                                                                 .encode("utf-16")))),
    "nul-byte": Case(5, ("0003_nul.sql", "nul"), add(("0003_nul.sql", b"CREATE TABLE t_3 (id INTEGER);\x00\n"))),
    "over-size-limit": Case(5, ("0003_huge.sql", "64 MiB"), _oversized),
    "symlink-self-loop": Case(5, ("0003_loop.sql",), _self_loop),
    "symlink-two-link-loop": Case(5, ("0003_a.sql",), _two_link_loop),
    "symlink-dangling": Case(5, ("0003_gone.sql",), _dangling),
    "fifo": Case(5, ("0003_pipe.sql",), _fifo),
    "unreadable-file": Case(5, ("0003_secret.sql", "permission denied"), _unreadable, as_nobody=True),
    "down-without-up": Case(5, ("0003_x.down.sql",), add(("0003_x.down.sql", "DROP TABLE t_3;\n"))),
    "two-down-parts": Case(5, ("3",), add(("0003_x.up.sql", UP), ("0003_x.down.sql", "DROP TABLE t_9;\n"),
                                          ("U3__x.sql", "DROP TABLE t_9;\n"))),
    "sql-before-migrate-up": Case(5, ("0003_sections.sql",), add(("0003_sections.sql",
                                                                  "SELECT 1;\n-- migrate:up\n" + UP))),
    "unknown-directive": Case(5, ("0003_typo.sql", "no-transactoin"), add(("0003_typo.sql",
                                                                         "-- premigrate:no-transactoin\n" + UP))),
    "directive-extra-argument": Case(5, ("0003_arg.sql",), add(("0003_arg.sql",
                                                                "-- premigrate:no-transaction please\n" + UP))),
    "drift": Case(5, ("0002_step_2.sql",), _drift),
    "out-of-order": Case(5, ("1.5",), add(("1.5_late.sql", UP))),
    "drift-on-mariadb": Case(5, ("0002_step_2.sql",), _drift, dialect="mysql"),
    "invalid-utf8-on-sqlite": Case(5, ("0003_bytes.sql",), add(("0003_bytes.sql", b"SELECT '\xc3\x28';\n")),
                                   dialect="sqlite"),
    # -- configuration and flags: exit 2, naming the setting -----------------------------------------------------
    "missing-folder": Case(2, ("no-such-folder",), _missing_dir),
    "folder-is-a-file": Case(2, ("0001_step_1.sql",), _dir_is_file),
    "url-not-a-url": Case(2, ("url",), _raw("just some words")),
    "url-unknown-scheme": Case(2, ("oracle",), _raw(f"oracle://scott:{PG_PASSWORD}@127.0.0.1:1521/orcl")),
    "url-http-scheme": Case(2, ("http",), _raw(f"http://postgres:{PG_PASSWORD}@127.0.0.1:5432/x")),
    "url-port-not-a-number": Case(2, ("port",), _url(PG, port="fivefourthreetwo")),
    "url-port-out-of-range": Case(2, ("port",), _url(PG, port="99999")),
    "url-unknown-parameter-postgresql": Case(2, ("frobnicate",), _url(PG, query="frobnicate=1")),
    "url-unknown-parameter-mariadb": Case(2, ("frobnicate",), _url("mysql", query="frobnicate=1"), dialect="mysql"),
    "url-bad-ssl-mode-mariadb": Case(2, ("ssl-mode",), _url("mysql", query="ssl-mode=SOMETIMES"), dialect="mysql"),
    "table-sql-injection": Case(2, ("--table",), args("--table", "x; DROP TABLE marks; --")),
    "table-quote-injection": Case(2, ("--table",), args("--table", 'premigrate_history" CASCADE; --')),
    "table-too-long": Case(2, ("--table",), args("--table", "h" * 64)),
    "table-three-parts": Case(2, ("--table",), args("--table", "a.b.c")),
    "table-qualified-on-mariadb": Case(2, ("--table",), args("--table", "other.history"), dialect="mysql"),
    "table-injection-by-variable": Case(2, ("not a valid SQL identifier",),
                                        args(PREMIGRATE_TABLE="t'); DELETE FROM marks; --")),
    "schema-on-mariadb": Case(2, ("--schema",), args("--schema", "app"), dialect="mysql"),
    "schema-injection": Case(2, ("--schema",), args("--schema", "public; DROP TABLE marks")),
    "wait-timeout-not-a-duration": Case(2, ("--wait-timeout",), args("--wait-timeout", "abc")),
    "wait-timeout-negative": Case(2, ("--wait-timeout",), args("--wait-timeout", "-5s")),
    "lock-timeout-unknown-unit": Case(2, ("--lock-timeout",), args("--lock-timeout", "5parsecs")),
    "lock-retries-not-a-count": Case(2, ("--lock-retries",), args("--lock-retries", "many")),
    "log-format-unknown": Case(2, ("--log-format",), args("--log-format", "xml")),
    "log-level-unknown": Case(2, ("--log-level",), args("--log-level", "loud")),
    "bool-variable-not-a-bool": Case(2, ("PREMIGRATE_STRICT",), args(PREMIGRATE_STRICT="maybe")),
    "duration-variable-bad": Case(2, ("PREMIGRATE_WAIT_TIMEOUT",), args(PREMIGRATE_WAIT_TIMEOUT="forever")),
    "url-and-url-file": Case(2, ("DATABASE_URL", "DATABASE_URL_FILE"), _url_and_file),
    "url-file-missing": Case(2, ("no-such-secret.txt",), _missing_url_file),
    "url-and-db-host-disagree": Case(2, ("DB_HOST",), args(DB_HOST="db.elsewhere.example")),
    "db-port-not-a-number": Case(2, ("DB_PORT",), args(DATABASE_URL="", DB_DIALECT="postgresql",
                                                       DB_HOST="127.0.0.1", DB_PORT="abc", DB_NAME="x",
                                                       DB_PASSWORD=PG_PASSWORD)),
    "to-unknown-version": Case(2, ("999",), args("--to", "999")),
    "unknown-flag": Case(2, ("--frobnicate",), args("--frobnicate")),
    "unknown-command": Case(2, ("upp",), args(), command="upp"),
    "single-transaction-on-mariadb": Case(2, ("single-transaction",), _pending_and("--single-transaction"),
                                          dialect="mysql"),
    "placeholder-unset": Case(2, ("0003_ph.sql", "MISSING_FAULT_VALUE"),
                              add(("0003_ph.sql", "-- premigrate:placeholders\n"
                                                  "CREATE TABLE t_3 (n VARCHAR(9) DEFAULT '${MISSING_FAULT_VALUE}');\n"))),
    # -- the database: exit 3, at once, naming what is wrong ------------------------------------------------------
    "wrong-password-mariadb": Case(3, ("authentication",), _url("mysql", password=WRONG_PASSWORD), dialect="mysql"),
    "wrong-password-odd-characters": Case(3, ("authentication",), _url("mysql", password=ODD_PASSWORD),
                                          dialect="mysql"),
    "unknown-user-postgresql": Case(3, ("no_such_fault_role",), _url(PG, user="no_such_fault_role")),
    "unknown-database-postgresql": Case(3, ("does not exist",), _url(PG, db="pm_fault_no_such_db")),
    "unknown-database-mariadb": Case(3, ("pm_fault_no_such_db",), _url("mysql", db="pm_fault_no_such_db"),
                                     dialect="mysql"),
    "status-of-missing-sqlite-file": Case(3, ("never-created.db",), _sqlite_missing, dialect="sqlite",
                                          command="status"),
}


def _database_state(fdb: FaultDatabase) -> tuple:
    snap = snapshot(fdb)
    history = sorted((k, tuple(sorted((c, str(v)) for c, v in r.items()))) for k, r in snap.history.items())
    return (sorted(snap.tables), sorted(snap.indexes.items()), sorted(snap.marks.items()), history)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name: str, world: World, tmp_path: Path) -> None:
    """Documented exit code, one line naming the problem, no traceback, the database untouched."""
    case = CASES[name]
    fdb = world.dbs[case.dialect]
    folder = tmp_path / "migrations"
    shutil.copytree(world.base, folder)
    extra_args, env = case.build(folder, world)
    env = {**fdb.env(), **env}
    env = {k: v for k, v in env.items() if v != ""}
    before = _database_state(fdb)
    argv = [case.command, "--dir", str(folder), *extra_args]
    if case.as_nobody:
        public = public_copy(folder)
        try:
            result = run_as_nobody(SCENARIO, [case.command, "--dir", str(public), *extra_args], env, public.parent)
        finally:
            shutil.rmtree(public.parent)
    else:
        result = premigrate(SCENARIO, *argv, env=env, cwd=tmp_path)
    assert case.code == result.returncode, result.stdout + result.stderr
    message = single_error(result)
    for needle in case.needles:
        assert needle.lower() in message.lower(), f"{needle!r} not named in: {message}"
    assert before == _database_state(fdb)
    check_invariant(SCENARIO, fdb, world.specs[case.dialect])


def test_empty_and_comment_only_files_are_valid(world: World, tmp_path: Path) -> None:
    """Empty and comment-only files are applied (recorded, with a warning), as the README says."""
    fdb = world.dbs["postgresql"]
    folder = tmp_path / "migrations"
    shutil.copytree(world.base, folder)
    (folder / "0003_empty.sql").write_bytes(b"")
    (folder / "0004_comments.sql").write_text("-- nothing to do yet\n/* a block comment */\n\n")
    (folder / "0005_no_tx_comments.sql").write_text("-- premigrate:no-transaction\n-- only a comment\n")
    result = premigrate(SCENARIO, "up", "--dir", str(folder), env=fdb.env(), cwd=tmp_path)
    assert 0 == result.returncode, result.stderr
    assert ["3", "4", "5"] == sorted(e["version"] for e in result.find("migration_empty"))
    history = snapshot(fdb).history
    assert {"3", "4", "5"} <= {k for k, r in history.items() if r["state"] == "applied"}
    for version in ("3", "4", "5"):
        fdb.q(f"DELETE FROM premigrate_history WHERE migration_id = '{version}'")
    LEDGER.note(SCENARIO, f"{len(CASES)} bad-input cases; empty and comment-only files applied")
