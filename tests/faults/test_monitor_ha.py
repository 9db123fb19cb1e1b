"""Replicated monitors on isolated hosts (docs/monitor-ha.md): a 3-member etcd, two monitors (leader + streaming
standby with their agents) and three data nodes on the multi-host monitor URI, every machine in its own network
namespace (tests/faults/ha_cluster.py). Each row runs the writer and the split-brain probe of every fault row
(0 lost, 0 two writers) plus the leader-lease checker: both monitors sampled every 50 ms, never two valid
leader leases at the same instant (each leadership lasts from its leader_since to its last deadline seen).

    M3  the leader monitor's machine crashes (with its etcd member) -> the standby monitor leads; then the data
        primary's machine crashes -> failed over by the new leader
    M4  the leader monitor is cut from both other etcd machines and from its peer monitor, still reaching the
        keepers -> fenced before the new leader starts, keepers move to the new leader, no goal after its deadline
    M5  etcd loses quorum (2 of 3 members killed) -> heartbeats go on, data nodes unaffected, a primary crash is
        not failed over without a lease; quorum back -> failover
    M7  one etcd member's machine lost alone -> a data primary crash is failed over as usual

Run just these rows (root, installed binaries): `AUTOFAILOVER_FAULTS_REPORT=build/faults-results.jsonl
/usr/bin/python3 -m pytest -v -s tests/faults/test_monitor_ha.py` (scripts/faults.sh runs them in `make faults`).
"""

import os
import signal
import time

import pytest

import cluster as clustermod
import ha_cluster
from formation_fixtures import FormationHolder, module_net
from scenarios import run_scenario, wait_new_primary

# Target at the agent's defaults (TTL 3 s): a standby monitor leads within 5 s (docs/monitor-ha.md). The
# default bound leaves room for this shared, loaded 2-core machine; above the target the row says so.
TAKEOVER_TARGET_S = 5.0
TAKEOVER_BOUND_S = float(os.environ.get("AUTOFAILOVER_M3_TAKEOVER_BOUND", "8"))
NO_DECISION_WATCH_S = float(os.environ.get("AUTOFAILOVER_M5_WATCH", "6"))
# Test-side fault injection to show the M4 checker can fail: the isolated leader's Postgres lease is extended
# by hand (a broken agent), so it keeps a valid lease while the other monitor takes over.
BREAK_LEASE = os.environ.get("AUTOFAILOVER_M4_BREAK_LEASE") == "1"


@pytest.fixture(scope="module")
def net():
    yield from module_net(ha_cluster.etcd_available)


@pytest.fixture(scope="module")
def ha_holder(net, request):
    h = FormationHolder(net, ha_cluster.HaCluster, "autofailover-faults-ha-", "3 etcd + 2 monitors + 3 nodes")
    yield h
    h.close(request)


def _back_to_health(hc):
    hc.restore_control_plane()
    hc.wait_monitors_ready(timeout=90)
    hc.wait_healthy(timeout=60)


@pytest.fixture
def hc(net, ha_holder):
    return ha_holder.get(_back_to_health)


def problem(ctx, text):
    ctx.setdefault("problems", []).append(text)


def check_leases(c, ctx, wait_rejoin=True):
    """The lease checker over the row, and (after a monitor was lost) how long until both monitors were
    ready again: one leads, the other streams from it and may take over."""
    if wait_rejoin:
        t0 = time.time()
        try:
            c.wait_monitors_ready(timeout=120)
            ctx["monitors_ready_again_s"] = round(time.time() - t0, 2)
        except AssertionError as e:
            problem(ctx, f"monitors not both back: {str(e)[:300]}")
    since = ctx["t_fault"] - 5
    overlaps = c.leases.overlaps(since)
    ctx["two_leader_leases"] = len(overlaps)
    if overlaps:
        problem(ctx, f"two monitors held a valid leader lease at once: {overlaps[:3]}")
    handovers = c.leases.handovers(since)
    if handovers:
        ctx["lease_handover_margin_s"] = [h["margin_s"] for h in handovers]
    ctx["leadership_epochs"] = [f"{m}@{round(start - ctx['t_fault'], 2)}s" for m, start, _end, _n
                                in c.leases.epochs(since)]


def wait_keepers_on(c, m, ctx, key, t0, timeout=60):
    ips = sorted(n.host.ip for n in c.nodes.values())
    try:
        c.wait_for(lambda: c.keeper_clients(m) == ips, f"every keeper connected to {m.name}", timeout)
        ctx[key] = round(time.time() - t0, 2)
    except AssertionError as e:
        problem(ctx, str(e)[:300])


# -- M3 ---------------------------------------------------------------------------------------------------------

