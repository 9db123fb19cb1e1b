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
"""

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import time
import urllib.parse

import netns
from common_path import checker
import short_timeouts  # noqa: E402  (tests/common, on the path through common_path)
from processes import STOP_TIMEOUT, read_pid, stop_pid  # noqa: E402
from processes import pid_alive as alive  # noqa: E402
from processes import user_ids as _ids  # noqa: E402

PG_BINDIR = os.environ.get("AUTOFAILOVER_PG_BINDIR", "/usr/lib/postgresql/15/bin")
TEST_USER = netns.TEST_USER
AUTOCTL = os.environ.get("AUTOCTL") or shutil.which("autoctl") or "/usr/local/bin/autoctl"
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
COMMAND_TIMEOUT = 180.0


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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if owner:
        os.chown(path, *_ids())


def _psql_as_test_user(socket_dir, port, dbname, sql):
    """SQL on stdin through a Unix socket as the test user (peer); sockets are not network-namespaced."""
    r = subprocess.run(netns.as_user_argv([f"{PG_BINDIR}/psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-h", socket_dir,
                                           "-p", str(port), "-d", dbname]),
                       input=sql, capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    return r.stdout


class Node:
    def __init__(self, cluster, host, name, port):
        self.cluster = cluster
        self.host = host
        self.name = name
        self.port = port
        self.pgdata = os.path.join(cluster.workdir, name)
        self.state_dir = self.pgdata + ".keeper"
        self.keeper = None
        self._log = None

    # -- processes ---------------------------------------------------------------
    def start_keeper(self):
        assert not alive(self.keeper_pid()), f"keeper of {self.name} already runs"
        if self._log is None:
            self._log = open(os.path.join(self.cluster.workdir, f"{self.name}.keeper.out"), "ab")
        self.keeper = self.host.popen([AUTOCTL, "run", "--pgdata", self.pgdata], stdout=self._log,
                                      stderr=subprocess.STDOUT, cwd=self.cluster.workdir, env=self.cluster.env)

    def keeper_pid(self):
        if self.keeper is not None and self.keeper.poll() is None:
            return self.keeper.pid
        return read_pid(os.path.join(self.state_dir, "keeper.pid"))

    def postmaster_pid(self):
        return read_pid(os.path.join(self.pgdata, "postmaster.pid"))

    def kill_keeper(self, sig=signal.SIGKILL):
        pid = self.keeper_pid()
        assert alive(pid), f"keeper of {self.name} is not running"
        os.kill(pid, sig)
        if self.keeper is not None and self.keeper.pid == pid:
            self.keeper.wait(timeout=STOP_TIMEOUT)

    def kill_postgres(self, sig=signal.SIGKILL):
        pid = self.postmaster_pid()
        assert alive(pid), f"postgres of {self.name} is not running"
        os.kill(pid, sig)
        return pid

    def stop_postgres(self):
        self.host.run([f"{PG_BINDIR}/pg_ctl", "-D", self.pgdata, "-m", "fast", "-w", "stop"],
                      timeout=COMMAND_TIMEOUT)

    def pause(self):
        for pid in self.host.pids():
            os.kill(pid, signal.SIGSTOP)

    def resume(self):
        for pid in self.host.pids():
            os.kill(pid, signal.SIGCONT)

    def crash(self):
        """Power loss: the network goes first (nothing more leaves the host), then every process dies."""
        self.cluster.net.isolate(self.host)
        self.cluster.net.kill_all(self.host, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.host.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.keeper is not None:
            try:
                self.keeper.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def boot(self):
        self.cluster.net.heal(self.host)
        self.start_keeper()

    def teardown(self):
        stop_pid(self.keeper_pid(), signal.SIGTERM)
        if self.keeper is not None:
            try:
                self.keeper.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        stop_pid(self.postmaster_pid(), signal.SIGINT)
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- connections -------------------------------------------------------------
    def socket_dir(self):
        try:
            with open(os.path.join(self.state_dir, "keeper.json")) as f:
                return json.load(f).get("socket_dir") or "/tmp"
        except (OSError, ValueError):
            return "/tmp"

    def socket_conninfo(self, dbname="postgres"):
        return f"host={self.socket_dir()} port={self.port} user={TEST_USER} dbname={dbname} connect_timeout=2"

    def tcp_conninfo(self, dbname="postgres"):
        return (f"host={self.host.ip} port={self.port} user={TEST_USER} dbname={dbname} connect_timeout=2 "
                f"passfile={self.cluster.test_pgpass}")

    def log_tail(self, lines=30):
        out = []
        for path in (os.path.join(self.cluster.workdir, f"{self.name}.keeper.out"),
                     os.path.join(self.state_dir, "keeper.log"),
                     os.path.join(self.cluster.workdir, f"{self.name}.postgres.log")):
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    out.append(f"--- {path}\n" + "".join(f.readlines()[-lines:]))
        return "\n".join(out)


class Cluster:
    def __init__(self, net, workdir):
        self.net = net
        self.workdir = workdir
        self.nodes = {}
        self.monitor_host = None
        self.monitor_pgdata = os.path.join(workdir, "monitor")
        self.keeper_uri = None
        self.env = dict(os.environ, HOME=pwd.getpwnam(TEST_USER).pw_dir, LC_ALL="C.UTF-8")
        self.env.pop("PGPASSFILE", None)
        os.makedirs(workdir, exist_ok=True)
        os.chown(workdir, *_ids())
        os.chmod(workdir, 0o755)
        # autoctl's secure defaults (scram-sha-256, TLS): the keepers' replication password, the monitor's
        # keeper password (its file, once the monitor exists), and the test process's own pgpass file for
        # the test user's role (password set over the socket by the test user itself).
        self.replication_password_file = os.path.join(workdir, "replication.password")
        _secret_file(self.replication_password_file, "repl:" + secrets.token_hex(12) + "\n", owner=True)
        self.monitor_password_file = None
        self.user_password = secrets.token_hex(12)
        # Per-node extra `create postgres` options (tests/faults/test_clients.py: --allow-clients ...).
        self.create_extra_args = {}
        self.test_pgpass = os.path.join(workdir, "test-process.pgpass")
        _secret_file(self.test_pgpass, f"*:*:*:{TEST_USER}:{self.user_password}\n", owner=False)

    def _set_test_user_password(self, socket_dir, port, dbname):
        _psql_as_test_user(socket_dir, port, dbname, f"ALTER ROLE {TEST_USER} PASSWORD '{self.user_password}'")

    # -- creation -------------------------------------------------------------------
    def autoctl(self, host, *args, check=True, timeout=COMMAND_TIMEOUT):
        return host.run([AUTOCTL] + [str(a) for a in args], check=check, timeout=timeout, cwd=self.workdir,
                        env=self.env)

    def create_monitor(self, host_name="mon"):
        """On a new namespace host; M6 builds a second one (another host name and self.monitor_pgdata)."""
        self.monitor_host = self.net.add_host(host_name)
        # Keepers and the test process come from the bridge's subnet (--allow), never with trust.
        args = ["create", "monitor", "--pgdata", self.monitor_pgdata, "--pgport", MONITOR_PORT,
                "--hostname", self.monitor_host.ip, "--allow", f"{netns.SUBNET}.0/24"]
        for name, value in MONITOR_SETTINGS.items():
            args += ["--setting", f"{name}={value}"]
        r = self.autoctl(self.monitor_host, *args)
        self.keeper_uri = r.stdout.strip().splitlines()[-1]
        assert self.keeper_uri.startswith("postgres://autofailover_keeper@"), r.stdout
        self.monitor_password_file = re.search(r"--monitor-password-file (\S+)", r.stderr).group(1)
        # The operator: the test user over the monitor's socket (peer).
        self.env["AUTOFAILOVER_MONITOR"] = re.search(r"export AUTOFAILOVER_MONITOR='([^']+)'", r.stderr).group(1)
        self._set_test_user_password(self.monitor_pgdata, MONITOR_PORT, "autofailover")

    def monitor_conninfo(self):
        return (f"host={self.monitor_host.ip} port={MONITOR_PORT} user={TEST_USER} dbname=autofailover "
                f"connect_timeout=2 passfile={self.test_pgpass}")

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
        procs = []
        for name in names:
            node = self._new_node(name)
            procs.append((node, node.host.popen([AUTOCTL] + [str(a) for a in self._create_args(node, {})],
                                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                                cwd=self.workdir, env=self.env, start_new_session=False)))
        for node, proc in procs:
            out, _ = proc.communicate(timeout=COMMAND_TIMEOUT)
            assert proc.returncode == 0, f"create postgres {node.name} exited {proc.returncode}:\n{out}"
            self._after_create(node)

    def _after_create(self, node):
        _append_hba_access(node.pgdata)
        if alive(node.postmaster_pid()):
            node.host.run([f"{PG_BINDIR}/pg_ctl", "-D", node.pgdata, "reload"], cwd="/")
        if len(self.nodes) == 1:   # the first node: standbys copy its roles, the test user's password too
            self._set_test_user_password(node.socket_dir(), node.port, "postgres")
        path = os.path.join(node.state_dir, "keeper.json")
        with open(path) as f:
            config = json.load(f)
        config.setdefault("timeouts", {}).update(KEEPER_TIMEOUTS)
        with open(path + ".tmp", "w") as f:
            json.dump(config, f, indent=2)
        os.chown(path + ".tmp", *_ids())
        os.replace(path + ".tmp", path)
        node.start_keeper()

    def create(self, nodes=3):
        t0 = time.monotonic()
        self.create_monitor()
        self.create_node("n1")
        self.create_nodes([f"n{i}" for i in range(2, nodes + 1)])
        self.wait_healthy()
        return time.monotonic() - t0

    # -- state ----------------------------------------------------------------------
    def state(self):
        return {r["node_name"]: r for r in checker.monitor_state(self.monitor_conninfo())}

    def is_healthy(self, state=None):
        state = state if state is not None else self.state()
        return checker.is_full_health(list(state.values())) and len(state) == len(self.nodes)

    def wait_until(self, predicate, what, timeout=HEALTHY_TIMEOUT, interval=0.1):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.state()
                if predicate(last):
                    return last
            except Exception as e:  # noqa: BLE001 - the monitor may be down or unreachable
                last = f"monitor error: {e}"
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last state:\n{self.describe(last)}\n"
                             + "\n".join(n.log_tail(15) for n in self.nodes.values()))

    def wait_healthy(self, timeout=HEALTHY_TIMEOUT):
        return self.wait_until(self.is_healthy, "one primary and all secondaries", timeout)

    def primary(self):
        state = self.state()
        names = [n for n, s in state.items() if s["goal_state"] == "primary" and s["reported_state"] == "primary"]
        assert len(names) == 1, f"expected one primary:\n{self.describe(state)}"
        return self.nodes[names[0]]

    def standbys(self):
        return [self.nodes[n] for n, s in self.state().items() if s["goal_state"] == "secondary"]

    def client_uri(self):
        hosts = ",".join(f"{n.host.ip}:{n.port}" for n in self.nodes.values())
        return (f"postgresql://{TEST_USER}@{hosts}/postgres?target_session_attrs=read-write&connect_timeout=2"
                f"&passfile={urllib.parse.quote(self.test_pgpass)}")

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

    @staticmethod
    def describe(state):
        if not isinstance(state, dict):
            return str(state)
        return "\n".join(f"  {n}: reported={s['reported_state']} goal={s['goal_state']} "
                         f"keeper_reporting={s['keeper_reporting']} health={s['health']} lsn={s['lsn']}"
                         for n, s in state.items())

    def teardown(self):
        self.net.stop_flapping()
        for node in self.nodes.values():
            try:
                node.resume()
            except Exception:  # noqa: BLE001
                pass
            node.teardown()
        stop_pid(read_pid(os.path.join(self.monitor_pgdata, "postmaster.pid")), signal.SIGINT)
