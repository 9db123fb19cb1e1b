"""keeper.json hooks.pre_promote (docs/operations.md, "Hooks") on a real formation: monitor + node1 (primary)
+ node2 (candidate_priority 90, the preferred candidate) + node3 (priority 10). Each keeper runs the same
hook, which does what the file pre_promote.<node> in the work directory says: absent -> allow (exit 0),
"veto" -> exit 3 with a reason, "hang" -> sleep past the hooks' timeout_ms. A veto must stop that node's
promotion, leave an event row naming the hook's reason, and:
- failover: the election goes to node3, node2 is never promoted;
- switchover to node2 with a hung hook: abandoned (the old primary resumes), then once the hook allows,
  the same switchover succeeds. A writer runs through each scenario: 0 acknowledged commits lost, never two
  writers."""

import os
import signal
import sys
import time

import psycopg
import pytest

from formation import COMMAND_TIMEOUT
from http_nodes import create_http_node

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "common"))
import checker  # noqa: E402
from writer import Writer  # noqa: E402

HOOK_TIMEOUT_MS = 2000
PROMOTED = ("wait_primary", "primary", "single")


def hook_script(workdir):
    path = os.path.join(workdir, "pre_promote.sh")
    with open(path, "w") as f:
        f.write(f"""#!/bin/sh
mode=$(cat "{workdir}/pre_promote.$AUTOFAILOVER_NODE" 2>/dev/null || true)
echo "$(date +%s.%N) $AUTOFAILOVER_HOOK $AUTOFAILOVER_NODE $AUTOFAILOVER_OLD_ROLE $AUTOFAILOVER_NEW_ROLE ${{mode:-allow}}" \\
    >> "{workdir}/pre_promote.log"
case $mode in
    veto) echo "maintenance window on $AUTOFAILOVER_NODE: no promotion here"; exit 3 ;;
    hang) exec sleep 60 ;;
esac
echo "promotion of $AUTOFAILOVER_NODE allowed"
""")
    os.chmod(path, 0o755)
    return path


def set_mode(formation, node, mode):
    path = os.path.join(formation.workdir, f"pre_promote.{node}")
    if mode is None:
        if os.path.exists(path):
            os.remove(path)
        return
    with open(path, "w") as f:
        f.write(mode + "\n")
    os.chmod(path, 0o644)


def hook_calls(formation):
    try:
        with open(os.path.join(formation.workdir, "pre_promote.log")) as f:
            return [line.split() for line in f.read().splitlines()]
    except OSError:
        return []


def events_since(formation, event_id):
    with psycopg.connect(formation.monitor_conninfo(), autocommit=True) as conn:
        return conn.execute("SELECT event_id, node_name, description FROM autofailover.events "
                            "WHERE event_id > %s ORDER BY event_id", (event_id,)).fetchall()


def last_event_id(formation):
    with psycopg.connect(formation.monitor_conninfo(), autocommit=True) as conn:
        return conn.execute("SELECT coalesce(max(event_id), 0) FROM autofailover.events").fetchone()[0]


@pytest.fixture(scope="module")
def formation(formation_factory):
    f = formation_factory(port_offset=0)
    f.create_monitor()
    hooks = {"pre_promote": hook_script(f.workdir), "timeout_ms": HOOK_TIMEOUT_MS}
    create_http_node(f, "node1", hooks=hooks)
    create_http_node(f, "node2", hooks=hooks, candidate_priority=90)
    create_http_node(f, "node3", hooks=hooks, candidate_priority=10)
    f.wait_healthy()
    return f


class Workload:
    def __init__(self, formation, name):
        self.formation = formation
        self.writer = Writer(formation.client_uri(), name=name)
        self.probe = checker.SplitBrainProbe({n.name: n.conninfo() for n in formation.nodes.values()})

    def __enter__(self):
        self.probe.start()
        self.writer.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.writer.stop()
        self.probe.stop()
        self.writer.save(os.path.join(self.formation.workdir, f"writer-{self.writer.name}.jsonl"))
        if exc_type is None:
            r = checker.check([self.writer], self.formation.primary().conninfo(), probe=self.probe)
            print(f"\n[pre_promote: {self.writer.name}] {r.acked} commits acknowledged, {len(r.lost_ids)} lost, "
                  f"downtime {checker.downtime(self.writer.attempts, self.writer.started_at, self.writer.stopped_at).longest:.2f}s")
            assert not r.problems(), "; ".join(r.problems())
        return False


