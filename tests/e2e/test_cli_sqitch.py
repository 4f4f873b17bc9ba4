"""sqitch projects applied by premigrate on every engine sqitch supports (pg, mysql, sqlite): the plan's changes in
plan order, deploy scripts as the up part, verify scripts after each deploy, revert scripts for `down`.

The real public project (sqitchers/sqitch-intro, sqitch's own PostgreSQL tutorial, and sqitch-sqlite-intro) is
extracted at test time from its fetched mirror, as tests/e2e/test_real_folders.py does, and compared with what sqitch
does: `sqitch deploy` runs each deploy script with the engine's client (Engine/pg.pm: psql -X -q -v ON_ERROR_STOP=1
-f; Engine/sqlite.pm: sqlite3 -bail), in plan order, the earlier copy of a reworked change from name@tag.sql.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from premigrate.engine.change_verify import CHECKIT_SQL
from premigrate.model.formats import sqitch
from tests.e2e.helpers import cmd, up
from tests.e2e.test_real_folders import RealProject, apply_with_client, extract, schema
from tests.support import TestDatabase

WHO = "Ada Lovelace <ada@example.com>"
PLAN = f"""%syntax-version=1.0.0
%project=shop
%uri=https://example.com/shop/

customers 2024-01-10T10:00:00Z {WHO} # Customers.
orders [customers] 2024-01-11T10:00:00Z {WHO} # Orders of a customer.
@v1.0 2024-01-12T10:00:00Z {WHO} # Tag v1.0.

