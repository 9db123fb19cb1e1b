"""A real PgBouncer (Debian `pgbouncer`, run as the test user) in front of a monitor + 2 nodes, repointed by
the shipped on_role_change hook contrib/pgbouncer/repoint-pgbouncer (the same hook and configuration on
both keepers; it acts on the node that became the primary). Two writers run side by side in each scenario:
one through PgBouncer, one through the direct multi-host URI; both must lose no acknowledged commit and
never see two writers, and the downtime of each is printed (docs/operations.md has the figures).
Also: the keepers' `/replica?lag=<duration>` bound on a standby whose replay is paused."""

import os
import re
import shutil
import signal
import subprocess
import time

import psycopg
import pytest

from dual_workload import DualWorkload, proxy_uri
from formation import PG_BINDIR, TEST_USER, as_user, write_secret_file
from http_nodes import create_http_node, state, status, wait_status
from processes import stop_pid, user_ids
from short_timeouts import KEEPER_TIMEOUTS

HOOK_SOURCE = os.path.join(os.path.dirname(__file__), "..", "..", "contrib", "pgbouncer", "repoint-pgbouncer")
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
# PgBouncer listens on the module's port base + this.
PGBOUNCER_PORT_OFFSET = 30
# The writers' database; PgBouncer's entry of the same name is the one the hook rewrites.
DBNAME = "postgres"
# PgBouncer's downtime may exceed the multi-host URI's by at most this (the hook runs after the
# promotion, then RELOAD; a failed server login is retried after server_login_retry).
MAX_EXTRA_DOWNTIME_S = 2.0
ROUTED_STREAK = 10
POLL_PERIOD_S = KEEPER_TIMEOUTS["poll_period_ms"] / 1000


