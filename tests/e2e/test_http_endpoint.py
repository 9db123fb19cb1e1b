"""The keeper's HTTP endpoint (docs/operations.md) on a real formation: monitor + 2 nodes with secure
defaults, each keeper started with `--http-port`. Every endpoint is asked on the primary, the secondary,
a standby whose Postgres is stopped, a primary whose Postgres was killed, and a primary cut from the
monitor and its standby until its write lease expires and it fences itself. /state is checked field by
field and /metrics is parsed as Prometheus text exposition format."""

import math
import os
import re
import signal
import subprocess
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from formation import COMMAND_TIMEOUT, PG_BINDIR, as_user
from http_nodes import (cluster_pids, create_http_node, freeze, get, state, status, thaw, wait_hook_line,
                        wait_status)

ROLE_PATHS = ("/primary", "/replica", "/read-only", "/health", "/liveness", "/readiness")
# The test monitor's network_partition_timeout (tests/common/short_timeouts.py), in seconds.
NETWORK_PARTITION_TIMEOUT = 1.5
# node_considered_unhealthy_timeout while the primary's Postgres is killed and restarted (no failover).
RESTART_UNHEALTHY_TIMEOUT_MS = 15000


@pytest.fixture(scope="module")
def formation(formation_factory):
    f = formation_factory(port_offset=0)
    f.create_monitor()
    create_http_node(f, "node1")
    create_http_node(f, "node2")
    f.wait_healthy()
    return f


def codes(node):
    return {p: status(node, p) for p in ROLE_PATHS}


