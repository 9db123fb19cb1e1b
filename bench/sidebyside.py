#!/usr/bin/python3
"""autofailover next to pg_auto_failover 2.0, at DEFAULT settings, on 127.0.0.1: a benchmark, not a test
(no timed assertions). Per system and round, from nothing:
  formation    `create monitor`, the first node, the second node, until one primary + one secondary and the
               monitor's probes say healthy
  switchover   a writer (tests/common/writer.py, one INSERT every 20 ms through the multi-host URI with
               target_session_attrs=read-write) runs; `perform switchover`: the command's wall time and the
               writer's downtime (longest gap between two acknowledged commits)
  crash        kill -9 of the primary's keeper tree, postmaster and every child: writer downtime
  rejoin       --rest s after the writes resumed, the old primary's keeper is started again: seconds until it
               reports secondary (its goal) and until the formation is healthy again
  pgkill       kill -9 of the primary's postmaster only (its keeper runs): the writer's stall, and whether the
               monitor failed over instead of the keeper restarting Postgres in place
The systems alternate (A, B, A, B, ...). Prints one line per run and a table with the ratio of medians.
ours (A) runs as the test user through tests/e2e/formation.py; pg_auto_failover (B, Debian packages
postgresql-15-auto-failover + pg-auto-failover-cli, installed by --install-deps) runs as the OS user postgres
with --auth trust --no-ssl (its own defaults otherwise). Run as root, with the installed autoctl, under the
install lock:
  flock -o /tmp/autofailover-install.lock /usr/bin/python3 bench/sidebyside.py --install-deps --rounds 1"""

import argparse
import json
import os
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "common"))

import psycopg  # noqa: E402

import rejoin as rj  # noqa: E402  (defaults for formation.py, crash(), descendants())
import formation as fm  # noqa: E402
import checker  # noqa: E402
from writer import Writer  # noqa: E402

PG_BINDIR = "/usr/lib/postgresql/15/bin"
PGAF = "/usr/bin/pg_autoctl"
POLL = 0.05


