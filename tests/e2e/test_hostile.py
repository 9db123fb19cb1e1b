"""Another local OS user against a formation built with autoctl's defaults
(monitor + 2 nodes, scram-sha-256 and TLS): it can log in nowhere, as no role,
over TCP (with and without TLS, replication connections too) or over the Unix
sockets, and reads none of the formation's secrets. The same probe run against
a formation created with --auth trust --no-ssl (the old defaults) finds the
holes the security review reported (#1: the monitor's superuser over TCP; #5:
every node's superuser over loopback), which shows the probe can fail; that
formation's create commands print the trust warning. Also: two `autoctl run`
started at once for one node: exactly one keeper runs and keeper.pid names it.

AUTOFAILOVER_HOSTILE_TRUST=1 builds the "default" formation with --auth trust
--no-ssl instead, so that test_other_user_logs_in_nowhere fails as it would
have on the old defaults."""

import json
import os
import pwd
import signal
import subprocess
import time

import pytest

from formation import AUTOCTL, PG_BINDIR, TEST_USER, as_user
from processes import read_pid

OTHER_USER = os.environ.get("AUTOFAILOVER_OTHER_USER", "autofailover_other")
ROLES = [TEST_USER, "postgres", "autofailover_keeper", "autofailover_replicator", "autofailover_monitor",
         "autofailover_operator", OTHER_USER]


def other_user_ids():
    try:
        pw = pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                        "/usr/sbin/nologin", OTHER_USER], check=True, capture_output=True)
        pw = pwd.getpwnam(OTHER_USER)
    return pw.pw_uid, pw.pw_gid


def as_other(argv, **kw):
    """argv as the other OS user, with no password file, no home and nothing inherited."""
    uid, gid = other_user_ids()
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "LC_ALL": "C", "PGCONNECT_TIMEOUT": "3"}
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--init-groups", "--"] + list(argv),
                          capture_output=True, text=True, timeout=30, cwd="/", env=env, **kw)


def attempt(conninfo, sql="SELECT current_user"):
    """(logged_in, message) for one psql login as the other user; -w: never ask for a password."""
    r = as_other([os.path.join(PG_BINDIR, "psql"), "-X", "-w", "-At", "-d", conninfo, "-c", sql])
    return r.returncode == 0, (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]


def hostile_logins(f):
    """Every login the other user tries; returns the ones that got in."""
    servers = [("monitor", f.port_base, "autofailover", f.monitor_pgdata)]
    servers += [(n.name, n.port, "postgres", n.socket_dir()) for n in f.nodes.values()]
    tried, got_in = 0, []
    for name, port, dbname, socket_dir in servers:
        for role in ROLES:
            for sslmode in ("disable", "require"):
                conninfo = f"host=127.0.0.1 port={port} user={role} dbname={dbname} sslmode={sslmode}"
                ok, message = attempt(conninfo)
                tried += 1
                if ok:
                    got_in.append((name, f"tcp sslmode={sslmode}", role, message[0]))
            # The Unix socket: peer authentication maps this OS user to its own role only.
            ok, message = attempt(f"host={socket_dir} port={port} user={role} dbname={dbname}")
            tried += 1
            if ok:
                got_in.append((name, "socket", role, message[0]))
        if name != "monitor":
            for role in ("autofailover_replicator", TEST_USER):
                ok, message = attempt(f"host=127.0.0.1 port={port} user={role} replication=true", "IDENTIFY_SYSTEM")
                tried += 1
                if ok:
                    got_in.append((name, "tcp replication", role, message[0]))
    print(f"\n[hostile] {OTHER_USER} tried {tried} logins on {len(servers)} servers; got in: {len(got_in)}")
    for hole in got_in:
        print(f"[hostile]   got in: {hole}")
    return got_in


def secret_files(f):
    files = [os.path.join(f.monitor_pgdata, "server.key"), f.replication_password_file]
    if f.monitor_password_file:
        files.append(f.monitor_password_file)
    for node in f.nodes.values():
        with open(os.path.join(node.state_dir, "keeper.json")) as fh:
            config = json.load(fh)
        files.append(os.path.join(node.state_dir, "keeper.json"))
        files += [config[k] for k in ("replication_passfile", "monitor_passfile", "ssl_key_file") if config.get(k)]
    return files