customers [customers@v1.0] 2024-02-01T10:00:00Z {WHO} # Customers get an email.
"""
SCRIPTS = {
    # The first copy of the reworked change: its scripts carry the tag (sqitch rework renames them so).
    "deploy/customers@v1.0.sql": "-- Deploy customers\nBEGIN;\nCREATE TABLE customers (id INTEGER PRIMARY KEY, "
                                 "name VARCHAR(50) NOT NULL);\nCOMMIT;\n",
    "revert/customers@v1.0.sql": "BEGIN;\nDROP TABLE customers;\nCOMMIT;\n",
    "verify/customers@v1.0.sql": "BEGIN;\nSELECT id, name FROM customers WHERE 1 = 0;\nROLLBACK;\n",
    "deploy/orders.sql": "-- Deploy orders\n-- requires: customers\nBEGIN;\nCREATE TABLE orders (id INTEGER PRIMARY "
                         "KEY, customer_id INTEGER NOT NULL REFERENCES customers (id));\nCOMMIT;\n",
    "revert/orders.sql": "BEGIN;\nDROP TABLE orders;\nCOMMIT;\n",
    "verify/orders.sql": "BEGIN;\nSELECT id, customer_id FROM orders WHERE 1 = 0;\nROLLBACK;\n",
    "deploy/customers.sql": "BEGIN;\nALTER TABLE customers ADD COLUMN email VARCHAR(100);\nCOMMIT;\n",
    "revert/customers.sql": "BEGIN;\nALTER TABLE customers DROP COLUMN email;\nCOMMIT;\n",
    "verify/customers.sql": "BEGIN;\nSELECT id, name, email FROM customers WHERE 1 = 0;\nROLLBACK;\n",
}


def project(root: Path, plan: str = PLAN, scripts: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "sqitch.plan").write_text(plan)
    (root / "sqitch.conf").write_text("[core]\n\tengine = pg\n")  # rewritten per test below
    for name, text in (SCRIPTS if scripts is None else scripts).items():
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).write_text(text)
    return root


ENGINE = {"postgresql": "pg", "mysql": "mysql", "sqlite": "sqlite"}


@pytest.fixture
def shop(tmp_path: Path, db: TestDatabase) -> Path:
    root = project(tmp_path / "shop")
    (root / "sqitch.conf").write_text(f"[core]\n\tengine = {ENGINE[db.dialect]}\n[deploy]\n\tverify = true\n")
    return root


def columns(db: TestDatabase, table: str) -> list[str]:
    if db.dialect == "sqlite":
        return [r[1] for r in db.query(f"PRAGMA table_info({table})")]
    schema_test = "table_schema = current_schema()" if db.dialect == "postgresql" else "table_schema = DATABASE()"
    return [r[0] for r in db.query("SELECT column_name FROM information_schema.columns WHERE table_name = %s AND "
                                   f"{schema_test} ORDER BY ordinal_position", (table,))]


def change_ids(root: Path) -> list[str]:
    return [c.id for c in sqitch.load_project(root).changes]


class TestApply:
    def test_apply_then_no_op(self, db: TestDatabase, shop: Path) -> None:
        """Detected by sqitch.plan: the three changes in plan order, each verified, keyed by sqitch's change id;
        a second run has nothing to do."""
        result = up(db, shop)
        assert 0 == result.returncode, result.stderr[-3000:]
        assert {"customers", "orders"} <= db.tables()
        assert ["id", "name", "email"] == columns(db, "customers")
        assert [] == result.find("lint_finding")  # the scripts' own BEGIN/COMMIT run as written
        history = db.history()
        assert sorted(change_ids(shop)) == [r["migration_id"] for r in history]
        assert ["customers@v1.0", "orders", "customers"] == [e["description"] for e in result.find("migration_applied")]
        assert ["verify/customers@v1.0.sql", "verify/orders.sql", "verify/customers.sql"] == \
            [e["verify_script"] for e in result.find("change_verified")]
        again = up(db, shop, "--format", "sqitch")
        assert 0 == again.returncode and again.find("nothing_to_do"), again.stderr[-2000:]

    def test_drift_of_a_deployed_script(self, db: TestDatabase, shop: Path) -> None:
        assert 0 == up(db, shop).returncode
        (shop / "deploy/orders.sql").write_text(SCRIPTS["deploy/orders.sql"].replace("NOT NULL", ""))
        result = up(db, shop)
        assert 5 == result.returncode, result.stderr[-2000:]
        assert "deploy/orders.sql" in result.stderr and "was changed after it was applied" in result.stderr

    def test_edited_plan_line_of_a_deployed_change(self, db: TestDatabase, shop: Path) -> None:
        """A deployed change's plan line gives its id: editing it (here its note) is refused before anything runs."""
        assert 0 == up(db, shop).returncode
        (shop / "sqitch.plan").write_text(PLAN.replace("# Orders of a customer.", "# Orders."))
        result = up(db, shop)
        assert 5 == result.returncode, result.stderr[-2000:]
        assert "the plan line of change 'orders' was edited after it was deployed" in result.find("error")[0]["error"]

    def test_rework_after_deploy_keeps_the_deployed_copy(self, db: TestDatabase, tmp_path: Path) -> None:
        """`sqitch rework`: the deployed copy's scripts are renamed name@tag.sql and the change is planned again.
        Keyed by change id, the deployed copy is still applied and only the new copy runs."""
        first_plan = PLAN.split("\ncustomers [customers@v1.0]")[0] + "\n"
        scripts = {k.replace("@v1.0", ""): v for k, v in SCRIPTS.items() if "@" in k or "orders" in k}
        root = project(tmp_path / "p", first_plan, scripts)
        (root / "sqitch.conf").write_text(f"[core]\nengine = {ENGINE[db.dialect]}\n")
        assert 0 == up(db, root).returncode
        for kind in ("deploy", "revert", "verify"):
            (root / kind / "customers.sql").rename(root / kind / "customers@v1.0.sql")
            (root / kind / "customers.sql").write_text(SCRIPTS[f"{kind}/customers.sql"])
        (root / "sqitch.plan").write_text(PLAN)
        result = up(db, root)
        assert 0 == result.returncode, result.stderr[-2000:]
        assert ["customers"] == [e["description"] for e in result.find("migration_applied")]
        assert ["id", "name", "email"] == columns(db, "customers")

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_pg_dump_guard_lines_deploy_as_with_psql(self, db: TestDatabase, shop: Path) -> None:
        """A deploy script pasted from pg_dump keeps its \\restrict and \\unrestrict lines, which sqitch's psql runs:
        premigrate deploys it (exit 0, the table there), as psql itself does with the same file."""
        script = "\\restrict Ab12\n-- Deploy orders\nBEGIN;\nCREATE TABLE orders (id INTEGER PRIMARY KEY, " \
                 "customer_id INTEGER);\nCOMMIT;\n\\unrestrict Ab12\n"
        (shop / "deploy/orders.sql").write_text(script)
        psql = subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", db.url, "-c", "CREATE SCHEMA psql_check",
                               "-c", "SET search_path = psql_check", "-f", str(shop / "deploy/orders.sql")],
                              capture_output=True, text=True, check=False)
        assert 0 == psql.returncode, psql.stderr

        result = up(db, shop)

        assert 0 == result.returncode, result.stderr[-2000:]
        assert [(True,)] == db.query("SELECT to_regclass('public.orders') IS NOT NULL")


