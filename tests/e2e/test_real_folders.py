"""Real public projects' migration folders, applied by premigrate and, for comparison, file by file with the
database's own client the way the project's tool runs them: the resulting schemas must be the same.

The folders are extracted at test time from fetched mirrors (`fetch github:owner/name` puts a bare clone at
/work/.mirror/owner+name/repo); nothing of them is committed. A test is skipped only when its mirror, or the pinned
commit in it, is absent, and the skip reason names the repository.
"""

from __future__ import annotations

import io
import re
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.e2e.helpers import up
from tests.support import TestDatabase, run_cli

MIRRORS = Path("/work/.mirror")


@dataclass(frozen=True)
class RealProject:
    repo: str  # owner/name on GitHub
    commit: str
    folder: str  # the migrations folder inside the repository
    format: str  # premigrate --format that names the project's tool
    dialect: str
    auto: bool = True  # `auto` reads the folder as the tool does (False: it refuses to guess)
    # Folders of the same repository the project migrates first, copied beside the migrations (Ory's network table)
    before: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.repo}:{self.folder}:{self.dialect}"


DRIZZLE_V1_COMMIT = "2ead15b9fede05eb30814a2e797afdf6123eac73"
VAULTWARDEN_COMMIT = "46d71107f5094460dd5ecbe1dbac6e6c71e5189a"
# The projects these tests run, by repository, commit and folder.
REAL_PROJECTS: tuple[RealProject, ...] = (
    RealProject("Permify/permify", "e00d0522e2e5d9ccadac42625a3d40a9ba905360", "internal/storage/postgres/migrations",
                "goose", "postgresql"),
    # Atlas writes this folder in goose's format (atlas.sum beside goose files): auto checks the sum, reads goose.
    RealProject("ItsNotGoodName/smtpbridge", "8b42df202df0b892bb68e9e5213a7c22bd525fbc", "migrations/sql", "goose",
                "sqlite"),
    # Atlas writes this folder in golang-migrate's format: atlas.sum hashes the up files only, and 70 files carry
    # Atlas lint directives (`-- atlas:nolint`), comments to golang-migrate.
    RealProject("openmeterio/openmeter", "7e57a394a0283fb210a644685ad1d257f6d5c85c", "tools/migrate/migrations",
                "golang-migrate", "postgresql"),
    RealProject("umami-software/umami", "c0ea3aefbee7a3429ee2f824b06dc4a9dbe0b7e1", "prisma/migrations", "prisma",
                "postgresql"),
    RealProject("rust-lang/crates.io", "57fa000662f511321daa61e6769f190ea0e80771", "migrations", "diesel",
                "postgresql", auto=False),
    # 2024-03-13_170000_sso_userscascade has the version 20240313, which diesel runs in text order: after
    # 20240306170000 and before 20240605131359.
    RealProject("dani-garcia/vaultwarden", VAULTWARDEN_COMMIT, "migrations/sqlite", "diesel", "sqlite"),
    RealProject("atuinsh/atuin", "824c8716d82bed774ee6a83c683087ae77715814",
                "crates/atuin-server-postgres/migrations", "sqlx", "postgresql"),
    RealProject("atuinsh/atuin", "824c8716d82bed774ee6a83c683087ae77715814", "crates/atuin-client/migrations", "sqlx",
                "sqlite"),
    *(RealProject("ory/keto", "e026d8391913caa2dcd1bff92311ce9d1181d821", "internal/persistence/sql/migrations/sql",
                  "popx", dialect, before=("oryx/networkx/migrations/sql",))
      for dialect in ("postgresql", "sqlite")),  # Keto's MySQL files need MySQL 8's constraint names, not MariaDB's
    RealProject("gophish/gophish", "95618469799295e2c0fec980805a2dfbb818816b", "db/db_mysql/migrations", "goose",
                "mysql"),
    RealProject("gophish/gophish", "95618469799295e2c0fec980805a2dfbb818816b", "db/db_sqlite3/migrations", "goose",
                "sqlite"),
    RealProject("stellar/stellar-horizon", "2abda012313e162d822fda44076893054a3b27a2",
                "internal/db2/schema/migrations", "sql-migrate", "postgresql"),
    *(RealProject("homarr-labs/homarr", "464d98e124726f30c5f92ccf18a5ebff71e0cdd9", f"packages/db/migrations/{d}",
                  "drizzle", d) for d in ("postgresql", "mysql")),
    # Drizzle v1's own fixture (drizzle-orm branch rc5, 1.0.0-rc.4): <ts>_<name>/migration.sql + snapshot.json. Its
    # MySQL one needs MySQL 8 (`serial AUTO_INCREMENT`, which MariaDB rejects); its PostgreSQL one is refused below.
    RealProject("drizzle-team/drizzle-orm", DRIZZLE_V1_COMMIT, "integration-tests/drizzle2/sqlite", "drizzle",
                "sqlite"),
)