def test_M3_leader_monitor_machine_crash_then_primary_crash(hc):
    def inject(c, ctx):
        old = c.leader()
        new = c.other_monitor(old)
        ctx["old_leader_monitor"] = old.name
        # Where etcd's raft leader sits decides the takeover time: losing it adds an etcd election and etcd's
        # lease extension (electionTimeout) on top of the TTL (docs/monitor-ha.md, "Takeover time").
        # AUTOFAILOVER_M3_ETCD_LEADER=with-monitor|elsewhere places it before the crash; unset: as it is.
        # The leading agent hands etcd's leadership away from its own machine's member (keep_etcd_leader_elsewhere):
        # with-monitor puts it there and requires the agent to move it away again.
        placement = os.environ.get("AUTOFAILOVER_M3_ETCD_LEADER", "")
        local_member = next(m for m in c.etcd.values() if m.host is old.host)
        if placement == "with-monitor":
            c.move_etcd_leader(local_member)
            t_moved = time.time()
            try:
                c.wait_for(lambda: c.etcd_leader_member() not in (None, local_member),
                           f"{old.name}'s agent to move etcd's leader off its machine", 10)
                ctx["etcd_leader_moved_away_s"] = round(time.time() - t_moved, 2)
            except AssertionError as e:
                problem(ctx, str(e)[:300])
        elif placement == "elsewhere":
            c.move_etcd_leader(next(m for m in c.etcd.values() if m.host is not old.host and m.host is not new.host))
        time.sleep(1)   # MoveLeader extends every lease (etcd promotes its lessor): let that settle
        ctx["etcd_leader_lost"] = c.etcd_leader_member() is local_member
        t0 = time.time()
        c.crash_machine(old.host)
        c.wait_for(new.leads, f"{new.name} to lead", 60, new.log_tail)
        took = round(time.time() - t0, 2)
        ctx["standby_monitor_leads_s"] = took
        if took > TAKEOVER_BOUND_S:
            problem(ctx, f"takeover took {took}s (bound {TAKEOVER_BOUND_S}s, target {TAKEOVER_TARGET_S}s)")
        wait_keepers_on(c, new, ctx, "keepers_on_new_leader_s", t0)
        c.wait_healthy()
        p = c.primary()
        t1 = time.time()
        p.crash()
        wait_new_primary(c, p.name)
        ctx["failover_s"] = round(time.time() - t1, 2)
        ctx["t_repaired"] = time.time()
        p.boot()
        c.boot_machine(old.host)
    run_scenario(hc, "M3", "monitor HA: leader monitor's machine crashes, then the data primary's", inject,
                 expect_failover=True, after=check_leases)


# -- M4 ---------------------------------------------------------------------------------------------------------

def _break_lease(m):
    """Fault injection for the checker's own test: a 60 s lease renewed by hand on the isolated leader."""
    clustermod._psql_as_test_user(m.socket_dir, m.port, "autofailover",
                                  "SELECT autofailover.renew_leader_lease(60000)")


def test_M4_leader_monitor_cut_from_etcd_and_peer(hc):
    def inject(c, ctx):
        old = c.leader()
        new = c.other_monitor(old)
        ctx["old_leader_monitor"] = old.name
        others = [h for h in c.machines.values() if h is not old.host]   # the peer monitor's and e3's machines
        for h in others:
            c.net.cut(old.host, h)
        t0 = time.time()
        if BREAK_LEASE:
            _break_lease(old)
        try:
            c.wait_for(lambda: not old.leads(), f"{old.name} to lose its lease", 15, old.log_tail)
            ctx["old_leader_fenced_s"] = round(time.time() - t0, 2)
        except AssertionError:
            problem(ctx, f"{old.name} kept a valid lease 15 s after it was cut from etcd")
        c.wait_for(new.leads, f"{new.name} to lead", 60, new.log_tail)
        ctx["new_leader_s"] = round(time.time() - t0, 2)
        wait_keepers_on(c, new, ctx, "keepers_on_new_leader_s", t0)
        time.sleep(2)
        # The old leader is still a read-write Postgres the keepers reach: no goal may come from it after its
        # lease ran out (its last deadline seen by the checker).
        rec = old.query("SELECT pg_is_in_recovery()")[0][0]
        ctx["old_leader_still_read_write"] = not rec
        last = [e for e in c.leases.epochs(t0 - 5) if e[0] == old.name]
        if last:
            deadline = last[-1][2]
            n, = old.query("SELECT count(*) FROM autofailover.events WHERE event_time > to_timestamp(%s)",
                           (deadline,))[0]
            ctx["old_leader_events_after_deadline"] = n
            if n:
                rows = old.query("SELECT event_time, node_name, goal_state::text, description FROM "
                                 "autofailover.events WHERE event_time > to_timestamp(%s) ORDER BY event_id",
                                 (deadline,))
                problem(ctx, f"{old.name} wrote {n} events after its lease deadline: {rows[:3]}")
        ctx["keepers_left_on_old_leader"] = len(c.keeper_clients(old))
        if ctx["keepers_left_on_old_leader"]:
            problem(ctx, f"keepers still connected to the cut old leader: {c.keeper_clients(old)}")
        ctx["t_repaired"] = time.time()
        for h in others:
            c.net.uncut(old.host, h)
    run_scenario(hc, "M4", "monitor HA: leader monitor cut from etcd and its peer, keepers still reach it",
                 inject, expect_failover=False, after=check_leases)