class TestDown:
    def test_down_runs_the_revert_scripts_newest_first(self, db: TestDatabase, shop: Path) -> None:
        assert 0 == up(db, shop).returncode
        result = cmd("down", db, shop, "--steps", "1", "--yes")
        assert 0 == result.returncode, result.stderr[-2000:]
        assert ["id", "name"] == columns(db, "customers")
        result = cmd("down", db, shop, "--steps", "2", "--yes")
        assert 0 == result.returncode, result.stderr[-2000:]
        assert not {"customers", "orders"} & db.tables()
        assert [] == db.history()
        assert 0 == up(db, shop).returncode  # and deployed again
        assert ["id", "name", "email"] == columns(db, "customers")


class TestVerify:
    def test_failing_verify_reverts_the_change_and_exits_4(self, db: TestDatabase, shop: Path) -> None:
        (shop / "verify/orders.sql").write_text("BEGIN;\nSELECT no_such_column FROM orders;\nROLLBACK;\n")
        result = up(db, shop)
        assert 4 == result.returncode, result.stderr[-3000:]
        assert "verify/orders.sql" in result.stderr and "reverted with revert/orders.sql" in result.stderr
        assert "orders" not in db.tables()  # its revert script ran
        assert "customers" in db.tables()  # the change before it stays deployed (sqitch --mode change)
        assert [change_ids(shop)[0]] == [r["migration_id"] for r in db.history()]
        assert result.find("change_verify_failed") and result.find("change_reverting")
        # --no-verify skips the verify scripts: the same project deploys.
        skipped = up(db, shop, "--no-verify")
        assert 0 == skipped.returncode, skipped.stderr[-2000:]
        assert [] == skipped.find("change_verified")
        assert {"customers", "orders"} <= db.tables()


    def test_failing_verify_without_revert_script_is_recorded_failed(self, db: TestDatabase, shop: Path) -> None:
        """Nothing can undo the deploy: the change stays recorded as failed, and the next run refuses (exit 5)."""
        (shop / "verify/orders.sql").write_text("SELECT no_such_column FROM orders;\n")
        (shop / "revert/orders.sql").unlink()
        result = up(db, shop)
        assert 4 == result.returncode, result.stderr[-3000:]
        assert "its deploy is NOT undone: it is recorded as failed" in result.find("error")[0]["error"]
        assert "orders" in db.tables()
        states = {r["migration_id"]: r["state"] for r in db.history()}
        assert "failed" == states[change_ids(shop)[1]]
        assert 5 == up(db, shop).returncode

    @pytest.mark.parametrize("revert", ["DROP TABLE no_such_table;\n", "BEGIN;\nDROP TABLE no_such_table;\nCOMMIT;\n"])
    def test_failing_revert_after_failing_verify(self, db: TestDatabase, shop: Path, revert: str) -> None:
        """The revert fails too: exit 4 saying so; the change is left unfinished, never recorded as applied."""
        (shop / "verify/orders.sql").write_text("SELECT no_such_column FROM orders;\n")
        (shop / "revert/orders.sql").write_text(revert)
        result = up(db, shop)
        assert 4 == result.returncode, result.stderr[-3000:]
        assert "reverting it failed too" in result.find("error")[0]["error"]
        states = {r["migration_id"]: r["state"] for r in db.history()}
        assert states[change_ids(shop)[1]] in ("failed", "rolling_back")
        assert 5 == up(db, shop).returncode

    @pytest.mark.parametrize("dialect", ["postgresql"])
    def test_single_transaction_needs_no_verify(self, db: TestDatabase, shop: Path) -> None:
        for path in shop.glob("deploy/*.sql"):  # no own transactions: --single-transaction could take them
            path.write_text(path.read_text().replace("BEGIN;\n", "").replace("COMMIT;\n", ""))
        result = up(db, shop, "--single-transaction")
        assert 2 == result.returncode, result.stderr[-2000:]
        assert "pass --no-verify" in result.find("error")[0]["error"]
        assert 0 == up(db, shop, "--single-transaction", "--no-verify").returncode
        assert ["id", "name", "email"] == columns(db, "customers")


