"""A real autofailover formation on isolated hosts: the monitor and each data node in its own network
namespace (netns.Net), every server, keeper and autoctl run inside its namespace as the unprivileged test
user. The test process is the application: it reaches the hosts over the bridge (TCP), and reaches each data
node's Postgres through its Unix socket too (not network-namespaced: probes see a partitioned node).

    net = netns.Net(); c = Cluster(net, workdir); c.create(nodes=3); c.wait_healthy()
    c.primary() -> Node;  c.standbys();  c.client_uri();  c.state()
    node.kill_postgres(sig) / node.stop_postgres() / node.kill_keeper(sig) / node.start_keeper()
    node.pause() / node.resume()     SIGSTOP / SIGCONT every process of the host (keeper and Postgres)
    node.crash()                     power loss: link down, every process of the namespace SIGKILLed
    node.boot()                      link up, keeper started again (it restarts Postgres)
    c.teardown()                     keepers SIGTERM, postmasters SIGINT, then whatever runs in the namespaces

Every timeout is a named setting: MONITOR_SETTINGS (monitor GUCs, `autoctl create monitor --setting`) and
KEEPER_TIMEOUTS (keeper.json "timeouts"), both shortened here so that scenarios take seconds; the
environment variable AUTOFAILOVER_FAULTS_SETTINGS may override them ("name=value,name=value").

What it shares with the localhost formations of tests/e2e is in tests/common/formation_base.py; here the host
strategy is netns.NamespaceHost (a namespace per host, every host on its own address of the bridge).
"""

import os
import signal
import subprocess
import time

import netns
from common_path import checker
import short_timeouts  # noqa: E402  (tests/common, on the path through common_path)
from processes import STOP_TIMEOUT, read_pid, stop_pid  # noqa: E402,F401
from processes import pid_alive as alive  # noqa: E402,F401
from processes import user_ids as _ids  # noqa: E402,F401
from formation_base import (AUTOCTL, COMMAND_TIMEOUT, PG_BINDIR, FormationBase, KeeperNode,  # noqa: E402,F401
                            psql_as_test_user, write_secret_file)

TEST_USER = netns.TEST_USER
MONITOR_PORT = 5430
NODE_PORT_BASE = 5431   # distinct ports: the servers share /tmp for their Unix sockets

MONITOR_SETTINGS = dict(short_timeouts.MONITOR_SETTINGS)
KEEPER_TIMEOUTS = dict(short_timeouts.KEEPER_TIMEOUTS)
for item in filter(None, os.environ.get("AUTOFAILOVER_FAULTS_SETTINGS", "").split(",")):
    k, v = item.split("=", 1)
    if k in KEEPER_TIMEOUTS:
        KEEPER_TIMEOUTS[k] = int(v)
    else:
        MONITOR_SETTINGS[k] = v

HEALTHY_TIMEOUT = float(os.environ.get("AUTOFAILOVER_FAULTS_HEALTHY_TIMEOUT", "120"))


IDENT_MAP = "autofailover_tests"


def _append_hba_access(pgdata):
    """The client (the test process on the bridge, 10.200.0.1) logs in as the test user over TLS with its
    password; the root-owned probes reach the node through its Unix socket with peer authentication, root
    mapped to the test user (root can become that user anyway; nobody else can). Edits the part of
    pg_hba.conf below the keeper's block, which the keeper keeps as is, and pg_ident.conf (base backups copy
    both to the standbys)."""
    path = os.path.join(pgdata, "pg_hba.conf")
    with open(path) as f:
        text = f.read()
    extra = (f"# autofailover fault tests: the application on the bridge and probes through the socket\n"
             f"local all {TEST_USER} peer map={IDENT_MAP}\n"
             f"hostssl all {TEST_USER} {netns.SUBNET}.0/24 scram-sha-256\n")
    if extra not in text:
        marker = "# TYPE  DATABASE"
        idx = text.find(marker)
        text = text[:idx] + extra + text[idx:] if idx >= 0 else text + extra
        with open(path, "w") as f:
            f.write(text)
    ident = os.path.join(pgdata, "pg_ident.conf")
    with open(ident) as f:
        text = f.read()
    lines = f"{IDENT_MAP} root {TEST_USER}\n{IDENT_MAP} {TEST_USER} {TEST_USER}\n"
    if lines not in text:
        with open(ident, "a") as f:
            f.write(lines)


def _secret_file(path, text, owner):
    write_secret_file(path, text, owner)


def _psql_as_test_user(socket_dir, port, dbname, sql):
    """SQL on stdin through a Unix socket as the test user (peer); sockets are not network-namespaced."""
    return psql_as_test_user(socket_dir, port, dbname, sql, stdin=True, strip=False)