# -- M5 ---------------------------------------------------------------------------------------------------------

def _reports(m):
    return dict(m.query("SELECT node_name, keeper_last_report FROM autofailover.current_state('default')"))


def test_M5_etcd_quorum_lost(hc):
    def inject(c, ctx):
        leader = c.leader()
        ctx["leader_monitor"] = leader.name
        lost = [e for e in c.etcd.values() if e.host is not leader.host]   # 2 of 3: its own member stays
        ctx["etcd_killed"] = [e.name for e in lost]
        t0 = time.time()
        for e in lost:
            e.kill(signal.SIGKILL)
        try:
            c.wait_for(lambda: not leader.leads(), f"{leader.name} to lose its lease", 15, leader.log_tail)
            ctx["leader_fenced_s"] = round(time.time() - t0, 2)
            before = _reports(leader)
            time.sleep(2)
            after = _reports(leader)
            ctx["heartbeats_recorded"] = all(after[n] > before[n] for n in before)
            if not ctx["heartbeats_recorded"]:
                problem(ctx, f"heartbeats not recorded without quorum: {before} {after}")
            p = c.primary()
            writable = c.writable_now()
            ctx["writable_without_quorum"] = writable
            if writable != [p.name]:
                problem(ctx, f"writable nodes without etcd quorum: {writable} (primary {p.name})")
            t1 = time.time()
            p.crash()
            # no failover decision without a lease: every goal stays as it was
            while time.time() - t1 < NO_DECISION_WATCH_S:
                state = c.state()
                moved = {n: s["goal_state"] for n, s in state.items()
                         if s["goal_state"] != ("primary" if n == p.name else "secondary")}
                if moved:
                    problem(ctx, f"a decision without a lease: goals {moved}")
                    break
                time.sleep(0.2)
            ctx["no_decision_watch_s"] = NO_DECISION_WATCH_S
        finally:
            t_back = time.time()
            for e in lost:
                if not e.running():
                    e.start()
        wait_new_primary(c, p.name)
        ctx["failover_after_quorum_back_s"] = round(time.time() - t_back, 2)
        ctx["t_repaired"] = time.time()
        p.boot()
    run_scenario(hc, "M5", "monitor HA: etcd loses quorum (2 of 3 members killed), then the primary crashes",
                 inject, expect_failover=True, after=check_leases)


# -- M7 ---------------------------------------------------------------------------------------------------------

def test_M7_etcd_machine_lost_then_primary_crash(hc):
    def inject(c, ctx):
        e3 = c.machines["e3"]
        leader = c.leader()
        ctx["leader_monitor"] = leader.name
        c.crash_machine(e3)
        time.sleep(2)
        if c.leader() is not leader:
            problem(ctx, f"{leader.name} does not lead 2 s after the etcd machine e3 was lost")
        p = c.primary()
        t1 = time.time()
        p.crash()
        wait_new_primary(c, p.name)
        ctx["failover_s"] = round(time.time() - t1, 2)
        ctx["t_repaired"] = time.time()
        p.boot()
        c.boot_machine(e3)

    def after(c, ctx):
        check_leases(c, ctx, wait_rejoin=False)
        # the leader kept leading through the loss of one member (a new epoch = its lease lapsed)
        ctx["leader_lease_lapses"] = max(0, len(c.leases.epochs(ctx["t_fault"] - 5)) - 1)
    run_scenario(hc, "M7", "monitor HA: one etcd member's machine lost, then the data primary crashes", inject,
                 expect_failover=True, after=after)


# -- the lease checker itself (no root needed) -------------------------------------------------------------------

def test_lease_checker_flags_two_valid_leases():
    """Synthetic samples: a handover after the old deadline passes; a new leader starting before the old one's
    last deadline (what a leader that ignores its lease would show) is flagged."""
    lc = ha_cluster.LeaseChecker([])
    # (t_server, in_recovery, valid, deadline, leader_since)
    lc.samples = {"m1": [(100.0, False, True, 102.5, 90.0), (100.5, False, True, 103.0, 90.0),
                         (103.5, False, False, None, 90.0)],
                  "m2": [(104.0, False, True, 106.5, 103.9), (104.5, False, True, 107.0, 103.9)]}
    assert lc.overlaps() == []
    assert [h["margin_s"] for h in lc.handovers()] == [0.9]
    assert lc.epochs()[0][:3] == ("m1", 90.0, 103.0)
    # m1 renewed by hand (a broken agent) and still valid while m2 leads
    lc.samples["m1"].append((104.2, False, True, 164.2, 90.0))
    bad = lc.overlaps()
    assert len(bad) == 1 and bad[0]["first"] == "m1" and bad[0]["second"] == "m2", bad
    # a standby's samples never count, whatever its shared memory says
    lc.samples["m1"] = [(104.2, True, False, None, None)]
    assert lc.overlaps() == []