def extract(project: RealProject, into: Path) -> Path:
    """The project's migrations folder at its pinned commit, written under `into` (git archive, at test time)."""
    git_dir = MIRRORS / project.repo.replace("/", "+") / "repo"
    if not git_dir.is_dir():
        pytest.skip(f"no mirror of {project.repo} (fetch github:{project.repo})")
    archive = subprocess.run(["git", "--git-dir", str(git_dir), "archive", "--format=tar", project.commit,
                              project.folder, *project.before], check=False, capture_output=True)
    if archive.returncode != 0:
        pytest.skip(f"the mirror of {project.repo} lacks commit {project.commit}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    for folder in project.before:
        for path in (into / folder).iterdir():
            path.rename(into / project.folder / path.name)
    return into / project.folder


# -- the reference: each file through the database's own client, as the tool would run it --------------------------

def goose_up_text(text: str) -> tuple[str, bool]:
    """The Up section of a goose file (between the Up and Down annotations) and whether it runs in a transaction."""
    lines = text.split("\n")
    ups = [i for i, line in enumerate(lines) if re.match(r"--\s*\+goose\s+up\s*$", line, re.IGNORECASE)]
    downs = [i for i, line in enumerate(lines) if re.match(r"--\s*\+goose\s+down\s*$", line, re.IGNORECASE)]
    end = downs[0] if downs else len(lines)
    body = "\n".join(lines[ups[0] + 1:end])
    body = "\n".join(line for line in body.split("\n") if not re.match(r"--\s*\+goose", line))
    return body, not re.search(r"^--\s*\+goose\s+NO TRANSACTION\s*$", text, re.IGNORECASE | re.MULTILINE)


def sql_migrate_up_text(text: str) -> tuple[str, bool]:
    """The lines of a sql-migrate file's Up sections (its `-- +migrate` command lines left out)."""
    kept, direction, in_tx = [], None, True
    for line in text.split("\n"):
        if line.startswith("-- +migrate Up"):
            direction, in_tx = "up", in_tx and "notransaction" not in line
        elif line.startswith("-- +migrate Down"):
            direction = "down"
        elif direction == "up" and not line.startswith("-- +"):
            kept.append(line)
    return "\n".join(kept), in_tx


def reference_steps(project: RealProject, folder: Path) -> list[tuple[str, bool]]:
    """(SQL, in one transaction) per migration, in the order the project's tool applies them."""
    steps: list[tuple[str, bool]] = []
    if project.format == "goose":
        files = sorted(folder.glob("*.sql"), key=lambda p: int(p.name.split("_")[0]))
        return [goose_up_text(p.read_text()) for p in files]
    if project.format == "golang-migrate":
        # Each up file as one string, as golang-migrate's drivers send it; some open and commit transactions
        # themselves, so none is wrapped in another.
        files = sorted(folder.glob("*.up.sql"), key=lambda p: int(p.name.split("_")[0]))
        return [(p.read_text(), False) for p in files]
    if project.format == "prisma":
        return [((d / "migration.sql").read_text(), False) for d in sorted(p for p in folder.iterdir() if p.is_dir())]
    if project.format == "diesel":
        folders = [d for d in folder.iterdir() if d.is_dir() and (d / "up.sql").is_file()]
        for d in sorted(folders, key=lambda d: d.name.split("_")[0].replace("-", "")):
            metadata = d / "metadata.toml"
            in_tx = not metadata.is_file() or "run_in_transaction = true" in metadata.read_text()
            steps.append(((d / "up.sql").read_text(), in_tx))
        return steps
    if project.format == "sqlx":
        files = sorted(folder.glob("*.sql"), key=lambda p: int(p.name.split("_")[0]))
        return [(p.read_text(), not p.read_text().startswith("-- no-transaction")) for p in files
                if not p.name.endswith(".down.sql")]
    if project.format == "drizzle" and not (folder / "meta").is_dir():  # v1: the folders in name order
        return [((d / "migration.sql").read_text().replace("--> statement-breakpoint", ""), True)
                for d in sorted(d for d in folder.iterdir() if (d / "migration.sql").is_file())]
    if project.format == "drizzle":
        import json

        journal = json.loads((folder / "meta" / "_journal.json").read_text())
        return [((folder / f"{e['tag']}.sql").read_text().replace("--> statement-breakpoint", ""), True)
                for e in journal["entries"]]
    if project.format == "sql-migrate":
        files = sorted(folder.glob("*.sql"), key=lambda p: (int(p.name.split("_")[0]), p.name))
        return [sql_migrate_up_text(p.read_text()) for p in files]
    if project.format == "popx":
        return popx_steps(folder, project.dialect)
    raise AssertionError(project.format)


POPX_DIALECTS = {"postgresql": ("postgres", "postgresql", "pg"), "mysql": ("mysql",), "sqlite": ("sqlite", "sqlite3")}


def popx_steps(folder: Path, dialect: str) -> list[tuple[str, bool]]:
    """Per version, the up file for this database, else the dialect-less one (popx's sortAndFilter)."""
    ups: dict[str, dict[str, Path]] = {}
    for path in folder.glob("*.up.sql"):
        version, rest = path.name.split("_", 1)
        parts = rest.split(".")
        target = parts[1] if len(parts) == 4 else "all"
        ups.setdefault(version, {})[target] = path
    steps = []
    for version in sorted(ups):
        mine = [p for d, p in ups[version].items() if d in POPX_DIALECTS[dialect]] or \
            [p for d, p in ups[version].items() if d == "all"]
        if mine:
            steps.append((mine[0].read_text(), True))
    return steps


def apply_with_client(db: TestDatabase, steps: list[tuple[str, bool]], work: Path) -> None:
    for index, (sql, in_tx) in enumerate(steps):
        path = work / f"step_{index:04d}.sql"
        path.write_text(sql)
        if db.dialect == "postgresql":
            command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *(["-1"] if in_tx else []), "-d", db.url,
                       "-f", str(path)]
            result = subprocess.run(command, check=False, capture_output=True, text=True)
        elif db.dialect == "mysql":
            result = subprocess.run([*mariadb_args(db, "mariadb"), db.name], check=False, input=sql,
                                    capture_output=True, text=True)
        else:
            script = f"BEGIN;\n{sql}\nCOMMIT;\n" if in_tx else sql
            result = subprocess.run(["sqlite3", "-bail", str(db.path)], check=False, input=script, capture_output=True,
                                    text=True)
        assert 0 == result.returncode, f"the client refused step {index}: {result.stderr}"


