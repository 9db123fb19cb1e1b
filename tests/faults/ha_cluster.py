"""The monitor-HA shape of the fault suite (docs/monitor-ha.md, docs/failure-tests.md): a 3-member etcd, two
replicated monitors (leader + streaming standby, each with its agent `autoctl run-monitor`) and three data
nodes whose keepers use the multi-host monitor URI, every machine in its own network namespace:

    m1 10.200.0.10   etcd member e1 + monitor m1 (Postgres :5430 + agent)
    m2 10.200.0.11   etcd member e2 + monitor m2
    e3 10.200.0.12   etcd member e3 only (the tie-breaker: a third machine, no Postgres)
    n1-n3 .13-.15    data nodes :5431-5433 (keeper + Postgres), as in the single-monitor shape

Why a dedicated etcd host rather than etcd on a data node: losing a data node (P3) must not also cost an
etcd vote, so that "any single machine lost" is one fault at a time (M3: a monitor host = one monitor + one
member; M7: the etcd host; P3: a data node). Each monitor lists its own member first.

    hc = HaCluster(net, workdir); hc.create(nodes=3)
    hc.leader() -> Monitor with a valid lease (or None);  hc.standby_monitor();  hc.monitors["m1"]
    hc.crash_machine(host) / hc.boot_machine(host)   link down + SIGKILL of the namespace / link up + restart
    hc.leases: LeaseChecker sampling both monitors every 50 ms (two valid leader leases at once?)

The monitors keep autoctl's secure defaults (scram-sha-256, TLS). The agents stream, rewind and clone as the
OS user (the test user): its password is set on the first monitor and read from a pgpass file named by
PGPASSFILE in the environment of the monitor hosts' processes only (never in argv).
"""

import base64
import json
import os
import re
import signal
import subprocess
import time
import urllib.request

import psycopg

import cluster as clustermod
from common_path import checker
import netns
from cluster import Cluster, TEST_USER, _secret_file
from formation_base import MonitorAgent
from processes import stop_pid

ETCD = os.environ.get("AUTOFAILOVER_ETCD", "/usr/bin/etcd")
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
MONITOR_PORT = clustermod.MONITOR_PORT
ETCD_CLUSTER = "main"          # create monitor --monitor-cluster (its default)
LEASE_SAMPLE_S = 0.05          # lease checker period per monitor


def etcd_available():
    return None if os.path.exists(ETCD) else f"etcd not found at {ETCD} (Debian etcd-server)"


