"""The netns harness itself, with plain PostgreSQL 15 servers (no autofailover): namespaces and bridge,
processes inside them, streaming replication across namespaces, isolate/heal, pairwise cut, teardown."""

import os
import secrets
import signal
import subprocess
import tempfile
import time

import psycopg
import pytest

import netns
from common_path import checker, writer  # noqa: F401

PG_BINDIR = os.environ.get("AUTOFAILOVER_PG_BINDIR", "/usr/lib/postgresql/15/bin")
PORT = 5432   # every host has its own address, so the same port everywhere


@pytest.fixture
def net():
    reason = netns.netns_unavailable()
    if reason:
        pytest.skip(reason)
    n = netns.Net()
    try:
        yield n
    finally:
        n.teardown()


def start_pg(host, pgdata, extra=()):
    host.run([f"{PG_BINDIR}/pg_ctl", "-D", pgdata, "-l", pgdata + ".log", "-w", "-o",
              f"-c listen_addresses={host.ip} -p {PORT} -k {os.path.dirname(pgdata)} "
              "-c wal_receiver_timeout=2s -c wal_sender_timeout=2s -c wal_retrieve_retry_interval=500ms " + " ".join(extra), "start"])


# No trust, even for these throw-away servers: any local user reaches the bridge's addresses. The superuser
# gets a password (initdb --pwfile); the test process and the test user's pg_basebackup read it from pgpass files.
PASSWORD = secrets.token_hex(12)
ROOT_PGPASS = None   # set by the test: owned by root, 0600


def secret_file(path, text, owner):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if owner:
        os.chown(path, *netns.pwd.getpwnam(netns.TEST_USER)[2:4])


def tcp(host, dbname="postgres"):
    return f"host={host.ip} port={PORT} user={netns.TEST_USER} dbname={dbname} connect_timeout=2 passfile={ROOT_PGPASS}"


def sock(workdir):
    return f"host={workdir} port={PORT} user={netns.TEST_USER} dbname=postgres connect_timeout=2 passfile={ROOT_PGPASS}"


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except psycopg.Error:
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def streaming(primary):
    with psycopg.connect(tcp(primary), autocommit=True) as c:
        return c.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()[0]


