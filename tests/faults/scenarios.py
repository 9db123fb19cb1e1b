"""The scenario driver shared by the fault tests: a writer through the multi-host URI and a split-brain probe
around one fault, then the checker's invariants, and one result row appended to the report file.

    run_scenario(cluster, "P3", "primary: machine reboot", inject, expect_failover=True)
inject(cluster, ctx) performs the fault and its repair (it may wait for conditions) and may put figures in
ctx (a dict) for the report. Every figure in a row is measured, nothing is typed in.

Named settings (environment, defaults here):
    AUTOFAILOVER_FAULTS_RATE        writer commits/s (50)
    AUTOFAILOVER_FAULTS_HOLD        seconds a fault is held when the scenario needs it to outlast the
                                    monitor's detection (6.0 = 3 x node_considered_unhealthy_timeout)
    AUTOFAILOVER_FAULTS_REPORT      JSON-lines file the rows are appended to (none: not recorded)
"""

import datetime
import json
import os
import platform
import time

import cluster as clustermod
from common_path import checker, writer

RATE = float(os.environ.get("AUTOFAILOVER_FAULTS_RATE", "50"))
HOLD = float(os.environ.get("AUTOFAILOVER_FAULTS_HOLD", "6.0"))
REPORT = os.environ.get("AUTOFAILOVER_FAULTS_REPORT")
COMMIT_TIMEOUT = 5.0           # writer: an in-flight commit is cancelled after this (outcome unknown)
ACKS_BEFORE = 20               # commits acknowledged before the fault is injected
ACKS_AFTER = 20                # ... and after the formation is healthy again
FAILOVER_TIMEOUT = 60.0        # waiting for a new primary
SETTLE = float(os.environ.get("AUTOFAILOVER_FAULTS_SETTLE", "5.0"))  # full health must hold this long (s):
# right after a fault the monitor may still show the old, healthy picture before it notices anything


def _machine():
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "")
    except OSError:
        model = ""
    try:
        with open("/proc/meminfo") as f:
            kb = next(int(l.split()[1]) for l in f if l.startswith("MemTotal:"))
        ram = f", {kb / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        ram = ""
    return f"{platform.node()}: {os.cpu_count()} cpu {model}{ram}".strip()


def _load():
    """1-minute load average: the machine is shared, timings are only comparable with it."""
    return round(os.getloadavg()[0], 2)


def record(row):
    if not REPORT:
        return
    with open(REPORT, "a") as f:
        f.write(json.dumps(row, default=str) + "\n")


def first_writable_after(answers, t):
    """answers: one node's [(t, writable)] from the probe."""
    for ts, value in answers:
        if ts >= t and value:
            return ts
    return None


def last_writable(answers, before=None):
    last = None
    for ts, value in answers:
        if before is not None and ts > before:
            break
        if value:
            last = ts
    return last


def wait_new_primary(c, old_name, timeout=FAILOVER_TIMEOUT):
    return c.wait_until(lambda s: any(n != old_name and r["reported_state"] == "primary"
                                      and r["goal_state"] == "primary" for n, r in s.items()),
                        f"a primary other than {old_name}", timeout)


def wait_stable_health(c, t_fault):
    """Seconds from the fault to the start of a full-health period that lasted SETTLE seconds with the same
    primary (time spent settling is not counted)."""
    deadline = time.monotonic() + clustermod.HEALTHY_TIMEOUT
    while True:
        left = max(1.0, deadline - time.monotonic())
        health_s = checker.wait_full_health(c.monitor_conninfo(), t_fault, left)
        primary = c.primary().name
        stable_until = time.monotonic() + SETTLE
        while time.monotonic() < stable_until:
            time.sleep(0.2)
            try:
                state = c.state()
                ok = c.is_healthy(state) and state[primary]["goal_state"] == "primary"
            except Exception:  # noqa: BLE001
                ok = False
            if not ok:
                break
        else:
            return health_s
        if time.monotonic() > deadline:
            raise AssertionError(f"full health did not hold {SETTLE}s within {clustermod.HEALTHY_TIMEOUT}s")


