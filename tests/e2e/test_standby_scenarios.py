"""Scenarios around standbys and node settings, on one 3-node formation of
its own: stop a standby, maintenance, candidate_priority 0,
replication_quorum false. Same assertions as the primary scenarios: zero
lost acknowledged commits, never two writable primaries, back to health."""

import time

import pytest

from workload import Workload

STANDBY_DOWN_SECONDS = 6.0  # longer than the test monitor's node_considered_unhealthy_timeout


@pytest.fixture(scope="module")
def formation(formation_factory):
    f = formation_factory(port_offset=10)
    f.create_monitor()
    f.create_node("node_a")
    f.create_nodes([{"name": "node_b"}, {"name": "node_c"}])
    f.wait_healthy()
    return f


def test_stopped_standby_rejoins(formation):
    standby = formation.standbys()[0]
    with Workload(formation, "stop a standby") as w:
        w.wait_for_commits(20)
        formation.autoctl("stop", "--pgdata", standby.pgdata)
        assert standby.postmaster_pid() is None or not standby.is_writable()
        time.sleep(STANDBY_DOWN_SECONDS)
        w.wait_for_commits(20)  # writes continue while the standby is away
        standby.keeper = None
        standby.start_keeper()
        state = formation.wait_healthy()
        w.wait_for_commits(20)
    w.assert_clean()
    assert state[standby.name]["goal_state"] == "secondary"


def test_maintenance_on_a_standby(formation):
    standby = formation.standbys()[0]
    with Workload(formation, "maintenance on a standby") as w:
        w.wait_for_commits(20)
        formation.autoctl("enable", "maintenance", "--name", standby.name, "--wait", "60")
        state = formation.state()
        assert state[standby.name]["reported_state"] == "maintenance", formation.describe(state)
        w.wait_for_commits(20)  # writes go on during maintenance
        formation.autoctl("disable", "maintenance", "--name", standby.name, "--wait", "60")
        state = formation.wait_healthy()
        w.wait_for_commits(20)
    w.assert_clean()
    assert state[standby.name]["goal_state"] == "secondary"


def test_candidate_priority_zero_is_never_promoted(formation):
    never, other = formation.standbys()[:2]
    formation.autoctl("set", "node", "candidate-priority", "0", "--name", never.name, "--wait", "60")
    # Two switchovers in a row: the first primary legitimately writes again.
    with Workload(formation, "switchover with a priority-0 standby", allow_flip_backs=True) as w:
        w.wait_for_commits(20)
        print(formation.autoctl("perform", "switchover", "--wait", "60").stdout)
        w.wait_for_commits(20)
        assert formation.primary().name == other.name
        # And again: the first primary is now the only other candidate (it
        # rejoined as a standby after the first switchover).
        first = next(n for n in formation.nodes.values() if n.name not in (never.name, other.name))
        print(formation.autoctl("perform", "switchover", "--wait", "60").stdout)
        w.wait_for_commits(20)
        assert formation.primary().name == first.name
    w.assert_clean()
    result = formation.autoctl("perform", "promotion", "--name", never.name, "--wait", "10", check=False)
    assert result.returncode != 0, "promoting a candidate_priority 0 node must be refused"
    assert formation.primary().name != never.name
    formation.autoctl("set", "node", "candidate-priority", "50", "--name", never.name, "--wait", "60")


def test_replication_quorum_false_is_never_synchronous(formation):
    async_node, quorum_node = formation.standbys()[:2]
    formation.autoctl("set", "node", "replication-quorum", "false", "--name", async_node.name, "--wait", "60")
    ids = {n: s["node_id"] for n, s in formation.state().items()}
    async_name = f"autofailover_node_{ids[async_node.name]}"
    quorum_name = f"autofailover_node_{ids[quorum_node.name]}"
    with Workload(formation, "writes with an async standby") as w:
        w.wait_for_commits(50)
        primary = formation.primary()
        running = primary.sql("SHOW synchronous_standby_names")[0][0]
        replication = dict(primary.sql("SELECT application_name, sync_state FROM pg_stat_replication"))
        shown = formation.autoctl("show", "standby-names").stdout
        w.wait_for_commits(20)
    w.assert_clean()
    assert formation.state()[async_node.name]["replication_quorum"] is False
    assert async_name not in running, f"{async_name} is async but synchronous_standby_names={running!r}"
    assert async_name not in shown
    assert quorum_name in running, f"the quorum standby {quorum_name} must be synchronous: {running!r}"
    assert replication.get(async_name) == "async", replication
    assert replication.get(quorum_name) in ("sync", "quorum"), replication
    formation.autoctl("set", "node", "replication-quorum", "true", "--name", async_node.name, "--wait", "60")
    formation.wait_healthy()


def test_rejoined_old_primary_reports_the_new_timeline_when_not_streaming(formation):
    """Regression: the second switchover of a row, aimed at the node that had just
    rejoined after the first one ("no rewind required"), timed out. That node's
    pg_control keeps the old timeline until a restartpoint or a buffer write;
    once the draining primary stopped, its WAL receiver stopped streaming and its
    keeper reported that stale timeline, so it looked behind the primary and the
    switchover was abandoned after switchover_timeout. Here the rejoined node's
    receiver is stopped on purpose (maintenance: Postgres is the DBA's) and its
    keeper must still report the primary's timeline."""
    old = formation.primary()
    with Workload(formation, "switchover, then the rejoined node stops streaming") as w:
        w.wait_for_commits(20)
        formation.autoctl("perform", "switchover", "--wait", "60")
        w.wait_for_commits(20)
        new = formation.primary()
        assert new.name != old.name
        formation.wait_healthy()
        # The timeline the primary writes (pg_control's lags until its first checkpoint).
        timeline = new.sql("SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int")[0][0]
        control = old.sql("SELECT min_recovery_end_timeline, (SELECT timeline_id FROM pg_control_checkpoint()) "
                          "FROM pg_control_recovery()")[0]
        print(f"\n[rejoined {old.name}] primary timeline {timeline}; its pg_control min recovery / checkpoint "
              f"timelines {control[0]} / {control[1]} ({'stale' if max(control) < timeline else 'up to date'})")
        formation.autoctl("enable", "maintenance", "--name", old.name, "--wait", "60")
        old.sql("ALTER SYSTEM SET primary_conninfo = ''")
        old.sql("SELECT pg_reload_conf()")
        formation.wait_until(lambda s: not old.sql("SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming'"),
                             f"the WAL receiver of {old.name} to stop", timeout=30)
        time.sleep(1.0)  # a few keeper reports
        state = formation.state()
        reported, primary_reported = state[old.name]["timeline"], state[new.name]["timeline"]
        w.wait_for_commits(20)
        formation.autoctl("disable", "maintenance", "--name", old.name, "--wait", "60")
        formation.wait_healthy()
        w.wait_for_commits(20)
    w.assert_clean()
    assert reported == timeline, \
        f"{old.name} (not streaming) reports timeline {reported}, the primary {new.name} is on {timeline}"
    assert primary_reported == timeline, f"the primary {new.name} reports timeline {primary_reported}, not {timeline}"