def test_plain_postgres_streaming_across_namespaces(net):
    n1, n2 = net.add_host("n1"), net.add_host("n2")
    wd1, wd2 = (tempfile.mkdtemp(prefix=f"afn-harness-{h}-") for h in ("n1", "n2"))
    for wd in (wd1, wd2):
        os.chown(wd, *netns.pwd.getpwnam(netns.TEST_USER)[2:4])
    pg1, pg2 = os.path.join(wd1, "pg"), os.path.join(wd2, "pg")
    try:
        global ROOT_PGPASS
        ROOT_PGPASS = os.path.join(wd1, "root.pgpass")
        secret_file(ROOT_PGPASS, f"*:*:*:{netns.TEST_USER}:{PASSWORD}\n", owner=False)
        user_pgpass = os.path.join(wd1, "user.pgpass")
        secret_file(user_pgpass, f"*:*:*:{netns.TEST_USER}:{PASSWORD}\n", owner=True)
        pwfile = os.path.join(wd1, "pwfile")
        secret_file(pwfile, PASSWORD + "\n", owner=True)
        n1.run([f"{PG_BINDIR}/initdb", "-D", pg1, "-A", "scram-sha-256", "--pwfile", pwfile, "-U", netns.TEST_USER])
        with open(os.path.join(pg1, "pg_hba.conf"), "a") as f:
            f.write(f"host all all {netns.SUBNET}.0/24 scram-sha-256\n"
                    f"host replication all {netns.SUBNET}.0/24 scram-sha-256\n")
        start_pg(n1, pg1)
        # the processes run inside the namespace
        pid1 = int(open(os.path.join(pg1, "postmaster.pid")).readline())
        assert pid1 in n1.pids() and pid1 not in n2.pids()
        # n2 clones n1 over the bridge and streams from it
        # -R writes primary_conninfo without the password: the standby finds it through PGPASSFILE's file,
        # which it is told about by passfile= below.
        n2.run([f"{PG_BINDIR}/pg_basebackup", "-h", n1.ip, "-p", PORT, "-U", netns.TEST_USER, "-D", pg2, "-R",
                "-X", "stream", "-c", "fast", "-w"], env=dict(os.environ, PGPASSFILE=user_pgpass))
        with open(os.path.join(pg2, "postgresql.auto.conf"), "a") as f:
            f.write(f"primary_conninfo = 'host={n1.ip} port={PORT} user={netns.TEST_USER} passfile={user_pgpass}'\n")
        start_pg(n2, pg2)
        wait_for(lambda: streaming(n1) == 1, 20, "n2 streaming from n1")

        w = writer.Writer(f"postgresql://{netns.TEST_USER}@{n1.ip}:{PORT},{n2.ip}:{PORT}/postgres"
                          f"?passfile={ROOT_PGPASS}", rate=100, name="harness", commit_timeout=2)
        probe = checker.SplitBrainProbe({"n1": sock(wd1), "n2": sock(wd2)}, interval=0.1).start()
        w.start()
        try:
            w.wait_for_acks(30, timeout=20)
            assert all(a.server.startswith(n1.ip) for a in w.attempts if a.status == "ack")
            # isolate n1: the client (root namespace) loses it, n2's walreceiver loses it
            net.isolate(n1)
            t_iso = time.time()
            time.sleep(3)
            assert not any(a.status == "ack" and a.t_done > t_iso + 0.5 for a in w.attempts), \
                "an isolated server must not acknowledge the client's commits"
            wait_for(lambda: psycopg.connect(sock(wd2)).execute(
                "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'").fetchone()[0] == 0,
                15, "n2's walreceiver to notice the partition")
            # the Unix socket still reaches the isolated node; TCP from the root namespace does not
            assert probe.writable_now() == ["n1"]
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(tcp(n1), connect_timeout=1)
            net.heal(n1)
            w.wait_for_acks(30, timeout=30)
            wait_for(lambda: streaming(n1) == 1, 30, "n2 streaming again after heal")

            # pairwise cut: n1 and n2 lose each other, the client still reaches n1
            net.cut(n1, n2)
            wait_for(lambda: streaming(n1) == 0, 20, "replication to stop across the cut")
            w.wait_for_acks(20, timeout=20)
            net.uncut(n1, n2)
            wait_for(lambda: streaming(n1) == 1, 30, "replication to resume after uncut")
        finally:
            w.stop()
            probe.stop()
        result = checker.check(w, tcp(n1), probe=probe)
        print(f"\n[harness] {result.summary()}")
        assert result.problems() == []
        assert result.longest_gap_s >= 2.5, "the isolation must have been visible to the client"

        # a crash of every process in a namespace
        killed = net.kill_all(n2)
        assert killed
        wait_for(lambda: not n2.pids(), 10, "n2's processes to die")
    finally:
        net.teardown()
        import shutil
        shutil.rmtree(wd1, ignore_errors=True)
        shutil.rmtree(wd2, ignore_errors=True)
    listed = subprocess.run([netns.IP, "netns", "list"], capture_output=True, text=True).stdout
    assert net.prefix not in listed, "teardown must delete the namespaces"
    links = subprocess.run([netns.IP, "-o", "link", "show"], capture_output=True, text=True).stdout
    assert net.prefix not in links, "teardown must delete the bridge and veths"
    assert not os.path.exists(f"/proc/{pid1}") or open(f"/proc/{pid1}/stat").read().split()[2] == "Z"


def test_cleanup_removes_leftovers():
    reason = netns.netns_unavailable()
    if reason:
        pytest.skip(reason)
    leftover = f"{netns.PREFIX}zz-left"
    netns.sh(netns.IP, "netns", "add", leftover)
    sleeper = subprocess.Popen([netns.IP, "netns", "exec", leftover, "sleep", "600"])
    try:
        wait_for(lambda: sleeper.pid in [int(x) for x in netns.sh(netns.IP, "netns", "pids", leftover).stdout.split()],
                 10, "the sleeper to run inside the leftover namespace")
        netns.cleanup()
        assert leftover not in subprocess.run([netns.IP, "netns", "list"], capture_output=True, text=True).stdout
        sleeper.wait(timeout=10)  # (cleanup may already have reaped it)
        assert not os.path.exists(f"/proc/{sleeper.pid}")
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