class TestRefused:
    @pytest.mark.parametrize("plan_line, words", [
        (f"orders [nope] 2024-01-11T10:00:00Z {WHO}", 'line 6: Unknown change "nope" required by change "orders"'),
        (f"orders [customers refunds] 2024-01-11T10:00:00Z {WHO}\nrefunds [orders] 2024-01-11T10:00:00Z {WHO}",
         'line 6: Change "orders" planned 1 change before required change "refunds"'),
        (f"orders [!customers] 2024-01-11T10:00:00Z {WHO}", 'line 6: change "orders" conflicts with "customers"'),
    ])
    def test_dependency_problems_are_exit_5_before_anything_runs(self, db: TestDatabase, shop: Path, plan_line: str,
                                                                 words: str) -> None:
        lines = PLAN.splitlines()
        lines[5] = plan_line
        (shop / "sqitch.plan").write_text("\n".join(lines) + "\n")
        (shop / "deploy/refunds.sql").write_text("SELECT 1;\n")
        result = up(db, shop)
        assert 5 == result.returncode, result.stderr[-2000:]
        [error] = result.find("error")
        assert words in error["error"]
        assert set() == db.tables() - {db.table}
        assert "Traceback" not in result.stderr

    def test_psql_meta_command_refused(self, db: TestDatabase, shop: Path) -> None:
        (shop / "deploy/orders.sql").write_text("BEGIN;\n\\set ON_ERROR_STOP 1\nSELECT 1;\nCOMMIT;\n")
        result = up(db, shop)
        assert 5 == result.returncode
        [error] = result.find("error")
        assert error["error"].startswith("deploy/orders.sql: line 2: psql meta-command \\set: ")
        assert set() == db.tables() - {db.table}


# sqitch's own tutorials (sqitchers/sqitch-intro: PostgreSQL, with reworked changes and pgcrypto; and the SQLite one).
# Not here: sqitchers/sqitch-mysql-intro (its first change creates a server-wide user, which two databases on one
# server cannot both create) and inqwise-opinion/opinion-sqitch-mysql (its change 104 needs MySQL 8's collation
# utf8mb4_0900_ai_ci, which the test server, MariaDB 10.11, lacks; its first 103 changes apply, and its
# `DROP PROCEDURE ...; CREATE PROCEDURE ... END;$$` scripts gave the splitter test test_several_statements_before_one_
# delimiter in tests/unit/test_statements.py).
INTROS = (
    RealProject("sqitchers/sqitch-intro", "140b3a56bad10ebf11b485590d280f2d88ef537e", ".", "sqitch", "postgresql"),
    RealProject("sqitchers/sqitch-sqlite-intro", "c599af18b061de3aec203b3ceec192a7ece4b624", ".", "sqitch", "sqlite"),
)


def sqitch_deploy_steps(folder: Path) -> list[tuple[str, bool]]:
    """What `sqitch deploy` hands the engine's client: each change's deploy script in plan order (psql/sqlite3 run
    the file as written, with its own BEGIN/COMMIT)."""
    return [((folder / "deploy" / c.script_name).read_text(), False) for c in sqitch.load_project(folder).changes]


@pytest.mark.parametrize("real", INTROS, ids=lambda p: p.id)
def test_real_project_matches_sqitch(real: RealProject, tmp_path: Path) -> None:
    """premigrate deploys (and verifies) every change to the schema the engine's client gets from the same scripts in
    plan order; a second run has nothing to do; `down` then reverts every change."""
    folder = extract(real, tmp_path / "src")
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    ours = TestDatabase.create(real.dialect, tmp_path / "ours")
    theirs = TestDatabase.create(real.dialect, tmp_path / "theirs")
    try:
        result = up(ours, folder, "--format", "sqitch", "--lint", "off")
        assert 0 == result.returncode, result.stderr[-3000:]
        assert len(result.find("change_verified")) == len(sqitch.load_project(folder).changes)
        again = up(ours, folder)
        assert 0 == again.returncode and again.find("nothing_to_do"), again.stderr[-2000:]
        apply_with_client(theirs, sqitch_deploy_steps(folder), tmp_path)
        assert schema(theirs) == schema(ours)
        assert schema(ours)
        reverted = cmd("down", ours, folder, "--steps", "1000", "--yes")
        assert 0 == reverted.returncode, reverted.stderr[-3000:]
        assert len(reverted.find("rolled_back")) == len(sqitch.load_project(folder).changes)
        assert [] == ours.history()
    finally:
        ours.drop()
        theirs.drop()