def run_scenario(c, sid, title, inject, expect_failover=None, allow_flip_backs=False, make_writer=None,
                 after=None, max_gap_s=None):
    """Returns the checker.Result; asserts the invariants. The row is recorded also when it fails.
    make_writer(sid): a writer with writer.Writer's interface (test_clients.py: one in its own namespace).
    after(c, ctx): more checks once health held (test_monitor_ha.py: the leader-lease checker); it adds to
    ctx["problems"] and figures to ctx. max_gap_s: the longest writer gap this row allows (M6: no downtime)."""
    c.wait_healthy()
    old = c.primary()
    ctx = {"old_primary": old.name}
    probe = c.probe().start()
    w = make_writer(sid) if make_writer else writer.Writer(c.client_uri(), rate=RATE, name=sid,
                                                           commit_timeout=COMMIT_TIMEOUT)
    w.start()
    row = {"id": sid, "title": title, "date": datetime.datetime.utcnow().isoformat(timespec="seconds") + "Z",
           "machine": _machine(), "settings": {**clustermod.MONITOR_SETTINGS,
                                              **{k: v for k, v in clustermod.KEEPER_TIMEOUTS.items()}},
           "rate": RATE, "hold_s": HOLD, "outcome": "error"}
    problems = []
    result = None
    try:
        w.wait_for_acks(ACKS_BEFORE)
        t_fault = time.time()
        ctx["t_fault"] = t_fault
        row["load_at_fault"] = _load()
        inject(c, ctx)
        t_repaired = ctx.get("t_repaired", time.time())
        health_s = wait_stable_health(c, t_fault)
        # from the repair to the start of the full-health period (the SETTLE seconds spent checking that it
        # holds are not counted); 0 when health was back before the repair step finished
        ctx["health_after_repair_s"] = round(max(0.0, t_fault + health_s - t_repaired), 2)
        w.wait_for_acks(ACKS_AFTER)
        if after is not None:
            after(c, ctx)
        w.stop()
        probe.stop()
        final = c.primary()
        ctx["final_primary"] = final.name
        result = checker.check(w, final.tcp_conninfo(), probe, time_to_health_s=health_s,
                               manual_actions=ctx.get("manual_actions", 0), allow_flip_backs=allow_flip_backs)
        problems = result.problems()
        if expect_failover is True and final.name == old.name:
            problems.append(f"expected a failover, {old.name} is still the primary")
        if expect_failover is False and final.name != old.name:
            problems.append(f"expected no failover, the primary moved {old.name} -> {final.name}")
        if ctx.get("problems"):
            problems += ctx["problems"]
        if max_gap_s is not None and result.longest_gap_s > max_gap_s:
            problems.append(f"the writer stopped {result.longest_gap_s:.2f}s (this row allows {max_gap_s}s)")
        # fencing order in failovers: when did the old primary stop being writable, the new one start
        if final.name != old.name:
            # negative: the old primary answered as writable after the new one did (the checker fails that)
            t_new = first_writable_after(probe.answers[final.name], t_fault)
            t_old = last_writable(probe.answers[old.name])
            if t_new and t_old:
                ctx["fence_margin_s"] = round(t_new - t_old, 2)
        row.update(result.as_dict())
        row["outcome"] = "pass" if not problems else "FAIL"
    except Exception as e:  # noqa: BLE001 - recorded, then re-raised
        problems.append(f"{type(e).__name__}: {str(e)[:2000]}")
        row["outcome"] = "FAIL"
        raise
    finally:
        w.stop()
        probe.stop()
        if result is None:
            try:
                partial = checker.evaluate(w.records(), set(), w.started_at, w.stopped_at,
                                           probe.samples)
                row.update({"longest_gap_s": partial.longest_gap_s, "acked": partial.acked,
                            "writable_overlaps": partial.writable_overlaps})
            except Exception:  # noqa: BLE001
                pass
        row.update({k: v for k, v in ctx.items() if not k.startswith("t_")})
        row["load_at_end"] = _load()
        row["problems"] = problems
        record(row)
        summary = result.summary() if result else "(no result)"
        print(f"\n[{sid}] {title}: {row['outcome']} {summary} "
              f"{ {k: v for k, v in ctx.items() if not k.startswith('t_') and k != 'problems'} }")
    assert not problems, f"{sid}: " + "; ".join(problems)
    return result
