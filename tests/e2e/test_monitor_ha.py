"""Replicated monitors (docs/monitor-ha.md), M3: a real etcd, two monitors (leader + streaming standby,
each with its agent `autoctl run-monitor`), two data nodes, the writer and the split-brain probe.

The leader monitor's host crashes (kill -9 of its agent and of every process of its Postgres): the standby
monitor must lead within TAKEOVER_BOUND_S at the agent's default timeouts; then the data primary's host
crashes and the new leader fails it over. The old leader monitor returns and rejoins as a standby
(pg_rewind), becomes synchronous again, and the roles are swapped once more the other way. 0 lost
acknowledged commits, never two writable primaries, and never two monitors with a valid leader lease."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import psycopg
import pytest

from formation import LOCALHOST, Formation, as_user, pid_alive, stop_pid, TEST_USER
from formation_base import MonitorAgent
from processes import children_of
from workload import Workload

PORT_BASE = int(os.environ.get("AUTOFAILOVER_E2E_PORT_BASE", "6500"))
MONITOR_PORTS = (PORT_BASE, PORT_BASE + 1)
NODE_PORT_BASE = PORT_BASE + 10          # data nodes on +11, +12
ETCD_CLIENT_PORT = PORT_BASE + 20
ETCD_PEER_PORT = PORT_BASE + 21
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
# At the agent's defaults (lease TTL 3 s, renew 0.5 s, margin 0.5 s) the expected takeover is 3-4.5 s
# (docs/monitor-ha.md); the bound leaves room for a loaded 2-core machine.
TAKEOVER_BOUND_S = float(os.environ.get("AUTOFAILOVER_M3_TAKEOVER_BOUND", "8"))
REPORT = os.environ.get("AUTOFAILOVER_E2E_REPORT")


class Monitor(MonitorAgent):
    """A replicated monitor on 127.0.0.1 (formation_base.MonitorAgent on the LocalHost strategy)."""

    def __init__(self, ha, name, port):
        super().__init__(ha.workdir, LOCALHOST, name, port)
        self.ha = ha

    def agent_env(self):
        return self.ha.env

    def crash_host(self):
        """kill -9 the agent, the postmaster and every child of the postmaster at once."""
        pids = [self.agent.pid] if self.agent_running() else []
        pm = self.postmaster_pid()
        if pm is not None and pid_alive(pm):
            pids += [pm] + children_of(pm)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.agent is not None:
            self.agent.wait(timeout=10)

    def conninfo(self):
        return f"host=127.0.0.1 port={self.port} user={TEST_USER} dbname=autofailover connect_timeout=1"

    def lease(self):
        """(in_recovery, lease valid) or None when it does not answer."""
        try:
            with psycopg.connect(self.conninfo(), autocommit=True) as conn:
                return conn.execute("SELECT pg_is_in_recovery(), (SELECT valid FROM autofailover.leader_lease())"
                                    ).fetchone()
        except psycopg.Error:
            return None

    def leads(self):
        s = self.lease()
        return s is not None and not s[0] and s[1]


class HaFormation(Formation):
    """Formation whose monitor is two replicated monitors behind a multi-host URI."""

    def __init__(self, workdir):
        super().__init__(workdir, NODE_PORT_BASE)
        self.etcd = None
        self.etcd_url = f"http://127.0.0.1:{ETCD_CLIENT_PORT}"
        self.monitors = {}
        hosts = ",".join(f"127.0.0.1:{p}" for p in MONITOR_PORTS)
        self.operator_uri = f"postgres://{TEST_USER}@{hosts}/autofailover?target_session_attrs=read-write"
        self.keeper_uri = f"postgres://autofailover_keeper@{hosts}/autofailover?target_session_attrs=read-write"
        self.env["AUTOFAILOVER_MONITOR"] = self.operator_uri
        self.lease_overlaps = []
        self._lease_stop = threading.Event()
        self._lease_thread = None

    def start_etcd(self):
        data = os.path.join(self.workdir, "etcd")
        log = open(os.path.join(self.workdir, "etcd.out"), "ab")
        self.etcd = subprocess.Popen(as_user([
            ETCD, "--name", "e1", "--data-dir", data,
            "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", f"http://127.0.0.1:{ETCD_PEER_PORT}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{ETCD_PEER_PORT}",
            "--initial-cluster", f"e1=http://127.0.0.1:{ETCD_PEER_PORT}"]),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir,
            start_new_session=True)
        self.etcd_log = log
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=1) as r:
                    if json.load(r).get("health") == "true":
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError("etcd did not become healthy")

    def create_monitor(self, name, port, standby_of=None):
        m = Monitor(self, name, port)
        self.monitors[name] = m
        args = ["create", "monitor", "--pgdata", m.pgdata, "--pgport", port, "--hostname", "127.0.0.1",
                "--auth", "trust", "--no-ssl", "--etcd", self.etcd_url, "--name", name]
        if standby_of is not None:
            args += ["--standby-of", f"host=127.0.0.1 port={standby_of.port}"]
        for key, value in self.monitor_settings().items():
            args += ["--setting", f"{key}={value}"]
        self.autoctl(*args)
        m.start_agent()
        return m

    @staticmethod
    def monitor_settings():
        from formation import MONITOR_SETTINGS
        return MONITOR_SETTINGS

    def monitor_conninfo(self):
        hosts = ",".join("127.0.0.1" for _ in MONITOR_PORTS)
        ports = ",".join(str(p) for p in MONITOR_PORTS)
        return (f"host={hosts} port={ports} user={TEST_USER} dbname=autofailover connect_timeout=2 "
                f"target_session_attrs=read-write")

    def show_monitors(self):
        return json.loads(self.autoctl("show", "monitors", "--etcd", self.etcd_url, "--json").stdout)

    def wait_monitors(self, predicate, what, timeout=60):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.show_monitors()
                if predicate(last):
                    return last
            except AssertionError as e:
                last = str(e)
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; last: {last}\n"
                             + "\n".join(m.log_tail() for m in self.monitors.values()))

    # Never two monitors with a valid leader lease at the same instant (sampled every 50 ms).
    def start_lease_checker(self):
        def run():
            while not self._lease_stop.is_set():
                leaders = [m.name for m in list(self.monitors.values()) if m.leads()]
                if len(leaders) > 1:
                    self.lease_overlaps.append((time.time(), leaders))
                time.sleep(0.05)
        self._lease_thread = threading.Thread(target=run, daemon=True)
        self._lease_thread.start()

    def teardown(self):
        self._lease_stop.set()
        if self._lease_thread is not None:
            self._lease_thread.join(5)
        super().teardown()
        for m in self.monitors.values():
            m.teardown()
        if self.etcd is not None:
            stop_pid(self.etcd.pid, signal.SIGTERM)
            self.etcd_log.close()


@pytest.fixture(scope="module")
def ha(request):
    import tempfile
    workdir = tempfile.mkdtemp(prefix="autofailover-e2e-monitor-ha-")
    f = HaFormation(workdir)
    failed = []
    request.node.failed_flag = failed
    try:
        started = time.monotonic()
        f.start_etcd()
        m1 = f.create_monitor("m1", MONITOR_PORTS[0])
        deadline = time.monotonic() + 30
        while not m1.leads():
            assert time.monotonic() < deadline, "m1 never got the leader lease\n" + m1.log_tail()
            time.sleep(0.1)
        m2 = f.create_monitor("m2", MONITOR_PORTS[1], standby_of=m1)
        f.wait_monitors(lambda s: any(m["name"] == "m2" and m["may_take_over"] for m in s["monitors"]),
                        "m2 to be a synchronous standby monitor")
        f.start_lease_checker()
        f.create_node("node1")
        f.create_nodes([{"name": "node2"}])
        f.wait_healthy()
        print(f"\n[monitor-ha] etcd + 2 monitors + 2 nodes healthy after {time.monotonic() - started:.1f}s")
        yield f
    finally:
        f.teardown()
        if getattr(request.session, "testsfailed", 0):
            print(f"\nkept {workdir} (logs of the failed run)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def report(line, **fields):
    print("\n" + line)
    if REPORT:
        with open(REPORT, "a") as f:
            f.write(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "scenario": line, **fields}) + "\n")


def takeover(ha, old, new):
    """Crash old's host; returns seconds until new leads (promoted, valid lease)."""
    old.crash_host()
    crashed = time.monotonic()
    deadline = crashed + 60
    while not new.leads():
        assert time.monotonic() < deadline, f"{new.name} did not take over\n" + new.log_tail()
        time.sleep(0.02)
    return time.monotonic() - crashed