class EtcdMember:
    def __init__(self, hc, name, host):
        self.hc = hc
        self.name = name
        self.host = host
        self.proc = None
        self._log = None
        self.url = f"http://{host.ip}:{ETCD_CLIENT_PORT}"
        self.peer_url = f"http://{host.ip}:{ETCD_PEER_PORT}"

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, f"etcd {self.name} already runs"
        if self._log is None:
            self._log = open(os.path.join(self.hc.workdir, f"etcd-{self.name}.out"), "ab")
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.hc.etcd.values())
        # Its data directory survives a kill: a restarted member rejoins with its own state.
        self.proc = self.host.popen([ETCD, "--name", self.name, "--data-dir",
                                     os.path.join(self.hc.workdir, f"etcd-{self.name}"),
                                     "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                                     "--listen-peer-urls", self.peer_url,
                                     "--initial-advertise-peer-urls", self.peer_url,
                                     "--initial-cluster", initial, "--initial-cluster-state", "new",
                                     "--initial-cluster-token", self.hc.net.prefix],
                                    stdout=self._log, stderr=subprocess.STDOUT, cwd=self.hc.workdir)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.running():
            os.kill(self.proc.pid, sig)
            if sig == signal.SIGKILL:
                self.proc.wait(timeout=10)

    def forget(self):
        """After a machine crash killed it (kill_all): reap it."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def healthy(self):
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                return json.load(r).get("health") == "true"
        except (OSError, ValueError):
            return False

    def teardown(self):
        if self.running():
            stop_pid(self.proc.pid, signal.SIGTERM)
        if self._log is not None:
            self._log.close()
            self._log = None


class Monitor(MonitorAgent):
    """A replicated monitor on its namespace host (formation_base.MonitorAgent)."""

    LOG_TAIL_LINES = 25

    def __init__(self, hc, name, host):
        super().__init__(hc.workdir, host, name, MONITOR_PORT)
        self.hc = hc
        self.socket_dir = self.pgdata + ".monitor"   # a replicated monitor's socket (monitor_setup.cpp)

    def agent_env(self):
        return self.hc.monitor_env

    def conninfo(self):
        # tcp_user_timeout: a sample to a host whose link went down fails within 1 s instead of hanging
        return (f"host={self.host.ip} port={self.port} user={TEST_USER} dbname=autofailover connect_timeout=2 "
                f"tcp_user_timeout=1000 passfile={self.hc.test_pgpass}")

    def query(self, sql, params=None):
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def leads(self):
        try:
            r = self.query("SELECT NOT pg_is_in_recovery() AND (SELECT valid FROM autofailover.leader_lease())")
            return bool(r[0][0])
        except psycopg.Error:
            return False


class LeaseChecker(checker.Poller):
    """Samples every monitor's leader lease every LEASE_SAMPLE_S (one thread per monitor, one kept connection;
    server clock: every namespace shares the machine's clock). A leadership *epoch* is a run of valid samples
    with the same leader_since; it lasts from leader_since to the latest deadline seen (sample time +
    expires_in_ms). Two epochs of different monitors that intersect = two valid leader leases at once."""

    SQL = ("SELECT extract(epoch FROM clock_timestamp())::float8, pg_is_in_recovery(), l.valid, l.expires_in_ms, "
           "extract(epoch FROM l.leader_since)::float8 FROM autofailover.leader_lease() l")
    thread_prefix = "lease"
    record_errors = False      # down, crashed, restarting: no sample
    retry_wait = 0.2

    def __init__(self, monitors):
        super().__init__({m.name: m.conninfo() for m in monitors}, LEASE_SAMPLE_S)
        self.monitors = monitors
        self.samples = {m.name: [] for m in monitors}    # name -> [(t_server, in_recovery, valid, deadline, since)]

    def _ask(self, conn):
        return conn.execute(self.SQL).fetchone()

    def _record(self, name, row):
        t, rec, valid, exp_ms, since = row
        deadline = t + exp_ms / 1000.0 if valid and exp_ms is not None else None
        with self._lock:
            self.samples[name].append((t, rec, bool(valid) and not rec, deadline, since))

    def current_leader(self, fresh_s=1.0):
        """The one monitor whose latest sample (younger than fresh_s) shows a valid lease, else None: no
        connection here, so an unreachable monitor costs nothing."""
        now = time.time()
        with self._lock:
            latest = {n: s[-1] for n, s in self.samples.items() if s}
        leaders = [n for n, (t, _rec, valid, _d, _s) in latest.items() if valid and now - t < fresh_s]
        return leaders[0] if len(leaders) == 1 else None

    def epochs(self, since_t=None):
        """[(monitor, start, last_deadline, n_samples)], by start."""
        out = {}
        with self._lock:
            snapshot = {n: list(s) for n, s in self.samples.items()}
        for name, samples in snapshot.items():
            for t, _rec, valid, deadline, since in samples:
                if not valid or since is None or (since_t is not None and deadline < since_t):
                    continue
                key = (name, round(since, 3))
                start, end, n = out.get(key, (since, deadline, 0))
                out[key] = (start, max(end, deadline), n + 1)
        return sorted(((k[0], v[0], v[1], v[2]) for k, v in out.items()), key=lambda e: e[1])

    def overlaps(self, since_t=None):
        """Pairs of epochs of different monitors that intersect, with how long."""
        eps = self.epochs(since_t)
        bad = []
        for i, a in enumerate(eps):
            for b in eps[i + 1:]:
                if a[0] != b[0] and b[1] < a[2] and a[1] < b[2]:
                    bad.append({"first": a[0], "second": b[0], "overlap_s": round(min(a[2], b[2]) - b[1], 3)})
        return bad

    def handovers(self, since_t=None):
        """For each epoch that follows another monitor's: start - the previous leader's last deadline (s)."""
        eps = self.epochs(since_t)
        out = []
        for prev, nxt in zip(eps, eps[1:]):
            if prev[0] != nxt[0]:
                out.append({"from": prev[0], "to": nxt[0], "margin_s": round(nxt[1] - prev[2], 3),
                            "old_deadline": prev[2], "new_start": nxt[1]})
        return out


class HaCluster(Cluster):
    def __init__(self, net, workdir):
        super().__init__(net, workdir)
        self.etcd = {}
        self.monitors = {}
        self.machines = {}          # host name -> Host (monitor and etcd hosts)
        self.monitors_pgpass = os.path.join(workdir, "monitors.pgpass")   # the OS user's, for the agents
        self.monitor_env = dict(self.env, PGPASSFILE=self.monitors_pgpass)
        self.leases = None

    # -- creation -------------------------------------------------------------------
    def etcd_endpoints(self, first=None):
        members = list(self.etcd.values())
        members.sort(key=lambda m: m.host is not first)      # the local member first
        return ",".join(m.url for m in members)

    def create_etcd(self):
        for name, host in (("e1", "m1"), ("e2", "m2"), ("e3", "e3")):
            self.machines[host] = self.machines.get(host) or self.net.add_host(host)
            self.etcd[name] = EtcdMember(self, name, self.machines[host])
        for member in self.etcd.values():
            member.start()
        self.wait_for(lambda: all(m.healthy() for m in self.etcd.values()), "a healthy 3-member etcd", 60,
                      lambda: self._etcd_logs())

    def _etcd_logs(self):
        out = []
        for m in self.etcd.values():
            path = os.path.join(self.workdir, f"etcd-{m.name}.out")
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    out.append(f"--- {path}\n" + "".join(f.readlines()[-10:]))
        return "\n".join(out)

    def _create_monitor_cmd(self, m, standby_of=None):
        args = ["create", "monitor", "--pgdata", m.pgdata, "--pgport", m.port, "--hostname", m.host.ip,
                "--allow", f"{netns.SUBNET}.0/24", "--etcd", self.etcd_endpoints(m.host), "--name", m.name]
        if standby_of is not None:
            args += ["--standby-of", f"host={standby_of.host.ip} port={standby_of.port}"]
        for name, value in clustermod.MONITOR_SETTINGS.items():
            args += ["--setting", f"{name}={value}"]
        return self.run_autoctl(m.host, args, env=self.monitor_env)

    def create_monitor(self):
        m1 = Monitor(self, "m1", self.machines["m1"])
        m2 = Monitor(self, "m2", self.machines["m2"])
        self.monitors = {"m1": m1, "m2": m2}
        self.monitor_host = m1.host
        self.monitor_pgdata = m1.pgdata
        r = self._create_monitor_cmd(m1)
        uri = r.stdout.strip().splitlines()[-1]
        assert uri.startswith("postgres://autofailover_keeper@"), r.stdout
        self.monitor_password_file = re.search(r"--monitor-password-file (\S+)", r.stderr).group(1)
        # The keepers' multi-host URI: libpq picks the read-write monitor (docs/monitor-ha.md).
        hosts = ",".join(f"{m.host.ip}:{m.port}" for m in self.monitors.values())
        uri = re.sub(r"@[^/]+/", f"@{hosts}/", uri, count=1)
        self.keeper_uri = uri + ("&" if "?" in uri else "?") + "target_session_attrs=read-write"
        # The test user is the monitors' OS user: one password for the test process (operator over TCP) and
        # for the agents' replication, rewind and base backup connections (their pgpass file).
        self._set_test_user_password(m1.socket_dir, m1.port, "autofailover")
        _secret_file(self.monitors_pgpass, f"*:*:*:{TEST_USER}:{self.user_password}\n", owner=True)
        m1.start_agent()
        self.wait_for(m1.leads, "m1 to hold the leader lease", 60, m1.log_tail)
        self.leases = LeaseChecker(list(self.monitors.values())).start()   # m2 is sampled once it exists
        self._create_monitor_cmd(m2, standby_of=m1)
        m2.start_agent()
        self.wait_monitors_ready(timeout=90)
        socks = ",".join(m.socket_dir for m in self.monitors.values())
        self.env["AUTOFAILOVER_MONITOR"] = (f"host={socks} port={MONITOR_PORT},{MONITOR_PORT} dbname=autofailover "
                                            "target_session_attrs=read-write")

    def create(self, nodes=3):
        t0 = time.monotonic()
        self.create_etcd()
        self.create_monitor()
        self.create_node("n1")
        self.create_nodes([f"n{i}" for i in range(2, nodes + 1)])
        self.wait_healthy()
        return time.monotonic() - t0

    # -- state ----------------------------------------------------------------------
    def wait_for(self, predicate, what, timeout, details=lambda: ""):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return time.monotonic()
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{details()}")

    def _etcd_post(self, member, path, payload, timeout=1):
        req = urllib.request.Request(f"{member.url}{path}", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.load(r)

    def etcd_leader_member(self):
        """The EtcdMember that is etcd's raft leader now (None when no live member knows one)."""
        ids = {}
        leader = None
        for m in self.etcd.values():
            if not m.running():
                continue
            try:
                st = self._etcd_post(m, "/v3/maintenance/status", {})
            except (OSError, ValueError):
                continue
            ids[st["header"]["member_id"]] = m
            leader = st.get("leader") or leader
        return ids.get(leader)

    def move_etcd_leader(self, target):
        """Make `target` etcd's leader (MoveLeader, sent to the current leader); returns when it leads."""
        current = self.etcd_leader_member()
        if current is target:
            return
        target_id = self._etcd_post(target, "/v3/maintenance/status", {})["header"]["member_id"]
        self._etcd_post(current, "/v3/maintenance/transfer-leadership", {"targetID": target_id}, timeout=5)
        self.wait_for(lambda: self.etcd_leader_member() is target, f"etcd leader {target.name}", 15,
                      lambda: self._etcd_logs())

    def etcd_get(self, key):
        """Value of /autofailover/main/<key> through any live member, None when missing, raises when none
        answers."""
        body = json.dumps({"key": base64.b64encode(f"/autofailover/{ETCD_CLUSTER}/{key}".encode()).decode()}).encode()
        errors = []
        for m in self.etcd.values():
            try:
                req = urllib.request.Request(f"{m.url}/v3/kv/range", data=body,
                                             headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(req, timeout=1) as r:
                    kvs = json.load(r).get("kvs") or []
                return base64.b64decode(kvs[0]["value"]).decode() if kvs else None
            except (OSError, ValueError, KeyError) as e:
                errors.append(f"{m.name}: {e}")
        raise AssertionError("no etcd member answered: " + "; ".join(errors))

    def leader(self):
        """The monitor with a valid leader lease now (from the lease checker's samples), or None."""
        if self.leases is None:
            leaders = [m for m in self.monitors.values() if m.leads()]
            return leaders[0] if len(leaders) == 1 else None
        name = self.leases.current_leader()
        return self.monitors[name] if name else None

    def other_monitor(self, m):
        return next(x for x in self.monitors.values() if x is not m)

    def monitors_ready(self):
        """One monitor leads, the other streams from it and is listed in etcd's sync key (may take over)."""
        try:
            leader = self.leader()
            if leader is None:
                return False
            sync = json.loads(self.etcd_get("sync") or "{}")
            standby = self.other_monitor(leader)
            rec = standby.query("SELECT pg_is_in_recovery()")[0][0]
            return sync.get("leader") == leader.name and standby.name in (sync.get("eligible") or []) and rec
        except Exception:  # noqa: BLE001
            return False

    def wait_monitors_ready(self, timeout=120):
        return self.wait_for(self.monitors_ready, "a leader monitor and a synchronous standby monitor", timeout,
                             lambda: "\n".join(m.log_tail() for m in self.monitors.values()) + self._etcd_logs())

    def monitor_conninfo(self):
        """The monitor that leads now (a fenced old leader may still be read-write: M4); without a leader,
        the read-write one."""
        leader = self.leader()
        if leader is not None:
            return leader.conninfo()
        hosts = ",".join(m.host.ip for m in self.monitors.values())
        ports = ",".join(str(m.port) for m in self.monitors.values())
        return (f"host={hosts} port={ports} user={TEST_USER} dbname=autofailover connect_timeout=2 "
                f"tcp_user_timeout=1000 target_session_attrs=read-write passfile={self.test_pgpass}")

    # -- machines -------------------------------------------------------------------
    def crash_machine(self, host):
        """Power loss of a monitor or etcd host: link down, then every process of the namespace SIGKILLed."""
        self.net.crash(host)
        for m in self.etcd.values():
            if m.host is host:
                m.forget()
        for m in self.monitors.values():
            if m.host is host and m.agent is not None:
                try:
                    m.agent.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass

    def boot_machine(self, host):
        """Link up, its etcd member and monitor agent started (the agent restarts or rewinds Postgres)."""
        if host.isolated:
            self.net.heal(host)
        for m in self.etcd.values():
            if m.host is host and not m.running():
                m.start()
        for m in self.monitors.values():
            if m.host is host and not m.agent_running():
                m.start_agent()

    def restore_control_plane(self):
        """Every etcd member and monitor agent running (after a scenario killed some)."""
        for m in self.etcd.values():
            if not m.running():
                m.start()
        for m in self.monitors.values():
            if not m.agent_running():
                m.start_agent()

    def keeper_clients(self, m):
        """Addresses of the keepers connected to monitor m (pg_stat_activity)."""
        rows = m.query("SELECT DISTINCT host(client_addr) FROM pg_stat_activity "
                       "WHERE usename LIKE 'autofailover_keeper%' AND client_addr IS NOT NULL")
        return sorted(r[0] for r in rows)

    def teardown(self):
        if self.leases is not None:
            self.leases.stop()
        super().teardown()
        for m in self.monitors.values():
            m.teardown()
        for m in self.etcd.values():
            m.teardown()