def mariadb_args(db: TestDatabase, tool: str) -> list[str]:
    url = urlsplit(db.url)
    return [tool, "-h", url.hostname or "127.0.0.1", "-P", str(url.port or 3306), "-u", url.username or "root",
            *([f"-p{url.password}"] if url.password else [])]


def schema(db: TestDatabase) -> str:
    """The database's schema as its own dump tool prints it, without premigrate's history table."""
    if db.dialect == "postgresql":
        dump = subprocess.run(["pg_dump", "--schema-only", "--no-owner", "--no-privileges", "-T", db.table,
                               "-d", db.url], capture_output=True, text=True, check=True).stdout
        lines = [line for line in dump.splitlines()
                 if line and not line.startswith(("--", "\\restrict", "\\unrestrict"))]
        return "\n".join(lines)
    if db.dialect == "mysql":
        dump = subprocess.run([*mariadb_args(db, "mariadb-dump"), "--no-data", "--skip-comments", "--skip-dump-date",
                               f"--ignore-table={db.name}.{db.table}", db.name],
                              capture_output=True, text=True, check=True).stdout
        return re.sub(r" AUTO_INCREMENT=\d+", "", dump)
    rows = db.query("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE %s AND name NOT LIKE 'sqlite_%' "
                    "ORDER BY type, name", (f"{db.table}%",))
    return "\n".join(f"{t} {n}: {s}" for t, n, s in rows)