def rejoin(ha, old):
    """Restart old's agent (the host came back): it must rejoin as a synchronous standby."""
    old.start_agent()
    started = time.monotonic()
    ha.wait_monitors(lambda s: any(m["name"] == old.name and m["postgres"] == "standby" and m["may_take_over"]
                                   for m in s["monitors"]),
                     f"{old.name} to rejoin as a synchronous standby", timeout=120)
    with open(os.path.join(ha.workdir, f"{old.name}.agent.out"), errors="replace") as f:
        failed = [line.strip() for line in f if "pg_rewind failed" in line]
    how = f"a fresh base backup ({failed[-1][-300:]})" if failed else "pg_rewind"
    report(f"[M3] {old.name} back as a synchronous standby {time.monotonic() - started:.2f}s after its agent "
           f"restarted, through {how}")


def test_m3_leader_monitor_crash_then_primary_crash(ha):
    m1, m2 = ha.monitors["m1"], ha.monitors["m2"]
    shown = ha.autoctl("show", "monitors", "--pgdata", m1.pgdata).stdout
    assert "leader m1" in shown and "m2" in shown, shown
    with Workload(ha, "M3 leader monitor crash, then primary crash") as w:
        w.wait_for_commits(20)
        took = takeover(ha, m1, m2)
        report(f"[M3] standby monitor m2 leads {took:.2f}s after the leader monitor's host crashed "
               f"(bound {TAKEOVER_BOUND_S}s)", takeover_s=took)
        assert took <= TAKEOVER_BOUND_S, f"takeover took {took:.2f}s"
        # Keepers follow the new leader through the multi-host URI.
        ha.wait_healthy()
        w.wait_for_commits(20)

        old = ha.primary()
        old.kill_keeper(signal.SIGKILL)
        old.kill_postgres(signal.SIGKILL)
        killed = time.monotonic()
        # With two nodes the promoted one runs as wait_primary until the old primary is back.
        promoted = ("primary", "wait_primary")
        state = ha.wait_until(lambda s: any(n != old.name and st["reported_state"] in promoted
                                            for n, st in s.items()), "a standby to be promoted", timeout=60)
        new = next(n for n, st in state.items() if n != old.name and st["reported_state"] in promoted)
        failover = time.monotonic() - killed
        report(f"[M3] data primary {old.name} crashed under the new leader monitor: {new} promoted after "
               f"{failover:.2f}s", failover_s=failover)
        w.wait_for_commits(20)
        old.start_keeper()
        ha.wait_healthy()

        # The old leader monitor comes back as a standby, then the roles swap back.
        rejoin(ha, m1)
        took_back = takeover(ha, m2, m1)
        report(f"[M3] rejoined m1 leads {took_back:.2f}s after m2's host crashed", takeover_s=took_back)
        assert took_back <= TAKEOVER_BOUND_S, f"takeover took {took_back:.2f}s"
        ha.wait_healthy()
        w.wait_for_commits(20)
        rejoin(ha, m2)
        w.wait_for_commits(20)
    w.assert_clean()
    assert not ha.lease_overlaps, f"two monitors held a valid leader lease at once: {ha.lease_overlaps[:5]}"
    events = ha.autoctl("show", "events", "--count", "100").stdout
    assert "promot" in events.lower() or "primary" in events.lower(), events


