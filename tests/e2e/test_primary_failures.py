"""Scenarios around the primary, on one 3-node formation created once for
the module (order matters: each test starts from a healthy formation and
leaves one behind). A client writes through the multi-host URI during each
scenario; every scenario asserts zero lost acknowledged commits, never two
writable primaries, a return to full health, and prints the writer downtime."""

import json
import os
import signal
import time

import pytest

from workload import Workload

# How long the monitor needs at most to notice a silent keeper (the test
# monitor's node_considered_unhealthy_timeout plus probe rounds), doubled.
FAILURE_DETECTION_WINDOW = 6.0
# node_considered_unhealthy_timeout while the primary's Postgres is killed and restarted.
RESTART_UNHEALTHY_TIMEOUT_MS = 15000


@pytest.fixture(scope="module")
def formation(formation_factory):
    f = formation_factory(port_offset=0)
    started = time.monotonic()
    f.create_monitor()
    f.create_node("node1")
    f.create_nodes([{"name": "node2"}, {"name": "node3"}])
    f.wait_healthy()
    print(f"\n[creation] monitor + 3 nodes healthy after {time.monotonic() - started:.1f}s")
    return f


def test_three_node_creation(formation):
    state = formation.wait_healthy()
    assert [n for n, s in state.items() if s["goal_state"] == "primary"] == ["node1"]
    assert sorted(n for n, s in state.items() if s["goal_state"] == "secondary") == ["node2", "node3"]
    assert [n.name for n in formation.writable_nodes()] == ["node1"]

    shown = formation.autoctl("show", "state").stdout
    for name in ("node1", "node2", "node3"):
        assert name in shown
    as_json = json.loads(formation.autoctl("show", "state", "--json").stdout)
    assert sorted(n["name"] for n in as_json) == ["node1", "node2", "node3"]
    uri = formation.autoctl("show", "uri").stdout
    for node in formation.nodes.values():
        assert f":{node.port}" in uri
    names = formation.autoctl("show", "standby-names").stdout
    assert "autofailover_node_" in names
    events = json.loads(formation.autoctl("show", "events", "--count", "50", "--json").stdout)
    assert any(e["node_name"] == "node2" and e["goal_state"] == "secondary" for e in events)

    node1 = formation.nodes["node1"]
    status = json.loads(formation.autoctl("status", "--pgdata", node1.pgdata, "--json").stdout)
    assert status["keeper_running"] and status["postgres_running"] and status["name"] == "node1"
    assert status["keeper_pid"] == node1.keeper_pid()
    unit = formation.autoctl("show", "systemd", "--pgdata", node1.pgdata).stdout
    assert f"run --pgdata {node1.pgdata}" in unit
    # Operator commands find the monitor through the node's keeper config; over TCP with scram-sha-256 the
    # operator (the test user's role) needs its password (a pgpass file).
    env = {k: v for k, v in formation.env.items() if k != "AUTOFAILOVER_MONITOR"}
    env["PGPASSFILE"] = formation.operator_pgpass
    via_pgdata = formation.autoctl("show", "state", "--pgdata", node1.pgdata, "--json", env=env)
    assert len(json.loads(via_pgdata.stdout)) == 3

    with Workload(formation, "creation") as w:
        w.wait_for_commits(50)
    w.assert_clean()


def test_switchover(formation):
    old = formation.primary()
    with Workload(formation, "switchover") as w:
        w.wait_for_commits(20)
        out = formation.autoctl("perform", "switchover", "--wait", "60").stdout
        assert "healthy" in out
        w.wait_for_commits(20)
    w.assert_clean()
    new = formation.primary()
    assert new.name != old.name
    formation.wait_healthy()


def test_primary_postgres_killed_is_restarted_without_failover(formation):
    # No failover as long as Postgres is back within node_considered_unhealthy_timeout.
    # Crash recovery (it fsyncs the data directory) takes seconds on a loaded
    # 2-core machine, longer than the 2 s the other scenarios use.
    formation.set_monitor_setting("node_considered_unhealthy_timeout", RESTART_UNHEALTHY_TIMEOUT_MS)
    try:
        primary = formation.primary()
        with Workload(formation, "kill -9 primary postgres") as w:
            w.wait_for_commits(20)
            old_pid = primary.kill_postgres(signal.SIGKILL)
            killed = time.monotonic()
            formation.wait_until(lambda s: primary.postmaster_pid() not in (None, old_pid),
                                 "the keeper to restart postgres", timeout=30)
            print(f"\n[kill -9 primary postgres] restarted by its keeper after {time.monotonic() - killed:.1f}s")
            assert_no_failover(formation, primary, FAILURE_DETECTION_WINDOW)
            formation.wait_healthy()
            w.wait_for_commits(20)
        w.assert_clean()
        assert formation.primary().name == primary.name, "a restarted primary must not cause a failover"
    finally:
        formation.set_monitor_setting("node_considered_unhealthy_timeout", None)