@pytest.mark.parametrize("project", REAL_PROJECTS, ids=lambda p: p.id)
def test_real_folder_matches_its_tool(project: RealProject, tmp_path: Path) -> None:
    """premigrate applies the folder (`--format <tool>`) to the same schema as the database's client applying each
    file the way the tool does; a second run (with `auto` where the folder is unambiguous) is a no-op."""
    folder = extract(project, tmp_path / "src")
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours = TestDatabase.create(project.dialect, tmp_path / "ours")
    theirs = TestDatabase.create(project.dialect, tmp_path / "theirs")
    try:
        result = up(ours, folder, "--format", project.format, "--lint", "off")
        assert 0 == result.returncode, result.stderr[-3000:]
        again = up(ours, folder, *(() if project.auto else ("--format", project.format)))
        assert 0 == again.returncode and '"nothing_to_do"' in again.stderr, again.stderr[-2000:]
        apply_with_client(theirs, reference_steps(project, folder), tmp_path)
        assert schema(theirs) == schema(ours)
        assert schema(ours)  # the folder did create something
    finally:
        ours.drop()
        theirs.drop()


def test_crates_io_needs_explicit_diesel(tmp_path: Path) -> None:
    """crates.io keeps a loose data_oauth_github.sql beside its diesel folders: diesel ignores it, `auto` refuses
    to guess (exit 5, naming it) and `--format diesel` ignores it with a warning."""
    project = next(p for p in REAL_PROJECTS if p.repo == "rust-lang/crates.io")
    folder = extract(project, tmp_path / "src")
    db = TestDatabase.create("sqlite", tmp_path)
    result = up(db, folder)
    assert 5 == result.returncode
    assert "data_oauth_github.sql" in result.stderr and "--format diesel" in result.stderr


def test_homarr_sqlite_escaping_drizzles_transaction_is_refused(tmp_path: Path) -> None:
    """homarr's SQLite 0001 starts with COMMIT to leave Drizzle's transaction (and set PRAGMA foreign_keys outside
    it), then BEGINs again for Drizzle to commit. premigrate cannot reproduce that trick: it refuses the folder
    before running anything, naming the file and the statement, instead of applying half of it."""
    project = RealProject("homarr-labs/homarr", "464d98e124726f30c5f92ccf18a5ebff71e0cdd9",
                          "packages/db/migrations/sqlite", "drizzle", "sqlite")
    folder = extract(project, tmp_path / "src")
    db = TestDatabase.create("sqlite", tmp_path)
    result = up(db, folder)
    assert 5 == result.returncode
    assert "0001_mixed_titanium_man.sql: line 1: statement 1 (COMMIT) ends a transaction" in result.stderr
    assert '"applied": 0' in result.stderr


def test_drizzle_v1_same_timestamp_is_refused(tmp_path: Path) -> None:
    """Drizzle v1's own PostgreSQL fixture holds two folders generated in the same second (20230331141203_test and
    _puzzling_flatman): premigrate would record both under one version, so it refuses the folder, naming both,
    before connecting."""
    project = RealProject("drizzle-team/drizzle-orm", DRIZZLE_V1_COMMIT, "integration-tests/drizzle2/pg", "drizzle",
                          "postgresql")
    folder = extract(project, tmp_path / "src")
    db = TestDatabase.create("postgresql", tmp_path)
    try:
        result = up(db, folder)
        assert 5 == result.returncode
        assert "20230331141203_test/migration.sql" in result.stderr and "same timestamp" in result.stderr
        assert set() == db.tables()
    finally:
        db.drop()


# Five of crates.io's folders: one without diesel 2.2's `-0000` suffix, four with it (the last one left pending).
CRATES_IO_SUBSET = ("2026-01-20-162913_oauth_github_table", "2026-05-27-120000-0000_semver_ord_v2_not_null",
                    "2026-05-27-130000-0000_drop_semver_ord", "2026-06-10-120000-0000_create_reserved_usernames",
                    "2026-07-24-154000-0000_drop_cache_tags_backfills")


