"""Backup rows B1-B4 (docs/backups.md, docs/failure-tests.md): a formation created with `--backup pgbackrest`
whose pgBackRest repository lives on its own host. The repository host (namespace "repo") runs
`pgbackrest server` (TLS, port 8432) and owns the repository directory; every data node reaches it only through
that server (`repo1-host-type=tls`): the namespaces share the filesystem, so a posix repository path on the
nodes would not be "another host". Each data node runs its own `pgbackrest server` too, because backups and
stanza-create run on the repository host and read the primary through `pg1-host-type=tls`. Certificates:
a CA and one certificate (CN af-client, IP SANs of the subnet, server and client use) made with openssl into
a 0700 directory of the test user.

Each row runs in tests/faults/scenarios.run_scenario (writer through the multi-host URI, split-brain probe,
checker: 0 lost acknowledged commits, 0 two writers) and adds its own checks in `after`:
    B1 switchover while archiving: `pgbackrest check` on the new primary; PITR of the backup into a scratch
       directory (a throwaway Postgres run as the test user, archiving off) to a time after the switchover
       holds every commit acknowledged before that time.
    B2 primary machine crash right after WAL switches: the same, across the timeline switch, and no segment
       missing from the archive from the backup's start to the end.
    B3 a standby whose data directory is removed is dropped and created again: built from the newest backup +
       archive (`standby built from pgBackRest backup` in its output), then streams.
    B4 the repository host isolated: the primary keeps committing while its archive queue (.ready) grows;
       after the heal the queue drains and `pgbackrest check` passes.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

import cluster as clustermod
import netns
from cluster import _ids, _psql_as_test_user
from common_path import writer
from processes import stop_pid  # noqa: E402  (tests/common)
from scenarios import COMMIT_TIMEOUT, HOLD, RATE, run_scenario, wait_new_primary

PG_BINDIR = clustermod.PG_BINDIR
PGBACKREST = shutil.which("pgbackrest") or "/usr/bin/pgbackrest"
STANZA = "af"
CLIENT_CN = "af-client"
TLS_PORT = 8432
PITR_PORT = int(os.environ.get("AUTOFAILOVER_FAULTS_PITR_PORT", "7340"))
PITR_TIMEOUT = 120.0
ARCHIVE_CATCHUP_TIMEOUT = float(os.environ.get("AUTOFAILOVER_FAULTS_ARCHIVE_CATCHUP", "150"))
REPO_ISOLATION_S = float(os.environ.get("AUTOFAILOVER_FAULTS_REPO_ISOLATION", "12"))
WAL_SEGMENT_BYTES = 16 * 1024 * 1024
SEGMENT_FILE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})-[0-9a-f]{40}(\.[a-z0-9]+)?$")


def _ip(index):
    return f"{netns.SUBNET}.{10 + index}"


def _user_dir(path, mode=0o700):
    os.makedirs(path, mode=mode, exist_ok=True)
    os.chmod(path, mode)
    os.chown(path, *_ids())
    return path


def _user_file(path, text, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chown(path, *_ids())


def _as_user(argv, **kw):
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("cwd", "/")
    return subprocess.run(netns.as_user_argv([str(a) for a in argv]), **kw)


def make_certificates(tls_dir, ips):
    """A CA and one certificate for every pgBackRest endpoint (server and client use, IP SANs of the hosts)."""
    _user_dir(tls_dir)
    ext = os.path.join(tls_dir, "ext.cnf")
    _user_file(ext, "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=" + ",".join(f"IP:{ip},DNS:{ip}" for ip in ips)
               + "\n")
    ca_key, ca, key, csr, crt = (os.path.join(tls_dir, n) for n in ("ca.key", "ca.crt", "af.key", "af.csr", "af.crt"))
    for argv in (["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=af-test-ca",
                  "-keyout", ca_key, "-out", ca],
                 ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={CLIENT_CN}", "-keyout", key,
                  "-out", csr],
                 ["openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
                  "-extfile", ext, "-out", crt]):
        r = _as_user(argv, timeout=60)
        assert r.returncode == 0, f"{argv[:3]}: {r.stderr}"
    for name in os.listdir(tls_dir):
        os.chmod(os.path.join(tls_dir, name), 0o600)
    return {"ca": ca, "cert": crt, "key": key}


def tls_server_lines(address, tls):
    return (f"tls-server-address={address}\ntls-server-port={TLS_PORT}\ntls-server-ca-file={tls['ca']}\n"
            f"tls-server-cert-file={tls['cert']}\ntls-server-key-file={tls['key']}\n"
            f"tls-server-auth={CLIENT_CN}={STANZA}\n")


class Repo:
    """The repository host and the pgBackRest configuration of every host."""

    def __init__(self, net, workdir):
        self.base = _user_dir(os.path.join(workdir, "pgbackrest"), 0o755)
        self.host = net.add_host("repo")
        # Cluster.create adds mon, n1, n2, n3 after it: their addresses are known now.
        self.node_ips = {f"n{i}": _ip(len(net.hosts) + i) for i in range(1, 4)}
        self.tls = make_certificates(os.path.join(self.base, "tls"), [self.host.ip] + list(self.node_ips.values()))
        self.path = _user_dir(os.path.join(self.base, "repo"))
        self.conf = os.path.join(self.base, "repo.conf")
        dirs = {k: _user_dir(os.path.join(self.base, f"repo-{k}")) for k in ("log", "lock", "spool")}
        _user_file(self.conf,
                   f"[global]\nrepo1-path={self.path}\nrepo1-retention-full=4\nlog-path={dirs['log']}\n"
                   f"lock-path={dirs['lock']}\nspool-path={dirs['spool']}\nlog-level-console=warn\n"
                   f"log-level-file=info\n" + tls_server_lines(self.host.ip, self.tls) +
                   f"\n[{STANZA}]\npg1-host-type=tls\npg1-host-ca-file={self.tls['ca']}\n"
                   f"pg1-host-cert-file={self.tls['cert']}\npg1-host-key-file={self.tls['key']}\n", 0o640)
        self.node_confs = {name: self._client_conf(name, ip) for name, ip in self.node_ips.items()}
        # the test process's own (PITR restores from the root namespace, over the bridge)
        self.client_conf = self._client_conf("client", None)
        self.servers = {}

    def _client_conf(self, name, ip):
        dirs = {k: _user_dir(os.path.join(self.base, f"{name}-{k}")) for k in ("log", "lock", "spool")}
        path = os.path.join(self.base, f"{name}.conf")
        _user_file(path, f"[global]\nrepo1-host={self.host.ip}\nrepo1-host-type=tls\nrepo1-host-port={TLS_PORT}\n"
                         f"repo1-host-config={self.conf}\n"
                         f"repo1-host-ca-file={self.tls['ca']}\nrepo1-host-cert-file={self.tls['cert']}\n"
                         f"repo1-host-key-file={self.tls['key']}\nlog-path={dirs['log']}\nlock-path={dirs['lock']}\n"
                         f"spool-path={dirs['spool']}\nlog-level-console=warn\nlog-level-file=info\n"
                   + (tls_server_lines(ip, self.tls) if ip else ""), 0o640)
        return path

    def start_server(self, host, conf):
        log = open(os.path.join(self.base, f"{host.name}.server.out"), "ab")
        self.servers[host.name] = (host.popen([PGBACKREST, f"--config={conf}", "server"], stdout=log,
                                              stderr=subprocess.STDOUT), log)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:   # the test process reaches every host over the bridge
                socket.create_connection((host.ip, TLS_PORT), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        with open(log.name, errors="replace") as f:
            raise AssertionError(f"pgbackrest server on {host.name} does not listen:\n{f.read()[-2000:]}")

    def ensure_node_server(self, node):
        proc = self.servers.get(node.name, (None, None))[0]
        if proc is None or proc.poll() is not None:
            self.start_server(node.host, self.node_confs[node.name])

    def on_repo(self, *args, node=None, timeout=300, check=True):
        """pgBackRest on the repository host, reading `node` (the primary) through its TLS server."""
        argv = [PGBACKREST, f"--config={self.conf}", f"--stanza={STANZA}"]
        if node is not None:
            argv += [f"--pg1-host={node.host.ip}", f"--pg1-path={node.pgdata}", f"--pg1-port={node.port}",
                     f"--pg1-socket-path={node.socket_dir()}", f"--pg1-host-config={self.node_confs[node.name]}"]
        r = self.host.run(argv + list(args), check=False, timeout=timeout)
        if check:
            assert r.returncode == 0, f"pgbackrest {' '.join(args)} on repo exited {r.returncode}:\n{r.stdout}{r.stderr}"
        return r

    def on_node(self, node, *args, timeout=300, check=True):
        argv = [PGBACKREST, f"--config={self.node_confs[node.name]}", f"--stanza={STANZA}",
                f"--pg1-path={node.pgdata}", f"--pg1-port={node.port}", f"--pg1-socket-path={node.socket_dir()}"]
        r = node.host.run(argv + list(args), check=False, timeout=timeout)
        if check:
            assert r.returncode == 0, f"pgbackrest {' '.join(args)} on {node.name} exited {r.returncode}:\n{r.stdout}{r.stderr}"
        return r

    def info(self):
        return json.loads(self.on_repo("info", "--output=json").stdout)[0]

    def teardown(self):
        for proc, log in self.servers.values():
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            log.close()
        self.servers = {}


# -- fixtures ------------------------------------------------------------------------------------------------------

class Holder:
    c = None
    repo = None
    workdir = None


@pytest.fixture(scope="module")
def env(request):
    reason = netns.netns_unavailable()
    if reason:
        pytest.skip(reason)
    if not os.path.exists(clustermod.AUTOCTL):
        pytest.skip(f"autoctl not found at {clustermod.AUTOCTL} (set AUTOCTL)")
    if not os.path.exists(PGBACKREST):
        pytest.skip("pgbackrest is not installed (scripts/install-deps.sh)")
    net = netns.Net()
    h = Holder()
    h.workdir = tempfile.mkdtemp(prefix="autofailover-faults-backup-")
    os.chmod(h.workdir, 0o755)
    try:
        h.repo = Repo(net, h.workdir)
        h.repo.start_server(h.repo.host, h.repo.conf)
        h.c = clustermod.Cluster(net, h.workdir)
        for name, conf in h.repo.node_confs.items():
            h.c.create_extra_args[name] = ["--backup", "pgbackrest", "--backup-stanza", STANZA,
                                           "--backup-config", conf]
        t0 = time.monotonic()
        h.c.create_monitor()
        h.c.create_node("n1")
        assert h.c.nodes["n1"].host.ip == h.repo.node_ips["n1"]
        h.repo.ensure_node_server(h.c.nodes["n1"])
        # the first backup before the standbys: they are built from it (and the primary's archive works)
        primary = h.c.nodes["n1"]
        h.repo.on_repo("stanza-create", node=primary)
        h.repo.on_repo("backup", "--type=full", "--start-fast", node=primary)
        h.c.create_nodes(["n2", "n3"])
        for n in h.c.nodes.values():
            h.repo.ensure_node_server(n)
        h.c.wait_healthy()
        print(f"\n[setup] repo host {h.repo.host.ip} (pgbackrest server, TLS) + monitor + 3 nodes healthy after "
              f"{time.monotonic() - t0:.1f}s ({h.workdir})")
        for n in ("n2", "n3"):   # `create postgres` printed how it built them; their servers replayed the archive
            log = open(os.path.join(h.workdir, f"{n}.postgres.log"), errors="replace").read()
            print(f"[setup] {n}: {len(re.findall('restored log file', log))} segments restored from the archive")
        yield h
    finally:
        if h.c is not None:
            h.c.teardown()
        if h.repo is not None:
            h.repo.teardown()
        net.teardown()
        if request.module.__dict__.get("_faults_failed") or os.environ.get("AUTOFAILOVER_FAULTS_KEEP"):
            print(f"\nkept {h.workdir}")
        else:
            shutil.rmtree(h.workdir, ignore_errors=True)


@pytest.fixture
def c(env):
    env.c.net.heal_all()
    for n in env.c.nodes.values():
        env.repo.ensure_node_server(n)
    env.c.wait_healthy(timeout=90)
    return env.c


# -- checks ---------------------------------------------------------------------------------------------------------

def _segno(name):
    return int(name[8:16], 16) * 0x100 + int(name[16:24], 16)


def archive_gaps(repo, first_segment):
    """Segments a recovery from first_segment to the end of the newest timeline needs and the archive lacks
    (read by root from the repository host's directory)."""
    segments, histories = set(), {}
    for dirpath, _, files in os.walk(os.path.join(repo.path, "archive", STANZA)):
        for name in files:
            m = SEGMENT_FILE.match(name)
            if m:
                segments.add((int(m.group(1), 16), _segno(name)))
            elif re.match(r"^[0-9A-F]{8}\.history$", name):
                with open(os.path.join(dirpath, name)) as h:
                    histories[int(name[:8], 16)] = h.read()
    newest = max(t for t, _ in segments)
    switches = []
    for line in histories.get(newest, "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].isdigit():
            hi, lo = parts[1].split("/")
            switches.append((int(parts[0]), ((int(hi, 16) << 32) | int(lo, 16)) // WAL_SEGMENT_BYTES))
    last = max(s for t, s in segments if t == newest)
    missing = []
    for seg in range(first_segment, last + 1):
        tl = next((t for t, sw in switches if seg < sw), newest)
        if (tl, seg) not in segments:
            missing.append(f"{tl:08X}{seg // 0x100:08X}{seg % 0x100:08X}")
    return missing, newest, switches


def pitr_check(env, w, target_t, ctx):
    """Restores the newest backup to target_t into a scratch directory (from the root namespace, over the bridge
    to the repository's TLS server), starts it as the test user (no network, archiving off) and compares with the
    writer's acknowledgements."""
    repo = env.repo
    scratch = os.path.join(env.workdir, f"pitr-{int(target_t)}")
    _user_dir(scratch)
    target = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(target_t)) + f".{int(target_t % 1 * 1e6):06d}+00"
    t0 = time.monotonic()
    r = _as_user([PGBACKREST, f"--config={repo.client_conf}", f"--stanza={STANZA}", f"--pg1-path={scratch}",
                  "restore", "--type=time", f"--target={target}", "--target-action=promote", "--archive-mode=off"],
                 timeout=300)
    assert r.returncode == 0, f"PITR restore: {r.stdout}{r.stderr}"
    ctx["pitr_restore_s"] = round(time.monotonic() - t0, 1)
    pg_ctl = os.path.join(PG_BINDIR, "pg_ctl")
    options = (f"-c port={PITR_PORT} -c listen_addresses='' -c unix_socket_directories={scratch} "
               f"-c archive_mode=off -c shared_preload_libraries='' -c ssl=off")
    t1 = time.monotonic()
    try:
        r = _as_user([pg_ctl, "-D", scratch, "-l", scratch + ".log", "-w", "-t", int(PITR_TIMEOUT), "-o", options,
                      "start"], timeout=PITR_TIMEOUT + 10)
        assert r.returncode == 0, r.stdout + r.stderr + open(scratch + ".log").read()[-3000:]
        deadline = time.monotonic() + PITR_TIMEOUT
        while _psql_as_test_user(scratch, PITR_PORT, "postgres", "SELECT pg_is_in_recovery()").strip() != "f":
            assert time.monotonic() < deadline, open(scratch + ".log").read()[-3000:]
            time.sleep(0.2)
        ctx["pitr_recovery_s"] = round(time.monotonic() - t1, 1)
        present = {int(x) for x in _psql_as_test_user(scratch, PITR_PORT, "postgres",
                                                      f"SELECT id FROM {w.table}").split()}
    finally:
        _as_user([pg_ctl, "-D", scratch, "-m", "immediate", "stop"], timeout=60)
        shutil.rmtree(scratch, ignore_errors=True)
    acked_before = {a.id for a in list(w.attempts) if a.status == "ack" and a.t_done < target_t}
    acked_after = {a.id for a in list(w.attempts) if a.status == "ack" and a.t_sent > target_t}
    lost = sorted(acked_before - present)
    ctx["pitr_acked_before"] = len(acked_before)
    ctx["pitr_lost"] = len(lost)
    ctx["pitr_later_present"] = len(acked_after & present)
    problems = []
    if not acked_before:
        problems.append("PITR: no commit acknowledged before the target")
    if lost:
        problems.append(f"PITR to {target}: {len(lost)} acknowledged commits missing, e.g. {lost[:5]}")
    if acked_after & present:
        problems.append("PITR went past its target")
    return problems


def _make_writer(holder):
    def make(sid):
        holder["w"] = writer.Writer(holder["c"].client_uri(), rate=RATE, name=sid, commit_timeout=COMMIT_TIMEOUT)
        return holder["w"]
    return make


def _check_and_pitr(env, w, ctx, crossing_timeline):
    c, repo = env.c, env.repo
    primary = c.primary()
    repo.ensure_node_server(primary)
    t0 = time.monotonic()
    r = repo.on_node(primary, "check", check=False)
    ctx["check_s"] = round(time.monotonic() - t0, 1)
    problems = [] if r.returncode == 0 else [f"pgbackrest check on {primary.name}: {r.stdout}{r.stderr}"[:1500]]
    backup = repo.info()["backup"][-1]
    missing, newest, switches = archive_gaps(repo, _segno(backup["archive"]["start"]))
    ctx.update(archive_timeline=newest, archive_missing=len(missing))
    if missing:
        problems.append(f"segments missing from the archive: {missing[:10]}")
    if crossing_timeline and newest < 2:
        problems.append(f"the archive has no timeline switch (newest timeline {newest})")
    target = ctx["t_target"]
    problems += pitr_check(env, w, target, ctx)
    return problems


def _wal_switches(node, n):
    for _ in range(n):
        _psql_as_test_user(node.socket_dir(), node.port, "postgres", "SELECT pg_switch_wal()")
        time.sleep(0.3)


# -- rows -----------------------------------------------------------------------------------------------------------

def test_B1_switchover_while_archiving(env, c):
    holder = {"c": c}

    def inject(c, ctx):
        old = c.primary()
        _wal_switches(old, 2)
        c.autoctl(c.monitor_host, "perform", "switchover", "--wait", "120")
        wait_new_primary(c, old.name)
        ctx["new_primary"] = c.primary().name

    def after(c, ctx):
        holder["w"].wait_for_acks(20)
        ctx["t_target"] = time.time()
        holder["w"].wait_for_acks(20)
        ctx.setdefault("problems", []).extend(_check_and_pitr(env, holder["w"], ctx, crossing_timeline=True))

    run_scenario(c, "B1", "backup: switchover while archiving (repo on its own host, TLS)", inject,
                 expect_failover=True, make_writer=_make_writer(holder), after=after)


def test_B2_primary_crash_while_archiving(env, c):
    holder = {"c": c}

    def inject(c, ctx):
        old = c.primary()
        _wal_switches(old, 3)
        old.crash()
        wait_new_primary(c, old.name)
        time.sleep(HOLD)
        old.boot()
        ctx["t_repaired"] = time.time()

    def after(c, ctx):
        holder["w"].wait_for_acks(20)
        ctx["t_target"] = time.time()
        holder["w"].wait_for_acks(20)
        ctx.setdefault("problems", []).extend(_check_and_pitr(env, holder["w"], ctx, crossing_timeline=True))

    run_scenario(c, "B2", "backup: primary machine crash while archiving (repo on its own host, TLS)", inject,
                 expect_failover=True, make_writer=_make_writer(holder), after=after)


def test_B3_standby_rebuilt_from_backup(env, c):
    repo = env.repo
    # a backup on the current timeline (taken from the primary, read through its TLS server)
    repo.on_repo("backup", "--type=full", "--start-fast", node=c.primary())

    def inject(c, ctx):
        sb = c.standbys()[0]
        ctx["node"] = sb.name
        c.autoctl(sb.host, "drop", "node", "--pgdata", sb.pgdata, "--wait", "60")
        if sb.keeper is not None:
            sb.keeper.wait(timeout=60)
        stop_pid(sb.postmaster_pid(), signal.SIGINT)
        shutil.rmtree(sb.pgdata)
        shutil.rmtree(sb.state_dir)
        t0 = time.monotonic()
        r = c.autoctl(sb.host, *c._create_args(sb, {}))
        ctx["rebuild_s"] = round(time.monotonic() - t0, 1)
        built = re.search(r"standby built from pgBackRest backup (\S+)", r.stderr)
        ctx["built_from"] = built.group(1) if built else None
        if not built or "pg_basebackup from" in r.stderr:
            ctx.setdefault("problems", []).append("standby not built from the backup:\n" + r.stderr[-1500:])
        sb.keeper = None
        c._after_create(sb)
        ctx["t_repaired"] = time.time()

    def after(c, ctx):
        sb = c.nodes[ctx["node"]]
        log = os.path.join(env.workdir, f"{sb.name}.postgres.log")
        text = open(log, errors="replace").read() if os.path.exists(log) else ""
        ctx["segments_from_archive"] = len(re.findall(r'restored log file "[0-9A-F]{24}" from archive', text))
        rows = _psql_as_test_user(sb.socket_dir(), sb.port, "postgres",
                                  "SELECT status FROM pg_stat_wal_receiver")
        ctx["wal_receiver"] = rows.strip()
        if rows.strip() != "streaming":
            ctx.setdefault("problems", []).append(f"{sb.name} does not stream: {rows!r}")

    run_scenario(c, "B3", "backup: standby with its data directory removed rebuilt from backup + archive", inject,
                 expect_failover=False, after=after)


def test_B4_repo_host_isolated(env, c):
    repo = env.repo
    holder = {"c": c}

    def ready(node):
        d = os.path.join(node.pgdata, "pg_wal", "archive_status")
        return sum(1 for n in os.listdir(d) if n.endswith(".ready"))

    def inject(c, ctx):
        p = c.primary()
        ctx["primary"] = p.name
        c.net.isolate(repo.host)
        acks0 = holder["w"].ack_count
        t_end = time.monotonic() + REPO_ISOLATION_S
        while time.monotonic() < t_end:
            _wal_switches(p, 1)
            time.sleep(1)
        ctx["acks_while_isolated"] = holder["w"].ack_count - acks0
        ctx["ready_at_heal"] = ready(p)
        c.net.heal(repo.host)
        ctx["t_repaired"] = time.time()
        t0 = time.monotonic()
        while ready(p) and time.monotonic() - t0 < ARCHIVE_CATCHUP_TIMEOUT:
            time.sleep(0.5)
        ctx["archive_catchup_s"] = round(time.monotonic() - t0, 1)
        ctx["ready_after"] = ready(p)

    def after(c, ctx):
        problems = ctx.setdefault("problems", [])
        if ctx["acks_while_isolated"] < 10:
            problems.append(f"only {ctx['acks_while_isolated']} commits while the repository was isolated")
        if ctx["ready_at_heal"] < 1:
            problems.append("the archive queue did not grow while the repository was isolated")
        if ctx["ready_after"]:
            problems.append(f"{ctx['ready_after']} segments still not archived after "
                            f"{ARCHIVE_CATCHUP_TIMEOUT}s")
        p = c.primary()
        r = repo.on_node(p, "check", check=False)
        if r.returncode != 0:
            problems.append(f"pgbackrest check on {p.name}: {r.stdout}{r.stderr}"[:1500])
        backup = repo.info()["backup"][-1]
        missing, _, _ = archive_gaps(repo, _segno(backup["archive"]["start"]))
        ctx["archive_missing"] = len(missing)
        if missing:
            problems.append(f"segments missing from the archive: {missing[:10]}")

    run_scenario(c, "B4", f"backup: repository host isolated {REPO_ISOLATION_S:.0f}s", inject,
                 expect_failover=False, make_writer=_make_writer(holder), after=after)