@pytest.fixture(scope="module")
def default(formation_factory):
    if os.geteuid() != 0:
        pytest.skip("needs root: it runs programs as another OS user")
    other_user_ids()
    f = formation_factory(trust=os.environ.get("AUTOFAILOVER_HOSTILE_TRUST") == "1")
    f.create_monitor()
    f.create_node("node_a")
    f.create_node("node_b")
    f.wait_healthy()
    return f


@pytest.fixture(scope="module")
def trusting(formation_factory):
    """The old defaults, asked for explicitly: monitor + 1 node with --auth trust --no-ssl."""
    if os.geteuid() != 0:
        pytest.skip("needs root: it runs programs as another OS user")
    other_user_ids()
    f = formation_factory(port_offset=10, trust=True)
    f.create_monitor()
    node = f.new_node("trusting_a")
    r = f.autoctl(*f.create_args(node))
    f.node_stderr = r.stderr
    return f


def test_other_user_logs_in_nowhere(default):
    assert hostile_logins(default) == []


def test_other_user_reads_no_secret(default):
    for path in secret_files(default):
        assert os.path.exists(path), path
        r = as_other(["cat", path])
        assert r.returncode != 0 and "Permission denied" in r.stderr, (path, r.returncode, r.stderr)


def test_the_probe_finds_the_holes_of_auth_trust(trusting):
    got_in = hostile_logins(trusting)
    # Review #1: the monitor's superuser (the OS user's role) with no password over TCP.
    assert ("monitor", "tcp sslmode=disable", TEST_USER, TEST_USER) in got_in, got_in
    # Review #5: a data node's superuser from loopback.
    assert ("trusting_a", "tcp sslmode=disable", TEST_USER, TEST_USER) in got_in, got_in


def test_auth_trust_still_works_and_warns_who_can_connect(trusting):
    f = trusting
    assert "WARNING: --auth trust" in f.monitor_stderr, f.monitor_stderr
    assert "127.0.0.1/32" in f.monitor_stderr and "superuser" in f.monitor_stderr
    assert "WARNING: --auth trust" in f.node_stderr and "every local OS user" in f.node_stderr, f.node_stderr
    node = f.nodes["trusting_a"]
    status = json.loads(f.autoctl("status", "--pgdata", node.pgdata, "--json", check=False).stdout)
    assert status["current_state"] == "single" and status["postgres_running"], status
    with open(os.path.join(f.monitor_pgdata, "pg_hba.conf")) as fh:
        assert any(line.split()[-1:] == ["trust"] for line in fh if line.startswith("host"))


def test_two_keepers_started_at_once_exactly_one_runs(default):
    """security-review #11: five double starts; each time one keeper runs, the other is refused, and
    keeper.pid and `autoctl status` name the one that runs."""
    f = default
    node = f.nodes["node_b"]
    node.kill_keeper(signal.SIGKILL)  # Postgres keeps running; keeper.pid stays behind, unlocked
    pid_file = os.path.join(node.state_dir, "keeper.pid")
    log = open(os.path.join(f.workdir, "race.keeper.out"), "ab")
    try:
        for attempt_no in range(5):
            procs = [subprocess.Popen(as_user([AUTOCTL, "run", "--pgdata", node.pgdata]), stdout=log,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=f.workdir, env=f.env,
                                      start_new_session=True) for _ in range(2)]
            deadline = time.monotonic() + 15
            while all(p.poll() is None for p in procs) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.5)  # a second keeper that got past the lock would still be running now
            alive = [p for p in procs if p.poll() is None]
            refused = [p for p in procs if p.poll() is not None]
            assert len(alive) == 1 and len(refused) == 1, (attempt_no, [p.returncode for p in procs])
            assert refused[0].returncode == 1
            assert read_pid(pid_file) == alive[0].pid, (attempt_no, read_pid(pid_file), alive[0].pid)
            status = json.loads(f.autoctl("status", "--pgdata", node.pgdata, "--json").stdout)
            assert status["keeper_running"] and status["keeper_pid"] == alive[0].pid, status
            alive[0].send_signal(signal.SIGKILL)
            alive[0].wait(timeout=10)
        status = json.loads(f.autoctl("status", "--pgdata", node.pgdata, "--json", check=False).stdout)
        assert not status["keeper_running"], status  # a dead keeper's pid in the file does not count
    finally:
        log.close()
    with open(os.path.join(f.workdir, "race.keeper.out"), errors="replace") as fh:
        assert fh.read().count("another keeper (pid") == 5
    node.start_keeper()
    f.wait_healthy()