def load1():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def wait_for(probe, what, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if probe():
                return time.monotonic()
        except Exception:  # noqa: BLE001 -- a monitor that is starting or busy: poll again
            pass
        time.sleep(POLL)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def downtime_since(writer, since_wall):
    return checker.downtime([a for a in list(writer.attempts) if a.t_done > since_wall - 5]).longest


def first_ack_elsewhere(writer, since_wall, old_port, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        acks = [a for a in list(writer.attempts)
                if a.status == "ack" and a.t_done > since_wall and f":{old_port}#" not in a.server]
        if acks:
            return min(a.t_done for a in acks)
        time.sleep(POLL)
    raise AssertionError("no write acknowledged by another node")


# -- A: autofailover ---------------------------------------------------------------------------------------
class Ours:
    label = "autofailover"

    def __init__(self, workdir, port_base):
        self.f = fm.Formation(workdir, port_base)

    def create(self):
        self.f.create_monitor()
        for name in ("n1", "n2"):
            self.f.create_node(name)
            wait_for(lambda: all(s["reported_state"] == s["goal_state"] for s in self.f.state().values()),
                     f"{name} to settle", 120)
        wait_for(self.healthy, "healthy", 120)

    def state(self):
        return {n: (s["reported_state"], s["goal_state"], s["keeper_reporting"] and s["health"] == "good")
                for n, s in self.f.state().items()}

    def healthy(self):
        return rj.probes_good(self.f.state())

    def uri(self):
        return self.f.client_uri()

    def switchover(self):
        self.f.autoctl("perform", "switchover", "--wait", "60")

    def primary(self):
        return self.f.primary()

    def crash(self, node):
        rj.crash(node)

    def restart(self, node):
        node.start_keeper()

    def is_secondary(self, node):
        s = self.f.state()[node.name]
        return s["reported_state"] == s["goal_state"] == "secondary" and s["keeper_reporting"]

    def teardown(self):
        self.f.teardown()


# -- B: pg_auto_failover 2.0 -------------------------------------------------------------------------------
class Pgaf:
    label = "pg_auto_failover 2.0"

    class Node:
        def __init__(self, name, port, pgdata):
            self.name, self.port, self.pgdata = name, port, pgdata
            self.keeper = None

        def postmaster_pid(self):
            try:
                with open(os.path.join(self.pgdata, "postmaster.pid")) as fh:
                    return int(fh.readline())
            except (OSError, ValueError):
                return None

        def keeper_pid(self):
            return self.keeper.pid if self.keeper is not None and self.keeper.poll() is None else None

    def __init__(self, workdir, port_base):
        self.workdir = workdir
        self.port_base = port_base
        pw = pwd.getpwnam("postgres")
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        os.makedirs(workdir, exist_ok=True)
        os.chown(workdir, self.uid, self.gid)
        os.chmod(workdir, 0o755)
        xdg = {}
        for key, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_RUNTIME_DIR", "run")):
            path = os.path.join(workdir, "xdg", sub)
            os.makedirs(path, mode=0o700, exist_ok=True)
            xdg[key] = path
        for root, dirs, _ in os.walk(workdir):
            for d in dirs:
                os.chown(os.path.join(root, d), self.uid, self.gid)
        self.env = {"HOME": pw.pw_dir, "PATH": f"{PG_BINDIR}:/usr/bin:/bin", "LC_ALL": "C.UTF-8", **xdg}
        self.procs = []
        self.nodes = {}
        self.monitor_pgdata = os.path.join(workdir, "monitor")
        self.monitor_uri = f"postgres://autoctl_node@127.0.0.1:{port_base}/pg_auto_failover?sslmode=disable"

    def _argv(self, args):
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--", PGAF] + args

    def _spawn(self, args, logname):
        log = open(os.path.join(self.workdir, logname), "ab")
        p = subprocess.Popen(self._argv(args), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             cwd=self.workdir, env=self.env, start_new_session=True)
        self.procs.append(p)
        return p

    def run(self, args, timeout=180):
        r = subprocess.run(self._argv(args), capture_output=True, text=True, timeout=timeout, cwd=self.workdir,
                           env=self.env)
        if r.returncode != 0:
            raise AssertionError(f"pg_autoctl {' '.join(args)} exited {r.returncode}: {r.stderr[-2000:]}")
        return r

    def rows(self):
        with psycopg.connect(f"host=127.0.0.1 port={self.port_base} user=autoctl_node dbname=pg_auto_failover "
                             "connect_timeout=2 sslmode=disable", autocommit=True) as conn:
            return conn.execute("SELECT nodename, current_group_state::text, assigned_group_state::text, health "
                                "FROM pgautofailover.current_state('default')").fetchall()

    def state(self):
        return {r[0]: (r[1], r[2], r[3] == 1) for r in self.rows()}

    def healthy(self):
        s = self.state()
        roles = sorted(v[0] for v in s.values())
        return len(s) == 2 and all(v[0] == v[1] and v[2] for v in s.values()) and roles == ["primary", "secondary"]

    def create(self):
        self._spawn(["create", "monitor", "--pgdata", self.monitor_pgdata, "--pgport", str(self.port_base),
                     "--hostname", "127.0.0.1", "--auth", "trust", "--no-ssl", "--pgctl",
                     os.path.join(PG_BINDIR, "pg_ctl"), "--run"], "monitor.out")
        wait_for(lambda: self.rows() is not None, "the pg_auto_failover monitor", 120)
        for i, name in enumerate(("n1", "n2"), start=1):
            node = self.Node(name, self.port_base + i, os.path.join(self.workdir, name))
            self.nodes[name] = node
            node.keeper = self._spawn(
                ["create", "postgres", "--pgdata", node.pgdata, "--pgport", str(node.port), "--hostname",
                 "127.0.0.1", "--listen", "127.0.0.1", "--name", name, "--monitor", self.monitor_uri, "--auth",
                 "trust", "--no-ssl", "--pgctl", os.path.join(PG_BINDIR, "pg_ctl"), "--run"], f"{name}.out")
            want = ("single",) if i == 1 else ("primary", "secondary")
            wait_for(lambda: sorted(v[0] for v in self.state().values() if v[0] == v[1]) == sorted(want),
                     f"{name} to settle", 180)
        wait_for(self.healthy, "healthy", 120)

    def uri(self):
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes.values())
        return f"postgresql://postgres@{hosts}/postgres?target_session_attrs=read-write&sslmode=disable"

    def switchover(self):
        self.run(["perform", "switchover", "--monitor", self.monitor_uri, "--formation", "default", "--group", "0"])

    def primary(self):
        names = [n for n, v in self.state().items() if v[0] == v[1] == "primary"]
        assert len(names) == 1, self.state()
        return self.nodes[names[0]]

    def crash(self, node):
        rj.crash(node)  # keeper_pid()/postmaster_pid() and their descendants, kill -9
        node.keeper = None

    def restart(self, node):
        node.keeper = self._spawn(["run", "--pgdata", node.pgdata], f"{node.name}.out")

    def is_secondary(self, node):
        v = self.state()[node.name]
        return v[0] == v[1] == "secondary"

    def teardown(self):
        pids = []
        for p in self.procs:
            if p.poll() is None:
                pids += [p.pid] + rj.descendants(p.pid)
        for path in [self.monitor_pgdata] + [n.pgdata for n in self.nodes.values()]:
            pm = self.Node("", 0, path).postmaster_pid()
            if pm and rj.pid_alive(pm):
                pids += [pm] + rj.descendants(pm)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 15
            while any(rj.pid_alive(p) for p in pids) and time.monotonic() < deadline:
                time.sleep(0.1)
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def one_run(system_cls, port_base, rest, keep):
    workdir = tempfile.mkdtemp(prefix="autofailover-sbs-")
    system = system_cls(workdir, port_base)
    row = {"system": system.label, "load": load1()}
    writer = None
    try:
        t0 = time.monotonic()
        system.create()
        row["formation_s"] = time.monotonic() - t0
        writer = Writer(system.uri(), rate=50, name="sbs")
        writer.start()
        writer.wait_for_acks(50, timeout=60)
        t_wall = time.time()
        t0 = time.monotonic()
        system.switchover()
        row["switchover_cmd_s"] = time.monotonic() - t0
        wait_for(system.healthy, "healthy after the switchover", 120)
        writer.wait_for_acks(25, timeout=60)
        row["switchover_downtime_s"] = downtime_since(writer, t_wall)
        old = system.primary()
        time.sleep(1)
        t_wall = time.time()
        system.crash(old)
        first = first_ack_elsewhere(writer, t_wall, old.port)
        row["crash_first_ack_s"] = first - t_wall
        writer.wait_for_acks(25, timeout=60)
        row["crash_downtime_s"] = downtime_since(writer, t_wall)
        time.sleep(rest)
        t0 = time.monotonic()
        system.restart(old)
        row["rejoin_secondary_s"] = wait_for(lambda: system.is_secondary(old), "the old primary secondary",
                                             180) - t0
        row["rejoin_healthy_s"] = wait_for(system.healthy, "healthy after the rejoin", 120) - t0
        # The primary's postmaster alone killed, its keeper alive: restarted in place, or a failover.
        old = system.primary()
        writer.wait_for_acks(25, timeout=60)
        t_wall = time.time()
        os.kill(old.postmaster_pid(), signal.SIGKILL)
        writer.wait_for_acks(25, timeout=120)
        wait_for(system.healthy, "healthy after the postmaster kill", 180)
        row["pgkill_stall_s"] = downtime_since(writer, t_wall)
        row["pgkill_failover"] = int(system.primary().name != old.name)
    finally:
        if writer is not None:
            writer.stop()
            row["acked"] = sum(1 for a in writer.attempts if a.status == "ack")
        system.teardown()
        if keep:
            print(f"kept {workdir}", flush=True)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}


