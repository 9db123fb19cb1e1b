"""Applications on other hosts (docs/clients.md): the monitor, two data nodes and the application each in its own
network namespace. The application reaches the nodes only through the pg_hba lines the keepers write from
`--allow-clients` (role `app`, database postgres, hostssl + scram-sha-256), with the multi-host URI printed by
`autoctl show uri`, and keeps writing through a switchover, a primary crash, an isolated primary, and a primary
crash whose rejoin goes through a base backup: 0 lost acknowledged commits, never two writers, downtimes printed. Each node also carries a pg_hba line of its own DBA;
after every role change (pg_rewind and pg_basebackup copy the new primary's pg_hba.conf) each node still has its own line and
not the other's, and both nodes hold the same application lines."""

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse

import pytest

import cluster as clustermod
import netns
from common_path import checker
from scenarios import COMMIT_TIMEOUT, FAILOVER_TIMEOUT, RATE, run_scenario

PG_BINDIR = clustermod.PG_BINDIR
APP_ROLE = "app"
HERE = os.path.dirname(os.path.abspath(__file__))
# What docs/clients.md recommends; the downtimes printed here are measured with them.
CLIENT_TIMEOUTS = ("connect_timeout=2&keepalives=1&keepalives_idle=1&keepalives_interval=1&keepalives_count=3"
                   "&tcp_user_timeout=3000")
KEPT_MESSAGE = "kept this node's own pg_hba.conf lines"


class NsWriter:
    """writer.Writer's interface for run_scenario, the writer itself running in the application's namespace."""

    def __init__(self, host, uri, name, workdir):
        self.host, self.uri, self.name = host, uri, name
        self.out = os.path.join(workdir, f"app-{name}.jsonl")
        self.progress = os.path.join(workdir, f"app-{name}.progress")
        self.proc = None
        self.started_at = self.stopped_at = None
        self._records = []

    def start(self):
        self.started_at = time.time()
        self.proc = self.host.popen(["/usr/bin/python3", os.path.join(HERE, "app_writer.py"), "--uri", self.uri,
                                     "--out", self.out, "--progress", self.progress, "--name", self.name,
                                     "--rate", RATE, "--commit-timeout", COMMIT_TIMEOUT], user=False)
        return self

    def _progress(self):
        try:
            with open(self.progress) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {"acks": 0, "last_connect_error": ""}

    @property
    def ack_count(self):
        return self._progress()["acks"]

    def wait_for_acks(self, n, timeout=60.0):
        target = self.ack_count + n
        deadline = time.monotonic() + timeout
        while self.ack_count < target:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"application {self.name}: {self.ack_count}/{target} acks after {timeout}s; "
                                     f"progress {self._progress()}")
            time.sleep(0.05)

    def stop(self):
        if self.proc is None or self.stopped_at is not None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=COMMIT_TIMEOUT + 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        header, self._records = checker.load_records(self.out)
        self.started_at = header.get("started_at", self.started_at)
        self.stopped_at = header.get("stopped_at") or time.time()

    def records(self):
        return list(self._records)


class Setup:
    pass