def test_failover_skips_the_vetoing_candidate(formation):
    f = formation
    assert f.primary().name == "node1"
    set_mode(f, "node2", "veto")
    since = last_event_id(f)
    old = f.nodes["node1"]
    with Workload(f, "failover") as w:
        w.writer.wait_for_acks(20)
        old.kill_keeper(signal.SIGKILL)
        old.kill_postgres(signal.SIGKILL)
        state = f.wait_until(lambda s: any(st["reported_state"] in PROMOTED for n, st in s.items() if n != "node1"),
                             "a standby to be promoted", timeout=60)
        w.writer.wait_for_acks(20)
        old.start_keeper()
        f.wait_healthy()
        w.writer.wait_for_acks(10)
    assert state["node3"]["reported_state"] in PROMOTED, f.describe(state)
    assert f.primary().name == "node3"
    calls = hook_calls(f)
    assert any(c[1:3] == ["pre_promote", "node2"] and c[-1] == "veto" for c in calls), calls
    assert any(c[1:3] == ["pre_promote", "node3"] and c[-1] == "allow" for c in calls), calls
    assert all(c[4] == "primary" for c in calls), calls  # AUTOFAILOVER_NEW_ROLE
    events = events_since(f, since)
    text = "\n".join(f"{e[1]}: {e[2]}" for e in events)
    vetoes = [e for e in events if "pre_promote hook of node2 vetoed its promotion" in e[2]]
    assert vetoes, text
    assert "exited 3" in vetoes[0][2] and "maintenance window on node2" in vetoes[0][2], text
    # The veto makes the monitor choose again: "electing again" after a declared failure, or, when the
    # candidate was elected early for a suspected primary (primary_suspect_timeout), "no longer the candidate".
    assert any("electing again" in e[2] or "no longer the candidate" in e[2] for e in events), text
    # node2 never reported a promoted state.
    assert not any(e[1] == "node2" and any(f"reports {s}" in e[2] for s in PROMOTED) for e in events), text
    print("\n[pre_promote: failover] events:\n" + text)


def test_switchover_abandoned_while_the_hook_hangs_then_retried(formation):
    f = formation
    primary = f.primary()
    assert primary.name == "node3"
    set_mode(f, "node2", "hang")
    since = last_event_id(f)
    with Workload(f, "switchover_vetoed") as w:
        w.writer.wait_for_acks(20)
        started = time.monotonic()
        r = f.autoctl("perform", "switchover", "--wait", "60", check=False, timeout=COMMAND_TIMEOUT)
        took = time.monotonic() - started
        f.wait_healthy()
        w.writer.wait_for_acks(20)
    assert f.primary().name == "node3", f"{r.stdout}{r.stderr}"
    events = events_since(f, since)
    text = "\n".join(f"{e[1]}: {e[2]}" for e in events)
    assert any("pre_promote hook of node2 vetoed its promotion" in e[2] and
               f"killed at its timeout ({HOOK_TIMEOUT_MS} ms)" in e[2] for e in events), text
    assert any("pre_promote hook of the switchover candidate node2 vetoed its promotion" in e[2] and
               "resumes as the primary" in e[2] for e in events), text
    print(f"\n[pre_promote: switchover vetoed] autoctl exited {r.returncode} after {took:.1f}s; events:\n{text}")

    # The hook allows now: the same switchover goes through.
    set_mode(f, "node2", None)
    with Workload(f, "switchover_allowed") as w:
        w.writer.wait_for_acks(20)
        f.autoctl("perform", "switchover", "--wait", "60")
        w.writer.wait_for_acks(20)
    assert f.primary().name == "node2"