def test_crates_io_diesel_history_is_adopted(tmp_path: Path) -> None:
    """A database diesel migrated from crates.io's folders: `__diesel_schema_migrations` holds what diesel writes
    for each folder (the name before `_` without `-`, so `2026-05-27-120000-0000_x` is 202605271200000000). `up
    --baseline-from diesel` records those four folders without running them (running one would fail: the tables
    they alter are not there), applies only the fifth, and `check` then exits 0."""
    project = next(p for p in REAL_PROJECTS if p.repo == "rust-lang/crates.io")
    folder = extract(project, tmp_path / "src")
    for path in folder.iterdir():
        if path.name not in CRATES_IO_SUBSET:
            subprocess.run(["rm", "-r", str(path)], check=True)
    db = TestDatabase.create("postgresql", tmp_path)
    try:
        db.execute("CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, "
                   "run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)")
        recorded = [name.split("_")[0].replace("-", "") for name in CRATES_IO_SUBSET[:4]]
        db.execute("INSERT INTO __diesel_schema_migrations (version) VALUES "
                   + ", ".join(f"('{v}')" for v in recorded))
        result = up(db, folder, "--format", "diesel", "--baseline-from", "diesel")
        assert 0 == result.returncode, result.stderr[-3000:]
        assert [] == result.find("baseline_done")[0]["not_in_folder"]
        history = db.history()
        assert ["baseline"] * 4 + ["versioned"] == [r["kind"] for r in history]
        assert "drop_cache_tags_backfills/up.sql" in history[-1]["script"]
        check = run_cli("check", "--dir", str(folder), "--format", "diesel", env={"DATABASE_URL": db.url})
        assert 0 == check.returncode, check.stderr[-2000:]
    finally:
        db.drop()


def test_vaultwarden_runs_in_diesels_order(tmp_path: Path) -> None:
    """vaultwarden's SQLite folder, whose `2024-03-13_170000_sso_userscascade` (version 20240313) diesel runs after
    20240306170000 and before 20240605131359 (MigrationVersion is a string, pending_migrations sorts by it): `up`
    applies every folder in that order, a second `up` and `check` find nothing to do. `down --steps 2` from
    20240605131359 takes it and then 20240313, as diesel's revert_last_migration would, and refuses: 20240313's
    down.sql is a zero-byte file, which diesel refuses to run too (EmptyMigration)."""
    project = next(p for p in REAL_PROJECTS if p.repo == "dani-garcia/vaultwarden")
    folder = extract(project, tmp_path / "src")
    names = sorted(d.name for d in folder.iterdir() if (d / "up.sql").is_file())
    diesel_order = sorted(names, key=lambda n: n.split("_")[0].replace("-", ""))
    duo = diesel_order.index("2024-06-05-131359_add_2fa_duo_store")
    assert "2024-03-13_170000_sso_userscascade" == diesel_order[duo - 1]
    db = TestDatabase.create("sqlite", tmp_path)
    env = {"DATABASE_URL": db.url}
    result = up(db, folder, "--lint", "off", "--to", "20240605131359")
    assert 0 == result.returncode, result.stderr[-3000:]
    assert diesel_order[:duo + 1] == [e["script"].split("/")[0] for e in result.find("migration_applied")]
    down = run_cli("down", "--dir", str(folder), "--steps", "2", "--yes", env=env)
    assert 5 == down.returncode
    assert "2024-03-13_170000_sso_userscascade/down.sql (version 20240313) has an empty down part" in down.stderr
    down = run_cli("down", "--dir", str(folder), "--steps", "1", "--yes", env=env)
    assert ["20240605131359"] == [e["version"] for e in down.find("rolled_back")], down.stderr
    result = up(db, folder, "--lint", "off")
    assert 0 == result.returncode, result.stderr[-3000:]
    assert diesel_order[duo:] == [e["script"].split("/")[0] for e in result.find("migration_applied")]
    assert len(names) == len(db.history())
    again = up(db, folder)
    assert 0 == again.returncode and '"nothing_to_do"' in again.stderr, again.stderr[-2000:]
    assert 0 == run_cli("check", "--dir", str(folder), env=env).returncode
