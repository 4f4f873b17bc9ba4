"""`premigrate serve`: the HTTP edges (unparsable requests, bodies), stopping with requests in flight, a live run
holding the runner lock, and the refusals at start (qualified --expect-table, empty --listen, duration messages),
and summary files of the wrong shape."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from premigrate.engine.sessions import Sessions
from premigrate.config import load_config
from premigrate.errors import UsageError
from premigrate.commands.serve import serve
from tests.integration.test_serve import (
    USERS, RecordingLog, Served, free_port, make_config, metrics, running, up,
)
from tests.support import TestDatabase, popen_cli, run_cli


def exchange(served: Served, data: bytes, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    host, port = served.base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def responses(raw: bytes) -> list[tuple[int, dict[str, object]]]:
    """(status, JSON body) of each HTTP/1.1 response in `raw`, in order."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers["content-length"])
        assert "application/json" == headers["content-type"], head
        found.append((int(lines[0].split()[1]), json.loads(rest[:length])))
        raw = rest[length:]
    return found


def _bad_request_lines() -> list[object]:
    return [
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="garbage"),
        pytest.param(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, id="http2-preface"),
        pytest.param(b"GET / HTTP/9.9\r\n\r\n", 505, id="http-9.9"),
        pytest.param(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, id="url-over-64kb"),
    ]


