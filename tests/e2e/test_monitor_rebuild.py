"""M6 (docs/monitor-ha.md): the only monitor is lost for good and a fresh, empty monitor adopts the running
formation from its keepers (`autoctl enable monitor`), with the writer and the split-brain probe running.

The monitor's postmaster and children are killed (-9) and its data directory deleted. The writer must keep
writing (the primary's keeper keeps its write lease on its standby's replies). A new monitor is created on
another port and directory; the STANDBY is adopted first (the adoption grace must keep the new monitor from
electing it while the primary is unknown), then the primary. Afterwards: same node ids, same primary, same
candidate priorities and replication quorum, formation healthy, 0 lost commits, 0 moments with two writable
primaries; the writer's longest gap is printed. Then a switchover on the new monitor. The refusals: an
adoption without or with a wrong bootstrap password, a second primary claim, a node role calling adopt_node,
adopting a node twice."""

import os
import shutil
import signal
import time

import psycopg
import pytest

from formation import pid_alive, read_pid, write_secret_file
from processes import children_of
from workload import Workload

PORT_BASE = int(os.environ.get("AUTOFAILOVER_E2E_PORT_BASE", "6650"))
NEW_MONITOR_PORT = PORT_BASE + 10
# How long the formation runs without any monitor before the new one is built.
MONITORLESS_S = 5.0
PRIORITIES = {"node_a": 60, "node_b": 40}
# To show what the adoption grace prevents: AUTOFAILOVER_M6_ADOPTION_GRACE=0 (ms) gives the new monitor none.
ADOPTION_GRACE = os.environ.get("AUTOFAILOVER_M6_ADOPTION_GRACE")


def kill_monitor_for_good(f):
    pm = read_pid(os.path.join(f.monitor_pgdata, "postmaster.pid"))
    assert pm is not None and pid_alive(pm), "the monitor is not running"
    for pid in [pm] + children_of(pm):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while pid_alive(pm) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pm)
    shutil.rmtree(f.monitor_pgdata)


def bootstrap_password(f):
    with open(f.monitor_password_file) as fh:
        return fh.readline().strip()


