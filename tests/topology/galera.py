"""A three-node Galera cluster on 127.0.0.1 with the installed MariaDB and Debian's galera-4 provider.

Node 1 bootstraps the cluster (--wsrep-new-cluster); nodes 2 and 3 join it one after the other and receive their
data by rsync SST (needs no SST user, works without systemd). Each node has its own datadir (mariadb-install-db),
socket, and four ports: SQL, group communication, IST and SST.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from tests.topology.procs import PORTS, Server, ServerFailed, chown_tree, ensure_packages, run, wait_until, which

PROVIDER = "/usr/lib/galera/libgalera_smm.so"
BOOTSTRAP_TIMEOUT_S = 90.0
JOIN_TIMEOUT_S = 180.0
CLUSTER_NAME = "premigrate_topology"


def install() -> str:
    ensure_packages({PROVIDER: "galera-4", "mariadbd": "mariadb-server", "mariadb-install-db": "mariadb-server",
                     "mariadb": "mariadb-client", "rsync": "rsync", "lsof": "lsof"})
    binary = which("mariadbd")
    assert binary is not None
    return binary


@dataclass
class GaleraNode:
    index: int
    directory: Path
    port: int
    gcomm_port: int
    ist_port: int
    sst_port: int
    server: Server | None = None

    @property
    def name(self) -> str:
        return f"galera node {self.index} (port {self.port})"

    @property
    def socket(self) -> Path:
        return self.directory / "mysqld.sock"

    @property
    def datadir(self) -> Path:
        return self.directory / "data"

    @property
    def error_log(self) -> Path:
        return self.directory / "error.log"

    def url(self, database: str = "mysql") -> str:
        return f"mysql://root@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str | None = None, **kwargs: Any) -> pymysql.connections.Connection:
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root", password="", database=database,
                               autocommit=True, connect_timeout=5, **kwargs)

    def status(self, name: str) -> str | None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
                row = cur.fetchone()
                return None if row is None else str(row[1])
        finally:
            conn.close()

    def synced(self) -> bool:
        return self.status("wsrep_local_state_comment") == "Synced" and self.status("wsrep_ready") == "ON"

    def write_config(self, cluster_ports: list[int]) -> Path:
        members = ",".join(f"127.0.0.1:{p}" for p in cluster_ports)
        provider_options = ";".join([
            f"gmcast.listen_addr=tcp://127.0.0.1:{self.gcomm_port}", f"ist.recv_addr=127.0.0.1:{self.ist_port}",
            "gcache.size=32M", "pc.recovery=FALSE",
        ])
        config = self.directory / "my.cnf"
        config.write_text(f"""\
[mysqld]
user = mysql
datadir = {self.datadir}
socket = {self.socket}
pid-file = {self.directory}/mysqld.pid
log-error = {self.error_log}
port = {self.port}
bind-address = 127.0.0.1
skip-name-resolve
performance_schema = OFF
innodb_buffer_pool_size = 64M
innodb_log_file_size = 16M
innodb_flush_log_at_trx_commit = 2
innodb_autoinc_lock_mode = 2
binlog_format = ROW
default_storage_engine = InnoDB
max_connections = 200

