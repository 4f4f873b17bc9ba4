"""The fleet workload of bench/bench.py: one folder of 20 migrations applied to many targets.

PostgreSQL: 1,000 schemas in one database; MariaDB: 200 databases (both times --fleet-scale). Compared, each on a
fresh set of targets: premigrate `up --targets` at --concurrency 1, 4 and 8; a shell loop of single-target premigrate
runs; a shell loop of dbmate runs (its schema chosen with `search_path` in the URL). Each run is checked afterwards:
every target must hold its 20 tables and its history table.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench import Bench, Server

FLEET_MIGRATIONS = 20
FLEET_TARGETS = {"postgresql": 1000, "mysql": 200}
CONCURRENCY = (1, 4, 8)
# What the project asks of the fleet mode on 1,000 PostgreSQL schemas: at least this many times the loop of
# single-target premigrate runs (MariaDB's figure is reported beside it, with no target of its own).
FLEET_SPEEDUP_MIN = 5.0


def sizes(scale: float) -> dict[str, int]:
    return {db: max(4, round(n * scale)) for db, n in FLEET_TARGETS.items()}


def _loop_script(path: Path, lines: list[str]) -> Path:
    path.write_text("set -e\n" + "\n".join(lines) + "\n")
    return path


class FleetRun:
    def __init__(self, bench: Bench, server: Server, targets: int) -> None:
        self.bench = bench
        self.server = server
        self.targets = targets
        self.work: Path = bench.work
        self.rows: list[dict[str, Any]] = []

    # -- the targets --------------------------------------------------------------------------------------------

    def names(self) -> list[str]:
        return [f"tenant_{i:04d}" for i in range(self.targets)]

    def fresh(self, create_schemas: bool) -> tuple[str | None, list[str]]:
        """A fresh set of targets: one database for the schemas (PostgreSQL), or the databases (MariaDB)."""
        if self.server.dialect == "postgresql":
            db = self.bench.dbs.create(self.server)
            if create_schemas:
                with self.server.connect(db) as conn:
                    for name in self.names():
                        conn.execute(f"CREATE SCHEMA {name}")
            return db, []
        return None, [self.bench.dbs.create(self.server) for _ in range(self.targets)]

    def drop(self, db: str | None, databases: list[str]) -> None:
        for name in ([db] if db else []) + databases:
            self.bench.dbs.drop(self.server, name)

    def verify(self, tool: str, db: str | None, databases: list[str], history: str) -> None:
        from bench import BenchError

        want = self.targets * (FLEET_MIGRATIONS + 1)
        with self.server.connect(db) as conn:
            cur = conn.cursor()
            if self.server.dialect == "postgresql":
                cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'tenant\\_%'")
            else:
                cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema IN ("
                            + ",".join(["%s"] * len(databases)) + ")", tuple(databases))
            got = int(cur.fetchone()[0])
        if got != want:
            raise BenchError(f"{tool} left {got} tables in the fleet on {self.server.label}, expected {want} "
                             f"({self.targets} targets x ({FLEET_MIGRATIONS} + {history}))")

    # -- the tools ----------------------------------------------------------------------------------------------

    def premigrate_fleet(self, db: str | None, databases: list[str], concurrency: int) -> Any:
        from bench import VENV_BIN, Tool

        listed = self.work / f"fleet-{self.server.dialect}.txt"
        if self.server.dialect == "postgresql":
            listed.write_text("".join(f"schema={name}\n" for name in self.names()))
            url = self.server.url("postgresql", db or "")
        else:
            listed.write_text("".join(f"database={name}\n" for name in databases))
            url = self.server.url("mysql", self.server.admin_db)
        return Tool(f"premigrate --concurrency {concurrency}",
                    [str(VENV_BIN / "premigrate"), "up", "--dir", str(self.bench.folders["premigrate-fleet"]),
                     "--targets", str(listed), "--concurrency", str(concurrency), "--log-level", "warning"],
                    {"DATABASE_URL": url})

    def premigrate_loop(self, db: str | None, databases: list[str]) -> Any:
        from bench import VENV_BIN, Tool

        exe, folder = shlex.quote(str(VENV_BIN / "premigrate")), shlex.quote(str(self.bench.folders["premigrate-fleet"]))
        if self.server.dialect == "postgresql":
            url = shlex.quote(self.server.url("postgresql", db or ""))
            lines = [f"DATABASE_URL={url} {exe} up --dir {folder} --schema {name} --log-level warning"
                     for name in self.names()]
        else:
            lines = [f"DATABASE_URL={shlex.quote(self.server.url('mysql', name))} {exe} up --dir {folder} "
                     "--log-level warning" for name in databases]
        script = _loop_script(self.work / "fleet-loop-premigrate.sh", lines)
        return Tool("loop of premigrate runs", ["sh", str(script)])

    def dbmate_loop(self, db: str | None, databases: list[str]) -> Any:
        from bench import VENV_BIN, Tool

        exe = shlex.quote(str(VENV_BIN / "dbmate"))
        folder = shlex.quote(str(self.bench.folders["dbmate-fleet"]))
        if self.server.dialect == "postgresql":
            urls = [self.server.url("postgres", db or "", query=f"sslmode=disable&search_path={name}")
                    for name in self.names()]
        else:
            urls = [self.server.url("mysql", name) for name in databases]
        lines = [f"DATABASE_URL={shlex.quote(url)} {exe} --no-dump-schema --migrations-dir {folder} up"
                 for url in urls]
        script = _loop_script(self.work / "fleet-loop-dbmate.sh", lines)
        return Tool("loop of dbmate runs", ["sh", str(script)])

    # -- the workload -------------------------------------------------------------------------------------------

    def run(self) -> list[dict[str, Any]]:
        candidates: list[tuple[str, Any, bool, str]] = [
            (f"premigrate --concurrency {c}", lambda db, dbs, c=c: self.premigrate_fleet(db, dbs, c), False,
             "premigrate_history") for c in CONCURRENCY]
        candidates += [("loop of premigrate runs", self.premigrate_loop, False, "premigrate_history"),
                       # dbmate does not create the schema named in search_path: they exist before its loop starts.
                       ("loop of dbmate runs", self.dbmate_loop, True, "schema_migrations")]
        for name, make, create_schemas, history in candidates:
            db, databases = self.fresh(create_schemas)
            try:
                out = self.bench.runner.run(make(db, databases), f"fleet on {self.server.label}")
                self.verify(name, db, databases, history)
            finally:
                self.drop(db, databases)
            row = {"db": self.server.dialect, "tool": name, "targets": self.targets,
                   "migrations": FLEET_MIGRATIONS, "wall_s": round(out.wall_s, 3),
                   "targets_per_s": round(self.targets / out.wall_s, 2),
                   # CPU seconds per wall second of the run (premigrate: its one process; loops: every process):
                   # near 1.0 for the fleet, one interpreter is the limit; well below, the servers are.
                   "cpu_s": round(out.cpu_s or 0.0, 2), "cores_busy": round((out.cpu_s or 0.0) / out.wall_s, 2)}
            self.rows.append(row)
            self.bench.say(f"{self.server.label:10} fleet      {self.targets} targets  {name:26} "
                           f"{out.wall_s:7.2f} s  {row['targets_per_s']:7.2f} targets/s  CPU {row['cores_busy']:.2f} cores")
        return self.rows


def prepare(bench: Bench) -> None:
    from bench import write_dbmate_dir, write_premigrate_dir

    bench.folders["premigrate-fleet"] = write_premigrate_dir(bench.work / "premigrate-fleet", FLEET_MIGRATIONS)
    bench.folders["dbmate-fleet"] = write_dbmate_dir(bench.work / "dbmate-fleet", FLEET_MIGRATIONS)


def run(bench: Bench, server: Server, scale: float) -> list[dict[str, Any]]:
    started = time.monotonic()
    rows = FleetRun(bench, server, sizes(scale)[server.dialect]).run()
    bench.say(f"{server.label:10} fleet      done in {time.monotonic() - started:.0f} s")
    return rows


def targets(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fleet target: the best --concurrency at least FLEET_SPEEDUP_MIN times the loop of premigrate runs."""
    out = []
    for db in ("postgresql", "mysql"):
        mine = [r for r in rows if r["db"] == db]
        loop = next((r for r in mine if r["tool"] == "loop of premigrate runs"), None)
        fleet = [r for r in mine if r["tool"].startswith("premigrate --concurrency")]
        if not loop or not fleet:
            continue
        best = min(fleet, key=lambda r: r["wall_s"])
        speedup = loop["wall_s"] / best["wall_s"]
        measured = f"{speedup:.1f}× ({best['tool']}: {best['wall_s']:.1f} s vs {loop['wall_s']:.1f} s)"
        if db != "postgresql":  # the target is set on the 1,000 schemas; the MariaDB figure is reported beside it
            out.append({"target": f"fleet ({best['targets']} targets × {FLEET_MIGRATIONS}) against the loop of "
                                  "premigrate runs (reported)", "db": db, "value": speedup, "measured": measured,
                        "result": "n/a"})
            continue
        out.append({"target": f"fleet ({best['targets']} targets × {FLEET_MIGRATIONS}) ≥ {FLEET_SPEEDUP_MIN:.0f}× "
                              "the loop of premigrate runs", "db": db, "value": speedup, "measured": measured,
                    "result": "pass" if speedup >= FLEET_SPEEDUP_MIN else "MISS"})
    return out


def markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    label = {"postgresql": "PostgreSQL schemas", "mysql": "MariaDB databases"}
    lines = ["", f"Fleet: {FLEET_MIGRATIONS} migrations applied to every target, one run each (wall time from the "
             "first process start to the last exit):", "",
             "| targets | tool | wall s | targets/s | × the loop of premigrate runs | client CPU (cores busy) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        loop = next((x for x in rows if x["db"] == r["db"] and x["tool"] == "loop of premigrate runs"), None)
        ratio = f"{loop['wall_s'] / r['wall_s']:.1f}×" if loop else "—"
        lines.append(f"| {r['targets']} {label[r['db']]} | {r['tool']} | {r['wall_s']:.2f} | "
                     f"{r['targets_per_s']:.2f} | {ratio} | {r.get('cores_busy', 0):.2f} |")
    return "\n".join(lines) + "\n"