FIGURES = [
    ("formation_s", "monitor + 2 nodes from nothing to healthy"),
    ("switchover_downtime_s", "switchover, writer downtime"),
    ("switchover_cmd_s", "switchover command"),
    ("crash_downtime_s", "primary crash (keeper + postmaster kill -9), writer downtime"),
    ("rejoin_secondary_s", "old primary's keeper restarted → secondary again"),
    ("rejoin_healthy_s", "old primary's keeper restarted → formation healthy"),
    ("pgkill_stall_s", "primary postmaster kill -9 (keeper alive), writer stall"),
]


def install_deps():
    if os.path.exists(PGAF) and os.path.isdir("/usr/share/postgresql/15/extension") and \
            os.path.exists("/usr/share/postgresql/15/extension/pgautofailover.control"):
        return
    subprocess.run(["flock", "/tmp/autofailover-apt.lock", "apt-get", "install", "-y", "--no-install-recommends",
                    "postgresql-15-auto-failover", "pg-auto-failover-cli"], check=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=1, help="A and B runs each (alternating)")
    ap.add_argument("--port-base", type=int, default=7170, help="A uses it, B uses it + 10 (3 ports each)")
    ap.add_argument("--rest", type=float, default=5.0, help="seconds between the writes resuming and the restart")
    ap.add_argument("--install-deps", action="store_true", help="apt-get install pg_auto_failover 2.0 if missing")
    ap.add_argument("--keep", action="store_true", help="keep the work directories (logs)")
    ap.add_argument("--json", help="write every row to this file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the servers run as unprivileged users")
    if args.install_deps:
        install_deps()
    rows = []
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    for i in range(args.rounds):
        for cls, port in ((Ours, args.port_base), (Pgaf, args.port_base + 10)):
            row = one_run(cls, port, args.rest, args.keep)
            row["round"] = i + 1
            print(json.dumps(row), flush=True)
            rows.append(row)
    print(f"\n{started} to {time.strftime('%H:%M:%S UTC', time.gmtime())}, load at run starts "
          f"{min(r['load'] for r in rows):.2f}-{max(r['load'] for r in rows):.2f}, {args.rounds} round(s)")
    print("| figure | autofailover | pg_auto_failover 2.0 | ratio (B/A) |\n|---|---|---|---|")
    for key, text in FIGURES:
        a = [r[key] for r in rows if r["system"] == Ours.label and key in r]
        b = [r[key] for r in rows if r["system"] == Pgaf.label and key in r]
        if not a or not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        each = lambda v: " / ".join(f"{x:.2f}" for x in v)  # noqa: E731
        ratio = f"{mb / ma:.2f}" if ma > 0 else "-"
        print(f"| {text} | {each(a)} s | {each(b)} s | {ratio} |")
    failovers = {label: sum(r.get("pgkill_failover", 0) for r in rows if r["system"] == label)
                 for label in (Ours.label, Pgaf.label)}
    runs = {label: sum(1 for r in rows if r["system"] == label and "pgkill_failover" in r)
            for label in (Ours.label, Pgaf.label)}
    print(f"| failovers after the postmaster kill | {failovers[Ours.label]} of {runs[Ours.label]} | "
          f"{failovers[Pgaf.label]} of {runs[Pgaf.label]} | |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
