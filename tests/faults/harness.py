"""The fault suite's machinery: databases reached with recognisable passwords, a ledger of every run (scanned for
those passwords), migrations whose every statement leaves a visible trace, the history/schema invariant, the
operator's way out of a statement in doubt, and a TCP proxy that can drop, stall or refuse."""

from __future__ import annotations

import os
import random
import select
import shutil
import site
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from tests.e2e.helpers import LiveCli, free_port, sleep_sql
from tests.support import CliResult, TestDatabase, cli_env, run_cli, server_url

# Distinct, recognisable passwords: any of them in any line a run prints is a leak. PostgreSQL's trust
# authentication ignores its password, so it travels in every URL without being checked.
PG_PASSWORD = "PgFaultPw-Q7x2Lm9"
MY_PASSWORD = "MyFaultPw-K4v8Rt3"
WRONG_PASSWORD = "WrongFaultPw-Z5n1Hc6"
ODD_PASSWORD = "Odd@Fault:Pw/Y3"  # needs percent-encoding in a URL: both spellings are scanned for
# The value of a secret placeholder (PREMIGRATE_PLACEHOLDER_APP_DB_PASSWORD) that migrations put in their SQL.
PLACEHOLDER_PASSWORD = "PhFaultPwJ3w6Pd8"
SECRETS = (PG_PASSWORD, MY_PASSWORD, WRONG_PASSWORD, ODD_PASSWORD, PLACEHOLDER_PASSWORD)
HOST = socket.gethostname()
APPLICATION_NAME = f"premigrate@{HOST}"[:63]
SEED = int(os.environ.get("PREMIGRATE_FAULT_SEED") or random.SystemRandom().randrange(1, 2**31))
LIVENESS_S = 60.0


def secret_spellings() -> set[str]:
    return {form for secret in SECRETS for form in (secret, quote(secret, safe=""))}


# -- the ledger: every run, every line, every exit code ----------------------------------------------------------

@dataclass
class ScenarioRecord:
    runs: int = 0
    invariant_checks: int = 0
    invariant_failures: int = 0
    exit_codes: Counter[int] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


class Ledger:
    """Collects what the summary table shows, and scans each run's output for a password the moment it ends."""

    def __init__(self) -> None:
        self.scenarios: dict[str, ScenarioRecord] = {}
        self.lines_scanned = 0
        self.runs_scanned = 0
        self.leaks: list[str] = []

    def scenario(self, name: str) -> ScenarioRecord:
        return self.scenarios.setdefault(name, ScenarioRecord())

    def scan(self, text: str, what: str) -> None:
        lines = text.splitlines()
        self.lines_scanned += len(lines)
        self.runs_scanned += 1
        spellings = secret_spellings()
        for line in lines:
            for secret in spellings:
                if secret in line:
                    self.leaks.append(f"{what}: {line[:300]}")
                    raise AssertionError(f"a password was printed by {what}: {line[:300]}")

    def record(self, scenario: str, result: CliResult, what: str = "premigrate") -> CliResult:
        self.scan(result.stdout + "\n" + result.stderr, f"{what} ({scenario})")
        rec = self.scenario(scenario)
        rec.runs += 1
        rec.exit_codes[result.returncode] += 1
        return result

    def invariant(self, scenario: str, held: bool) -> None:
        rec = self.scenario(scenario)
        rec.invariant_checks += 1
        rec.invariant_failures += 0 if held else 1

    def note(self, scenario: str, text: str) -> None:
        self.scenario(scenario).notes.append(text)

    def table(self) -> list[str]:
        rows = [("scenario", "runs", "invariant held", "exit codes seen")]
        for name, rec in self.scenarios.items():
            held = (f"{rec.invariant_checks - rec.invariant_failures}/{rec.invariant_checks}"
                    if rec.invariant_checks else "-")
            codes = " ".join(f"{code}x{n}" for code, n in sorted(rec.exit_codes.items())) or "-"
            rows.append((name, str(rec.runs), held, codes))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        out = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        out.insert(1, "  ".join("-" * w for w in widths))
        for name, rec in self.scenarios.items():
            out.extend(f"  {name}: {note}" for note in rec.notes)
        out.append(f"password scan: {self.lines_scanned} lines of {self.runs_scanned} runs, "
                   f"{len(self.leaks)} leak(s)")
        return out


