"""A real HAProxy (Debian `haproxy`) in front of a monitor + 2 nodes, configured by `autoctl show
haproxy` (health checks: the keepers' GET /primary and /replica). Two writers run side by side in
each scenario: one through HAProxy's write port (target_session_attrs=any: HAProxy alone decides where
it lands), one through the direct multi-host URI. Both must lose no acknowledged commit and never see
two writers; the downtime of each is printed (docs/operations.md has the figures) and HAProxy's must be
within 1 s of the direct URI's."""

import os
import shutil
import signal
import subprocess
import time

import psycopg
import pytest

from dual_workload import DualWorkload, proxy_uri
from formation import as_user
from http_nodes import HTTP_PORT_OFFSET, create_http_node, status
from processes import stop_pid

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
# HAProxy's frontends: port base of the module + 20 (writes) and + 21 (reads).
WRITE_PORT_OFFSET = 20
READ_PORT_OFFSET = 21
# The bound: downtime through HAProxy within this of the direct multi-host URI's.
MAX_EXTRA_DOWNTIME_S = 1.0


@pytest.fixture(scope="module")
def formation(formation_factory):
    f = formation_factory(port_offset=0)
    f.create_monitor()
    create_http_node(f, "node1")
    create_http_node(f, "node2")
    f.wait_healthy()
    return f


@pytest.fixture(scope="module")
def haproxy(formation):
    write_port = formation.port_base + WRITE_PORT_OFFSET
    read_port = formation.port_base + READ_PORT_OFFSET
    cfg = formation.autoctl("show", "haproxy", "--http-port-offset", HTTP_PORT_OFFSET, "--bind", "127.0.0.1",
                            "--primary-port", write_port, "--replica-port", read_port).stdout
    for node in formation.nodes.values():
        assert f"server {node.name} 127.0.0.1:{node.port} check port {node.port + HTTP_PORT_OFFSET}" in cfg, cfg
    path = os.path.join(formation.workdir, "haproxy.cfg")
    with open(path, "w") as f:
        f.write(cfg)
    check = subprocess.run(as_user([HAPROXY, "-c", "-f", path]), capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, f"haproxy -c refused the generated config:\n{check.stdout}{check.stderr}\n{cfg}"
    log = open(os.path.join(formation.workdir, "haproxy.log"), "ab")
    proc = subprocess.Popen(as_user([HAPROXY, "-db", "-f", path]), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=formation.workdir, start_new_session=True)
    try:
        yield {"write_port": write_port, "read_port": read_port, "proc": proc}
    finally:
        stop_pid(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        log.close()


def uri(formation, port, **params):
    return proxy_uri(formation, port, **params)


def server_of(conninfo_uri):
    with psycopg.connect(conninfo_uri, autocommit=True) as conn:
        return conn.execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone()


# New connections in a row that must all land right: a balancer that spread writes over both
# nodes (round robin) would do it by chance once in 2^ROUTED_STREAK.
ROUTED_STREAK = 10


def wait_routed(formation, haproxy, timeout=20.0):
    """Until ROUTED_STREAK new connections in a row reach the primary through the write port and
    the standby through the read port."""
    primary, standby = formation.primary(), formation.standbys()[0]
    deadline = time.monotonic() + timeout
    last, streak = None, 0
    while time.monotonic() < deadline:
        try:
            last = (server_of(uri(formation, haproxy["write_port"], target_session_attrs="any")),
                    server_of(uri(formation, haproxy["read_port"], target_session_attrs="any")))
            streak = streak + 1 if last == ((primary.port, False), (standby.port, True)) else 0
            if streak >= ROUTED_STREAK:
                return
        except psycopg.Error as e:
            last, streak = str(e), 0
        time.sleep(0.05)
    raise AssertionError(f"HAProxy does not route as expected (primary {primary.port}, standby {standby.port}): "
                         f"last (port, in recovery) through write/read ports: {last}")


def haproxy_workload(formation, haproxy, scenario):
    """A writer through HAProxy's write port (target_session_attrs=any: HAProxy alone decides where it
    lands) beside one through the direct multi-host URI."""
    return DualWorkload(formation, "haproxy", uri(formation, haproxy["write_port"], target_session_attrs="any"),
                        scenario, max_extra_downtime=MAX_EXTRA_DOWNTIME_S)


def test_haproxy_routes_by_the_keepers_checks(formation, haproxy):
    wait_routed(formation, haproxy)
    for node in formation.nodes.values():
        assert status(node, "/liveness") == 200


def test_switchover_through_haproxy(formation, haproxy):
    wait_routed(formation, haproxy)
    old = formation.primary()
    with haproxy_workload(formation, haproxy, "switchover") as w:
        w.wait_for_commits(20)
        formation.autoctl("perform", "switchover", "--wait", "60")
        w.wait_for_commits(20)
    w.assert_clean()
    assert formation.primary().name != old.name
    wait_routed(formation, haproxy)


def test_primary_crash_through_haproxy(formation, haproxy):
    wait_routed(formation, haproxy)
    old = formation.primary()
    with haproxy_workload(formation, haproxy, "primary crash") as w:
        w.wait_for_commits(20)
        old.kill_keeper(signal.SIGKILL)
        old.kill_postgres(signal.SIGKILL)
        formation.wait_until(lambda s: any(n != old.name and st["reported_state"] in ("wait_primary", "primary")
                                           for n, st in s.items()), "a standby to be promoted", timeout=60)
        w.wait_for_commits(20)
        old.start_keeper()
        formation.wait_healthy()
        w.wait_for_commits(20)
    w.assert_clean()
    assert formation.primary().name != old.name
    wait_routed(formation, haproxy)