@pytest.mark.parametrize("dialect", ["mysql"])
def test_mysql_verify_with_sqitch_checkit(db: TestDatabase, shop: Path) -> None:
    """sqitch's MySQL verify scripts call sqitch.checkit() (Engine/mysql.pm `_create_check_function`): without it on
    the server the run is refused before anything changes (exit 5); with it, a check that holds verifies the change,
    and one that fails raises its message and reverts the change (exit 4)."""
    (shop / "verify/orders.sql").write_text(
        "SELECT sqitch.checkit(COUNT(*), 'no table orders') FROM information_schema.tables\n"
        " WHERE table_schema = DATABASE() AND table_name = 'orders';\n")
    made_registry = not db.query("SHOW DATABASES LIKE 'sqitch'")
    try:
        if made_registry:
            refused = up(db, shop)
            assert 5 == refused.returncode, refused.stderr[-2000:]
            assert "verify/orders.sql calls sqitch.checkit()" in refused.find("error")[0]["error"]
            assert set() == db.tables() - {db.table}
            db.admin("CREATE DATABASE sqitch")
            db.admin(CHECKIT_SQL)
        assert 0 == up(db, shop).returncode
        assert 0 == cmd("down", db, shop, "--steps", "2", "--yes").returncode
        (shop / "verify/orders.sql").write_text((shop / "verify/orders.sql").read_text().replace("'orders'", "'nope'"))
        failed = up(db, shop)
        assert 4 == failed.returncode, failed.stderr[-2000:]
        assert "no table orders" in failed.find("error")[0]["error"] and "orders" not in db.tables()
    finally:
        if made_registry:
            db.admin("DROP DATABASE IF EXISTS sqitch")



def deployed_by_sqitch(db: TestDatabase, shop: Path) -> list[str]:
    """The database as sqitch leaves it after deploying `customers` and `orders`: their tables, and their rows in
    sqitch.changes (the columns of Engine/pg.sql). Returns the plan's change ids."""
    ids = change_ids(shop)
    for script in ("deploy/customers@v1.0.sql", "deploy/orders.sql"):
        db.execute(SCRIPTS[script].replace("BEGIN;\n", "").replace("COMMIT;\n", ""))
    db.execute("CREATE SCHEMA sqitch")
    db.execute("CREATE TABLE sqitch.changes (change_id TEXT PRIMARY KEY, script_hash TEXT, change TEXT NOT NULL, "
               "project TEXT NOT NULL, note TEXT NOT NULL, committed_at TIMESTAMPTZ NOT NULL, committer_name TEXT "
               "NOT NULL, committer_email TEXT NOT NULL, planned_at TIMESTAMPTZ NOT NULL, planner_name TEXT NOT "
               "NULL, planner_email TEXT NOT NULL)")
    for n, (change_id, name) in enumerate(zip(ids, ("customers", "orders"))):
        db.execute(f"INSERT INTO sqitch.changes VALUES ('{change_id}', NULL, '{name}', 'shop', '', now() + "
                   f"interval '{n} second', 'me', 'me@x', now(), 'me', 'me@x')")
    return ids

class TestBaselineFromSqitch:
    @pytest.mark.parametrize("dialect", ["postgresql"])
    @pytest.mark.parametrize("how", ["baseline", "up --baseline-from"])
    def test_registry_matched_by_change_id(self, db: TestDatabase, shop: Path, how: str) -> None:
        """A database sqitch deployed up to `orders`: `baseline --from sqitch` (or `up --baseline-from sqitch`)
        adopts the two changes by their ids (sqitch.changes.change_id, Engine/pg.sql), and `up` then deploys only
        the reworked `customers`."""
        ids = deployed_by_sqitch(db, shop)
        if how == "baseline":
            result = cmd("baseline", db, shop, "--from", "sqitch")
            assert 0 == result.returncode, result.stderr[-2000:]
            assert sorted(ids[:2]) == [r["migration_id"] for r in db.history()]
            applied = up(db, shop)
        else:
            applied = up(db, shop, "--baseline-from", "sqitch")
        assert 0 == applied.returncode, applied.stderr[-2000:]
        assert sorted(ids) == [r["migration_id"] for r in db.history()]
        assert ["customers"] == [e["description"] for e in applied.find("migration_applied")]
        assert ["id", "name", "email"] == columns(db, "customers")