LEDGER = Ledger()


def premigrate(scenario: str, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
               timeout: float = 120) -> CliResult:
    """Run the CLI to the end; its output goes through the ledger. Outliving `timeout` fails the test."""
    try:
        result = run_cli(*args, env=env, cwd=cwd, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stderr or b"").decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        LEDGER.scan(output, f"premigrate ({scenario})")
        LEDGER.scenario(scenario).exit_codes[-1] += 1  # -1: hung, killed by the test
        raise AssertionError(f"premigrate {' '.join(args[:1])} still running {timeout} s later "
                             f"({scenario}); stderr:\n{output}") from None
    return LEDGER.record(scenario, result)


STARTED = ("migration_started", "migration_resumed")


def wait_for_work(live: LiveCli, timeout: float = LIVENESS_S) -> bool:
    """True once the run starts (or resumes) a migration; False if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(f'"event": "{name}"' in line for line in list(live.lines) for name in STARTED):
            return True
        if live.proc.poll() is not None:
            time.sleep(0.05)  # let the reader thread catch the last lines
            return any(f'"event": "{name}"' in line for line in list(live.lines) for name in STARTED)
        time.sleep(0.005)
    raise AssertionError(f"no migration started within {timeout} s:\n{''.join(live.lines)}")


def finish_live(scenario: str, live: LiveCli, timeout: float = LIVENESS_S) -> CliResult:
    return LEDGER.record(scenario, live.finish(timeout))


def single_error(result: CliResult) -> str:
    """The one `error` event of a failed run: its message is one line and no traceback was printed."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    for line in result.stderr.splitlines():
        assert not line.strip() or line.startswith("{"), f"a stderr line that is not a JSON log event: {line!r}"
    errors = result.find("error")
    assert 1 == len(errors), result.stderr
    message = errors[0]["error"]
    assert "\n" not in message, message
    assert not result.find("internal_error"), result.stderr
    return message


# -- databases ----------------------------------------------------------------------------------------------------

@dataclass
class FaultDatabase:
    """A throwaway database plus the URL premigrate uses for it (with a password) and a way to look inside."""

    db: TestDatabase
    url: str  # what premigrate gets
    user: str | None = None  # MariaDB: the password-protected user premigrate logs in as

    @property
    def dialect(self) -> str:
        return self.db.dialect

    _conn: Any = field(default=None, repr=False)

    def q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """A query on one long-lived inspection session (a connection per query would dominate the suite's time)."""
        if self.dialect == "sqlite":
            return self.db.query(sql, params)
        for attempt in (1, 2):
            try:
                if self._conn is None:
                    self._conn = self.db.connect()
                if self.dialect == "postgresql":
                    cur = self._conn.execute(sql, params or None)
                    return cur.fetchall() if cur.description is not None else []
                with self._conn.cursor() as cur:
                    cur.execute(sql, params or None)
                    return list(cur.fetchall())
            except Exception:
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    def url_via(self, port: int, **query: str) -> str:
        """The same database through 127.0.0.1:`port` (a proxy), optionally with extra query parameters."""
        parts = urlsplit(self.url)
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{port}"
        netloc_s = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        q = "&".join(f"{k}={v}" for k, v in query.items())
        return urlunsplit((parts.scheme, netloc_s, parts.path, q, ""))

    def env(self, **extra: str) -> dict[str, str]:
        return {"DATABASE_URL": self.url, **extra}

    def premigrate_sessions(self) -> list[int]:
        """Ids of the server sessions premigrate has open on this database (by application name / user)."""
        if self.dialect == "postgresql":
            rows = self.q("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
                          (self.db.name, APPLICATION_NAME))
        elif self.dialect == "mysql":
            rows = self.q("SELECT id FROM information_schema.processlist WHERE user = %s AND db = %s",
                          (self.user, self.db.name))
        else:
            return []
        return [int(r[0]) for r in rows]

    def terminate_sessions(self, ids: list[int]) -> int:
        killed = 0
        for pid in ids:
            try:
                if self.dialect == "postgresql":
                    self.q("SELECT pg_terminate_backend(%s)", (pid,))
                else:
                    self.q(f"KILL {pid}")
                killed += 1
            except Exception:  # noqa: BLE001 - the session ended by itself meanwhile
                pass
        return killed

    def quiesce(self, timeout: float = LIVENESS_S) -> None:
        """Wait until no premigrate session is left on the server (a killed client's statement runs to its end)."""
        deadline = time.monotonic() + timeout
        while self.premigrate_sessions():
            assert time.monotonic() < deadline, "premigrate's server sessions outlived their process"
            time.sleep(0.02)