def assert_no_failover(formation, primary, seconds):
    """For `seconds`: the primary keeps its role and no standby is told to take over."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = formation.state()
        assert state[primary.name]["goal_state"] == "primary", formation.describe(state)
        assert all(s["goal_state"] == "secondary" for n, s in state.items() if n != primary.name), \
            formation.describe(state)
        time.sleep(0.1)


def test_primary_keeper_killed_no_failover(formation):
    primary = formation.primary()
    with Workload(formation, "kill -9 primary keeper only") as w:
        w.wait_for_commits(20)
        primary.kill_keeper(signal.SIGKILL)
        killed = time.monotonic()
        state = formation.wait_until(lambda s: not s[primary.name]["keeper_reporting"],
                                     "show state to mark the primary's keeper as down", timeout=10)
        seen_after = time.monotonic() - killed
        print(f"\n[keeper down] visible in show state after {seen_after:.1f}s")
        assert "keeper down" in formation.autoctl("show", "state").stdout
        # Wait well past failure detection: no failover, writes go on.
        assert_no_failover(formation, primary, FAILURE_DETECTION_WINDOW)
        w.wait_for_commits(20)
        primary.start_keeper()
        formation.wait_healthy()
    w.assert_clean()
    assert formation.primary().name == primary.name


def lsn_value(text):
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def test_primary_crashed_as_switchover_starts_reports_its_wal_end(formation):
    """A primary whose Postgres crashed just before it drains must not report pg_control's
    last checkpoint as its final LSN (the switchover compares the candidate with it): its keeper
    finishes crash recovery first, so the reported LSN covers every acknowledged commit."""
    primary = formation.primary()
    primary.sql("CREATE TABLE IF NOT EXISTS drain_after_crash(i int)")
    primary.sql("CHECKPOINT")
    primary.sql("INSERT INTO drain_after_crash SELECT generate_series(1, 5000)")  # acknowledged by a standby
    acked_lsn = primary.sql("SELECT pg_current_wal_flush_lsn()::text")[0][0]
    keeper_pid = primary.keeper_pid()
    os.kill(keeper_pid, signal.SIGSTOP)  # the keeper must not restart Postgres before the switchover
    try:
        primary.kill_postgres(signal.SIGKILL)
        formation.autoctl("perform", "switchover", "--wait", "0")
    finally:
        os.kill(keeper_pid, signal.SIGCONT)
    state = formation.wait_until(lambda s: s[primary.name]["reported_state"] in ("draining", "demoted"),
                                 "the old primary to report draining", timeout=60)
    reported = state[primary.name]["lsn"]
    print(f"\n[crash before drain] acknowledged up to {acked_lsn}, drained primary reported {reported}")
    assert lsn_value(reported) >= lsn_value(acked_lsn), formation.describe(state)
    formation.wait_healthy()
    assert len(formation.writable_nodes()) == 1


def test_primary_machine_crash_fails_over_and_old_primary_rejoins(formation):
    old = formation.primary()
    # The best candidate is the standby with the highest candidate_priority.
    best = formation.standbys()[-1]
    formation.autoctl("set", "node", "candidate-priority", "90", "--name", best.name, "--wait", "60")
    with Workload(formation, "kill -9 primary keeper + postgres (failover)") as w:
        w.wait_for_commits(20)
        old.kill_keeper(signal.SIGKILL)
        old.kill_postgres(signal.SIGKILL)
        killed = time.monotonic()
        state = formation.wait_until(
            lambda s: any(n != old.name and st["reported_state"] == "primary" for n, st in s.items()),
            "a standby to be promoted", timeout=60)
        # The old primary's row still says primary: its keeper is dead and cannot report.
        new = next(n for n, st in state.items() if n != old.name and st["reported_state"] == "primary")
        print(f"\n[failover] {new} promoted after {time.monotonic() - killed:.1f}s")
        assert new == best.name, f"expected {best.name} (priority 90) to be promoted, got {new}"
        w.wait_for_commits(20)
        old.start_keeper()
        state = formation.wait_healthy()
        w.wait_for_commits(20)
    w.assert_clean()
    assert state[old.name]["goal_state"] == "secondary", "the old primary rejoins as a standby"
    assert formation.primary().name == new