class Node(KeeperNode):
    """A data node on its own namespace host (formation_base.KeeperNode on a netns.NamespaceHost)."""

    def __init__(self, cluster, host, name, port):
        super().__init__(cluster, host, name, port)

    @property
    def cluster(self):
        return self.formation

    def pause(self):
        for pid in self.host.pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self):
        for pid in self.host.pids():
            os.kill(pid, signal.SIGCONT)

    def crash(self):
        """Power loss: the network goes first (nothing more leaves the host), then every process dies."""
        self.cluster.net.crash(self.host)
        if self.keeper is not None:
            try:
                self.keeper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def boot(self):
        self.cluster.net.heal(self.host)
        self.start_keeper()

    # -- connections -------------------------------------------------------------
    def socket_conninfo(self, dbname="postgres"):
        return f"host={self.socket_dir()} port={self.port} user={TEST_USER} dbname={dbname} connect_timeout=2"


class Cluster(FormationBase):
    node_class = Node
    keeper_timeouts = KEEPER_TIMEOUTS
    healthy_timeout = HEALTHY_TIMEOUT
    state_errors = (Exception,)   # the monitor may be down or unreachable (a cut link, a crashed host)
    client_uri_options = "&connect_timeout=2"
    monitor_port = MONITOR_PORT

    def __init__(self, net, workdir):
        super().__init__(workdir)
        self.net = net
        # Per-node extra `create postgres` options (tests/faults/test_clients.py: --allow-clients ...).
        self.create_extra_args = {}

    def _set_test_user_password(self, socket_dir, port, dbname):
        self.set_test_user_password(socket_dir, port, dbname)

    # -- creation -------------------------------------------------------------------
    def autoctl(self, host, *args, check=True, timeout=COMMAND_TIMEOUT):
        return self.run_autoctl(host, args, check=check, timeout=timeout)

    def create_monitor(self, host_name="mon"):
        """On a new namespace host; M6 builds a second one (another host name and self.monitor_pgdata)."""
        self.monitor_host = self.net.add_host(host_name)
        # Keepers and the test process come from the bridge's subnet (--allow), never with trust.
        args = ["create", "monitor", "--pgdata", self.monitor_pgdata, "--pgport", MONITOR_PORT,
                "--hostname", self.monitor_host.ip, "--allow", f"{netns.SUBNET}.0/24"]
        for name, value in MONITOR_SETTINGS.items():
            args += ["--setting", f"{name}={value}"]
        # The operator (AUTOFAILOVER_MONITOR): the test user over the monitor's socket (peer).
        self._created_monitor(self.autoctl(self.monitor_host, *args))
        assert self.monitor_password_file, "create monitor printed no --monitor-password-file"
        self._set_test_user_password(self.monitor_pgdata, MONITOR_PORT, "autofailover")

    def _create_args(self, node, spec):
        return ["create", "postgres", "--pgdata", node.pgdata, "--pgport", node.port, "--hostname", node.host.ip,
                "--name", node.name, "--monitor", self.keeper_uri,
                "--candidate-priority", spec.get("candidate_priority", 50),
                "--replication-quorum", "true" if spec.get("replication_quorum", True) else "false",
                "--replication-password-file", self.replication_password_file,
                "--monitor-password-file", self.monitor_password_file] + \
            [str(a) for a in self.create_extra_args.get(node.name, [])]

    def _new_node(self, name):
        host = self.net.add_host(name)
        node = Node(self, host, name, NODE_PORT_BASE + len(self.nodes))
        self.nodes[name] = node
        return node

    def create_node(self, name, **spec):
        node = self._new_node(name)
        self.autoctl(node.host, *self._create_args(node, spec))
        self._after_create(node)
        return node

    def create_nodes(self, names):
        """Standbys in parallel (their base backups overlap)."""
        pairs = []
        for name in names:
            node = self._new_node(name)
            pairs.append((node, self._create_args(node, {})))
        self._create_in_parallel(pairs)

    def _prepare_created(self, node):
        _append_hba_access(node.pgdata)
        if alive(node.postmaster_pid()):
            node.host.run([f"{PG_BINDIR}/pg_ctl", "-D", node.pgdata, "reload"], cwd="/")

    def create(self, nodes=3):
        t0 = time.monotonic()
        self.create_monitor()
        self.create_node("n1")
        self.create_nodes([f"n{i}" for i in range(2, nodes + 1)])
        self.wait_healthy()
        return time.monotonic() - t0

    # -- state ----------------------------------------------------------------------
    def probe(self, interval=0.1):
        return checker.SplitBrainProbe({n.name: n.socket_conninfo() for n in self.nodes.values()}, interval)

    def writable_now(self):
        import psycopg
        out = []
        for n in self.nodes.values():
            try:
                with psycopg.connect(n.socket_conninfo(), autocommit=True, connect_timeout=2) as c:
                    r = c.execute("SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only')"
                                  ).fetchone()
                    if not r[0] and r[1] == "off":
                        out.append(n.name)
            except Exception:  # noqa: BLE001
                pass
        return out

    def teardown(self):
        self.net.stop_flapping()
        for node in self.nodes.values():
            try:
                node.resume()
            except Exception:  # noqa: BLE001
                pass
        super().teardown()