class TestProtocol:
    @pytest.mark.parametrize(("request_bytes", "status"), _bad_request_lines())
    def test_bad_request_line_answers_json(self, tmp_path: Path, migrations_dir: Path, request_bytes: bytes,
                                           status: int, capfd: pytest.CaptureFixture[str]) -> None:
        """A request line http.server refuses gets its status with a JSON error, the connection closed, and no
        traceback on stderr."""
        with running(make_config(f"sqlite:///{tmp_path}/x.db", migrations_dir)) as served:
            raw = exchange(served, request_bytes)
            assert 200 == served.request("/healthz").status  # still serving
        ((code, document),) = responses(raw)
        assert (status, True) == (code, isinstance(document["error"], str) and bool(document["error"]))
        assert b"\r\nconnection: close\r\n" in raw.lower()
        assert "Traceback" not in capfd.readouterr().err
        assert [] == served.log.find("internal_error")

    def test_body_is_drained_before_the_next_request(self, tmp_path: Path, migrations_dir: Path) -> None:
        """A body sent with a GET is read and dropped: the pipelined request after it is answered as itself."""
        with running(make_config(f"sqlite:///{tmp_path}/x.db", migrations_dir)) as served:
            raw = exchange(served, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                                   b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert [200, 404] == [code for code, _ in responses(raw)]
        assert "no such endpoint '/nope'" == responses(raw)[1][1]["error"]

    @pytest.mark.parametrize(("header", "status"), [
        pytest.param(b"Content-Length: 10000000", 413, id="too-large"),
        pytest.param(b"Content-Length: -5", 400, id="negative"),
    ])
    def test_unusable_body_is_refused_and_closed(self, tmp_path: Path, migrations_dir: Path, header: bytes,
                                                 status: int) -> None:
        """A body too large to drain, or a length that is not one: refused (JSON), and the connection closed
        rather than its bytes parsed as requests."""
        with running(make_config(f"sqlite:///{tmp_path}/x.db", migrations_dir)) as served:
            raw = exchange(served, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\nGET /nope HTTP/1.1"
                                   b"\r\nHost: x\r\n\r\n")
        assert [status] == [code for code, _ in responses(raw)]


class _Silent:
    """A TCP server that accepts and never answers: a database whose session stalls."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            while True:
                self.accepted.append(self.sock.accept()[0])
        except OSError:
            pass  # closed

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


class TestStopping:
    def test_sigterm_answers_the_request_in_flight(self, migrations_dir: Path) -> None:
        """`premigrate serve` as a process: a request waiting on a database reading when SIGTERM arrives is answered
        (503, the reading cut short), not dropped with the process; serve then exits 0, its log all JSON."""
        silent = _Silent()
        port = free_port()
        proc = popen_cli("serve", "--listen", f"127.0.0.1:{port}", "--health-cache", "0", "--dir",
                         str(migrations_dir), env={"DATABASE_URL": f"postgresql://app:pw@127.0.0.1:{silent.port}/app"})
        answer: dict[str, object] = {}
        try:
            deadline = time.monotonic() + 20
            while "status" not in _get(f"http://127.0.0.1:{port}/healthz"):
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=5)
                time.sleep(0.1)
            request = threading.Thread(
                target=lambda: answer.update(_get(f"http://127.0.0.1:{port}/health/database")), daemon=True)
            request.start()
            while not silent.accepted:  # the reading is under way: its session is stuck on the silent server
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            request.join(30)
            _, stderr = proc.communicate(timeout=30)
        finally:
            silent.close()
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert (0, 503) == (proc.returncode, answer.get("status")), (answer, stderr)
        document = answer["json"]
        assert isinstance(document, dict)
        assert "serve is stopping" in document["database"]["error"]
        assert "pw" not in json.dumps(document)
        assert "serve_stopped" in [json.loads(line)["event"] for line in stderr.splitlines() if line.strip()]


def _get(url: str) -> dict[str, object]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return {"status": resp.status, "json": json.loads(resp.read())}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "json": json.loads(exc.read())}
    except OSError as exc:
        return {"error": repr(exc)}


class TestRunInProgress:
    def test_live_run_holding_the_lock_is_not_repair_advice(self, db: TestDatabase, migrations_dir: Path) -> None:
        """While a run holds the runner lock, its unfinished row is a run in progress (503, not ready), with no
        repair advice; once the lock is free, the same row is what a stopped run left (repair advice)."""
        (migrations_dir / "001_create_users.sql").write_text(USERS)
        (migrations_dir / "002_two.sql").write_text("CREATE TABLE a (id integer);\nCREATE TABLE b (id integer);\n")
        assert 0 == up(db, migrations_dir)
        # As a live up leaves it while statement 2 of 2 runs: statement 1 done, statement 2 started.
        db.execute("UPDATE premigrate_history SET state = 'in_progress', statements_done = 1, statement_started = 2 "
                   "WHERE version = '2'")
        config = make_config(db.url, migrations_dir)
        sessions = Sessions(config, RecordingLog())  # type: ignore[arg-type]
        holder = sessions.connect_once(read_only=False, connect_timeout=5)
        try:
            assert holder.try_lock(sessions.lock_key())
            with running(config, cache_seconds=None) as served:
                status, document = served.get_json("/health/database")
                ready_status, ready = served.get_json("/health/ready")
                holder.unlock(sessions.lock_key())
                after_status, after = served.get_json("/health/database")
        finally:
            holder.close()
        error = document["migrations"]["error"]
        assert (503, 503, "not_ready") == (status, ready_status, ready["status"])
        assert error.startswith("a migration run is in progress: 2 (the runner lock is held"), error
        assert "repair" not in error and "repair" not in ready["reason"]
        assert ready["reason"].startswith("a migration run is in progress"), ready
        assert (503, True) == (after_status, "repair" in after["migrations"]["error"])


class TestStartRefusals:
    @pytest.mark.parametrize("table", ["public.users", "main.Users", "db.Users", "users."])
    def test_qualified_expect_table_is_refused(self, tmp_path: Path, migrations_dir: Path, table: str) -> None:
        """A schema- or database-qualified name would read "missing" forever: exit 2 before serving, saying the
        form accepted."""
        log, stop = RecordingLog(), threading.Event()
        stop.set()  # were it accepted, serve would stop at once instead of serving forever
        with pytest.raises(UsageError, match="without a schema or database") as info:
            serve(make_config(f"sqlite:///{tmp_path}/x.db", migrations_dir), log, listen="127.0.0.1:0",
                  expect_tables=[table], stop_event=stop)
        assert (2, []) == (info.value.exit_code, log.events)

    def test_empty_listen_is_exit_2(self, tmp_path: Path, migrations_dir: Path) -> None:
        """`--listen ""` is a bad value (exit 2 before serving), not the default address."""
        cases = ((("--listen", ""), {}, "--listen"), ((), {"PREMIGRATE_LISTEN": ""}, "PREMIGRATE_LISTEN"))
        for args, env, named in cases:  # the message names the setting the value came from
            result = run_cli("serve", *args, "--dir", str(migrations_dir),
                             env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **env}, timeout=30)
            assert 2 == result.returncode, result.stderr
            assert f"{named} ''" in result.stderr and "serve_listening" not in result.stderr

    @pytest.mark.parametrize(("flag", "meaning"), [("--health-cache", "or 0 for no cache"),
                                                   ("--unhealthy-after", "or 0 for never")])
    def test_duration_error_says_what_0_means(self, tmp_path: Path, migrations_dir: Path, flag: str,
                                               meaning: str) -> None:
        """For these flags 0 is not "no limit": the message says what it is."""
        result = run_cli("serve", flag, "soon", "--dir", str(migrations_dir),
                         env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}, timeout=30)
        (error,) = result.find("error")
        assert (2, True, False) == (result.returncode, meaning in error["error"], "no limit" in error["error"])


class TestMalformedSummary:
    @pytest.mark.parametrize("summary", [
        {"command": "up", "exit_code": "zero", "applied": -1, "duration_ms": "x"},
        {"command": "up", "exit_code": 0, "applied": -1, "duration_ms": 5},
        {"command": "up", "exit_code": True, "applied": 1, "duration_ms": 5},
        {"command": "up", "exit_code": 0, "applied": 1, "duration_ms": 5, "rows_affected": "2"},
        {"command": "up", "exit_code": 0, "applied": 1},
    ])
    def test_left_out(self, tmp_path: Path, migrations_dir: Path, summary: dict[str, object]) -> None:
        """A file with up's command but not its figures (types, signs) exports no last-run gauge at all."""
        path = tmp_path / "summary.json"
        path.write_text(json.dumps(summary))
        config = load_config("serve", {"database_url": f"sqlite:///{tmp_path}/x.db", "dir": str(migrations_dir),
                                       "summary_file": str(path)}, {})
        with running(config) as served:
            values = metrics(served)
        assert [] == [name for name in values if name.startswith("premigrate_last_run_")]

    def test_unmeasured_size_keeps_the_rest(self, tmp_path: Path, migrations_dir: Path) -> None:
        """A size up could not measure ({"bytes": null}) leaves out the delta only."""
        path = tmp_path / "summary.json"
        path.write_text(json.dumps({"command": "up", "exit_code": 4, "applied": 0, "duration_ms": 245,
                                    "rows_affected": 0, "database_size_before": {"bytes": 10},
                                    "database_size_after": None}))
        config = load_config("serve", {"database_url": f"sqlite:///{tmp_path}/x.db", "dir": str(migrations_dir),
                                       "summary_file": str(path)}, {})
        with running(config) as served:
            values = metrics(served)
        assert (4, 0, 0) == (values["premigrate_last_run_exit_code"], values["premigrate_last_run_success"],
                             values["premigrate_last_run_applied"])
        assert "premigrate_last_run_database_size_delta_bytes" not in values