def expect_codes(node, expected, timeout=10.0):
    """The keeper publishes at each loop step: wait until every path answers as expected."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = codes(node)
        if seen == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"{node.name}: expected {expected}, got {seen}\n{node.log_tail(20)}")


PRIMARY = {"/primary": 200, "/replica": 503, "/read-only": 200, "/health": 200, "/liveness": 200, "/readiness": 200}
SECONDARY = {"/primary": 503, "/replica": 200, "/read-only": 200, "/health": 200, "/liveness": 200,
             "/readiness": 200}
POSTGRES_DOWN = {"/primary": 503, "/replica": 503, "/read-only": 503, "/health": 503, "/liveness": 200,
                 "/readiness": 503}


def parse_metrics(node):
    """Samples {(name, frozenset(labels)): value} of /metrics, through the Prometheus parser, plus a
    strict check of each line (the parser is lenient about some of them)."""
    code, body = get(node, "/metrics")
    assert code == 200
    name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
    sample = re.compile(rf'^{name}(\{{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
                        rf'(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\}})? \S+$')
    typed = set()
    for line in body.splitlines():
        if line.startswith("# HELP "):
            continue
        m = re.match(rf"^# TYPE ({name}) (counter|gauge|histogram|summary|untyped)$", line)
        if m:
            typed.add(m.group(1))
            continue
        assert sample.match(line), f"not a Prometheus sample line: {line!r}"
        assert line.split("{")[0].split(" ")[0] in typed, f"sample before its # TYPE: {line!r}"
        float(line.rsplit(" ", 1)[1])
    samples = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def metric(samples, name, **labels):
    hits = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls)]
    assert len(hits) == 1, f"{name}{labels}: {len(hits)} samples in {sorted(n for n, _ in samples)}"
    return hits[0]


def test_roles_of_a_healthy_formation(formation):
    primary, standby = formation.primary(), formation.standbys()[0]
    expect_codes(primary, PRIMARY)
    expect_codes(standby, SECONDARY)
    wait_hook_line(formation, f"on_start {primary.name} none primary {primary.name} {primary.port}")

    s = state(primary)
    assert s["node"] == primary.name and s["formation"] == "default"
    assert s["reported_state"] == "primary" and s["goal_state"] == "primary"
    assert s["postgres_running"] and s["postgres_accepting"] and not s["in_recovery"]
    assert s["writable"] is True and s["fenced"] is False
    assert re.fullmatch(r"[0-9A-F]+/[0-9A-F]+", s["lsn"]), s["lsn"]
    # The write lease: at most network_partition_timeout ahead, renewed every poll.
    assert 0 < s["lease_left_s"] <= NETWORK_PARTITION_TIMEOUT + 0.1, s
    assert 0 <= s["last_monitor_contact_age_s"] < 5 and 0 <= s["observation_age_s"] < 5, s
    assert s["lag_bytes"] is None

    s = state(standby)
    assert s["node"] == standby.name and s["reported_state"] == "secondary" and s["goal_state"] == "secondary"
    assert s["in_recovery"] and s["streaming"] and s["postgres_accepting"]
    assert s["writable"] is False and s["fenced"] is False and s["lease_left_s"] is None
    assert isinstance(s["lag_bytes"], int) and s["lag_bytes"] >= 0, s
    assert 0 <= s["last_monitor_contact_age_s"] < 5, s

    # ?lag= bounds: bytes within, a malformed bound is a client error, an idle standby's replay lag is
    # 0 (test_pgbouncer.py pauses replay to see a duration bound fail).
    assert status(standby, "/replica?lag=64MB") == 200
    assert status(standby, "/read-only?lag=64MB") == 200
    assert status(standby, "/replica?lag=5%20parsecs") == 400
    assert status(standby, "/replica?lag=5s") == 200
    assert s["replay_lag_s"] is not None and s["replay_lag_s"] < 5, s
    # Nothing else is served, and nothing is writable over HTTP.
    assert status(primary, "/nope") == 404
    for method in ("POST", "PUT", "DELETE"):
        code, _ = get(primary, "/primary", method=method)
        assert code is not None and code >= 400 and code != 500, (method, code)
    assert formation.primary().name == primary.name

    m = parse_metrics(primary)
    assert metric(m, "autofailover_keeper_up", node=primary.name, formation="default") == 1
    assert metric(m, "autofailover_keeper_writable", node=primary.name) == 1
    assert metric(m, "autofailover_keeper_postgres_up", node=primary.name) == 1
    assert metric(m, "autofailover_keeper_fenced", node=primary.name) == 0
    assert metric(m, "autofailover_keeper_state_info", node=primary.name, reported="primary", goal="primary") == 1
    assert 0 < metric(m, "autofailover_keeper_write_lease_remaining_seconds", node=primary.name) <= 1.6
    assert metric(m, "autofailover_keeper_lsn_bytes", node=primary.name) > 0
    m = parse_metrics(standby)
    assert metric(m, "autofailover_keeper_writable", node=standby.name) == 0
    assert metric(m, "autofailover_keeper_streaming", node=standby.name) == 1
    assert metric(m, "autofailover_keeper_replication_lag_bytes", node=standby.name) >= 0
    assert metric(m, "autofailover_keeper_state_info", node=standby.name, reported="secondary",
                  goal="secondary") == 1


def test_stopped_postgres_on_a_standby(formation):
    """Maintenance leaves Postgres to the DBA: the keeper does not restart it, so it stays stopped."""
    primary, standby = formation.primary(), formation.standbys()[0]
    formation.autoctl("enable", "maintenance", "--name", standby.name, "--wait", "60")
    try:
        standby.stop_postgres()
        expect_codes(standby, POSTGRES_DOWN)
        s = state(standby)
        assert s["postgres_running"] is False and s["postgres_accepting"] is False and s["writable"] is False, s
        assert s["reported_state"] == "maintenance", s
        assert metric(parse_metrics(standby), "autofailover_keeper_postgres_up", node=standby.name) == 0
        # Its standby away, the primary runs as wait_primary: still the writable primary.
        expect_codes(primary, PRIMARY)
        assert state(primary)["reported_state"] == "wait_primary"
    finally:
        subprocess.run(as_user([os.path.join(PG_BINDIR, "pg_ctl"), "-D", standby.pgdata, "-w", "-l",
                                os.path.join(formation.workdir, f"{standby.name}.postgres.log"), "start"]),
                       capture_output=True, timeout=COMMAND_TIMEOUT, cwd=formation.workdir)
        formation.autoctl("disable", "maintenance", "--name", standby.name, "--wait", "60")
    formation.wait_healthy()
    expect_codes(standby, SECONDARY)


def test_killed_postgres_on_the_primary(formation):
    """/primary and /health drop to 503 while the primary's Postgres is down, and come back when
    its keeper restarted it (no failover: the unhealthy timeout is raised for this test)."""
    formation.set_monitor_setting("node_considered_unhealthy_timeout", RESTART_UNHEALTHY_TIMEOUT_MS)
    try:
        primary = formation.primary()
        expect_codes(primary, PRIMARY)
        primary.kill_postgres(signal.SIGKILL)
        wait_status(primary, "/primary", 503, timeout=5)
        assert status(primary, "/liveness") == 200
        wait_status(primary, "/primary", 200, timeout=60)
        formation.wait_healthy()
        assert formation.primary().name == primary.name
        expect_codes(primary, PRIMARY)
    finally:
        formation.set_monitor_setting("node_considered_unhealthy_timeout", None)


def test_primary_cut_off_stops_answering_primary_when_its_lease_expires(formation):
    """The monitor and the standby (its Postgres and keeper) are frozen with SIGSTOP: the primary
    hears from neither. /primary must turn 503 no later than the write lease's end, and the keeper
    then fences (stops Postgres): /state says fenced, /health 503, the loop stays live."""
    primary, standby = formation.primary(), formation.standbys()[0]
    expect_codes(primary, PRIMARY)
    answers = []  # (t, /primary status) polled every 20 ms from before the cut
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            answers.append((time.monotonic(), status(primary, "/primary")))
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    frozen = []
    try:
        time.sleep(0.3)
        # Postmasters first, so that no child starts after the listing; then the children.
        monitor_pids = cluster_pids(formation.monitor_pgdata)
        standby_pids = cluster_pids(standby.pgdata)
        freeze([standby.keeper_pid()] + monitor_pids[:1] + standby_pids[:1])
        frozen += [standby.keeper_pid()] + monitor_pids[:1] + standby_pids[:1]
        cut = time.monotonic()
        rest = cluster_pids(formation.monitor_pgdata) + cluster_pids(standby.pgdata)
        freeze(rest)
        frozen += rest
        wait_status(primary, "/primary", 503, timeout=10, interval=0.02)
        s = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            s = state(primary)
            if s["fenced"]:
                break
            time.sleep(0.1)
        assert s and s["fenced"] is True, f"the cut-off primary did not fence: {s}\n{primary.log_tail(20)}"
        stop.set()
        poller.join(5)
        first_503 = next(t for t, code in answers if t >= cut and code != 200)
        late_200 = [t - cut for t, code in answers if code == 200 and t > first_503]
        print(f"\n[http fenced primary] /primary 503 {first_503 - cut:.2f}s after the cut "
              f"(network_partition_timeout {NETWORK_PARTITION_TIMEOUT}s)")
        # Last contact was before the cut, so the lease ends at most network_partition_timeout later;
        # 0.3 s for the 20 ms poll, one request and a loaded machine.
        assert first_503 - cut <= NETWORK_PARTITION_TIMEOUT + 0.3, answers[-50:]
        assert not late_200, f"/primary said 200 again while cut off, at {late_200}"
        assert s["writable"] is False and s["reported_state"] == "demote_timeout", s
        assert codes(primary) == POSTGRES_DOWN, codes(primary)
        # keeper.json hooks (http_nodes.create_http_node): on_fence ran, asynchronously.
        wait_hook_line(formation, f"on_fence {primary.name} primary demoted")
        m = parse_metrics(primary)
        assert metric(m, "autofailover_keeper_fenced", node=primary.name) == 1
        assert metric(m, "autofailover_keeper_writable", node=primary.name) == 0
    finally:
        stop.set()
        thaw(frozen)
    # Whatever the monitor decides when it wakes up (failover or not), one primary comes out, and the
    # endpoints agree with the monitor. Right after the thaw the monitor still shows the healthy picture
    # from before the freeze until the fenced primary's report arrives: health must hold for a while.
    formation.wait_healthy(hold=2.0)
    new_primary = formation.primary()
    other = next(n for n in formation.nodes.values() if n.name != new_primary.name)
    expect_codes(new_primary, PRIMARY, timeout=15)
    expect_codes(other, SECONDARY, timeout=15)


def test_switchover_never_shows_two_primaries(formation):
    """Both /primary checks polled through a switchover: never 200 on both at once; each node flips."""
    old = formation.primary()
    nodes = list(formation.nodes.values())
    samples = []
    stop = threading.Event()

    def poll():
        while not stop.is_set():
            samples.append({n.name: status(n, "/primary") for n in nodes})
            time.sleep(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        formation.autoctl("perform", "switchover", "--wait", "60")
        formation.wait_healthy()
        time.sleep(0.5)
    finally:
        stop.set()
        poller.join(5)
    both = [s for s in samples if all(c == 200 for c in s.values())]
    assert not both, f"two nodes answered 200 on /primary at once: {both[:3]}"
    new = formation.primary()
    assert new.name != old.name
    assert samples[0][old.name] == 200 and samples[-1][new.name] == 200 and samples[-1][old.name] == 503
    expect_codes(new, PRIMARY)
    expect_codes(old, SECONDARY)
    # on_role_change hooks on both nodes, with the new primary's address.
    wait_hook_line(formation, f"on_role_change {new.name} standby primary {new.name} {new.port}")
    wait_hook_line(formation, f"on_role_change {old.name} primary demoted")
    wait_hook_line(formation, f"on_role_change {old.name} demoted standby {new.name} {new.port}")
    assert not math.isnan(state(new)["lease_left_s"])