def make_database(dialect: str, tmp_path: Path, mysql_user: tuple[str, str] | None = None) -> FaultDatabase:
    db = TestDatabase.create(dialect, tmp_path)
    if dialect == "sqlite":
        return FaultDatabase(db, db.url)
    parts = urlsplit(db.url)
    if dialect == "postgresql":
        netloc = f"{parts.username or 'postgres'}:{PG_PASSWORD}@{parts.hostname}:{parts.port or 5432}"
        return FaultDatabase(db, urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")))
    assert mysql_user is not None
    user, password = mysql_user
    db.admin(f"GRANT ALL PRIVILEGES ON `{db.name}`.* TO '{user}'@'%'")
    netloc = f"{user}:{quote(password, safe='')}@{parts.hostname}:{parts.port or 3306}"
    return FaultDatabase(db, urlunsplit(("mysql", netloc, parts.path, "", "")), user=user)


def create_mysql_user() -> tuple[str, str]:
    user = f"pm_fault_{uuid.uuid4().hex[:8]}"
    admin = TestDatabase("mysql", server_url("mysql"), "mysql", admin_url=server_url("mysql"))
    admin.admin(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{MY_PASSWORD}'")
    # 127.0.0.1 connections may be matched as 'localhost', where an anonymous user could shadow '%'.
    admin.admin(f"CREATE USER '{user}'@'localhost' IDENTIFIED BY '{MY_PASSWORD}'")
    return user, MY_PASSWORD


def drop_mysql_user(user: str) -> None:
    admin = TestDatabase("mysql", server_url("mysql"), "mysql", admin_url=server_url("mysql"))
    for host in ("%", "localhost"):
        admin.admin(f"DROP USER IF EXISTS '{user}'@'{host}'")


# -- migrations whose every statement leaves a trace --------------------------------------------------------------

@dataclass(frozen=True)
class Stmt:
    sql: str
    effect: tuple[str, str] | None  # ("table", name) | ("index", name) | ("mark", version) | None (no trace)


@dataclass
class Spec:
    """The migrations written to a folder, statement by statement, with what each statement leaves behind."""

    dialect: str
    no_transaction: bool = False
    migrations: dict[int, list[Stmt]] = field(default_factory=dict)

    def statements(self, version: int) -> list[Stmt]:
        return self.migrations[version]


MARKS = Stmt("CREATE TABLE marks (v INTEGER NOT NULL)", ("table", "marks"))


def traced_migration(dialect: str, version: int, sleep_s: float, *, index: bool, concurrently: bool = False
                     ) -> list[Stmt]:
    """A table, optionally an index on it, a pause, and a row in `marks`: each statement's effect is visible."""
    stmts = [Stmt(f"CREATE TABLE t_{version} (id INTEGER PRIMARY KEY, note VARCHAR(20))", ("table", f"t_{version}"))]
    if sleep_s:
        stmts.append(Stmt(sleep_sql(dialect, sleep_s).rstrip(";"), None))
    if index:
        how = "CONCURRENTLY " if concurrently else ""
        stmts.append(Stmt(f"CREATE INDEX {how}i_{version} ON t_{version} (note)", ("index", f"i_{version}")))
    stmts.append(Stmt(f"INSERT INTO marks (v) VALUES ({version})", ("mark", str(version))))
    return stmts


def write_spec(directory: Path, spec: Spec, versions: list[int]) -> None:
    for version in versions:
        header = "-- premigrate:no-transaction\n" if spec.no_transaction else ""
        body = "".join(f"{s.sql};\n" for s in spec.migrations[version])
        (directory / f"{version:04d}_step_{version}.sql").write_text(header + body)


# -- the invariant: the history matches the schema ----------------------------------------------------------------

@dataclass
class Snapshot:
    tables: set[str]
    indexes: dict[str, bool]  # name -> valid
    marks: Counter[str]
    history: dict[str, dict[str, Any]]


HISTORY_COLUMNS = ("migration_id", "version", "kind", "script", "checksum", "state", "statements_done",
                   "statements_total", "statement_started", "error")


def snapshot(fdb: FaultDatabase) -> Snapshot:
    q = fdb.q
    if fdb.dialect == "sqlite" and not (fdb.db.path and fdb.db.path.exists()):
        return Snapshot(set(), {}, Counter(), {})
    if fdb.dialect == "postgresql":
        tables = {r[0] for r in q("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        rows = q("SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                 "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'")
        indexes = {r[0]: bool(r[1]) for r in rows}
    elif fdb.dialect == "mysql":
        tables = {r[0] for r in q("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")}
        rows = q("SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE()")
        indexes = {r[0]: True for r in rows}
    else:
        rows = q("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL")
        tables = {name for kind, name in rows if kind == "table" and not name.startswith("sqlite_")}
        indexes = {name: True for kind, name in rows if kind == "index"}
    marks: Counter[str] = Counter()
    if "marks" in tables:
        marks.update(str(r[0]) for r in q("SELECT v FROM marks"))
    history = {}
    if "premigrate_history" in tables:
        for r in q(f"SELECT {', '.join(HISTORY_COLUMNS)} FROM premigrate_history"):
            history[str(r[0])] = dict(zip(HISTORY_COLUMNS, r))
        scan_history(fdb)
    return Snapshot(tables, indexes, marks, history)


def scan_history(fdb: FaultDatabase) -> None:
    """The password scan over everything the history table stores: every column of every row, as text."""
    rows = fdb.q("SELECT * FROM premigrate_history")
    LEDGER.scan("\n".join(" ".join(str(v) for v in row) for row in rows), f"history table ({fdb.dialect})")


def _present(snap: Snapshot, effect: tuple[str, str]) -> bool:
    kind, name = effect
    if kind == "table":
        return name in snap.tables
    if kind == "index":
        return name in snap.indexes
    return snap.marks[name] > 0


def invariant_problems(fdb: FaultDatabase, spec: Spec, snap: Snapshot | None = None) -> list[str]:
    """Everything that breaks "the history table matches the schema"; [] when it holds.

    Applied: every effect exists (marks exactly once). No row: no effect exists. With statement-by-statement
    bookkeeping (MySQL, no-transaction files), an unfinished row must describe the schema: statements up to
    `statements_done` took effect, none after `statement_started`, and only the statement in doubt may be either.
    """
    snap = snap or snapshot(fdb)
    stepwise = spec.no_transaction or fdb.dialect == "mysql"
    problems = []
    for version, stmts in spec.migrations.items():
        row = snap.history.get(str(version))
        for i, stmt in enumerate(stmts, start=1):
            if stmt.effect is None:
                continue
            present = _present(snap, stmt.effect)
            if stmt.effect[0] == "mark" and snap.marks[stmt.effect[1]] > 1:
                problems.append(f"version {version}: its row in marks was inserted {snap.marks[stmt.effect[1]]} times")
            if row is None:
                must: bool | None = False
            elif row["state"] == "applied":
                must = True
            elif not stepwise:
                problems.append(f"version {version}: state {row['state']!r} on a transactional run")
                continue
            else:
                done, started = int(row["statements_done"]), int(row["statement_started"])
                must = True if i <= done else (None if i <= started else False)
            if must is not None and present != must:
                problems.append(f"version {version} ({row['state'] if row else 'no row'}): statement {i} "
                                f"{stmt.effect} {'missing' if must else 'exists'}")
    for migration_id in snap.history:
        if migration_id.isdigit() and int(migration_id) not in spec.migrations:
            problems.append(f"history row {migration_id} has no migration")
    return problems


def check_invariant(scenario: str, fdb: FaultDatabase, spec: Spec) -> Snapshot:
    snap = snapshot(fdb)
    problems = invariant_problems(fdb, spec, snap)
    LEDGER.invariant(scenario, not problems)
    assert not problems, f"invariant broken (seed {SEED}): {problems}"
    return snap


def all_applied(spec: Spec, snap: Snapshot) -> bool:
    return all(snap.history.get(str(v), {}).get("state") == "applied" for v in spec.migrations)


# -- the operator settles a statement in doubt ----------------------------------------------------------------------

def unsettled(snap: Snapshot) -> list[dict[str, Any]]:
    """Rows the next `up` refuses: failed, or in progress with a statement in doubt."""
    return [r for r in snap.history.values()
            if r["state"] == "failed" or (r["state"] == "in_progress"
                                          and int(r["statement_started"]) > int(r["statements_done"]))]


def settle(scenario: str, fdb: FaultDatabase, spec: Spec, row: dict[str, Any], refusal: CliResult,
           migrations_dir: Path) -> str:
    """Play the operator after `up` refused with exit 5: look at the schema, decide whether the statement in doubt
    took effect, and run the repair that the message names. Returns the action taken."""
    version = int(row["migration_id"])
    k = int(row["statement_started"])
    stmt = spec.statements(version)[k - 1]
    snap = snapshot(fdb)
    took_effect = stmt.effect is not None and _present(snap, stmt.effect)
    if stmt.effect is not None and stmt.effect[0] == "index" and not snap.indexes.get(stmt.effect[1], True):
        # An INVALID index left by an interrupted CREATE INDEX CONCURRENTLY did not take effect. It is left in place
        # on purpose: premigrate must drop it itself before the retry builds the index again.
        took_effect = False
    message = single_error(refusal)
    assert str(version) in message and f"statement {k}" in message, message
    # --resume retries a failed statement by itself; --retry-current is for a statement in doubt only (exit 2 else).
    flag = "--skip-current" if took_effect else "" if row["state"] == "failed" else "--retry-current"
    action = f"repair --resume {flag}".strip()
    assert "premigrate repair --resume" in message, message
    result = premigrate(scenario, *action.split(), "--dir", str(migrations_dir),
                        env=fdb.env(), cwd=migrations_dir.parent)
    assert 0 == result.returncode, result.stderr
    return action


def converge(scenario: str, fdb: FaultDatabase, spec: Spec, migrations_dir: Path, *args: str,
             actions: Counter[str] | None = None) -> CliResult:
    """Run `up` until everything is applied, settling statements in doubt the way the refusal says."""
    for _ in range(len(spec.migrations) + 2):
        result = premigrate(scenario, "up", "--dir", str(migrations_dir), *args, env=fdb.env(),
                            cwd=migrations_dir.parent)
        if result.returncode == 0:
            return result
        assert 5 == result.returncode, f"seed {SEED}: {result.stderr}"
        snap = check_invariant(scenario, fdb, spec)
        rows = unsettled(snap)
        assert rows, f"exit 5 without a row in doubt or failed: {result.stderr}"
        action = settle(scenario, fdb, spec, rows[0], result, migrations_dir)
        if actions is not None:
            actions[action] += 1
    raise AssertionError(f"`up` did not converge (seed {SEED})")


# -- a TCP proxy that can drop, stall or refuse -------------------------------------------------------------------

class FaultProxy:
    """127.0.0.1:`port` forwarding to `target`, with faults switched on and off by the test:

    refuse()  close the listening socket: connections are refused;  accept() listens again
    stall()   stop forwarding bytes in both directions (the sockets stay open, as behind a hung middlebox)
    resume()  forward again
    drop()    reset every open connection (RST), as a failover or a NAT timeout does
    """

    def __init__(self, target: tuple[str, int], *, listening: bool = True) -> None:
        self.port = free_port()
        self.target = target
        self.accepted = 0
        self._stalled = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        if listening:
            self.accept()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.refuse()
        self.drop()

    def accept(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        self._thread = threading.Thread(target=self._serve, args=(server,), daemon=True)
        self._thread.start()

    def refuse(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            try:
                server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            server.close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def stall(self) -> None:
        self._stalled.set()

    def resume(self) -> None:
        self._stalled.clear()

    def drop(self) -> int:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    sock.close()
                except OSError:
                    pass
        return len(pairs)

    def _serve(self, server: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                client, _ = server.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with self._lock:
            self._pairs.append((client, upstream))
        self._pump(client, upstream)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set():
                if self._stalled.is_set():
                    time.sleep(0.02)
                    continue
                readable, _, _ = select.select([a, b], [], [], 0.05)
                for sock in readable:
                    if self._stalled.is_set():
                        break
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (a, b):
                try:
                    sock.close()
                except OSError:
                    pass


# -- running as an unprivileged user ------------------------------------------------------------------------------

def _interpreter_for_nobody() -> tuple[str, dict[str, str]]:
    """An interpreter `nobody` may run, and the PYTHONPATH that finds premigrate and its dependencies.

    The venv's interpreter may live under /root (mode 0700); then the system Python of the same version runs the
    same code and the same packages (same ABI), reached through PYTHONPATH.
    """
    if 0 == subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-c", ""],
                           capture_output=True).returncode:
        return sys.executable, {}
    system = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin:/bin")
    assert system, "no interpreter that user nobody can run"
    import premigrate
    paths = [str(Path(premigrate.__file__).resolve().parent.parent), *site.getsitepackages()]
    return system, {"PYTHONPATH": os.pathsep.join(paths)}


def run_as_nobody(scenario: str, args: list[str], env: dict[str, str], cwd: Path) -> CliResult:
    """premigrate as user `nobody` (the suite runs as root, which reads every file whatever its mode)."""
    interpreter, extra = _interpreter_for_nobody()
    full_env = {**cli_env(env), **extra, "HOME": "/tmp"}
    passed = [f"{k}={v}" for k, v in full_env.items()
              if k in ("PATH", "LANG", "LC_ALL", "HOME", "PYTHONPATH") or k.startswith(("PREMIGRATE_", "DATABASE_URL", "DB_"))]
    command = ["runuser", "-u", "nobody", "--", "env", "-i", *passed, interpreter, "-m", "premigrate", *args]
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    return LEDGER.record(scenario, CliResult(proc.returncode, proc.stdout, proc.stderr), "premigrate as nobody")


def public_copy(source: Path) -> Path:
    """A copy of a folder under a directory every user can traverse (pytest's tmp_path is root's only)."""
    base = Path("/tmp") / f"pm-faults-{uuid.uuid4().hex[:10]}"
    base.mkdir(mode=0o755)
    os.chmod(base, 0o755)
    target = base / source.name
    shutil.copytree(source, target, symlinks=True)
    os.chmod(target, 0o755)
    return target