@pytest.fixture(scope="module")
def s(request):
    reason = netns.netns_unavailable()
    if reason:
        pytest.skip(reason)
    if not os.path.exists(clustermod.AUTOCTL):
        pytest.skip(f"autoctl not found at {clustermod.AUTOCTL} (set AUTOCTL)")
    net = netns.Net()
    workdir = tempfile.mkdtemp(prefix="autofailover-clients-")
    c = None
    try:
        st = Setup()
        st.net, st.workdir = net, workdir
        st.app = net.add_host("app")
        c = clustermod.Cluster(net, workdir)
        # n1 admits the application from its namespace at creation; n2 gets the same list later through
        # `autoctl set node allow-clients` (test_allow_clients_is_what_lets_the_application_in).
        access = ["--client-database", "postgres", "--client-role", APP_ROLE]
        c.create_extra_args["n1"] = ["--allow-clients", f"{st.app.ip}/32"] + access
        c.create_extra_args["n2"] = access
        took = c.create(nodes=2)
        print(f"\n[setup] monitor + 2 nodes + application namespace healthy after {took:.1f}s ({workdir})")
        st.c = c
        st.app_password = secrets.token_hex(12)
        clustermod._psql_as_test_user(c.nodes["n1"].socket_dir(), c.nodes["n1"].port, "postgres",
                                      f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{st.app_password}';"
                                      f"GRANT CREATE ON SCHEMA public TO {APP_ROLE};")
        # The application's own pgpass file, on its host (root's here: the writer runs as root in its namespace).
        st.app_pgpass = os.path.join(workdir, "app.pgpass")
        clustermod._secret_file(st.app_pgpass, f"*:*:*:{APP_ROLE}:{st.app_password}\n", owner=False)
        yield st
    finally:
        if c is not None:
            c.teardown()
        net.teardown()
        if request.module.__dict__.get("_faults_failed") or os.environ.get("AUTOFAILOVER_FAULTS_KEEP"):
            print(f"\nkept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def app_psql(st, node, sql="SELECT 1", sslmode="require", user=APP_ROLE):
    conninfo = (f"host={node.host.ip} port={node.port} user={user} dbname=postgres sslmode={sslmode} "
                f"connect_timeout=3 passfile={st.app_pgpass}")
    return st.app.run([f"{PG_BINDIR}/psql", "-X", "-At", "-d", conninfo, "-c", sql], user=False, check=False,
                      timeout=30)


def hba_text(node):
    with open(os.path.join(node.pgdata, "pg_hba.conf")) as f:
        return f.read()


def client_lines(text):
    return [l for l in text.splitlines()
            if l.startswith("host all autofailover_replicator,autofailover_monitor ") or
            re.match(rf"hostssl postgres {APP_ROLE} ", l)]


def add_own_dba_line(node):
    """A line only this node's DBA wrote, below the keeper's block."""
    with open(os.path.join(node.pgdata, "pg_hba.conf"), "a") as f:
        f.write(f"host all dba_only_{node.name} 192.0.2.1/32 reject\n")


def check_hba(st, where):
    texts = {n.name: hba_text(n) for n in st.c.nodes.values()}
    for name, text in texts.items():
        assert f"dba_only_{name} " in text, f"{where}: {name} lost its own DBA line:\n{text}"
        for other in texts:
            if other != name:
                assert f"dba_only_{other} " not in text, f"{where}: {name} holds {other}'s DBA line:\n{text}"
        assert text.startswith("# BEGIN autofailover"), f"{where}: {name}'s keeper block is not first:\n{text}"
    lines = {name: client_lines(text) for name, text in texts.items()}
    first = next(iter(lines.values()))
    assert first, f"{where}: no application line: {texts}"
    assert all(l == first for l in lines.values()), f"{where}: application lines differ between nodes: {lines}"


def formation_uri(st):
    n1 = st.c.nodes["n1"]
    r = st.c.autoctl(n1.host, "show", "uri", "--pgdata", n1.pgdata, "--user", APP_ROLE)
    print(f"\n[autoctl show uri]\n{r.stdout}")
    m = re.search(r"(postgres(?:ql)?://" + APP_ROLE + r"@\S+)", r.stdout)
    assert m, r.stdout
    assert "sslmode=require" in m.group(1), "a node with TLS and no CA: the URI asks for TLS"
    assert "target_session_attrs=read-write" in m.group(1)
    assert f"admits role {APP_ROLE} to database postgres from {st.app.ip}/32 (hostssl scram-sha-256)" in r.stdout
    return f"{m.group(1)}&{CLIENT_TIMEOUTS}&passfile={urllib.parse.quote(st.app_pgpass)}"


def test_allow_clients_is_what_lets_the_application_in(s):
    n1, n2 = s.c.nodes["n1"], s.c.nodes["n2"]
    # n2 was created without --allow-clients: the application cannot log in there at all.
    r = app_psql(s, n2)
    assert r.returncode != 0 and "no pg_hba.conf entry" in r.stderr, r.stderr
    r = app_psql(s, n1)
    assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
    # hostssl: the same role without TLS finds no line; another role finds none either.
    r = app_psql(s, n1, sslmode="disable")
    assert r.returncode != 0 and "no pg_hba.conf entry" in r.stderr, r.stderr
    r = app_psql(s, n1, user="autofailover_replicator")
    assert r.returncode != 0 and "rejects connection" in r.stderr, r.stderr
    # Bad values are refused before anything is written.
    for bad in ("all", "samenet", "10.200.0.0/8", "db.example.com"):
        r = s.c.autoctl(n2.host, "set", "node", "allow-clients", bad, "--pgdata", n2.pgdata, check=False)
        assert r.returncode == 1 and "allow-clients" in r.stderr, (bad, r.stdout, r.stderr)
    before = hba_text(n2)
    r = s.c.autoctl(n2.host, "set", "node", "allow-clients", f"{s.app.ip}/32", "--pgdata", n2.pgdata)
    assert f"now admits {APP_ROLE} from {s.app.ip}/32" in r.stdout, r.stdout
    assert hba_text(n2) != before
    deadline = time.monotonic() + 5
    while (r := app_psql(s, n2)).returncode != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert r.returncode == 0 and r.stdout.strip() == "1", r.stderr
    for node in s.c.nodes.values():
        add_own_dba_line(node)
    check_hba(s, "after allow-clients")
    s.uri = formation_uri(s)


def _scenario(s, sid, title, inject, expect_failover):
    rewound_before = {n.name: _kept_count(n) for n in s.c.nodes.values()}
    result = run_scenario(s.c, sid, title, inject, expect_failover=expect_failover,
                          make_writer=lambda name: NsWriter(s.app, s.uri, name, s.workdir))
    check_hba(s, sid)
    rewound = [n for n in s.c.nodes.values() if _kept_count(n) > rewound_before[n.name]]
    print(f"[{sid}] application in its own namespace: longest write gap {result.longest_gap_s:.2f}s, "
          f"{result.acked} acked, {len(result.lost_ids)} lost; own pg_hba lines put back after pg_rewind/base "
          f"backup on: {[n.name for n in rewound] or 'none'}")
    return result, rewound


def wait_promoted(c, old_name):
    """Two nodes: the new primary runs as wait_primary (no standby to wait for) until the old one is back."""
    return c.wait_until(lambda st: any(n != old_name and r["reported_state"] in ("primary", "wait_primary")
                                       and r["goal_state"] == r["reported_state"] for n, r in st.items()),
                        f"a primary other than {old_name}", FAILOVER_TIMEOUT)


def _count(node, text):
    path = os.path.join(node.cluster.workdir, f"{node.name}.keeper.out")
    try:
        with open(path, errors="replace") as f:
            return f.read().count(text)
    except OSError:
        return 0


def _kept_count(node):
    return _count(node, KEPT_MESSAGE)


def test_C1_switchover(s):
    def inject(c, ctx):
        c.autoctl(c.monitor_host, "perform", "switchover", "--wait", "60")
        ctx["t_repaired"] = time.time()
    _scenario(s, "C1", "application on another host: switchover", inject, expect_failover=True)


def test_C2_primary_crash(s):
    old = {}

    def inject(c, ctx):
        p = c.primary()
        old["name"] = p.name
        p.crash()
        wait_promoted(c, p.name)
        ctx["failover_s"] = round(time.time() - ctx["t_fault"], 2)
        ctx["t_repaired"] = time.time()
        p.boot()
    _, rewound = _scenario(s, "C2", "application on another host: primary machine crash", inject, expect_failover=True)
    # The crashed primary rejoined through pg_rewind, which copied the new primary's pg_hba.conf.
    assert old["name"] in [n.name for n in rewound], "the old primary's pg_hba.conf lines were not put back"


def test_C3_primary_isolated(s):
    old = {}

    def inject(c, ctx):
        p = c.primary()
        old["name"] = p.name
        c.net.isolate(p.host)
        wait_promoted(c, p.name)
        ctx["failover_s"] = round(time.time() - ctx["t_fault"], 2)
        time.sleep(1)
        if p.name in c.writable_now():
            ctx.setdefault("problems", []).append("the isolated old primary still accepts writes after failover")
        ctx["t_repaired"] = time.time()
        c.net.heal(p.host)
    _, rewound = _scenario(s, "C3", "application on another host: primary isolated", inject, expect_failover=True)
    assert old["name"] in [n.name for n in rewound], "the old primary's pg_hba.conf lines were not put back"


def test_C4_primary_crash_rejoin_by_base_backup(s):
    """The old primary rejoins through a fresh base backup (as after a rewind that could not follow), which copies
    the new primary's whole data directory, pg_hba.conf included."""
    old = {}

    def inject(c, ctx):
        p = c.primary()
        old["name"] = p.name
        p.crash()
        wait_promoted(c, p.name)
        ctx["failover_s"] = round(time.time() - ctx["t_fault"], 2)
        path = os.path.join(p.state_dir, "state.json")
        with open(path) as f:
            state = json.load(f)
        state["rejoin_needs_base_backup"] = True
        with open(path, "w") as f:   # in place: keeps the owner and mode
            json.dump(state, f)
        old["backups"] = _count(p, "pg_basebackup from")
        ctx["t_repaired"] = time.time()
        p.boot()
    _, rewound = _scenario(s, "C4", "application on another host: primary crash, rejoin by base backup", inject,
                           expect_failover=True)
    node = s.c.nodes[old["name"]]
    assert _count(node, "pg_basebackup from") > old["backups"], "the old primary did not rejoin by base backup"
    assert old["name"] in [n.name for n in rewound], "the old primary's pg_hba.conf lines were not put back"