class TestFolder:
    def test_loose_sql_files_beside_the_plan(self, db: TestDatabase, shop: Path) -> None:
        """sqitch runs only the scripts its plan names: `auto` refuses a loose .sql file (it would never run),
        `--format sqitch` ignores it as sqitch does."""
        (shop / "001_extra.sql").write_text("CREATE TABLE extra (id INTEGER);\n")
        refused = up(db, shop)
        assert 5 == refused.returncode and "001_extra.sql: .sql files beside sqitch.plan" in \
            refused.find("error")[0]["error"]
        assert 0 == up(db, shop, "--format", "sqitch").returncode
        assert "extra" not in db.tables()

    @pytest.mark.parametrize("dialect", ["sqlite"])
    def test_new_refuses_a_sqitch_project(self, db: TestDatabase, shop: Path) -> None:
        result = cmd("new", db, shop, "add_things")
        assert 2 == result.returncode
        assert "is a sqitch project" in result.find("error")[0]["error"] and "sqitch add" in result.stderr
        assert [] == list(shop.glob("*.sql"))

    @pytest.mark.parametrize("dialect", ["sqlite"])
    def test_new_format_sqitch_elsewhere_is_refused(self, db: TestDatabase, tmp_path: Path) -> None:
        """`new --format sqitch` in a folder that is not a project yet: a usage error pointing at `sqitch add`, not
        an internal error."""
        folder = tmp_path / "plain"
        folder.mkdir()
        result = cmd("new", db, folder, "add_things", "--format", "sqitch")
        assert 2 == result.returncode, result.stderr[-2000:]
        assert "new does not write sqitch changes" in result.find("error")[0]["error"]
        assert [] == list(folder.iterdir())


class TestBaselineFromSqitchEditedPlan:
    @pytest.mark.parametrize("dialect", ["postgresql"])
    @pytest.mark.parametrize("how", ["baseline", "up --baseline-from"])
    def test_deployed_change_whose_plan_line_was_edited_is_refused(self, db: TestDatabase, shop: Path,
                                                                   how: str) -> None:
        """sqitch deployed `customers` and `orders`; the plan line of `orders` was edited since (its note), so its
        change id is another. sqitch refuses such a plan ("Cannot find change ... in sqitch.plan", Engine.pm
        _sync_plan): adopting `customers` only would leave `orders` pending and deploy it again on top of the
        table sqitch made. Refused, nothing recorded."""
        ids = deployed_by_sqitch(db, shop)
        plan = shop / "sqitch.plan"
        plan.write_text(plan.read_text().replace("# Orders of a customer.", "# Orders of a customer, edited."))
        if how == "baseline":
            result = cmd("baseline", db, shop, "--from", "sqitch")
        else:
            result = up(db, shop, "--baseline-from", "sqitch")
        assert 5 == result.returncode, result.stderr[-2000:]
        error = result.find("error")[0]["error"]
        assert 'change "orders"' in error and "sqitch.plan" in error, error
        assert db.table not in db.tables() and "orders" in db.tables()


class TestVerifyLeavesATransactionOpen:
    def test_what_it_wrote_is_discarded(self, db: TestDatabase, tmp_path: Path) -> None:
        """verify/a.sql opens a transaction and writes, without ROLLBACK. sqitch runs it in a client session of its
        own (psql, mysql, sqlite3) that ends right after, discarding the open transaction; premigrate does the same,
        so the next change's commit does not keep the verify's row."""
        root = project(tmp_path / "p", f"%project=p\n\na 2024-01-10T10:00:00Z {WHO}\nb 2024-01-11T10:00:00Z {WHO}\n",
                       {"deploy/a.sql": "CREATE TABLE a_t (id INTEGER);\n",
                        "verify/a.sql": "BEGIN;\nINSERT INTO a_t VALUES (1);\nSELECT id FROM a_t;\n",
                        "deploy/b.sql": "CREATE TABLE b_t (id INTEGER);\n"})
        (root / "sqitch.conf").write_text(f"[core]\n\tengine = {ENGINE[db.dialect]}\n")
        result = up(db, root)
        assert 0 == result.returncode, result.stderr[-2000:]
        assert ["a"] == [e["description"] for e in result.find("change_verified")]
        assert [(0,)] == [tuple(r) for r in db.query("SELECT COUNT(*) FROM a_t")]
        assert {"a_t", "b_t"} <= db.tables()