def sql_as(role, password, query, params=None):
    conninfo = (f"host=127.0.0.1 port={NEW_MONITOR_PORT} dbname=autofailover user={role} sslmode=require "
                f"connect_timeout=5")
    with psycopg.connect(conninfo, password=password, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else None


def node_role_password(node):
    with open(os.path.join(node.state_dir, "monitor.pgpass")) as fh:
        line = [entry.strip() for entry in fh if entry.strip() and not entry.startswith("#")][0]
    return line.rsplit(":", 1)[1]


def enable_monitor(f, node, password_file, check=True):
    args = ["enable", "monitor", "--pgdata", node.pgdata, "--monitor", f.keeper_uri]
    if password_file:
        args += ["--monitor-password-file", password_file]
    return f.autoctl(*args, check=check)


def test_new_monitor_adopts_running_formation(formation_factory):
    f = formation_factory()
    f.create_monitor()
    a = f.create_node("node_a", candidate_priority=PRIORITIES["node_a"])
    b = f.create_node("node_b", candidate_priority=PRIORITIES["node_b"])
    before = f.wait_healthy()
    primary_name = f.primary().name
    standby_name = "node_b" if primary_name == "node_a" else "node_a"
    primary, standby = f.nodes[primary_name], f.nodes[standby_name]
    print(f"\nbefore: primary {primary_name}, " + ", ".join(
        f"{n} id={s['node_id']} prio={s['candidate_priority']} quorum={s['replication_quorum']}"
        for n, s in before.items()))

    with Workload(f, "M6 monitor lost for good, rebuilt from the keepers") as w:
        w.wait_for_commits(20)
        t_lost = time.monotonic()
        kill_monitor_for_good(f)
        print("monitor killed and its data directory deleted")
        time.sleep(MONITORLESS_S)
        w.wait_for_commits(20, timeout=10)  # still writing without any monitor

        # A fresh monitor on another port and directory (the old host is gone).
        f.port_base = NEW_MONITOR_PORT
        f.monitor_pgdata = os.path.join(f.workdir, "monitor2")
        f.operator_uri = f"postgres:///autofailover?host={f.monitor_pgdata}&port={NEW_MONITOR_PORT}"
        f.env["AUTOFAILOVER_MONITOR"] = f.operator_uri
        f.create_monitor(settings={"adoption_grace_period": ADOPTION_GRACE} if ADOPTION_GRACE else None)

        # Refused: no password, a wrong one (authentication), nothing changes on the node.
        r = enable_monitor(f, standby, None, check=False)
        assert r.returncode == 2, r
        wrong = os.path.join(f.workdir, "wrong.password")
        write_secret_file(wrong, "not-the-password\n")
        r = enable_monitor(f, standby, wrong, check=False)
        assert r.returncode == 2 and "password authentication failed" in r.stderr, r
        assert f.state() == {}, "a refused adoption must leave the new monitor empty"

        # The standby first: the new monitor has no primary yet and must not elect it.
        r = enable_monitor(f, standby, f.monitor_password_file)
        print(r.stdout.strip())
        time.sleep(3.0)
        state = f.state()
        assert state[standby_name]["goal_state"] == "catchingup", f.describe(state)
        with psycopg.connect(f.monitor_conninfo(), autocommit=True) as conn:
            waiting = conn.execute("SELECT waiting_reason FROM autofailover.groups").fetchone()[0]
        print(f"while the primary is not adopted: {waiting}")
        assert "adoption" in waiting, waiting

        r = enable_monitor(f, primary, f.monitor_password_file)
        print(r.stdout.strip())
        t_adopted = time.monotonic()
        after = f.wait_healthy(timeout=60)
        print(f"healthy {time.monotonic() - t_adopted:.2f}s after the primary's adoption "
              f"({time.monotonic() - t_lost:.2f}s after the monitor was lost)")
        w.wait_for_commits(20)

    w.assert_clean()
    assert f.primary().name == primary_name, "the adopted formation must keep its primary (no failover)"
    for name, s in before.items():
        assert after[name]["node_id"] == s["node_id"], (name, s, after[name])
        assert after[name]["candidate_priority"] == s["candidate_priority"] == PRIORITIES[name]
        assert after[name]["replication_quorum"] == s["replication_quorum"]
    with psycopg.connect(f.monitor_conninfo(), autocommit=True) as conn:
        events = [r[0] for r in conn.execute(
            "SELECT goal_state::text FROM autofailover.last_events('default', 100)").fetchall()]
    assert "report_lsn" not in events and "prepare_promotion" not in events, events
    assert "demoted" not in events, events

    # Refused on the new monitor: a second primary claim, adopting twice, a node role calling adopt_node.
    password = bootstrap_password(f)
    with pytest.raises(psycopg.Error) as e:
        sql_as("autofailover_keeper", password,
               "SELECT * FROM autofailover.adopt_node('default', 99, 'intruder', '127.0.0.1', 6699, 0, 'primary', "
               "%s, '0/1000000')", (after[primary_name]["timeline"],))
    assert e.value.sqlstate == "55000" and "already has a primary" in str(e.value), e.value
    print(f"second primary claim refused: {e.value}")
    r = enable_monitor(f, primary, f.monitor_password_file, check=False)
    assert r.returncode == 2 and "already exists on this monitor" in r.stderr, r
    with pytest.raises(psycopg.Error) as e:
        sql_as(f"autofailover_keeper_{after[standby_name]['node_id']}", node_role_password(standby),
               "SELECT * FROM autofailover.adopt_node('default', 98, 'intruder', '127.0.0.1', 6698, 0, "
               "'secondary', 1, '0/1000000')")
    assert e.value.sqlstate == "42501", e.value
    assert set(f.state()) == set(before), "the refusals must add no node"

    # The new monitor drives the formation: a switchover.
    with Workload(f, "M6 switchover on the new monitor") as w2:
        w2.wait_for_commits(10)
        f.autoctl("perform", "switchover", "--wait", "60")
        f.wait_healthy(timeout=60)
        w2.wait_for_commits(10)
    w2.assert_clean()
    assert f.primary().name == standby_name
