"""Randomized nemesis: ROUNDS rounds of one random fault each (kill -9 Postgres, clean stop, SIGSTOP pause of a
whole host, machine crash + reboot, network isolation, keeper killed, monitor stopped), held for a random
time, then healed. After every round: back to full health with no manual action, no lost acknowledged commit,
never two writable primaries. The seed is printed; rerun with AUTOFAILOVER_NEMESIS_SEED=<seed> to replay the
same sequence of faults (timings of the system itself vary).

AUTOFAILOVER_NEMESIS_SHAPE=monitor-ha runs it against the monitor-HA shape (tests/faults/ha_cluster.py: 3 etcd
members, 2 monitors, 3 data nodes) with monitor-side faults instead of `monitor_down`: the leader monitor's
machine crashed, the leader monitor's machine isolated, one etcd member killed (rounds H1...; each also checks
that two monitors never held a valid leader lease at once)."""

import os
import random
import signal
import time

import pytest

from scenarios import run_scenario

SHAPE = os.environ.get("AUTOFAILOVER_NEMESIS_SHAPE", "single")
if SHAPE == "monitor-ha":
    from test_monitor_ha import check_leases, ha_holder, hc, net  # noqa: F401 - fixtures

    @pytest.fixture
    def c(hc):  # noqa: F811
        return hc
else:
    from test_scenarios import _monitor_start, _monitor_stop, c, holder, net  # noqa: F401 - fixtures

ROUNDS = int(os.environ.get("AUTOFAILOVER_NEMESIS_ROUNDS", "5"))
SEED = int(os.environ.get("AUTOFAILOVER_NEMESIS_SEED", str(random.SystemRandom().randrange(1 << 31))))
HOLD_MIN, HOLD_MAX = 1.0, float(os.environ.get("AUTOFAILOVER_NEMESIS_HOLD_MAX", "8"))
FAULTS = ["kill_postgres", "stop_postgres", "pause_host", "crash_host", "isolate_host", "kill_keeper",
          "monitor_down"]
if SHAPE == "monitor-ha":
    FAULTS = FAULTS[:-1] + ["crash_leader_monitor", "isolate_leader_monitor", "kill_etcd_member"]
MONITOR_FAULTS = {"monitor_down", "crash_leader_monitor", "isolate_leader_monitor", "kill_etcd_member"}


def plan(seed, rounds):
    rng = random.Random(seed)
    return [(rng.choice(FAULTS), rng.choice(["primary", "standby"]), round(rng.uniform(HOLD_MIN, HOLD_MAX), 1))
            for _ in range(rounds)]


def apply_fault(c, fault, role, hold, ctx):
    if fault not in MONITOR_FAULTS:
        node = c.primary() if role == "primary" else c.standbys()[0]
        ctx["node"] = node.name
    if fault == "kill_postgres":
        node.kill_postgres(signal.SIGKILL)
        time.sleep(hold)
    elif fault == "stop_postgres":
        node.stop_postgres()
        time.sleep(hold)
    elif fault == "pause_host":
        node.pause()
        try:
            time.sleep(hold)
        finally:
            ctx["t_repaired"] = time.time()
            node.resume()
    elif fault == "crash_host":
        node.crash()
        time.sleep(hold)
        ctx["t_repaired"] = time.time()
        node.boot()
    elif fault == "isolate_host":
        c.net.isolate(node.host)
        time.sleep(hold)
        ctx["t_repaired"] = time.time()
        c.net.heal(node.host)
    elif fault == "kill_keeper":
        node.kill_keeper(signal.SIGKILL)
        time.sleep(hold)
        ctx["t_repaired"] = time.time()
        node.start_keeper()
    elif fault == "crash_leader_monitor":
        m = c.leader()
        ctx["node"] = m.name
        c.crash_machine(m.host)
        time.sleep(hold)
        ctx["t_repaired"] = time.time()
        c.boot_machine(m.host)
    elif fault == "isolate_leader_monitor":
        m = c.leader()
        ctx["node"] = m.name
        c.net.isolate(m.host)
        time.sleep(hold)
        ctx["t_repaired"] = time.time()
        c.net.heal(m.host)
    elif fault == "kill_etcd_member":
        # role picks which: the member on the leader monitor's machine or the one on e3
        leader = c.leader()
        e = next(e for e in c.etcd.values() if (e.host is leader.host) == (role == "primary"))
        ctx["node"] = e.name
        e.kill(signal.SIGKILL)
        time.sleep(hold)
        ctx["t_repaired"] = time.time()
        e.start()
    elif fault == "monitor_down":
        _monitor_stop(c)
        try:
            time.sleep(hold)
        finally:
            ctx["t_repaired"] = time.time()
            _monitor_start(c)
    else:
        raise ValueError(fault)


def test_nemesis_seed_is_reproducible():
    assert plan(1234, 10) == plan(1234, 10)
    assert {f for f, _, _ in plan(1, 200)} == set(FAULTS)


@pytest.mark.parametrize("round_no", range(ROUNDS))
def test_nemesis_round(c, round_no):  # noqa: F811 - c is the fixture
    fault, role, hold = plan(SEED, ROUNDS)[round_no]
    print(f"\n[nemesis] seed={SEED} round {round_no + 1}/{ROUNDS}: {fault} on the {role}, held {hold}s "
          f"(replay: AUTOFAILOVER_NEMESIS_SEED={SEED} AUTOFAILOVER_NEMESIS_ROUNDS={ROUNDS})")

    def inject(c, ctx):
        ctx.update({"seed": SEED, "round": round_no + 1, "fault": fault, "role": role, "hold": hold})
        apply_fault(c, fault, role, hold, ctx)

    # a fault may or may not cause a failover (a long pause of the primary does); a flip back to an old
    # primary is legitimate across rounds, not within one
    target = "the monitor" if fault == "monitor_down" else f"the {role}"   # the role does not matter there
    if fault in ("crash_leader_monitor", "isolate_leader_monitor"):
        target = "the leader monitor"
    elif fault == "kill_etcd_member":
        target = "the leader monitor's machine" if role == "primary" else "the etcd-only machine"
    if SHAPE == "monitor-ha":
        run_scenario(c, f"H{round_no + 1}", f"monitor-HA nemesis seed {SEED}: {fault} on {target} for {hold}s",
                     inject, expect_failover=None, after=lambda c, ctx: check_leases(c, ctx))
    else:
        run_scenario(c, f"R{round_no + 1}", f"nemesis seed {SEED}: {fault} on {target} for {hold}s", inject,
                     expect_failover=None)