def keeper_reports(ha):
    with psycopg.connect(ha.monitor_conninfo(), autocommit=True) as conn:
        return dict(conn.execute("SELECT node_name, keeper_last_report FROM autofailover.current_state('default')"
                                 ).fetchall())


def test_m5_etcd_down_no_decision_heartbeats_go_on_then_resumes(ha):
    """etcd stops answering (SIGSTOP: what a lost quorum looks like to its clients): the leader monitor's
    lease runs out, keepers keep reporting to it, a primary crash is NOT failed over while etcd is gone;
    once etcd answers again a monitor leads and the failover happens."""
    ha.wait_healthy()
    leader = next(m for m in ha.monitors.values() if m.leads())
    with Workload(ha, "M5 etcd down, then the primary crashes") as w:
        w.wait_for_commits(20)
        os.kill(ha.etcd.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            while leader.leads():
                assert time.monotonic() - stopped < 10, "the leader kept its lease without etcd"
                time.sleep(0.02)
            fenced = time.monotonic() - stopped
            report(f"[M5] etcd frozen: leader monitor {leader.name} stopped deciding after {fenced:.2f}s",
                   fenced_s=fenced)
            assert fenced <= 3.5, fenced   # TTL 3 s - margin 0.5 s + one renew period
            before = keeper_reports(ha)
            time.sleep(1.5)
            after = keeper_reports(ha)
            assert all(after[n] > before[n] for n in before), f"heartbeats not recorded: {before} {after}"
            w.wait_for_commits(20)   # nothing breaks on the data nodes

            old = ha.primary()
            old.kill_keeper(signal.SIGKILL)
            old.kill_postgres(signal.SIGKILL)
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                state = ha.state()
                assert all(s["goal_state"] in ("primary", "secondary") for s in state.values()), ha.describe(state)
                time.sleep(0.1)
        finally:
            os.kill(ha.etcd.pid, signal.SIGCONT)
        resumed = time.monotonic()
        promoted = ("primary", "wait_primary")
        state = ha.wait_until(lambda s: any(n != old.name and st["reported_state"] in promoted
                                            for n, st in s.items()), "a failover once etcd is back", timeout=60)
        report(f"[M5] etcd back: failover done {time.monotonic() - resumed:.2f}s later",
               failover_after_resume_s=time.monotonic() - resumed)
        w.wait_for_commits(20)
        old.start_keeper()
        ha.wait_healthy()
        w.wait_for_commits(20)
    w.assert_clean()
    assert not ha.lease_overlaps, f"two monitors held a valid leader lease at once: {ha.lease_overlaps[:5]}"