@pytest.fixture(scope="module")
def setup(formation_factory):
    f = formation_factory(port_offset=0)
    f.create_monitor()
    pgb_dir = os.path.join(f.workdir, "pgbouncer")
    os.makedirs(pgb_dir)
    os.chown(pgb_dir, *user_ids())
    port = f.port_base + PGBOUNCER_PORT_OFFSET
    # The hook, copied where the test user can run it (a clone's source tree may be unreadable),
    # its configuration beside it, and the admin console's password in a pgpass file.
    hook = os.path.join(pgb_dir, "repoint-pgbouncer")
    shutil.copy(HOOK_SOURCE, hook)
    os.chmod(hook, 0o755)
    admin_pgpass = os.path.join(pgb_dir, "admin.pgpass")
    write_secret_file(admin_pgpass, f"127.0.0.1:{port}:pgbouncer:{TEST_USER}:{f.user_password}\n")
    databases_file = os.path.join(pgb_dir, "databases.ini")
    with open(hook + ".conf", "w") as c:
        c.write(f"databases_file={databases_file}\ndatabases={DBNAME}:{DBNAME}\nadmin_host=127.0.0.1\n"
                f"admin_port={port}\nadmin_user={TEST_USER}\nadmin_passfile={admin_pgpass}\n"
                f"psql={os.path.join(PG_BINDIR, 'psql')}\n")
    hooks = {"on_role_change": hook, "timeout_ms": 5000}
    create_http_node(f, "node1", hooks=hooks)
    create_http_node(f, "node2", hooks=hooks)
    f.wait_healthy()

    # The DBA's one-time setup: the first entry points at the current primary (the hook keeps it right).
    primary = f.primary()
    write_secret_file(databases_file, f"[databases]\n{DBNAME} = host=127.0.0.1 port={primary.port} dbname={DBNAME}\n")
    os.chmod(databases_file, 0o644)
    write_secret_file(os.path.join(pgb_dir, "userlist.txt"), f'"{TEST_USER}" "{f.user_password}"\n')
    ini = os.path.join(pgb_dir, "pgbouncer.ini")
    with open(ini, "w") as c:
        c.write(f"""[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {pgb_dir}/userlist.txt
admin_users = {TEST_USER}
pool_mode = session
max_client_conn = 100
default_pool_size = 20
server_connect_timeout = 2
server_login_retry = 0.2
query_wait_timeout = 10
logfile = {pgb_dir}/pgbouncer.log
pidfile = {pgb_dir}/pgbouncer.pid
%include {databases_file}
""")
    log = open(os.path.join(pgb_dir, "pgbouncer.out"), "ab")
    proc = subprocess.Popen(as_user([PGBOUNCER, ini]), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=pgb_dir, start_new_session=True)
    try:
        yield {"formation": f, "port": port, "databases_file": databases_file, "dir": pgb_dir}
    finally:
        stop_pid(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        log.close()


def via_pgbouncer(setup):
    return proxy_uri(setup["formation"], setup["port"], target_session_attrs="any")


def pgbouncer_version():
    out = subprocess.run([PGBOUNCER, "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"PgBouncer (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def configured_port(setup):
    with open(setup["databases_file"]) as f:
        m = re.search(rf"^{DBNAME} = host=127\.0\.0\.1 port=(\d+) dbname={DBNAME}$", f.read(), re.M)
    return int(m.group(1)) if m else None


def wait_routed(setup, timeout=30.0):
    """Until the hook named the primary in PgBouncer's [databases] file and ROUTED_STREAK new connections
    in a row through PgBouncer reach the writable primary."""
    f = setup["formation"]
    primary = f.primary()
    deadline = time.monotonic() + timeout
    last, streak = None, 0
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(via_pgbouncer(setup), autocommit=True) as conn:
                last = conn.execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone()
            streak = streak + 1 if last == (primary.port, False) and configured_port(setup) == primary.port else 0
            if streak >= ROUTED_STREAK:
                return
        except psycopg.Error as e:
            last, streak = str(e), 0
        time.sleep(0.05)
    raise AssertionError(f"PgBouncer does not send clients to the primary {primary.name} ({primary.port}): last "
                         f"(port, in recovery) {last}, [databases] names port {configured_port(setup)}\n"
                         + primary.log_tail(20))


def test_pgbouncer_reaches_the_primary(setup):
    version = pgbouncer_version()
    assert version and version >= (1, 18), version  # RECONNECT <db> and reload-time repointing
    wait_routed(setup)


def test_replica_lag_duration_bound(setup):
    """/replica?lag=<duration> follows the standby's replay: 200 while it replays everything it received
    (even with the primary idle for long), 503 once replay is paused behind a commit for longer than the
    bound, while the byte bound (received WAL) stays 200."""
    f = setup["formation"]
    primary, standby = f.primary(), f.standbys()[0]
    primary.sql("CREATE TABLE IF NOT EXISTS lag_probe (x int)")
    wait_status(standby, "/replica?lag=500ms", 200)
    wait_status(standby, "/replica?lag=0ms", 200)
    assert state(standby)["replay_lag_s"] == 0
    assert status(standby, "/replica?lag=5x") == 400
    standby.sql("SELECT pg_wal_replay_pause()")
    try:
        primary.sql("INSERT INTO lag_probe VALUES (1)")
        took = wait_status(standby, "/replica?lag=1s", 503, timeout=10)
        # An upper bound: "caught up" dates from the keeper's last observation before the commit, at most
        # one poll period (KEEPER_TIMEOUTS, 250 ms) earlier; 0.15 s more for the polling of this test.
        assert took >= 1.0 - POLL_PERIOD_S - 0.15, \
            f"/replica?lag=1s turned 503 after {took:.2f}s, long before the replay was 1 s behind"
        assert status(standby, "/replica?lag=1GB") == 200
        assert status(standby, "/replica") == 200
        assert state(standby)["replay_lag_s"] >= 1.0
        print(f"\n[pgbouncer: lag] /replica?lag=1s turned 503 {took:.2f}s after a commit with replay paused")
    finally:
        standby.sql("SELECT pg_wal_replay_resume()")
    wait_status(standby, "/replica?lag=500ms", 200, timeout=10)


def test_switchover_through_pgbouncer(setup):
    f = setup["formation"]
    wait_routed(setup)
    old = f.primary()
    with DualWorkload(f, "pgbouncer", via_pgbouncer(setup), "switchover", MAX_EXTRA_DOWNTIME_S) as w:
        w.wait_for_commits(20)
        f.autoctl("perform", "switchover", "--wait", "60")
        w.wait_for_commits(20)
    w.assert_clean()
    assert f.primary().name != old.name
    wait_routed(setup)


def test_primary_crash_through_pgbouncer(setup):
    f = setup["formation"]
    wait_routed(setup)
    old = f.primary()
    with DualWorkload(f, "pgbouncer", via_pgbouncer(setup), "primary crash", MAX_EXTRA_DOWNTIME_S) as w:
        w.wait_for_commits(20)
        old.kill_keeper(signal.SIGKILL)
        old.kill_postgres(signal.SIGKILL)
        f.wait_until(lambda s: any(n != old.name and st["reported_state"] in ("wait_primary", "primary")
                                   for n, st in s.items()), "a standby to be promoted", timeout=60)
        w.wait_for_commits(20)
        old.start_keeper()
        f.wait_healthy()
        w.wait_for_commits(20)
    w.assert_clean()
    assert f.primary().name != old.name
    wait_routed(setup)
    # The rejoined old primary is a standby: its keeper ran the hook, which left PgBouncer alone.
    assert configured_port(setup) == f.primary().port