wsrep_on = ON
wsrep_provider = {PROVIDER}
wsrep_cluster_name = {CLUSTER_NAME}
wsrep_cluster_address = gcomm://{members}
wsrep_node_name = node{self.index}
wsrep_node_address = 127.0.0.1:{self.gcomm_port}
wsrep_node_incoming_address = 127.0.0.1:{self.port}
wsrep_provider_options = "{provider_options}"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:{self.sst_port}
""")
        return config

    def start(self, binary: str, config: Path, *, bootstrap: bool) -> None:
        argv = [binary, f"--defaults-file={config}"] + (["--wsrep-new-cluster"] if bootstrap else [])
        # Stop: SIGTERM is MariaDB's clean shutdown (the node leaves the cluster); give it a while, then SIGKILL.
        # Started as mysql rather than left to switch user itself: a change of user clears PR_SET_PDEATHSIG.
        self.server = Server(self.name, argv, self.directory / "stdout.log", user="mysql",
                             extra_logs=(self.error_log,), stop_sequence=((signal.SIGTERM, 30.0),)).start()

    def kill(self) -> None:
        if self.server is not None:
            self.server.kill()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def logs(self) -> str:
        return self.server.logs() if self.server else ""


@dataclass
class GaleraCluster:
    nodes: list[GaleraNode]
    binary: str
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(cls, base: Path, size: int = 3) -> GaleraCluster:
        binary = install()
        ports = PORTS.take(4 * size)
        nodes = []
        for i in range(size):
            directory = base / f"galera-node{i + 1}"
            directory.mkdir()
            port, gcomm, ist, sst = ports[4 * i:4 * i + 4]
            nodes.append(GaleraNode(i + 1, directory, port, gcomm, ist, sst))
        cluster = cls(nodes, binary)
        try:
            cluster._start_all()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start_all(self) -> None:
        started = time.monotonic()
        gcomm_ports = [n.gcomm_port for n in self.nodes]
        for node in self.nodes:
            run(["mariadb-install-db", "--no-defaults", f"--datadir={node.datadir}", "--user=mysql",
                 "--auth-root-authentication-method=socket", "--skip-test-db"],
                timeout=120, what=f"mariadb-install-db for {node.name}")
            chown_tree(node.directory, "mysql")
        self.timings["install_db_s"] = time.monotonic() - started

        first = self.nodes[0]
        config = first.write_config(gcomm_ports)
        first.start(self.binary, config, bootstrap=True)
        assert first.server is not None
        # root@localhost authenticates by unix socket; the tests speak TCP to 127.0.0.1 with root and no password,
        # like the local MariaDB. The account is created once, on the bootstrap node: SST copies it to the others.
        wait_until(lambda: self._socket_sql(first, "SELECT 1") is not None, timeout=BOOTSTRAP_TIMEOUT_S,
                   what=f"{first.name} bootstrap", servers=[first.server])
        self._socket_sql(first, check=True, sql="CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';"
                                "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;")
        wait_until(first.synced, timeout=BOOTSTRAP_TIMEOUT_S, what=f"{first.name} bootstrap", servers=[first.server])
        self.timings["bootstrap_s"] = time.monotonic() - started

        # One joiner at a time: an rsync donor serves one SST and is desynced while it does.
        for node in self.nodes[1:]:
            joined = time.monotonic()
            config = node.write_config(gcomm_ports)
            node.start(self.binary, config, bootstrap=False)
            assert node.server is not None
            live = [n.server for n in self.nodes if n.server is not None]
            wait_until(node.synced, timeout=JOIN_TIMEOUT_S, what=f"{node.name} joining", servers=live)
            self.timings[f"join_node{node.index}_s"] = time.monotonic() - joined
        expected = str(len(self.nodes))
        wait_until(lambda: all(n.status("wsrep_cluster_size") == expected for n in self.nodes),
                   timeout=JOIN_TIMEOUT_S, what="galera cluster size",
                   servers=[n.server for n in self.nodes if n.server])
        self.timings["total_s"] = time.monotonic() - started

    @staticmethod
    def _socket_sql(node: GaleraNode, sql: str, *, check: bool = False) -> str | None:
        try:
            return run(["mariadb", "--no-defaults", f"--socket={node.socket}", "-uroot", "-N", "-e", sql],
                       timeout=30, what=f"SQL on {node.name}")
        except ServerFailed:
            if check:
                raise
            return None

    def logs(self) -> str:
        return "\n".join(n.logs() for n in self.nodes)

    def stop(self) -> None:
        """Every node gets SIGTERM at once (a clean leave each), then the bound, then SIGKILL."""
        errors = []
        for node in reversed(self.nodes):
            if node.server is not None and node.server.alive():
                try:
                    node.server.signal(signal.SIGTERM)
                except OSError as exc:
                    errors.append(exc)
        for node in reversed(self.nodes):
            node.stop()
        PORTS.release(p for n in self.nodes for p in (n.port, n.gcomm_port, n.ist_port, n.sst_port))
        if errors:
            raise ServerFailed(f"stopping the galera cluster: {errors}")
